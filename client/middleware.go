package client

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/internal/clientip"
)

// MiddlewareOptions configure Middleware. Every field is optional.
type MiddlewareOptions struct {
	// ActorFunc says who makes the request; the zero Actor when nobody
	// known does.
	ActorFunc func(*http.Request) trail.Actor
	// SessionFunc returns the request's session id. Return an identifier,
	// never the session cookie or token itself: it is stored as given.
	SessionFunc func(*http.Request) string
	// ScopeFunc places the request in the app's tenancy model.
	ScopeFunc func(*http.Request) trail.Scope
	// TrustedProxies are the addresses whose X-Forwarded-For is believed.
	// A request from one of them is attributed to the rightmost entry of
	// X-Forwarded-For that is not itself a trusted proxy; from anyone
	// else, to the connection's address, whatever the header says.
	TrustedProxies []netip.Prefix
	// Recorder records access events, with RecordAccess.
	Recorder Recorder
	// RecordAccess, with Recorder, chooses the requests whose access is
	// recorded, once the handler has answered with status: access_granted
	// for a status below 400, access_denied for 401 and 403, nothing for
	// other statuses. r.Pattern names the ServeMux route that served it.
	RecordAccess func(r *http.Request, status int) bool
}

// AnonymousActor is the actor of an access event when ActorFunc knows no
// one (a 401, typically): an event needs an actor.
var AnonymousActor = trail.Actor{Type: trail.ActorUser, ID: "anonymous"}

// maxRequestID bounds an X-Request-Id taken from the client; a longer or
// odd one is replaced by a new id.
const maxRequestID = 128

// Middleware returns net/http middleware that puts a RequestInfo in each
// request's context, so every Record in the handler (and the helpers and
// Begin) fills the event's request, actor and scope from it:
//
//   - IP: the client's address (see TrustedProxies)
//   - UserAgent, Method and Path (the URL path, without the query); a
//     user agent or path that is not text is repaired (trail.ValidText)
//   - RequestID: the request's X-Request-Id when it is 1 to 128 visible
//     ASCII characters, otherwise a new trail.NewID; either way echoed in
//     the response's X-Request-Id
//   - TraceID: the trace id of a valid W3C traceparent header
//   - SessionID, Actor and Scope from the functions in o
//
// Values longer than an event may hold are cut to fit. With o.Recorder and
// o.RecordAccess, it records access_granted or access_denied after the
// handler (see RecordAccess), with context resource (the route pattern, or
// the path when there is none), action (read for GET, HEAD and OPTIONS,
// delete for DELETE, write otherwise), permission_level for a grant (read
// or write), reason for a denial (unauthenticated for 401, no_permission
// for 403), and status. A
// failure to record it is logged with log/slog: the response is gone by
// then.
func Middleware(o MiddlewareOptions) func(http.Handler) http.Handler {
	lim := trail.DefaultLimits()
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rid := r.Header.Get("X-Request-Id")
			if !validRequestID(rid) {
				rid = trail.NewID(time.Now())
			}
			w.Header().Set("X-Request-Id", rid)
			info := RequestInfo{Request: trail.Request{
				IP:        clientip.FromRequest(r, o.TrustedProxies),
				UserAgent: truncateUTF8(trail.ValidText(r.UserAgent()), lim.MaxText),
				RequestID: rid,
				Method:    truncateUTF8(r.Method, 16),
				Path:      truncateUTF8(trail.ValidText(r.URL.Path), lim.MaxText),
			}}
			if tp := r.Header.Values("Traceparent"); len(tp) == 1 {
				info.Request.TraceID, _ = ParseTraceparent(tp[0])
			}
			if o.SessionFunc != nil {
				info.Request.SessionID = truncateUTF8(o.SessionFunc(r), lim.MaxField)
			}
			if o.ActorFunc != nil {
				info.Actor = o.ActorFunc(r)
			}
			if o.ScopeFunc != nil {
				info.Scope = o.ScopeFunc(r)
			}
			r = r.WithContext(WithRequest(r.Context(), info))
			if o.Recorder == nil || o.RecordAccess == nil {
				next.ServeHTTP(w, r)
				return
			}
			sw := &statusRecorder{ResponseWriter: w}
			next.ServeHTTP(sw, r)
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			if !o.RecordAccess(r, status) {
				return
			}
			ev := accessEvent(r, status)
			if ev == nil {
				return
			}
			if info.Actor.ID == "" && info.Actor.Type == "" {
				ev.Actor = AnonymousActor
			}
			// The client may be gone; the record must still be written.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 30*time.Second)
			defer cancel()
			if err := o.Recorder.Record(ctx, ev); err != nil {
				slog.ErrorContext(ctx, "trail: recording access failed", "action", ev.Action, "path", info.Request.Path, "status", status, "err", err)
			}
		})
	}
}

// accessEvent returns the access event for a response with status, or nil
// when the status calls for none.
func accessEvent(r *http.Request, status int) *trail.Event {
	resource := r.Pattern
	if resource == "" {
		resource = truncateUTF8(r.URL.Path, trail.DefaultLimits().MaxText)
	}
	action, level := "write", "write"
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		action, level = "read", "read"
	case http.MethodDelete:
		action = "delete"
	}
	c := map[string]any{"resource": resource, "action": action, "status": status}
	var reason string
	switch {
	case status < 400:
		c["permission_level"] = level
		return &trail.Event{Action: catalog.AccessGranted, Context: c}
	case status == http.StatusUnauthorized:
		reason = "unauthenticated"
	case status == http.StatusForbidden:
		reason = "no_permission"
	default:
		return nil
	}
	c["reason"] = reason
	return &trail.Event{Action: catalog.AccessDenied, Context: c, Reason: reason}
}

// statusRecorder remembers the status a handler answered with.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 && code >= 200 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer (Flush,
// deadlines).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func validRequestID(s string) bool {
	if s == "" || len(s) > maxRequestID {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// ParseTraceparent returns the trace id of a W3C Trace Context traceparent
// header value (version-traceid-parentid-flags, lower-case hex): the 32
// hex digits of a valid header, with ok false for an invalid one. Invalid
// means a wrong length or separator, upper-case or non-hex digits, version
// ff, an all-zero trace or parent id, or a version-00 header with anything
// after the flags. A later version may append fields after a '-', which
// are ignored.
func ParseTraceparent(h string) (traceID string, ok bool) {
	h = strings.Trim(h, " \t")
	// 2 version, 32 trace id, 16 parent id, 2 flags, 3 dashes.
	const n = 55
	if len(h) < n || h[2] != '-' || h[35] != '-' || h[52] != '-' {
		return "", false
	}
	version, trace, parent, flags := h[0:2], h[3:35], h[36:52], h[53:55]
	if !lowerHex(version) || version == "ff" || !lowerHex(trace) || !lowerHex(parent) || !lowerHex(flags) {
		return "", false
	}
	if len(h) > n && (version == "00" || h[n] != '-') {
		return "", false
	}
	if allZeroHex(trace) || allZeroHex(parent) {
		return "", false
	}
	return trace, true
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func allZeroHex(s string) bool { return strings.Trim(s, "0") == "" }

// truncateUTF8 cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for i := 0; i < utf8.UTFMax && len(s) > 0; i++ {
		if r, size := utf8.DecodeLastRuneInString(s); r != utf8.RuneError || size != 1 {
			break
		}
		s = s[:len(s)-1]
	}
	return s
}
