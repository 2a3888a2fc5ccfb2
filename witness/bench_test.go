package witness

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/ledger"
	"github.com/trailaudit/trail/internal/pgtest"
	"github.com/trailaudit/trail/internal/testenv"
	"github.com/trailaudit/trail/postgres"
	"github.com/trailaudit/trail/sqlite"
	"github.com/trailaudit/trail/storetest"
	"github.com/trailaudit/trail/tlog"
)

// rootStore is what the root log's benchmarks run on: a store and its
// writer.
type rootStore interface {
	Store
	trail.Store
	ledger.Writer
}

// BenchmarkRootLog measures the root log on SQLite and PostgreSQL with n
// tenants, each with a log: append is a round's appendRoot entering every
// tenant (all changed: the worst round), reported per entry and per round;
// seed is a new Witnesser's first read of the root log (what it does once
// when it starts); prove is the inclusion proof of one tenant's entry in
// the root checkpoint, with its size. cpu-s/round is the CPU time the
// process used a round (the store's committer included): on a shared
// machine the wall time is stretched by the others' load, that is not.
//
//	go test ./witness -run '^$' -bench RootLog -benchtime 3x
func BenchmarkRootLog(b *testing.B) {
	opens := []struct {
		name string
		open func(b *testing.B) rootStore
	}{
		{"sqlite", func(b *testing.B) rootStore {
			db, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "trail.db"), sqlite.Options{Validator: storetest.Validator(), Signer: storetest.Signer()})
			if err != nil {
				b.Fatal(err)
			}
			return db
		}},
		{"postgres", func(b *testing.B) rootStore {
			db, err := postgres.Open(context.Background(), pgtest.ServerURL(), postgres.Options{Validator: storetest.Validator(), Signer: storetest.Signer(), Schema: pgtest.NewSchema(b)})
			if err != nil {
				b.Fatal(err)
			}
			return db
		}},
	}
	for _, o := range opens {
		for _, n := range []int{1_000, 100_000} {
			b.Run(fmt.Sprintf("%s/tenants=%d", o.name, n), func(b *testing.B) { benchRootLog(b, o.open(b), n) })
		}
	}
}

func benchRootLog(b *testing.B, db rootStore, n int) {
	defer db.Close()
	ctx := context.Background()
	tenants := make([]string, n)
	sizes := map[string]uint64{}
	for i := range tenants {
		tenants[i] = fmt.Sprintf("t%06d", i)
		sizes[tenants[i]] = 1
	}
	// Concurrent appends, which the pipeline commits together.
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Go(func() {
			for i := g; i < n; i += 16 {
				if _, err := db.Append(ctx, tenants[i], []*trail.Event{storetest.Login("u-1")}, trail.AppendOptions{}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	w, err := New(Config{Policy: &Policy{Quorum: 1}, Store: db, Writer: db})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("append", func(b *testing.B) {
		cpu := testenv.CPUTime()
		for b.Loop() {
			w.mu.Lock()
			w.entered = map[string]uint64{} // every tenant changed
			w.mu.Unlock()
			if _, err := w.appendRoot(ctx, sizes, tenants); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/entry")
		b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/round")
		b.ReportMetric((testenv.CPUTime()-cpu).Seconds()/float64(b.N), "cpu-s/round")
	})
	b.Run("seed", func(b *testing.B) {
		for b.Loop() {
			w, err := New(Config{Policy: &Policy{Quorum: 1}, Store: db, Writer: db})
			if err != nil {
				b.Fatal(err)
			}
			if err := w.seedRoot(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("prove", func(b *testing.B) {
		note, err := db.Checkpoint(ctx, trail.RootTenant)
		if err != nil {
			b.Fatal(err)
		}
		cp, err := storetest.Signer().Verifier().Open(trail.RootTenant, note)
		if err != nil {
			b.Fatal(err)
		}
		var in *tlog.Inclusion
		for i := 0; b.Loop(); i++ {
			if in, err = tlog.ProveInclusion(ctx, db, trail.RootTenant, cp, uint64(i)%cp.Size+1, cp.Size); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(cp.Size), "root_entries")
		b.ReportMetric(float64(len(in.Proof)), "proof_hashes")
		b.ReportMetric(float64(len(in.Proof)*trail.HashSize+len(in.Body)+len(note)), "proof_bytes")
	})
}
