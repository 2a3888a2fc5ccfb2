package ledger

import (
	"runtime"
	"sync"
)

// minChunk is the fewest items Spread hands one goroutine: below it, the
// cost of a goroutine and its wake-up is a fair share of the work (the
// pipeline's per-event work is 10–20 µs), so a small batch, and every
// single-event append, runs in the caller's goroutine as before.
const minChunk = 16

// Spread runs work over [0, n) in contiguous chunks, in order, one per
// core (GOMAXPROCS) at most, and returns when all are done. Each chunk's
// work stops at its first error and returns it; Spread returns the error
// of the first chunk (in index order) that failed, which is the error of
// the lowest index that failed: a refusal names the same item whatever the
// number of cores. work must write only what its chunk owns.
//
// The pipeline spreads the per-event work of a batch (validation,
// redaction, sealing, canonical encoding, leaf hashing) with it; what
// depends on the order of a batch (seqs, recorded_at, the tree) stays in
// one goroutine.
func Spread(n int, work func(lo, hi int) error) error {
	chunks := min(runtime.GOMAXPROCS(0), n/minChunk)
	if chunks <= 1 {
		return work(0, n)
	}
	errs := make([]error, chunks)
	var wg sync.WaitGroup
	for c := 1; c < chunks; c++ {
		wg.Go(func() { errs[c] = work(c*n/chunks, (c+1)*n/chunks) })
	}
	errs[0] = work(0, n/chunks) // the caller's goroutine takes the first
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
