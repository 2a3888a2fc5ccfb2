package tlog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trailaudit/trail"
)

// bundleBodies are the events of the bundle tests; seq 7 holds HTML that
// encoding/json would escape by default.
func bundleBodies() [][]byte {
	bodies := events(tamperEvents, 200)
	bodies[6] = bytes.Replace(bodies[6], []byte("xxxxxxxxxxxxxxxxxxxxxxxxx"), []byte(`<script>alert(1)</script>&`), 1)
	return bodies
}

// writeBundle returns a bundle of the rows of l with the given seqs,
// proven against l's checkpoint notes[cp].
func writeBundle(tb testing.TB, l *memLog, cp int, seqs ...uint64) []byte {
	tb.Helper()
	ctx := context.Background()
	c, err := signer(tb, testKey).Verifier().Open(testTenant, l.notes[cp])
	if err != nil {
		tb.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := NewBundleWriter(&buf, l, testTenant, c)
	if err != nil {
		tb.Fatal(err)
	}
	for _, seq := range seqs {
		if err := w.Add(ctx, l.rows[l.row(seq)]); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// editLine returns bundle with its line n (1 is the header) passed
// through edit.
func editLine(bundle []byte, n int, edit func(line []byte) []byte) []byte {
	lines := bytes.SplitAfter(bundle, []byte("\n"))
	lines[n-1] = edit(lines[n-1])
	return bytes.Join(lines, nil)
}

// editEvent returns bundle with the event line n decoded, passed through
// edit and encoded again.
func editEvent(tb testing.TB, bundle []byte, n int, edit func(e *bundleEvent)) []byte {
	return editLine(bundle, n, func(line []byte) []byte {
		var e bundleEvent
		if err := decodeLine(line, &e); err != nil {
			tb.Fatal(err)
		}
		edit(&e)
		return e.appendLine(nil)
	})
}

func TestBundleRoundTrip(t *testing.T) {
	s := signer(t, testKey)
	bodies := bundleBodies()
	l := buildLog(t, s, bodies, tamperGroups...)
	for _, tc := range []struct {
		name string
		cp   int // index of the checkpoint in l.notes
		seqs []uint64
	}{
		{"latest checkpoint", 10, []uint64{1, 2, 7, 8, 31, 50}},
		{"older checkpoint (size 23)", 6, []uint64{1, 7, 23}},
		{"checkpoint of size 1", 0, []uint64{1}},
		{"no events", 10, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bundle := writeBundle(t, l, tc.cp, tc.seqs...)
			rep, err := VerifyBundle(bytes.NewReader(bundle), s.Verifier())
			if err != nil {
				t.Fatal(err)
			}
			cp, _ := ParseUnverified(l.notes[tc.cp])
			if !rep.OK() || rep.Tenant != testTenant || rep.Size != cp.Size || !bytes.Equal(rep.Root, cp.Root) || rep.Events != len(tc.seqs) {
				t.Errorf("report %+v", rep)
			}
			for _, seq := range tc.seqs {
				if !bytes.Contains(bundle, fmt.Appendf(nil, `{"seq":%d,"event":%s,"proof":[`, seq, bodies[seq-1])) {
					t.Errorf("the bundle does not hold the stored bytes of seq %d verbatim", seq)
				}
			}
		})
	}
}

func TestVerifyBundleDamage(t *testing.T) {
	s := signer(t, testKey)
	bodies := bundleBodies()
	l := buildLog(t, s, bodies, tamperGroups...)
	// Lines: 1 header, 2 seq 1, 3 seq 7, 4 seq 8, 5 seq 31, 6 seq 50.
	bundle := writeBundle(t, l, 10, 1, 7, 8, 31, 50)
	misfiled := slices.Clone(bodies)
	misfiled[8] = event(10, 200)
	ml := buildLog(t, s, misfiled, tamperGroups...)

	tests := []struct {
		name   string
		bundle []byte
		want   []string // kind@seq of each damage
	}{
		{"intact", bundle, nil},
		{
			"event bytes edited",
			editLine(bundle, 3, func(b []byte) []byte { return bytes.Replace(b, []byte("<script>"), []byte("<scripT>"), 1) }),
			[]string{"changed@7"},
		},
		{
			"proof edited",
			editEvent(t, bundle, 4, func(e *bundleEvent) { e.Proof[0][0] ^= 1 }),
			[]string{"changed@8"},
		},
		{
			"proof of another leaf",
			editEvent(t, bundle, 4, func(e *bundleEvent) { e.Seq = 9 }),
			[]string{"changed@9"},
		},
		{
			"checkpoint's signature edited",
			editLine(bundle, 1, func([]byte) []byte { return headerLine(t, editSignature(l.notes[10])) }),
			[]string{"bad_signature@50"},
		},
		{
			"line repeated",
			editLine(bundle, 3, func(b []byte) []byte { return slices.Concat(b, b) }),
			[]string{"extra@7"},
		},
		{
			"lines swapped",
			editLine(editLine(bundle, 3, func([]byte) []byte { return lineOf(bundle, 4) }), 4, func([]byte) []byte { return lineOf(bundle, 3) }),
			[]string{"reordered@7"},
		},
		{
			"event outside the checkpoint's tree",
			slices.Concat(writeBundle(t, l, 6, 1, 7), lineOf(bundle, 6)),
			[]string{"extra@50"},
		},
		{
			"event the log holds under another seq",
			writeBundle(t, ml, 10, 8, 9),
			[]string{"reordered@9"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := VerifyBundle(bytes.NewReader(tc.bundle), s.Verifier())
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range rep.Damage {
				got = append(got, fmt.Sprintf("%s@%d", d.Kind, d.Seq))
			}
			if !slices.Equal(got, tc.want) || rep.OK() != (len(tc.want) == 0) {
				t.Errorf("damage %q, want %q\n%+v", got, tc.want, rep.Damage)
			}
		})
	}
}

// lineOf returns line n of bundle (1 is the header).
func lineOf(bundle []byte, n int) []byte { return bytes.SplitAfter(bundle, []byte("\n"))[n-1] }

// headerLine returns a bundle's first line for the checkpoint note.
func headerLine(tb testing.TB, note []byte) []byte {
	b, err := json.Marshal(bundleHeader{Format: BundleFormat, Tenant: testTenant, Checkpoint: string(note)})
	if err != nil {
		tb.Fatal(err)
	}
	return append(b, '\n')
}

// editSignature returns note with a bit of its (first) signature flipped.
func editSignature(note []byte) []byte {
	b := slices.Clone(note)
	b[bytes.LastIndex(b, []byte(" "))+8] ^= 1 // within the base64, past the key hash
	return b
}

// TestVerifyBundleUntrusted: a bundle whose checkpoint another key signed
// cannot be checked: an error naming the key that did, not damage.
func TestVerifyBundleUntrusted(t *testing.T) {
	s := signer(t, testKey)
	l := buildLog(t, s, bundleBodies(), tamperGroups...)
	bundle := editLine(writeBundle(t, l, 10, 1, 7), 1, func([]byte) []byte { return headerLine(t, resign(t, otherKey, l.notes[10])) })
	rep, err := VerifyBundle(bytes.NewReader(bundle), s.Verifier())
	var untrusted *UntrustedError
	if !errors.As(err, &untrusted) || !slices.Equal(untrusted.SignedBy, []string{otherSigID}) {
		t.Fatalf("VerifyBundle = %+v, %v; want an UntrustedError naming %s", rep, err, otherSigID)
	}
	if want := "not signed by the trusted key " + testKeyID + " (signed by " + otherSigID + ")"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}

func TestVerifyBundleUnreadable(t *testing.T) {
	s := signer(t, testKey)
	l := buildLog(t, s, bundleBodies(), tamperGroups...)
	bundle := writeBundle(t, l, 10, 1, 7, 8)
	replace := func(n int, with string) []byte {
		return editLine(bundle, n, func([]byte) []byte { return []byte(with) })
	}
	for _, tc := range []struct {
		name   string
		bundle []byte
		want   string // in the error
	}{
		{"empty", nil, "line 1"},
		{"header not JSON", replace(1, "trail\n"), "line 1"},
		{"another format", replace(1, `{"format":"trail-bundle/v2","tenant":"acme","checkpoint":""}`+"\n"), "line 1"},
		{"checkpoint not a note", replace(1, `{"format":"trail-bundle/v1","tenant":"acme","checkpoint":"hi"}`+"\n"), "line 1"},
		{"malformed event line", replace(3, "{\"seq\":7,\"event\":{\n"), "line 3"},
		{"unknown member", replace(3, `{"seq":7,"event":{},"proof":[],"note":1}`+"\n"), "line 3"},
		{"no event", replace(3, `{"seq":7,"proof":[]}`+"\n"), "line 3"},
		{"seq 0", replace(3, `{"seq":0,"event":{},"proof":[]}`+"\n"), "line 3"},
		{"data after the line's value", replace(3, `{"seq":7,"event":{},"proof":[]}]`+"\n"), "line 3"},
		{"blank line", replace(4, "\n"), "line 4"},
		{"line too long", slices.Concat(lineOf(bundle, 1), bytes.Repeat([]byte("x"), MaxBundleLine+1)), "line 2: longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := VerifyBundle(bytes.NewReader(tc.bundle), s.Verifier())
			if trail.ErrorCode(err) != trail.EINVALID || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want EINVALID naming %q", err, tc.want)
			}
		})
	}
}

