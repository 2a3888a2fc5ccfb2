package export

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/internal/sample"
)

// benchEvents are 10,000 sample events as the store returns them: with id,
// tenant, seq, recorded_at, category and outcome.
func benchEvents(b *testing.B) []*trail.Event {
	b.Helper()
	cat := catalog.Default()
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	events := sample.New(1).Batch(10000, t0)
	for i, ev := range events {
		a, ok := cat.Resolve(ev.Action)
		if !ok {
			b.Fatalf("sample action %s is not in the catalog", ev.Action)
		}
		ev.ID = fmt.Sprintf("evt_%08d", i)
		ev.Tenant = "acme"
		ev.Seq = uint64(i + 1)
		ev.RecordedAt = ev.OccurredAt.Add(3 * time.Millisecond)
		ev.Category, ev.Outcome = a.Category, a.Outcome
	}
	return events
}

// countWriter counts the bytes written to it.
type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// BenchmarkWrite writes 10,000 sample events per iteration in each format
// to io.Discard and reports events/s.
func BenchmarkWrite(b *testing.B) {
	events := benchEvents(b)
	cat := catalog.Default()
	for _, f := range []Format{NDJSON, CSV, OCSF} {
		b.Run(string(f), func(b *testing.B) {
			var size countWriter
			writeEvents(b, &size, f, cat, events)
			b.SetBytes(size.n)
			b.ReportAllocs()
			b.ResetTimer()
			n := 0
			for b.Loop() {
				writeEvents(b, io.Discard, f, cat, events)
				n++
			}
			b.ReportMetric(float64(n*len(events))/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(size.n)/float64(len(events)), "B/event")
		})
	}
}

func writeEvents(b *testing.B, out io.Writer, f Format, cat trail.ActionResolver, events []*trail.Event) {
	w, err := NewWriter(out, f, cat)
	if err != nil {
		b.Fatal(err)
	}
	for _, ev := range events {
		if err := w.Write(ev); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
}
