package sqlite_test

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/baseline"
	"github.com/trailaudit/trail/internal/sample"
	"github.com/trailaudit/trail/internal/testenv"
	"github.com/trailaudit/trail/sqlite"
	"github.com/trailaudit/trail/storetest"
)

// The benchmarks measure what docs/benchmarks.md reports. Each figure comes
// with a baseline measured in the same run: what the seed apps do, one
// INSERT and one commit per event.

func benchDB(b *testing.B, o sqlite.Options) *sqlite.DB {
	b.Helper()
	o.Validator = storetest.Validator()
	o.Signer = storetest.Signer()
	db, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "trail.db"), o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

// sampleBatches makes n batches of size sample events.
func sampleBatches(n, size int) [][]*trail.Event {
	s := sample.New(1)
	s.Entities = *entities
	out := make([][]*trail.Event, n)
	for i := range out {
		out[i] = s.Batch(size, time.Now())
	}
	return out
}

// eventsPerSec reports the rate of n events, the process's CPU time per
// event since m (cpuTime): on a machine shared with other work the
// wall-clock rate moves with the load, the CPU an event costs much less;
// and the bytes it wrote per event (Linux), the log's and the
// checkpoints' together.
func eventsPerSec(b *testing.B, n int, m meter) {
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64((testenv.CPUTime()-m.cpu).Microseconds())/float64(n), "cpu-µs/event")
	if w := writtenBytes(); w > 0 && m.written > 0 {
		b.ReportMetric(float64(w-m.written)/1024/float64(n), "written-KB/event")
	}
}

// meter is where a measurement starts.
type meter struct {
	cpu     time.Duration
	written int64
}

func startMeter() meter { return meter{testenv.CPUTime(), writtenBytes()} }

// writtenBytes is what the process has written with write system calls
// so far (wchar of /proc/self/io), or 0 where that is not known.
func writtenBytes() int64 {
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "wchar: "); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// BenchmarkAppendBatch1000 appends batches of 1000 events, each batch one
// durable commit.
func BenchmarkAppendBatch1000(b *testing.B) {
	db := benchDB(b, sqlite.Options{})
	appendBatches1000(b, db)
}

// BenchmarkAppendBatch1000x4 has four callers append batches of 1000 at
// once, as an ingest pipeline does: validation runs in parallel with the
// writer, and group commit lets batches share a commit.
func BenchmarkAppendBatch1000x4(b *testing.B) {
	db := benchDB(b, sqlite.Options{})
	batches := sampleBatches(16, 1000)
	m := startMeter()
	concurrently(b, 4, batches, func(batch []*trail.Event) error {
		_, err := db.Append(context.Background(), "acme", batch, trail.AppendOptions{})
		return err
	})
	eventsPerSec(b, b.N*1000, m)
}

// BenchmarkGroupCommit64 runs 64 concurrent appenders of one event each;
// the writer gathers them into shared commits.
func BenchmarkGroupCommit64(b *testing.B) {
	var noTree sqlite.Options
	sqlite.WithoutTree(&noTree)
	for _, tc := range []struct {
		name string
		o    sqlite.Options
	}{
		{"maxwait=0", sqlite.Options{}},
		{"maxwait=500µs", sqlite.Options{MaxWait: 500 * time.Microsecond}},
		{"maxwait=0,no-tree", noTree},
	} {
		b.Run(tc.name, func(b *testing.B) {
			db := benchDB(b, tc.o)
			appendConcurrently(b, 64, func(ev *trail.Event) error {
				_, err := db.Append(context.Background(), "acme", []*trail.Event{ev}, trail.AppendOptions{})
				return err
			})
		})
	}
}

// appendConcurrently has workers goroutines add b.N sample events in all,
// one event per call.
func appendConcurrently(b *testing.B, workers int, add func(*trail.Event) error) {
	evs := sample.New(2).Batch(4096, time.Now())
	m := startMeter()
	concurrently(b, workers, evs, add)
	eventsPerSec(b, b.N, m)
}

// concurrently has workers goroutines call fn b.N times in all, cycling
// through items.
func concurrently[T any](b *testing.B, workers int, items []T, fn func(T) error) {
	var wg sync.WaitGroup
	work := make(chan T, workers)
	var failed error
	var once sync.Once
	b.ResetTimer()
	for range workers {
		wg.Go(func() {
			for it := range work {
				if err := fn(it); err != nil {
					once.Do(func() { failed = err })
				}
			}
		})
	}
	for i := range b.N {
		work <- items[i%len(items)]
	}
	close(work)
	wg.Wait()
	if failed != nil {
		b.Fatal(failed)
	}
}

