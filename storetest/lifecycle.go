package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/internal/ledger"
	"github.com/trailaudit/trail/retention"
	"github.com/trailaudit/trail/tlog"
)

// Lifecycle is a store with retention and legal holds.
type Lifecycle interface {
	trail.Store
	ledger.Writer
	trail.HoldStore
}

// RunLifecycle runs the tests of retention and legal holds every store
// must pass: pruned events leave every read but ScanLeaves, which keeps
// their hashes; the log still verifies, with the pruning records; Prune
// (ledger.Prune through AppendOwn) refuses what it must; holds keep their contract; retention plans
// respect holds and applies keep the log verifiable. open must return a
// new, empty store built with Validator and Signer, that is a Lifecycle.
func RunLifecycle(t *testing.T, open func(t *testing.T) trail.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s Lifecycle)
	}{
		{"PruneLeavesReads", testPruneReads},
		{"PruneRefuses", testPruneRefuses},
		{"PruneBesideAppends", testPruneBesideAppends},
		{"HoldsRoundTrip", testHolds},
		{"RetentionRespectsHolds", testRetention},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { s.Close() })
			lc, ok := s.(Lifecycle)
			if !ok {
				t.Fatalf("%T is not a ledger.Writer and trail.HoldStore", s)
			}
			tc.fn(t, lc)
		})
	}
}

// RunLifecycleDurable runs the retention tests only a database can fail:
// its triggers allow pruning and releasing holds and nothing else, a
// payload cleared behind the store's back is damage, and pruned rows and
// holds survive a reopen. newDurable must return a fresh, empty database
// each call, with a Tamper.
func RunLifecycleDurable(t *testing.T, newDurable func(t *testing.T) Durable) {
	t.Run("PayloadClearedBehindTheStoresBack", func(t *testing.T) { testPayloadCleared(t, newDurable(t)) })
	t.Run("DatabaseAllowsOnlyPruning", func(t *testing.T) { testOnlyPruning(t, newDurable(t)) })
	t.Run("ReopenKeepsPrunedAndHolds", func(t *testing.T) { testReopenLifecycle(t, newDurable(t)) })
}

// PruneRecord returns the audit_log_pruned event of a prune of seqs under
// policy: what retention appends with each Prune.
func PruneRecord(policy string, seqs ...uint64) *trail.Event {
	sorted := slices.Sorted(slices.Values(seqs))
	return retention.Record(policy, sorted, 0, trail.Actor{ID: "retention", Type: trail.ActorSystem})
}

func prune(t *testing.T, s ledger.Writer, tenant string, seqs ...uint64) *trail.Event {
	t.Helper()
	res, err := s.AppendOwn(context.Background(), tenant, ledger.Prune(seqs, PruneRecord("test", seqs...)))
	if err != nil {
		t.Fatalf("Prune(%v): %v", seqs, err)
	}
	if len(res.Events) != 1 || res.Events[0].Action != catalog.AuditLogPruned || res.Replay {
		t.Fatalf("Prune returned %+v, want its one audit_log_pruned record", res)
	}
	return res.Events[0]
}

func seqsOf(evs []*trail.Event) []uint64 {
	out := []uint64{}
	for _, ev := range evs {
		out = append(out, ev.Seq)
	}
	return out
}

