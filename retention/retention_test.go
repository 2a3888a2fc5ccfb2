package retention

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/internal/ledger"
	"github.com/trailaudit/trail/memory"
	"github.com/trailaudit/trail/redact"
	"github.com/trailaudit/trail/tlog"
)

var t0 = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

func day(n int) time.Time { return t0.Add(time.Duration(n) * 24 * time.Hour) }

// testLog is a memory store holding, for tenant acme, each event of the
// table below recorded on its day.
func testLog(t *testing.T) *memory.Store {
	t.Helper()
	s := memory.New(&trail.Validator{Actions: catalog.Default(), Redactor: redact.New(redact.Options{}), Limits: trail.DefaultLimits()}, nil)
	var clock time.Time
	s.SetClock(func() time.Time { return clock })
	user := func(id string) trail.Actor { return trail.Actor{ID: id, Type: trail.ActorUser} }
	for _, e := range []struct {
		day int
		ev  *trail.Event
	}{
		{0, &trail.Event{Action: catalog.UserLoginSuccess, Actor: user("u-1"), Context: map[string]any{"method": "password", "mfa": true, "remember_me": false}}},      // 1
		{0, &trail.Event{Action: catalog.NotificationSent, Actor: user("u-2")}},                                                                                        // 2
		{0, &trail.Event{Action: catalog.EntryApproved, Actor: user("u-3"), Targets: []trail.Target{{Type: "entry", ID: "e-7"}}}},                                      // 3
		{0, &trail.Event{Action: "badge_scanned", Actor: user("u-4")}},                                                                                                 // 4: custom
		{0, &trail.Event{Action: catalog.LegalHoldPlaced, Actor: user("counsel"), Context: map[string]any{"hold_id": "h", "filter": map[string]any{}, "reason": "r"}}}, // 5
		{200, &trail.Event{Action: "login_success", Actor: user("u-1"), Context: map[string]any{"method": "password", "mfa": true, "remember_me": false}}},             // 6: an alias
		{0 + 201, &trail.Event{Action: catalog.DataViewed, Actor: user("u-5"), Targets: []trail.Target{{Type: "entry", ID: "e-7"}},
			Context: map[string]any{"data_type": "entry", "fields_accessed": []any{"amount"}}}}, // 7
	} {
		clock = day(e.day)
		var err error
		if e.ev.Action == catalog.LegalHoldPlaced { // Trail's own record
			_, err = s.AppendOwn(context.Background(), "acme", ledger.Records(e.ev))
		} else {
			_, err = s.Append(context.Background(), "acme", []*trail.Event{e.ev}, trail.AppendOptions{Policy: trail.Policy{AllowCustom: true}})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func TestPlan(t *testing.T) {
	type groups map[string][]uint64
	rule := func(name, action, category, compliance string, days int) trail.RetentionRule {
		return trail.RetentionRule{Name: name, Action: action, Category: category, Compliance: compliance, Days: days}
	}
	standing := func(f trail.HoldFilter) *trail.Hold { return &trail.Hold{ID: "h", Tenant: "acme", Filter: f} }
	tests := []struct {
		name  string
		rules []trail.RetentionRule
		holds []*trail.Hold
		now   time.Time
		want  groups
		held  int
	}{
		{name: "nothing is past retention yet", now: day(80), want: groups{}},
		{name: "notifications are short (90 days)", now: day(91), want: groups{"catalog:short": {2}}},
		{name: "exactly 90 days is not past", now: day(90), want: groups{}},
		{
			name: "a year on: standard and custom actions (standard) go, long stays, the hold record stays",
			now:  day(366), want: groups{"catalog:short": {2}, "catalog:standard": {1, 4}},
		},
		{
			name: "seven years on, everything but the proof",
			now:  day(2555 + 202), want: groups{"catalog:short": {2}, "catalog:standard": {1, 4, 6, 7}, "catalog:long": {3}},
		},
		{
			name:  "a rule on the action (named by its alias too) beats the catalog",
			rules: []trail.RetentionRule{rule("logins", "login_success", "", "", 10)},
			now:   day(250), want: groups{"logins": {1, 6}, "catalog:short": {2}},
		},
		{
			name:  "a rule on the action beats one on its category",
			rules: []trail.RetentionRule{rule("auth", "", "authentication", "", 1000), rule("logins", catalog.UserLoginSuccess, "", "", 10)},
			now:   day(250), want: groups{"logins": {1, 6}, "catalog:short": {2}},
		},
		{
			name:  "a rule on the category beats the catalog",
			rules: []trail.RetentionRule{rule("auth", "", "authentication", "", 10)},
			now:   day(250), want: groups{"auth": {1, 6}, "catalog:short": {2}},
		},
		{
			name:  "a rule on the category beats one on a compliance tag",
			rules: []trail.RetentionRule{rule("pci", "", "", "pci", 30), rule("auth", "", "authentication", "", 1000)},
			now:   day(250), want: groups{"pci": {7}, "catalog:short": {2}},
		},
		{
			name:  "a compliance rule: the tag is normalized",
			rules: []trail.RetentionRule{rule("pci", "", "", "pci dss", 30)},
			now:   day(250), want: groups{"pci": {1, 6, 7}, "catalog:short": {2}},
		},
		{
			name:  "two compliance rules: the longer wins",
			rules: []trail.RetentionRule{rule("pci", "", "", "PCI-DSS", 30), rule("gdpr", "", "", "GDPR", 1000)},
			now:   day(250), want: groups{"pci": {1, 6}, "catalog:short": {2}},
		},
		{
			name:  "a rule on a custom action",
			rules: []trail.RetentionRule{rule("badges", "badge_scanned", "", "", 0)},
			now:   day(1), want: groups{"badges": {4}},
		},
		{
			name:  "the proof is never pruned, whatever the rules",
			rules: []trail.RetentionRule{rule("audit", "", "audit", "", 0), rule("holds", catalog.LegalHoldPlaced, "", "", 0)},
			now:   day(100000), want: groups{"catalog:short": {2}, "catalog:standard": {1, 4, 6, 7}, "catalog:long": {3}},
		},
		{
			name:  "a hold on an actor",
			holds: []*trail.Hold{standing(trail.HoldFilter{ActorID: "u-1"})},
			now:   day(400), want: groups{"catalog:short": {2}, "catalog:standard": {4}}, held: 1,
		},
		{
			name:  "a hold on a target",
			holds: []*trail.Hold{standing(trail.HoldFilter{TargetID: "e-7"})},
			now:   day(2555 + 202), want: groups{"catalog:short": {2}, "catalog:standard": {1, 4, 6}}, held: 2,
		},
		{
			name:  "a hold on a time window (recorded from, until)",
			holds: []*trail.Hold{standing(trail.HoldFilter{From: day(200), Until: day(201)})},
			now:   day(2555 + 202), want: groups{"catalog:short": {2}, "catalog:standard": {1, 4, 7}, "catalog:long": {3}}, held: 1,
		},
		{
			name:  "a hold on the whole tenant",
			holds: []*trail.Hold{standing(trail.HoldFilter{})},
			now:   day(2555 + 202), want: groups{}, held: 6,
		},
		{
			name:  "released holds and other tenants' holds hold nothing",
			holds: []*trail.Hold{{ID: "a", Tenant: "acme", ReleasedAt: day(1)}, {ID: "b", Tenant: "globex"}},
			now:   day(91), want: groups{"catalog:short": {2}},
		},
	}
	s := testLog(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewPlan(context.Background(), s, "acme", catalog.Default(), tc.rules, tc.holds, tc.now)
			if err != nil {
				t.Fatal(err)
			}
			got := groups{}
			held := 0
			for _, g := range p.Groups {
				if len(g.Seqs) > 0 {
					got[g.Policy] = g.Seqs
				}
				held += g.Held
			}
			if !cmp.Equal(got, tc.want) || p.Held != tc.held || held != tc.held || p.Scanned != 7 {
				t.Errorf("plan: %v, held %d (groups %d), scanned %d; want %v, held %d", got, p.Held, held, p.Scanned, tc.want, tc.held)
			}
			if p.Events() != func() (n int) {
				for _, s := range tc.want {
					n += len(s)
				}
				return n
			}() {
				t.Errorf("Events() = %d", p.Events())
			}
		})
	}
}

func TestPlanGroupsInRuleOrder(t *testing.T) {
	s := testLog(t)
	rules := []trail.RetentionRule{{Name: "z", Action: catalog.EntryApproved, Days: 1}, {Name: "a", Category: "authentication", Days: 1}}
	p, err := NewPlan(context.Background(), s, "acme", nil, rules, nil, day(400))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range p.Groups {
		names = append(names, g.Policy)
	}
	if want := []string{"z", "a", "catalog:short", "catalog:standard"}; !slices.Equal(names, want) {
		t.Errorf("groups %v, want %v", names, want)
	}
}

func TestApply(t *testing.T) {
	ctx := context.Background()
	s := testLog(t)
	hold := &trail.Hold{ID: "h-1", Tenant: "acme", Filter: trail.HoldFilter{TargetID: "e-7"}, Reason: "matter"}
	if err := s.PlaceHold(ctx, hold); err != nil {
		t.Fatal(err)
	}
	holds, _ := s.Holds(ctx, "acme")
	p, err := NewPlan(ctx, s, "acme", nil, nil, holds, day(2555+202))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Apply(ctx, s, s, "globex", trail.Actor{ID: "ops", Type: trail.ActorUser}); trail.ErrorCode(err) != trail.EINVALID {
		t.Errorf("Apply to another tenant = %v, want EINVALID", err)
	}
	res, err := p.Apply(ctx, s, s, "acme", trail.Actor{ID: "ops", Type: trail.ActorUser})
	if err != nil {
		t.Fatal(err)
	}
	if res.Pruned != 4 || res.Held != 2 || len(res.Records) != 2 {
		t.Fatalf("Apply: %+v", res)
	}
	var got []string
	for _, r := range res.Records {
		got = append(got, fmt.Sprintf("%d %s %v %v %v", r.Seq, r.Context["policy"], r.Context["seq_ranges"], r.Context["pruned_count"], r.Context["held_count"]))
		if len(r.Violations) > 0 || r.Actor.ID != "ops" {
			t.Errorf("record %+v", r)
		}
	}
	if want := []string{"8 catalog:short [[2 2]] 1 0", "9 catalog:standard [[1 1] [4 4] [6 6]] 3 1"}; !slices.Equal(got, want) {
		t.Errorf("records:\n%q\nwant\n%q", got, want)
	}
	ranges, err := tlog.PrunedRanges(ctx, s, "acme")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := tlog.Verify(ctx, s, "acme", s.Signer().Verifier(), tlog.VerifyOptions{Pruned: ranges})
	if err != nil || !rep.OK() || len(rep.Pruned) != 4 {
		t.Errorf("Verify: %v %+v", err, rep)
	}
	again, err := NewPlan(ctx, s, "acme", nil, nil, holds, day(2555+202))
	if err != nil || again.Events() != 0 || again.Held != 2 {
		t.Errorf("plan after apply: %v %+v", err, again)
	}
}

// holdMidway is a store where a legal hold is placed right after the first
// prune, as an operator might while a long purge runs.
type holdMidway struct {
	*memory.Store
	placed bool
}

func (h *holdMidway) AppendOwn(ctx context.Context, tenant string, o ledger.Own) (*trail.AppendResult, error) {
	res, err := h.Store.AppendOwn(ctx, tenant, o)
	if err == nil && !h.placed {
		h.placed = true
		err = h.PlaceHold(ctx, &trail.Hold{ID: "h-late", Tenant: tenant, Filter: trail.HoldFilter{ActorID: "u-1"}, Reason: "new matter"})
	}
	return res, err
}

// TestApplyStopsAtANewHold: Apply checks the holds before each chunk, so a
// hold placed while it runs stops it before the next prune.
func TestApplyStopsAtANewHold(t *testing.T) {
	ctx := context.Background()
	s := &holdMidway{Store: testLog(t)}
	p, err := NewPlan(ctx, s, "acme", nil, nil, nil, day(2555+202))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Groups) < 2 {
		t.Fatalf("the plan has %d groups, want two prunes at least", len(p.Groups))
	}
	res, err := p.Apply(ctx, s, s, "acme", trail.Actor{ID: "ops", Type: trail.ActorUser})
	if trail.ErrorCode(err) != trail.ECONFLICT || !strings.Contains(err.Error(), "h-late") {
		t.Fatalf("Apply with a hold placed midway = %v, want ECONFLICT naming h-late", err)
	}
	if len(res.Records) != 1 || res.Pruned != len(p.Groups[0].Seqs) {
		t.Errorf("Apply pruned %d events in %d prunes, want the first group's %d in one", res.Pruned, len(res.Records), len(p.Groups[0].Seqs))
	}
}

