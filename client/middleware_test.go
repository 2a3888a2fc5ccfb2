package client_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/client"
)

const validTrace = "4bf92f3577b34da6a3ce929d0e0e4736"

// recordingHandler records an entry approval from inside the request, so the
// test can read what the middleware put in its context.
func recordingHandler(rec client.Recorder) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := client.EntryAction(r.Context(), rec, trail.Actor{}, testEntry, client.EntryApprove, "", ""); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
}

func TestMiddlewareRequestInfo(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	tests := []struct {
		name    string
		trusted []netip.Prefix
		remote  string
		headers map[string][]string
		want    trail.Request // RequestID "" means: a new id, echoed
	}{
		{
			name:    "direct client; its X-Forwarded-For is not believed",
			remote:  "192.0.2.1:4711",
			headers: map[string][]string{"X-Forwarded-For": {"203.0.113.9"}, "User-Agent": {"curl/8.5"}},
			want:    trail.Request{IP: "192.0.2.1", UserAgent: "curl/8.5"},
		},
		{
			name:    "untrusted proxy",
			trusted: proxies,
			remote:  "192.0.2.1:4711",
			headers: map[string][]string{"X-Forwarded-For": {"203.0.113.9"}},
			want:    trail.Request{IP: "192.0.2.1"},
		},
		{
			name:    "trusted proxies: the rightmost untrusted entry",
			trusted: proxies,
			remote:  "10.0.0.5:4711",
			headers: map[string][]string{"X-Forwarded-For": {"1.1.1.1, 198.51.100.7", "10.0.0.9"}},
			want:    trail.Request{IP: "198.51.100.7"},
		},
		{
			name:    "trusted proxies all the way: the leftmost proxy",
			trusted: proxies,
			remote:  "10.0.0.5:4711",
			headers: map[string][]string{"X-Forwarded-For": {"garbage, 10.0.0.2"}},
			want:    trail.Request{IP: "10.0.0.2"},
		},
		{
			name:    "trusted proxy without the header",
			trusted: proxies,
			remote:  "10.0.0.5:4711",
			want:    trail.Request{IP: "10.0.0.5"},
		},
		{
			name:    "IPv6 proxy, IPv4-mapped client",
			trusted: proxies,
			remote:  "[fd00::1]:443",
			headers: map[string][]string{"X-Forwarded-For": {"::ffff:198.51.100.8"}},
			want:    trail.Request{IP: "198.51.100.8"},
		},
		{
			name:    "traceparent and request id",
			remote:  "192.0.2.1:4711",
			headers: map[string][]string{"Traceparent": {"00-" + validTrace + "-00f067aa0ba902b7-01"}, "X-Request-Id": {"req-abc-123"}},
			want:    trail.Request{IP: "192.0.2.1", TraceID: validTrace, RequestID: "req-abc-123"},
		},
		{
			name:    "invalid traceparent is ignored",
			remote:  "192.0.2.1:4711",
			headers: map[string][]string{"Traceparent": {"00-00000000000000000000000000000000-00f067aa0ba902b7-01"}},
			want:    trail.Request{IP: "192.0.2.1"},
		},
		{
			name:    "two traceparent headers are ignored",
			remote:  "192.0.2.1:4711",
			headers: map[string][]string{"Traceparent": {"00-" + validTrace + "-00f067aa0ba902b7-01", "00-" + validTrace + "-00f067aa0ba902b8-01"}},
			want:    trail.Request{IP: "192.0.2.1"},
		},
		{
			name:    "odd request id is replaced",
			remote:  "192.0.2.1:4711",
			headers: map[string][]string{"X-Request-Id": {"has space"}},
			want:    trail.Request{IP: "192.0.2.1"},
		},
		{
			name:    "overlong user agent is cut on a rune boundary",
			remote:  "192.0.2.1:4711",
			headers: map[string][]string{"User-Agent": {strings.Repeat("é", 5000)}},
			want:    trail.Request{IP: "192.0.2.1", UserAgent: strings.Repeat("é", 4096)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec, st := newTestLocal(t)
			h := client.Middleware(client.MiddlewareOptions{
				TrustedProxies: tc.trusted,
				ActorFunc:      func(*http.Request) trail.Actor { return testAlice },
				SessionFunc:    func(*http.Request) string { return "sess-1" },
				ScopeFunc:      func(*http.Request) trail.Scope { return trail.Scope{Workspace: "w-1"} },
			})(recordingHandler(rec))
			r := httptest.NewRequest("POST", "/entries/e-42/approve?token=secret", nil)
			r.RemoteAddr = tc.remote
			for k, vs := range tc.headers {
				for _, v := range vs {
					r.Header.Add(k, v)
				}
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			evs := storedEvents(t, st)
			if len(evs) != 1 {
				t.Fatalf("stored %d events, want 1", len(evs))
			}
			ev := evs[0]
			checkClean(t, ev)
			got := ev.Request
			echoed := w.Header().Get("X-Request-Id")
			if got.RequestID != echoed {
				t.Errorf("request id %q recorded, %q echoed", got.RequestID, echoed)
			}
			want := tc.want
			if want.RequestID == "" {
				if _, ok := trail.ParseID(got.RequestID); !ok {
					t.Errorf("request id %q, want a new trail id", got.RequestID)
				}
				want.RequestID = got.RequestID
			}
			want.Method, want.Path, want.SessionID = "POST", "/entries/e-42/approve", "sess-1"
			if got != want {
				t.Errorf("request\n got %+v\nwant %+v", got, want)
			}
			if !utf8.ValidString(got.UserAgent) {
				t.Error("user agent is not valid UTF-8")
			}
			if ev.Actor.ID != testAlice.ID || ev.Scope.Workspace != "w-1" {
				t.Errorf("actor %+v scope %+v", ev.Actor, ev.Scope)
			}
		})
	}
}

func TestMiddlewareRecordsAccess(t *testing.T) {
	tests := []struct {
		name    string
		method  string
		path    string
		actor   bool
		status  int
		skip    bool   // RecordAccess says no
		action  string // "" when nothing is recorded
		context map[string]string
	}{
		{name: "granted read", method: "GET", path: "/reports/7", actor: true, status: 200, action: catalog.AccessGranted,
			context: map[string]string{"resource": `"GET /reports/{id}"`, "action": `"read"`, "permission_level": `"read"`, "status": `200`}},
		{name: "granted write", method: "POST", path: "/reports/7", actor: true, status: 201, action: catalog.AccessGranted,
			context: map[string]string{"resource": `"POST /reports/{id}"`, "action": `"write"`, "permission_level": `"write"`}},
		{name: "forbidden", method: "DELETE", path: "/reports/7", actor: true, status: 403, action: catalog.AccessDenied,
			context: map[string]string{"resource": `"DELETE /reports/{id}"`, "action": `"delete"`, "reason": `"no_permission"`, "status": `403`}},
		{name: "unauthenticated", method: "GET", path: "/reports/7", status: 401, action: catalog.AccessDenied,
			context: map[string]string{"reason": `"unauthenticated"`, "status": `401`}},
		{name: "not found: nothing", method: "GET", path: "/reports/7", actor: true, status: 404},
		{name: "server error: nothing", method: "GET", path: "/reports/7", actor: true, status: 500},
		{name: "route not chosen", method: "GET", path: "/reports/7", actor: true, status: 403, skip: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec, st := newTestLocal(t)
			mux := http.NewServeMux()
			handler := func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(tc.status) }
			for _, m := range []string{"GET", "POST", "DELETE"} {
				mux.HandleFunc(m+" /reports/{id}", handler)
			}
			var seenPattern string
			h := client.Middleware(client.MiddlewareOptions{
				ActorFunc: func(*http.Request) trail.Actor {
					if tc.actor {
						return testAlice
					}
					return trail.Actor{}
				},
				Recorder: rec,
				RecordAccess: func(r *http.Request, status int) bool {
					seenPattern = r.Pattern
					return !tc.skip
				},
			})(mux)
			r := httptest.NewRequest(tc.method, tc.path, nil)
			r.Header.Set("Traceparent", "00-"+validTrace+"-00f067aa0ba902b7-01")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d", w.Code, tc.status)
			}
			if want := tc.method + " /reports/{id}"; seenPattern != want {
				t.Errorf("RecordAccess saw pattern %q, want %q", seenPattern, want)
			}
			evs := storedEvents(t, st)
			if tc.action == "" {
				if len(evs) != 0 {
					t.Fatalf("stored %s, want nothing", evs[0].Action)
				}
				return
			}
			if len(evs) != 1 {
				t.Fatalf("stored %d events, want 1", len(evs))
			}
			ev := evs[0]
			if ev.Action != tc.action {
				t.Errorf("action %s, want %s", ev.Action, tc.action)
			}
			checkClean(t, ev)
			for k, want := range tc.context {
				if got := storedJSON(t, ev.Context[k]); got != want {
					t.Errorf("context %s = %s, want %s", k, got, want)
				}
			}
			wantActor := testAlice.ID
			if !tc.actor {
				wantActor = client.AnonymousActor.ID
			}
			if ev.Actor.ID != wantActor {
				t.Errorf("actor %q, want %q", ev.Actor.ID, wantActor)
			}
			if ev.Request.TraceID != validTrace || ev.Request.RequestID != w.Header().Get("X-Request-Id") || ev.Request.Path != tc.path {
				t.Errorf("request %+v", ev.Request)
			}
		})
	}
}

