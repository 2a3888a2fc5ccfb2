package sqlite

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/storetest"
)

// Group commit, made deterministic: MaxWait is long, so a group commits only
// when Close (or a full group) ends it, and the tests see which batches
// share it.

type outcome struct {
	res *trail.AppendResult
	err error
}

func openGroup(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "trail.db"),
		Options{Validator: storetest.Validator(), Signer: storetest.Signer(), MaxWait: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// appendAsync appends in a goroutine and returns once the batch has been
// written into the open group, or has failed.
func appendAsync(t *testing.T, db *DB, ev *trail.Event, key string) <-chan outcome {
	t.Helper()
	return appendAsyncTo(t, db, "acme", ev, key)
}

// appendAsyncTo is appendAsync to tenant's log.
func appendAsyncTo(t *testing.T, db *DB, tenant string, ev *trail.Event, key string) <-chan outcome {
	t.Helper()
	before := db.groupEvents()
	out := make(chan outcome, 1)
	go func() {
		res, err := db.Append(context.Background(), tenant, []*trail.Event{ev}, trail.AppendOptions{IdempotencyKey: key})
		out <- outcome{res, err}
	}()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if db.groupEvents() > before || len(out) > 0 {
			return out
		}
	}
	t.Fatal("the append neither joined the group nor failed")
	return nil
}

// groupEvents is how many events the open group holds.
func (db *DB) groupEvents() int {
	db.turn <- struct{}{}
	defer func() { <-db.turn }()
	if db.g == nil {
		return 0
	}
	return db.g.events
}

// commitNow commits the open group, as the committer would.
func (db *DB) commitNow() {
	db.turn <- struct{}{}
	defer func() { <-db.turn }()
	if db.g != nil {
		db.commitGroup()
	}
}

func wait(t *testing.T, c <-chan outcome) outcome {
	t.Helper()
	select {
	case o := <-c:
		return o
	case <-time.After(10 * time.Second):
		t.Fatal("the append did not return")
		return outcome{}
	}
}

func pending(t *testing.T, c <-chan outcome) {
	t.Helper()
	select {
	case o := <-c:
		t.Fatalf("the append returned (%v) before its group committed", o.err)
	default:
	}
}

// A batch refused inside a shared group is told at once; the batches around
// it commit together, with contiguous seqs.
func TestGroupRefusedBatchAlone(t *testing.T) {
	db := openGroup(t)
	a := appendAsync(t, db, storetest.Login("alice"), "k1")
	// The same key with another batch: refused (ECONFLICT) after reading
	// the first use, which is still only in the group.
	b := wait(t, appendAsync(t, db, storetest.Login("mallory"), "k1"))
	if trail.ErrorCode(b.err) != trail.ECONFLICT {
		t.Fatalf("reused key: err = %v, want ECONFLICT", b.err)
	}
	c := appendAsync(t, db, storetest.Login("carol"), "")
	pending(t, a)
	pending(t, c)
	if err := db.Close(); err != nil { // commits the group
		t.Fatal(err)
	}
	ra, rc := wait(t, a), wait(t, c)
	if ra.err != nil || rc.err != nil {
		t.Fatalf("group members: %v, %v; want both stored", ra.err, rc.err)
	}
	if sa, sc := ra.res.Events[0].Seq, rc.res.Events[0].Seq; sa != 1 || sc != 2 {
		t.Fatalf("seqs %d, %d; want 1, 2", sa, sc)
	}
}

// A failure of the store's inside a group (here a write the database
// refuses) fails every batch of the group, and none is stored.
func TestGroupStoreFailureFailsAll(t *testing.T) {
	db := openGroup(t)
	db.turn <- struct{}{}
	_, err := db.w.ExecContext(context.Background(),
		`CREATE TEMP TRIGGER boom BEFORE INSERT ON events WHEN NEW.actor_id = 'boom' BEGIN SELECT RAISE(ABORT, 'disk says no'); END`)
	<-db.turn
	if err != nil {
		t.Fatal(err)
	}
	a := appendAsync(t, db, storetest.Login("alice"), "")
	b := appendAsync(t, db, storetest.Login("boom"), "")
	pending(t, a)
	pending(t, b)
	db.commitNow()
	for name, c := range map[string]<-chan outcome{"alice": a, "boom": b} {
		if o := wait(t, c); trail.ErrorCode(o.err) != trail.EINTERNAL {
			t.Errorf("%s: err = %v, want EINTERNAL", name, o.err)
		}
	}
	// The next group starts from the head as it was.
	c := appendAsync(t, db, storetest.Login("carol"), "")
	db.commitNow()
	if o := wait(t, c); o.err != nil || o.res.Events[0].Seq != 1 {
		t.Fatalf("after the failed group: %v, want seq 1", o.err)
	}
}

// A group gathers while the one before it commits, continuing its heads:
// when that one fails, the group that continued a head of it fails too
// (its seqs and tree follow rows that were not stored), one that did not
// is stored, and the group after reads the heads from the database again.
func TestGroupContinuesCommittingGroup(t *testing.T) {
	for _, tc := range []struct {
		tenant string // of the batch in the second group
		stored bool
		seq    uint64 // the next event's seq in acme's log
	}{
		{tenant: "acme", stored: false, seq: 1},
		{tenant: "globex", stored: true, seq: 1},
	} {
		t.Run(tc.tenant, func(t *testing.T) {
			db := openGroup(t)
			a := appendAsync(t, db, storetest.Login("alice"), "")
			// The first group leaves the writer (as the committer takes
			// it) but is not done yet.
			db.turn <- struct{}{}
			first := db.detach()
			<-db.turn
			// The first group fails (as a write the disk refuses fails it).
			broken := trail.Errorf(trail.EINTERNAL, "sqlite: the disk says no")
			var b <-chan outcome
			if tc.stored {
				// A head not in the first group is read once that one is
				// done: meanwhile the batch holds the writer.
				first.broken = broken
				go db.end(first)
				b = appendAsyncTo(t, db, tc.tenant, storetest.Login("bob"), "")
			} else {
				b = appendAsyncTo(t, db, tc.tenant, storetest.Login("bob"), "")
				db.turn <- struct{}{}
				second := db.g
				<-db.turn
				if second.base != first || !second.useBase {
					t.Fatalf("second group: base %p (first %p), continued it: %v", second.base, first, second.useBase)
				}
				first.broken = broken
				db.end(first)
			}
			if o := wait(t, a); trail.ErrorCode(o.err) != trail.EINTERNAL {
				t.Fatalf("first group: err = %v, want EINTERNAL", o.err)
			}
			db.commitNow()
			ob := wait(t, b)
			if got := ob.err == nil; got != tc.stored {
				t.Fatalf("second group: err = %v, want stored %v", ob.err, tc.stored)
			}
			if ob.err != nil && (trail.ErrorCode(ob.err) != trail.EINTERNAL || !strings.Contains(ob.err.Error(), "disk says no")) {
				t.Fatalf("second group: err = %v, want the first group's failure", ob.err)
			}
			c := appendAsync(t, db, storetest.Login("carol"), "")
			db.commitNow()
			if o := wait(t, c); o.err != nil || o.res.Events[0].Seq != tc.seq {
				t.Fatalf("after both: %v, want seq %d", o.err, tc.seq)
			}
		})
	}
}
