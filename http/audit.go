package http

import (
	"net/http"

	"github.com/trailaudit/trail"
)

// recordRead appends the record of a read to the key's tenant's log: the
// key is the actor, the request its context. It returns the error of a
// record that could not be written, and the read must then be refused: an
// audit trail whose reads go unrecorded when the store fails would let
// someone read unseen by making it fail.
func (s *Server) recordRead(r *http.Request, k *trail.APIKey, action string, ctx map[string]any, correlation string) error {
	ev := &trail.Event{
		Action: action,
		Actor:  trail.Actor{Type: trail.ActorAPIKey, ID: k.ID, Name: k.Name},
		Request: trail.Request{
			IP: s.clientIP(r), UserAgent: r.UserAgent(), Method: r.Method, Path: r.URL.Path,
			RequestID: requestID(r),
		},
		Context:       ctx,
		CorrelationID: correlation,
	}
	if _, err := s.c.Store.Append(r.Context(), k.Tenant, []*trail.Event{ev}, trail.AppendOptions{}); err != nil {
		s.log.ErrorContext(r.Context(), "recording a read failed; the read is refused", "action", action, "tenant", k.Tenant, "err", err)
		return trail.Errorf(trail.EINTERNAL, "the read could not be recorded in the audit log, so it is refused")
	}
	return nil
}

func requestID(r *http.Request) string {
	id, _ := r.Context().Value(requestIDKey{}).(string)
	return id
}
