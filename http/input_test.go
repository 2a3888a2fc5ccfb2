package http_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/trailaudit/trail"
	trailhttp "github.com/trailaudit/trail/http"
)

// TestOneMeaning: input another reader could take for something else is
// refused with 400 naming the field, the same on every store, where a
// NUL used to fail PostgreSQL's insert or read with a 500; nothing of a
// refused request is stored, and the log takes the next event at seq 1.
func TestOneMeaning(t *testing.T) {
	const actor = `"actor":{"type":"user","id":"u-1"}`
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			h := newHarness(t, b.open, trailhttp.Limits{})
			for _, tc := range []struct {
				name, method, path, contentType, body string
				paths                                 []string
			}{
				{"a second action", "POST", "/v1/events", "application/json",
					`{"action":"user_login_failed",` + actor + `,"action":"user_login_success"}`, []string{"action"}},
				{"Action overriding action", "POST", "/v1/events", "application/json",
					`{"action":"user_login_failed",` + actor + `,"Action":"user_login_success"}`, []string{"Action"}},
				{"NUL in actor.id", "POST", "/v1/events", "application/json",
					strings.Replace(login, `"u-1"`, `"u-1\u0000"`, 1), []string{"[0].actor.id"}},
				{"NUL in scope.workspace, the second of a batch", "POST", "/v1/events:batch", "application/x-ndjson",
					login + "\n" + strings.Replace(login, `"ws-1"`, `"ws\u0000"`, 1) + "\n", []string{"[1].scope.workspace"}},
				{"NUL in a target id", "POST", "/v1/events", "application/json",
					`{"action":"user_login_failed",` + actor + `,"targets":[{"type":"user","id":"\u0000"}]}`, []string{"[0].targets[0].id"}},
				{"invalid UTF-8", "POST", "/v1/events", "application/json",
					strings.Replace(login, `"u-1"`, "\"u-\xff\"", 1), []string{"actor.id"}},
				{"a lone surrogate", "POST", "/v1/events", "application/json",
					strings.Replace(login, `"u-1"`, `"u-\ud800"`, 1), []string{"actor.id"}},
				{"NUL in a search", "GET", "/v1/events?actor=u-1%00", "", "", []string{"actor"}},
				{"NUL in an export's filter", "GET", "/v1/export?workspace=%00&format=ndjson", "", "", []string{"workspace"}},
				{"a control character in a search", "GET", "/v1/events?" + url.Values{"correlation": {"c\n1"}, "action": {"a", "b\x7f"}}.Encode(), "", "",
					[]string{"correlation", "action[1]"}},
			} {
				status, _, body := h.do("acme", tc.method, tc.path, tc.contentType, tc.body)
				var p trailhttp.Problem
				json.Unmarshal(body, &p)
				var paths []string
				for _, f := range p.Errors {
					paths = append(paths, f.Path)
				}
				if status != 400 || p.Code != trail.EINVALID {
					t.Errorf("%s: %d %s, want 400 naming %v", tc.name, status, body, tc.paths)
				} else if diff := cmp.Diff(tc.paths, paths); diff != "" {
					t.Errorf("%s: field paths (-want +got):\n%s\n%+v", tc.name, diff, p)
				}
			}
			var one struct{ Event *trail.Event }
			h.ok(201, "acme", "POST", "/v1/events", login, &one)
			if one.Event.Seq != 1 {
				t.Errorf("the first good event is seq %d, want 1: something refused was stored", one.Event.Seq)
			}
		})
	}
}

// TestUserAgentNotText: a User-Agent that is not UTF-8 (a header may hold
// any byte) does not make a read's record, and so the read, fail: the
// record, Trail's own, keeps it repaired (trail.ValidText), unmarked.
func TestUserAgentNotText(t *testing.T) {
	h := newHarness(t, backends[0].open, trailhttp.Limits{})
	if status, _, b := h.do("acme-read", "GET", "/v1/events", "", "", "User-Agent", "curl\xff/8"); status != 200 {
		t.Fatalf("a read with a User-Agent of invalid UTF-8: %d %s", status, b)
	}
	evs := h.events("acme")
	if rec := evs[len(evs)-1]; rec.Action != "data_viewed" || rec.Request.UserAgent != "curl\uFFFD/8" || len(rec.Violations) != 0 {
		t.Errorf("the read's record: %s with user agent %q, violations %v", rec.Action, rec.Request.UserAgent, rec.Violations)
	}
}
