package trail_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/sample"
)

// BenchmarkParseEvent parses the wire form of 1000 sample events, the
// events BenchmarkIngestNDJSON posts, one line at a time.
func BenchmarkParseEvent(b *testing.B) {
	evs := sample.New(41).Batch(1000, time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC))
	lines := make([][]byte, len(evs))
	size := 0
	for i, ev := range evs {
		line, err := json.Marshal(ev)
		if err != nil {
			b.Fatal(err)
		}
		lines[i] = line
		size += len(line)
	}
	b.SetBytes(int64(size / len(lines)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := trail.ParseEvent(lines[i%len(lines)]); err != nil {
			b.Fatal(err)
		}
	}
}
