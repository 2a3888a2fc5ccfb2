package storetest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trailaudit/trail"
)

// RunElector is the conformance suite of a trail.Elector. open returns two
// electors on one fresh deployment, as two processes sharing it would
// have; takeover bounds how long a follower takes to lead once the leader
// released (its retry interval and any grace it waits).
func RunElector(t *testing.T, open func(t *testing.T) (a, b trail.Elector), takeover time.Duration) {
	t.Run("one leads", func(t *testing.T) {
		a, b := open(t)
		ctx := context.Background()
		la, err := a.Acquire(ctx)
		if err != nil {
			t.Fatalf("Acquire with nobody leading: %v", err)
		}
		wctx, cancel := context.WithTimeout(ctx, takeover)
		defer cancel()
		if lb, err := b.Acquire(wctx); !errors.Is(err, context.DeadlineExceeded) {
			if lb != nil {
				lb.Release(ctx)
			}
			t.Fatalf("a second Acquire while the first leads = %v, %v; want it to wait until its context ends", lb, err)
		}
		select {
		case <-la.Lost():
			t.Fatal("the leader's lease is lost, with nothing gone wrong")
		default:
		}
		// The follower takes over once the leader releases.
		got := make(chan trail.Lease, 1)
		go func() {
			lb, err := b.Acquire(ctx)
			if err != nil {
				t.Errorf("Acquire: %v", err)
			}
			got <- lb
		}()
		time.Sleep(takeover / 4)
		if err := la.Release(ctx); err != nil {
			t.Fatalf("Release: %v", err)
		}
		select {
		case <-la.Lost():
		default:
			t.Error("a released lease's Lost is not closed")
		}
		if err := la.Release(ctx); err != nil {
			t.Errorf("a second Release: %v", err)
		}
		select {
		case lb := <-got:
			if lb != nil {
				lb.Release(ctx)
			}
		case <-time.After(2 * takeover):
			t.Fatalf("the follower did not lead within %v of the leader's release", 2*takeover)
		}
	})
	t.Run("never two at once", func(t *testing.T) {
		a, b := open(t)
		testNoOverlap(t, []trail.Elector{a, b}, 3)
	})
}

// testNoOverlap has each elector lead rounds times, holding the lease
// briefly, with a counter of the leaders that detects two at once.
func testNoOverlap(t *testing.T, es []trail.Elector, rounds int) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var leaders, most atomic.Int32
	var wg sync.WaitGroup
	for _, e := range es {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				l, err := e.Acquire(ctx)
				if err != nil {
					t.Errorf("Acquire: %v", err)
					return
				}
				n := leaders.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				time.Sleep(20 * time.Millisecond)
				leaders.Add(-1)
				if err := l.Release(ctx); err != nil {
					t.Errorf("Release: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	if m := most.Load(); m != 1 {
		t.Errorf("%d processes led at once; want 1", m)
	}
}
