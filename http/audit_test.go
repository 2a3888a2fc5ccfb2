package http_test

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	trailhttp "github.com/trailaudit/trail/http"
)

// TestLongUserAgent: a User-Agent longer than the validator allows in a
// request field does not make the read's record fail (and so the read be
// refused): the record keeps as much of it as fits, cut between
// characters.
func TestLongUserAgent(t *testing.T) {
	h := newHarness(t, backends[0].open, trailhttp.Limits{})
	h.ok(201, "acme", "POST", "/v1/events", login, nil)
	max := trail.DefaultLimits().MaxText
	ua := strings.Repeat("a", max-1) + "é" + strings.Repeat("b", 100) // é spans the limit
	if status, _, b := h.do("acme-read", "GET", "/v1/events", "", "", "User-Agent", ua); status != 200 {
		t.Fatalf("a read with a %d-byte User-Agent: %d %s", len(ua), status, b)
	}
	evs := h.events("acme")
	rec := evs[len(evs)-1]
	if got := rec.Request.UserAgent; rec.Action != "data_viewed" || got != ua[:max-1] || !utf8.ValidString(got) || len(rec.Violations) != 0 {
		t.Errorf("the read's record: %s with a %d-byte user agent (want %d bytes, cut before é), violations %v", rec.Action, len(got), max-1, rec.Violations)
	}
}

// TestRequestHeadersInRecords: what a read's record takes from request
// headers is what the validator takes, whatever the headers hold: an
// X-Request-Id that is not visible ASCII is replaced by a new id (it is an
// identifier), a User-Agent that is not UTF-8 is made UTF-8, so that the
// record, and the read, never fail on them.
func TestRequestHeadersInRecords(t *testing.T) {
	h := newHarness(t, backends[0].open, trailhttp.Limits{})
	for _, tc := range []struct{ rid, ua string }{
		{"req\t1", "Mozilla/5.0"},
		{"req-\xff", "Mozilla/5.0 \xff\xfe"},
		{strings.Repeat("r", 129), "ok"},
	} {
		status, hdr, b := h.do("acme-read", "GET", "/v1/events", "", "", "X-Request-Id", tc.rid, "User-Agent", tc.ua)
		if status != 200 {
			t.Fatalf("a read with X-Request-Id %q, User-Agent %q: %d %s", tc.rid, tc.ua, status, b)
		}
		evs := h.events("acme")
		rec := evs[len(evs)-1].Request
		if rec.RequestID == tc.rid || rec.RequestID != hdr.Get("X-Request-Id") || !utf8.ValidString(rec.UserAgent) {
			t.Errorf("X-Request-Id %q, User-Agent %q: recorded as %q, %q (answered X-Request-Id %q)", tc.rid, tc.ua, rec.RequestID, rec.UserAgent, hdr.Get("X-Request-Id"))
		}
	}
}

// present stands for any value but null in a record's wanted context.
type present struct{}

// wantRecord is a record a request must write: its action and some of its
// context.
type wantRecord struct {
	action  string
	context map[string]any
}

