package memory

import (
	"cmp"
	"context"
	"slices"
	"strings"

	"github.com/trailaudit/trail"
)

var _ trail.RuleStore = (*Store)(nil)

// ruleKey names a tenant's rule file.
type ruleKey struct{ tenant, name string }

// PutRule stores f, replacing the tenant's file of that name. A zero
// CreatedAt is the store's clock.
func (s *Store) PutRule(ctx context.Context, f *trail.RuleFile) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := trail.PrepareRule(f, s.now())
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return trail.Errorf(trail.EINTERNAL, "store is closed")
	}
	if s.rules == nil {
		s.rules = map[ruleKey]*trail.RuleFile{}
	}
	s.rules[ruleKey{p.Tenant, p.Name}] = p
	return nil
}

// GetRule returns the tenant's rule file name, or ENOTFOUND.
func (s *Store) GetRule(ctx context.Context, tenant, name string) (*trail.RuleFile, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	f, ok := s.rules[ruleKey{tenant, name}]
	if !ok {
		return nil, trail.Errorf(trail.ENOTFOUND, "tenant %s has no rule file %q", tenant, name)
	}
	c := *f
	return &c, nil
}

// Rules returns the tenant's rule files (every tenant's for "") by tenant
// and name.
func (s *Store) Rules(ctx context.Context, tenant string) ([]*trail.RuleFile, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []*trail.RuleFile{}
	for k, f := range s.rules {
		if tenant == "" || k.tenant == tenant {
			c := *f
			out = append(out, &c)
		}
	}
	slices.SortFunc(out, func(a, b *trail.RuleFile) int {
		return cmp.Or(strings.Compare(a.Tenant, b.Tenant), strings.Compare(a.Name, b.Name))
	})
	return out, nil
}

// DeleteRule removes the tenant's rule file name, or returns ENOTFOUND.
func (s *Store) DeleteRule(ctx context.Context, tenant, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := ruleKey{tenant, name}
	if _, ok := s.rules[k]; !ok {
		return trail.Errorf(trail.ENOTFOUND, "tenant %s has no rule file %q", tenant, name)
	}
	delete(s.rules, k)
	return nil
}
