package tlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/trailaudit/trail"
)

// PrunedAction is the action of the event retention appends in the commit
// that removes payloads (catalog.AuditLogPruned): its context names the
// seqs pruned (seq_ranges, [[first, last], ...]) and the policy that
// applied.
const PrunedAction = "audit_log_pruned"

// PrunedRanges returns the pruned ranges tenant's log records: the
// seq_ranges of each of its audit_log_pruned events, with the event's
// policy, time and seq, for VerifyOptions.Pruned. Reading them from the
// log being verified is sound: Verify checks those events' rows like any
// other, so a forged or changed record is damage of its own. A record
// whose seq_ranges do not parse gives no range (and the rows it would have
// covered are damage). They are found by a search on the action, or, when
// the store's index misleads it (trail.ErrIndex), by reading every event.
func PrunedRanges(ctx context.Context, s trail.Store, tenant string) ([]PrunedRange, error) {
	q := trail.Query{Tenant: tenant, Actions: []string{PrunedAction}, Limit: trail.MaxPageSize}
	var out []PrunedRange
	for {
		page, err := s.Query(ctx, q)
		if errors.Is(err, trail.ErrIndex) {
			// An action column was changed behind the store's back (Verify
			// says where): find the records in the events themselves.
			return prunedRangesScanned(ctx, s, tenant)
		}
		if err != nil {
			return nil, fmt.Errorf("tlog: pruned ranges: %w", err)
		}
		for _, ev := range page.Events {
			out = appendPrunedRanges(out, ev)
		}
		if page.Next == "" {
			return out, nil
		}
		q.Cursor = page.Next
	}
}

// prunedRangesScanned is PrunedRanges read from every event of the log.
func prunedRangesScanned(ctx context.Context, s trail.Store, tenant string) ([]PrunedRange, error) {
	var out []PrunedRange
	err := s.Scan(ctx, tenant, 1, 0, func(ev *trail.Event) error {
		out = appendPrunedRanges(out, ev)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tlog: pruned ranges: %w", err)
	}
	return out, nil
}

// appendPrunedRanges appends the ranges ev records, if it is a pruning
// record whose seq_ranges parse.
func appendPrunedRanges(out []PrunedRange, ev *trail.Event) []PrunedRange {
	rs, err := ParseSeqRanges(ev.Context["seq_ranges"])
	if ev.Action != PrunedAction || err != nil {
		return out
	}
	policy, _ := ev.Context["policy"].(string)
	for _, r := range rs {
		out = append(out, PrunedRange{From: r[0], To: r[1], Policy: policy, At: ev.RecordedAt, BySeq: ev.Seq})
	}
	return out
}

// SeqRanges returns the runs of consecutive seqs of seqs (sorted, with no
// repeats), as [first, last] pairs: the seq_ranges of an audit_log_pruned
// event.
func SeqRanges(seqs []uint64) [][2]uint64 {
	var out [][2]uint64
	for _, s := range seqs {
		if n := len(out); n > 0 && out[n-1][1]+1 == s {
			out[n-1][1] = s
		} else {
			out = append(out, [2]uint64{s, s})
		}
	}
	return out
}

// ParseSeqRanges reads seq_ranges from an event's context: an array of
// [first, last] pairs of seqs, 1 <= first <= last, as decoded JSON
// (json.Number or other numbers) or as Go slices.
func ParseSeqRanges(v any) ([][2]uint64, error) {
	var list []any
	switch x := v.(type) {
	case []any:
		list = x
	case [][2]uint64:
		list = make([]any, len(x))
		for i, p := range x {
			list[i] = []any{p[0], p[1]}
		}
	case [][]uint64:
		list = make([]any, len(x))
		for i, p := range x {
			list[i] = toAnys(p)
		}
	default:
		return nil, fmt.Errorf("seq_ranges is not an array of [first, last] pairs")
	}
	out := make([][2]uint64, 0, len(list))
	for i, p := range list {
		var pair []any
		switch x := p.(type) {
		case []any:
			pair = x
		case []uint64:
			pair = toAnys(x)
		case [2]uint64:
			pair = []any{x[0], x[1]}
		}
		if len(pair) != 2 {
			return nil, fmt.Errorf("seq_ranges[%d] is not a [first, last] pair", i)
		}
		a, aok := seqNumber(pair[0])
		b, bok := seqNumber(pair[1])
		if !aok || !bok || a == 0 || a > b {
			return nil, fmt.Errorf("seq_ranges[%d] is not a pair of seqs with 1 <= first <= last", i)
		}
		out = append(out, [2]uint64{a, b})
	}
	return out, nil
}

func toAnys(s []uint64) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// seqNumber reads a seq from a context value.
func seqNumber(v any) (uint64, bool) {
	switch x := v.(type) {
	case json.Number:
		n, err := strconv.ParseUint(string(x), 10, 64)
		return n, err == nil
	case float64:
		return uint64(x), x >= 0 && x == math.Trunc(x) && x < 1<<53
	case int:
		return uint64(x), x >= 0
	case int64:
		return uint64(x), x >= 0
	case uint64:
		return x, true
	case uint32:
		return uint64(x), true
	}
	return 0, false
}

// PruneSeqs checks a Prune call before a store does anything: record is
// an audit_log_pruned event whose seq_ranges name exactly seqs (and whose
// pruned_count, when given, counts them), and seqs are seqs with no
// repeats. It returns seqs sorted. Every failure is EINVALID.
func PruneSeqs(record *trail.Event, seqs []uint64) ([]uint64, error) {
	if record == nil || record.Action != PrunedAction {
		return nil, trail.Errorf(trail.EINVALID, "a prune must be recorded by an %s event", PrunedAction)
	}
	if len(seqs) == 0 {
		return nil, trail.Errorf(trail.EINVALID, "no seqs to prune")
	}
	sorted := slices.Sorted(slices.Values(seqs))
	for i, s := range sorted {
		if s == 0 {
			return nil, trail.Errorf(trail.EINVALID, "seq 0 names no event")
		}
		if i > 0 && s == sorted[i-1] {
			return nil, trail.Errorf(trail.EINVALID, "seq %d is given twice", s)
		}
	}
	rs, err := ParseSeqRanges(record.Context["seq_ranges"])
	if err != nil {
		return nil, trail.Errorf(trail.EINVALID, "the %s event's context: %v", PrunedAction, err)
	}
	if !slices.Equal(rs, SeqRanges(sorted)) {
		return nil, trail.Errorf(trail.EINVALID, "the %s event's seq_ranges do not name exactly the seqs pruned", PrunedAction)
	}
	if c, ok := record.Context["pruned_count"]; ok {
		if n, ok := seqNumber(c); !ok || n != uint64(len(sorted)) {
			return nil, trail.Errorf(trail.EINVALID, "the %s event's pruned_count is not the number of seqs pruned (%d)", PrunedAction, len(sorted))
		}
	}
	return sorted, nil
}
