// Package lead holds what the stores' electors (trail.Elector) share: a
// follower's retry loop (Poll), the lease's lost signal (Signal), and the
// loop that runs the singleton work only while this process leads (Run).
package lead

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/trailaudit/trail"
)

// DefaultRetry is how often a follower tries again to take leadership.
const DefaultRetry = 5 * time.Second

// Poll calls try until it returns a lease, every retry, or until ctx ends
// (then ctx's error). An error of try (the store is down) is logged and
// tried again: a follower keeps following, never gives up.
func Poll(ctx context.Context, retry time.Duration, log *slog.Logger, try func(context.Context) (trail.Lease, error)) (trail.Lease, error) {
	if retry <= 0 {
		retry = DefaultRetry
	}
	for {
		l, err := try(ctx)
		if l != nil {
			return l, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err != nil && log != nil {
			log.WarnContext(ctx, "leadership: could not ask for it; trying again", "in", retry, "err", err)
		}
		t := time.NewTimer(retry)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// Signal is a lease's lost signal: a channel closed once, by Lose.
type Signal struct {
	once sync.Once
	ch   chan struct{}
}

// NewSignal returns a signal not yet lost.
func NewSignal() *Signal { return &Signal{ch: make(chan struct{})} }

// Lost is closed once Lose is called.
func (s *Signal) Lost() <-chan struct{} { return s.ch }

// Lose closes Lost; calling it again does nothing.
func (s *Signal) Lose() { s.once.Do(func() { close(s.ch) }) }

// Status says whether this process leads: what serve's gauge and /readyz
// show. It is safe for concurrent use; the zero value does not lead.
type Status struct {
	mu      sync.Mutex
	leading bool
}

// Leading reports whether this process runs the singleton work now.
func (s *Status) Leading() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leading
}

func (s *Status) set(v bool) {
	s.mu.Lock()
	s.leading = v
	s.mu.Unlock()
}

// Run runs work while this process leads, until ctx ends: it acquires a
// lease, runs work with a context cancelled when the lease is lost (or ctx
// ends), waits for work to return, releases the lease and, unless ctx has
// ended, asks for leadership again. work MUST return once its context is
// cancelled. Gain and loss are logged and kept in st (which may be nil).
// Run returns when ctx ends and work has stopped, with nil; its only error
// is one of Release, which is logged, not returned: the lease is given up
// by the session's end anyway.
func Run(ctx context.Context, e trail.Elector, log *slog.Logger, st *Status, work func(context.Context)) {
	if st == nil {
		st = &Status{}
	}
	for {
		l, err := e.Acquire(ctx)
		if err != nil {
			return // ctx ended
		}
		log.InfoContext(ctx, "leadership gained: this process runs the background work (root log and witnessing, detections, sinks)")
		st.set(true)
		wctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); work(wctx) }()
		lost := false
		select {
		case <-l.Lost():
			lost = true
			log.WarnContext(ctx, "leadership lost: the background work stops here; another process may take it")
		case <-ctx.Done():
		}
		cancel()
		<-done
		st.set(false)
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if err := l.Release(rctx); err != nil {
			log.WarnContext(ctx, "leadership: releasing it failed (the server ends the session's lock)", "err", err)
		}
		rcancel()
		if !lost {
			log.InfoContext(ctx, "leadership released")
			return
		}
	}
}
