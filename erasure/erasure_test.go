package erasure_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/erasure"
	"github.com/trailaudit/trail/internal/pgtest"
	"github.com/trailaudit/trail/postgres"
	"github.com/trailaudit/trail/sqlite"
	"github.com/trailaudit/trail/storetest"
	"github.com/trailaudit/trail/tlog"
)

const alice = "alice.personal@example.com"

// failedLogin is a login failure of subject u-1, with personal data in the
// actor, the request and the context.
func failedLogin(actor, email string) *trail.Event {
	return &trail.Event{Action: catalog.UserLoginFailed,
		Actor:   trail.Actor{Type: trail.ActorUser, ID: actor, Name: "Alice Example", Email: email},
		Request: trail.Request{IP: "198.51.100.23", UserAgent: "Mozilla/5.0"},
		Context: map[string]any{"reason": "invalid_password", "attempts": 2, "email": email}}
}

func TestSealOpenErase(t *testing.T) {
	ctx := context.Background()
	keys := erasure.NewMemoryKeys()
	cat := catalog.Default()
	s := erasure.NewSealer(keys, cat)
	ev := failedLogin("u-1", alice)
	plain := ev.Clone()
	if err := s.Seal(ctx, "acme", []*trail.Event{ev}); err != nil {
		t.Fatal(err)
	}
	// One sealed blob per event, in its first personal field; the others
	// refer to it.
	if !strings.HasPrefix(ev.Actor.Name, "enc1:") || strings.Contains(ev.Actor.Name, alice) {
		t.Errorf("actor.name holds %q, want the sealed blob", ev.Actor.Name)
	}
	for path, v := range map[string]string{"actor.email": ev.Actor.Email, "request.ip": ev.Request.IP, "context.email": ev.Context["email"].(string)} {
		if v != "enc1:^" {
			t.Errorf("%s holds %q, want a reference to the blob", path, v)
		}
	}
	if ev.Actor.ID != "u-1" || ev.Context["reason"] != "invalid_password" || ev.Request.UserAgent != "Mozilla/5.0" {
		t.Errorf("a field that is not personal was sealed: %+v", ev)
	}
	sealed := ev.Clone()
	if err := s.Open(ctx, "acme", ev); err != nil {
		t.Fatal(err)
	}
	if ev.Actor.Email != plain.Actor.Email || ev.Context["email"] != alice || ev.Request.IP != plain.Request.IP || ev.Actor.Name != plain.Actor.Name {
		t.Errorf("opened %+v, want %+v", ev, plain)
	}

	// A sealed blob moved to another event does not open (it is left as
	// it is); another tenant does not even know its key.
	moved := sealed.Clone()
	moved.ID = "01a21700-0000-7000-8000-000000000000"
	if err := s.Open(ctx, "acme", moved); err != nil || moved.Actor.Name != sealed.Actor.Name || moved.Actor.Email != "enc1:^" {
		t.Errorf("a blob moved to another event: %v, %+v", err, moved.Actor)
	}
	other := sealed.Clone()
	if err := s.Open(ctx, "globex", other); err != nil || other.Actor.Email == alice {
		t.Errorf("a blob read as another tenant's: %v, %+v; want it unreadable", err, other.Actor)
	}

	// What a client sends is data, whatever it looks like: a value shaped
	// like a sealed one is sealed again in a personal field, and left alone
	// elsewhere; no such value makes a read fail.
	forged := "enc1:00000000deadbeef:" + strings.Repeat("A", 40)
	tricky := failedLogin("u-3", forged)
	tricky.Context["note"] = forged
	s.Seal(ctx, "acme", []*trail.Event{tricky})
	if err := s.Open(ctx, "acme", tricky); err != nil || tricky.Actor.Email != forged || tricky.Context["note"] != forged {
		t.Errorf("a forged sealed value: %v, email %q, note %q", err, tricky.Actor.Email, tricky.Context["note"])
	}

	// Erasure: the subject's data reads as erased; another's does not.
	bob := failedLogin("u-2", "bob@example.com")
	s.Seal(ctx, "acme", []*trail.Event{bob})
	if n, err := s.Erase(ctx, "acme", "u-1"); err != nil || n != 1 {
		t.Fatalf("Erase = %d, %v", n, err)
	}
	gone := sealed.Clone()
	if err := s.Open(ctx, "acme", gone); err != nil {
		t.Fatal(err)
	}
	if gone.Actor.Email != erasure.Erased || gone.Context["email"] != erasure.Erased || gone.Request.IP != erasure.Erased {
		t.Errorf("after erasure: %+v", gone)
	}
	if err := s.Open(ctx, "acme", bob); err != nil || bob.Actor.Email != "bob@example.com" {
		t.Errorf("another subject after erasure: %v %+v", err, bob.Actor)
	}

	// No subject (a service actor, no user target): stored as given.
	svc := &trail.Event{Action: catalog.UserLoginFailed, Actor: trail.Actor{Type: trail.ActorService, ID: "svc", Email: "svc@example.com"}}
	s.Seal(ctx, "acme", []*trail.Event{svc})
	if svc.Actor.Email != "svc@example.com" {
		t.Errorf("an event with no subject was sealed: %+v", svc.Actor)
	}
}

