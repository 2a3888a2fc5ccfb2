package http

import (
	"context"
	"net/http"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/retention"
)

// holdRequest is the body of POST /v1/holds.
type holdRequest struct {
	ID     string           `json:"id"`
	Filter trail.HoldFilter `json:"filter"`
	Reason string           `json:"reason"`
}

// keyActor is a credential as the actor of what it does: an API key, or
// an operator.
func keyActor(k *trail.APIKey) trail.Actor {
	if k.Operator() {
		return trail.Actor{Type: trail.ActorOperator, ID: k.ID, Name: k.Name}
	}
	return trail.Actor{Type: trail.ActorAPIKey, ID: k.ID, Name: k.Name}
}

// holdStore returns the server's hold store, or an error saying there is
// none.
func (s *Server) holdStore() (trail.HoldStore, error) {
	if s.c.Holds == nil {
		return nil, trail.Errorf(trail.EINTERNAL, "this server keeps no legal holds")
	}
	return s.c.Holds, nil
}

// listHolds lists the key's tenant's legal holds.
func (s *Server) listHolds(w http.ResponseWriter, r *http.Request, k *trail.APIKey) error {
	if err := onlyParams(r.URL.Query()); err != nil {
		return err
	}
	hs, err := s.holdStore()
	if err != nil {
		return err
	}
	holds, err := hs.Holds(r.Context(), k.Tenant)
	if err != nil {
		return err
	}
	if holds == nil {
		holds = []*trail.Hold{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"holds": holds})
}

// postHold places a legal hold on the key's tenant and records it.
func (s *Server) postHold(w http.ResponseWriter, r *http.Request, k *trail.APIKey) error {
	if err := onlyParams(r.URL.Query()); err != nil {
		return err
	}
	hs, err := s.holdStore()
	if err != nil {
		return err
	}
	body, err := s.readJSON(w, r)
	if err != nil {
		return err
	}
	var req holdRequest
	if err := decodeStrict(body, &req); err != nil {
		return err
	}
	h, _, err := retention.PlaceHold(r.Context(), hs, s.c.Writer, &trail.Hold{ID: req.ID, Tenant: k.Tenant, Filter: req.Filter,
		Reason: req.Reason, CreatedAt: s.c.Now()}, keyActor(k))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, h)
}

// releaseHold releases a legal hold of the key's tenant (?reason=), after
// recording it.
func (s *Server) releaseHold(w http.ResponseWriter, r *http.Request, k *trail.APIKey) error {
	q := r.URL.Query()
	if err := onlyParams(q, "reason"); err != nil {
		return err
	}
	hs, err := s.holdStore()
	if err != nil {
		return err
	}
	seq, err := retention.ReleaseHold(r.Context(), hs, s.c.Writer, k.Tenant, r.PathValue("id"), q.Get("reason"), keyActor(k), s.c.Now())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"released": r.PathValue("id"), "recorded_seq": seq})
}

// eraseRequest is the body of POST /v1/subjects/{id}/erase.
type eraseRequest struct {
	Reason string `json:"reason"`
}

// eraseSubject erases a data subject of the key's tenant (GDPR): refused
// while a legal hold covers it, recorded as subject_erased.
func (s *Server) eraseSubject(w http.ResponseWriter, r *http.Request, k *trail.APIKey) error {
	if err := onlyParams(r.URL.Query()); err != nil {
		return err
	}
	if s.c.Eraser == nil {
		return trail.Errorf(trail.EINTERNAL, "this server does not seal personal data, so it cannot erase it")
	}
	body, err := s.readJSON(w, r)
	if err != nil {
		return err
	}
	var req eraseRequest
	if len(body) > 0 {
		if err := decodeStrict(body, &req); err != nil {
			return err
		}
	}
	var held func(ctx context.Context, tenant, subject string) (*trail.Hold, error)
	if s.c.Holds != nil {
		held = func(ctx context.Context, tenant, subject string) (*trail.Hold, error) {
			return retention.SubjectHeld(ctx, s.c.Holds, s.c.Store, tenant, subject)
		}
	}
	subject := r.PathValue("id")
	n, err := s.c.Eraser.EraseSubject(r.Context(), s.c.Writer, held, k.Tenant, subject, req.Reason, keyActor(k))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"subject": subject, "keys_deleted": n, "erased_at": s.c.Now().UTC().Format(time.RFC3339)})
}
