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
	"github.com/trailaudit/trail/memory"
	"github.com/trailaudit/trail/sqlite"
	"github.com/trailaudit/trail/storetest"
)

// BenchmarkSealOverhead appends batches of 1000 sample events (most with a
// user actor, an email and an IP: personal data to seal) to two SQLite
// stores in turn, one sealing under per-subject keys (a key file beside it)
// and one not, and reports each rate and the cost of sealing in percent.
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
	dbs := [2]*sqlite.DB{open("sealed.db", true), open("plain.db", false)}
	s := sample.New(21)
	batches := make([][]*trail.Event, 16)
	for i := range batches {
		batches[i] = s.Batch(1000, time.Now())
	}
	// The steady state: the subjects are known (their keys exist and are
	// in memory), as the users of an app are. BenchmarkNewSubjects
	// measures a subject's first event.
	for _, batch := range batches {
		if _, err := dbs[0].Append(ctx, "acme", batch, trail.AppendOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	var took [2]time.Duration
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
	n := float64(b.N * 1000)
	b.ReportMetric(n/took[0].Seconds(), "events/s-sealed")
	b.ReportMetric(n/took[1].Seconds(), "events/s-plain")
	b.ReportMetric(100*(took[0].Seconds()/took[1].Seconds()-1), "%overhead")
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
		evs[i] = ev.Clone()
	}
	if err := s.Seal(ctx, "acme", evs); err != nil { // the keys, made once
		b.Fatal(err)
	}
	for b.Loop() {
		for i, ev := range batch {
			evs[i] = ev.Clone()
		}
		if err := s.Seal(ctx, "acme", evs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "events/s")
}
