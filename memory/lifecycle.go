package memory

import (
	"context"
	"slices"
	"time"

	"github.com/trailaudit/trail"
)

var _ trail.HoldStore = (*Store)(nil)

// prune removes the events at seqs from every read, and their bodies from
// the leaves. Readers that took the slices before keep them unchanged:
// both are copied first.
func (tl *tenantLog) prune(seqs []uint64) {
	if len(seqs) == 0 {
		return
	}
	tl.events, tl.leaves = slices.Clone(tl.events), slices.Clone(tl.leaves)
	for _, seq := range seqs {
		delete(tl.byID, tl.events[seq-1].ID)
		tl.events[seq-1] = nil
		tl.leaves[seq-1].Body = nil
	}
}

// holds is the store's legal holds, guarded by Store.mu.
type holds struct {
	list []*trail.Hold // in the order placed
}

// PlaceHold stores h, or returns ECONFLICT when its tenant has a hold of
// its ID. A zero CreatedAt is the store's clock.
func (s *Store) PlaceHold(ctx context.Context, h *trail.Hold) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c, err := trail.PrepareHold(h, s.now())
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return trail.Errorf(trail.EINTERNAL, "store is closed")
	}
	if slices.ContainsFunc(s.holds.list, func(x *trail.Hold) bool { return x.Tenant == c.Tenant && x.ID == c.ID }) {
		return trail.Errorf(trail.ECONFLICT, "tenant %s has a legal hold %q already", c.Tenant, c.ID)
	}
	s.holds.list = append(s.holds.list, c)
	h.CreatedAt = c.CreatedAt
	return nil
}

// ReleaseHold sets the hold's ReleasedAt to at, once: releasing it again
// is ECONFLICT, an unknown hold ENOTFOUND.
func (s *Store) ReleaseHold(ctx context.Context, tenant, id string, at time.Time) error {
	if at.IsZero() {
		return trail.Invalid("bad release", trail.FieldError{Path: "released_at", Message: "required"})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return trail.Errorf(trail.EINTERNAL, "store is closed")
	}
	for i, h := range s.holds.list {
		if h.Tenant != tenant || h.ID != id {
			continue
		}
		if !h.Active() {
			return trail.Errorf(trail.ECONFLICT, "legal hold %q is released already", id)
		}
		c := *h // readers hold the old one
		c.ReleasedAt = at.UTC()
		s.holds.list[i] = &c
		return nil
	}
	return trail.Errorf(trail.ENOTFOUND, "tenant %s has no legal hold %q", tenant, id)
}

// Holds returns tenant's holds in the order they were placed.
func (s *Store) Holds(ctx context.Context, tenant string) ([]*trail.Hold, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []*trail.Hold{}
	for _, h := range s.holds.list {
		if h.Tenant == tenant {
			c := *h
			out = append(out, &c)
		}
	}
	return out, nil
}
