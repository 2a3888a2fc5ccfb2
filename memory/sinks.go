package memory

import (
	"context"
	"slices"

	"github.com/trailaudit/trail"
)

var _ trail.SinkStore = (*Store)(nil)

// PutSink stores c, or returns ECONFLICT when its tenant has a sink of
// that name. A zero CreatedAt is the store's clock.
func (s *Store) PutSink(ctx context.Context, c *trail.SinkConfig) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := trail.PrepareSink(c, s.now())
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return trail.Errorf(trail.EINTERNAL, "store is closed")
	}
	if s.sinkAt(p.Tenant, p.Name) >= 0 {
		return trail.Errorf(trail.ECONFLICT, "tenant %s has a sink %q already", p.Tenant, p.Name)
	}
	s.sinks = append(s.sinks, p)
	return nil
}

// sinkAt returns the index of the tenant's sink name in s.sinks, or -1.
// The caller holds s.mu.
func (s *Store) sinkAt(tenant, name string) int {
	return slices.IndexFunc(s.sinks, func(c *trail.SinkConfig) bool { return c.Tenant == tenant && c.Name == name })
}

// GetSink returns the tenant's sink name, or ENOTFOUND.
func (s *Store) GetSink(ctx context.Context, tenant, name string) (*trail.SinkConfig, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	i := s.sinkAt(tenant, name)
	if i < 0 {
		return nil, trail.Errorf(trail.ENOTFOUND, "tenant %s has no sink %q", tenant, name)
	}
	c := *s.sinks[i]
	return &c, nil
}

// Sinks returns the tenant's sinks (every tenant's for "") in the order
// they were put.
func (s *Store) Sinks(ctx context.Context, tenant string) ([]*trail.SinkConfig, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []*trail.SinkConfig{}
	for _, c := range s.sinks {
		if tenant == "" || c.Tenant == tenant {
			cp := *c
			out = append(out, &cp)
		}
	}
	return out, nil
}

// DeleteSink removes the tenant's sink name, or returns ENOTFOUND.
func (s *Store) DeleteSink(ctx context.Context, tenant, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.sinkAt(tenant, name)
	if i < 0 {
		return trail.Errorf(trail.ENOTFOUND, "tenant %s has no sink %q", tenant, name)
	}
	s.sinks = slices.Delete(s.sinks, i, i+1)
	return nil
}
