package tlog

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/trailaudit/trail"
)

// indexColumns are the columns of trail.Index a store keeps, by the name a
// report gives them, but the targets (compared as rows). A column's value
// is its text (get); a time column also has at, so that the rows of a
// sound log are compared without formatting two times each (one instant
// has one text, so equal instants need no look at the text).
var indexColumns = []struct {
	name string
	get  func(*trail.Index) string
	at   func(*trail.Index) time.Time
}{
	{"id", func(ix *trail.Index) string { return ix.ID }, nil},
	{"recorded_at", func(ix *trail.Index) string { return trail.FormatTime(ix.RecordedAt) }, func(ix *trail.Index) time.Time { return ix.RecordedAt }},
	{"occurred_at", func(ix *trail.Index) string { return trail.FormatTime(ix.OccurredAt) }, func(ix *trail.Index) time.Time { return ix.OccurredAt }},
	{"action", func(ix *trail.Index) string { return ix.Action }, nil},
	{"category", func(ix *trail.Index) string { return ix.Category }, nil},
	{"outcome", func(ix *trail.Index) string { return string(ix.Outcome) }, nil},
	{"actor_id", func(ix *trail.Index) string { return ix.ActorID }, nil},
	{"actor_type", func(ix *trail.Index) string { return string(ix.ActorType) }, nil},
	{"organization", func(ix *trail.Index) string { return ix.Organization }, nil},
	{"workspace", func(ix *trail.Index) string { return ix.Workspace }, nil},
	{"team", func(ix *trail.Index) string { return ix.Team }, nil},
	{"correlation_id", func(ix *trail.Index) string { return ix.CorrelationID }, nil},
}

// prunedCleared are the columns retention clears (to "") when it prunes a
// row: the others it keeps, with nothing left to check them against.
var prunedCleared = []string{"actor_id", "organization", "workspace", "team", "correlation_id"}

// indexDamage says what is wrong with the index values a store keeps for
// the row of stored bytes body (empty: pruned; text holds the same bytes,
// trail.CanonicalIndexIn), ix (nil: the store keeps none), or "" when
// they are exactly what trail.IndexOf derives from the event those bytes
// hold; and the recorded_at the bytes hold (zero when they are pruned or
// do not decode).
func indexDamage(body []byte, text string, ix *trail.IndexRow) (string, time.Time) {
	var want trail.Index
	var err error
	if len(body) > 0 {
		want, err = trail.CanonicalIndexIn(body, text)
	}
	if ix == nil || ix.NoEvent {
		return "the store keeps no index values for it: no search can find it", want.RecordedAt
	}
	var got []string
	if len(body) == 0 {
		if !ix.Pruned {
			got = append(got, "its payload is gone but column pruned does not say so: reads fail on it")
		}
		for _, c := range indexColumns {
			if v := c.get(&ix.Index); slices.Contains(prunedCleared, c.name) && v != "" {
				got = append(got, fmt.Sprintf("column %s holds %q, which pruning clears", c.name, v))
			}
		}
		for _, t := range ix.Index.Targets {
			got = append(got, fmt.Sprintf("targets row (%s, %s) is left of a pruned event", t.Type, t.ID))
		}
		return strings.Join(got, "; "), time.Time{}
	}
	if ix.Pruned {
		got = append(got, "column pruned marks it pruned though its payload is there: reads skip it")
	}
	if err != nil {
		return fmt.Sprintf("its stored bytes do not decode, so its index cannot be checked: %v", err), time.Time{}
	}
	if !sameColumns(&ix.Index, &want) {
		got = append(got, columnsDamage(&ix.Index, want)...)
	}
	got = append(got, targetsDamage(ix.Index.Targets, want.Targets)...)
	return strings.Join(got, "; "), want.RecordedAt
}

// sameColumns reports whether a and b hold the same columns (indexColumns;
// times as instants): the check of a sound row, a direct call, so that
// the Index derived for each row stays off the heap.
func sameColumns(a, b *trail.Index) bool {
	return a.ID == b.ID && a.RecordedAt.Equal(b.RecordedAt) && a.OccurredAt.Equal(b.OccurredAt) &&
		a.Action == b.Action && a.Category == b.Category && a.Outcome == b.Outcome &&
		a.ActorID == b.ActorID && a.ActorType == b.ActorType && a.Organization == b.Organization &&
		a.Workspace == b.Workspace && a.Team == b.Team && a.CorrelationID == b.CorrelationID
}

// columnsDamage names each column of stored that differs from want's.
func columnsDamage(stored *trail.Index, want trail.Index) []string {
	var out []string
	for _, c := range indexColumns {
		if c.at != nil && c.at(stored).Equal(c.at(&want)) {
			continue
		}
		if g, w := c.get(stored), c.get(&want); g != w {
			out = append(out, fmt.Sprintf("column %s holds %q, the event says %q", c.name, g, w))
		}
	}
	return out
}

// targetsDamage compares the targets rows stored (in any order, repeats
// kept) with those the event gives (each once).
func targetsDamage(stored, want []trail.Target) []string {
	if slices.Equal(stored, want) {
		return nil // want names each target once, so stored holds no repeat
	}
	order := func(a, b trail.Target) int { return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(a.ID, b.ID)) }
	stored = slices.SortedFunc(slices.Values(stored), order)
	want = slices.SortedFunc(slices.Values(want), order)
	var out []string
	for i, j := 0, 0; i < len(stored) || j < len(want); {
		var c int
		switch {
		case i == len(stored):
			c = 1
		case j == len(want):
			c = -1
		default:
			c = order(stored[i], want[j])
		}
		switch {
		case c < 0 && i > 0 && stored[i] == stored[i-1]:
			out = append(out, fmt.Sprintf("targets row (%s, %s) is stored twice", stored[i].Type, stored[i].ID))
			i++
		case c < 0:
			out = append(out, fmt.Sprintf("targets row (%s, %s) names no target of the event", stored[i].Type, stored[i].ID))
			i++
		case c > 0:
			out = append(out, fmt.Sprintf("the event's target (%s, %s) has no targets row", want[j].Type, want[j].ID))
			j++
		default:
			i++
			j++
		}
	}
	return out
}

// orphanDamage says what is wrong with index values at a seq where the log
// holds no row.
func orphanDamage(ix *trail.IndexRow) string {
	if len(ix.Index.Targets) == 0 {
		return fmt.Sprintf("the store keeps index values at seq %d, which holds no event", ix.Seq)
	}
	var rows []string
	for _, t := range ix.Index.Targets {
		rows = append(rows, fmt.Sprintf("(%s, %s)", t.Type, t.ID))
	}
	return fmt.Sprintf("targets rows %s at seq %d, which holds no event", strings.Join(rows, ", "), ix.Seq)
}