func baselineDB(b *testing.B) *sql.DB {
	b.Helper()
	db, err := baseline.Open(filepath.Join(b.TempDir(), "baseline.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

// BenchmarkBaselineInsertPerEvent is the seeds' way: one INSERT and one
// commit per event, one caller.
func BenchmarkBaselineInsertPerEvent(b *testing.B) {
	db := baselineDB(b)
	evs := sample.New(3).Batch(4096, time.Now())
	b.ResetTimer()
	m := startMeter()
	for i := 0; b.Loop(); i++ {
		if err := baseline.Insert(db, evs[i%len(evs)]); err != nil {
			b.Fatal(err)
		}
	}
	eventsPerSec(b, b.N, m)
}

// BenchmarkBaselineInsertPerEvent64 is the seeds' way with 64 concurrent
// callers, each INSERT its own commit.
func BenchmarkBaselineInsertPerEvent64(b *testing.B) {
	db := baselineDB(b)
	appendConcurrently(b, 64, func(ev *trail.Event) error { return baseline.Insert(db, ev) })
}

var (
	bigDB     = flag.String("trail.bigdb", "", "path of the large database for BenchmarkQueryLarge (generated when missing)")
	bigEvents = flag.Int("trail.bigdb.events", 10_000_000, "events in the generated large database")
	// A second target per event, an entry of this many (sample.Entities),
	// in the large database and the batches appended to it.
	entities = flag.Int("trail.entities", 0, "with a second target per event, an entry of this many (0: none)")
	// The page caches of the large database's connections (0: Options'
	// defaults), to measure what a size costs the queries.
	writerCache = flag.Int64("trail.cache.writer", 0, "Options.WriterCache of the large database, bytes (0: the default)")
	readerCache = flag.Int64("trail.cache.reader", 0, "Options.ReaderCache of the large database, bytes (0: the default)")
)

// BenchmarkQueryLarge runs filtered page queries on a large database (10M
// events by default) and reports the 95th percentile latency. The database
// is generated on first use at -trail.bigdb and kept for later runs.
func BenchmarkQueryLarge(b *testing.B) {
	if *bigDB == "" {
		b.Skip("set -trail.bigdb=PATH (and optionally -trail.bigdb.events=N) to run the large-database benchmarks")
	}
	ctx := context.Background()
	db := openBig(b, *bigDB, *bigEvents)
	if fi, err := os.Stat(*bigDB); err == nil {
		n, _ := db.Count(ctx, trail.Query{Tenant: "acme"})
		b.Logf("%s: %d events, %.0f bytes per event on disk", *bigDB, n, float64(fi.Size())/float64(n))
	}
	first, err := db.GetSeq(ctx, "acme", 1)
	if err != nil {
		b.Fatal(err)
	}
	n, _ := db.Count(ctx, trail.Query{Tenant: "acme"})
	last, err := db.GetSeq(ctx, "acme", uint64(n))
	if err != nil {
		b.Fatal(err)
	}
	span := last.RecordedAt.Sub(first.RecordedAt)
	r := rand.New(rand.NewPCG(7, 7))
	window := func() (time.Time, time.Time) {
		from := first.RecordedAt.Add(time.Duration(r.Int64N(int64(span))))
		return from, from.Add(span / 10)
	}
	for _, tc := range []struct {
		name string
		q    func() trail.Query
	}{
		{"actor+time", func() trail.Query {
			from, to := window()
			return trail.Query{Tenant: "acme", ActorID: fmt.Sprintf("u-%d", r.IntN(10000)), RecordedAfter: from, RecordedBefore: to}
		}},
		{"action+workspace", func() trail.Query {
			return trail.Query{Tenant: "acme", Actions: []string{"entry_approved"}, Workspace: fmt.Sprintf("ws-%d", r.IntN(50))}
		}},
		{"action+workspace newest", func() trail.Query {
			return trail.Query{Tenant: "acme", Actions: []string{"access_denied"}, Workspace: fmt.Sprintf("ws-%d", r.IntN(50)), Descending: true}
		}},
		{"two actions newest", func() trail.Query {
			return trail.Query{Tenant: "acme", Actions: []string{"data_exported", "role_assigned"}, Descending: true}
		}},
		{"actor newest", func() trail.Query {
			return trail.Query{Tenant: "acme", ActorID: fmt.Sprintf("u-%d", r.IntN(10000)), Descending: true}
		}},
		{"target", func() trail.Query {
			return trail.Query{Tenant: "acme", TargetID: fmt.Sprintf("ws-%d", r.IntN(50)), Descending: true}
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var lat []time.Duration
			got := 0
			// CPU time moves less than wall time on a shared machine.
			cpu0 := testenv.CPUTime()
			for b.Loop() {
				q := tc.q()
				q.Limit = 100
				t0 := time.Now()
				p, err := db.Query(ctx, q)
				lat = append(lat, time.Since(t0))
				if err != nil {
					b.Fatal(err)
				}
				got += len(p.Events)
			}
			cpu := testenv.CPUTime() - cpu0
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)*95/100].Microseconds())/1000, "p95-ms")
			b.ReportMetric(float64(cpu.Microseconds())/1000/float64(len(lat)), "cpu-ms/op")
			b.ReportMetric(float64(got)/float64(len(lat)), "events/page")
		})
	}
}

