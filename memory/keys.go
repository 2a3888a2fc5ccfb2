package memory

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/trailaudit/trail"
)

var (
	_ trail.KeyStore    = (*Store)(nil)
	_ trail.ActionStore = (*Store)(nil)
)

// keyring is the store's API keys and saved custom actions, guarded by
// Store.mu. Both are append-only: a key only ever gains its RevokedAt.
type keyring struct {
	keys        []*trail.APIKey // in creation order
	keyByID     map[string]*trail.APIKey
	actions     []savedAction      // in the order saved
	actionNames map[[2]string]bool // tenant, name
}

// CreateKey stores k, or returns ECONFLICT when its ID is taken.
func (s *Store) CreateKey(ctx context.Context, k *trail.APIKey) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := trail.CheckAPIKey(k); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return trail.Errorf(trail.EINTERNAL, "store is closed")
	}
	if s.kr.keyByID == nil {
		s.kr.keyByID = map[string]*trail.APIKey{}
	}
	if _, ok := s.kr.keyByID[k.ID]; ok {
		return trail.Errorf(trail.ECONFLICT, "an API key with this id exists")
	}
	c := cloneKey(k)
	c.CreatedAt = c.CreatedAt.UTC()
	if !c.RevokedAt.IsZero() {
		c.RevokedAt = c.RevokedAt.UTC()
	}
	s.kr.keys = append(s.kr.keys, c)
	s.kr.keyByID[c.ID] = c
	return nil
}

// Key returns the key with id, or ENOTFOUND.
func (s *Store) Key(ctx context.Context, id string) (*trail.APIKey, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if k, ok := s.kr.keyByID[id]; ok {
		return cloneKey(k), nil
	}
	return nil, trail.Errorf(trail.ENOTFOUND, "no API key %q", id)
}

// Keys returns tenant's keys (every tenant's for ""), revoked ones
// included, in creation order.
func (s *Store) Keys(ctx context.Context, tenant string) ([]*trail.APIKey, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []*trail.APIKey{}
	for _, k := range s.kr.keys {
		if tenant == "" || k.Tenant == tenant {
			out = append(out, cloneKey(k))
		}
	}
	return out, nil
}

// RevokeKey sets the key's RevokedAt to at, unless it is revoked already
// (the first time stays), or returns ENOTFOUND.
func (s *Store) RevokeKey(ctx context.Context, id string, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if at.IsZero() {
		return trail.Invalid("bad revocation", trail.FieldError{Path: "revoked_at", Message: "required"})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return trail.Errorf(trail.EINTERNAL, "store is closed")
	}
	k, ok := s.kr.keyByID[id]
	if !ok {
		return trail.Errorf(trail.ENOTFOUND, "no API key %q", id)
	}
	if k.RevokedAt.IsZero() {
		// Keys handed out are clones, so changing the stored one in place
		// races with no reader.
		k.RevokedAt = at.UTC()
	}
	return nil
}

// SaveAction keeps tenant's custom action, or returns ECONFLICT when the
// tenant saved one of that name already.
func (s *Store) SaveAction(ctx context.Context, tenant string, a *trail.Action) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := trail.CheckSavedAction(tenant, a); err != nil {
		return err
	}
	def, err := json.Marshal(a)
	if err != nil {
		return trail.Errorf(trail.EINVALID, "action cannot be encoded: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return trail.Errorf(trail.EINTERNAL, "store is closed")
	}
	if s.kr.actionNames == nil {
		s.kr.actionNames = map[[2]string]bool{}
	}
	if s.kr.actionNames[[2]string{tenant, a.Name}] {
		return trail.Errorf(trail.ECONFLICT, "action %s is saved already", a.Name)
	}
	s.kr.actionNames[[2]string{tenant, a.Name}] = true
	s.kr.actions = append(s.kr.actions, savedAction{tenant: tenant, def: def})
	return nil
}

// SavedActions returns every tenant's saved custom actions in the order
// they were saved. Each is decoded afresh, as the durable stores do, so a
// caller may change what it gets.
func (s *Store) SavedActions(ctx context.Context) ([]trail.SavedAction, error) {
	s.mu.RLock()
	saved := s.kr.actions // append-only: the elements never change
	s.mu.RUnlock()
	out := make([]trail.SavedAction, len(saved))
	for i, sa := range saved {
		out[i] = trail.SavedAction{Tenant: sa.tenant, Action: new(trail.Action)}
		if err := json.Unmarshal(sa.def, out[i].Action); err != nil {
			return nil, trail.Errorf(trail.EINTERNAL, "saved action does not decode: %v", err)
		}
	}
	return out, nil
}

// savedAction is a tenant's saved definition (JSON).
type savedAction struct {
	tenant string
	def    []byte
}

func cloneKey(k *trail.APIKey) *trail.APIKey {
	c := *k
	c.Scopes = slices.Clone(k.Scopes)
	c.Hash = slices.Clone(k.Hash)
	return &c
}
