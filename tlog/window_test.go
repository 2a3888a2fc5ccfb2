package tlog

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/trailaudit/trail"
)

// windowT0 is when the window tests' log starts.
var windowT0 = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

// windowAt returns the recorded_at of seq in the window tests' log: two
// events a minute (seqs 2k and 2k+1 at minute k), so that windows cut
// between events of the same time too.
func windowAt(seq uint64) time.Time { return windowT0.Add(time.Duration(seq/2) * time.Minute) }

// windowBodies returns the canonical bytes of n events recorded at
// windowAt, with at (when not nil) replacing it.
func windowBodies(tb testing.TB, n int, at func(seq uint64) time.Time) [][]byte {
	tb.Helper()
	if at == nil {
		at = windowAt
	}
	out := make([][]byte, n)
	for i := range out {
		seq := uint64(i + 1)
		b, err := trail.MarshalCanonical(&trail.Event{Action: "document.viewed", Outcome: trail.OutcomeSuccess, Tenant: testTenant, Seq: seq,
			ID: trail.NewID(at(seq)), RecordedAt: at(seq), OccurredAt: at(seq), Actor: trail.Actor{Type: trail.ActorUser, ID: "u-1"}})
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = b
	}
	return out
}

// windowBundle writes the bundle of [since, until) of l against its
// checkpoint notes[cp], and returns it and the count WriteWindow gave.
func windowBundle(tb testing.TB, l *memLog, cp int, since, until time.Time) ([]byte, int) {
	tb.Helper()
	c, err := signer(tb, testKey).Verifier().Open(testTenant, l.notes[cp])
	if err != nil {
		tb.Fatal(err)
	}
	var buf bytes.Buffer
	n, err := WriteWindow(context.Background(), &buf, l, testTenant, c, since, until)
	if err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes(), n
}

func minute(k int) time.Time { return windowT0.Add(time.Duration(k) * time.Minute) }

// TestWindowBundle: a window bundle holds every event of the window, the
// events just outside it, and nothing else, and verifies complete; at the
// log's start and at the checkpoint's end the log's ends bound it.
func TestWindowBundle(t *testing.T) {
	s := signer(t, testKey)
	l := buildLog(t, s, windowBodies(t, 30, nil), 4, 7) // sizes 4, 11, 15, 22, 26, 30
	for _, tc := range []struct {
		name         string
		cp           int
		since, until time.Time
		lines        []uint64 // the seqs of the event lines
		first, last  uint64
	}{
		{"inside the log", 5, minute(3), minute(6), []uint64{5, 6, 7, 8, 9, 10, 11, 12}, 6, 11},
		{"at the log's start", 5, time.Time{}, minute(2), []uint64{1, 2, 3, 4}, 1, 3},
		{"since before the first event", 5, minute(-5), minute(1), []uint64{1, 2}, 1, 1},
		{"to the checkpoint's end", 5, minute(13), minute(99), []uint64{25, 26, 27, 28, 29, 30}, 26, 30},
		{"to an older checkpoint's end", 1, minute(4), minute(99), []uint64{7, 8, 9, 10, 11}, 8, 11},
		{"empty, between two events", 5, minute(3).Add(10 * time.Second), minute(3).Add(20 * time.Second), []uint64{7, 8}, 8, 7},
		{"after the checkpoint", 1, minute(20), minute(30), []uint64{11}, 12, 11},
		{"the whole log", 5, time.Time{}, minute(99), seqRange(1, 30), 1, 30},
		{"before the log", 5, time.Time{}, minute(-1), []uint64{1}, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bundle, n := windowBundle(t, l, tc.cp, tc.since, tc.until)
			if want := int(tc.last + 1 - tc.first); n != want {
				t.Errorf("WriteWindow counted %d events, want %d", n, want)
			}
			if got := bundleSeqs(t, bundle); !equalSeqs(got, tc.lines) {
				t.Errorf("lines of seqs %v, want %v", got, tc.lines)
			}
			rep, err := VerifyBundle(bytes.NewReader(bundle), s.Verifier())
			if err != nil {
				t.Fatal(err)
			}
			w := rep.Window
			if !rep.OK() || w == nil || !w.Complete || w.First != tc.first || w.Last != tc.last || !w.Until.Equal(tc.until) || !w.Since.Equal(tc.since) {
				t.Errorf("report %+v, window %+v; want complete, seqs %d to %d", rep, w, tc.first, tc.last)
			}
		})
	}
	if _, err := WriteWindow(context.Background(), &bytes.Buffer{}, l, testTenant, mustOpen(t, l, 5), minute(3), minute(3)); trail.ErrorCode(err) != trail.EINVALID {
		t.Errorf("an empty interval: %v, want EINVALID", err)
	}
}

