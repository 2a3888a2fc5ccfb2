package witness_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/sample"
	"github.com/trailaudit/trail/internal/testenv"
	"github.com/trailaudit/trail/internal/witnesstest"
	"github.com/trailaudit/trail/sqlite"
	"github.com/trailaudit/trail/storetest"
	"github.com/trailaudit/trail/tlog"
	"github.com/trailaudit/trail/witness"
)

// benchWitnessed opens a SQLite store and, when on, runs a Witnesser over
// it (every interval) against a real litewitness, until the benchmark
// ends. It returns the store and the policy.
func benchWitnessed(b *testing.B, on bool, interval time.Duration) (*sqlite.DB, *witness.Policy) {
	b.Helper()
	db, p, stop := witnessed(b, on, interval)
	b.Cleanup(stop)
	return db, p
}

// witnessed opens a SQLite store in a folder of its own and, when on,
// runs a Witnesser over it (every interval) against a real litewitness of
// its own. It returns the store, the policy (nil when off) and stop,
// which stops the Witnesser and closes the store.
func witnessed(b *testing.B, on bool, interval time.Duration) (*sqlite.DB, *witness.Policy, func()) {
	b.Helper()
	o := sqlite.Options{Validator: storetest.Validator(), Signer: storetest.Signer()}
	// A folder of its own, removed when stopped (not when the benchmark
	// ends): a window's gigabytes, and their pages in the kernel's cache
	// still being written back, must not weigh on the next window.
	dir, err := os.MkdirTemp("", "trail-witnessed-")
	if err != nil {
		b.Fatal(err)
	}
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "trail.db"), o)
	if err != nil {
		os.RemoveAll(dir)
		b.Fatal(err)
	}
	closeDB := func() {
		db.Close()
		os.RemoveAll(dir)
	}
	if !on {
		return db, nil, closeDB
	}
	lw := witnesstest.Start(b, "w1.trail.test")
	origin := tlog.Origin(storetest.Signer().Verifier().Name(), trail.RootTenant)
	vkey, err := tlog.OriginKey(storetest.Signer().VerifierKey(), origin)
	if err != nil {
		b.Fatal(err)
	}
	lw.AddLog(origin, vkey)
	p, err := witness.ParsePolicy(witnesstest.Policy(1, lw))
	if err != nil {
		b.Fatal(err)
	}
	w, err := witness.New(witness.Config{Policy: p, Store: db, Writer: db, Interval: interval})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	return db, p, func() { cancel(); <-done; closeDB() }
}

