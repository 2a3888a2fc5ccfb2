package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/sqlitetest"
	"github.com/trailaudit/trail/sqlite"
	"github.com/trailaudit/trail/storetest"
	"github.com/trailaudit/trail/tlog"
)

func open(t *testing.T, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path, sqlite.Options{Validator: storetest.Validator(), Signer: storetest.Signer()})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) trail.Store {
		return open(t, filepath.Join(t.TempDir(), "trail.db"))
	})
}

// newDurable is a fresh database file, as the durability and tamper tests
// need it.
func newDurable(t *testing.T) storetest.Durable {
	path := filepath.Join(t.TempDir(), "trail.db")
	return storetest.Durable{
		Open: func(t *testing.T, s *tlog.Signer) (trail.Store, error) {
			return sqlite.Open(context.Background(), path, sqlite.Options{Validator: storetest.Validator(), Signer: s})
		},
		Exec:   func(ctx context.Context, stmt string) error { return rawExec(t, path, stmt) },
		Tamper: tamperer{path},
	}
}

func TestDurable(t *testing.T) { storetest.RunDurable(t, newDurable) }

func TestTamper(t *testing.T) { storetest.RunTamper(t, newDurable) }

// tamperer changes the database file the way someone with the file could:
// drop the triggers, change rows, put the triggers back.
type tamperer struct{ path string }

var _ storetest.Tamperer = tamperer{}

