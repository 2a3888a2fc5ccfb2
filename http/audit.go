package http

import (
	"cmp"
	"context"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/export"
	"github.com/trailaudit/trail/internal/ledger"
)

// A record is an event the server writes in a log about a request it
// served with an API key: a read of the log (data_viewed, or the
// data_export_* records of an export), a change an admin key made, or a
// UI sign-in, sign-out or failed sign-in (session.go). The
// functions below make each kind the server writes; Server.audit writes
// one. A record is built for one request and written once.
type record struct {
	action      string // one of package catalog's constants
	context     map[string]any
	correlation string // ties the records of one export together
	tenant      string // the log it goes in; "" is the key's tenant's
	what        string // what is refused when it cannot be written; "" is a read
}

// viewed is the record of a read of dataType (audit_events, audit_event or
// audit_proof) that selected by fields, with detail added to its context.
func viewed(dataType string, fields []any, detail map[string]any) record {
	ctx := map[string]any{"data_type": dataType, "fields_accessed": fields}
	maps.Copy(ctx, detail)
	return record{action: catalog.DataViewed, context: ctx}
}

// viewedEvents is the record of a page of the events matching filters,
// asked for as query.
func viewedEvents(filters url.Values, query string, results int) record {
	return viewed("audit_events", usedFilters(filters), map[string]any{"results": results, "query": query})
}

// viewedEvent is the record of a read of one event.
func viewedEvent(ev *trail.Event) record {
	return viewed("audit_event", []any{"*"}, map[string]any{"event_id": ev.ID, "seq": ev.Seq})
}

// viewedProof is the record of a proof or a verification of field (seq,
// tree, or * for the whole log).
func viewedProof(field string, detail map[string]any) record {
	return viewed("audit_proof", []any{field}, detail)
}

// with adds key to the record's context.
func (rec record) with(key string, value any) record {
	rec.context[key] = value
	return rec
}

// in names the UI view the read was made through.
func (rec record) in(view string) record { return rec.with("view", view) }

// exportScope is the data an export reads.
const exportScope = "audit_events"

// exportAttempted is the record of an export about to begin, of the events
// matching filters asked for as query; corr ties it to its outcome.
func exportAttempted(f export.Format, corr string, filters url.Values, query string) record {
	return record{action: catalog.DataExportAttempted, correlation: corr, context: map[string]any{
		"export_format": string(f), "data_scope": exportScope, "fields_accessed": usedFilters(filters), "query": query,
	}}
}

// exported is the record of an export that wrote size bytes of count
// events, asked for with reason.
func exported(f export.Format, corr, reason string, size int64, count int) record {
	return record{action: catalog.DataExported, correlation: corr, context: map[string]any{
		"export_format": string(f), "data_scope": exportScope, "export_reason": reason, "file_size": size, "record_count": count,
	}}
}

// exportFailed is the record of an export that failed with cause after
// count events.
func exportFailed(f export.Format, corr string, cause error, count int) record {
	return record{action: catalog.DataExportFailed, correlation: corr, context: map[string]any{
		"export_format": string(f), "reason": failReason(cause), "record_count": count,
	}}
}

// actionRegistered is the record of admin registering the custom action
// def.
func actionRegistered(admin *trail.APIKey, def *trail.Action) record {
	return record{action: catalog.AdminConfigChanged, context: map[string]any{
		"config_key": "action:" + def.Name, "old_value": nil, "new_value": def.Name, "changed_by": admin.ID,
	}}
}

// keyCreated and keyRevoked are the records of a key's creation and
// revocation, in the log of the tenant the key acts for.
func keyCreated(k *trail.APIKey) record { return keyChanged(catalog.PermissionGranted, k) }
func keyRevoked(k *trail.APIKey) record { return keyChanged(catalog.PermissionRevoked, k) }

func keyChanged(action string, k *trail.APIKey) record {
	scopes := make([]string, len(k.Scopes))
	for i, sc := range k.Scopes {
		scopes[i] = string(sc)
	}
	return record{action: action, tenant: k.Tenant, context: map[string]any{
		"permission": "api_key:" + strings.Join(scopes, ","), "target_user_id": k.ID, "reason": k.Name,
	}}
}

// maxUserAgent is the validator's limit on request.user_agent (the service
// validates with trail.DefaultLimits): a longer one would make the record,
// and so the request, fail.
var maxUserAgent = trail.DefaultLimits().MaxText

