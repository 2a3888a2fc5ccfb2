package sqlite

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/sample"
	"github.com/trailaudit/trail/storetest"
	"github.com/trailaudit/trail/tlog"
)

// TestInsertRuns appends batches whose rows take every kind of run of
// the multi-row INSERTs (insert): one row, runs of falling powers of two,
// a full run of rowsPerInsert, and several, and checks that every row
// and targets row is stored once and the log verifies.
func TestInsertRuns(t *testing.T) {
	// SQLite binds at most 32766 parameters to a statement.
	for _, m := range []multiInsert{eventsInsert, targetsInsert} {
		if rowsPerInsert*m.cols > 32766 {
			t.Fatalf("%s: %d rows of %d columns bind more parameters than SQLite takes", m.head, rowsPerInsert, m.cols)
		}
	}
	ctx := context.Background()
	for _, n := range []int{1, 3, rowsPerInsert - 1, rowsPerInsert, rowsPerInsert + 1, 2*rowsPerInsert + 5} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			db, err := Open(ctx, filepath.Join(t.TempDir(), "trail.db"), Options{Validator: storetest.Validator(), Signer: storetest.Signer()})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			evs := sample.New(uint64(n)).Batch(n, time.Now())
			targets := 0
			for _, ev := range evs {
				targets += len(ev.Targets)
			}
			if _, err := db.Append(ctx, "acme", evs, trail.AppendOptions{}); err != nil {
				t.Fatal(err)
			}
			var rows, trows int
			if err := db.r.QueryRowContext(ctx, "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM targets)").Scan(&rows, &trows); err != nil {
				t.Fatal(err)
			}
			if rows != n || trows != targets {
				t.Errorf("stored %d events and %d targets rows, want %d and %d", rows, trows, n, targets)
			}
			rep, err := tlog.Verify(ctx, db, "acme", storetest.Signer().Verifier(), tlog.VerifyOptions{})
			if err != nil || !rep.OK() || rep.Leaves != uint64(n) {
				t.Errorf("verify: %v, %+v; want %d leaves, sound", err, rep, n)
			}
		})
	}
}
