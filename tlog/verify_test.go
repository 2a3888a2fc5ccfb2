package tlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trailaudit/trail"
)

// The log the tamper table starts from: 50 events committed in groups of
// these sizes, so that its checkpoints have sizes 1, 4, 11, 13, 18, 19,
// 23, 31, 37, 40 and 50.
var tamperGroups = []int{1, 3, 7, 2, 5, 1, 4, 8, 6, 3, 10}

const tamperEvents = 50

// changedFrom returns the tamper table's bodies with those of seq from
// on changed.
func changedFrom(from int) [][]byte {
	bodies := events(tamperEvents, 200)
	for i := from - 1; i < len(bodies); i++ {
		bodies[i] = bytes.Replace(bodies[i], []byte("document.viewed"), []byte("document.deleted"), 1)
	}
	return bodies
}

// setBody replaces the body of seq's row; with fixLeaf, also the leaf hash
// at the start of its Hashes, as an intruder who knows RFC 6962 would.
func (l *memLog) setBody(seq uint64, body []byte, fixLeaf bool) {
	r := &l.rows[l.row(seq)]
	r.Body = body
	if fixLeaf {
		r.Hashes = slices.Concat(LeafHash(body), r.Hashes[trail.HashSize:])
	}
}

// editByte returns body with one byte of its padding changed.
func editByte(body []byte) []byte {
	b := slices.Clone(body)
	b[60] ^= 1
	return b
}

// indexed returns the index values a store keeps for body at seq, as
// trail.IndexOf gives them, changed by edit: what an intruder left.
func indexed(t *testing.T, seq uint64, body []byte, edit func(ix *trail.IndexRow)) *trail.IndexRow {
	t.Helper()
	ev, err := trail.UnmarshalCanonical(body)
	if err != nil {
		t.Fatal(err)
	}
	ix := &trail.IndexRow{Seq: seq, Index: trail.IndexOf(ev)}
	edit(ix)
	return ix
}

// setIndex makes the index values of seq ix (nil: none).
func (l *memLog) setIndex(seq uint64, ix *trail.IndexRow) *memLog {
	if l.index == nil {
		l.index = map[uint64]*trail.IndexRow{}
	}
	l.index[seq] = ix
	return l
}

// cut keeps the rows up to size and the checkpoints of at most size, as a
// rollback to the checkpoint of that size leaves them.
func (l *memLog) cut(t *testing.T, size uint64) *memLog {
	t.Helper()
	l.rows = l.rows[:l.row(size)+1]
	l.notes = slices.DeleteFunc(l.notes, func(n []byte) bool {
		cp, err := ParseUnverified(n)
		return err != nil || cp.Size > size
	})
	return l
}

// head records size as a store's head would.
func head(size uint64) []trail.SizeRecord {
	return []trail.SizeRecord{{Where: "the heads row", Size: size, Head: true}}
}

