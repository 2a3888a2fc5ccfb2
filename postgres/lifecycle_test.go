package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/ledger"
	"github.com/trailaudit/trail/internal/pgtest"
	"github.com/trailaudit/trail/postgres"
	"github.com/trailaudit/trail/storetest"
	"github.com/trailaudit/trail/tlog"
)

func TestLifecycle(t *testing.T) {
	storetest.RunLifecycle(t, func(t *testing.T) trail.Store {
		return open(t, pgtest.NewSchema(t), postgres.Options{})
	})
	storetest.RunLifecycleDurable(t, durable)
}

// TestLifecycleCopy runs the suite again with every record written by COPY.
func TestLifecycleCopy(t *testing.T) {
	postgres.SetCopyMin(t, 1)
	storetest.RunLifecycle(t, func(t *testing.T) trail.Store {
		return open(t, pgtest.NewSchema(t), postgres.Options{})
	})
}

// TestPruneTriggers: with the triggers on, the database lets a row's
// payload go only as Prune does it, to an audit_log_pruned event that is
// the tenant's head; an event_targets row only once its event is pruned.
func TestPruneTriggers(t *testing.T) {
	ctx := context.Background()
	schema := pgtest.NewSchema(t)
	db := open(t, schema, postgres.Options{})
	for range 4 {
		if _, err := db.Append(ctx, "acme", []*trail.Event{storetest.Login("u-1")}, trail.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.AppendOwn(ctx, "acme", ledger.Prune([]uint64{1}, storetest.PruneRecord("test", 1))); err != nil {
		t.Fatal(err)
	}
	admin := connect(t, schema, nil)
	var targets int
	if err := admin.QueryRow(ctx, "SELECT count(*) FROM event_targets WHERE tenant = 'acme' AND seq = 1").Scan(&targets); err != nil || targets != 0 {
		t.Errorf("the pruned event keeps %d event_targets rows (%v), want none", targets, err)
	}
	var bodyNull bool
	if err := admin.QueryRow(ctx, "SELECT body IS NULL FROM events WHERE tenant = 'acme' AND seq = 1").Scan(&bodyNull); err != nil || !bodyNull {
		t.Errorf("the pruned event's body is NULL: %v, %v", bodyNull, err)
	}
	const clear = "UPDATE events SET body = NULL, actor_id = '', organization = '', workspace = '', team = '', correlation_id = '', pruned = $2 WHERE tenant = 'acme' AND seq = $1"
	for _, st := range [][]any{
		{clear, 2, 3}, // 3 is no record
		{clear, 2, 6}, // no event at 6
		{clear, 5, 5}, // the record itself
		{clear, 1, 5}, // pruned already
		{"UPDATE events SET body = NULL, pruned = 5 WHERE tenant = 'acme' AND seq = $1", 2}, // actor_id kept
		{"UPDATE events SET body = '', actor_id = '', organization = '', workspace = '', team = '', correlation_id = '', pruned = 5 WHERE tenant = 'acme' AND seq = $1", 2},
		{"UPDATE events SET body = NULL, actor_id = '', organization = '', workspace = '', team = '', correlation_id = '', pruned = 5, hashes = '' WHERE tenant = 'acme' AND seq = $1", 2},
		{"DELETE FROM event_targets WHERE tenant = 'acme' AND seq = $1", 2}, // its event stands
		{"UPDATE event_targets SET id = 'x' WHERE tenant = 'acme' AND seq = $1", 1},
		{"TRUNCATE event_targets"},
		{"TRUNCATE holds"},
	} {
		if _, err := admin.Exec(ctx, st[0].(string), st[1:]...); err == nil {
			t.Errorf("the database ran %q %v", st[0], st[1:])
		}
	}
	// While the record is the tenant's head the trigger cannot tell a raw
	// prune from the store's; Verify can: the record does not name seq 2.
	if _, err := admin.Exec(ctx, clear, 2, 5); err != nil {
		t.Fatalf("a prune naming the head record: %v", err)
	}
	ranges, err := tlog.PrunedRanges(ctx, db, "acme")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := tlog.Verify(ctx, db, "acme", storetest.Signer().Verifier(), tlog.VerifyOptions{Pruned: ranges})
	if err != nil || rep.OK() || rep.First().Seq != 2 || rep.First().Kind != tlog.Changed {
		t.Errorf("Verify after a raw prune of seq 2: %v %+v; want changed at 2", err, rep)
	}
	if _, err := db.Append(ctx, "acme", []*trail.Event{storetest.Login("u-2")}, trail.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, clear, 3, 5); err == nil {
		t.Error("the database let a row be pruned to a record that is no longer the head")
	}
}

// TestPruneAsAppRole: trail_app may prune and keep holds, and still
// nothing else.
func TestPruneAsAppRole(t *testing.T) {
	ctx := context.Background()
	schema := pgtest.NewSchema(t)
	owner := open(t, schema, postgres.Options{})
	if _, err := owner.Append(ctx, "acme", []*trail.Event{storetest.Login("u-1"), storetest.Login("u-2"), storetest.Login("u-3")}, trail.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	app, conn := openAsApp(t, schema)
	if _, err := app.AppendOwn(ctx, "acme", ledger.Prune([]uint64{1, 2}, storetest.PruneRecord("test", 1, 2))); err != nil {
		t.Fatalf("Prune as trail_app: %v", err)
	}
	if err := app.PlaceHold(ctx, &trail.Hold{ID: "h-1", Tenant: "acme", Reason: "r"}); err != nil {
		t.Fatalf("PlaceHold as trail_app: %v", err)
	}
	if err := app.ReleaseHold(ctx, "acme", "h-1", time.Now()); err != nil {
		t.Fatalf("ReleaseHold as trail_app: %v", err)
	}
	for _, stmt := range []string{
		"UPDATE events SET action = 'user_logout'",
		"UPDATE events SET actor_id = ''",
		"UPDATE events SET body = NULL WHERE seq = 3",
		"UPDATE events SET pruned = NULL",
		"DELETE FROM events",
		"DELETE FROM event_targets",
		"TRUNCATE event_targets",
		"UPDATE holds SET reason = 'x'",
		"UPDATE holds SET released_at = 0",
		"DELETE FROM holds",
		"ALTER TABLE events DISABLE TRIGGER events_prune_only",
		"DROP TRIGGER events_prune_only ON events",
	} {
		_, err := conn.Exec(ctx, stmt)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "42501" {
			t.Errorf("trail_app ran %q: %v; want permission denied", stmt, err)
		}
	}
	ranges, err := tlog.PrunedRanges(ctx, owner, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := tlog.Verify(ctx, owner, "acme", storetest.Signer().Verifier(), tlog.VerifyOptions{Pruned: ranges}); err != nil || !rep.OK() || rep.Size != 4 {
		t.Errorf("Verify: %v %+v; want an intact log of size 4", err, rep)
	}
}
