package erasure

import (
	"context"

	"github.com/trailaudit/trail"
)

// Store is a trail.Store whose reads return events with their personal
// data decrypted (or reading as Erased). Writes are sealed by the wrapped
// store's Validator.Sealer; the log side (checkpoints, leaves, proofs) is
// the wrapped store's, untouched: it sees only sealed bytes.
type Store struct {
	trail.Store
	s *Sealer
}

// Wrap returns store reading through s.
func Wrap(store trail.Store, s *Sealer) *Store { return &Store{Store: store, s: s} }

// Unwrap returns the wrapped store (for its other interfaces: keys,
// holds, pruning).
func (st *Store) Unwrap() trail.Store { return st.Store }

func (st *Store) open(ctx context.Context, tenant string, evs ...*trail.Event) error {
	for _, ev := range evs {
		if err := st.s.Open(ctx, tenant, ev); err != nil {
			return err
		}
	}
	return nil
}

// Append appends and returns the stored events decrypted.
func (st *Store) Append(ctx context.Context, tenant string, evs []*trail.Event, o trail.AppendOptions) (*trail.AppendResult, error) {
	res, err := st.Store.Append(ctx, tenant, evs, o)
	if err != nil {
		return nil, err
	}
	return res, st.open(ctx, tenant, res.Events...)
}

// Get returns one event, decrypted.
func (st *Store) Get(ctx context.Context, tenant, id string) (*trail.Event, error) {
	ev, err := st.Store.Get(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	return ev, st.open(ctx, tenant, ev)
}

// GetSeq returns one event, decrypted.
func (st *Store) GetSeq(ctx context.Context, tenant string, seq uint64) (*trail.Event, error) {
	ev, err := st.Store.GetSeq(ctx, tenant, seq)
	if err != nil {
		return nil, err
	}
	return ev, st.open(ctx, tenant, ev)
}

// Query returns a page of events, decrypted.
func (st *Store) Query(ctx context.Context, q trail.Query) (*trail.Page, error) {
	p, err := st.Store.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	return p, st.open(ctx, q.Tenant, p.Events...)
}

// Scan calls fn with each event decrypted.
func (st *Store) Scan(ctx context.Context, tenant string, from, to uint64, fn func(*trail.Event) error) error {
	return st.Store.Scan(ctx, tenant, from, to, func(ev *trail.Event) error {
		if err := st.s.Open(ctx, tenant, ev); err != nil {
			return err
		}
		return fn(ev)
	})
}