func TestVerify(t *testing.T) {
	s := signer(t, testKey)
	bodies := events(tamperEvents, 200)
	orig := buildLog(t, s, bodies, tamperGroups...)
	rewritten := buildLog(t, s, changedFrom(25), tamperGroups...)

	tests := []struct {
		name   string
		tamper func(l *memLog) *memLog // changes a clone of orig; returns the log to verify
		saved  []int                   // indexes in orig.notes of checkpoints an auditor kept
		want   []string                // kind@seq of each damage, in report order
	}{
		{name: "intact log", tamper: func(l *memLog) *memLog { return l }},
		{name: "empty log", tamper: func(*memLog) *memLog { return &memLog{} }},
		{
			name:   "one byte of a body changed",
			tamper: func(l *memLog) *memLog { l.setBody(17, editByte(bodies[16]), false); return l },
			want:   []string{"changed@17"},
		},
		{
			name: "body changed and its leaf hash fixed: seq 8 completes nodes, stored in its own row",
			tamper: func(l *memLog) *memLog {
				l.setBody(8, editByte(bodies[7]), true)
				return l
			},
			want: []string{"changed@8"},
		},
		{
			// Seq 13 completes no node; the checkpoint of size 13 catches
			// it, and can only say the damage lies after the last
			// checkpoint that matched (size 11).
			name: "body changed and its leaf hash fixed: seq 13 completes none, a checkpoint ends there",
			tamper: func(l *memLog) *memLog {
				l.setBody(13, editByte(bodies[12]), true)
				return l
			},
			want: []string{"changed@12"},
		},
		{
			name: "rows from 25 rewritten with consistent hashes, checkpoints kept",
			tamper: func(l *memLog) *memLog {
				l.rows = rewritten.rows
				return l
			},
			want: []string{"changed@24"},
		},
		{
			name:   "row deleted",
			tamper: func(l *memLog) *memLog { l.rows = slices.Delete(l.rows, 19, 20); return l },
			want:   []string{"missing@20"},
		},
		{
			name:   "rows 20 to 22 deleted",
			tamper: func(l *memLog) *memLog { l.rows = slices.Delete(l.rows, 19, 22); return l },
			want:   []string{"missing@20"},
		},
		{
			name: "forged row appended with plausible hashes",
			tamper: func(l *memLog) *memLog {
				longer := buildLog(t, s, events(tamperEvents+1, 200), tamperGroups...)
				l.rows = append(l.rows, longer.rows[tamperEvents])
				return l
			},
			want: []string{"extra@51"},
		},
		{
			name: "rows 30 and 33 swapped, bodies and hashes",
			tamper: func(l *memLog) *memLog {
				a, b := l.row(30), l.row(33)
				l.rows[a].Body, l.rows[b].Body = l.rows[b].Body, l.rows[a].Body
				l.rows[a].Hashes, l.rows[b].Hashes = l.rows[b].Hashes, l.rows[a].Hashes
				return l
			},
			want: []string{"reordered@30", "reordered@33"},
		},
		{
			name:   "last 5 rows cut",
			tamper: func(l *memLog) *memLog { l.rows = l.rows[:tamperEvents-5]; return l },
			want:   []string{"missing@46"},
		},
		{
			name:   "checkpoint of size 18 re-signed by another key of the same name",
			tamper: func(l *memLog) *memLog { l.notes[4] = resign(t, otherKey, l.notes[4]); return l },
			want:   []string{"bad_signature@18"},
		},
		{
			// The rows after the last good checkpoint are signed by none.
			name:   "latest checkpoint re-signed by another key of the same name",
			tamper: func(l *memLog) *memLog { l.notes[10] = resign(t, otherKey, l.notes[10]); return l },
			want:   []string{"extra@41", "bad_signature@50"},
		},
		{
			name:   "checkpoint of size 40 replayed at the end",
			tamper: func(l *memLog) *memLog { l.notes = append(l.notes, l.notes[9]); return l },
			want:   []string{"reordered@40"},
		},
		{
			name: "event stored under another seq, hashes and checkpoints consistent",
			tamper: func(*memLog) *memLog {
				b := slices.Clone(bodies)
				b[9] = event(11, 200)
				return buildLog(t, s, b, tamperGroups...)
			},
			want: []string{"reordered@10"},
		},
		{
			name: "event with no seq, hashes and checkpoints consistent",
			tamper: func(*memLog) *memLog {
				b := slices.Clone(bodies)
				b[4] = []byte(`{"action":"document.viewed","v":1}`)
				return buildLog(t, s, b, tamperGroups...)
			},
			want: []string{"reordered@5"},
		},
		{
			name:   "history rewritten from seq 25 and re-signed with the real key",
			tamper: func(*memLog) *memLog { return rewritten },
		},
		{
			name:   "the same, verified with the checkpoint of size 31 saved before",
			tamper: func(*memLog) *memLog { return rewritten },
			saved:  []int{7},
			want:   []string{"fork@1"},
		},
		{
			// The saved checkpoint of size 13 still matches: the fork
			// lies after it.
			name:   "the same, with the checkpoints of size 13 and 31 saved before",
			tamper: func(*memLog) *memLog { return rewritten },
			saved:  []int{3, 7},
			want:   []string{"fork@14"},
		},
		{
			name:   "the same, with the checkpoint of size 23 saved before (it predates the change)",
			tamper: func(*memLog) *memLog { return rewritten },
			saved:  []int{6},
		},
		{
			name:   "log cut back to 45 events and re-signed, verified with the checkpoint of size 50 saved before",
			tamper: func(*memLog) *memLog { return buildLog(t, s, bodies[:45], tamperGroups...) },
			saved:  []int{10},
			want:   []string{"rollback@46"},
		},
		{
			name: "the action column of seq 17 changed",
			tamper: func(l *memLog) *memLog {
				return l.setIndex(17, indexed(t, 17, bodies[16], func(ix *trail.IndexRow) { ix.Index.Action = "document.deleted" }))
			},
			want: []string{"index@17"},
		},
		{
			name: "a targets row planted on seq 9, and one on seq 30 given another id",
			tamper: func(l *memLog) *memLog {
				l.setIndex(9, indexed(t, 9, bodies[8], func(ix *trail.IndexRow) { ix.Index.Targets = []trail.Target{{Type: "doc", ID: "d-1"}} }))
				return l.setIndex(30, indexed(t, 30, bodies[29], func(ix *trail.IndexRow) { ix.Index.ID = "ev-31" }))
			},
			want: []string{"index@9", "index@30"},
		},
		{
			name: "seq 5 marked pruned with its payload there",
			tamper: func(l *memLog) *memLog {
				return l.setIndex(5, indexed(t, 5, bodies[4], func(ix *trail.IndexRow) { ix.Pruned = true }))
			},
			want: []string{"index@5"},
		},
		{
			name:   "no index values kept for seq 20",
			tamper: func(l *memLog) *memLog { return l.setIndex(20, nil) },
			want:   []string{"index@20"},
		},
		{
			name: "row 20 deleted, its targets rows left; one planted past the end",
			tamper: func(l *memLog) *memLog {
				l.rows = slices.Delete(l.rows, 19, 20)
				l.setIndex(20, &trail.IndexRow{Seq: 20, NoEvent: true, Index: trail.Index{Targets: []trail.Target{{Type: "doc", ID: "d-1"}}}})
				return l.setIndex(60, &trail.IndexRow{Seq: 60, NoEvent: true, Index: trail.Index{Targets: []trail.Target{{Type: "doc", ID: "d-2"}}}})
			},
			want: []string{"index@20", "missing@20"},
		},
		{
			name:   "the head records more rows than the log holds",
			tamper: func(l *memLog) *memLog { l.sizes = head(52); return l },
			want:   []string{"rollback@51"},
		},
		{
			name:   "rows and checkpoints cut back to size 40, the head left at 50",
			tamper: func(l *memLog) *memLog { l.sizes = head(50); return l.cut(t, 40) },
			want:   []string{"rollback@41"},
		},
		{
			name:   "the head set back to 30",
			tamper: func(l *memLog) *memLog { l.sizes = head(30); return l },
			want:   []string{"rollback@31"},
		},
		{
			name: "idempotency keys name seqs past the end",
			tamper: func(l *memLog) *memLog {
				l.sizes = append(head(40), trail.SizeRecord{Where: "the idempotency keys", Size: 48})
				return l.cut(t, 40)
			},
			want: []string{"rollback@41"},
		},
		{
			name:   "everything cut back to size 40 consistently",
			tamper: func(l *memLog) *memLog { l.sizes = head(40); return l.cut(t, 40) },
		},
		{
			name:   "the same, verified with the checkpoint of size 50 saved before",
			tamper: func(l *memLog) *memLog { l.sizes = head(40); return l.cut(t, 40) },
			saved:  []int{10},
			want:   []string{"rollback@41"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := tc.tamper(orig.clone())
			var opts VerifyOptions
			for _, i := range tc.saved {
				opts.Saved = append(opts.Saved, orig.notes[i])
			}
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
			if rep.OK() != (len(tc.want) == 0) || (rep.First() == nil) != rep.OK() {
				t.Errorf("OK() = %v, First() = %v with damage %q", rep.OK(), rep.First(), got)
			}
			if rep.Leaves != uint64(len(l.rows)) || rep.Checkpoints != len(l.notes) || rep.Saved != len(tc.saved) {
				t.Errorf("read %d rows, %d checkpoints, %d saved; want %d, %d, %d",
					rep.Leaves, rep.Checkpoints, rep.Saved, len(l.rows), len(l.notes), len(tc.saved))
			}
		})
	}
}

