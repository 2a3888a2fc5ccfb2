package trail_test

import (
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/sample"
)

// BenchmarkCanonicalIndex derives the index of 1000 sample events from
// their canonical bytes, as a store's rows hold them (id, tenant, seq and
// recorded_at set): what verification does for every row of a log.
func BenchmarkCanonicalIndex(b *testing.B) {
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	events := sample.New(42).Batch(1000, t0)
	var bodies [][]byte
	size := 0
	for i, ev := range events {
		ev.ID, ev.Tenant, ev.Seq = trail.NewID(ev.OccurredAt), "acme", uint64(i+1)
		ev.RecordedAt = ev.OccurredAt.Add(time.Duration(i) * 1234567 * time.Nanosecond)
		body, err := trail.MarshalCanonical(ev)
		if err != nil {
			b.Fatal(err)
		}
		bodies = append(bodies, body)
		size += len(body)
	}
	b.SetBytes(int64(size))
	for b.Loop() {
		for _, body := range bodies {
			if _, err := trail.CanonicalIndex(body); err != nil {
				b.Fatal(err)
			}
		}
	}
}