// backend is a store with its raw database, for the end-to-end test.
type backend struct {
	store trail.Store
	// rawContains reports whether the events database holds b anywhere,
	// as an intruder with the database would look.
	rawContains func(b []byte) bool
}

func TestErasureEndToEnd(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(t *testing.T, v *trail.Validator) backend
	}{
		{"sqlite", func(t *testing.T, v *trail.Validator) backend {
			path := filepath.Join(t.TempDir(), "trail.db")
			db, err := sqlite.Open(context.Background(), path, sqlite.Options{Validator: v, Signer: storetest.Signer()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return backend{db, func(b []byte) bool { return fileContains(t, path, b) || fileContains(t, path+"-wal", b) }}
		}},
		{"postgres", func(t *testing.T, v *trail.Validator) backend {
			schema := pgtest.NewSchema(t)
			db, err := postgres.Open(context.Background(), pgtest.ServerURL(), postgres.Options{Validator: v, Signer: storetest.Signer(), Schema: schema})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return backend{db, func(b []byte) bool {
				conn, err := pgx.Connect(context.Background(), pgtest.ServerURL())
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close(context.Background())
				var n int
				err = conn.QueryRow(context.Background(), "SELECT count(*) FROM "+pgx.Identifier{schema, "events"}.Sanitize()+" WHERE position($1::bytea in body) > 0", b).Scan(&n)
				if err != nil {
					t.Fatal(err)
				}
				return n > 0
			}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			keyPath := filepath.Join(t.TempDir(), "subject-keys.db")
			keys, err := erasure.OpenKeyFile(ctx, keyPath)
			if err != nil {
				t.Fatal(err)
			}
			defer keys.Close()
			v := storetest.Validator()
			sealer := erasure.NewSealer(keys, v.Actions)
			v.Sealer = sealer
			b := tc.open(t, v)
			store := erasure.Wrap(b.store, sealer)

			res, err := store.Append(ctx, "acme", []*trail.Event{failedLogin("u-1", alice), failedLogin("u-2", "bob@example.com")}, trail.AppendOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Events[0].Actor.Email != alice {
				t.Errorf("Append returned %q, want the email in clear", res.Events[0].Actor.Email)
			}
			// Before erasure: it reads back, and it was never stored in clear.
			ev, err := store.GetSeq(ctx, "acme", 1)
			if err != nil || ev.Actor.Email != alice || ev.Context["email"] != alice {
				t.Fatalf("before erasure: %v %+v", err, ev)
			}
			if b.rawContains([]byte(alice)) {
				t.Error("the email is in the events database in clear")
			}
			leaves := scanLeaves(t, b.store)
			ks, err := keys.SubjectKeys(ctx, "acme", []string{"u-1"})
			if err != nil {
				t.Fatal(err)
			}
			key := ks[0].Key

			if _, err := sealer.Erase(ctx, "acme", "u-1"); err != nil {
				t.Fatal(err)
			}
			// After: erased on every read path, the other subject intact.
			ev, _ = store.GetSeq(ctx, "acme", 1)
			p, _ := store.Query(ctx, trail.Query{Tenant: "acme", ActorID: "u-1"})
			if ev.Actor.Email != erasure.Erased || ev.Context["email"] != erasure.Erased || len(p.Events) != 1 || p.Events[0].Actor.Name != erasure.Erased {
				t.Errorf("after erasure: %+v / %+v", ev, p.Events)
			}
			if ev, _ := store.GetSeq(ctx, "acme", 2); ev.Actor.Email != "bob@example.com" {
				t.Errorf("another subject: %+v", ev.Actor)
			}
			// The key is gone from the key file, bytes and all.
			if fileContains(t, keyPath, key) || fileContains(t, keyPath+"-wal", key) {
				t.Error("the erased key is still in the key file")
			}
			// The log is untouched and verifies.
			if after := scanLeaves(t, b.store); !equalLeaves(leaves, after) {
				t.Error("erasure changed the stored bytes")
			}
			rep, err := tlog.Verify(ctx, b.store, "acme", storetest.Signer().Verifier(), tlog.VerifyOptions{})
			if err != nil || !rep.OK() {
				t.Errorf("verify after erasure: %v %+v", err, rep)
			}
		})
	}
}

func fileContains(t *testing.T, path string, b []byte) bool {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Contains(data, b)
}

func scanLeaves(t *testing.T, s trail.Store) [][]byte {
	var out [][]byte
	err := s.ScanLeaves(context.Background(), "acme", 1, 0, func(l trail.Leaf) error {
		out = append(out, bytes.Clone(l.Body))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func equalLeaves(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// TestPostgresSubjectKeys: a PostgreSQL deployment keeps subject keys in
// its own subject_keys table (shared by every Trail process); erasure
// deletes the rows.
func TestPostgresSubjectKeys(t *testing.T) {
	ctx := context.Background()
	schema := pgtest.NewSchema(t)
	v := storetest.Validator()
	db, err := postgres.Open(ctx, pgtest.ServerURL(), postgres.Options{Validator: v, Signer: storetest.Signer(), Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sealer := erasure.NewSealer(db, v.Actions)
	v.Sealer = sealer // before any append
	store := erasure.Wrap(db, sealer)
	if _, err := store.Append(ctx, "acme", []*trail.Event{failedLogin("u-1", alice), failedLogin("u-1", alice), failedLogin("u-2", "bob@example.com")}, trail.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	keyRows := func(subject string) int {
		conn, err := pgx.Connect(ctx, pgtest.ServerURL())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{schema, "subject_keys"}.Sanitize()+" WHERE subject = $1", subject).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := keyRows("u-1"); n != 1 {
		t.Fatalf("u-1 has %d keys, want 1 (one per subject)", n)
	}
	if n, err := sealer.Erase(ctx, "acme", "u-1"); err != nil || n != 1 {
		t.Fatalf("Erase = %d, %v", n, err)
	}
	if n := keyRows("u-1"); n != 0 {
		t.Errorf("%d key rows of u-1 left after erasure", n)
	}
	ev, err := store.GetSeq(ctx, "acme", 2)
	if err != nil || ev.Actor.Email != erasure.Erased {
		t.Errorf("after erasure: %v %+v", err, ev)
	}
	if ev, _ := store.GetSeq(ctx, "acme", 3); ev.Actor.Email != "bob@example.com" {
		t.Errorf("another subject: %+v", ev.Actor)
	}
}
