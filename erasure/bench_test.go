package erasure_test

import (
	"context"
	"flag"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/erasure"
	"github.com/trailaudit/trail/internal/sample"
	"github.com/trailaudit/trail/internal/testenv"
	"github.com/trailaudit/trail/memory"
	"github.com/trailaudit/trail/sqlite"
	"github.com/trailaudit/trail/storetest"
)

// BenchmarkSealOverhead appends batches of 1000 sample events (most with a
// user actor, an email and an IP: personal data to seal) to three SQLite
// stores in turn: one sealing under per-subject keys (a key file beside
// it), one not, and one not sealing but given the events sealed beforehand
// (about the sealed bytes without the sealing: what the longer rows alone
// cost; the request's IP address stays in clear, which validation wants).
// It reports each rate, the cost of sealing in percent (sealed against
// plain; bytes alone: presealed against plain), the CPU each arm used an
// event (testenv.CPUTime around its appends: on a machine shared with
// other work it moves far less than the wall time) and the canonical bytes
// an event stored (what the log hashes, the events table's body).
func BenchmarkSealOverhead(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	keys := storetest.OpenSubjectKeys(b, sqlite.OpenSubjectKeys, filepath.Join(dir, "keys.db"))
	open := func(name string, seal bool) *sqlite.DB {
		v := storetest.Validator()
		if seal {
			v.Sealer = erasure.NewSealer(keys, v.Actions)
		}
		db, err := sqlite.Open(ctx, filepath.Join(dir, name), sqlite.Options{Validator: v, Signer: storetest.Signer()})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		return db
	}
	const sealed, plain, presealed = 0, 1, 2
	dbs := [3]*sqlite.DB{open("sealed.db", true), open("plain.db", false), open("presealed.db", false)}
	s := sample.New(21)
	batches := make([][3][]*trail.Event, 16) // each arm's events of a batch
	sealer := erasure.NewSealer(keys, storetest.Validator().Actions)
	for i := range batches {
		batch := s.Batch(1000, time.Now())
		pre := make([]*trail.Event, len(batch))
		for j, ev := range batch {
			pre[j] = ev.Clone()
			pre[j].ID = trail.NewID(time.Now()) // Seal needs one, as PrepareBatch draws it
		}
		if err := sealer.Seal(ctx, "acme", pre); err != nil {
			b.Fatal(err)
		}
		for j, ev := range pre { // validation wants an IP address there, and no id
			ev.Request.IP = batch[j].Request.IP
			ev.ID = ""
		}
		batches[i] = [3][]*trail.Event{batch, batch, pre}
	}
	// The steady state: the subjects are known (their keys exist and are
	// in memory), as the users of an app are. BenchmarkNewSubjects
	// measures a subject's first event. The stores start from the same
	// number of events.
	var size [3]int // canonical bytes stored
	for _, batch := range batches {
		for k, db := range dbs {
			res, err := db.Append(ctx, "acme", batch[k], trail.AppendOptions{})
			if err != nil {
				b.Fatal(err)
			}
			for _, ev := range res.Events {
				body, err := trail.MarshalCanonical(ev)
				if err != nil {
					b.Fatal(err)
				}
				size[k] += len(body)
			}
		}
	}
	b.ResetTimer()
	var took, cpu [3]time.Duration
	for i := 0; b.Loop(); i++ {
		for j := range 3 {
			k := (i + j) % 3
			t0, c0 := time.Now(), testenv.CPUTime()
			if _, err := dbs[k].Append(ctx, "acme", batches[i%len(batches)][k], trail.AppendOptions{}); err != nil {
				b.Fatal(err)
			}
			took[k] += time.Since(t0)
			cpu[k] += testenv.CPUTime() - c0
		}
	}
	n := float64(b.N * 1000)
	warm := float64(len(batches) * 1000)
	over := func(d [3]time.Duration, k int) float64 { return 100 * (d[k].Seconds()/d[plain].Seconds() - 1) }
	b.ReportMetric(n/took[sealed].Seconds(), "events/s-sealed")
	b.ReportMetric(n/took[plain].Seconds(), "events/s-plain")
	b.ReportMetric(over(took, sealed), "%overhead")
	b.ReportMetric(over(took, presealed), "%overhead-bytes")
	b.ReportMetric(float64(cpu[sealed].Microseconds())/n, "cpu-µs/event-sealed")
	b.ReportMetric(float64(cpu[plain].Microseconds())/n, "cpu-µs/event-plain")
	b.ReportMetric(float64(cpu[presealed].Microseconds())/n, "cpu-µs/event-presealed")
	b.ReportMetric(over(cpu, sealed), "%cpu-overhead")
	b.ReportMetric(over(cpu, presealed), "%cpu-overhead-bytes")
	b.ReportMetric(float64(size[sealed])/warm, "B/event-sealed")
	b.ReportMetric(float64(size[plain])/warm, "B/event-plain")
	b.ReportMetric(float64(size[presealed])/warm, "B/event-presealed")
}

