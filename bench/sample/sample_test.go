package sample_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/trailaudit/trail/bench/sample"
	internal "github.com/trailaudit/trail/internal/sample"
)

// The public generator must yield exactly the events Trail's own benchmarks
// append, or figures measured through it would not be comparable.
func TestSameEventsAsInternal(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	got := sample.New(7).Batch(50, t0)
	want := internal.New(7).Batch(50, t0)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("events differ (-internal +public):\n%s", diff)
	}
	if len(got) != 50 {
		t.Fatalf("got %d events, want 50", len(got))
	}
}
