package memory

import (
	"context"
	"slices"

	"github.com/trailaudit/trail"
)

var _ trail.CursorStore = (*Store)(nil)

type cursorKey struct{ name, tenant string }

// Cursor returns name's position in tenant's log.
func (s *Store) Cursor(ctx context.Context, name, tenant string) (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.cursors[cursorKey{name, tenant}], nil
}

// SetCursor moves name's position in tenant's log forward.
func (s *Store) SetCursor(ctx context.Context, name, tenant string, seq uint64) error {
	if err := trail.CheckCursorName(name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := cursorKey{name, tenant}
	if at := s.cursors[k]; seq < at {
		return trail.CursorBehind(name, tenant, at, seq)
	}
	if s.cursors == nil {
		s.cursors = map[cursorKey]uint64{}
	}
	s.cursors[k] = seq
	return nil
}

var _ trail.TenantLister = (*Store)(nil)

// Tenants returns every tenant with at least one event, in byte order.
func (s *Store) Tenants(ctx context.Context) ([]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []string{}
	for name, tl := range s.tenants {
		if len(tl.events) > 0 {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out, nil
}
