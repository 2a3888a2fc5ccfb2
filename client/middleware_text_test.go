package client_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/client"
)

// TestMiddlewareRequestNotText: an end user controls the path and the
// User-Agent of a request, which may hold bytes that are not text (a
// header any byte, a path %ff or %00). The event is recorded with them
// repaired (trail.ValidText), not refused: otherwise any visitor could
// keep the app's events out of its audit trail.
func TestMiddlewareRequestNotText(t *testing.T) {
	for _, tc := range []struct {
		target, ua string
		want       trail.Request
	}{
		{"/entries/e-42%ff/approve", "curl/8", trail.Request{Path: "/entries/e-42\uFFFD/approve", UserAgent: "curl/8"}},
		{"/entries/e-42%00/approve", "curl/8", trail.Request{Path: "/entries/e-42\uFFFD/approve", UserAgent: "curl/8"}},
		{"/entries/e-42/approve", "curl\xff/8", trail.Request{Path: "/entries/e-42/approve", UserAgent: "curl\uFFFD/8"}},
	} {
		rec, st := newTestLocal(t)
		h := client.Middleware(client.MiddlewareOptions{ActorFunc: func(*http.Request) trail.Actor { return testAlice }})(recordingHandler(rec))
		r := httptest.NewRequest("POST", tc.target, nil)
		r.Header.Set("User-Agent", tc.ua)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			t.Errorf("%s, User-Agent %q: %d %s", tc.target, tc.ua, w.Code, w.Body)
			continue
		}
		got := storedEvents(t, st)[0].Request
		if got.Path != tc.want.Path || got.UserAgent != tc.want.UserAgent {
			t.Errorf("%s, User-Agent %q: recorded path %q, user agent %q; want %q, %q", tc.target, tc.ua, got.Path, got.UserAgent, tc.want.Path, tc.want.UserAgent)
		}
	}
}
