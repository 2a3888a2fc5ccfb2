package detect

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/internal/ledger"
	"github.com/trailaudit/trail/tlog"
)

// Trail's own detections are not rules over the events: they are what
// Trail itself finds while it works (a verification that finds damage, a
// caller that tries to write Trail's own records, a witness that refuses
// a checkpoint), raised by the part of Trail that finds it, as alerts of
// the set OwnSet, through OwnAlert. No engine runs the set.
const OwnSet = "trail"

// The ids of Trail's own rules (the rule_id of their alerts).
const (
	// OwnVerificationDamage: a full verification of the log found damage
	// (raised by the UI's full verification).
	OwnVerificationDamage = "trail-verification-damage"
	// OwnForgeryRefused: a caller tried to append Trail's own records (or
	// an api_key actor), and was refused (raised by Forgeries).
	OwnForgeryRefused = "trail-forgery-refused"
	// OwnWitnessRefused: a witness refused to cosign a checkpoint (raised
	// by package witness, beside its witness_refused record).
	OwnWitnessRefused = "trail-witness-refused"
)

// OwnRules returns Trail's own rules, as GET /v1/rules lists them.
func OwnRules() []RuleInfo {
	return []RuleInfo{
		{ID: OwnVerificationDamage, Title: "Verification found damage", Level: LevelCritical, Kind: KindGo,
			Description: "A full verification of the log found events changed, missing, extra or reordered, a bad signature, a fork, an index that disagrees with the signed bytes or a rollback."},
		{ID: OwnForgeryRefused, Title: "Forgery of Trail's records refused", Level: LevelHigh, Kind: KindGo,
			Description: "An API key tried to append one of Trail's own records (purges, holds, erasures, alerts) or an api_key actor; at most one alert per key per hour, counting the attempts."},
		{ID: OwnWitnessRefused, Title: "A witness refused a checkpoint", Level: LevelCritical, Kind: KindGo,
			Description: "A witness refused to cosign the log's checkpoint: it cosigned one this checkpoint does not extend (a rollback or a fork), or it does not accept the log; once per witness until it cosigns again."},
	}
}

// Finding is what one of Trail's own checks found, for OwnAlert.
type Finding struct {
	Rule     string    // one of the Own* ids
	Evidence []uint64  // seqs of the log it concerns, oldest first (may be none)
	Count    int       // how many things it found (at least len(Evidence))
	From, To time.Time // when
	Targets  []trail.Target
	Detail   map[string]any // context keys of its own, beside the alert's
}

// OwnAlert returns the alert_raised event of f: the alert of one of
// Trail's own rules, in the set OwnSet, shaped as the engine's alerts
// are (actor trail-detect, the rule as the first target).
func OwnAlert(f Finding) (*trail.Event, error) {
	var info *RuleInfo
	for _, r := range OwnRules() {
		if r.ID == f.Rule {
			info = &r
		}
	}
	if info == nil {
		return nil, fmt.Errorf("detect: %q is not one of Trail's own rules", f.Rule)
	}
	seqs := make([]any, 0, min(len(f.Evidence), maxEvidence))
	for _, s := range f.Evidence[:min(len(f.Evidence), maxEvidence)] {
		seqs = append(seqs, s)
	}
	var trigger uint64
	if len(f.Evidence) > 0 {
		trigger = f.Evidence[len(f.Evidence)-1]
	}
	ctx := maps.Clone(f.Detail)
	if ctx == nil {
		ctx = map[string]any{}
	}
	for k, v := range map[string]any{"rule_id": info.ID, "rule_title": info.Title, "rule_set": OwnSet, "level": string(info.Level),
		"window_from": timeText(f.From), "window_to": timeText(f.To), "evidence_seqs": seqs,
		"evidence_count": max(f.Count, len(f.Evidence)), "trigger_seq": trigger} {
		ctx[k] = v
	}
	return &trail.Event{Action: catalog.AlertRaised, Actor: Actor, OccurredAt: f.To,
		Targets: append([]trail.Target{{Type: TargetType, ID: info.ID, Name: info.Title}}, f.Targets...), Context: ctx}, nil
}

