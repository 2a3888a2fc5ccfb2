package sqlite_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/sample"
	"github.com/trailaudit/trail/internal/testenv"
	"github.com/trailaudit/trail/sqlite"
	"github.com/trailaudit/trail/storetest"
	"github.com/trailaudit/trail/tlog"
)

// BenchmarkTreeOverhead appends batches of 1000 to two stores in turn, one
// keeping the Merkle tree and signing a checkpoint per commit and one
// without (sqlite.WithoutTree), so that both see the same moment of a noisy
// machine; it reports each one's rate and the tree's cost in percent.
func BenchmarkTreeOverhead(b *testing.B) {
	var o sqlite.Options
	sqlite.WithoutTree(&o)
	dbs := [2]*sqlite.DB{benchDB(b, sqlite.Options{}), benchDB(b, o)}
	batches := sampleBatches(16, 1000)
	var took [2]time.Duration // with the tree, without
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		for j := range 2 {
			k := (i + j) % 2 // which goes first alternates too
			t0 := time.Now()
			if _, err := dbs[k].Append(ctx, "acme", batches[i%len(batches)], trail.AppendOptions{}); err != nil {
				b.Fatal(err)
			}
			took[k] += time.Since(t0)
		}
	}
	n := float64(b.N * 1000)
	b.ReportMetric(n/took[0].Seconds(), "events/s-tree")
	b.ReportMetric(n/took[1].Seconds(), "events/s-notree")
	b.ReportMetric(100*(took[0].Seconds()/took[1].Seconds()-1), "%overhead")
}

var verifyEvents = flag.Int("trail.verify.events", 200_000, "events in the log BenchmarkVerify checks")

// BenchmarkVerify runs tlog.Verify over a whole log (generated first, in
// batches of 1000, so one checkpoint per 1000 events) and reports events/s.
// With -trail.bigdb it verifies the large database instead. It reports the
// CPU time of the process per event too (internal/testenv.CPUTime).
func BenchmarkVerify(b *testing.B) {
	ctx := context.Background()
	db := benchLog(b)
	v := storetest.Signer().Verifier()
	var leaves uint64
	cpu0 := testenv.CPUTime()
	for b.Loop() {
		rep, err := tlog.Verify(ctx, db, "acme", v, tlog.VerifyOptions{})
		if err != nil || !rep.OK() {
			b.Fatalf("verify: %v %+v", err, rep)
		}
		leaves += rep.Leaves
	}
	b.ReportMetric(float64(leaves)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64((testenv.CPUTime()-cpu0).Microseconds())/float64(leaves), "cpu-µs/event")
}

// BenchmarkInclusionProof proves random leaves against the latest
// checkpoint of the large database (-trail.bigdb; 10M events by default), or
// of a generated log of -trail.verify.events, and reports p50 and p99
// latency: reading the proof's nodes, and checking the proof.
func BenchmarkInclusionProof(b *testing.B) {
	ctx := context.Background()
	db := benchLog(b)
	note, err := db.Checkpoint(ctx, "acme")
	if err != nil {
		b.Fatal(err)
	}
	cp, err := storetest.Signer().Verifier().Open("acme", note)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("proving leaves of a tree of size %d", cp.Size)
	r := rand.New(rand.NewPCG(1, 2))
	var lat []time.Duration
	for b.Loop() {
		i := r.Uint64N(cp.Size)
		t0 := time.Now()
		p, err := tlog.InclusionProof(ctx, db, "acme", i, cp.Size)
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
		leaf, err := db.TreeHashes(ctx, "acme", []trail.TreeNode{{Level: 0, Index: i}})
		if err != nil {
			b.Fatal(err)
		}
		if err := tlog.VerifyInclusion(leaf[0], i, cp.Size, p, cp.Root); err != nil {
			b.Fatal(err)
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkScanLeaves reads a whole log with ScanLeaves and does nothing
// else: the ceiling of what Verify can reach on SQLite.
func BenchmarkScanLeaves(b *testing.B) {
	if *bigDB == "" {
		b.Skip("set -trail.bigdb=PATH")
	}
	db := openBig(b, *bigDB, *bigEvents)
	for _, ahead := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("ahead=%d", ahead), func(b *testing.B) {
			sqlite.SetScanAhead(db, ahead)
			var n int
			for b.Loop() {
				err := db.ScanLeaves(context.Background(), "acme", 1, 0, func(l trail.Leaf) error {
					n++
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// benchLog is the log the verification benchmarks read: the large database
// with -trail.bigdb, else -trail.verify.events sample events appended in
// batches of 1000 (one checkpoint per batch).
func benchLog(b *testing.B) *sqlite.DB {
	if *bigDB != "" {
		return openBig(b, *bigDB, *bigEvents)
	}
	db := benchDB(b, sqlite.Options{})
	s := sample.New(5)
	for i := 0; i < *verifyEvents; i += 1000 {
		if _, err := db.Append(context.Background(), "acme", s.Batch(1000, time.Now()), trail.AppendOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	return db
}
