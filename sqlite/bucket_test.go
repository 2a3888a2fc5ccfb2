package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/internal/sample"
	"github.com/trailaudit/trail/storetest"
)

// The actor and workspace indexes lead with the key's bucket (schema.go,
// bucketBits), and a query on either walks the buckets of its range. These
// tests fill a log over many buckets and check every walk against the log
// itself, read in key order and filtered here.

// rebucket makes the bucketed indexes of the database at path buckets of
// bits, as a database of another bucket size would have them.
func rebucket(t *testing.T, path string, bits int) {
	t.Helper()
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, stmt := range []string{"DROP INDEX events_actor", "DROP INDEX events_workspace_action",
		fmt.Sprintf("CREATE INDEX events_actor ON events (key>>%d, actor_id)", bits),
		fmt.Sprintf("CREATE INDEX events_workspace_action ON events (key>>%d, workspace, action)", bits),
		"DROP INDEX targets_id", fmt.Sprintf("CREATE INDEX targets_id ON targets (key>>%d, id, key)", bits)} {
		if _, err := raw.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
}

// bucketed opens a store whose buckets are 2^bits seqs, holding n sample
// events from few actors and workspaces, recorded 1 ms apart, and returns
// it with all its events in seq order.
func bucketed(t *testing.T, bits, n int) (*DB, []*trail.Event) {
	t.Helper()
	var mu sync.Mutex
	clock := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	o := Options{Validator: storetest.Validator(), Signer: storetest.Signer(),
		Now: func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			clock = clock.Add(time.Millisecond)
			return clock
		}}
	path := filepath.Join(t.TempDir(), "trail.db")
	if bits != bucketBits {
		db, err := Open(context.Background(), path, o)
		if err != nil {
			t.Fatal(err)
		}
		db.Close()
		rebucket(t, path, bits)
	}
	db, err := Open(context.Background(), path, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if db.bucketBits != bits {
		t.Fatalf("the store reads buckets of %d bits, its indexes have %d", db.bucketBits, bits)
	}
	s := sample.New(3)
	s.Actors, s.Workspaces, s.Entities = 30, 4, 40
	for i := 0; i < n; i += 100 {
		if _, err := db.Append(context.Background(), "acme", s.Batch(min(100, n-i), clock), trail.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var all []*trail.Event
	if err := db.Scan(context.Background(), "acme", 1, 0, func(ev *trail.Event) error {
		all = append(all, ev)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(all) != n {
		t.Fatalf("scanned %d events, appended %d", len(all), n)
	}
	return db, all
}

// matches is what q selects of an event, for the filters these tests use.
func matches(q trail.Query, ev *trail.Event) bool {
	return (q.ActorID == "" || ev.Actor.ID == q.ActorID) &&
		(q.Workspace == "" || ev.Scope.Workspace == q.Workspace) &&
		(len(q.Actions) == 0 || slices.Contains(q.Actions, ev.Action)) &&
		(q.TargetID == "" && q.TargetType == "" || slices.ContainsFunc(ev.Targets, func(t trail.Target) bool {
			return (q.TargetID == "" || t.ID == q.TargetID) && (q.TargetType == "" || t.Type == q.TargetType)
		})) &&
		(q.RecordedAfter.IsZero() || !ev.RecordedAt.Before(q.RecordedAfter)) &&
		(q.RecordedBefore.IsZero() || ev.RecordedAt.Before(q.RecordedBefore))
}

func TestBucketWalk(t *testing.T) {
	ctx := context.Background()
	// Buckets of 16 seqs: 75 of them, an actor's events in about 40.
	db, all := bucketed(t, 4, 1200)
	// A window from inside one bucket to inside another.
	from, to := all[101].RecordedAt, all[len(all)-203].RecordedAt
	actions := []string{all[0].Action, all[1].Action}
	for _, tc := range []struct {
		name string
		q    trail.Query
	}{
		{"actor", trail.Query{ActorID: "u-7"}},
		{"actor in a window", trail.Query{ActorID: "u-3", RecordedAfter: from, RecordedBefore: to}},
		{"workspace and action", trail.Query{Workspace: "ws-1", Actions: actions[:1]}},
		{"workspace alone", trail.Query{Workspace: "ws-2"}},
		{"workspace and two actions", trail.Query{Workspace: "ws-3", Actions: actions}},
		{"actor and workspace", trail.Query{ActorID: "u-11", Workspace: "ws-0"}},
		{"actor and workspace in a window", trail.Query{ActorID: "u-12", Workspace: "ws-1", RecordedAfter: from, RecordedBefore: to}},
		{"no such actor", trail.Query{ActorID: "u-999"}},
		{"target", trail.Query{TargetID: "ws-2"}},
		{"target of a type", trail.Query{TargetID: "e-7", TargetType: "entry"}},
		{"target in a window", trail.Query{TargetID: "e-9", RecordedAfter: from, RecordedBefore: to}},
		{"target and actor", trail.Query{TargetID: "ws-1", ActorID: "u-5"}},
		{"target type alone", trail.Query{TargetType: "entry", RecordedAfter: from}},
		{"no such target", trail.Query{TargetID: "e-999"}},
	} {
		for _, desc := range []bool{false, true} {
			name := tc.name
			if desc {
				name += ", newest first"
			}
			t.Run(name, func(t *testing.T) {
				q := tc.q
				q.Tenant, q.Descending = "acme", desc
				var want []uint64
				for _, ev := range all {
					if matches(q, ev) {
						want = append(want, ev.Seq)
					}
				}
				if desc {
					slices.Reverse(want)
				}
				// Pages of 7: many cross a bucket's end, some buckets
				// hold none of the events.
				var got []uint64
				q.Limit = 7
				for pages := 0; ; pages++ {
					p, err := db.Query(ctx, q)
					if err != nil {
						t.Fatal(err)
					}
					for _, ev := range p.Events {
						got = append(got, ev.Seq)
					}
					if p.Next == "" {
						break
					}
					if pages > len(all) {
						t.Fatal("the pages do not end")
					}
					q.Cursor = p.Next
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("seqs the pages hold (-the log filtered, +the query):\n%s", diff)
				}
				q.Cursor = ""
				n, err := db.Count(ctx, q)
				if err != nil || n != int64(len(want)) {
					t.Errorf("Count = %d, %v; the log holds %d", n, err, len(want))
				}
			})
		}
	}
}

// TestBucketedPlans checks that SQLite serves a bucket walk from the
// bucketed index, seeking each bucket and reading its entries in order:
// no scan of the range and no sort, whatever the page's direction.
func TestBucketedPlans(t *testing.T) {
	ctx := context.Background()
	db, _ := bucketed(t, bucketBits, 10) // the layout migration 12 makes
	for _, tc := range []struct {
		q     trail.Query
		index string
	}{
		{trail.Query{ActorID: "u-1"}, "events_actor"},
		{trail.Query{ActorID: "u-1", RecordedAfter: time.Date(2026, 12, 7, 9, 0, 10, 0, time.UTC)}, "events_actor"},
		{trail.Query{Workspace: "ws-1", Actions: []string{catalog.UserLoginSuccess}}, "events_workspace_action"},
		{trail.Query{TargetID: "ws-1"}, "targets_id"},
		{trail.Query{TargetID: "e-1", TargetType: "entry"}, "targets_id"},
	} {
		for _, desc := range []bool{false, true} {
			q := tc.q
			q.Tenant, q.Descending = "acme", desc
			tx, err := db.r.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			p, err := planQuery(ctx, tx, &q, db.bucketBits)
			if err != nil {
				t.Fatal(err)
			}
			if p.buckets != bucketBits {
				t.Fatalf("%+v: no bucket walk planned", q)
			}
			stmt, args := p.page(desc) // as Query reads it
			rows, err := tx.QueryContext(ctx, "EXPLAIN QUERY PLAN "+stmt, append(args, 101)...)
			if err != nil {
				t.Fatal(err)
			}
			var plan []string
			for rows.Next() {
				var id, parent, unused int
				var detail string
				if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, detail)
			}
			rows.Close()
			tx.Rollback()
			all := strings.Join(plan, "\n")
			if !strings.Contains(all, "USING INDEX "+tc.index+" (<expr>=?") && !strings.Contains(all, "USING COVERING INDEX "+tc.index+" (<expr>=?") ||
				strings.Contains(all, "TEMP B-TREE") {
				t.Errorf("%+v: SQLite's plan is not a walk of %s's buckets in order:\n%s", q, tc.index, all)
			}
		}
	}
}

// TestBucketsRefused: a database whose actor and workspace indexes are not
// bucketed alike is refused at open, naming the index, rather than read
// with plans that would scan it.
func TestBucketsRefused(t *testing.T) {
	for _, tc := range []struct {
		name, stmt, index string
	}{
		{"actor index by actor alone", "DROP INDEX events_actor; CREATE INDEX events_actor ON events (actor_id)", "events_actor"},
		{"workspace index by workspace first", "DROP INDEX events_workspace_action; CREATE INDEX events_workspace_action ON events (workspace, action)", "events_workspace_action"},
		{"buckets of two sizes", "DROP INDEX events_workspace_action; CREATE INDEX events_workspace_action ON events (key>>10, workspace, action)", "events_workspace_action"},
		{"targets by id alone", "DROP INDEX targets_id; CREATE INDEX targets_id ON targets (id, key)", "targets_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "trail.db")
			db, err := Open(context.Background(), path, Options{Validator: storetest.Validator(), Signer: storetest.Signer()})
			if err != nil {
				t.Fatal(err)
			}
			db.Close()
			raw, err := sql.Open("sqlite", "file:"+path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := raw.Exec(tc.stmt); err != nil {
				t.Fatal(err)
			}
			raw.Close()
			db, err = Open(context.Background(), path, Options{Validator: storetest.Validator(), Signer: storetest.Signer()})
			if err == nil {
				db.Close()
				t.Fatal("opened")
			}
			if !strings.Contains(err.Error(), "index "+tc.index+" is not bucketed") {
				t.Errorf("error %q does not name index %s", err, tc.index)
			}
		})
	}
}