// A handler that writes a body without WriteHeader answered 200, and the
// middleware's writer still reaches the underlying one's Flush.
func TestMiddlewareImplicitStatus(t *testing.T) {
	rec, st := newTestLocal(t)
	h := client.Middleware(client.MiddlewareOptions{
		ActorFunc:    func(*http.Request) trail.Actor { return testAlice },
		Recorder:     rec,
		RecordAccess: func(*http.Request, int) bool { return true },
	})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("hello"))
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("flush: %v", err)
		}
	}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/hello", nil))
	evs := storedEvents(t, st)
	if len(evs) != 1 || evs[0].Action != catalog.AccessGranted || storedJSON(t, evs[0].Context["status"]) != "200" ||
		evs[0].Context["resource"] != "/hello" {
		t.Fatalf("events %+v", evs)
	}
	if !w.Flushed {
		t.Error("not flushed")
	}
}

func TestParseTraceparent(t *testing.T) {
	tests := []struct {
		in    string
		trace string // "" when invalid
	}{
		{"00-" + validTrace + "-00f067aa0ba902b7-01", validTrace},
		{"00-" + validTrace + "-00f067aa0ba902b7-00", validTrace},
		{" 00-" + validTrace + "-00f067aa0ba902b7-01\t", validTrace},
		{"01-" + validTrace + "-00f067aa0ba902b7-01-future-stuff", validTrace}, // a later version may add fields
		{"01-" + validTrace + "-00f067aa0ba902b7-01", validTrace},
		{"00-" + validTrace + "-00f067aa0ba902b7-01-extra", ""}, // version 00 has nothing after the flags
		{"01-" + validTrace + "-00f067aa0ba902b7-01x", ""},
		{"ff-" + validTrace + "-00f067aa0ba902b7-01", ""},
		{"00-" + strings.ToUpper(validTrace) + "-00f067aa0ba902b7-01", ""},
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", ""},
		{"00-" + validTrace + "-0000000000000000-01", ""},
		{"00-" + validTrace + "-00f067aa0ba902b7-0g", ""},
		{"00-" + validTrace + "-00f067aa0ba902b-701", ""},
		{"00_" + validTrace + "-00f067aa0ba902b7-01", ""},
		{"0-" + validTrace + "-00f067aa0ba902b7-01", ""},
		{"00-" + validTrace[:31] + "-00f067aa0ba902b7-01", ""},
		{"", ""},
		{"garbage", ""},
	}
	for _, tc := range tests {
		got, ok := client.ParseTraceparent(tc.in)
		if got != tc.trace || ok != (tc.trace != "") {
			t.Errorf("ParseTraceparent(%q) = %q, %v; want %q", tc.in, got, ok, tc.trace)
		}
	}
}

func FuzzTraceparent(f *testing.F) {
	f.Add("00-" + validTrace + "-00f067aa0ba902b7-01")
	f.Add("cc-" + validTrace + "-00f067aa0ba902b7-01-what-the-future-holds")
	f.Add("00-00000000000000000000000000000000-00f067aa0ba902b7-01")
	f.Add("")
	f.Fuzz(func(t *testing.T, h string) {
		trace, ok := client.ParseTraceparent(h)
		if !ok {
			if trace != "" {
				t.Fatalf("invalid %q gave trace id %q", h, trace)
			}
			return
		}
		if len(trace) != 32 || strings.Trim(trace, "0123456789abcdef") != "" || strings.Trim(trace, "0") == "" {
			t.Fatalf("%q gave trace id %q", h, trace)
		}
		if !strings.Contains(h, "-"+trace+"-") {
			t.Fatalf("%q gave trace id %q, not in it", h, trace)
		}
		// The version-00 form of a valid header is valid, with the same id.
		s := strings.Trim(h, " \t")
		if again, ok := client.ParseTraceparent("00" + s[2:55]); !ok || again != trace {
			t.Fatalf("version-00 form of %q: %q, %v", h, again, ok)
		}
	})
}
