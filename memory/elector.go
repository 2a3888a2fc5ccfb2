package memory

import (
	"context"
	"sync"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/lead"
)

var _ trail.Elector = (*Elector)(nil)

// Elector is the memory store's trail.Elector. A memory store lives in one
// process, so that process always leads once it asks; the electors of one
// Store still take turns (a token the Store keeps), so that code run twice
// in a test over one store sees what two processes would. A Lease is lost
// only by its Release.
type Elector struct{ s *Store }

// Elector returns an elector of the singleton work over s.
func (s *Store) Elector() *Elector { return &Elector{s: s} }

// Acquire takes the store's token, waiting while another elector holds it.
func (e *Elector) Acquire(ctx context.Context) (trail.Lease, error) {
	select {
	case e.s.leader <- struct{}{}:
		return &lease{s: e.s, sig: lead.NewSignal()}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type lease struct {
	s    *Store
	sig  *lead.Signal
	once sync.Once
}

func (l *lease) Lost() <-chan struct{} { return l.sig.Lost() }

func (l *lease) Release(context.Context) error {
	l.once.Do(func() {
		l.sig.Lose()
		<-l.s.leader
	})
	return nil
}