// audit writes rec, with the credential k as its actor and r as its
// request. It returns the error of a record that could not be written, and
// the request must then be refused: an audit trail whose reads go
// unrecorded when the store fails would let someone read unseen by making
// it fail. What an operator does to a tenant is recorded twice: in that
// tenant's log and in the operators' own (trail.OperatorTenant), naming
// the tenant.
func (s *Server) audit(r *http.Request, k *trail.APIKey, rec record) error {
	tenant := cmp.Or(rec.tenant, k.Tenant)
	logs := []string{tenant}
	if k.Operator() && tenant != trail.OperatorTenant {
		logs = append(logs, trail.OperatorTenant)
	}
	for _, lg := range logs {
		ev := &trail.Event{
			Action: rec.action,
			Actor:  s.actor(r, k),
			Request: trail.Request{
				IP: s.clientIP(r), UserAgent: truncate(trail.ValidText(r.UserAgent()), maxUserAgent), Method: r.Method, Path: trail.ValidText(r.URL.Path),
				RequestID: requestID(r), SessionID: sessionRef(r),
			},
			Context:       maps.Clone(rec.context),
			CorrelationID: rec.correlation,
		}
		if lg != tenant {
			if ev.Context == nil {
				ev.Context = map[string]any{}
			}
			ev.Context["tenant"] = tenant
		}
		if err := s.appendRecord(r.Context(), lg, ev); err != nil {
			what := cmp.Or(rec.what, "read")
			s.log.ErrorContext(r.Context(), "recording a "+what+" failed; the "+what+" is refused", "action", rec.action, "tenant", lg, "err", err)
			refused := &trail.Error{Code: trail.EINTERNAL, Message: "the " + what + " could not be recorded in the audit log, so it is refused"}
			if code := trail.ErrorCode(err); storeDown(code) { // the caller may retry: say so, and why
				refused.Code, refused.Message = code, refused.Message+": "+trail.ErrorMessage(err)
			}
			return refused
		}
	}
	return nil
}

// actor is who did what r asks, acting with the credential k: the
// person of r's session when a person signed it in (type user, their
// subject as ID, their email as name and email), else k. The one place
// that decides the actor of what the server records of a request.
func (s *Server) actor(r *http.Request, k *trail.APIKey) trail.Actor {
	if sess, ok := r.Context().Value(sessionKey{}).(*trail.Session); ok && sess.Kind == trail.SessionPerson {
		return trail.Actor{Type: trail.ActorUser, ID: sess.Subject, Name: sess.Name, Email: sess.Name}
	}
	return keyActor(k)
}

// appendRecord appends ev, a record the server writes itself (see audit;
// and the alert of a verification that found damage), to tenant's log,
// through Trail's own path (Config.Writer): its actor is an API key, or
// it is one of Trail's own records, which the store's Append refuses from
// every caller. It is
// the package's one append of such records (ingest appends clients'
// events in events.go through Append), so that how they are written is
// decided here alone.
func (s *Server) appendRecord(ctx context.Context, tenant string, ev *trail.Event) error {
	_, err := s.c.Writer.AppendOwn(ctx, tenant, ledger.Records(ev))
	if err == nil {
		s.writes.succeeded()
	}
	return err
}

// truncate returns s cut to at most n bytes, between characters where it
// is valid UTF-8.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for i := n; i > n-utf8.UTFMax && i > 0; i-- {
		if utf8.RuneStart(s[i]) {
			return s[:i]
		}
	}
	return s[:n] // no character starts near n: not UTF-8 there anyway
}

type requestIDKey struct{}

// withRequestID gives the request an id, for the records of its reads and
// the X-Request-Id of its answer: its X-Request-Id when that is up to 128
// bytes of visible ASCII (an id a proxy or client made), else a new one.
// What reaches a record is what the validator takes in an identifier.
func withRequestID(r *http.Request, w http.ResponseWriter, t0 time.Time) context.Context {
	rid := r.Header.Get("X-Request-Id")
	if rid == "" || len(rid) > 128 || strings.ContainsFunc(rid, func(c rune) bool { return c < 0x21 || c > 0x7e }) {
		rid = trail.NewID(t0)
	}
	w.Header().Set("X-Request-Id", rid)
	return context.WithValue(r.Context(), requestIDKey{}, rid)
}

func requestID(r *http.Request) string {
	id, _ := r.Context().Value(requestIDKey{}).(string)
	return id
}
