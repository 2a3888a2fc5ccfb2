// Package retention removes the payloads of events past their retention,
// keeping the log verifiable, and never those a legal hold covers.
//
// NewPlan reads a tenant's log (trail.Store.Scan, a stream) and decides
// each event's retention:
//
//  1. a rule on its action (trail.RetentionRule.Action; an alias names its
//     action),
//  2. else a rule on its category,
//  3. else a rule on one of its action's compliance tags (several: the
//     longest wins, as the law that asks for most),
//  4. else the catalog's retention class of its action (short 90 days,
//     standard 365, long 2555); an action the catalog does not know is
//     standard.
//
// An event is past retention when it was recorded (RecordedAt, the store's
// clock, never the caller's OccurredAt) more than the rule's days before
// the plan's now. Such events are grouped by the rule that applies; those
// an active legal hold covers are kept and counted as held.
//
// Plan.Apply prunes each group through Trail's own path (ledger.Prune), in chunks of at
// most MaxPruneSeqs seqs (and MaxPruneRanges runs of seqs, so that the
// record stays well within an event's context limit), each with its
// audit_log_pruned record: the actor who ran it, the policy (the rule's
// name, or "catalog:CLASS"), pruned_count, seq_ranges ([[first, last],
// ...], exactly the seqs pruned) and held_count (the group's held events,
// on its first record). tlog.PrunedRanges reads those records back so
// that tlog.Verify tells pruning from damage.
//
// The events that are the proof of the log's own history are never
// pruned, whatever the rules say: audit_log_pruned (the proof of a purge:
// without it the pruned rows are damage), legal_hold_placed,
// legal_hold_released and subject_erased.
//
// Rules come from a JSON file (LoadRules), one per tenant if tenants keep
// different policies:
//
//	{"rules": [
//	  {"name": "logins-30d", "action": "user_login_success", "days": 30},
//	  {"name": "notifications", "category": "notification", "days": 7},
//	  {"name": "pci", "compliance": "PCI-DSS", "days": 400}
//	]}
//
// Each rule names exactly one of action, category and compliance, and days
// (0 or more); name defaults to "action:NAME", "category:NAME" or
// "compliance:TAG". No file, no rules: the catalog's classes apply.
package retention

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/internal/ledger"
	"github.com/trailaudit/trail/tlog"
)

// Chunks of Apply: one Prune call removes at most MaxPruneSeqs payloads
// named by at most MaxPruneRanges runs of seqs.
const (
	MaxPruneSeqs   = 10000
	MaxPruneRanges = 1000
)

// Plan is what Apply will prune: for each rule, the seqs of the tenant's
// events past its retention that no legal hold covers.
type Plan struct {
	Tenant  string
	Now     time.Time
	Groups  []*Group // in the order of the rules, then of the catalog's classes
	Scanned int      // events read
	Held    int      // events past retention kept because a hold covers them

	holds []string // IDs of the holds active when planned
}

// Group is the events one rule prunes.
type Group struct {
	Policy string   // the rule's name, or "catalog:CLASS"
	Days   int      // its retention
	Seqs   []uint64 // ascending
	Held   int      // past its retention, kept because a hold covers them

	order int
}

// Ranges returns the group's seqs as [first, last] runs.
func (g *Group) Ranges() [][2]uint64 { return tlog.SeqRanges(g.Seqs) }

// Events returns how many events the plan prunes.
func (p *Plan) Events() int {
	n := 0
	for _, g := range p.Groups {
		n += len(g.Seqs)
	}
	return n
}

// Result is what Apply did.
type Result struct {
	Pruned  int            // payloads removed
	Held    int            // events past retention kept for a hold
	Records []*trail.Event // the audit_log_pruned events appended, in order
}

