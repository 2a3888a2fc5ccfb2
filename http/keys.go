package http

import (
	"cmp"
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

// managedTenant returns the tenant a request of k about keys acts on, given
// the tenant it names ("" for none): a tenant's admin key acts on its own
// tenant alone (naming another is refused, the same whether that tenant
// exists or not); an operator names any tenant ("" for all, where the
// route allows it).
func managedTenant(k *trail.APIKey, named string) (string, error) {
	switch {
	case k.Operator():
		return named, nil
	case named == "" || named == k.Tenant:
		return k.Tenant, nil
	}
	return "", trail.Errorf(trail.EFORBIDDEN, "a tenant's admin key manages only its own tenant's keys; managing other tenants takes an operator credential")
}

// manages reports whether k may see and change the key rk: a tenant's admin
// its own tenant's keys, an operator every tenant's. Operator credentials
// are managed with the CLI alone, so no one manages them here.
func manages(k, rk *trail.APIKey) bool {
	if rk.Operator() {
		return false
	}
	return k.Operator() || rk.Tenant == k.Tenant
}

// postKey creates a key for the admin's own tenant, or, for an operator,
// any tenant's, and records the grant in that tenant's log.
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
	tenant, err := managedTenant(k, req.Tenant)
	if err != nil {
		return err
	}
	text, nk, err := trail.NewAPIKey(tenant, req.Name, req.Scopes, s.c.Now())
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

// listKeys lists the admin's own tenant's keys, or, for an operator, those
// of ?tenant= or of every tenant (a read on record).
func (s *Server) listKeys(w http.ResponseWriter, r *http.Request, k *trail.APIKey) error {
	q := r.URL.Query()
	if err := onlyParams(q, "tenant"); err != nil {
		return err
	}
	tenant, err := managedTenant(k, q.Get("tenant"))
	if err != nil {
		return err
	}
	keys, err := s.c.Keys.Keys(r.Context(), tenant)
	if err != nil {
		return err
	}
	out := []*trail.APIKey{}
	for _, rk := range keys {
		if manages(k, rk) {
			out = append(out, rk)
		}
	}
	if k.Operator() {
		// An operator's look at a tenant's keys is on that tenant's record
		// (and the operators'); at every tenant's, on the operators'.
		rec := viewed("api_keys", []any{"*"}, map[string]any{"results": len(out)})
		rec.tenant = cmp.Or(tenant, trail.OperatorTenant)
		if err := s.audit(r, k, rec); err != nil {
			return err
		}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"keys": out})
}

// revokeKey revokes a key at once (this server forgets it), and records it.
// A key the caller does not manage is answered as an unknown one.
func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request, k *trail.APIKey) error {
	if err := onlyParams(r.URL.Query()); err != nil {
		return err
	}
	id := r.PathValue("id")
	rk, err := s.c.Keys.Key(r.Context(), id)
	if err == nil && !manages(k, rk) || trail.ErrorCode(err) == trail.ENOTFOUND {
		return trail.Errorf(trail.ENOTFOUND, "no API key %q", id)
	}
	if err != nil {
		return err
	}
	if err := s.c.Keys.RevokeKey(r.Context(), id, s.c.Now()); err != nil {
		return err
	}
	s.forgetKey(id)
	if rk, err = s.c.Keys.Key(r.Context(), id); err != nil {
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

// tenantView is a tenant as GET /v1/tenants lists it.
type tenantView struct {
	Name string `json:"name"`
}

// listTenants lists the tenants, known by having a log, for an operator:
// a read recorded in the operators' log. The logs Trail keeps for itself
// (trail.Reserved: the operators' log, the root log) are no tenants, and
// are left out.
func (s *Server) listTenants(w http.ResponseWriter, r *http.Request, k *trail.APIKey) error {
	if err := onlyParams(r.URL.Query()); err != nil {
		return err
	}
	if s.c.Tenants == nil {
		return trail.Errorf(trail.EINTERNAL, "this server lists no tenants")
	}
	names, err := s.c.Tenants.Tenants(r.Context())
	if err != nil {
		return err
	}
	out := []tenantView{}
	for _, n := range names {
		if !trail.Reserved(n) {
			out = append(out, tenantView{Name: n})
		}
	}
	rec := viewed("tenants", []any{"*"}, map[string]any{"results": len(out)})
	rec.tenant = trail.OperatorTenant
	if err := s.audit(r, k, rec); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"tenants": out})
}
