package tlog

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func BenchmarkLeafHash(b *testing.B) {
	body := event(1, 1024)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		LeafHash(body)
	}
}

func BenchmarkTreeAppend(b *testing.B) {
	body := event(1, 1024)
	b.SetBytes(int64(len(body)))
	tree, err := NewTree(0, nil)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		tree.Append(body)
	}
}

// BenchmarkVerify verifies a log of 200,000 events of about 1 KB committed
// in groups of 1000, and reports the rows verified per second.
func BenchmarkVerify(b *testing.B) {
	const n = 200_000
	s := signer(b, testKey)
	l := buildLog(b, s, events(n, 1024), 1000).keepIndex(b)
	v := s.Verifier()
	ctx := context.Background()
	b.SetBytes(int64(n * len(l.rows[0].Body)))
	for b.Loop() {
		rep, err := Verify(ctx, l, testTenant, v, VerifyOptions{})
		if err != nil || !rep.OK() || rep.Leaves != n {
			b.Fatalf("Verify = %+v, %v", rep, err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "leaves/s")
}

// BenchmarkInclusionProof proves random leaves of a log of 1,000,000 small
// events, and reports the 99th percentile of a proof's time.
func BenchmarkInclusionProof(b *testing.B) {
	const n = 1_000_000
	l := buildLog(b, signer(b, testKey), events(n, 100), 10_000)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(1, 2))
	var took []time.Duration
	for b.Loop() {
		start := time.Now()
		if _, err := InclusionProof(ctx, l, testTenant, r.Uint64N(n), n); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)*99/100].Nanoseconds())/1e3, "p99-µs")
}