// TestWindowBundleTampered: a bundle that leaves an event of its window
// out, or whose boundaries are not just outside it, or whose recorded_at
// decreases, is damage, and never complete.
func TestWindowBundleTampered(t *testing.T) {
	s := signer(t, testKey)
	l := buildLog(t, s, windowBodies(t, 30, nil), 4, 7)
	// Lines: 1 header, then seqs 5 (before), 6 .. 11, 12 (after).
	bundle, _ := windowBundle(t, l, 5, minute(3), minute(6))
	// A log whose clock went back at seq 9, signed as such: the store broke
	// its contract, and the window cannot be trusted to be a seq range.
	back := buildLog(t, s, windowBodies(t, 30, func(seq uint64) time.Time {
		if seq == 9 {
			return minute(2)
		}
		return windowAt(seq)
	}), 4, 7)
	backBundle, _ := windowBundle(t, back, 5, minute(3), minute(6))
	for _, tc := range []struct {
		name   string
		bundle []byte
		kind   Kind
		seq    uint64
		detail string
	}{
		{"an event of the window dropped", dropLine(bundle, 4), Missing, 7, "seqs 7 to 7 of the window are not in the bundle"},
		{"the event before dropped", dropLine(bundle, 2), Missing, 1, "seqs 1 to 5"},
		{"the event after dropped", dropLine(bundle, 9), Missing, 12, "no event after the window"},
		{"the last events and the after boundary dropped", dropLine(dropLine(bundle, 9), 8), Missing, 11, "no event after the window"},
		{"the before boundary moved back", swapBoundary(t, l, bundle, 2, 3, boundaryBefore), Missing, 4, "seqs 4 to 5"},
		{"the after boundary moved inside", editEvent(t, dropLine(bundle, 9), 8, func(e *bundleEvent) { e.Boundary = boundaryAfter }), Missing, 11, "was recorded at 2026-11-02T09:05:00Z, inside it"},
		{"the before boundary moved inside", editEvent(t, dropLine(bundle, 2), 2, func(e *bundleEvent) { e.Boundary = boundaryBefore }), Missing, 6, "inside it"},
		{"the window widened in the header", editLine(bundle, 1, func(line []byte) []byte {
			return bytes.Replace(line, []byte(`"since":"2026-11-02T09:03:00Z"`), []byte(`"since":"2026-11-02T09:02:00Z"`), 1)
		}), Missing, 5, "inside it"},
		{"a recorded_at edited", editEvent(t, bundle, 5, func(e *bundleEvent) {
			e.Event = bytes.Replace(e.Event, []byte("09:04:00"), []byte("09:03:30"), 2)
		}), Changed, 8, "inclusion proof does not verify"},
		{"recorded_at decreases in the log", backBundle, Reordered, 9, "recorded_at 2026-11-02T09:02:00Z is before the line before's 2026-11-02T09:04:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := VerifyBundle(bytes.NewReader(tc.bundle), s.Verifier())
			if err != nil {
				t.Fatal(err)
			}
			if rep.Window == nil || rep.Window.Complete {
				t.Errorf("window %+v, want one not complete", rep.Window)
			}
			found := false
			for _, d := range rep.Damage {
				found = found || d.Kind == tc.kind && d.Seq == tc.seq && strings.Contains(d.Detail, tc.detail)
			}
			if !found {
				t.Errorf("damage %+v, want %s at seq %d saying %q", rep.Damage, tc.kind, tc.seq, tc.detail)
			}
		})
	}
}

