package witness

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/sqlite"
	"github.com/trailaudit/trail/storetest"
	"github.com/trailaudit/trail/tlog"
)

// BenchmarkRootLog measures the root log on SQLite with n tenants, each
// with a log: append is a round's appendRoot entering every tenant (all
// changed), reported per entry; prove is the inclusion proof of one
// tenant's entry in the root checkpoint of n entries, with its size.
//
//	go test ./witness -run '^$' -bench RootLog -benchtime 3x
func BenchmarkRootLog(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		ctx := context.Background()
		db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "trail.db"), sqlite.Options{Validator: storetest.Validator(), Signer: storetest.Signer()})
		if err != nil {
			b.Fatal(err)
		}
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
		b.Run(fmt.Sprintf("append/tenants=%d", n), func(b *testing.B) {
			for b.Loop() {
				w.mu.Lock()
				w.entered = map[string]uint64{} // every tenant changed
				w.mu.Unlock()
				if _, err := w.appendRoot(ctx, sizes, tenants); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/entry")
		})
		b.Run(fmt.Sprintf("prove/tenants=%d", n), func(b *testing.B) {
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
		db.Close()
	}
}