// LoadRules reads a rules file (see the package documentation); path ""
// means none: nil rules, the catalog's defaults.
func LoadRules(path string) ([]trail.RetentionRule, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, trail.Errorf(trail.EINVALID, "retention rules: %v", err)
	}
	var f struct {
		Rules []trail.RetentionRule `json:"rules"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, trail.Errorf(trail.EINVALID, "retention rules %s: %v", path, err)
	}
	if f.Rules == nil {
		return nil, trail.Errorf(trail.EINVALID, "retention rules %s: no \"rules\" array", path)
	}
	return CheckRules(f.Rules)
}

// CheckRules returns rules with their names filled in, or an EINVALID
// error naming the bad ones: each must select by exactly one of action,
// category and compliance, keep 0 days or more, and have a name no other
// rule has; no two rules may select the same thing.
func CheckRules(rules []trail.RetentionRule) ([]trail.RetentionRule, error) {
	out := slices.Clone(rules)
	var fe []trail.FieldError
	names, selectors := map[string]bool{}, map[string]bool{}
	for i := range out {
		r := &out[i]
		path := trail.PathIndex("rules", i)
		var sel string
		n := 0
		if r.Action != "" {
			n, sel = n+1, "action:"+r.Action
		}
		if r.Category != "" {
			n, sel = n+1, "category:"+r.Category
		}
		if r.Compliance != "" {
			r.Compliance = trail.NormalizeCompliance(r.Compliance)
			n, sel = n+1, "compliance:"+r.Compliance
		}
		if n != 1 {
			fe = append(fe, trail.FieldError{Path: path, Message: "must name exactly one of action, category and compliance"})
			continue
		}
		if r.Days < 0 || r.Days > 100*366 {
			fe = append(fe, trail.FieldError{Path: path + ".days", Message: "must be 0 to 36600"})
		}
		if r.Name == "" {
			r.Name = sel
		}
		if names[r.Name] {
			fe = append(fe, trail.FieldError{Path: path + ".name", Message: fmt.Sprintf("%q names another rule too", r.Name)})
		}
		if selectors[sel] {
			fe = append(fe, trail.FieldError{Path: path, Message: fmt.Sprintf("another rule selects %s too", sel)})
		}
		names[r.Name], selectors[sel] = true, true
	}
	if len(fe) > 0 {
		return nil, trail.Invalid("bad retention rules", fe...)
	}
	return out, nil
}

// policy is a retention decided: the group it goes in, or nil for an
// event retention never prunes.
type policy struct {
	name  string
	days  int
	order int
}

// decider decides events' retention, remembering the answer for each
// action and category.
type decider struct {
	cat                  *catalog.Catalog
	byAction, byCategory map[string]policy
	byCompliance         map[string]policy
	classes              map[string]policy
	memo                 map[[2]string]*policy
}

func newDecider(cat *catalog.Catalog, rules []trail.RetentionRule) *decider {
	d := &decider{cat: cat, byAction: map[string]policy{}, byCategory: map[string]policy{}, byCompliance: map[string]policy{},
		classes: map[string]policy{}, memo: map[[2]string]*policy{}}
	for i, r := range rules {
		p := policy{name: r.Name, days: r.Days, order: i}
		switch {
		case r.Action != "":
			name := r.Action
			if a, ok := cat.Resolve(name); ok {
				name = a.Name
			}
			d.byAction[name] = p
		case r.Category != "":
			d.byCategory[r.Category] = p
		default:
			d.byCompliance[r.Compliance] = p
		}
	}
	for i, c := range cat.RetentionClasses() {
		d.classes[c.Name] = policy{name: "catalog:" + c.Name, days: c.Days, order: len(rules) + i}
	}
	return d
}

// decide returns the retention of events of action and category, or nil
// when they are never pruned.
func (d *decider) decide(action, category string) (*policy, error) {
	key := [2]string{action, category}
	if p, ok := d.memo[key]; ok {
		return p, nil
	}
	def, known := d.cat.Resolve(action)
	name := action
	if known {
		name = def.Name
	}
	// Trail's own records (a purge, a hold, an erasure) prove what
	// happened to the log itself: they are never pruned.
	var p *policy
	if !known || !def.TrailRecord() {
		p = d.rule(name, category, def, known)
		if p == nil {
			return nil, trail.Errorf(trail.EINTERNAL, "retention: the catalog has no retention class %q (action %s)", def.Retention, name)
		}
	}
	d.memo[key] = p
	return p, nil
}

func (d *decider) rule(name, category string, def *trail.Action, known bool) *policy {
	if p, ok := d.byAction[name]; ok {
		return &p
	}
	if p, ok := d.byCategory[category]; ok {
		return &p
	}
	var best *policy
	if known {
		for _, tag := range def.Compliance {
			if p, ok := d.byCompliance[trail.NormalizeCompliance(tag)]; ok && (best == nil || p.days > best.days) {
				best = &p
			}
		}
	}
	if best != nil {
		return best
	}
	class := "standard" // custom actions
	if known && def.Retention != "" {
		class = def.Retention
	}
	if p, ok := d.classes[class]; ok {
		return &p
	}
	return nil
}

// NewPlan reads tenant's log and returns what is past retention at now
// under rules (the catalog's classes for the rest; nil cat: the built-in
// catalog), leaving out the events an active hold of holds covers. Events
// pruned already are not read. (It would be called Plan but for the type.)
func NewPlan(ctx context.Context, store trail.Store, tenant string, cat *catalog.Catalog, rules []trail.RetentionRule, holds []*trail.Hold, now time.Time) (*Plan, error) {
	if m := trail.CheckTenant(tenant); m != "" {
		return nil, trail.Invalid("bad tenant", trail.FieldError{Path: "tenant", Message: m})
	}
	if cat == nil {
		cat = catalog.Default()
	}
	rules, err := CheckRules(rules)
	if err != nil {
		return nil, err
	}
	d := newDecider(cat, rules)
	p := &Plan{Tenant: tenant, Now: now}
	var active []*trail.Hold
	for _, h := range holds {
		if h.Active() && h.Tenant == tenant {
			active = append(active, h)
			p.holds = append(p.holds, h.ID)
		}
	}
	groups := map[string]*Group{}
	cutoffs := map[int]time.Time{}
	err = store.Scan(ctx, tenant, 1, 0, func(ev *trail.Event) error {
		p.Scanned++
		pol, err := d.decide(ev.Action, ev.Category)
		if err != nil || pol == nil {
			return err
		}
		cutoff, ok := cutoffs[pol.days]
		if !ok {
			cutoff = now.Add(-time.Duration(pol.days) * 24 * time.Hour)
			cutoffs[pol.days] = cutoff
		}
		if !ev.RecordedAt.Before(cutoff) {
			return nil
		}
		g := groups[pol.name]
		if g == nil {
			g = &Group{Policy: pol.name, Days: pol.days, order: pol.order}
			groups[pol.name] = g
		}
		for _, h := range active {
			if h.Covers(ev) {
				g.Held++
				p.Held++
				return nil
			}
		}
		g.Seqs = append(g.Seqs, ev.Seq)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("retention: read the log of %s: %w", tenant, err)
	}
	for _, g := range groups {
		p.Groups = append(p.Groups, g)
	}
	slices.SortFunc(p.Groups, func(a, b *Group) int { return a.order - b.order })
	return p, nil
}

// Apply prunes the plan's groups through w, Trail's own path into the
// store, each in chunks (see the package documentation), each chunk one
// ledger.Prune with its audit_log_pruned record naming actor. Before each
// chunk it checks in hs that no hold was placed since the plan (ECONFLICT:
// plan again). On an error the chunks pruned before it stay pruned, and
// the Result says what they were.
func (p *Plan) Apply(ctx context.Context, w ledger.Writer, hs trail.HoldStore, tenant string, actor trail.Actor) (*Result, error) {
	if tenant != p.Tenant {
		return nil, trail.Errorf(trail.EINVALID, "retention: the plan is for tenant %s, not %s", p.Tenant, tenant)
	}
	res := &Result{Held: p.Held}
	for _, g := range p.Groups {
		held := g.Held
		for c := range chunks(g.Seqs) {
			if err := p.noNewHold(ctx, hs, tenant); err != nil {
				return res, err
			}
			r, err := w.AppendOwn(ctx, tenant, ledger.Prune(c, Record(g.Policy, c, held, actor)))
			if err != nil {
				return res, fmt.Errorf("retention: prune %d events of policy %s: %w", len(c), g.Policy, err)
			}
			held = 0 // counted once, on the group's first record
			res.Pruned += len(c)
			res.Records = append(res.Records, r.Events...)
		}
	}
	return res, nil
}

// noNewHold returns ECONFLICT when a hold stands that the plan did not
// know of.
func (p *Plan) noNewHold(ctx context.Context, hs trail.HoldStore, tenant string) error {
	holds, err := hs.Holds(ctx, tenant)
	if err != nil {
		return fmt.Errorf("retention: read legal holds: %w", err)
	}
	for _, h := range holds {
		if h.Active() && !slices.Contains(p.holds, h.ID) {
			return trail.Errorf(trail.ECONFLICT, "retention: legal hold %s was placed after the plan was made: plan again", h.ID)
		}
	}
	return nil
}

// chunks yields seqs (ascending) in runs of at most MaxPruneSeqs seqs and
// MaxPruneRanges ranges.
func chunks(seqs []uint64) func(yield func([]uint64) bool) {
	return func(yield func([]uint64) bool) {
		for len(seqs) > 0 {
			n, ranges := 0, 0
			for n < len(seqs) && n < MaxPruneSeqs {
				if n == 0 || seqs[n] != seqs[n-1]+1 {
					if ranges == MaxPruneRanges {
						break
					}
					ranges++
				}
				n++
			}
			if !yield(seqs[:n:n]) {
				return
			}
			seqs = seqs[n:]
		}
	}
}

// Record returns the audit_log_pruned event of a prune of seqs (ascending)
// under policy, run by actor, with held events of the policy kept for a
// hold.
func Record(policy string, seqs []uint64, held int, actor trail.Actor) *trail.Event {
	rs := tlog.SeqRanges(seqs)
	ranges := make([]any, len(rs))
	for i, r := range rs {
		ranges[i] = []any{r[0], r[1]}
	}
	return &trail.Event{
		Action: catalog.AuditLogPruned,
		Actor:  actor,
		Context: map[string]any{
			"policy":       policy,
			"pruned_count": len(seqs),
			"seq_ranges":   ranges,
			"held_count":   held,
		},
	}
}
