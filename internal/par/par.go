// Package par runs the per-item work of a batch on every core, keeping
// what an error names the same as in one loop. Its users: the append
// pipeline (internal/ledger), sealing (erasure) and the HTTP batch parser.
package par

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// minChunk is the fewest items Spread hands one goroutine at a time: below
// it, the cost of a goroutine and its wake-up is a fair share of the work
// (the pipeline's per-event work is 10–20 µs), so a small batch, and every
// single-event append, runs in the caller's goroutine as before.
const minChunk = 16

// Spread runs work over [0, n) in contiguous chunks of at least minChunk
// items, on up to one goroutine per core (GOMAXPROCS), the caller's
// included, and returns when all are done. The goroutines take the chunks
// in turn, so a goroutine the machine does not schedule delays nothing but
// a chunk it took: the caller's goroutine does the rest. Each chunk's work
// stops at its first error and returns it; Spread returns the error of the
// first chunk (in index order) that failed, which is the error of the
// lowest index that failed: a refusal names the same item whatever the
// number of cores. work must write only what its chunk owns.
//
// The pipeline spreads the per-event work of a batch (validation,
// redaction, sealing, canonical encoding, leaf hashing) with it; what
// depends on the order of a batch (seqs, recorded_at, the tree) stays in
// one goroutine there.
func Spread(n int, work func(lo, hi int) error) error {
	procs := min(runtime.GOMAXPROCS(0), n/minChunk)
	if procs <= 1 {
		return work(0, n)
	}
	// Four chunks per goroutine: small enough that one not scheduled holds
	// back little, large enough that taking one costs nothing.
	chunks := min(4*procs, n/minChunk)
	errs := make([]error, chunks)
	var next atomic.Int64
	take := func() {
		for c := int(next.Add(1) - 1); c < chunks; c = int(next.Add(1) - 1) {
			errs[c] = work(c*n/chunks, (c+1)*n/chunks)
		}
	}
	var wg sync.WaitGroup
	for range procs - 1 {
		wg.Go(take)
	}
	take()
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
