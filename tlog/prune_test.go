package tlog

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
)

func TestPrunedActionIsTheCatalogs(t *testing.T) {
	if PrunedAction != catalog.AuditLogPruned {
		t.Fatalf("PrunedAction = %q, catalog says %q", PrunedAction, catalog.AuditLogPruned)
	}
}

// prunedLog is the tamper table's log with seq 30 an audit_log_pruned
// record, and the payloads of seqs 5 to 9 and 12 removed.
func prunedLog(t *testing.T, s *Signer) (*memLog, []PrunedRange) {
	bodies := events(tamperEvents, 200)
	bodies[29] = []byte(`{"action":"audit_log_pruned","context":{"policy":"short"},"id":"ev-30","seq":30,"tenant":"acme","v":1}`)
	l := buildLog(t, s, bodies, tamperGroups...)
	for _, seq := range []uint64{5, 6, 7, 8, 9, 12} {
		l.rows[l.row(seq)].Body = nil
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return l, []PrunedRange{{From: 12, To: 12, Policy: "short", At: at, BySeq: 30}, {From: 5, To: 9, Policy: "short", At: at, BySeq: 30}}
}

func TestVerifyPruned(t *testing.T) {
	s := signer(t, testKey)
	tests := []struct {
		name   string
		tamper func(l *memLog, ranges []PrunedRange) []PrunedRange
		want   []string
		ranges int // ranges the report lists
	}{
		{name: "pruned rows with their record", tamper: func(l *memLog, r []PrunedRange) []PrunedRange { return r }, ranges: 2},
		{
			name:   "pruned rows with no record",
			tamper: func(l *memLog, r []PrunedRange) []PrunedRange { return nil },
			want:   []string{"changed@5", "changed@6", "changed@7", "changed@8", "changed@9", "changed@12"},
		},
		{
			name:   "a record that covers only some",
			tamper: func(l *memLog, r []PrunedRange) []PrunedRange { return r[1:] },
			want:   []string{"changed@12"},
			ranges: 1,
		},
		{
			name: "empty body cleared behind the store's back, outside the ranges",
			tamper: func(l *memLog, r []PrunedRange) []PrunedRange {
				l.rows[l.row(20)].Body = []byte{}
				return r
			},
			want:   []string{"changed@20"},
			ranges: 2,
		},
		{
			name: "a record that names seqs after it",
			tamper: func(l *memLog, r []PrunedRange) []PrunedRange {
				return append(r, PrunedRange{From: 5, To: 40, BySeq: 30})
			},
			want:   []string{"reordered@30"},
			ranges: 2,
		},
		{
			name: "a record that names an empty range",
			tamper: func(l *memLog, r []PrunedRange) []PrunedRange {
				return append(r, PrunedRange{From: 9, To: 5, BySeq: 30})
			},
			want:   []string{"changed@30"},
			ranges: 2,
		},
		{
			name: "the record's row holds another event",
			tamper: func(l *memLog, r []PrunedRange) []PrunedRange {
				for i := range r {
					r[i].BySeq = 31
				}
				return r
			},
			want:   []string{"changed@31"},
			ranges: 2,
		},
		{
			name: "the record itself pruned",
			tamper: func(l *memLog, r []PrunedRange) []PrunedRange {
				l.rows[l.row(30)].Body = nil
				return r
			},
			want:   []string{"changed@30"},
			ranges: 2,
		},
		{
			name: "the record past the end of the log",
			tamper: func(l *memLog, r []PrunedRange) []PrunedRange {
				return append(r, PrunedRange{From: 20, To: 20, BySeq: 60})
			},
			want:   []string{"missing@60"},
			ranges: 3,
		},
		{
			// Seq 8 stores the nodes it completed: they no longer match.
			name: "a pruned row's leaf hash changed",
			tamper: func(l *memLog, r []PrunedRange) []PrunedRange {
				h := slices.Clone(l.rows[l.row(8)].Hashes)
				h[0] ^= 1
				l.rows[l.row(8)].Hashes = h
				return r
			},
			want:   []string{"changed@8"},
			ranges: 2,
		},
		{
			// Seq 7 completes no node: the node seq 8 completes finds it.
			name: "a pruned row's leaf hash changed where it completes no node",
			tamper: func(l *memLog, r []PrunedRange) []PrunedRange {
				h := slices.Clone(l.rows[l.row(7)].Hashes)
				h[0] ^= 1
				l.rows[l.row(7)].Hashes = h
				return r
			},
			want:   []string{"changed@8"},
			ranges: 2,
		},
		{
			name: "a pruned row with no hashes",
			tamper: func(l *memLog, r []PrunedRange) []PrunedRange {
				l.rows[l.row(6)].Hashes = nil
				return r
			},
			want:   []string{"changed@6"},
			ranges: 2,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, ranges := prunedLog(t, s)
			opts := VerifyOptions{Pruned: tc.tamper(l, ranges)}
			rep, err := Verify(context.Background(), l, testTenant, s.Verifier(), opts)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range rep.Damage {
				got = append(got, fmt.Sprintf("%s@%d", d.Kind, d.Seq))
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("damage %q, want %q\n%+v", got, tc.want, rep.Damage)
			}
			if len(rep.Pruned) != tc.ranges {
				t.Errorf("report lists %d pruned ranges, want %d: %+v", len(rep.Pruned), tc.ranges, rep.Pruned)
			}
			if rep.Leaves != tamperEvents || rep.Size != tamperEvents {
				t.Errorf("read %d rows, size %d", rep.Leaves, rep.Size)
			}
		})
	}
}

