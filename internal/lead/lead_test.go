package lead

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trailaudit/trail"
)

// fakeElector hands out the leases sent on grant, one per Acquire.
type fakeElector struct{ grant chan *fakeLease }

func (e *fakeElector) Acquire(ctx context.Context) (trail.Lease, error) {
	select {
	case l := <-e.grant:
		return l, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// fakeLease is lost when the test says (lose) and counts its releases.
type fakeLease struct {
	sig      *Signal
	released atomic.Int32
}

func (l *fakeLease) Lost() <-chan struct{} { return l.sig.Lost() }
func (l *fakeLease) Release(context.Context) error {
	l.released.Add(1)
	l.sig.Lose()
	return nil
}

func wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
	}
}

// TestRun: the work runs while a lease is held, stops when it is lost
// (the lease released, the status back to following), starts again on the
// next lease, and stops for good when Run's context ends.
func TestRun(t *testing.T) {
	e := &fakeElector{grant: make(chan *fakeLease)}
	var st Status
	var running, starts atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, e, slog.New(slog.DiscardHandler), &st, func(ctx context.Context) {
			starts.Add(1)
			running.Add(1)
			<-ctx.Done()
			running.Add(-1)
		})
	}()
	if st.Leading() {
		t.Fatal("leading before any lease")
	}
	first := &fakeLease{sig: NewSignal()}
	e.grant <- first
	wait(t, "the work starts on the first lease", func() bool { return running.Load() == 1 && st.Leading() })
	first.sig.Lose()
	wait(t, "the work stops on the loss", func() bool { return running.Load() == 0 && !st.Leading() && first.released.Load() == 1 })
	second := &fakeLease{sig: NewSignal()}
	e.grant <- second
	wait(t, "the work starts again on regain", func() bool { return running.Load() == 1 && starts.Load() == 2 && st.Leading() })
	cancel()
	<-done
	if running.Load() != 0 || st.Leading() || second.released.Load() != 1 {
		t.Errorf("after Run's context ended: %d running, leading %v, released %d times; want 0, false, 1",
			running.Load(), st.Leading(), second.released.Load())
	}
}

// TestPoll: Poll tries again after a failed or refused try, and stops
// when its context ends.
func TestPoll(t *testing.T) {
	var tries atomic.Int32
	want := &fakeLease{sig: NewSignal()}
	got, err := Poll(context.Background(), time.Millisecond, nil, func(context.Context) (trail.Lease, error) {
		switch tries.Add(1) {
		case 1:
			return nil, context.DeadlineExceeded // the store did not answer
		case 2:
			return nil, nil // another leads
		}
		return want, nil
	})
	if err != nil || got != want || tries.Load() != 3 {
		t.Errorf("Poll = %v, %v after %d tries; want the lease after 3", got, err, tries.Load())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if l, err := Poll(ctx, time.Millisecond, nil, func(context.Context) (trail.Lease, error) { return nil, nil }); l != nil || err == nil {
		t.Errorf("Poll with nobody granting = %v, %v; want its context's error", l, err)
	}
}
