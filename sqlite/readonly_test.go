package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/testenv"
	"github.com/trailaudit/trail/sqlite"
	"github.com/trailaudit/trail/storetest"
	"github.com/trailaudit/trail/tlog"
)

// copyFiles copies the named files of src that exist into dst.
func copyFiles(t *testing.T, src, dst string, names ...string) {
	t.Helper()
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(src, name))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReadOnly: a copy of the database on a read-only file system (a
// mounted backup, where an auditor verifies) opens with Options.ReadOnly,
// reads and verifies all that was committed, and refuses writes; a copy
// whose write-ahead log holds commits that cannot be read there is refused,
// never read without them.
func TestReadOnly(t *testing.T) {
	ctx := context.Background()
	live := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(live, "trail.db"), sqlite.Options{Validator: storetest.Validator(), Signer: storetest.Signer()})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := db.Append(ctx, "acme", []*trail.Event{storetest.Login(fmt.Sprintf("u-%d", i))}, trail.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	files := []string{"trail.db", "trail.db-wal", "trail.db-shm"}
	hot, hotNoShm := t.TempDir(), t.TempDir()
	copyFiles(t, live, hot, files...) // while the store is open: the commits are in the -wal
	copyFiles(t, live, hotNoShm, files[:2]...)
	if fi, err := os.Stat(filepath.Join(hot, "trail.db-wal")); err != nil || fi.Size() == 0 {
		t.Fatalf("the open store's write-ahead log: %v (want one holding the commits)", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	cold := t.TempDir()
	copyFiles(t, live, cold, files...) // closed: all in trail.db

	for _, tc := range []struct {
		name, dir string
		code      string // of the open's error; "" if it opens
	}{
		{"closed", cold, ""},
		{"copied while open", hot, ""},
		{"copied while open, without -shm", hotNoShm, trail.EUNAVAILABLE},
		{"missing", filepath.Join(cold, "nothing-here"), trail.ENOTFOUND},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.code != trail.ENOTFOUND {
				testenv.ReadOnly(t, tc.dir)
			}
			before, _ := os.ReadDir(tc.dir)
			ro, err := sqlite.Open(ctx, filepath.Join(tc.dir, "trail.db"), sqlite.Options{Validator: storetest.Validator(), ReadOnly: true})
			if tc.code != "" {
				if trail.ErrorCode(err) != tc.code {
					t.Fatalf("open: %v (code %s), want %s", err, trail.ErrorCode(err), tc.code)
				}
				if tc.code == trail.EUNAVAILABLE && !strings.Contains(err.Error(), "trail.db-shm") {
					t.Errorf("the refusal does not say what is missing: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer ro.Close()
			if n, err := ro.Count(ctx, trail.Query{Tenant: "acme"}); err != nil || n != 3 {
				t.Errorf("count: %d %v, want 3", n, err)
			}
			raw0, _ := sqlite.ChunkReads(ro)
			if rep, err := tlog.Verify(ctx, ro, "acme", storetest.Signer().Verifier(), tlog.VerifyOptions{}); err != nil || !rep.OK() || rep.Size != 3 {
				t.Errorf("verify: %+v %v; want intact, 3 events", rep, err)
			}
			if raw, _ := sqlite.ChunkReads(ro); raw == raw0 {
				t.Error("verify read no chunk beneath database/sql")
			}
			if _, err := ro.Append(ctx, "acme", []*trail.Event{storetest.Login("u-9")}, trail.AppendOptions{}); err == nil {
				t.Error("a read-only store appended")
			}
			_, k, err := trail.NewAPIKey("acme", "k", []trail.KeyScope{trail.ScopeRead}, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if err := ro.CreateKey(ctx, k); trail.ErrorCode(err) != trail.EUNAVAILABLE {
				t.Errorf("a key written to a read-only store: %v, want %s", err, trail.EUNAVAILABLE)
			}
			if after, _ := os.ReadDir(tc.dir); len(after) != len(before) {
				t.Errorf("the open made files: %d, then %d", len(before), len(after))
			}
		})
	}
}

// TestSubjectKeysReadOnly: the subject-key file of a read-only copy opens
// read-only and gives its keys; a missing one is ENOTFOUND, and none is
// made.
func TestSubjectKeysReadOnly(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "subject-keys.db")
	keys, err := sqlite.OpenSubjectKeys(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	made, err := keys.SubjectKeys(ctx, "acme", []string{"u-1"})
	if err != nil {
		t.Fatal(err)
	}
	keys.Close()
	testenv.ReadOnly(t, dir)
	ro, err := sqlite.OpenSubjectKeysReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if k, err := ro.KeyByID(ctx, "acme", made[0].ID); err != nil || string(k) != string(made[0].Key) {
		t.Errorf("the key read back: %v", err)
	}
	if _, err := sqlite.OpenSubjectKeysReadOnly(ctx, filepath.Join(dir, "none.db")); trail.ErrorCode(err) != trail.ENOTFOUND {
		t.Errorf("a missing key file: %v, want %s", err, trail.ENOTFOUND)
	}
}
