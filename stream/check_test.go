package stream_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/storetest"
	"github.com/trailaudit/trail/stream"
	"github.com/trailaudit/trail/tlog"
)

// streamOf returns tenant acme's log of n events as the lines a sink sends:
// the events, then the latest checkpoint.
func streamOf(t *testing.T, n int) []stream.Line {
	t.Helper()
	s := newStore(t)
	appendN(t, s, n)
	var lines []stream.Line
	if err := s.ScanLeaves(context.Background(), "acme", 1, 0, func(l trail.Leaf) error {
		lines = append(lines, stream.Line{Tenant: "acme", Seq: l.Seq, Event: append([]byte(nil), l.Body...)})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	note, err := s.Checkpoint(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	return append(lines, stream.Line{Tenant: "acme", Checkpoint: string(note)})
}

func TestChecker(t *testing.T) {
	other, _, _ := tlog.GenerateKey("other")
	otherSigner, _ := tlog.NewSigner(other)
	tests := []struct {
		name string
		edit func(ls []stream.Line) []stream.Line
		want string // "" for a stream that verifies
	}{
		{"as sent", func(ls []stream.Line) []stream.Line { return ls }, ""},
		{"redelivered", func(ls []stream.Line) []stream.Line { return append(append(ls[:3:3], ls[1:3]...), ls[3:]...) }, ""},
		{"checkpoint first", func(ls []stream.Line) []stream.Line {
			return append([]stream.Line{ls[len(ls)-1]}, ls[:len(ls)-1]...)
		}, ""},
		{"an event left out", func(ls []stream.Line) []stream.Line { return append(ls[:2:2], ls[3:]...) }, "gap"},
		{"two swapped", func(ls []stream.Line) []stream.Line { ls[1], ls[2] = ls[2], ls[1]; return ls }, "gap"},
		{"a byte changed", func(ls []stream.Line) []stream.Line {
			ls[1].Event = []byte(strings.Replace(string(ls[1].Event), "user-1", "user-X", 1))
			return ls
		}, "do not hash to the root"},
		{"an event moved to another seq", func(ls []stream.Line) []stream.Line { ls[1].Event = ls[2].Event; return ls }, "says it is seq"},
		{"signed by another key", func(ls []stream.Line) []stream.Line {
			note, _ := tlog.ParseUnverified([]byte(ls[len(ls)-1].Checkpoint))
			forged, _ := otherSigner.Sign("acme", note.Size, note.Root)
			ls[len(ls)-1].Checkpoint = string(forged)
			return ls
		}, "does not verify"},
		{"the last events cut, checkpoint kept", func(ls []stream.Line) []stream.Line {
			return append(ls[:3:3], ls[len(ls)-1])
		}, "pending"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := stream.NewChecker(storetest.Signer().Verifier())
			ls := tt.edit(streamOf(t, 5))
			var err error
			for i := range ls {
				if _, err = c.Line(&ls[i]); err != nil {
					break
				}
			}
			got := ""
			switch {
			case err != nil:
				got = err.Error()
				if _, ok := err.(*stream.Gap); ok {
					got = "gap: " + got
				}
			case c.Verified("acme") < 5:
				got = fmt.Sprintf("pending: verified only %d", c.Verified("acme"))
			}
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}