func TestSeqRanges(t *testing.T) {
	got := SeqRanges([]uint64{1, 2, 3, 5, 7, 8})
	if want := [][2]uint64{{1, 3}, {5, 5}, {7, 8}}; !slices.Equal(got, want) {
		t.Fatalf("SeqRanges = %v, want %v", got, want)
	}
	if SeqRanges(nil) != nil {
		t.Error("SeqRanges(nil) is not nil")
	}
}

func TestParseSeqRanges(t *testing.T) {
	var decoded any
	if err := json.Unmarshal([]byte(`[[1,3],[5,5]]`), &decoded); err != nil {
		t.Fatal(err)
	}
	for _, v := range []any{
		decoded,
		[]any{[]any{json.Number("1"), json.Number("3")}, []any{json.Number("5"), json.Number("5")}},
		[][2]uint64{{1, 3}, {5, 5}},
		[][]uint64{{1, 3}, {5, 5}},
		[]any{[]any{1, 3}, []any{int64(5), uint64(5)}},
	} {
		got, err := ParseSeqRanges(v)
		if err != nil || !slices.Equal(got, [][2]uint64{{1, 3}, {5, 5}}) {
			t.Errorf("ParseSeqRanges(%#v) = %v, %v", v, got, err)
		}
	}
	for _, v := range []any{
		nil, "1-3", []any{[]any{1}}, []any{[]any{3, 1}}, []any{[]any{0, 1}}, []any{[]any{-1, 1}},
		[]any{[]any{1.5, 2}}, []any{[]any{json.Number("1e3"), json.Number("2000")}}, []any{"x"},
	} {
		if got, err := ParseSeqRanges(v); err == nil {
			t.Errorf("ParseSeqRanges(%#v) = %v, want an error", v, got)
		}
	}
}

func TestPruneSeqs(t *testing.T) {
	record := func(ranges any, count any) *trail.Event {
		ctx := map[string]any{"policy": "p", "seq_ranges": ranges}
		if count != nil {
			ctx["pruned_count"] = count
		}
		return &trail.Event{Action: PrunedAction, Context: ctx}
	}
	got, err := PruneSeqs(record([]any{[]any{json.Number("2"), json.Number("4")}, []any{json.Number("9"), json.Number("9")}}, json.Number("4")), []uint64{9, 3, 2, 4})
	if err != nil || !slices.Equal(got, []uint64{2, 3, 4, 9}) {
		t.Fatalf("PruneSeqs = %v, %v", got, err)
	}
	for name, tc := range map[string]struct {
		ev   *trail.Event
		seqs []uint64
	}{
		"no record":          {nil, []uint64{1}},
		"another action":     {&trail.Event{Action: "user_login_success"}, []uint64{1}},
		"no seqs":            {record([][2]uint64{{1, 1}}, nil), nil},
		"seq 0":              {record([][2]uint64{{1, 1}}, nil), []uint64{0, 1}},
		"a seq twice":        {record([][2]uint64{{1, 2}}, nil), []uint64{1, 2, 2}},
		"ranges name more":   {record([][2]uint64{{1, 3}}, nil), []uint64{1, 2}},
		"ranges name fewer":  {record([][2]uint64{{1, 1}}, nil), []uint64{1, 2}},
		"ranges not merged":  {record([][2]uint64{{1, 1}, {2, 2}}, nil), []uint64{1, 2}},
		"no ranges":          {record(nil, nil), []uint64{1}},
		"count is not right": {record([][2]uint64{{1, 2}}, json.Number("3")), []uint64{1, 2}},
	} {
		if _, err := PruneSeqs(tc.ev, tc.seqs); trail.ErrorCode(err) != trail.EINVALID {
			t.Errorf("%s: PruneSeqs = %v, want EINVALID", name, err)
		}
	}
}