// verifyPruned verifies tenant's log with its pruning records and returns
// the report.
func verifyPruned(t *testing.T, s trail.Store, tenant string) *tlog.Report {
	t.Helper()
	ctx := context.Background()
	ranges, err := tlog.PrunedRanges(ctx, s, tenant)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := tlog.Verify(ctx, s, tenant, Signer().Verifier(), tlog.VerifyOptions{Pruned: ranges})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// leaves returns tenant's rows as ScanLeaves gives them.
func scanLeaves(t *testing.T, s trail.Log, tenant string) []trail.Leaf {
	t.Helper()
	var out []trail.Leaf
	err := s.ScanLeaves(context.Background(), tenant, 1, 0, func(l trail.Leaf) error {
		c := trail.Leaf{Seq: l.Seq, Hashes: slices.Clone(l.Hashes)}
		if l.Body != nil {
			c.Body = slices.Clone(l.Body)
		}
		out = append(out, c)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func testPruneReads(t *testing.T, s Lifecycle) {
	ctx := context.Background()
	var stored []*trail.Event
	for i := 1; i <= 6; i++ {
		ev := Login(fmt.Sprintf("u-%d", i))
		ev.CorrelationID = fmt.Sprintf("c-%d", i)
		stored = append(stored, appendOK(t, s, "acme", ev)...)
	}
	other := appendOK(t, s, "globex", Login("u-2"))
	before := scanLeaves(t, s, "acme")
	rec := prune(t, s, "acme", 5, 2, 3)
	if rec.Seq != 7 || rec.Tenant != "acme" {
		t.Fatalf("record at seq %d of %s, want 7 of acme", rec.Seq, rec.Tenant)
	}
	if got, err := s.GetSeq(ctx, "acme", 7); err != nil || !cmp.Equal(got, rec) {
		t.Errorf("GetSeq of the record = %v; want it as Prune returned it\n%s", err, cmp.Diff(rec, got))
	}

	for _, seq := range []uint64{2, 3, 5} {
		if _, err := s.GetSeq(ctx, "acme", seq); trail.ErrorCode(err) != trail.ENOTFOUND {
			t.Errorf("GetSeq(%d) of a pruned event = %v, want ENOTFOUND", seq, err)
		}
		if _, err := s.Get(ctx, "acme", stored[seq-1].ID); trail.ErrorCode(err) != trail.ENOTFOUND {
			t.Errorf("Get of the pruned event %d = %v, want ENOTFOUND", seq, err)
		}
	}
	for _, seq := range []uint64{1, 4, 6} {
		if got, err := s.Get(ctx, "acme", stored[seq-1].ID); err != nil || !cmp.Equal(got, stored[seq-1]) {
			t.Errorf("Get of the kept event %d: %v\n%s", seq, err, cmp.Diff(stored[seq-1], got))
		}
	}
	for _, tc := range []struct {
		q    trail.Query
		want []uint64
	}{
		{trail.Query{}, []uint64{1, 4, 6, 7}},
		{trail.Query{Descending: true}, []uint64{7, 6, 4, 1}},
		{trail.Query{Limit: 1}, []uint64{1, 4, 6, 7}},
		{trail.Query{Limit: 1, Descending: true}, []uint64{7, 6, 4, 1}},
		{trail.Query{ActorID: "u-2"}, nil},
		{trail.Query{ActorID: "u-4"}, []uint64{4}},
		{trail.Query{Actions: []string{catalog.UserLoginSuccess}}, []uint64{1, 4, 6}},
		{trail.Query{Actions: []string{catalog.UserLoginSuccess, catalog.AuditLogPruned}}, []uint64{1, 4, 6, 7}},
		{trail.Query{Category: "authentication"}, []uint64{1, 4, 6}},
		{trail.Query{ActorType: trail.ActorUser}, []uint64{1, 4, 6}},
		{trail.Query{Outcome: trail.OutcomeSuccess}, []uint64{1, 4, 6, 7}},
		{trail.Query{Workspace: "ws-1"}, []uint64{1, 4, 6}},
		{trail.Query{Organization: "org-1"}, []uint64{1, 4, 6}},
		{trail.Query{CorrelationID: "c-3"}, nil},
		{trail.Query{TargetID: "s-u-3"}, nil},
		{trail.Query{TargetID: "s-u-4", TargetType: "session"}, []uint64{4}},
		{trail.Query{TargetType: "session"}, []uint64{1, 4, 6}},
		{trail.Query{RecordedAfter: stored[3].RecordedAt}, []uint64{4, 6, 7}},
		{trail.Query{OccurredBefore: time.Now().Add(time.Hour)}, []uint64{1, 4, 6, 7}},
	} {
		q := tc.q
		q.Tenant = "acme"
		if got := seqsOf(queryAll(t, s, q)); !slices.Equal(got, tc.want) {
			t.Errorf("Query %+v = seqs %v, want %v", tc.q, got, tc.want)
		}
		if n, err := s.Count(ctx, q); err != nil || n != int64(len(tc.want)) {
			t.Errorf("Count %+v = %d, %v; want %d", tc.q, n, err, len(tc.want))
		}
	}
	var scanned []uint64
	if err := s.Scan(ctx, "acme", 1, 0, func(ev *trail.Event) error { scanned = append(scanned, ev.Seq); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(scanned, []uint64{1, 4, 6, 7}) {
		t.Errorf("Scan = seqs %v, want 1, 4, 6, 7", scanned)
	}
	if got := seqsOf(queryAll(t, s, trail.Query{Tenant: "globex"})); !slices.Equal(got, seqsOf(other)) {
		t.Errorf("the other tenant's log changed: seqs %v", got)
	}

	after := scanLeaves(t, s, "acme")
	if len(after) != 7 {
		t.Fatalf("ScanLeaves gives %d rows, want 7", len(after))
	}
	for i, l := range after[:6] {
		pruned := l.Seq == 2 || l.Seq == 3 || l.Seq == 5
		switch {
		case l.Seq != uint64(i+1):
			t.Errorf("row %d has seq %d", i, l.Seq)
		case pruned && l.Body != nil:
			t.Errorf("pruned row %d has a body: %q", l.Seq, l.Body)
		case !pruned && !slices.Equal(l.Body, before[i].Body):
			t.Errorf("kept row %d changed", l.Seq)
		case !slices.Equal(l.Hashes, before[i].Hashes):
			t.Errorf("row %d's hashes changed", l.Seq)
		}
	}

	ranges, err := tlog.PrunedRanges(ctx, s, "acme")
	if err != nil {
		t.Fatal(err)
	}
	want := []tlog.PrunedRange{{From: 2, To: 3, Policy: "test", At: rec.RecordedAt, BySeq: 7}, {From: 5, To: 5, Policy: "test", At: rec.RecordedAt, BySeq: 7}}
	if !cmp.Equal(ranges, want) {
		t.Errorf("PrunedRanges (-want +got):\n%s", cmp.Diff(want, ranges))
	}
	rep, err := tlog.Verify(ctx, s, "acme", Signer().Verifier(), tlog.VerifyOptions{Pruned: ranges})
	if err != nil || !rep.OK() || rep.Leaves != 7 || rep.Size != 7 || !cmp.Equal(rep.Pruned, want) {
		t.Errorf("Verify with the pruning records: %v %+v; want an intact log of 7 with 2 pruned ranges", err, rep)
	}
	rep, err = tlog.Verify(ctx, s, "acme", Signer().Verifier(), tlog.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var damage []string
	for _, d := range rep.Damage {
		damage = append(damage, fmt.Sprintf("%s@%d", d.Kind, d.Seq))
	}
	if want := []string{"changed@2", "changed@3", "changed@5"}; !slices.Equal(damage, want) {
		t.Errorf("Verify without the pruning records finds %v, want %v", damage, want)
	}

	// The log goes on.
	if next := appendOK(t, s, "acme", Login("u-7")); next[0].Seq != 8 {
		t.Errorf("next event after a prune has seq %d, want 8", next[0].Seq)
	}
	prune(t, s, "acme", 1, 8)
	if rep := verifyPruned(t, s, "acme"); !rep.OK() || rep.Size != 9 || len(rep.Pruned) != 4 {
		t.Errorf("Verify after a second prune: %+v", rep)
	}
}

func testPruneRefuses(t *testing.T, s Lifecycle) {
	ctx := context.Background()
	appendOK(t, s, "acme", Login("u-1"), Login("u-2"), Login("u-3"), Login("u-4"))
	appendOK(t, s, "globex", Login("u-1"), Login("u-2"), Login("u-3"), Login("u-4"), Login("u-5"))
	prune(t, s, "acme", 2)
	for _, tc := range []struct {
		name   string
		seqs   []uint64
		record *trail.Event
	}{
		{"a seq pruned already", []uint64{1, 2}, nil},
		{"a seq the tenant does not have", []uint64{3, 5}, nil},
		{"a seq far past the end", []uint64{1 << 50}, nil},
		{"seq 0", []uint64{0, 1}, nil},
		{"a seq twice", []uint64{3, 3}, PruneRecord("test", 3, 3)},
		{"no seqs", nil, PruneRecord("test", 1)},
		{"the record of a prune", []uint64{5}, nil},
		{"a record that names other seqs", []uint64{3}, PruneRecord("test", 4)},
		{"a record that names more seqs", []uint64{3}, PruneRecord("test", 3, 4)},
		{"a record of another action", []uint64{3}, Login("u-9")},
		{"no record", []uint64{3}, &trail.Event{}},
	} {
		rec := tc.record
		if rec == nil {
			rec = PruneRecord("test", tc.seqs...)
		}
		if tc.name == "no record" {
			rec = nil
		}
		if _, err := s.AppendOwn(ctx, "acme", ledger.Prune(tc.seqs, rec)); trail.ErrorCode(err) != trail.EINVALID {
			t.Errorf("Prune of %s = %v, want EINVALID", tc.name, err)
		}
	}
	// An audit_log_pruned event is appended by Prune alone: one sent to
	// Append (forged, to vouch later for payloads cleared behind the
	// store's back) is refused, with its batch.
	if _, err := s.Append(ctx, "acme", []*trail.Event{Login("u-9"), PruneRecord("test", 3)}, trail.AppendOptions{}); trail.ErrorCode(err) != trail.EINVALID {
		t.Errorf("Append of an audit_log_pruned event = %v, want EINVALID", err)
	}
	// Nothing of the refused prunes was stored.
	if got := seqsOf(queryAll(t, s, trail.Query{Tenant: "acme"})); !slices.Equal(got, []uint64{1, 3, 4, 5}) {
		t.Errorf("after refused prunes the log holds seqs %v, want 1, 3, 4, 5", got)
	}
	if rep := verifyPruned(t, s, "acme"); !rep.OK() || rep.Size != 5 {
		t.Errorf("Verify after refused prunes: %+v", rep)
	}
	// globex has a seq 5 (acme's is its record): Prune is per tenant.
	prune(t, s, "globex", 5)
	if _, err := s.GetSeq(ctx, "acme", 5); err != nil {
		t.Errorf("acme's seq 5 after globex's was pruned: %v", err)
	}
}

// testPruneBesideAppends prunes, one seq per call, while appends go on: in
// a store that gathers appends into shared commits, a prune rides with
// them and must commit its record and its rows together.
func testPruneBesideAppends(t *testing.T, s Lifecycle) {
	ctx := context.Background()
	first := appendOK(t, s, "acme", func() []*trail.Event {
		b := make([]*trail.Event, 20)
		for i := range b {
			b[i] = Login(fmt.Sprintf("u-%d", i))
		}
		return b
	}()...)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 20 {
				if _, err := s.Append(ctx, "acme", []*trail.Event{Login(fmt.Sprintf("g-%d-%d", g, i))}, trail.AppendOptions{}); err != nil {
					t.Errorf("Append: %v", err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for _, ev := range first[:10] {
			if _, err := s.AppendOwn(ctx, "acme", ledger.Prune([]uint64{ev.Seq}, PruneRecord("test", ev.Seq))); err != nil {
				t.Errorf("Prune(%d): %v", ev.Seq, err)
				return
			}
		}
		// A bad prune in the middle of appends fails alone.
		if _, err := s.AppendOwn(ctx, "acme", ledger.Prune([]uint64{first[0].Seq}, PruneRecord("test", first[0].Seq))); trail.ErrorCode(err) != trail.EINVALID {
			t.Errorf("second Prune of seq %d = %v, want EINVALID", first[0].Seq, err)
		}
	})
	wg.Wait()
	if n, err := s.Count(ctx, trail.Query{Tenant: "acme"}); err != nil || n != 20+80+10-10 {
		t.Errorf("Count = %d, %v; want 100", n, err)
	}
	rep := verifyPruned(t, s, "acme")
	if !rep.OK() || rep.Size != 110 || len(rep.Pruned) != 10 {
		t.Errorf("Verify: %+v; want an intact log of 110 with 10 pruned ranges", rep)
	}
}

var holdTime = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func testHolds(t *testing.T, s Lifecycle) {
	ctx := context.Background()
	if hs, err := s.Holds(ctx, "acme"); err != nil || len(hs) != 0 {
		t.Fatalf("Holds of a new store = %v, %v", hs, err)
	}
	placed := []*trail.Hold{
		{ID: "h-1", Tenant: "acme", Filter: trail.HoldFilter{ActorID: "u-1"}, Reason: "matter 1", CreatedBy: "counsel", CreatedAt: holdTime},
		{ID: "h-2", Tenant: "acme", Filter: trail.HoldFilter{TargetID: "doc-9", From: holdTime.Add(-time.Hour), Until: holdTime.In(time.FixedZone("X", 3600))},
			Reason: "matter 2", CreatedBy: "counsel", CreatedAt: holdTime.Add(time.Second)},
		{ID: "h-1", Tenant: "globex", Reason: "whole tenant", CreatedBy: "counsel", CreatedAt: holdTime},
	}
	for _, h := range placed {
		if err := s.PlaceHold(ctx, h); err != nil {
			t.Fatalf("PlaceHold(%s/%s): %v", h.Tenant, h.ID, err)
		}
	}
	again := *placed[0]
	again.Reason = "replaced"
	wantCode(t, "PlaceHold of a taken id", s.PlaceHold(ctx, &again), trail.ECONFLICT)
	wantCode(t, "PlaceHold with no id", s.PlaceHold(ctx, &trail.Hold{Tenant: "acme"}), trail.EINVALID)
	wantCode(t, "PlaceHold with a bad tenant", s.PlaceHold(ctx, &trail.Hold{ID: "h-3", Tenant: "Bad Tenant!"}), trail.EINVALID)
	wantCode(t, "PlaceHold released", s.PlaceHold(ctx, &trail.Hold{ID: "h-3", Tenant: "acme", ReleasedAt: holdTime}), trail.EINVALID)
	wantCode(t, "PlaceHold until before from", s.PlaceHold(ctx, &trail.Hold{ID: "h-3", Tenant: "acme",
		Filter: trail.HoldFilter{From: holdTime, Until: holdTime.Add(-time.Hour)}}), trail.EINVALID)

	want := []*trail.Hold{placed[0], placed[1]}
	want[1].Filter.Until = want[1].Filter.Until.UTC()
	got, err := s.Holds(ctx, "acme")
	if err != nil || !cmp.Equal(got, want) {
		t.Fatalf("Holds(acme): %v (-want +got)\n%s", err, cmp.Diff(want, got))
	}
	if !got[0].Active() || !got[1].Covers(&trail.Event{Tenant: "acme", RecordedAt: holdTime.Add(-time.Minute), Targets: []trail.Target{{Type: "doc", ID: "doc-9"}}}) {
		t.Errorf("stored holds do not stand or cover what they should: %+v", got)
	}

	if err := s.ReleaseHold(ctx, "acme", "h-1", holdTime.Add(time.Hour)); err != nil {
		t.Fatalf("ReleaseHold: %v", err)
	}
	wantCode(t, "ReleaseHold again", s.ReleaseHold(ctx, "acme", "h-1", holdTime.Add(2*time.Hour)), trail.ECONFLICT)
	wantCode(t, "ReleaseHold of an unknown hold", s.ReleaseHold(ctx, "acme", "h-9", holdTime), trail.ENOTFOUND)
	wantCode(t, "ReleaseHold of another tenant's hold", s.ReleaseHold(ctx, "initech", "h-2", holdTime), trail.ENOTFOUND)
	wantCode(t, "ReleaseHold at no time", s.ReleaseHold(ctx, "acme", "h-2", time.Time{}), trail.EINVALID)
	got, err = s.Holds(ctx, "acme")
	if err != nil || len(got) != 2 || !got[0].ReleasedAt.Equal(holdTime.Add(time.Hour)) || got[0].Active() || !got[1].Active() {
		t.Fatalf("Holds after release: %v %+v; want h-1 released at its first time, h-2 standing", err, got)
	}
	if got[0].Covers(&trail.Event{Tenant: "acme", Actor: trail.Actor{ID: "u-1"}}) {
		t.Error("a released hold still covers events")
	}
	if g, err := s.Holds(ctx, "globex"); err != nil || len(g) != 1 || !g[0].Active() {
		t.Errorf("globex's hold of the same id: %v %+v; want it standing", err, g)
	}
}

// testRetention plans and applies retention at a time far ahead: holds
// keep what they cover, the log still verifies, and the proof of pruning
// and of holds is never pruned.
func testRetention(t *testing.T, s Lifecycle) {
	ctx := context.Background()
	notify := func(actor string) *trail.Event {
		return &trail.Event{Action: catalog.NotificationSent, Actor: trail.Actor{ID: actor, Type: trail.ActorUser},
			Targets: []trail.Target{{Type: "user", ID: actor}}}
	}
	stored := appendOK(t, s, "acme", Login("u-1"), notify("n-1"), notify("n-2"), Login("u-2"), notify("n-3"))
	if _, err := s.AppendOwn(ctx, "acme", ledger.Records(&trail.Event{Action: catalog.LegalHoldPlaced, Actor: trail.Actor{ID: "counsel", Type: trail.ActorUser},
		Context: map[string]any{"hold_id": "h-1", "filter": map[string]any{"actor_id": "n-2"}, "reason": "matter"}})); err != nil {
		t.Fatal(err)
	}
	hold := &trail.Hold{ID: "h-1", Tenant: "acme", Filter: trail.HoldFilter{ActorID: "n-2"}, Reason: "matter", CreatedBy: "counsel"}
	if err := s.PlaceHold(ctx, hold); err != nil {
		t.Fatal(err)
	}
	holds, err := s.Holds(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	now := stored[0].RecordedAt.Add(100 * 24 * time.Hour) // past short (90 days), not standard (365)
	plan, err := retention.NewPlan(ctx, s, "acme", catalog.Default(), nil, holds, now)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Scanned != 6 || plan.Held != 1 || len(plan.Groups) != 1 || plan.Groups[0].Policy != "catalog:short" ||
		!slices.Equal(plan.Groups[0].Seqs, []uint64{2, 5}) || plan.Groups[0].Held != 1 {
		t.Fatalf("plan: %+v %+v; want seqs 2 and 5 under catalog:short, 1 held", plan, plan.Groups)
	}

	// A hold placed after the plan stops it.
	late := &trail.Hold{ID: "h-2", Tenant: "acme", Reason: "late"}
	if err := s.PlaceHold(ctx, late); err != nil {
		t.Fatal(err)
	}
	actor := trail.Actor{ID: "ops", Type: trail.ActorUser}
	if _, err := plan.Apply(ctx, s, s, "acme", actor); trail.ErrorCode(err) != trail.ECONFLICT {
		t.Fatalf("Apply after a hold was placed = %v, want ECONFLICT", err)
	}
	if err := s.ReleaseHold(ctx, "acme", "h-2", time.Now()); err != nil {
		t.Fatal(err)
	}
	res, err := plan.Apply(ctx, s, s, "acme", actor)
	if err != nil || res.Pruned != 2 || res.Held != 1 || len(res.Records) != 1 {
		t.Fatalf("Apply: %v %+v", err, res)
	}
	r := res.Records[0]
	if r.Seq != 7 || r.Actor.ID != "ops" || r.Context["policy"] != "catalog:short" || fmt.Sprint(r.Context["pruned_count"]) != "2" ||
		fmt.Sprint(r.Context["held_count"]) != "1" || fmt.Sprint(r.Context["seq_ranges"]) != "[[2 2] [5 5]]" || len(r.Violations) > 0 {
		t.Errorf("record: %+v", r)
	}
	if got := seqsOf(queryAll(t, s, trail.Query{Tenant: "acme", Actions: []string{catalog.NotificationSent}})); !slices.Equal(got, []uint64{3}) {
		t.Errorf("notifications left: seqs %v, want the held one (3)", got)
	}
	if rep := verifyPruned(t, s, "acme"); !rep.OK() || rep.Size != 7 || len(rep.Pruned) != 2 || rep.Pruned[0].Policy != "catalog:short" {
		t.Errorf("Verify after Apply: %+v", rep)
	}

	// Planned again, nothing is left to prune but the held event; even a
	// rule of 0 days on the audit category leaves the proof alone.
	rules := []trail.RetentionRule{{Name: "audit-now", Category: "audit", Days: 0}}
	again, err := retention.NewPlan(ctx, s, "acme", catalog.Default(), rules, holds, now.Add(10000*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var all []uint64
	for _, g := range again.Groups {
		all = append(all, g.Seqs...)
	}
	slices.Sort(all)
	if !slices.Equal(all, []uint64{1, 4}) || again.Held != 1 {
		t.Errorf("second plan prunes %v, holds %d; want the logins (1, 4) and the held notification", all, again.Held)
	}
}

// testPayloadCleared: a payload removed behind the store's back, with no
// pruning record, is damage at its seq.
func testPayloadCleared(t *testing.T, d Durable) {
	s := d.open(t)
	appendOK(t, s, "acme", Login("u-1"), Login("u-2"), Login("u-3"))
	appendOK(t, s, "acme", Login("u-4"), Login("u-5"))
	lc := s.(Lifecycle)
	prune(t, lc, "acme", 1)
	s.Close()
	if err := d.Tamper.SetBody(context.Background(), "acme", 3, []byte{}); err != nil {
		t.Fatalf("tamper: %v", err)
	}
	ro, err := d.Open(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	rep := verifyPruned(t, ro, "acme")
	if len(rep.Damage) != 1 || rep.Damage[0].Kind != tlog.Changed || rep.Damage[0].Seq != 3 ||
		!strings.Contains(rep.Damage[0].Detail, "payload missing with no purge record") || len(rep.Pruned) != 1 {
		t.Errorf("Verify of a payload cleared with no record: %+v; want changed at seq 3, and the real prune listed", rep)
	}
}

// testOnlyPruning: after a real prune, the database still refuses every
// other change of the log, and of holds every change but one release.
func testOnlyPruning(t *testing.T, d Durable) {
	ctx := context.Background()
	s := d.open(t)
	defer s.Close()
	lc := s.(Lifecycle)
	appendOK(t, s, "acme", Login("u-1"), Login("u-2"), Login("u-3"))
	prune(t, lc, "acme", 2)
	for _, h := range []*trail.Hold{{ID: "h-1", Tenant: "acme", Reason: "r"}, {ID: "h-2", Tenant: "acme", Reason: "r"}} {
		if err := lc.PlaceHold(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	if err := lc.ReleaseHold(ctx, "acme", "h-2", holdTime); err != nil {
		t.Fatal(err)
	}
	events := queryAll(t, s, trail.Query{Tenant: "acme"})
	leaves := scanLeaves(t, s, "acme")
	holds, err := lc.Holds(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		"UPDATE events SET action = 'user_logout'",
		"UPDATE events SET actor_id = ''",
		"UPDATE events SET actor_id = '', organization = '', workspace = '', team = '', correlation_id = ''",
		"UPDATE events SET pruned = NULL WHERE pruned IS NOT NULL",
		"UPDATE events SET pruned = pruned + 1 WHERE pruned IS NOT NULL",
		"UPDATE events SET hashes = hashes WHERE pruned IS NOT NULL",
		"UPDATE events SET body = body",
		"UPDATE events SET body = NULL",
		"DELETE FROM events WHERE pruned IS NOT NULL",
		"DELETE FROM events",
		"UPDATE holds SET reason = 'x'",
		"UPDATE holds SET released_at = 0",
		"UPDATE holds SET released_at = released_at + 1 WHERE released_at <> 0",
		"UPDATE holds SET released_at = 1, reason = 'x' WHERE released_at = 0",
		"DELETE FROM holds",
	} {
		if err := d.Exec(ctx, stmt); err == nil {
			t.Errorf("the database ran %q: it must refuse every change of the log but a prune, and of holds but a release", stmt)
		}
	}
	if diff := cmp.Diff(events, queryAll(t, s, trail.Query{Tenant: "acme"})); diff != "" {
		t.Errorf("events changed (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(leaves, scanLeaves(t, s, "acme")); diff != "" {
		t.Errorf("rows changed (-before +after):\n%s", diff)
	}
	if got, err := lc.Holds(ctx, "acme"); err != nil || !cmp.Equal(holds, got) {
		t.Errorf("holds changed: %v\n%s", err, cmp.Diff(holds, got))
	}
	if err := d.Exec(ctx, "UPDATE holds SET released_at = 1 WHERE id = 'h-1'"); err != nil {
		t.Errorf("the database refused to release a hold: %v", err)
	}
	if rep := verifyPruned(t, s, "acme"); !rep.OK() {
		t.Errorf("Verify: %+v", rep)
	}
}

func testReopenLifecycle(t *testing.T, d Durable) {
	ctx := context.Background()
	s := d.open(t)
	appendOK(t, s, "acme", Login("u-1"), Login("u-2"), Login("u-3"))
	lc := s.(Lifecycle)
	prune(t, lc, "acme", 1, 3)
	if err := lc.PlaceHold(ctx, &trail.Hold{ID: "h-1", Tenant: "acme", Filter: trail.HoldFilter{ActorID: "u-2"}, Reason: "r", CreatedBy: "c", CreatedAt: holdTime}); err != nil {
		t.Fatal(err)
	}
	events := queryAll(t, s, trail.Query{Tenant: "acme"})
	holds, err := lc.Holds(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = d.open(t)
	defer s.Close()
	lc = s.(Lifecycle)
	if diff := cmp.Diff(events, queryAll(t, s, trail.Query{Tenant: "acme"})); diff != "" {
		t.Errorf("events changed across reopen (-before +after):\n%s", diff)
	}
	if got, err := lc.Holds(ctx, "acme"); err != nil || !cmp.Equal(holds, got) {
		t.Errorf("holds changed across reopen: %v\n%s", err, cmp.Diff(holds, got))
	}
	if next := appendOK(t, s, "acme", Login("u-4")); next[0].Seq != 5 {
		t.Errorf("after reopen the next seq is %d, want 5", next[0].Seq)
	}
	wantCode(t, "Prune of a pruned seq after reopen", func() error {
		_, err := lc.AppendOwn(ctx, "acme", ledger.Prune([]uint64{3}, PruneRecord("test", 3)))
		return err
	}(), trail.EINVALID)
	if rep := verifyPruned(t, s, "acme"); !rep.OK() || rep.Size != 5 || len(rep.Pruned) != 2 {
		t.Errorf("Verify after reopen: %+v", rep)
	}
}
