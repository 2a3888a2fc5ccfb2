package sqlite_test

import (
	"context"
	"flag"
	"path/filepath"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/internal/sample"
	"github.com/trailaudit/trail/retention"
	"github.com/trailaudit/trail/sqlite"
	"github.com/trailaudit/trail/storetest"
	"github.com/trailaudit/trail/tlog"
)

var pruneEvents = flag.Int("trail.prune.events", 100_000, "events in the log BenchmarkPrune plans and prunes (1000000 for the documented figure)")

// BenchmarkPrune measures retention on SQLite: a log of
// -trail.prune.events sample events recorded 400 days before now, planned
// with the catalog's classes (short and standard events are past their
// retention, long ones are not) and applied, each prune one commit of up
// to 10,000 payloads with its audit_log_pruned record and checkpoint. It
// reports the events read per second (Plan and Apply together) and the
// events pruned per second; the log is verified after each run, outside
// the timer.
//
//	go test ./sqlite -run '^$' -bench BenchmarkPrune -benchtime 1x -trail.prune.events 1000000
func BenchmarkPrune(b *testing.B) {
	ctx := context.Background()
	n := *pruneEvents
	then := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	now := then.Add(400 * 24 * time.Hour)
	var read, pruned int
	for b.Loop() {
		b.StopTimer()
		path := filepath.Join(b.TempDir(), "trail.db")
		db, err := sqlite.Open(ctx, path, sqlite.Options{Validator: storetest.Validator(), Signer: storetest.Signer(), Now: func() time.Time { return then }})
		if err != nil {
			b.Fatal(err)
		}
		s := sample.New(1)
		for i := 0; i < n; i += 1000 {
			if _, err := db.Append(ctx, "acme", s.Batch(min(1000, n-i), then), trail.AppendOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()

		t0 := time.Now()
		p, err := retention.NewPlan(ctx, db, "acme", catalog.Default(), nil, nil, now)
		if err != nil {
			b.Fatal(err)
		}
		planned := time.Since(t0)
		res, err := p.Apply(ctx, db, db, "acme", trail.Actor{ID: "bench", Type: trail.ActorSystem})
		if err != nil {
			b.Fatal(err)
		}

		b.StopTimer()
		applied := time.Since(t0) - planned
		read += p.Scanned
		pruned += res.Pruned
		ranges, err := tlog.PrunedRanges(ctx, db, "acme")
		if err != nil {
			b.Fatal(err)
		}
		rep, err := tlog.Verify(ctx, db, "acme", storetest.Signer().Verifier(), tlog.VerifyOptions{Pruned: ranges})
		if err != nil || !rep.OK() {
			b.Fatalf("Verify after the prune: %v %+v", err, rep)
		}
		b.Logf("%d events read in %v, %d pruned in %d prunes in %v", p.Scanned, planned.Round(time.Millisecond), res.Pruned, len(res.Records), applied.Round(time.Millisecond))
		db.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(read)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(pruned)/b.Elapsed().Seconds(), "pruned/s")
}
