package sqlite_test

import (
	"context"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/testenv"
	"github.com/trailaudit/trail/sqlite"
)

// BenchmarkAppendOlderTenant appends batches of 1000 for two tenants in
// turn, each going first every other time, and reports each one's rate and
// CPU time per event. Events are keyed tid<<40|seq, so the newer tenant's
// rows go to the right edge of the events table's B-tree and the older
// one's into its middle, where pages split: the cost of being any tenant
// but the newest (and what made BenchmarkIngestNDJSON's HTTP arm, on the
// older tenant, look slower than the direct one).
func BenchmarkAppendOlderTenant(b *testing.B) {
	ctx := context.Background()
	db := benchDB(b, sqlite.Options{})
	batches := sampleBatches(8, 1000)
	tenants := [2]string{"older", "newer"}
	for _, t := range tenants {
		if _, err := db.Append(ctx, t, batches[0], trail.AppendOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	var took, cpu [2]time.Duration
	for i := 0; b.Loop(); i++ {
		for j := range 2 {
			t := (i + j) % 2
			t0, c0 := time.Now(), testenv.CPUTime()
			if _, err := db.Append(ctx, tenants[t], batches[i%len(batches)], trail.AppendOptions{}); err != nil {
				b.Fatal(err)
			}
			took[t] += time.Since(t0)
			cpu[t] += testenv.CPUTime() - c0
		}
	}
	n := float64(b.N * 1000)
	b.ReportMetric(n/took[0].Seconds(), "events/s-older")
	b.ReportMetric(n/took[1].Seconds(), "events/s-newer")
	b.ReportMetric(float64(cpu[0].Microseconds())/n, "cpu-µs/event-older")
	b.ReportMetric(float64(cpu[1].Microseconds())/n, "cpu-µs/event-newer")
}