// appendBatch appends 1000 sample events to tenant acme and returns the
// log's size after it.
func appendBatch(b *testing.B, db *sqlite.DB, gen *sample.Sample) uint64 {
	b.Helper()
	evs := make([]*trail.Event, 1000)
	for i := range evs {
		evs[i] = gen.Event(time.Now())
	}
	res, err := db.Append(context.Background(), "acme", evs, trail.AppendOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return res.Events[len(res.Events)-1].Seq
}

// BenchmarkIngestWitnessed appends batches of 1000 sample events to SQLite
// with no witnessing (off) and with a Witnesser submitting the root log to
// a real litewitness every 100ms (on: ten times the default cadence, the
// most it could cost). Run with -count to interleave the two.
//
//	go test ./witness -run '^$' -bench IngestWitnessed -benchtime 20x -count 3
func BenchmarkIngestWitnessed(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
			db, _ := benchWitnessed(b, on, 100*time.Millisecond)
			gen := sample.New(1)
			n := 0
			for b.Loop() {
				appendBatch(b, db, gen)
				n += 1000
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

var witnessedWindow = flag.Duration("trail.window", 2*time.Minute, "the length of each window of BenchmarkIngestWitnessedDefault")

// BenchmarkIngestWitnessedDefault measures what witnessing costs ingest
// at the default cadence (witness.DefaultInterval): each iteration is a
// pair of windows of two minutes (-trail.window; five seconds under -short), each on a
// fresh SQLite store, appending batches of 1000 sample events: one with no
// witnessing (off) and one with a Witnesser submitting the root log to a
// real litewitness every 10 s (on), the order swapped every other pair so
// that a drift of the machine's load falls on both. It logs each pair and
// reports the median, least and largest of the pairs' on/off ratios.
//
//	go test ./witness -run '^$' -bench IngestWitnessedDefault -benchtime 3x -timeout 30m
func BenchmarkIngestWitnessedDefault(b *testing.B) {
	window := *witnessedWindow
	if testing.Short() {
		window = 5 * time.Second
	}
	// A window's rate, its CPU time per event (which the machine's load
	// stretches far less than the rate), and what it saw of stalls.
	type result struct {
		rate, cpu float64
		detail    string
	}
	rate := func(on bool) result {
		db, _, stop := witnessed(b, on, witness.DefaultInterval)
		defer stop()
		gen := sample.New(1)
		var took []time.Duration
		n, t0, cpu0 := 0, time.Now(), testenv.CPUTime()
		for time.Since(t0) < window {
			t1 := time.Now()
			appendBatch(b, db, gen)
			took = append(took, time.Since(t1))
			n += 1000
		}
		r := float64(n) / time.Since(t0).Seconds()
		cpu := float64((testenv.CPUTime() - cpu0).Microseconds()) / float64(n)
		slices.Sort(took)
		med := took[len(took)/2]
		var stalled time.Duration // beyond twice the median batch
		for _, d := range took {
			stalled += max(0, d-2*med)
		}
		return result{r, cpu, fmt.Sprintf("%.0f events/s, %.1f cpu-µs/event, batch p50 %v p99 %v max %v, stalled %v, %s", r, cpu,
			med.Round(time.Millisecond), took[len(took)*99/100].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond),
			stalled.Round(time.Millisecond), db.WALStats())}
	}
	var ratios, cpus []float64
	for i := 0; b.Loop(); i++ {
		var off, on result
		if i%2 == 0 {
			off, on = rate(false), rate(true)
		} else {
			on, off = rate(true), rate(false)
		}
		ratios, cpus = append(ratios, on.rate/off.rate), append(cpus, on.cpu/off.cpu)
		// One line a pair: a benchmark's log keeps ten.
		b.Logf("pair %d: on/off %.3f, CPU per event on/off %.3f; off: %s; on: %s", i+1, on.rate/off.rate, on.cpu/off.cpu, off.detail, on.detail)
	}
	slices.Sort(ratios)
	slices.Sort(cpus)
	b.ReportMetric(cpus[len(cpus)/2], "cpu-on/off-median")
	b.ReportMetric(ratios[len(ratios)/2], "on/off-median")
	b.ReportMetric(ratios[0], "on/off-min")
	b.ReportMetric(ratios[len(ratios)-1], "on/off-max")
}

// BenchmarkCommitToCosignature appends a batch and waits until the
// tenant's checkpoint holding it is witnessed (a root checkpoint with its
// entry cosigned by the witness), with rounds every second: it reports
// the p50 and p99 of that wait. At the default cadence (10 s) add about
// 4.5 s to each (half the difference of the intervals).
//
//	go test ./witness -run '^$' -bench CommitToCosignature -benchtime 20x
func BenchmarkCommitToCosignature(b *testing.B) {
	db, p := benchWitnessed(b, true, time.Second)
	gen := sample.New(2)
	var waits []time.Duration
	for b.Loop() {
		size := appendBatch(b, db, gen)
		t0 := time.Now()
		for {
			c, err := p.Witnessed(context.Background(), db, "acme")
			if err == nil && c.Size >= size {
				break
			}
			if time.Since(t0) > time.Minute {
				b.Fatalf("no cosignature of size %d in a minute: %v", size, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
		waits = append(waits, time.Since(t0))
	}
	slices.Sort(waits)
	b.ReportMetric(float64(waits[len(waits)/2].Milliseconds()), "p50-ms")
	b.ReportMetric(float64(waits[len(waits)*99/100].Milliseconds()), "p99-ms")
}