// DamageAlert returns the alert of a verification of the log (by whom,
// at) that found damage, naming the first items of it; nil when rep
// found none.
func DamageAlert(rep *tlog.Report, by string, at time.Time) *trail.Event {
	if rep.OK() {
		return nil
	}
	var seqs []uint64
	var items []any
	for _, d := range rep.Damage {
		if d.Seq > 0 && (len(seqs) == 0 || seqs[len(seqs)-1] != d.Seq) {
			seqs = append(seqs, d.Seq)
		}
		if len(items) < 10 {
			items = append(items, map[string]any{"kind": string(d.Kind), "seq": d.Seq, "detail": truncateText(d.Detail, 500)})
		}
	}
	first := rep.First()
	ev, err := OwnAlert(Finding{Rule: OwnVerificationDamage, Evidence: seqs, Count: len(rep.Damage), From: at, To: at,
		Detail: map[string]any{"damage": items, "first_damage": fmt.Sprintf("%s at seq %d: %s", first.Kind, first.Seq, truncateText(first.Detail, 500)),
			"verified_by": by, "tree_size": rep.Size}})
	if err != nil {
		panic(err) // OwnVerificationDamage is one of OwnRules
	}
	return ev
}

// truncateText cuts s to n bytes at most, between characters.
func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xc0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}

// Forgeries raises the alerts of refused forgeries of Trail's records: a
// caller (an API key) whose append held one of Trail's own records or an
// api_key actor. So that an attacker cannot flood the log with alerts, a
// key gets at most one alert per Every: the first attempt raises one at
// once; the attempts after it are counted, and the first attempt once
// Every has passed raises the next alert, with the count. Counts returns
// every attempt, per tenant.
type Forgeries struct {
	w     ledger.Writer
	every time.Duration

	mu     sync.Mutex
	keys   map[forgerKey]*forger
	counts map[string]uint64 // attempts per tenant
}

type forgerKey struct{ tenant, key string }

type forger struct {
	alerted time.Time // the last alert's
	since   time.Time // the first attempt not in an alert yet
	pending int       // attempts not in an alert yet
	actions map[string]bool
}

// NewForgeries returns a Forgeries appending its alerts through w, at most
// one per key per every (an hour when every is 0).
func NewForgeries(w ledger.Writer, every time.Duration) *Forgeries {
	if every <= 0 {
		every = time.Hour
	}
	return &Forgeries{w: w, every: every, keys: map[forgerKey]*forger{}, counts: map[string]uint64{}}
}

// Refused counts an append by key (its id and name) to tenant's log that
// was refused at now for holding actions, Trail's own (an api_key actor
// is "actor.type:api_key"), and, when the key has had no alert for Every,
// appends one. It returns the error of an alert that could not be
// appended.
func (f *Forgeries) Refused(ctx context.Context, tenant string, key trail.Actor, actions []string, now time.Time) error {
	f.mu.Lock()
	f.counts[tenant]++
	k := forgerKey{tenant, key.ID}
	g := f.keys[k]
	if g == nil {
		g = &forger{actions: map[string]bool{}}
		f.keys[k] = g
	}
	if g.pending == 0 {
		g.since = now
	}
	g.pending++
	for _, a := range actions {
		if len(g.actions) < 20 {
			g.actions[a] = true
		}
	}
	if !g.alerted.IsZero() && now.Sub(g.alerted) < f.every {
		f.mu.Unlock()
		return nil
	}
	n, from := g.pending, g.since
	acts := make([]any, 0, len(g.actions))
	for _, a := range slices.Sorted(maps.Keys(g.actions)) {
		acts = append(acts, a)
	}
	g.alerted, g.pending, g.actions = now, 0, map[string]bool{}
	f.mu.Unlock()
	ev, err := OwnAlert(Finding{Rule: OwnForgeryRefused, Count: n, From: from, To: now,
		Targets: []trail.Target{{Type: "api_key", ID: key.ID, Name: key.Name}},
		Detail:  map[string]any{"key_id": key.ID, "attempts": n, "actions": acts}})
	if err != nil {
		return err
	}
	if _, err := f.w.AppendOwn(ctx, tenant, ledger.Records(ev)); err != nil {
		f.mu.Lock()
		g.alerted, g.pending = time.Time{}, g.pending+n // the next attempt tries again, counting these
		f.mu.Unlock()
		return fmt.Errorf("detect: recording the alert of a refused forgery by key %s: %w", key.ID, err)
	}
	return nil
}

// Counts returns the refused forgeries counted, per tenant.
func (f *Forgeries) Counts() map[string]uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.counts)
}
