package http

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
)

// decodeStrict decodes a JSON body into v, refusing unknown members,
// members given twice or in another case (named in the error), trailing
// data and deep nesting.
func decodeStrict(body []byte, v any) error {
	if depth(body) > 16 {
		return trail.Invalid("the body is nested too deeply (limit 16)")
	}
	if fe := trail.CheckMembers(body, v); len(fe) > 0 {
		return trail.Invalid("the body has members given twice, in another case, or with bad text", fe...)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return trail.Invalid("unknown field", trail.FieldError{Path: strings.Trim(name, `"`), Message: "unknown field"})
		}
		var te *json.UnmarshalTypeError
		if ok := asTypeError(err, &te); ok {
			return trail.Invalid("wrong type", trail.FieldError{Path: te.Field, Message: "want " + te.Type.String()})
		}
		return trail.Errorf(trail.EINVALID, "the body is not the JSON expected: %v", err)
	}
	if dec.More() {
		return trail.Invalid("trailing data after the JSON body")
	}
	return nil
}

func asTypeError(err error, te **json.UnmarshalTypeError) bool {
	t, ok := err.(*json.UnmarshalTypeError)
	if ok {
		*te = t
	}
	return ok
}

// depth returns the deepest nesting of arrays and objects in a JSON text
// (strings skipped), without decoding it.
func depth(b []byte) int {
	d, most, inStr, esc := 0, 0, false, false
	for _, c := range b {
		switch {
		case esc:
			esc = false
		case inStr && c == '\\':
			esc = true
		case c == '"':
			inStr = !inStr
		case inStr:
		case c == '{' || c == '[':
			d++
			most = max(most, d)
		case c == '}' || c == ']':
			d--
		}
	}
	return most
}

// catalogOf returns the catalog as k's tenant sees it: the built-in
// actions, shared and read-only, and the custom actions its tenant
// registered, which no other tenant sees.
func (s *Server) catalogOf(k *trail.APIKey) *catalog.Catalog { return s.c.Catalog.For(k.Tenant) }

// listActions answers the key's tenant's view of the catalog, filtered by
// category, compliance tag and outcome.
func (s *Server) listActions(w http.ResponseWriter, r *http.Request, k *trail.APIKey) error {
	q := r.URL.Query()
	if err := onlyParams(q, "category", "compliance", "outcome"); err != nil {
		return err
	}
	acts := s.catalogOf(k).Actions(catalog.Filter{Category: q.Get("category"), Compliance: q.Get("compliance"), Outcome: trail.Outcome(q.Get("outcome"))})
	if acts == nil {
		acts = []*trail.Action{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"actions": acts})
}

// postAction registers a custom action in the key's tenant's view of the
// catalog alone (and keeps it, so it is there after a restart), and
// records the change.
func (s *Server) postAction(w http.ResponseWriter, r *http.Request, k *trail.APIKey) error {
	if err := onlyParams(r.URL.Query()); err != nil {
		return err
	}
	body, err := s.readJSON(w, r)
	if err != nil {
		return err
	}
	var a trail.Action
	if err := decodeStrict(body, &a); err != nil {
		return err
	}
	if err := s.catalogOf(k).Register(a); err != nil {
		return err
	}
	def, _ := s.catalogOf(k).Resolve(a.Name)
	if s.c.Actions != nil {
		if err := s.c.Actions.SaveAction(r.Context(), k.Tenant, def); err != nil {
			return err
		}
	}
	if err := s.audit(r, k, actionRegistered(k, def)); err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, def)
}
