// Package memory is an in-memory trail.Store: everything the contract asks
// except durability. It backs tests, examples and tools such as
// `trail validate` that need a store for a moment and nothing on disk.
//
// Start with New.
package memory

import (
	"context"
	"sync"
	"time"

	"github.com/trailaudit/trail"
)

var _ trail.Store = (*Store)(nil)

// Store keeps every tenant's events in memory. It is safe for concurrent use.
type Store struct {
	v   *trail.Validator
	now func() time.Time

	mu      sync.RWMutex
	closed  bool
	tenants map[string]*tenantLog
}

type tenantLog struct {
	events []*trail.Event // events[i].Seq == i+1
	byID   map[string]*trail.Event
	idem   map[string]idemEntry
}

type idemEntry struct {
	fingerprint [32]byte
	first, n    int // the events the original append stored
}

// New returns an empty store that prepares events with v.
func New(v *trail.Validator) *Store {
	return &Store{v: v, now: time.Now, tenants: map[string]*tenantLog{}}
}

// SetClock replaces the store's clock, for tests that need fixed times.
func (s *Store) SetClock(now func() time.Time) { s.now = now }

// Append validates, redacts and stores events atomically.
func (s *Store) Append(ctx context.Context, tenant string, events []*trail.Event, opts trail.AppendOptions) (*trail.AppendResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var fp [32]byte
	if opts.IdempotencyKey != "" {
		var err error
		if fp, err = trail.BatchFingerprint(events); err != nil {
			return nil, trail.Errorf(trail.EINVALID, "batch cannot be fingerprinted: %v", err)
		}
	}
	prepared, err := s.v.PrepareBatch(tenant, events, opts.Policy, s.now())
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, trail.Errorf(trail.EINTERNAL, "store is closed")
	}
	tl := s.tenants[tenant]
	if tl == nil {
		tl = &tenantLog{byID: map[string]*trail.Event{}, idem: map[string]idemEntry{}}
		s.tenants[tenant] = tl
	}
	if opts.IdempotencyKey != "" {
		if e, ok := tl.idem[opts.IdempotencyKey]; ok {
			if e.fingerprint != fp {
				return nil, trail.Errorf(trail.ECONFLICT, "idempotency key was used before with a different batch")
			}
			return &trail.AppendResult{Events: cloneAll(tl.events[e.first : e.first+e.n]), Replay: true}, nil
		}
	}
	first := len(tl.events)
	for i, ev := range prepared {
		ev.Seq = uint64(first + i + 1)
		if first > 0 || i > 0 {
			ev.RecordedAt = trail.NotBefore(ev.RecordedAt, last(tl, prepared[:i]).RecordedAt)
		}
		tl.events = append(tl.events, ev)
		tl.byID[ev.ID] = ev
	}
	if opts.IdempotencyKey != "" {
		tl.idem[opts.IdempotencyKey] = idemEntry{fingerprint: fp, first: first, n: len(prepared)}
	}
	return &trail.AppendResult{Events: cloneAll(prepared)}, nil
}

// Get returns one event by id.
func (s *Store) Get(ctx context.Context, tenant, id string) (*trail.Event, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if tl := s.tenants[tenant]; tl != nil {
		if ev, ok := tl.byID[id]; ok {
			return ev.Clone(), nil
		}
	}
	return nil, trail.Errorf(trail.ENOTFOUND, "no event %q", id)
}

// last returns the event before the one being appended: the batch's previous
// event, or the log's last.
func last(tl *tenantLog, batch []*trail.Event) *trail.Event {
	if len(batch) > 0 {
		return batch[len(batch)-1]
	}
	return tl.events[len(tl.events)-1]
}

// GetSeq returns the event at seq.
func (s *Store) GetSeq(ctx context.Context, tenant string, seq uint64) (*trail.Event, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if tl := s.tenants[tenant]; tl != nil && seq >= 1 && seq <= uint64(len(tl.events)) {
		return tl.events[seq-1].Clone(), nil
	}
	return nil, trail.Errorf(trail.ENOTFOUND, "no event at seq %d", seq)
}

// Count returns how many events match q.
func (s *Store) Count(ctx context.Context, q trail.Query) (int64, error) {
	if err := q.Check(); err != nil {
		return 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var n int64
	if tl := s.tenants[q.Tenant]; tl != nil {
		for _, ev := range tl.events {
			if q.Matches(ev) {
				n++
			}
		}
	}
	return n, nil
}

// Scan calls fn for each event with from <= seq < to. The lock is not held
// while fn runs, so fn may append.
func (s *Store) Scan(ctx context.Context, tenant string, from, to uint64, fn func(*trail.Event) error) error {
	s.mu.RLock()
	var evs []*trail.Event
	if tl := s.tenants[tenant]; tl != nil {
		evs = tl.events // events are never changed once appended
	}
	s.mu.RUnlock()
	from = max(from, 1)
	if to == 0 || to > uint64(len(evs))+1 {
		to = uint64(len(evs)) + 1
	}
	for seq := from; seq < to; seq++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(evs[seq-1].Clone()); err != nil {
			return err
		}
	}
	return nil
}

// Query returns one page of events matching q, in seq order.
func (s *Store) Query(ctx context.Context, q trail.Query) (*trail.Page, error) {
	limit, after, err := q.Paging()
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	tl := s.tenants[q.Tenant]
	page := &trail.Page{}
	if tl == nil {
		return page, nil
	}
	n := uint64(len(tl.events))
	var seq, step uint64 = 1, 1
	if q.Descending {
		seq, step = n, ^uint64(0) // step -1
		if after != 0 && after-1 < seq {
			seq = after - 1
		}
	} else if after != 0 {
		seq = after + 1
	}
	for ; seq >= 1 && seq <= n; seq += step {
		ev := tl.events[seq-1]
		if !q.Matches(ev) {
			continue
		}
		if len(page.Events) == limit {
			page.Next = trail.EncodeCursor(page.Events[limit-1].Seq, q.Descending)
			break
		}
		page.Events = append(page.Events, ev.Clone())
	}
	return page, nil
}

// Close marks the store closed; later appends fail.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

func cloneAll(evs []*trail.Event) []*trail.Event {
	out := make([]*trail.Event, len(evs))
	for i, ev := range evs {
		out[i] = ev.Clone()
	}
	return out
}
