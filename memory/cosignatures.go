package memory

import (
	"context"
	"slices"
	"strings"

	"github.com/trailaudit/trail"
)

var _ trail.CosignatureStore = (*Store)(nil)

type cosigKey struct {
	tenant  string
	size    uint64
	witness string
}

// AddCosignature keeps c; one already kept for its tenant, size and
// witness stays as it is.
func (s *Store) AddCosignature(ctx context.Context, c *trail.Cosignature) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := trail.CheckCosignature(c); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return trail.Errorf(trail.EINTERNAL, "store is closed")
	}
	k := cosigKey{c.Tenant, c.Size, c.Witness}
	if _, ok := s.cosigs[k]; ok {
		return nil
	}
	if s.cosigs == nil {
		s.cosigs = map[cosigKey]*trail.Cosignature{}
	}
	cp := *c
	cp.Time = cp.Time.UTC()
	cp.Checkpoint = slices.Clone(cp.Checkpoint)
	s.cosigs[k] = &cp
	return nil
}

// Cosignatures returns those kept of tenant's checkpoint of size, by
// witness.
func (s *Store) Cosignatures(ctx context.Context, tenant string, size uint64) ([]*trail.Cosignature, error) {
	return s.cosignatures(func(c *trail.Cosignature) bool { return c.Tenant == tenant && c.Size == size }), nil
}

// LatestCosignatures returns, per witness, the one kept of tenant's
// largest size, by witness.
func (s *Store) LatestCosignatures(ctx context.Context, tenant string) ([]*trail.Cosignature, error) {
	s.mu.RLock()
	top := map[string]uint64{}
	for k := range s.cosigs {
		if k.tenant == tenant && k.size > top[k.witness] {
			top[k.witness] = k.size
		}
	}
	s.mu.RUnlock()
	return s.cosignatures(func(c *trail.Cosignature) bool { return c.Tenant == tenant && c.Size == top[c.Witness] }), nil
}

// cosignatures returns copies of the cosignatures keep selects, by witness.
func (s *Store) cosignatures(keep func(*trail.Cosignature) bool) []*trail.Cosignature {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*trail.Cosignature
	for _, c := range s.cosigs {
		if keep(c) {
			cp := *c
			cp.Checkpoint = slices.Clone(c.Checkpoint)
			out = append(out, &cp)
		}
	}
	slices.SortFunc(out, func(a, b *trail.Cosignature) int { return strings.Compare(a.Witness, b.Witness) })
	return out
}

// LogSizes returns the size of every tenant's log that holds an event.
func (s *Store) LogSizes(ctx context.Context) (map[string]uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := map[string]uint64{}
	for name, t := range s.tenants {
		if n := uint64(len(t.events)); n > 0 {
			out[name] = n
		}
	}
	return out, nil
}

// LatestCheckpoints returns the latest checkpoint of each of tenants that
// has one.
func (s *Store) LatestCheckpoints(ctx context.Context, tenants []string) (map[string][]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := map[string][]byte{}
	for _, name := range tenants {
		if tl := s.tenants[name]; tl != nil && len(tl.notes) > 0 {
			out[name] = slices.Clone(tl.notes[len(tl.notes)-1])
		}
	}
	return out, nil
}
