package tlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

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
			want:   []string{"missing@46"},
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
	} {
		if seq, ok := claimedSeq([]byte(tc.body)); seq != tc.seq || ok != tc.ok {
			t.Errorf("claimedSeq(%s) = %d, %v; want %d, %v", tc.body, seq, ok, tc.seq, tc.ok)
		}
	}
}
