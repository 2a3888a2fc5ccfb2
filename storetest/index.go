package storetest

import (
	"cmp"
	"context"
	"slices"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/ledger"
)

// scanIndex returns tenant's index rows from <= seq < to, each row's
// targets sorted (a store keeps them in no order).
func scanIndex(t *testing.T, s trail.Log, tenant string, from, to uint64) []trail.IndexRow {
	t.Helper()
	var out []trail.IndexRow
	err := s.ScanIndex(context.Background(), tenant, from, to, func(r trail.IndexRow) error {
		slices.SortFunc(r.Index.Targets, func(a, b trail.Target) int { return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(a.ID, b.ID)) })
		out = append(out, r)
		return nil
	})
	if err != nil {
		t.Fatalf("ScanIndex: %v", err)
	}
	return out
}

// testIndex: the index values a store keeps (Log.ScanIndex) are exactly
// what trail.IndexOf gives for each event it returned, a target named
// twice is one row, a pruned event keeps no more than pruning leaves, and
// the store's records of its size (Log.SizeRecords) say how long the log
// is.
func testIndex(t *testing.T, s trail.Store) {
	ctx := context.Background()
	ev := Login("u-1")
	ev.CorrelationID = "c-1"
	ev.Scope.Team = "t-1"
	ev.Targets = []trail.Target{{Type: "doc", ID: "d-1", Name: "Plan"}, {Type: "folder", ID: "f-1"}, {Type: "doc", ID: "d-1"}}
	stored := appendOK(t, s, "acme", ev, Login("u-2"))
	res, err := s.Append(ctx, "acme", []*trail.Event{Login("u-3"), Login("u-4")}, trail.AppendOptions{IdempotencyKey: "k-1"})
	if err != nil {
		t.Fatal(err)
	}
	stored = append(stored, res.Events...)
	appendOK(t, s, "globex", Login("g-1"))

	var want []trail.IndexRow
	for _, ev := range stored {
		r := trail.IndexRow{Seq: ev.Seq, Index: trail.IndexOf(ev)}
		slices.SortFunc(r.Index.Targets, func(a, b trail.Target) int { return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(a.ID, b.ID)) })
		want = append(want, r)
	}
	if diff := gocmp.Diff(want, scanIndex(t, s, "acme", 1, 0)); diff != "" {
		t.Errorf("ScanIndex (-IndexOf +stored):\n%s", diff)
	}
	if diff := gocmp.Diff(want[1:3], scanIndex(t, s, "acme", 2, 4)); diff != "" {
		t.Errorf("ScanIndex of seqs 2 and 3 (-IndexOf +stored):\n%s", diff)
	}
	if got := scanIndex(t, s, "initech", 1, 0); len(got) != 0 {
		t.Errorf("ScanIndex of a tenant with no events: %+v", got)
	}

	recs, err := s.SizeRecords(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	heads := 0
	for _, r := range recs {
		switch {
		case r.Head && r.Size == 4:
			heads++
		case r.Head || r.Size > 4:
			t.Errorf("size record %+v of a log of 4 events", r)
		}
	}
	if heads == 0 {
		t.Errorf("size records %+v: none is a head of size 4", recs)
	}
	if recs, err := s.SizeRecords(ctx, "initech"); err != nil || len(recs) != 0 {
		t.Errorf("size records of a tenant with no events: %+v, %v", recs, err)
	}

	w, ok := s.(ledger.Writer)
	if !ok {
		return
	}
	prune(t, w, "acme", 1)
	got := scanIndex(t, s, "acme", 1, 2)
	if len(got) != 1 || !got[0].Pruned || got[0].Index.ActorID != "" || got[0].Index.Workspace != "" || got[0].Index.CorrelationID != "" ||
		got[0].Index.Team != "" || got[0].Index.Organization != "" || len(got[0].Index.Targets) != 0 {
		t.Errorf("index values of a pruned event: %+v; want it marked pruned, with what pruning clears empty", got)
	}
}
