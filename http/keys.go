package http

import (
	"net/http"

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
	body, err := s.readJSON(w, r)
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
	if err := s.audit(r, k, keyCreated(nk)); err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, createdKey{Key: text, Record: nk})
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
	if err := s.audit(r, k, keyRevoked(rk)); err != nil {
		return err
	}
	if err := s.endKeySessions(r, k, rk); err != nil { // its UI sessions (session.go)
		return err
	}
	return writeJSON(w, http.StatusOK, rk)
}
