package postgres_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/pgtest"
	"github.com/trailaudit/trail/internal/sample"
	"github.com/trailaudit/trail/internal/testenv"
	"github.com/trailaudit/trail/postgres"
	"github.com/trailaudit/trail/storetest"
	"github.com/trailaudit/trail/tlog"
)

// The benchmarks measure what docs/benchmarks.md reports. Events are
// storetest's samples: about 500 bytes in canonical form, 4 to 6 context
// keys. Each figure comes with baselines measured against the same server:
// what the seed apps do (one INSERT and one commit per event) and the
// ceiling (a raw COPY of the same rows into a table with no index, no
// trigger, nothing to check).

// sampleBatches makes n batches of size sample events.
func sampleBatches(n, size int) [][]*trail.Event {
	s := sample.New(1)
	out := make([][]*trail.Event, n)
	for i := range out {
		out[i] = s.Batch(size, time.Now())
	}
	return out
}

// rawBatch is a batch as Append writes it: its events rows and its
// event_targets rows, ready for COPY.
type rawBatch struct {
	events, targets [][]any
}

// rawRows prepares batches as Append would and returns the rows Append
// writes to events and event_targets, ready for COPY.
func rawRows(b *testing.B, batches [][]*trail.Event) []rawBatch {
	v := storetest.Validator()
	out := make([]rawBatch, len(batches))
	seq := int64(0)
	tree, _ := tlog.NewTree(0, nil)
	for i, batch := range batches {
		prepared, err := v.PrepareBatch("acme", batch, trail.Policy{}, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		for _, ev := range prepared {
			seq++
			ev.Seq = uint64(seq)
			body, err := trail.MarshalCanonical(ev)
			if err != nil {
				b.Fatal(err)
			}
			id, _ := trail.ParseID(ev.ID)
			sub := func(t time.Time) int32 { return int32(t.Nanosecond() % 1000) }
			out[i].events = append(out[i].events, []any{"acme", seq, id, ev.RecordedAt, ev.OccurredAt, sub(ev.RecordedAt), sub(ev.OccurredAt),
				ev.Action, ev.Category, string(ev.Outcome), ev.Actor.ID, string(ev.Actor.Type),
				ev.Scope.Organization, ev.Scope.Workspace, ev.Scope.Team, ev.CorrelationID, body, tree.Append(body)})
			for _, t := range trail.IndexOf(ev).Targets {
				out[i].targets = append(out[i].targets, []any{"acme", seq, t.Type, t.ID})
			}
		}
	}
	return out
}

// renumber returns rb as the rows of a batch that starts after seq
// first-1 in one log (rb's own first seq is from) and whose events have
// ids of their own, made as Trail makes them (UUIDv7, in time order, as
// Append's are): rows of a batch stored again, which must not collide
// with the rows stored before.
func renumber(rb rawBatch, from, first int64) rawBatch {
	shift := func(rows [][]any, id bool) [][]any {
		out := make([][]any, len(rows))
		for i, r := range rows {
			out[i] = slices.Clone(r)
			out[i][1] = r[1].(int64) - from + first
			if id {
				out[i][2], _ = trail.ParseID(trail.NewID(time.Now()))
			}
		}
		return out
	}
	return rawBatch{events: shift(rb.events, true), targets: shift(rb.targets, false)}
}

var (
	rawColumns = []string{"tenant", "seq", "id", "recorded_at", "occurred_at", "recorded_ns", "occurred_ns",
		"action", "category", "outcome", "actor_id", "actor_type", "organization", "workspace", "team", "correlation_id", "body", "hashes"}
	rawTargetColumns = []string{"tenant", "seq", "type", "id"}
)

// bareTable creates a table with the columns of events and nothing else (no
// key, no index, no trigger) in a schema of its own, and returns a
// connection that finds it by name.
func bareTable(b *testing.B, name string) *pgx.Conn {
	schema := pgtest.NewSchema(b)
	conn := connect(b, schema, nil)
	_, err := conn.Exec(context.Background(), `CREATE SCHEMA `+pgx.Identifier{schema}.Sanitize()+`; CREATE TABLE `+pgx.Identifier{schema, name}.Sanitize()+` (
		tenant text, seq bigint, id uuid, recorded_at timestamptz, occurred_at timestamptz, recorded_ns integer, occurred_ns integer,
		action text, category text, outcome text, actor_id text, actor_type text, organization text, workspace text, team text,
		correlation_id text, body bytea, hashes bytea)`)
	if err != nil {
		b.Fatal(err)
	}
	return conn
}

func eventsPerSec(b *testing.B, n int) {
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

// cpuPerEvent reports cpu, the process's CPU time over n events
// (testenv.CPUTime: the Go side's work, which moves less than wall time on
// a loaded machine; the database server's is not in it), per event.
func cpuPerEvent(b *testing.B, name string, cpu time.Duration, n int) {
	b.ReportMetric(float64(cpu.Microseconds())/float64(n), name)
}

// BenchmarkAppendBatch1000 appends batches of 1000 events, one caller, each
// batch one durable commit.
func BenchmarkAppendBatch1000(b *testing.B) {
	db := open(b, pgtest.NewSchema(b), postgres.Options{})
	batches := sampleBatches(16, 1000)
	b.ResetTimer()
	cpu0 := testenv.CPUTime()
	for i := 0; b.Loop(); i++ {
		if _, err := db.Append(context.Background(), "acme", batches[i%len(batches)], trail.AppendOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	cpuPerEvent(b, "cpu-µs/event", testenv.CPUTime()-cpu0, b.N*1000)
	eventsPerSec(b, b.N*1000)
}

// BenchmarkAppendBatch1000x2 has two callers append batches of 1000 to one
// tenant: one validates its batch while the other holds the tenant's lock.
func BenchmarkAppendBatch1000x2(b *testing.B) {
	db := open(b, pgtest.NewSchema(b), postgres.Options{})
	batches := sampleBatches(16, 1000)
	var (
		wg   sync.WaitGroup
		next = make(chan int)
		errs = make(chan error, 2)
	)
	b.ResetTimer()
	for range 2 {
		wg.Go(func() {
			for i := range next {
				if _, err := db.Append(context.Background(), "acme", batches[i%len(batches)], trail.AppendOptions{}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	// Not b.Loop: the timer must run until the last append has returned.
	for i := range b.N {
		next <- i
	}
	close(next)
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	eventsPerSec(b, b.N*1000)
}

// BenchmarkAppendOneEvent appends one event per call, one caller: the
// latency of a lone durable append.
func BenchmarkAppendOneEvent(b *testing.B) {
	db := open(b, pgtest.NewSchema(b), postgres.Options{})
	evs := sample.New(2).Batch(4096, time.Now())
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := db.Append(context.Background(), "acme", evs[i%len(evs):i%len(evs)+1], trail.AppendOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	eventsPerSec(b, b.N)
}

// BenchmarkBaselineInsertPerEvent is the seeds' way: one INSERT and one
// commit per event, into a table with the same columns and nothing else.
func BenchmarkBaselineInsertPerEvent(b *testing.B) {
	conn := bareTable(b, "baseline")
	ctx := context.Background()
	rows := rawRows(b, sampleBatches(4, 1000))
	insert := "INSERT INTO baseline (" + joinCols() + ") VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18)"
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := conn.Exec(ctx, insert, rows[i/1000%4].events[i%1000]...); err != nil {
			b.Fatal(err)
		}
	}
	eventsPerSec(b, b.N)
}

func joinCols() string { return strings.Join(rawColumns, ", ") }

// rawCopier COPYs pre-built rows into a bare table, each COPY its own
// durable commit.
func rawCopier(b *testing.B) func(rows [][]any) error {
	conn := bareTable(b, "raw")
	ctx := context.Background()
	return func(rows [][]any) error {
		_, err := conn.CopyFrom(ctx, pgx.Identifier{"raw"}, rawColumns, pgx.CopyFromRows(rows))
		return err
	}
}

// BenchmarkRawCopy is the ceiling: a COPY of 1000 pre-built rows (the rows
// Append writes) into a table with no key, index or trigger.
func BenchmarkRawCopy(b *testing.B) {
	cp := rawCopier(b)
	rows := rawRows(b, sampleBatches(16, 1000))
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if err := cp(rows[i%len(rows)].events); err != nil {
			b.Fatal(err)
		}
	}
	eventsPerSec(b, b.N*1000)
}

// indexedCopier COPYs pre-built batches into copies of events and
// event_targets with their keys and indexes (no triggers), in schema: each
// batch its events and its targets rows in one durable transaction, as
// Append writes them, with nothing to validate, encode, sequence or sign
// and no head or checkpoint row. The rows belong to one tenant, as
// Append's do, so that each index entry lands among the entries of the
// batches before, as Append's do (a tenant per batch would put each
// batch's entries in a range of their own in every index, a cheaper
// insert than Append's); rows of a batch copied again are renumbered.
func indexedCopier(b *testing.B, schema string) func(rb rawBatch) error {
	conn := connect(b, schema, nil)
	ctx := context.Background()
	if _, err := conn.Exec(ctx, `CREATE TABLE indexed (LIKE events INCLUDING INDEXES);
		CREATE TABLE indexed_targets (LIKE event_targets INCLUDING INDEXES)`); err != nil {
		b.Fatal(err)
	}
	return func(rb rawBatch) error {
		return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"indexed"}, rawColumns, pgx.CopyFromRows(rb.events)); err != nil {
				return err
			}
			_, err := tx.CopyFrom(ctx, pgx.Identifier{"indexed_targets"}, rawTargetColumns, pgx.CopyFromRows(rb.targets))
			return err
		})
	}
}

// BenchmarkAppendVsRawCopy alternates an Append of 1000 events, a COPY of
// the same rows pre-built (events and targets, one transaction) into
// tables with the keys and indexes of events and event_targets
// (indexedCopier), and a raw COPY of the events rows into a bare table, so
// all three see the same moment of the machine. It reports each rate and
// the ratios: append/indexed-% is the target (Append ≥ 80% of a COPY of
// the same rows into the same indexed schema), of the summed times, and
// append/indexed-median-% the median of the iterations' ratios.
func BenchmarkAppendVsRawCopy(b *testing.B) {
	schema := pgtest.NewSchema(b)
	db := open(b, schema, postgres.Options{})
	cp := rawCopier(b)
	indexed := indexedCopier(b, schema)
	batches := sampleBatches(16, 1000)
	rows := rawRows(b, batches)
	ctx := context.Background()
	var tAppend, tIndexed, tCopy, cpuAppend, cpuIndexed time.Duration
	var ratios []float64 // each iteration's indexed COPY time over its Append's
	b.ResetTimer()
	seq := int64(1)
	for i := 0; b.Loop(); i++ {
		rb := rows[i%len(rows)]
		if i >= len(rows) {
			rb = renumber(rb, rb.events[0][1].(int64), seq)
		}
		seq += int64(len(rb.events))
		t0, c0 := time.Now(), testenv.CPUTime()
		if _, err := db.Append(ctx, "acme", batches[i%len(batches)], trail.AppendOptions{}); err != nil {
			b.Fatal(err)
		}
		t1, c1 := time.Now(), testenv.CPUTime()
		if err := indexed(rb); err != nil {
			b.Fatal(err)
		}
		t2, c2 := time.Now(), testenv.CPUTime()
		if err := cp(rb.events); err != nil {
			b.Fatal(err)
		}
		tAppend += t1.Sub(t0)
		tIndexed += t2.Sub(t1)
		tCopy += time.Since(t2)
		cpuAppend += c1 - c0
		cpuIndexed += c2 - c1
		ratios = append(ratios, t2.Sub(t1).Seconds()/t1.Sub(t0).Seconds())
	}
	// The median of the iterations' own ratios: a stall of the machine
	// during one step of one iteration (frequent on a shared machine) moves
	// the ratio of the sums, but not this.
	slices.Sort(ratios)
	b.ReportMetric(100*ratios[len(ratios)/2], "append/indexed-median-%")
	n := float64(b.N * 1000)
	cpuPerEvent(b, "append-cpu-µs/event", cpuAppend, b.N*1000)
	cpuPerEvent(b, "indexed-cpu-µs/event", cpuIndexed, b.N*1000)
	b.ReportMetric(n/tAppend.Seconds(), "append-events/s")
	b.ReportMetric(n/tIndexed.Seconds(), "indexed-copy-events/s")
	b.ReportMetric(n/tCopy.Seconds(), "copy-events/s")
	b.ReportMetric(100*tIndexed.Seconds()/tAppend.Seconds(), "append/indexed-%")
	b.ReportMetric(100*tCopy.Seconds()/tAppend.Seconds(), "append/copy-%")
	b.ReportMetric(100*tCopy.Seconds()/tIndexed.Seconds(), "indexed/copy-%")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkTreeOverhead measures what tamper evidence costs an append: it
// alternates Appends of 1000 events to a store that keeps the tree and
// signs a checkpoint per append and to one that does neither (each in a
// schema of its own; which goes first alternates too), so both see the
// machine at the same moment, and reports each rate and the tree's
// overhead in time per event.
func BenchmarkTreeOverhead(b *testing.B) {
	var o postgres.Options
	postgres.WithoutTree(&o)
	dbs := [2]*postgres.DB{open(b, pgtest.NewSchema(b), postgres.Options{}), open(b, pgtest.NewSchema(b), o)}
	batches := sampleBatches(16, 1000)
	ctx := context.Background()
	var took [2]time.Duration // with the tree, without
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		for j := range 2 {
			k := (i + j) % 2
			t0 := time.Now()
			if _, err := dbs[k].Append(ctx, "acme", batches[i%len(batches)], trail.AppendOptions{}); err != nil {
				b.Fatal(err)
			}
			took[k] += time.Since(t0)
		}
	}
	tTree, tBare := took[0], took[1]
	n := float64(b.N * 1000)
	b.ReportMetric(n/tTree.Seconds(), "tree-events/s")
	b.ReportMetric(n/tBare.Seconds(), "bare-events/s")
	b.ReportMetric(100*(tTree.Seconds()/tBare.Seconds()-1), "overhead-%")
	b.ReportMetric(0, "ns/op")
}