func TestBundleWriterRefuses(t *testing.T) {
	ctx := context.Background()
	s := signer(t, testKey)
	l := buildLog(t, s, bundleBodies(), tamperGroups...)
	cp, err := s.Verifier().Open(testTenant, l.notes[6]) // size 23
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewBundleWriter(&bytes.Buffer{}, l, "globex", cp); trail.ErrorCode(err) != trail.EINVALID {
		t.Errorf("checkpoint of another tenant: error %v, want EINVALID", err)
	}
	if _, err := NewBundleWriter(&bytes.Buffer{}, l, testTenant, nil); trail.ErrorCode(err) != trail.EINVALID {
		t.Errorf("no checkpoint: error %v, want EINVALID", err)
	}
	w, err := NewBundleWriter(&bytes.Buffer{}, l, testTenant, cp)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add(ctx, l.rows[9]); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		leaf trail.Leaf
	}{
		{"seq 0", trail.Leaf{Body: []byte(`{}`)}},
		{"seq above the checkpoint's size", l.rows[23]},
		{"seq not above the previous one", l.rows[9]},
		{"body not JSON", trail.Leaf{Seq: 11, Body: []byte(`{"seq":11`)}},
		{"body over two lines", trail.Leaf{Seq: 11, Body: []byte("{\"seq\":\n11}")}},
	} {
		if err := w.Add(ctx, tc.leaf); trail.ErrorCode(err) != trail.EINVALID {
			t.Errorf("Add of %s: error %v, want EINVALID", tc.name, err)
		}
	}
}