// TestRecordedRoutes: every audited route writes its records, with the
// key as actor, the request's fields, and the action and context keys the
// catalog and the server's readers expect.
func TestRecordedRoutes(t *testing.T) {
	h := newHarness(t, backends[0].open, trailhttp.Limits{})
	ev := h.appendEvent(strings.Replace(login, `"scope"`, `"correlation_id":"c-1","scope"`, 1))
	h.key("doomed", "acme", trail.ScopeRead)
	doomed, _, err := trail.ParseAPIKey(h.keys["doomed"])
	if err != nil {
		t.Fatal(err)
	}
	u := signIn(h, "acme")
	viewed := func(ctx map[string]any) []wantRecord { return []wantRecord{{catalog.DataViewed, ctx}} }
	exportRecords := func(format, fields, query, reason string, count int) []wantRecord {
		return []wantRecord{
			{catalog.DataExportAttempted, map[string]any{"export_format": format, "data_scope": "audit_events", "fields_accessed": fields, "query": query}},
			{catalog.DataExported, map[string]any{"export_format": format, "data_scope": "audit_events", "export_reason": reason, "file_size": present{}, "record_count": count}},
		}
	}
	for _, tc := range []struct {
		key, method, path, body string // key "" is the UI session's (acme)
		tenant                  string // the log the records go in; "" is acme
		want                    []wantRecord
	}{
		{"acme-read", "GET", "/v1/events?actor=u-1", "", "", viewed(map[string]any{
			"data_type": "audit_events", "fields_accessed": "[actor]", "results": 1, "query": "actor=u-1"})},
		{"acme-read", "GET", "/v1/events/" + ev.ID, "", "", viewed(map[string]any{
			"data_type": "audit_event", "fields_accessed": "[*]", "event_id": ev.ID, "seq": 1})},
		{"acme-verify", "GET", "/v1/proofs/inclusion?seq=1", "", "", viewed(map[string]any{
			"data_type": "audit_proof", "fields_accessed": "[seq]", "seq": 1, "tree_size": present{}})},
		{"acme-verify", "GET", "/v1/proofs/consistency?from=1", "", "", viewed(map[string]any{
			"data_type": "audit_proof", "fields_accessed": "[tree]", "from": 1, "to": present{}})},
		{"acme-export", "GET", "/v1/export?actor=u-1&format=csv", "", "", exportRecords("csv", "[actor]", "actor=u-1&format=csv", "api_request", 1)},
		{"admin", "POST", "/v1/actions", `{"name":"invoice_paid","category":"billing","outcome":"success"}`, "", []wantRecord{{catalog.AdminConfigChanged, map[string]any{
			"config_key": "action:invoice_paid", "old_value": nil, "new_value": "invoice_paid", "changed_by": present{}}}}},
		{"admin", "POST", "/v1/keys", `{"tenant":"acme","name":"ci","scopes":["read","ingest"]}`, "", []wantRecord{{catalog.PermissionGranted, map[string]any{
			"permission": "api_key:ingest,read", "target_user_id": present{}, "reason": "ci"}}}},
		{"admin", "DELETE", "/v1/keys/" + doomed, "", "", []wantRecord{{catalog.PermissionRevoked, map[string]any{
			"permission": "api_key:read", "target_user_id": doomed, "reason": "doomed"}}}},
		{"", "GET", "/ui/?actor=u-1", "", "", viewed(map[string]any{
			"data_type": "audit_events", "fields_accessed": "[actor]", "results": 1, "query": "actor=u-1", "view": "ui_timeline"})},
		{"", "GET", "/ui/tail?after=0&actor=u-1", "", "", viewed(map[string]any{
			"data_type": "audit_events", "fields_accessed": "[actor]", "results": 1, "query": "actor=u-1", "view": "ui_live_tail", "after_seq": 0})},
		{"", "GET", "/ui/events/" + ev.ID, "", "", viewed(map[string]any{
			"data_type": "audit_event", "fields_accessed": "[*]", "event_id": ev.ID, "seq": 1, "correlated": 1, "view": "ui_event"})},
		{"", "GET", "/ui/events/" + ev.ID + "/verify", "", "", []wantRecord{
			{catalog.DataViewed, map[string]any{"data_type": "audit_event", "event_id": ev.ID, "view": "ui_event"}},
			{catalog.DataViewed, map[string]any{"data_type": "audit_proof", "fields_accessed": "[seq]", "seq": 1, "tree_size": present{}, "verified": true, "view": "ui_verify"}},
		}},
		{"", "GET", "/ui/health", "", "", viewed(map[string]any{
			"data_type": "audit_events", "fields_accessed": "[action recorded_at]", "results": 0,
			"query": "action=user_login_failed&per=hour&hours=24", "view": "ui_health"})},
		{"", "POST", "/ui/health/verify", "", "", viewed(map[string]any{
			"data_type": "audit_proof", "fields_accessed": "[*]", "leaves": present{}, "tree_size": present{},
			"verified": true, "damage": 0, "view": "ui_full_verification"})},
		{"", "GET", "/ui/export?format=ndjson&actor=u-1", "", "", exportRecords("ndjson", "[actor]", "actor=u-1&format=ndjson&reason=ui_download", "ui_download", 1)},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			tenant := cmp.Or(tc.tenant, "acme")
			before := len(h.events(tenant))
			keyName, status := tc.key, 0
			if tc.key == "" {
				keyName = "acme"
				var form url.Values
				if tc.method == "POST" {
					form = url.Values{}
				}
				res, _ := u.request(tc.method, tc.path, form, "X-Request-Id", "req-1")
				status = res.StatusCode
			} else {
				ct := ""
				if tc.body != "" {
					ct = "application/json"
				}
				status, _, _ = h.do(tc.key, tc.method, tc.path, ct, tc.body, "X-Request-Id", "req-1")
			}
			if status >= 400 {
				t.Fatalf("status %d", status)
			}
			path, _, _ := strings.Cut(tc.path, "?")
			checkRecords(t, h.events(tenant)[before:], keyName, tc.method, path, tc.want)
		})
	}

	// An export that fails is on record as attempted and failed, under one
	// correlation id.
	f := &failing{backend: h.store}
	f.queries.Store(true)
	ts := h.serveFailing(t, f)
	req, _ := http.NewRequest("GET", ts.URL+"/v1/export?action=user_login_success", nil)
	req.Header.Set("Authorization", "Bearer "+h.keys["acme-export"])
	req.Header.Set("X-Request-Id", "req-1")
	before := len(h.events("acme"))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 500 {
		t.Errorf("an export whose query fails: %d, want 500", res.StatusCode)
	}
	checkRecords(t, h.events("acme")[before:], "acme-export", "GET", "/v1/export", []wantRecord{
		{catalog.DataExportAttempted, map[string]any{"export_format": "ndjson", "fields_accessed": "[action]", "query": "action=user_login_success"}},
		{catalog.DataExportFailed, map[string]any{"export_format": "ndjson", "reason": "interrupted", "record_count": 0}},
	})
}