// BenchmarkNewSubjects measures what a subject's first event costs: its
// key is created in the key file (one transaction per batch).
func BenchmarkNewSubjects(b *testing.B) {
	ctx := context.Background()
	keys := storetest.OpenSubjectKeys(b, sqlite.OpenSubjectKeys, filepath.Join(b.TempDir(), "keys.db"))
	subjects := make([]string, 1000)
	n := 0
	for b.Loop() {
		for i := range subjects {
			subjects[i] = "u-" + strconv.Itoa(n)
			n++
		}
		if _, err := keys.SubjectKeys(ctx, "acme", subjects); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "subjects/s")
}

// BenchmarkEraseSubject erases a subject with -erase.events events (100k
// by default) from a SQLite store: deleting its keys, whatever the number
// of its events, then reading a page of them back as erased.
func BenchmarkEraseSubject(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	keys := storetest.OpenSubjectKeys(b, sqlite.OpenSubjectKeys, filepath.Join(dir, "keys.db"))
	v := storetest.Validator()
	sealer := erasure.NewSealer(keys, v.Actions)
	v.Sealer = sealer
	db, err := sqlite.Open(ctx, filepath.Join(dir, "trail.db"), sqlite.Options{Validator: v, Signer: storetest.Signer()})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	store := erasure.Wrap(db, sealer)
	s := sample.New(31)
	for n := 0; n < *eraseEvents; n += 1000 {
		batch := s.Batch(1000, time.Now())
		for _, ev := range batch {
			ev.Actor.ID, ev.Actor.Type = "u-subject", trail.ActorUser
		}
		if _, err := store.Append(ctx, "acme", batch, trail.AppendOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		if _, err := sealer.Erase(ctx, "acme", "u-subject"); err != nil {
			b.Fatal(err)
		}
		p, err := store.Query(ctx, trail.Query{Tenant: "acme", ActorID: "u-subject", Limit: 100})
		if err != nil || len(p.Events) == 0 || p.Events[0].Actor.Email != erasure.Erased {
			b.Fatalf("after erasure: %v %+v", err, p)
		}
	}
	b.ReportMetric(float64(*eraseEvents), "events-of-subject")
}

var eraseEvents = flag.Int("erase.events", 100_000, "events of the subject BenchmarkEraseSubject erases")

// BenchmarkSeal is the CPU cost of sealing alone: 1000 sample events (a
// user actor with an email and an IP, as most events have), their
// subjects' keys in memory. Each round seals fresh copies; the copying is
// part of the figure.
func BenchmarkSeal(b *testing.B) {
	ctx := context.Background()
	v := storetest.Validator()
	s := erasure.NewSealer(memory.NewSubjectKeys(), v.Actions)
	batch := sample.New(21).Batch(1000, time.Now())
	evs := make([]*trail.Event, len(batch))
	for i, ev := range batch {
		ev.ID = trail.NewID(time.Now()) // Seal needs one, as PrepareBatch draws it
		evs[i] = ev.Clone()
	}
	if err := s.Seal(ctx, "acme", evs); err != nil { // the keys, made once
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpu0 := testenv.CPUTime()
	for b.Loop() {
		for i, ev := range batch {
			evs[i] = ev.Clone()
		}
		if err := s.Seal(ctx, "acme", evs); err != nil {
			b.Fatal(err)
		}
	}
	n := float64(b.N * len(batch))
	b.ReportMetric(n/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64((testenv.CPUTime()-cpu0).Microseconds())/n, "cpu-µs/event")
}
