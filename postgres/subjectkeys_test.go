package postgres_test

import (
	"bytes"
	"context"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/erasure"
	"github.com/trailaudit/trail/internal/pgtest"
	"github.com/trailaudit/trail/postgres"
	"github.com/trailaudit/trail/storetest"
)

// schemaURL returns the server URL with search_path set to schema, and
// with params as further run-time parameters.
func schemaURL(t *testing.T, schema string, params map[string]string) string {
	t.Helper()
	u, err := url.Parse(pgtest.ServerURL())
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	for k, v := range params {
		q.Set(k, v)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// openSubjectKeys opens the subject keys at connString, closed when the
// test ends.
func openSubjectKeys(t *testing.T, connString string) *postgres.SubjectKeys {
	t.Helper()
	return storetest.OpenSubjectKeys(t, postgres.OpenSubjectKeys, connString)
}

func TestSubjectKeys(t *testing.T) {
	storetest.RunSubjectKeys(t, func(t *testing.T) trail.SubjectKeyStore {
		return openSubjectKeys(t, pgtest.SchemaURL(t))
	})
}

// TestSubjectKeysBeforeStore wires erasure as a program does: the subject
// keys first (they migrate the fresh schema), the Sealer on them, then the
// store on the same schema, whose Validator seals. The keys are rows of
// subject_keys, one per subject; erasure deletes them.
func TestSubjectKeysBeforeStore(t *testing.T) {
	ctx := context.Background()
	u := pgtest.SchemaURL(t)
	keys := openSubjectKeys(t, u)
	v := storetest.Validator()
	sealer := erasure.NewSealer(keys, v.Actions)
	v.Sealer = sealer // before any append
	db, err := postgres.Open(ctx, u, postgres.Options{Validator: v, Signer: storetest.Signer()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, ok := any(db).(trail.SubjectKeyStore); ok {
		t.Error("*postgres.DB is a trail.SubjectKeyStore: subject keys are SubjectKeys' alone")
	}
	store := erasure.Wrap(db, sealer)
	login := func(subject, email string) *trail.Event {
		return &trail.Event{Action: catalog.UserLoginFailed, Actor: trail.Actor{Type: trail.ActorUser, ID: subject, Email: email}}
	}
	if _, err := store.Append(ctx, "acme", []*trail.Event{login("u-1", "alice@example.com"), login("u-1", "alice@example.com"),
		login("u-2", "bob@example.com")}, trail.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	keyRows := func(subject string) int {
		t.Helper()
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM subject_keys WHERE tenant = 'acme' AND subject = $1", subject).Scan(&n); err != nil {
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
	if n := keyRows("u-2"); n != 1 {
		t.Errorf("u-2 has %d keys after u-1's erasure, want 1", n)
	}
	if ev, err := store.GetSeq(ctx, "acme", 2); err != nil || ev.Actor.Email != erasure.Erased {
		t.Errorf("after erasure: %v %+v", err, ev)
	}
	if ev, err := store.GetSeq(ctx, "acme", 3); err != nil || ev.Actor.Email != "bob@example.com" {
		t.Errorf("another subject: %v %+v", err, ev)
	}
}

// TestSubjectKeysShared: processes sharing a database share its subject
// keys: a key one makes the other finds, and an erasure by one erases for
// both.
func TestSubjectKeysShared(t *testing.T) {
	ctx := context.Background()
	u := pgtest.SchemaURL(t)
	a, b := openSubjectKeys(t, u), openSubjectKeys(t, u)
	ks, err := a.SubjectKeys(ctx, "acme", []string{"u-1"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := b.SubjectKeys(ctx, "acme", []string{"u-1"}); err != nil || got[0].ID != ks[0].ID {
		t.Fatalf("the other process got key %+v, %v; want %s", got, err, ks[0].ID)
	}
	if n, err := b.EraseSubject(ctx, "acme", "u-1"); err != nil || n != 1 {
		t.Fatalf("EraseSubject = %d, %v", n, err)
	}
	if _, err := a.KeyByID(ctx, "acme", ks[0].ID); trail.ErrorCode(err) != trail.ENOTFOUND {
		t.Errorf("KeyByID after the other process's erasure: %v, want ENOTFOUND", err)
	}
}

// TestSubjectKeysSameInstant: of two keys of one subject made at one
// instant (two processes creating its first key at once), the one with the
// greater id is its current key, every time: the choice does not flip.
func TestSubjectKeysSameInstant(t *testing.T) {
	ctx := context.Background()
	schema := pgtest.NewSchema(t)
	keys := openSubjectKeys(t, schemaURL(t, schema, nil))
	now := time.Now().UnixNano()
	for _, id := range []string{"8000000000000000", "00000000000000ff", "ffffffffffffff00"} {
		if _, err := connect(t, schema, nil).Exec(ctx, "INSERT INTO subject_keys (tenant, id, subject, key, created_at) VALUES ('acme', $1, 'u-1', $2, $3)",
			id, bytes.Repeat([]byte(id[:1]), 32), now); err != nil {
			t.Fatal(err)
		}
	}
	for range 20 {
		if ks, err := keys.SubjectKeys(ctx, "acme", []string{"u-1"}); err != nil || ks[0].ID != "ffffffffffffff00" {
			t.Fatalf("SubjectKeys = %+v, %v; want key ffffffffffffff00, the greatest id of the newest", ks, err)
		}
	}
}

// TestSubjectKeysPool: the pool is small unless the connection string says
// otherwise.
func TestSubjectKeysPool(t *testing.T) {
	schema := pgtest.NewSchema(t)
	if n := postgres.MaxConns(openSubjectKeys(t, schemaURL(t, schema, nil))); n != 4 {
		t.Errorf("pool of %d connections, want 4", n)
	}
	if n := postgres.MaxConns(openSubjectKeys(t, schemaURL(t, schema, map[string]string{"pool_max_conns": "9"}))); n != 9 {
		t.Errorf("pool of %d connections with pool_max_conns=9, want 9", n)
	}
}

// TestSubjectKeysAppRole: trail_app may make, read and erase subject keys
// in a schema its owner migrated (the VACUUM after an erasure, which it may
// not run, is left to autovacuum).
func TestSubjectKeysAppRole(t *testing.T) {
	ctx := context.Background()
	schema := pgtest.NewSchema(t)
	open(t, schema, postgres.Options{}) // migrates as the owner
	openAsApp(t, schema)                // needs the role
	keys := openSubjectKeys(t, schemaURL(t, schema, map[string]string{"role": "trail_app"}))
	ks, err := keys.SubjectKeys(ctx, "acme", []string{"u-1"})
	if err != nil {
		t.Fatalf("SubjectKeys as trail_app: %v", err)
	}
	if _, err := keys.KeyByID(ctx, "acme", ks[0].ID); err != nil {
		t.Fatalf("KeyByID as trail_app: %v", err)
	}
	if n, err := keys.EraseSubject(ctx, "acme", "u-1"); err != nil || n != 1 {
		t.Fatalf("EraseSubject as trail_app = %d, %v", n, err)
	}
}

// TestSubjectKeysNewerSchemaRefused: OpenSubjectKeys runs Open's migration,
// refusal of a newer schema included.
func TestSubjectKeysNewerSchemaRefused(t *testing.T) {
	schema := pgtest.NewSchema(t)
	openSubjectKeys(t, schemaURL(t, schema, nil)).Close()
	var n int
	if err := connect(t, schema, nil).QueryRow(context.Background(), "SELECT count(*) FROM schema_migrations").Scan(&n); err != nil || n != postgres.SchemaVersion {
		t.Fatalf("OpenSubjectKeys left %d rows in schema_migrations (%v), want %d", n, err, postgres.SchemaVersion)
	}
	newer := postgres.SchemaVersion + 1
	if _, err := connect(t, schema, nil).Exec(context.Background(), "INSERT INTO schema_migrations (version) VALUES ($1)", newer); err != nil {
		t.Fatal(err)
	}
	_, err := postgres.OpenSubjectKeys(context.Background(), schemaURL(t, schema, nil))
	if err == nil {
		t.Fatal("OpenSubjectKeys of a newer schema succeeded")
	}
	for _, v := range []int{newer, postgres.SchemaVersion} {
		if !strings.Contains(err.Error(), "version "+strconv.Itoa(v)) {
			t.Errorf("error %q does not name version %d", err, v)
		}
	}
}