func TestChunks(t *testing.T) {
	run := func(n int, step uint64) []uint64 {
		out := make([]uint64, n)
		for i := range out {
			out[i] = 1 + uint64(i)*step
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		seqs  []uint64
		sizes []int
	}{
		{"none", nil, nil},
		{"one", []uint64{7}, []int{1}},
		{"contiguous, cut at MaxPruneSeqs", run(2*MaxPruneSeqs+5, 1), []int{MaxPruneSeqs, MaxPruneSeqs, 5}},
		{"scattered, cut at MaxPruneRanges", run(2*MaxPruneRanges+1, 2), []int{MaxPruneRanges, MaxPruneRanges, 1}},
	} {
		var sizes []int
		var all []uint64
		for c := range chunks(tc.seqs) {
			sizes = append(sizes, len(c))
			all = append(all, c...)
			if len(tlog.SeqRanges(c)) > MaxPruneRanges {
				t.Errorf("%s: a chunk of %d ranges", tc.name, len(tlog.SeqRanges(c)))
			}
		}
		if !slices.Equal(sizes, tc.sizes) || !slices.Equal(all, tc.seqs) {
			t.Errorf("%s: chunks of %v, want %v", tc.name, sizes, tc.sizes)
		}
	}
}

// TestRecordFitsTheContext: a record of MaxPruneRanges ranges of the
// largest seqs passes validation with no violation.
func TestRecordFitsTheContext(t *testing.T) {
	const top = 1<<40 - 1
	seqs := make([]uint64, MaxPruneRanges)
	for i := range seqs {
		seqs[i] = top - uint64(2*(MaxPruneRanges-i))
	}
	ev := Record("a-policy-with-a-long-name", seqs, 12345, trail.Actor{ID: "ops", Type: trail.ActorUser})
	v := &trail.Validator{Actions: catalog.Default(), Limits: trail.DefaultLimits()}
	if err := v.Prepare(ev, trail.Policy{Strict: true}, time.Now()); err != nil || len(ev.Violations) > 0 {
		t.Fatalf("Prepare: %v %+v", err, ev.Violations)
	}
}

func TestLoadRules(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, fmt.Sprintf("r%d.json", len(s)))
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	got, err := LoadRules(write(`{"rules": [
		{"name": "logins", "action": "user_login_success", "days": 30},
		{"category": "notification", "days": 7},
		{"compliance": "pci", "days": 400}]}`))
	want := []trail.RetentionRule{{Name: "logins", Action: "user_login_success", Days: 30},
		{Name: "category:notification", Category: "notification", Days: 7}, {Name: "compliance:PCI-DSS", Compliance: "PCI-DSS", Days: 400}}
	if err != nil || !cmp.Equal(got, want) {
		t.Errorf("LoadRules: %v\n%s", err, cmp.Diff(want, got))
	}
	if got, err := LoadRules(""); err != nil || got != nil {
		t.Errorf("LoadRules(\"\") = %v, %v; want none", got, err)
	}
	for _, bad := range []string{
		`{"rules": [{"action": "a", "category": "b", "days": 1}]}`,
		`{"rules": [{"days": 1}]}`,
		`{"rules": [{"action": "a", "days": -1}]}`,
		`{"rules": [{"name": "x", "action": "a", "days": 1}, {"name": "x", "action": "b", "days": 1}]}`,
		`{"rules": [{"action": "a", "days": 1}, {"name": "y", "action": "a", "days": 2}]}`,
		`{"rules": [{"action": "a", "days": 1, "weeks": 2}]}`,
		`{"policies": []}`,
		`[{"action": "a", "days": 1}]`,
		`not json`,
	} {
		if _, err := LoadRules(write(bad)); trail.ErrorCode(err) != trail.EINVALID {
			t.Errorf("LoadRules(%s) = %v, want EINVALID", bad, err)
		}
	}
	if _, err := LoadRules(filepath.Join(dir, "missing.json")); trail.ErrorCode(err) != trail.EINVALID {
		t.Errorf("LoadRules of a missing file = %v", err)
	}
}
