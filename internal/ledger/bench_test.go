package ledger

import (
	"context"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/internal/sample"
	"github.com/trailaudit/trail/internal/testenv"
	"github.com/trailaudit/trail/redact"
	"github.com/trailaudit/trail/tlog"
)

// BenchmarkPipeline is the pipeline's own work on batches of 1000 sample
// events, with a backend that stores nothing (the fake): validation,
// redaction, canonical encoding, index columns, hashing and the tree, and
// the answer's copies. Run it with -cpu 1,2 to see the batch spread over
// the cores.
func BenchmarkPipeline(b *testing.B) {
	skey, _, err := tlog.GenerateKey("bench")
	if err != nil {
		b.Fatal(err)
	}
	s, err := tlog.NewSigner(skey)
	if err != nil {
		b.Fatal(err)
	}
	l, err := New(Config{Store: "fake", Signer: s,
		Validator: &trail.Validator{Actions: catalog.Default(), Redactor: redact.New(redact.Options{}), Limits: trail.DefaultLimits()}}, &fake{})
	if err != nil {
		b.Fatal(err)
	}
	batch := sample.New(51).Batch(1000, time.Now())
	ctx := context.Background()
	cpu0 := testenv.CPUTime()
	for b.Loop() {
		if _, err := l.Append(ctx, "acme", batch, trail.AppendOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "events/s")
	// The process's CPU time, which moves less than the wall time on a
	// shared machine: the figure to compare across runs.
	b.ReportMetric(float64((testenv.CPUTime()-cpu0).Nanoseconds())/1e3/float64(b.N*len(batch)), "cpu-µs/event")
}