// checkRecords holds the records a request wrote to want: written by the
// key named keyName, for the request, the records of one request sharing
// a correlation id or none.
func checkRecords(t *testing.T, got []*trail.Event, keyName, method, path string, want []wantRecord) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d records %v, want %d", len(got), actions(got), len(want))
	}
	for i, w := range want {
		ev := got[i]
		if ev.Action != w.action {
			t.Errorf("record %d: %s, want %s", i, ev.Action, w.action)
		}
		if ev.Actor.Type != trail.ActorAPIKey || ev.Actor.Name != keyName || ev.Actor.ID == "" {
			t.Errorf("record %d: actor %+v, want the API key %s", i, ev.Actor, keyName)
		}
		if r := ev.Request; r.Method != method || r.Path != path || r.RequestID != "req-1" || r.IP != "127.0.0.1" || !strings.HasPrefix(r.UserAgent, "Go-http-client/") {
			t.Errorf("record %d: request %+v, want %s %s", i, r, method, path)
		}
		if len(ev.Violations) != 0 {
			t.Errorf("record %d breaks the catalog's rules: %+v", i, ev.Violations)
		}
		for k, v := range w.context {
			g, ok := ev.Context[k]
			switch {
			case !ok:
				t.Errorf("record %d (%s): no context key %s in %v", i, ev.Action, k, ev.Context)
			case v == present{}:
				if g == nil {
					t.Errorf("record %d (%s): context %s is null", i, ev.Action, k)
				}
			case fmt.Sprint(g) != fmt.Sprint(v):
				t.Errorf("record %d (%s): context %s = %v, want %v", i, ev.Action, k, g, v)
			}
		}
		if corr := got[0].CorrelationID; ev.CorrelationID != corr || len(got) == 1 && corr != "" {
			t.Errorf("record %d: correlation id %q; want one shared by the records of an export, and none otherwise", i, ev.CorrelationID)
		}
	}
}
