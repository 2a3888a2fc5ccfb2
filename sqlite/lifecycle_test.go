package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/ledger"
	"github.com/trailaudit/trail/storetest"
	"github.com/trailaudit/trail/tlog"
)

func TestLifecycle(t *testing.T) {
	storetest.RunLifecycle(t, func(t *testing.T) trail.Store {
		return open(t, filepath.Join(t.TempDir(), "trail.db"))
	})
	storetest.RunLifecycleDurable(t, newDurable)
}

// TestPruneTriggers: with the triggers on, the database lets a row's
// payload go only as Prune does it, to an audit_log_pruned event that is
// the tenant's latest; a targets row only once its event is pruned.
func TestPruneTriggers(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "trail.db")
	db := open(t, path)
	defer db.Close()
	for range 4 {
		if _, err := db.Append(ctx, "acme", []*trail.Event{storetest.Login("u-1")}, trail.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.AppendOwn(ctx, "acme", ledger.Prune([]uint64{1}, storetest.PruneRecord("test", 1))); err != nil {
		t.Fatal(err)
	}
	key := func(seq uint64) int64 { return 1<<40 | int64(seq) } // acme is tenant 1
	var targets int
	if err := rawQuery(t, path, fmt.Sprintf("SELECT count(*) FROM targets WHERE key = %d", key(1)), &targets); err != nil || targets != 0 {
		t.Errorf("the pruned event keeps %d targets rows (%v), want none", targets, err)
	}
	clear := func(seq, by uint64) string {
		return fmt.Sprintf("UPDATE events SET body = X'', actor_id = '', organization = '', workspace = '', team = '', correlation_id = '', pruned = %d WHERE key = %d", by, key(seq))
	}
	for _, stmt := range []string{
		clear(2, 3), // 3 is no record
		clear(2, 6), // no event at 6
		clear(5, 5), // the record itself
		clear(1, 5), // pruned already
		fmt.Sprintf("UPDATE events SET body = X'', pruned = 5 WHERE key = %d", key(2)), // actor_id kept
		fmt.Sprintf("UPDATE events SET body = X'00', actor_id = '', organization = '', workspace = '', team = '', correlation_id = '', pruned = 5 WHERE key = %d", key(2)),
		fmt.Sprintf("UPDATE events SET body = X'', actor_id = '', organization = '', workspace = '', team = '', correlation_id = '', pruned = 5, hashes = X'00' WHERE key = %d", key(2)),
		fmt.Sprintf("DELETE FROM targets WHERE key = %d", key(2)), // its event stands
	} {
		if err := rawExec(t, path, stmt); err == nil {
			t.Errorf("the database ran %q", stmt)
		}
	}
	// While the record is the tenant's latest event the trigger cannot
	// tell a raw prune from the store's; Verify can: the record does not
	// name seq 2.
	if err := rawExec(t, path, clear(2, 5)); err != nil {
		t.Fatalf("a prune naming the latest record: %v", err)
	}
	ranges, err := tlog.PrunedRanges(ctx, db, "acme")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := tlog.Verify(ctx, db, "acme", storetest.Signer().Verifier(), tlog.VerifyOptions{Pruned: ranges})
	if err != nil || rep.OK() || rep.First().Seq != 2 || rep.First().Kind != tlog.Changed {
		t.Errorf("Verify after a raw prune of seq 2: %v %+v; want changed at 2", err, rep)
	}
	// Once another event follows the record, no raw prune passes.
	if _, err := db.Append(ctx, "acme", []*trail.Event{storetest.Login("u-2")}, trail.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := rawExec(t, path, clear(3, 5)); err == nil {
		t.Error("the database let a row be pruned to a record that is no longer the latest event")
	}
}

func rawQuery(t *testing.T, path, q string, dst ...any) error {
	t.Helper()
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	return raw.QueryRow(q).Scan(dst...)
}
