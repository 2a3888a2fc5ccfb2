package http

import (
	"net/http"
	"strings"

	"github.com/trailaudit/trail"
)

// keyRequest is the body of POST /v1/keys.
type keyRequest struct {
	Tenant string           `json:"tenant"`
	Name   string           `json:"name"`
	Scopes []trail.KeyScope `json:"scopes"`
}

// createdKey is the answer to POST /v1/keys: the key's text, shown this
// once, and its record.
type createdKey struct {
	Key    string        `json:"key"`
	Record *trail.APIKey `json:"record"`
}

// postKey creates a key for any tenant (admin keys manage tenants), and
// records the grant in that tenant's log.
func (s *Server) postKey(w http.ResponseWriter, r *http.Request, k *trail.APIKey) error {
	if err := onlyParams(r.URL.Query()); err != nil {
		return err
	}
	body, err := readBody(w, r, s.c.Limits.MaxBody)
	if err != nil {
		return err
	}
	var req keyRequest
	if err := decodeStrict(body, &req); err != nil {
		return err
	}
	text, nk, err := trail.NewAPIKey(req.Tenant, req.Name, req.Scopes, s.c.Now())
	if err != nil {
		return err
	}
	if err := s.c.Keys.CreateKey(r.Context(), nk); err != nil {
		return err
	}
	if err := s.recordKeyChange(r, k, nk, "permission_granted"); err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, createdKey{Key: text, Record: nk})
}

// recordKeyChange records a key's creation or revocation in the log of the
// tenant it acts for, with the admin key as actor.
func (s *Server) recordKeyChange(r *http.Request, admin, changed *trail.APIKey, action string) error {
	scopes := make([]string, len(changed.Scopes))
	for i, sc := range changed.Scopes {
		scopes[i] = string(sc)
	}
	as := *admin
	as.Tenant = changed.Tenant
	return s.recordRead(r, &as, action, map[string]any{
		"permission": "api_key:" + strings.Join(scopes, ","), "target_user_id": changed.ID, "reason": changed.Name,
	}, "")
}

// listKeys lists keys: of ?tenant=, or of all tenants.
func (s *Server) listKeys(w http.ResponseWriter, r *http.Request, k *trail.APIKey) error {
	q := r.URL.Query()
	if err := onlyParams(q, "tenant"); err != nil {
		return err
	}
	keys, err := s.c.Keys.Keys(r.Context(), q.Get("tenant"))
	if err != nil {
		return err
	}
	if keys == nil {
		keys = []*trail.APIKey{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"keys": keys})
}

// revokeKey revokes a key at once (this server forgets it), and records it.
func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request, k *trail.APIKey) error {
	if err := onlyParams(r.URL.Query()); err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := s.c.Keys.RevokeKey(r.Context(), id, s.c.Now()); err != nil {
		return err
	}
	s.forgetKey(id)
	rk, err := s.c.Keys.Key(r.Context(), id)
	if err != nil {
		return err
	}
	if err := s.recordKeyChange(r, k, rk, "permission_revoked"); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rk)
}
