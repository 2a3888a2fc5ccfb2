package sqlite_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/trailaudit/trail/sqlite"
)

// BenchmarkAppendMaxWAL appends batches of 1000 with the write-ahead log
// bounded at several sizes (Options.MaxWAL): it reports, beside the rate,
// the share of the time the RESTART checkpoints held the writer
// (restart-held-%), which is what a larger bound trades against disk.
//
//	go test ./sqlite -run '^$' -bench AppendMaxWAL -benchtime 100x -count 3
func BenchmarkAppendMaxWAL(b *testing.B) {
	for _, mb := range []int64{64, 256, 1024} {
		b.Run(fmt.Sprintf("%dMiB", mb), func(b *testing.B) {
			db := benchDB(b, sqlite.Options{MaxWAL: mb << 20})
			t0 := time.Now()
			appendBatches1000(b, db)
			b.ReportMetric(100*db.WALStats().Held.Seconds()/time.Since(t0).Seconds(), "restart-held-%")
		})
	}
}
