package sqlite_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
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
			var h heldHandler
			db := benchDB(b, sqlite.Options{MaxWAL: mb << 20, Logger: slog.New(&h)})
			t0 := time.Now()
			appendBatches1000(b, db)
			b.ReportMetric(100*h.held().Seconds()/time.Since(t0).Seconds(), "restart-held-%")
		})
	}
}

// heldHandler is a slog.Handler adding up how long the store's RESTART
// checkpoints (logged at Debug) held the writer.
type heldHandler struct {
	mu sync.Mutex
	d  time.Duration
}

func (h *heldHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *heldHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *heldHandler) WithGroup(string) slog.Handler            { return h }
func (h *heldHandler) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "held" {
			h.mu.Lock()
			h.d += a.Value.Duration()
			h.mu.Unlock()
		}
		return true
	})
	return nil
}

func (h *heldHandler) held() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.d
}