// FuzzVerifyBundle checks that no bundle makes VerifyBundle panic.
func FuzzVerifyBundle(f *testing.F) {
	s := signer(f, testKey)
	l := buildLog(f, s, events(20, 80), 3, 5)
	bundle := writeBundle(f, l, len(l.notes)-1, 1, 2, 3, 19, 20)
	f.Add(bundle)
	f.Add(bundle[:len(bundle)/2])
	f.Add(lineOf(bundle, 1))
	f.Add([]byte("{}\n{}\n"))
	wl := buildLog(f, s, windowBodies(f, 12, nil), 5)
	window, _ := windowBundle(f, wl, len(wl.notes)-1, minute(2), minute(4))
	f.Add(window)
	f.Add(dropLine(window, 3))
	start, _ := windowBundle(f, wl, len(wl.notes)-1, time.Time{}, minute(99))
	f.Add(start)
	// A line with openings, which the fake opener below opens.
	lines := bytes.SplitAfter(bundle, []byte("\n"))
	lines[1] = append(bytes.TrimSuffix(lines[1], []byte("}\n")), `,"openings":{"k":"AA=="},"opened":{"x":1}}`+"\n"...)
	f.Add(bytes.Join(lines, nil))
	open := func(tenant string, body []byte, openings map[string][]byte) ([]byte, error) {
		if openings["k"] == nil {
			return nil, errors.New("no opening k")
		}
		return []byte(`{"x":1}`), nil
	}
	v := s.Verifier()
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := VerifyBundleOpen(bytes.NewReader(b), v, open)
		if err != nil {
			return
		}
		if len(rep.Damage) > MaxDamage {
			t.Fatalf("%d damages", len(rep.Damage))
		}
		if rep.Opened > rep.Events {
			t.Fatalf("%d events opened of %d", rep.Opened, rep.Events)
		}
		// A complete window holds its events and at most its two
		// boundaries, and is intact.
		if w := rep.Window; w != nil && w.Complete {
			n := int(w.Last + 1 - w.First)
			if !rep.OK() || w.Last+1 < w.First || rep.Events < n || rep.Events > n+2 || w.Last > rep.Size {
				t.Fatalf("complete window %+v of a bundle of %d events, size %d, damage %v", w, rep.Events, rep.Size, rep.Damage)
			}
		}
	})
}
