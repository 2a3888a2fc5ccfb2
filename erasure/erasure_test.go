package erasure_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/erasure"
	"github.com/trailaudit/trail/internal/pgtest"
	"github.com/trailaudit/trail/memory"
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

// forms are the blob forms a Sealer seals in: enc4, and enc2 as events
// were sealed before it (erasure.SealAsBefore), which open, erase and
// verify as they did.
var forms = []struct {
	name   string
	prefix string // of a blob
	set    func(*erasure.Sealer)
}{
	{"enc4", "enc4:", func(*erasure.Sealer) {}},
	{"enc2", "enc2:", erasure.SealAsBefore},
}

// newSealer returns a Sealer sealing in form.
func newSealer(form func(*erasure.Sealer), keys trail.SubjectKeyStore, actions trail.ActionResolver) *erasure.Sealer {
	s := erasure.NewSealer(keys, actions)
	form(s)
	return s
}

func TestSealOpenErase(t *testing.T) {
	for _, form := range forms {
		t.Run(form.name, func(t *testing.T) { testSealOpenErase(t, form.prefix, form.set) })
	}
}

func testSealOpenErase(t *testing.T, prefix string, form func(*erasure.Sealer)) {
	ctx := context.Background()
	keys := memory.NewSubjectKeys()
	cat := catalog.Default()
	s := newSealer(form, keys, cat)
	ev := failedLogin("u-1", alice)
	ev.ID = trail.NewID(time.Now()) // as PrepareBatch draws it: Seal needs one
	plain := ev.Clone()
	if err := s.Seal(ctx, "acme", []*trail.Event{ev}); err != nil {
		t.Fatal(err)
	}
	// One sealed blob per subject of an event, in its first personal
	// field; the others refer to it.
	if !strings.HasPrefix(ev.Actor.Name, prefix) || strings.Contains(ev.Actor.Name, alice) {
		t.Errorf("actor.name holds %q, want the sealed blob", ev.Actor.Name)
	}
	for path, v := range map[string]string{"actor.email": ev.Actor.Email, "request.ip": ev.Request.IP, "context.email": ev.Context["email"].(string)} {
		if v != "enc1:^" {
			t.Errorf("%s holds %q, want a reference to the event's first blob", path, v)
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
	tricky.ID = trail.NewID(time.Now())
	if err := s.Seal(ctx, "acme", []*trail.Event{tricky}); err != nil {
		t.Fatal(err)
	}
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

// TestSealValues: whatever JSON a personal field holds (quotes, control
// characters, invalid UTF-8 replaced by the validator, numbers, objects)
// opens to what was sealed, and none of it is stored in clear.
func TestSealValues(t *testing.T) {
	for _, form := range forms {
		t.Run(form.name, func(t *testing.T) { testSealValues(t, form.prefix, form.set) })
	}
}

func testSealValues(t *testing.T, prefix string, form func(*erasure.Sealer)) {
	ctx := context.Background()
	s := newSealer(form, memory.NewSubjectKeys(), catalog.Default())
	for _, tc := range []struct {
		name  string
		value any
	}{
		{"quotes and control characters", "Al\"ice\x00\x07\u2028 \\ \u00e9"},
		{"a number", json.Number("4155550100")},
		{"an object", map[string]any{"street": "1 Main St", "zip": json.Number("94105")}},
		{"a list", []any{"alice@example.com", true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := failedLogin("u-1", alice)
			ev.ID = "01a21700-0000-7000-8000-00000000000" + strconv.Itoa(len(tc.name)%10)
			ev.Context["address"] = tc.value
			ev.Actor.Name, _ = tc.value.(string)
			if err := s.Seal(ctx, "acme", []*trail.Event{ev}); err != nil {
				t.Fatal(err)
			}
			if v, ok := ev.Context["address"].(string); !ok || !strings.HasPrefix(v, prefix) && !strings.HasPrefix(v, "enc1:^") {
				t.Fatalf("context.address holds %#v, want it sealed", ev.Context["address"])
			}
			if err := s.Open(ctx, "acme", ev); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.value, ev.Context["address"]); diff != "" {
				t.Errorf("context.address opened wrong (-sealed +opened):\n%s", diff)
			}
			if want, _ := tc.value.(string); ev.Actor.Name != want || ev.Actor.Email != alice {
				t.Errorf("actor opened to %+v", ev.Actor)
			}
		})
	}
}

// TestSealPerSubject: an administrator acting on a user records data of
// both. The user's name as a target and the target_* context keys are
// sealed under the user's key, the administrator's own data under the
// administrator's; erasing the user erases the user's data only.
func TestSealPerSubject(t *testing.T) {
	for _, form := range forms {
		t.Run(form.name, func(t *testing.T) { testSealPerSubject(t, form.prefix, form.set) })
	}
}

func testSealPerSubject(t *testing.T, prefix string, form func(*erasure.Sealer)) {
	ctx := context.Background()
	s := newSealer(form, memory.NewSubjectKeys(), catalog.Default())
	ev := &trail.Event{ID: "01a21700-0000-7000-8000-0000000000aa", Action: catalog.UserLoginFailed,
		Actor:   trail.Actor{Type: trail.ActorUser, ID: "admin-1", Email: "admin@example.com"},
		Request: trail.Request{IP: "203.0.113.9"},
		Targets: []trail.Target{{Type: "user", ID: "u-7", Name: "Bob Target"}},
		Context: map[string]any{"target_email": "bob@example.com", "email": "admin@example.com"}}
	if err := s.Seal(ctx, "acme", []*trail.Event{ev}); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"actor.email": prefix, "request.ip": "enc1:^", "context.email": "enc1:^",
		"targets.0.name": prefix, "context.target_email": "enc1:^targets.0.name",
	} {
		got := map[string]string{"actor.email": ev.Actor.Email, "request.ip": ev.Request.IP, "context.email": ev.Context["email"].(string),
			"targets.0.name": ev.Targets[0].Name, "context.target_email": ev.Context["target_email"].(string)}[path]
		if got != want && (want != prefix || !strings.HasPrefix(got, want) || strings.HasPrefix(got, "enc1:^")) {
			t.Errorf("%s holds %q, want %q…", path, got, want)
		}
	}
	sealed := ev.Clone()
	if _, err := s.Erase(ctx, "acme", "u-7"); err != nil {
		t.Fatal(err)
	}
	if err := s.Open(ctx, "acme", ev); err != nil {
		t.Fatal(err)
	}
	if ev.Targets[0].Name != erasure.Erased || ev.Context["target_email"] != erasure.Erased {
		t.Errorf("the erased user's data reads %q, %q", ev.Targets[0].Name, ev.Context["target_email"])
	}
	if ev.Actor.Email != "admin@example.com" || ev.Request.IP != "203.0.113.9" || ev.Context["email"] != "admin@example.com" {
		t.Errorf("the administrator's data reads %+v %+v %v", ev.Actor, ev.Request, ev.Context)
	}
	// Erasing the administrator too leaves nothing readable.
	if _, err := s.Erase(ctx, "acme", "admin-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Open(ctx, "acme", sealed); err != nil {
		t.Fatal(err)
	}
	if sealed.Actor.Email != erasure.Erased || sealed.Request.IP != erasure.Erased || sealed.Targets[0].Name != erasure.Erased {
		t.Errorf("after erasing both: %+v %+v %+v", sealed.Actor, sealed.Request, sealed.Targets)
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
		for _, form := range forms {
			t.Run(tc.name+"/"+form.name, func(t *testing.T) { testErasureEndToEnd(t, tc.open, form.set) })
		}
	}
}

func testErasureEndToEnd(t *testing.T, open func(t *testing.T, v *trail.Validator) backend, form func(*erasure.Sealer)) {
	ctx := context.Background()
	keyPath := filepath.Join(t.TempDir(), "subject-keys.db")
	keys := storetest.OpenSubjectKeys(t, sqlite.OpenSubjectKeys, keyPath)
	v := storetest.Validator()
	sealer := newSealer(form, keys, v.Actions)
	v.Sealer = sealer
	b := open(t, v)
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
	sealed1, err := b.store.GetSeq(ctx, "acme", 1) // as stored: sealed
	if err != nil {
		t.Fatal(err)
	}
	sealed2, err := b.store.GetSeq(ctx, "acme", 2)
	if err != nil {
		t.Fatal(err)
	}
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
	// The key is gone from the key file, bytes and all, and the
	// file's table holds no row of the subject.
	if fileContains(t, keyPath, key) || fileContains(t, keyPath+"-wal", key) {
		t.Error("the erased key is still in the key file")
	}
	if n := keyRows(t, keyPath, "u-1"); n != 0 {
		t.Errorf("the key file holds %d rows of the erased subject", n)
	}
	if n := keyRows(t, keyPath, "u-2"); n != 1 {
		t.Errorf("the key file holds %d rows of the other subject, want 1", n)
	}
	// The sealed fields open to nothing, also for a Sealer that
	// never cached the key (another process, a restart), which
	// still opens the other subject's.
	fresh := erasure.NewSealer(storetest.OpenSubjectKeys(t, sqlite.OpenSubjectKeys, keyPath), v.Actions)
	for name, s := range map[string]*erasure.Sealer{"the Sealer": sealer, "a new Sealer": fresh} {
		ev := sealed1.Clone()
		if err := s.Open(ctx, "acme", ev); err != nil || ev.Actor.Name != erasure.Erased || ev.Actor.Email != erasure.Erased ||
			ev.Request.IP != erasure.Erased || ev.Context["email"] != erasure.Erased {
			t.Errorf("%s opened the erased subject's event: %v %+v %+v %v", name, err, ev.Actor, ev.Request, ev.Context)
		}
		if ev := sealed2.Clone(); s.Open(ctx, "acme", ev) != nil || ev.Actor.Email != "bob@example.com" {
			t.Errorf("%s did not open the other subject's event: %+v", name, ev.Actor)
		}
	}
	// The log is untouched and verifies.
	if after := scanLeaves(t, b.store); !equalLeaves(leaves, after) {
		t.Error("erasure changed the stored bytes")
	}
	rep, err := tlog.Verify(ctx, b.store, "acme", storetest.Signer().Verifier(), tlog.VerifyOptions{})
	if err != nil || !rep.OK() {
		t.Errorf("verify after erasure: %v %+v", err, rep)
	}
}

// keyRows counts the rows of subject in the key file at path, read with
// SQLite itself rather than through the key store.
func keyRows(t *testing.T, path, subject string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM subject_keys WHERE tenant = 'acme' AND subject = ?", subject).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
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

// FuzzSealOpen: any value a client sends in a personal field, and any
// context key, opens to what was sealed (in every form a Sealer seals in),
// and never fails a read.
func FuzzSealOpen(f *testing.F) {
	f.Add("Alice \"A\" O'Brien", "email")
	f.Add("\x00\x1f\u2028<>&é", "target_email")
	f.Add("enc1:^actor.name", "enc1:")
	f.Add("enc1:00000000deadbeef:AAAA", "user_email")
	f.Add("enc3:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "user_email")
	var sealers []*erasure.Sealer
	for _, form := range forms {
		sealers = append(sealers, newSealer(form.set, memory.NewSubjectKeys(), catalog.Default()))
	}
	f.Fuzz(func(t *testing.T, value, key string) {
		if !utf8.ValidString(value) || !utf8.ValidString(key) || value == "" {
			return // the validator replaces invalid UTF-8 before sealing; empty fields are not sealed
		}
		for i, s := range sealers {
			ev := &trail.Event{ID: "01a21700-0000-7000-8000-0000000000ff", Action: catalog.UserLoginFailed,
				Actor:   trail.Actor{Type: trail.ActorUser, ID: "u-1", Name: value},
				Targets: []trail.Target{{Type: "user", ID: "u-2", Name: value}},
				Context: map[string]any{"email": value, key: value}}
			want := ev.Clone()
			if err := s.Seal(context.Background(), "acme", []*trail.Event{ev}); err != nil {
				t.Fatal(err)
			}
			if ev.Actor.Name == value || ev.Targets[0].Name == value || !strings.HasPrefix(ev.Actor.Name, forms[i].prefix) {
				t.Fatalf("%s: not sealed: %+v", forms[i].name, ev)
			}
			openings, err := s.Openings(context.Background(), "acme", ev)
			if err != nil {
				t.Fatal(err)
			}
			withOpenings := ev.Clone()
			if err := erasure.OpenWith("acme", withOpenings, openings); err != nil {
				t.Fatal(err)
			}
			// Without the catalog, OpenWith cannot tell a value stored as
			// given that looks like a blob (its key unknown: no opening)
			// from a blob whose subject was erased (OpenWith's doc): such
			// a value may read as erased there, and only there.
			if v := ev.Context[key]; key != "email" && v == value && withOpenings.Context[key] == erasure.Erased {
				withOpenings.Context[key] = value
			}
			if diff := cmp.Diff(want, withOpenings); diff != "" {
				t.Errorf("%s: opened with its openings differently (-sealed +opened):\n%s", forms[i].name, diff)
			}
			if err := s.Open(context.Background(), "acme", ev); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, ev); diff != "" {
				t.Errorf("%s: opened differently (-sealed +opened):\n%s", forms[i].name, diff)
			}
		}
	})
}

// TestSealRefusesIDs: a blob's key comes from its event's id, so Seal
// refuses an event without one, and one whose id another event of the
// batch has, sealing nothing.
func TestSealRefusesIDs(t *testing.T) {
	ctx := context.Background()
	id := trail.NewID(time.Now())
	for _, tc := range []struct {
		name string
		ids  []string
	}{{"no id", []string{""}}, {"an id twice", []string{id, id}}, {"no id after one", []string{id, ""}}} {
		t.Run(tc.name, func(t *testing.T) {
			var evs []*trail.Event
			for _, id := range tc.ids {
				ev := failedLogin("u-1", alice)
				ev.ID = id
				evs = append(evs, ev)
			}
			plain := evs[0].Clone()
			err := erasure.NewSealer(memory.NewSubjectKeys(), catalog.Default()).Seal(ctx, "acme", evs)
			if err == nil || !strings.Contains(err.Error(), "an id of its own is needed") {
				t.Fatalf("Seal = %v, want it refused for the ids", err)
			}
			if !cmp.Equal(evs[0], plain) {
				t.Error("Seal changed an event of the batch it refused")
			}
		})
	}
}