// resign returns note with its checkpoint signed by skey instead.
func resign(tb testing.TB, skey string, note []byte) []byte {
	tb.Helper()
	cp, err := ParseUnverified(note)
	if err != nil {
		tb.Fatal(err)
	}
	out, err := signer(tb, skey).Sign(testTenant, cp.Size, cp.Root)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func TestVerifyReport(t *testing.T) {
	s := signer(t, testKey)
	bodies := events(tamperEvents, 200)
	rep, err := Verify(context.Background(), buildLog(t, s, bodies, tamperGroups...), testTenant, s.Verifier(), VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := Report{Tenant: testTenant, Leaves: 50, Size: 50, Root: mth(bodies), Checkpoints: len(tamperGroups)}
	if rep.Tenant != want.Tenant || rep.Leaves != want.Leaves || rep.Size != want.Size || !bytes.Equal(rep.Root, want.Root) ||
		rep.Checkpoints != want.Checkpoints || rep.Saved != 0 || rep.Damage != nil {
		t.Errorf("report %+v, want %+v", rep, want)
	}
}

// TestVerifyUnvouched: the report says what no checkpoint kept outside the
// database vouches for, since a consistent rollback of everything inside
// it cannot be seen from inside.
func TestVerifyUnvouched(t *testing.T) {
	s := signer(t, testKey)
	l := buildLog(t, s, events(tamperEvents, 200), tamperGroups...)
	for _, tc := range []struct {
		name    string
		saved   [][]byte
		vouched uint64
		says    string // in Unvouched; "" for none
	}{
		{"no saved checkpoint", nil, 0, "nothing outside the database vouches for this log: a rollback"},
		{"the checkpoint of size 31 saved", [][]byte{l.notes[7]}, 31, "vouches for seqs 32 to 50, past the saved checkpoint of size 31"},
		{"the latest checkpoint saved", [][]byte{l.notes[7], l.notes[10]}, 50, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := Verify(context.Background(), l, testTenant, s.Verifier(), VerifyOptions{Saved: tc.saved})
			if err != nil || !rep.OK() {
				t.Fatalf("Verify: %v %+v", err, rep)
			}
			if rep.Vouched != tc.vouched || (tc.says == "") != (rep.Unvouched == "") || !strings.Contains(rep.Unvouched, tc.says) {
				t.Errorf("vouched %d, unvouched %q; want %d and %q", rep.Vouched, rep.Unvouched, tc.vouched, tc.says)
			}
		})
	}
}

// TestIndexDamage: what a report says of a row whose index values are not
// what its bytes give.
func TestIndexDamage(t *testing.T) {
	body := []byte(`{"action":"document.viewed","actor":{"id":"u-1","type":"user"},"id":"ev-1","seq":1,` +
		`"targets":[{"id":"d-1","type":"doc"},{"id":"d-1","type":"doc"},{"id":"f-1","type":"folder"}],"tenant":"acme","v":1}`)
	doc, folder := trail.Target{Type: "doc", ID: "d-1"}, trail.Target{Type: "folder", ID: "f-1"}
	for _, tc := range []struct {
		name string
		body []byte
		edit func(ix *trail.IndexRow)
		want string
	}{
		{"as the bytes give", body, func(*trail.IndexRow) {}, ""},
		{"targets in another order", body, func(ix *trail.IndexRow) { ix.Index.Targets = []trail.Target{folder, doc} }, ""},
		{"actor_id changed", body, func(ix *trail.IndexRow) { ix.Index.ActorID = "x-1" },
			`column actor_id holds "x-1", the event says "u-1"`},
		{"two columns changed", body, func(ix *trail.IndexRow) { ix.Index.Outcome, ix.Index.Workspace = "failure", "ws-9" },
			`column outcome holds "failure", the event says ""; column workspace holds "ws-9", the event says ""`},
		{"a targets row deleted", body, func(ix *trail.IndexRow) { ix.Index.Targets = []trail.Target{folder} },
			"the event's target (doc, d-1) has no targets row"},
		{"a targets row changed", body, func(ix *trail.IndexRow) { ix.Index.Targets[0].ID = "d-2" },
			"the event's target (doc, d-1) has no targets row; targets row (doc, d-2) names no target of the event"},
		{"a targets row planted", body, func(ix *trail.IndexRow) {
			ix.Index.Targets = append(ix.Index.Targets, trail.Target{Type: "doc", ID: "d-0"})
		},
			"targets row (doc, d-0) names no target of the event"},
		{"a targets row stored twice", body, func(ix *trail.IndexRow) { ix.Index.Targets = append(ix.Index.Targets, doc) },
			"targets row (doc, d-1) is stored twice"},
		{"marked pruned", body, func(ix *trail.IndexRow) { ix.Pruned = true },
			"column pruned marks it pruned though its payload is there: reads skip it"},
		{"bytes that do not decode", []byte(`{"action":1,"v":1}`), func(*trail.IndexRow) {},
			"its stored bytes do not decode, so its index cannot be checked: canonical event: json: cannot unmarshal number"},
		{"pruned as retention leaves it", nil, func(ix *trail.IndexRow) { ix.Index, ix.Pruned = trail.Index{Action: "document.viewed"}, true }, ""},
		{"pruned, but not marked", nil, func(ix *trail.IndexRow) { ix.Index = trail.Index{} },
			"its payload is gone but column pruned does not say so: reads fail on it"},
		{"pruned, with a column and a targets row planted", nil, func(ix *trail.IndexRow) {
			ix.Pruned, ix.Index = true, trail.Index{ActorID: "u-1", Targets: []trail.Target{doc}}
		}, `column actor_id holds "u-1", which pruning clears; targets row (doc, d-1) is left of a pruned event`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ix := indexed(t, 1, body, tc.edit)
			if got, _ := indexDamage(tc.body, string(tc.body), ix); !strings.HasPrefix(got, tc.want) || (tc.want == "") != (got == "") {
				t.Errorf("indexDamage = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestVerifyDamageOutlivesBatch: what a report says of a row is its own,
// not a view of the batch buffer the row was read into (compare reads the
// index strings of a batch as slices of its bytes, and the buffer is
// refilled by later batches): a damaged row of the first batch, in a log
// of many batches, reads the same once Verify is done with every batch.
func TestVerifyDamageOutlivesBatch(t *testing.T) {
	s := signer(t, testKey)
	const rows = 20 * batchRows // well over the batches a scan keeps in flight
	l := buildLog(t, s, events(rows, 400), 1000)
	for _, seq := range []uint64{2, rows - 1} {
		l.setIndex(seq, indexed(t, seq, l.rows[seq-1].Body, func(ix *trail.IndexRow) { ix.Index.ID = "forged" }))
	}
	rep, err := Verify(context.Background(), l, testTenant, s.Verifier(), VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Damage{
		{Kind: Index, Seq: 2, Detail: `column id holds "forged", the event says "ev-2"`},
		{Kind: Index, Seq: rows - 1, Detail: fmt.Sprintf(`column id holds "forged", the event says "ev-%d"`, rows-1)},
	}
	if !slices.Equal(rep.Damage, want) {
		t.Errorf("damage %+v, want %+v", rep.Damage, want)
	}
}

// TestVerifyMaxDamage checks that a log damaged throughout gives a report
// of the MaxDamage lowest seqs.
func TestVerifyMaxDamage(t *testing.T) {
	s := signer(t, testKey)
	l := buildLog(t, s, events(5*MaxDamage, 100), 7)
	for i := range l.rows {
		l.rows[i].Body = editByte(l.rows[i].Body)
	}
	rep, err := Verify(context.Background(), l, testTenant, s.Verifier(), VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Damage) != MaxDamage || rep.First().Seq != 1 || rep.Damage[MaxDamage-1].Seq != MaxDamage {
		t.Errorf("%d damages from seq %d to %d, want %d from 1", len(rep.Damage), rep.First().Seq, rep.Damage[len(rep.Damage)-1].Seq, MaxDamage)
	}
}

func TestVerifyErrors(t *testing.T) {
	ctx := context.Background()
	s := signer(t, testKey)
	l := buildLog(t, s, events(10, 100), 3)
	broken := l.clone()
	broken.fail = errors.New("disk on fire")
	noIndex := l.clone()
	noIndex.indexFail = trail.Errorf(trail.EINTERNAL, "index on fire")
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	globex, err := s.Sign("globex", 3, mth(events(3, 100)))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		ctx   context.Context
		l     *memLog
		saved [][]byte
		code  string
	}{
		{"scan fails", ctx, broken, nil, trail.EINTERNAL},
		{"index scan fails", ctx, noIndex, nil, trail.EINTERNAL},
		{"context canceled", canceled, l, nil, trail.EINTERNAL},
		{"saved checkpoint of another tenant", ctx, l, [][]byte{globex}, trail.EINVALID},
		{"saved checkpoint not a note", ctx, l, [][]byte{[]byte("size 3")}, trail.EINVALID},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Verify(tc.ctx, tc.l, testTenant, s.Verifier(), VerifyOptions{Saved: tc.saved})
			if err == nil || trail.ErrorCode(err) != tc.code {
				t.Errorf("error %v, want code %s", err, tc.code)
			}
		})
	}
	if _, err := Verify(ctx, l, testTenant, nil, VerifyOptions{}); trail.ErrorCode(err) != trail.EINVALID {
		t.Errorf("no verifier: error %v, want EINVALID", err)
	}
}

func TestClaimedSeq(t *testing.T) {
	for _, tc := range []struct {
		body string
		seq  uint64
		ok   bool
	}{
		{`{"seq":5}`, 5, true},
		{`{"context":{"seq":9},"id":"e","seq":5,"tenant":"t","v":1}`, 5, true},
		{`{"seq":18446744073709551615}`, 1<<64 - 1, true},
		{`{"seq":18446744073709551616}`, 0, false},
		{`{"seq":007}`, 0, false},
		{`{"seq":0}`, 0, true},
		{`{"seq":"5"}`, 0, false},
		{`{"seq":`, 0, false},
		{`{"v":1}`, 0, false},
		{`"seq":3`, 3, true},
		{`seq":3`, 0, false},
		{`:"seq":4,"seq":`, 0, false},
		{`{"seq":4,"x":{"seq":":"}}`, 0, false},
		{`{"seq":4,"tenant":"a:b","v":1}`, 4, true},
		{`:::`, 0, false},
		{``, 0, false},
	} {
		if seq, ok := claimedSeq([]byte(tc.body)); seq != tc.seq || ok != tc.ok {
			t.Errorf("claimedSeq(%s) = %d, %v; want %d, %v", tc.body, seq, ok, tc.seq, tc.ok)
		}
		checkLastSeqMember(t, []byte(tc.body))
	}
}

// checkLastSeqMember fails t when lastSeqMember(body) is not the last
// index of seqMember in body.
func checkLastSeqMember(t *testing.T, body []byte) {
	if got, want := lastSeqMember(body), bytes.LastIndex(body, []byte(seqMember)); got != want {
		t.Errorf("lastSeqMember(%q) = %d, want %d", body, got, want)
	}
}

// FuzzLastSeqMember holds lastSeqMember to bytes.LastIndex.
func FuzzLastSeqMember(f *testing.F) {
	for _, s := range []string{`{"seq":5}`, `{"context":{"seq":9},"id":"e","seq":5,"tenant":"t","v":1}`, `"seq":`, `::"seq"::`} {
		f.Add([]byte(s))
	}
	f.Fuzz(checkLastSeqMember)
}

// TestLeafHasher: the hasher verification reuses gives LeafHash, also
// after bodies of other lengths.
func TestLeafHasher(t *testing.T) {
	var h LeafHasher
	for _, body := range [][]byte{[]byte(`{"a":1}`), nil, bytes.Repeat([]byte("x"), 1000), []byte("y")} {
		var got [trail.HashSize]byte
		h.Sum(&got, body)
		if want := LeafHash(body); !bytes.Equal(got[:], want) {
			t.Errorf("LeafHasher(%q) = %x, LeafHash %x", body, got, want)
		}
	}
}

// TestSameColumns: sameColumns, the check of a sound row, looks at every
// column of trail.Index but the targets (changing any one makes it
// false) and at times as instants, as indexColumns does.
func TestSameColumns(t *testing.T) {
	at := time.Date(2026, 12, 6, 21, 0, 0, 1, time.UTC)
	base := trail.Index{ID: "id", RecordedAt: at, OccurredAt: at, Action: "a", Category: "c", Outcome: "success",
		ActorID: "u", ActorType: "user", Organization: "o", Workspace: "w", Team: "t", CorrelationID: "x"}
	v := reflect.ValueOf(&base).Elem()
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if f.Name == "Targets" {
			continue
		}
		changed := base
		switch fv := reflect.ValueOf(&changed).Elem().Field(i); fv.Kind() {
		case reflect.String:
			fv.SetString(fv.String() + "!")
		default:
			fv.Set(reflect.ValueOf(at.Add(time.Nanosecond)))
		}
		if sameColumns(&base, &changed) {
			t.Errorf("sameColumns misses a change of %s", f.Name)
		}
		if len(columnsDamage(&base, changed)) != 1 {
			t.Errorf("columnsDamage of a change of %s: %q", f.Name, columnsDamage(&base, changed))
		}
	}
	other := base
	other.RecordedAt = at.In(time.FixedZone("x", 3600))
	if !sameColumns(&base, &other) {
		t.Error("sameColumns tells one instant in two zones apart")
	}
}
