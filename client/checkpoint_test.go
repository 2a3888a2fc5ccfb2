package client

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	trailhttp "github.com/trailaudit/trail/http"
	"github.com/trailaudit/trail/sqlite"
	"github.com/trailaudit/trail/storetest"
	"github.com/trailaudit/trail/tlog"
)

// logServer is trail serve over a SQLite file, answering on httptest.
type logServer struct {
	db *sqlite.DB
	hs *httptest.Server
}

// openLogServer serves the SQLite store at path (made if need be) with
// the key k (created if the store lacks it).
func openLogServer(t *testing.T, path string, k *trail.APIKey) *logServer {
	t.Helper()
	ctx := context.Background()
	cat := catalog.Default()
	v := storetest.Validator()
	v.Actions = cat
	db, err := sqlite.Open(ctx, path, sqlite.Options{Validator: v, Signer: storetest.Signer()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Key(ctx, k.ID); trail.ErrorCode(err) == trail.ENOTFOUND {
		if err := db.CreateKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	} else if err != nil {
		t.Fatal(err)
	}
	srv, err := trailhttp.New(trailhttp.Config{Store: db, Writer: db, Keys: db, Catalog: cat,
		Verifier: storetest.Signer().Verifier(), Logger: slog.New(slog.DiscardHandler), Limits: trailhttp.Limits{Rate: -1}})
	if err != nil {
		t.Fatal(err)
	}
	s := &logServer{db: db, hs: httptest.NewServer(srv.Handler())}
	t.Cleanup(s.close)
	return s
}

func (s *logServer) close() {
	if s.hs != nil {
		s.hs.Close()
		s.db.Close()
		s.hs = nil
	}
}

// copyFile copies the file at from (and its -wal, if any) to to.
func copyFile(t *testing.T, from, to string) {
	t.Helper()
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(from + suffix)
		if errors.Is(err, os.ErrNotExist) && suffix != "" {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to+suffix, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLatestCheckpointRemembers: a client that saw a log's checkpoint
// follows it as it grows, and refuses the same log rolled back (a second
// server over an earlier copy of its database) and a fork (another
// history signed with the same key), naming both sizes and roots, and
// keeps remembering what it saw.
func TestLatestCheckpointRemembers(t *testing.T) {
	ctx := ctxTimeout(t, time.Minute)
	dir := t.TempDir()
	text, k, err := trail.NewAPIKey(remoteTenant, "auditor", []trail.KeyScope{trail.ScopeIngest, trail.ScopeVerify}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	remembered := tlog.RememberDir(filepath.Join(dir, "remembered"))
	client := func(s *logServer) *Remote {
		return newRemote(t, RemoteOptions{URL: s.hs.URL, Key: text, Verifier: storetest.Signer().Verifier(), Tenant: remoteTenant, Remembered: remembered})
	}
	record := func(r *Remote, n int) {
		t.Helper()
		for i := range n {
			if err := r.Record(ctx, testEvent(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	latest := func(r *Remote) (*tlog.Checkpoint, error) {
		t.Helper()
		return r.LatestCheckpoint(ctx)
	}
	rememberedSize := func() uint64 {
		t.Helper()
		b, err := remembered.Load(ctx, tlog.Origin(storetest.Signer().Verifier().Name(), remoteTenant))
		if err != nil || b == nil {
			t.Fatalf("nothing remembered: %v", err)
		}
		cp, err := tlog.ParseUnverified(b)
		if err != nil {
			t.Fatal(err)
		}
		return cp.Size
	}

	a := filepath.Join(dir, "a.db")
	s := openLogServer(t, a, k)
	r := client(s)
	record(r, 3)
	first, err := latest(r)
	if err != nil || first.Size != 3 {
		t.Fatalf("first checkpoint: %v, %v; want size 3", first, err)
	}
	s.close()
	copyFile(t, a, filepath.Join(dir, "earlier.db"))

	s = openLogServer(t, a, k)
	r = client(s)
	record(r, 4)
	grown, err := latest(r)
	if err != nil || grown.Size <= first.Size || rememberedSize() != grown.Size {
		t.Fatalf("the grown log: %v, %v (remembered size %d); want it remembered", grown, err, rememberedSize())
	}

	for _, tc := range []struct {
		name     string
		serve    func() *logServer
		rollback bool
	}{
		{"rollback to an earlier copy", func() *logServer { return openLogServer(t, filepath.Join(dir, "earlier.db"), k) }, true},
		{"fork: another history, same key", func() *logServer {
			f := openLogServer(t, filepath.Join(dir, "fork.db"), k)
			record(client(f), 20)
			return f
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			other := tc.serve()
			cp, err := latest(client(other))
			var ie *tlog.InconsistentError
			if !errors.As(err, &ie) || ie.Rollback != tc.rollback || trail.ErrorCode(err) != trail.ECONFLICT {
				t.Fatalf("LatestCheckpoint = %v, %v; want an ECONFLICT InconsistentError (rollback %v)", cp, err, tc.rollback)
			}
			for _, want := range []string{"size " + uitoa(ie.Got.Size), "size " + uitoa(grown.Size), rootB64(ie.Got.Root), rootB64(grown.Root)} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the error does not say %q: %v", want, err)
				}
			}
			if got := rememberedSize(); got != grown.Size {
				t.Errorf("remembered size %d after the refusal, want %d", got, grown.Size)
			}
		})
	}
	if _, err := latest(r); err != nil {
		t.Fatalf("the real log after the refusals: %v", err)
	}
}

// TestLatestCheckpointNeeds: without a Verifier LatestCheckpoint refuses,
// and a Verifier without the tenant is refused by NewRemote.
func TestLatestCheckpointNeeds(t *testing.T) {
	r := newRemote(t, RemoteOptions{URL: "http://127.0.0.1:1", Key: "k"})
	if _, err := r.LatestCheckpoint(context.Background()); trail.ErrorCode(err) != trail.EINVALID {
		t.Errorf("without a Verifier: %v, want EINVALID", err)
	}
	_, err := NewRemote(context.Background(), RemoteOptions{URL: "http://127.0.0.1:1", Key: "k", Verifier: storetest.Signer().Verifier()})
	if fe := trail.ErrorFields(err); len(fe) != 1 || fe[0].Path != "Tenant" {
		t.Errorf("a Verifier with no Tenant: %v, want EINVALID naming Tenant", err)
	}
}

func uitoa(n uint64) string { return strconv.FormatUint(n, 10) }

func rootB64(root []byte) string { return base64.StdEncoding.EncodeToString(root) }
