package detect

import (
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// Bounds on what a correlation holds in memory.
const (
	// maxGroupEvents is the most events one group's window holds; beyond
	// it the oldest leave early.
	maxGroupEvents = 10000
	// maxEvidence is the most seqs an alert lists (evidence_count counts
	// them all).
	maxEvidence = 100
	// sweepEvery is how many events a correlation takes between sweeps
	// of the groups no window can reach any more.
	sweepEvery = 4096
)

// windows is the state of one correlation rule in one tenant's log: per
// group (the values of its group-by fields), the events its rules matched
// within one timespan of the group's newest, ordered by occurred_at.
//
// Events arrive in seq order and are counted by occurred_at: an event
// joins its group's window, the events older than a timespan before the
// group's newest leave it, and the condition is evaluated over the window
// at once. So every alert's evidence lies within one timespan. An event
// that occurred a timespan or more before the newest event its group (or
// any group, by more than two timespans) holds is outside every window and
// not counted. When the condition holds the correlation alerts, and the
// window's events are its evidence: they are consumed, so that the next
// alert of the group needs new events.
type windows struct {
	rule   *Rule
	span   int64
	groups map[string]*group
	newest int64 // the latest occurred_at counted in any group
	adds   int
}

type group struct {
	values  []string // the group-by values, in the rule's order
	entries []entry  // by t, then seq
	counts  map[string]int
}

type entry struct {
	seq   uint64
	t     int64 // occurred_at, Unix nanoseconds
	value string
}

func newWindows(r *Rule) *windows {
	return &windows{rule: r, span: int64(r.corr.span), groups: map[string]*group{}, newest: math.MinInt64}
}

func groupKey(values []string) string { return strings.Join(values, "\x1f") }

// add counts the event at seq (occurred at t, with value for a
// value_count) in the group of values. When evaluate is set it returns
// the hit of a condition that now holds (consuming its evidence), else
// nil.
func (w *windows) add(values []string, seq uint64, t time.Time, value string, evaluate bool) *hit {
	e := entry{seq: seq, t: t.UnixNano(), value: value}
	if w.newest != math.MinInt64 && e.t <= w.newest-2*w.span {
		return nil
	}
	key := groupKey(values)
	g := w.groups[key]
	if g == nil {
		g = &group{values: slices.Clone(values)}
		if w.rule.kind == KindValueCount {
			g.counts = map[string]int{}
		}
		w.groups[key] = g
	}
	if n := len(g.entries); n > 0 && e.t <= g.entries[n-1].t-w.span {
		return nil
	}
	at := sort.Search(len(g.entries), func(i int) bool { return g.entries[i].t > e.t })
	g.entries = slices.Insert(g.entries, at, e)
	if g.counts != nil {
		g.counts[value]++
	}
	newest := g.entries[len(g.entries)-1].t
	w.newest = max(w.newest, newest)
	cut := sort.Search(len(g.entries), func(i int) bool { return g.entries[i].t > newest-w.span })
	g.remove(0, max(cut, len(g.entries)-maxGroupEvents))
	if w.adds++; w.adds%sweepEvery == 0 {
		w.sweep()
	}
	if !evaluate {
		return nil
	}
	count := len(g.entries)
	if g.counts != nil {
		count = len(g.counts)
	}
	if !w.rule.corr.holds(count) {
		return nil
	}
	h := &hit{count: len(g.entries), trigger: seq,
		from: time.Unix(0, g.entries[0].t).UTC(), to: time.Unix(0, g.entries[len(g.entries)-1].t).UTC()}
	if g.counts != nil {
		h.values = count
	}
	for _, x := range g.entries {
		h.evidence = append(h.evidence, x.seq)
	}
	slices.Sort(h.evidence)
	h.evidence = h.evidence[:min(len(h.evidence), maxEvidence)]
	if len(w.rule.corr.groupBy) > 0 {
		h.group = map[string]any{}
		for i, f := range w.rule.corr.groupBy {
			h.group[f] = values[i]
		}
	}
	delete(w.groups, key)
	return h
}

// consume removes, from the group of values, the evidence of an alert the
// rule raised: the events at or before trigger that occurred from from to
// to. Replaying the log, the engine meets its own alerts after their
// evidence and consumes it as it did when it raised them.
func (w *windows) consume(values []string, from, to time.Time, trigger uint64) {
	key := groupKey(values)
	g := w.groups[key]
	if g == nil {
		return
	}
	f, t := from.UnixNano(), to.UnixNano()
	kept := g.entries[:0]
	for _, x := range g.entries {
		if x.seq <= trigger && x.t >= f && x.t <= t {
			if g.counts != nil {
				g.uncount(x.value)
			}
			continue
		}
		kept = append(kept, x)
	}
	g.entries = kept
	w.drop(key, g)
}

func (g *group) remove(lo, hi int) {
	if lo >= hi {
		return
	}
	if g.counts != nil {
		for _, x := range g.entries[lo:hi] {
			g.uncount(x.value)
		}
	}
	g.entries = slices.Delete(g.entries, lo, hi)
}

func (g *group) uncount(v string) {
	if g.counts[v]--; g.counts[v] <= 0 {
		delete(g.counts, v)
	}
}

func (w *windows) drop(key string, g *group) {
	if len(g.entries) == 0 {
		delete(w.groups, key)
	}
}

// sweep forgets the groups whose events are all three timespans or more
// older than the newest event of any group: an event that can still be
// counted (less than two timespans older) pushes them out of its window,
// so forgetting them changes nothing.
func (w *windows) sweep() {
	for k, g := range w.groups {
		if n := len(g.entries); n == 0 || g.entries[n-1].t <= w.newest-3*w.span {
			delete(w.groups, k)
		}
	}
}