func (tm tamperer) do(ctx context.Context, tenant string, fn func(tx *sql.Tx, key func(seq uint64) int64) error) error {
	raw, err := sql.Open("sqlite", "file:"+tm.path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		return err
	}
	defer raw.Close()
	tx, err := raw.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
	if err != nil {
		return err
	}
	triggers := map[string]string{}
	for rows.Next() {
		var name, def string
		if err := rows.Scan(&name, &def); err != nil {
			return err
		}
		triggers[name] = def
	}
	rows.Close()
	for name := range triggers {
		if _, err := tx.ExecContext(ctx, "DROP TRIGGER "+name); err != nil {
			return err
		}
	}
	var tid int64
	if err := tx.QueryRowContext(ctx, "SELECT tid FROM tenants WHERE name = ?", tenant).Scan(&tid); err != nil {
		return err
	}
	if err := fn(tx, func(seq uint64) int64 { return tid<<40 | int64(seq) }); err != nil {
		return err
	}
	for _, def := range triggers {
		if _, err := tx.ExecContext(ctx, def); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func (tm tamperer) exec(ctx context.Context, tenant string, stmts func(key func(uint64) int64) [][]any) error {
	return tm.do(ctx, tenant, func(tx *sql.Tx, key func(uint64) int64) error {
		for _, st := range stmts(key) {
			res, err := tx.ExecContext(ctx, st[0].(string), st[1:]...)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 && !strings.HasPrefix(st[0].(string), "DELETE FROM targets") {
				return fmt.Errorf("%s changed no row", st[0])
			}
		}
		return nil
	})
}

func (tm tamperer) SetBody(ctx context.Context, tenant string, seq uint64, body []byte) error {
	return tm.exec(ctx, tenant, func(key func(uint64) int64) [][]any {
		return [][]any{{"UPDATE events SET body = ? WHERE key = ?", body, key(seq)}}
	})
}

func (tm tamperer) SetHashes(ctx context.Context, tenant string, seq uint64, hashes []byte) error {
	return tm.exec(ctx, tenant, func(key func(uint64) int64) [][]any {
		return [][]any{{"UPDATE events SET hashes = ? WHERE key = ?", hashes, key(seq)}}
	})
}

func (tm tamperer) Delete(ctx context.Context, tenant string, from, to uint64) error {
	if to == 0 {
		to = 1<<40 - 1
	}
	return tm.exec(ctx, tenant, func(key func(uint64) int64) [][]any {
		return [][]any{
			{"DELETE FROM targets WHERE key >= ? AND key < ?", key(from), key(to)},
			{"DELETE FROM events WHERE key >= ? AND key < ?", key(from), key(to)},
		}
	})
}

func (tm tamperer) Insert(ctx context.Context, tenant string, seq uint64, body, hashes []byte) error {
	ev, err := trail.UnmarshalCanonical(body)
	if err != nil {
		return err
	}
	id, ok := trail.ParseID(ev.ID)
	if !ok {
		return fmt.Errorf("id %q", ev.ID)
	}
	return tm.exec(ctx, tenant, func(key func(uint64) int64) [][]any {
		return [][]any{{`INSERT INTO events (key, id, recorded_at, occurred_at, action, category, outcome, actor_id, actor_type,
			organization, workspace, team, correlation_id, body, hashes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			key(seq), id[:], ev.RecordedAt.UnixNano(), ev.OccurredAt.UnixNano(), ev.Action, ev.Category, string(ev.Outcome),
			ev.Actor.ID, string(ev.Actor.Type), ev.Scope.Organization, ev.Scope.Workspace, ev.Scope.Team, ev.CorrelationID, body, hashes}}
	})
}

func (tm tamperer) Swap(ctx context.Context, tenant string, a, b uint64) error {
	return tm.exec(ctx, tenant, func(key func(uint64) int64) [][]any {
		var out [][]any
		for _, table := range []string{"events", "targets"} {
			out = append(out,
				[]any{"UPDATE " + table + " SET key = -1 WHERE key = ?", key(a)},
				[]any{"UPDATE " + table + " SET key = ? WHERE key = ?", key(a), key(b)},
				[]any{"UPDATE " + table + " SET key = ? WHERE key = -1", key(b)})
		}
		return out
	})
}

func (tm tamperer) SetCheckpoint(ctx context.Context, tenant string, size uint64, note []byte) error {
	return tm.do(ctx, tenant, func(tx *sql.Tx, key func(uint64) int64) error {
		_, err := tx.ExecContext(ctx, "UPDATE checkpoints SET note = ? WHERE tid = ? AND size = ?", note, key(0)>>40, size)
		return err
	})
}

func (tm tamperer) SetColumn(ctx context.Context, tenant string, seq uint64, column, value string) error {
	return tm.exec(ctx, tenant, func(key func(uint64) int64) [][]any {
		return [][]any{{"UPDATE events SET " + column + " = ? WHERE key = ?", value, key(seq)}}
	})
}

func (tm tamperer) SetTargets(ctx context.Context, tenant string, seq uint64, targets []trail.Target) error {
	return tm.exec(ctx, tenant, func(key func(uint64) int64) [][]any {
		stmts := [][]any{{"DELETE FROM targets WHERE key = ?", key(seq)}}
		for _, tg := range targets {
			stmts = append(stmts, []any{"INSERT INTO targets (id, key, type) VALUES (?, ?, ?)", tg.ID, key(seq), tg.Type})
		}
		return stmts
	})
}

func (tm tamperer) Rollback(ctx context.Context, tenant string, size uint64, head, keys bool) error {
	return tm.exec(ctx, tenant, func(key func(uint64) int64) [][]any {
		tid := key(0) >> 40
		stmts := [][]any{
			{"DELETE FROM targets WHERE key > ? AND key <= ?", key(size), key(1<<40 - 1)},
			{"DELETE FROM events WHERE key > ? AND key <= ?", key(size), key(1<<40 - 1)},
			{"DELETE FROM checkpoints WHERE tid = ? AND size > ?", tid, size},
		}
		if head {
			stmts = append(stmts, []any{"UPDATE tenants SET size = ? WHERE tid = ?", size, tid})
		}
		if keys {
			stmts = append(stmts, []any{"DELETE FROM idempotency WHERE tid = ? AND first_seq + n - 1 > ?", tid, size})
		}
		return stmts
	})
}

// rawExec runs stmt on the database file directly, bypassing the store.
func rawExec(t *testing.T, path, stmt string) error {
	t.Helper()
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_, err = raw.Exec(stmt)
	return err
}

func TestRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trail.db")
	open(t, path).Close()
	if err := rawExec(t, path, "PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	_, err := sqlite.Open(context.Background(), path, sqlite.Options{Validator: storetest.Validator()})
	if err == nil || !strings.Contains(err.Error(), "schema version 99 is newer") {
		t.Fatalf("Open of a newer database = %v, want a refusal naming the version", err)
	}
}

func TestOpenNeedsValidator(t *testing.T) {
	if _, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "x.db"), sqlite.Options{}); err == nil {
		t.Fatal("Open with no validator succeeded")
	}
}

func TestKeys(t *testing.T) {
	// Key writes work on a DB opened without a signer: they are not events.
	storetest.RunKeys(t, func(t *testing.T) storetest.KeyStore {
		db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "trail.db"), sqlite.Options{Validator: storetest.Validator()})
		if err != nil {
			t.Fatal(err)
		}
		return db
	})
	storetest.RunKeysDurable(t, newDurable)

	// INSERT OR REPLACE would delete the row without firing its DELETE
	// trigger; the database refuses it before it gets there.
	t.Run("RefusesReplace", func(t *testing.T) {
		ctx := context.Background()
		path := filepath.Join(t.TempDir(), "trail.db")
		db := open(t, path)
		defer db.Close()
		_, k, err := trail.NewAPIKey("acme", "", []trail.KeyScope{trail.ScopeRead}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := db.CreateKey(ctx, k); err != nil {
			t.Fatal(err)
		}
		if err := db.SaveAction(ctx, "acme", &trail.Action{Name: "badge_scanned", Category: "physical", Outcome: trail.OutcomeInfo}); err != nil {
			t.Fatal(err)
		}
		for _, stmt := range []string{
			"INSERT OR REPLACE INTO api_keys (id, tenant, name, scopes, hash, created_at) VALUES ('" + k.ID + "', 'evil', '', 'admin', x'00', 1)",
			"REPLACE INTO api_keys (id, tenant, name, scopes, hash, created_at) VALUES ('" + k.ID + "', 'evil', '', 'admin', x'00', 1)",
			"UPDATE OR REPLACE api_keys SET revoked_at = 1, hash = x'00'",
			"INSERT OR REPLACE INTO tenant_actions (tenant, name, definition, saved_at) VALUES ('acme', 'badge_scanned', x'7b7d', 1)",
		} {
			if err := rawExec(t, path, stmt); err == nil {
				t.Errorf("the database ran %q", stmt)
			}
		}
		if got, err := db.Key(ctx, k.ID); err != nil || got.Tenant != "acme" || string(got.Hash) != string(k.Hash) || got.Revoked() {
			t.Errorf("key after refused replacements: %+v, %v", got, err)
		}
	})

	// Key writes take SQLite's write lock beside the writer connection's
	// group commits: both go on, neither fails.
	t.Run("BesideAppends", func(t *testing.T) {
		ctx := context.Background()
		db := open(t, filepath.Join(t.TempDir(), "trail.db"))
		defer db.Close()
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Go(func() {
				for range 50 {
					if _, err := db.Append(ctx, "acme", []*trail.Event{storetest.Login("u-1")}, trail.AppendOptions{}); err != nil {
						t.Errorf("Append: %v", err)
						return
					}
				}
			})
			wg.Go(func() {
				for j := range 25 {
					_, k, err := trail.NewAPIKey("acme", "", []trail.KeyScope{trail.ScopeRead}, time.Now())
					if err == nil {
						err = db.CreateKey(ctx, k)
					}
					if err == nil && j%2 == 0 {
						err = db.RevokeKey(ctx, k.ID, time.Now())
					}
					if err == nil && j == 0 {
						err = db.SaveAction(ctx, "acme", &trail.Action{Name: fmt.Sprintf("custom_%d", i), Category: "custom", Outcome: trail.OutcomeInfo})
					}
					if err != nil {
						t.Errorf("key write: %v", err)
						return
					}
				}
			})
		}
		wg.Wait()
		if n, err := db.Count(ctx, trail.Query{Tenant: "acme"}); err != nil || n != 200 {
			t.Errorf("Count = %d, %v; want 200", n, err)
		}
		if ks, err := db.Keys(ctx, "acme"); err != nil || len(ks) != 100 {
			t.Errorf("Keys lists %d keys, %v; want 100", len(ks), err)
		}
	})
}

// TestManyTargets appends a batch whose targets rows need more bound
// parameters than one SQLite statement takes: they are written in chunks,
// and every one can be queried.
func TestManyTargets(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "trail.db"))
	defer db.Close()
	batch := make([]*trail.Event, 1000)
	for i := range batch {
		ev := storetest.Login(fmt.Sprintf("u-%d", i))
		ev.Targets = nil
		for j := range 16 {
			ev.Targets = append(ev.Targets, trail.Target{Type: "doc", ID: fmt.Sprintf("d-%d-%d", i, j)})
		}
		batch[i] = ev
	}
	if _, err := db.Append(context.Background(), "acme", batch, trail.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	n, err := db.Count(context.Background(), trail.Query{Tenant: "acme", TargetID: "d-999-15"})
	if err != nil || n != 1 {
		t.Fatalf("the last target: %d, %v", n, err)
	}
}

// TestSchemaVersion1: a database made by the first release migrates when
// it holds no events, and is refused with a clear message when it does
// (its events have no tree hashes, which cannot be added after the fact).
func TestSchemaVersion1(t *testing.T) {
	for _, withEvents := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "trail.db")
		stmts := []string{sqlite.Migration(0), "PRAGMA user_version = 1"}
		if withEvents {
			stmts = append(stmts, "INSERT INTO tenants (tid, name) VALUES (1, 'acme')",
				`INSERT INTO events VALUES (1099511627777, X'00', 0, 0, 'user_logout', 'authentication', 'success', 'u-1', 'user', '', '', '', '', X'7b7d')`)
		}
		for _, stmt := range stmts {
			if err := rawExec(t, path, stmt); err != nil {
				t.Fatal(err)
			}
		}
		db, err := sqlite.Open(context.Background(), path, sqlite.Options{Validator: storetest.Validator(), Signer: storetest.Signer()})
		switch {
		case !withEvents && err != nil:
			t.Errorf("an empty version-1 database: %v", err)
		case withEvents && (err == nil || !strings.Contains(err.Error(), "schema version 1 holds events")):
			t.Errorf("a version-1 database with events: %v; want a refusal saying why", err)
		}
		if err == nil {
			if _, err := db.Append(context.Background(), "acme", []*trail.Event{storetest.Login("u-1")}, trail.AppendOptions{}); err != nil {
				t.Errorf("append after migrating: %v", err)
			}
			db.Close()
		}
	}
}

func TestCursors(t *testing.T) {
	storetest.RunCursors(t, func(t *testing.T) trail.CursorStore {
		return open(t, filepath.Join(t.TempDir(), "trail.db"))
	})
}

func TestRules(t *testing.T) {
	storetest.RunRules(t, func(t *testing.T) trail.RuleStore {
		return open(t, filepath.Join(t.TempDir(), "trail.db"))
	})
	storetest.RunRulesDurable(t, newDurable)
}

func TestSinks(t *testing.T) {
	storetest.RunSinks(t, func(t *testing.T) trail.SinkStore {
		return open(t, filepath.Join(t.TempDir(), "trail.db"))
	})
	storetest.RunSinksDurable(t, newDurable)
}

// TestActionMigration: migration 6 gives the custom actions saved when one
// catalog served every tenant to the tenants whose logs registered or used
// them.
func TestActionMigration(t *testing.T) {
	storetest.RunActionMigration(t, newDurable(t), storetest.Legacy{
		Undo: sqlitetest.UndoToVersion5,
		Save: func(name string, def []byte) string {
			return fmt.Sprintf("INSERT INTO custom_actions (name, definition, saved_at) VALUES ('%s', X'%x', 1)", name, def)
		},
	})
}

func TestSessions(t *testing.T) {
	storetest.RunSessions(t, func(t *testing.T) trail.SessionStore {
		return open(t, filepath.Join(t.TempDir(), "trail.db"))
	})
	storetest.RunSessionsDurable(t, newDurable)
}

func TestCosignatures(t *testing.T) {
	storetest.RunCosignatures(t, func(t *testing.T) trail.Store {
		return open(t, filepath.Join(t.TempDir(), "trail.db"))
	})
	storetest.RunCosignaturesDurable(t, newDurable)
}

func TestElector(t *testing.T) {
	const retry = 20 * time.Millisecond
	storetest.RunElector(t, func(t *testing.T) (a, b trail.Elector) {
		// Two opens of one file: two processes on one data directory.
		path := filepath.Join(t.TempDir(), "trail.db")
		return open(t, path).Elector(retry, nil), open(t, path).Elector(retry, nil)
	}, time.Second)
}
