// Package sample makes the sample events of Trail's benchmarks importable
// from outside the main module: the benchmark modules of their own (such as
// bench/peers, which measures Trail beside other logs without giving the
// main module their dependencies) cannot import internal/sample, so this
// package re-exports its generator. There is one generator; this is its
// public name.
package sample

import "github.com/trailaudit/trail/internal/sample"

// Sample makes realistic audit events; see New.
type Sample = sample.Sample

// New returns a Sample seeded with seed, so runs are repeatable: the same
// seed yields the same events as internal/sample.New, which Trail's own
// benchmarks use.
func New(seed uint64) *Sample { return sample.New(seed) }