// TestSelectionBundle: a bundle of chosen events has no window: it claims
// nothing about the events it leaves out, and a boundary line in it is
// unreadable.
func TestSelectionBundle(t *testing.T) {
	s := signer(t, testKey)
	l := buildLog(t, s, windowBodies(t, 10, nil), 4)
	bundle := writeBundle(t, l, len(l.notes)-1, 2, 5)
	rep, err := VerifyBundle(bytes.NewReader(bundle), s.Verifier())
	if err != nil || !rep.OK() || rep.Window != nil {
		t.Fatalf("report %+v, %v; want intact, with no window", rep, err)
	}
	marked := editEvent(t, bundle, 2, func(e *bundleEvent) { e.Boundary = boundaryBefore })
	if _, err := VerifyBundle(bytes.NewReader(marked), s.Verifier()); trail.ErrorCode(err) != trail.EINVALID || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("a boundary with no window: %v, want EINVALID naming line 2", err)
	}
}

func mustOpen(tb testing.TB, l *memLog, cp int) *Checkpoint {
	tb.Helper()
	c, err := signer(tb, testKey).Verifier().Open(testTenant, l.notes[cp])
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// dropLine returns bundle without its line n.
func dropLine(bundle []byte, n int) []byte {
	lines := bytes.SplitAfter(bundle, []byte("\n"))
	return bytes.Join(append(lines[:n-1:n-1], lines[n:]...), nil)
}

// swapBoundary returns bundle with its line n replaced by the row of seq
// (with its proof) marked as boundary.
func swapBoundary(tb testing.TB, l *memLog, bundle []byte, n int, seq uint64, boundary string) []byte {
	tb.Helper()
	cp := mustOpen(tb, l, len(l.notes)-1)
	p, err := InclusionProof(context.Background(), l, testTenant, seq-1, cp.Size)
	if err != nil {
		tb.Fatal(err)
	}
	e := bundleEvent{Seq: seq, Event: l.rows[l.row(seq)].Body, Proof: p, Boundary: boundary}
	return editLine(bundle, n, func([]byte) []byte { return e.appendLine(nil) })
}

func bundleSeqs(tb testing.TB, bundle []byte) []uint64 {
	tb.Helper()
	var out []uint64
	for _, line := range bytes.SplitAfter(bundle, []byte("\n"))[1:] {
		if len(line) == 0 {
			continue
		}
		var e bundleEvent
		if err := decodeLine(line, &e); err != nil {
			tb.Fatal(err)
		}
		out = append(out, e.Seq)
	}
	return out
}

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

func equalSeqs(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestVerifyRecordedAtDecreases: a log whose recorded_at steps back along
// seq (a store that broke its contract, signed as it is) is Reordered at
// the seq that steps back: a window of recorded_at would not be a range of
// seqs. Equal times are not.
func TestVerifyRecordedAtDecreases(t *testing.T) {
	s := signer(t, testKey)
	back := func(seq uint64) time.Time {
		if seq == 9 {
			return minute(2)
		}
		return windowAt(seq)
	}
	for _, tc := range []struct {
		name string
		at   func(uint64) time.Time
		want []Damage
	}{
		{"two events a minute", nil, nil},
		{"seq 9 steps back", back, []Damage{{Kind: Reordered, Seq: 9, Detail: "recorded_at 2026-11-02T09:02:00Z is before seq 8's 2026-11-02T09:04:00Z: recorded_at never decreases along seq"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := buildLog(t, s, windowBodies(t, 20, tc.at), 6)
			rep, err := Verify(context.Background(), l, testTenant, s.Verifier(), VerifyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(rep.Damage) != fmt.Sprint(tc.want) {
				t.Errorf("damage %v, want %v", rep.Damage, tc.want)
			}
		})
	}
}