// BenchmarkAppendLarge appends batches of 1000, each one durable commit,
// to the large database of BenchmarkQueryLarge (-trail.bigdb, generated
// when missing): the append rate once the indexes have outgrown the page
// cache. Each run adds its events to the file.
func BenchmarkAppendLarge(b *testing.B) {
	if *bigDB == "" {
		b.Skip("set -trail.bigdb=PATH (and optionally -trail.bigdb.events=N) to run the large-database benchmarks")
	}
	db := openBig(b, *bigDB, *bigEvents)
	appendBatches1000(b, db)
}

// openBig opens the large database, generating it first when missing: n
// sample events over 30 days, appended in batches of 5000.
func openBig(b *testing.B, path string, n int) *sqlite.DB {
	_, statErr := os.Stat(path)
	start := time.Now().Add(-30 * 24 * time.Hour)
	step := 30 * 24 * time.Hour / time.Duration(n)
	clock := start
	var mu sync.Mutex
	db, err := sqlite.Open(context.Background(), path, sqlite.Options{Validator: storetest.Validator(), Signer: storetest.Signer(),
		WriterCache: *writerCache, ReaderCache: *readerCache, Now: func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			return clock
		}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	if statErr == nil {
		return db
	}
	s := sample.New(42)
	s.Entities = *entities
	t0 := time.Now()
	for i := 0; i < n; i += 5000 {
		batch := s.Batch(min(5000, n-i), clock)
		mu.Lock()
		clock = start.Add(time.Duration(i) * step)
		mu.Unlock()
		if _, err := db.Append(context.Background(), "acme", batch, trail.AppendOptions{}); err != nil {
			b.Fatal(err)
		}
		if i%500_000 == 0 {
			b.Logf("generated %d of %d events (%.0f/s)", i, n, float64(i)/time.Since(t0).Seconds())
		}
	}
	return db
}

// BenchmarkIndexCost appends batches of 1000 with each secondary index
// dropped in turn, and with none, to show what each index costs a write.
func BenchmarkIndexCost(b *testing.B) {
	indexes := secondaryIndexes
	cases := [][]string{nil}
	for _, ix := range indexes {
		cases = append(cases, []string{ix})
	}
	cases = append(cases, indexes)
	for _, drop := range cases {
		name := "all indexes"
		if len(drop) == 1 {
			name = "without " + drop[0]
		} else if len(drop) > 1 {
			name = "no secondary indexes"
		}
		b.Run(name, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "trail.db")
			db, err := sqlite.Open(context.Background(), path, sqlite.Options{Validator: storetest.Validator(), Signer: storetest.Signer()})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
			if err != nil {
				b.Fatal(err)
			}
			for _, ix := range drop {
				if _, err := raw.Exec("DROP INDEX " + ix); err != nil {
					b.Fatal(err)
				}
			}
			raw.Close()
			appendBatches1000(b, db)
		})
	}
}

// appendBatches1000 appends batches of 1000 sample events to db's tenant
// acme, one durable commit each, for the benchmark's loop, and reports the
// events per second.
func appendBatches1000(b *testing.B, db *sqlite.DB) {
	batches := sampleBatches(16, 1000)
	b.ResetTimer()
	m := startMeter()
	for i := 0; b.Loop(); i++ {
		if _, err := db.Append(context.Background(), "acme", batches[i%len(batches)], trail.AppendOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	eventsPerSec(b, b.N*1000, m)
}
