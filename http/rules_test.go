package http_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	trailhttp "github.com/trailaudit/trail/http"
	"github.com/trailaudit/trail/storetest"
)

// runDetections runs the harness's detection supervisor until the test
// ends.
func (h *harness) runDetections() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.detect.Run(ctx)
	}()
	h.t.Cleanup(func() {
		cancel()
		<-done
	})
}

// eventually polls cond until it holds, failing with what after a
// generous while.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 1000 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("never: %s", what)
}

// A tenant's admin puts, replaces and deletes its rule files, each change
// recorded; any key of the tenant reads them with the built-in rules; a
// refused rule is 400 naming the field as the parser does; another
// tenant's file is not found.
func TestRules(t *testing.T) {
	for _, b := range backends[:2] {
		t.Run(b.name, func(t *testing.T) {
			h := newHarness(t, b.open, trailhttp.Limits{})
			yaml := storetest.SigmaRule("r-1")
			put := func(key, name, ctype, body string) (int, []byte) {
				status, _, out := h.do(key, "PUT", "/v1/rules/"+name, ctype, body)
				return status, out
			}
			if status, out := put("admin", "mine", "application/yaml", yaml); status != 201 || !strings.Contains(string(out), `"recorded_seq"`) {
				t.Fatalf("PUT a new file: %d %s", status, out)
			}
			if status, out := put("admin", "mine", "text/yaml; charset=utf-8", storetest.SigmaRule("r-2")); status != 200 {
				t.Fatalf("PUT it again: %d %s", status, out)
			}
			var list struct {
				Builtin []struct{ ID, Name, Level, Kind string }
				Files   []struct {
					Name, YAML string
					Rules      []struct{ ID string }
				}
				Status []any
			}
			h.ok(200, "acme-read", "GET", "/v1/rules", "", &list)
			if len(list.Builtin) < 10 || len(list.Files) != 1 || list.Files[0].Name != "mine" || list.Files[0].Rules[0].ID != "r-2" || list.Status == nil {
				t.Errorf("GET /v1/rules: %+v", list)
			}
			var one struct {
				Name, YAML, Tenant string
				CreatedBy          string `json:"created_by"`
			}
			h.ok(200, "acme", "GET", "/v1/rules/mine", "", &one)
			if one.YAML != storetest.SigmaRule("r-2") || one.Tenant != "acme" || one.CreatedBy == "" {
				t.Errorf("GET /v1/rules/mine: %+v", one)
			}

			for _, tc := range []struct {
				name, key, ctype, body string
				status                 int
				code, path             string
			}{
				{"modifier", "admin", "application/yaml", strings.Replace(yaml, "action:", "context.cmd|base64offset:", 1), 400, trail.EINVALID, "detection.selection.context.cmd|base64offset"},
				{"keyword search", "admin", "application/yaml", strings.Replace(yaml, "action: user_login_failed", "- mimikatz", 1), 400, trail.EINVALID, "detection.selection[0]"},
				{"JSON", "admin", "application/json", `{"title":"x"}`, 415, "unsupported_media_type", "Content-Type"},
				{"bad name", "admin", "application/yaml", yaml, 400, trail.EINVALID, "name"},
				{"read key", "acme", "application/yaml", yaml, 403, trail.EFORBIDDEN, ""},
			} {
				name := "other"
				if tc.name == "bad name" {
					name = "Other"
				}
				p := h.problem(tc.status, tc.code, tc.key, "PUT", "/v1/rules/"+name, tc.ctype, tc.body)
				if tc.path != "" && (len(p.Errors) == 0 || p.Errors[0].Path != tc.path) {
					t.Errorf("%s: errors %+v, want the first naming %s", tc.name, p.Errors, tc.path)
				}
			}

			h.problem(404, trail.ENOTFOUND, "globex", "GET", "/v1/rules/mine", "", "")
			h.problem(404, trail.ENOTFOUND, "globex", "GET", "/v1/rules/nothing", "", "")
			h.problem(403, trail.EFORBIDDEN, "globex", "DELETE", "/v1/rules/mine", "", "")
			h.ok(200, "admin", "DELETE", "/v1/rules/mine", "", nil)
			h.problem(404, trail.ENOTFOUND, "acme", "GET", "/v1/rules/mine", "", "")
			h.problem(404, trail.ENOTFOUND, "admin", "DELETE", "/v1/rules/mine", "", "")

			var changes []string
			for _, ev := range h.events("acme") {
				if ev.Action == catalog.AdminConfigChanged {
					changes = append(changes, ev.Context["config_key"].(string))
				}
			}
			if strings.Join(changes, " ") != "rules:mine rules:mine rules:mine" {
				t.Errorf("changes recorded %v, want the two puts and the delete", changes)
			}
		})
	}
}

func failedLogin(email string) string {
	return `{"action":"user_login_failed","actor":{"type":"user","id":"anonymous"},"request":{"ip":"203.0.113.9"},` +
		`"context":{"reason":"invalid_password","attempts":1,"email":"` + email + `"}}`
}

// The rules serve runs (the built-in set and the tenant's own) raise
// alerts that GET /v1/alerts lists newest first, with paging, as a read
// recorded in the log; GET /v1/rules and /metrics say where each set is.
func TestAlerts(t *testing.T) {
	h := newHarness(t, backends[0].open, trailhttp.Limits{})
	h.runDetections()
	if status, _, b := h.do("admin", "PUT", "/v1/rules/logins", "application/yaml", storetest.SigmaRule("r-1")); status != 201 {
		t.Fatalf("PUT: %d %s", status, b)
	}
	var batch []string
	for range 10 {
		batch = append(batch, failedLogin("ann@example.com"))
	}
	if status, _, b := h.do("acme", "POST", "/v1/events:batch", "application/x-ndjson", strings.Join(batch, "\n")); status != 201 {
		t.Fatalf("batch: %d %s", status, b)
	}
	type alerts struct {
		Events []*trail.Event
		Next   string
	}
	var page alerts
	eventually(t, "11 alerts (10 of the tenant's rule, 1 brute force)", func() bool {
		h.ok(200, "acme-read", "GET", "/v1/alerts?limit=100", "", &page)
		return len(page.Events) == 11
	})
	byRule := map[string]int{}
	for i, a := range page.Events {
		byRule[a.Context["rule_set"].(string)+"/"+a.Context["rule_title"].(string)]++
		if i > 0 && a.Seq > page.Events[i-1].Seq {
			t.Errorf("alert %d (seq %d) after seq %d: want newest first", i, a.Seq, page.Events[i-1].Seq)
		}
		if a.Action != catalog.AlertRaised {
			t.Errorf("GET /v1/alerts answered a %s", a.Action)
		}
	}
	if byRule["tenant/Failed login r-1"] != 10 || byRule["builtin/Brute force against an account"] != 1 {
		t.Errorf("alerts by rule %v", byRule)
	}
	var first, second alerts
	h.ok(200, "acme", "GET", "/v1/alerts?limit=6", "", &first)
	h.ok(200, "acme", "GET", "/v1/alerts?limit=6&cursor="+first.Next, "", &second)
	if len(first.Events) != 6 || len(second.Events) != 5 || second.Events[0].Seq >= first.Events[5].Seq {
		t.Errorf("pages of %d and %d alerts", len(first.Events), len(second.Events))
	}
	var asc alerts
	h.ok(200, "acme", "GET", "/v1/alerts?order=asc&limit=1", "", &asc)
	if len(asc.Events) != 1 || asc.Events[0].Seq != page.Events[10].Seq {
		t.Errorf("order=asc starts at %v, want the oldest alert", asc.Events)
	}
	var none alerts
	h.ok(200, "globex", "GET", "/v1/alerts", "", &none)
	if len(none.Events) != 0 {
		t.Errorf("globex sees %d of acme's alerts", len(none.Events))
	}
	h.problem(400, trail.EINVALID, "acme", "GET", "/v1/alerts?action=user_login_failed", "", "")

	var list struct {
		Status []struct {
			Set, Tenant string
			Lag, Alerts uint64
			Stopped     bool
		}
	}
	eventually(t, "both sets caught up", func() bool {
		h.ok(200, "acme-read", "GET", "/v1/rules", "", &list)
		caught := 0
		for _, st := range list.Status {
			if st.Tenant == "acme" && st.Lag == 0 && !st.Stopped {
				caught++
			}
		}
		return len(list.Status) == 2 && caught == 2
	})
	_, _, metrics := h.do("", "GET", "/metrics", "", "")
	for _, want := range []string{`trail_detect_lag_events{set="builtin",tenant="acme"} 0`, `trail_detect_alerts_total{set="tenant",tenant="acme"} 10`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	views := 0
	for _, ev := range h.events("acme") {
		if ev.Action == catalog.DataViewed && ev.Context["view"] == "alerts" {
			views++
		}
	}
	if views < 4 {
		t.Errorf("%d reads of alerts recorded, want one per request", views)
	}
}

// A caller that tries to append Trail's own records is refused (as
// always), counted per tenant, and raises the alert of Trail's own rule
// naming its key: one per key per hour however many times it tries.
func TestForgeryAlert(t *testing.T) {
	h := newHarness(t, backends[0].open, trailhttp.Limits{})
	forged := `{"action":"alert_raised","actor":{"type":"user","id":"mallory"},"context":{}}`
	for range 3 {
		h.problem(400, trail.EINVALID, "acme", "POST", "/v1/events", "application/json", forged)
	}
	h.problem(400, trail.EINVALID, "acme-ingest", "POST", "/v1/events:batch", "application/x-ndjson",
		strings.Replace(login, `"type":"user"`, `"type":"api_key"`, 1))
	h.problem(400, trail.EINVALID, "acme", "POST", "/v1/events", "application/json", `{"action":"nonsense","actor":{"type":"user","id":"u"}}`)
	var alerts []*trail.Event
	for _, ev := range h.events("acme") {
		if ev.Action == catalog.AlertRaised {
			alerts = append(alerts, ev)
		}
	}
	if len(alerts) != 2 {
		t.Fatalf("%d alerts, want one per key", len(alerts))
	}
	for i, key := range []string{"acme", "acme-ingest"} {
		c := alerts[i].Context
		want := []any{"alert_raised"}
		if i == 1 {
			want = []any{"actor.type:api_key"}
		}
		if c["rule_id"] != "trail-forgery-refused" || c["rule_set"] != "trail" || alerts[i].Targets[1].Name != key || !slices.Equal(c["actions"].([]any), want) {
			t.Errorf("alert %d: %v %v", i, c, alerts[i].Targets)
		}
		if len(alerts[i].Violations) != 0 {
			t.Errorf("alert %d breaks the catalog's rules: %+v", i, alerts[i].Violations)
		}
	}
	_, _, metrics := h.do("", "GET", "/metrics", "", "")
	if !strings.Contains(string(metrics), `trail_forgeries_refused_total{tenant="acme"} 4`) {
		t.Errorf("metrics lack 4 refused forgeries of acme")
	}
}

// A changed rule file runs from the set's cursor, so the new rule does
// not see the past; POST /v1/rules:replay runs it over the past, as a set
// of its own, up to where the running set has got to.
func TestReplay(t *testing.T) {
	h := newHarness(t, backends[0].open, trailhttp.Limits{})
	h.runDetections()
	logouts := strings.ReplaceAll(storetest.SigmaRule("r-1"), "user_login_failed", "user_logout")
	if status, _, b := h.do("admin", "PUT", "/v1/rules/mine", "application/yaml", logouts); status != 201 {
		t.Fatalf("PUT: %d %s", status, b)
	}
	for range 3 {
		h.appendEvent(failedLogin("ann@example.com"))
	}
	alertsOf := func(set string) int {
		var page struct{ Events []*trail.Event }
		h.ok(200, "acme-read", "GET", "/v1/alerts?limit=100", "", &page)
		n := 0
		for _, a := range page.Events {
			if strings.HasPrefix(a.Context["rule_set"].(string), set) {
				n++
			}
		}
		return n
	}
	// A status is where the set was when it last looked: caught up means
	// its cursor is at the log's size now.
	size := uint64(len(h.events("acme")))
	caughtUp := func() bool {
		sts := h.detect.Statuses("acme")
		for _, st := range sts {
			if st.Cursor < size {
				return false
			}
		}
		return len(sts) >= 2
	}
	eventually(t, "the sets caught up", caughtUp)
	if status, _, b := h.do("admin", "PUT", "/v1/rules/mine", "application/yaml", storetest.SigmaRule("r-2")); status != 200 {
		t.Fatalf("PUT: %d %s", status, b)
	}
	defer func() {
		if t.Failed() {
			t.Logf("statuses: %+v", h.detect.Statuses("acme"))
		}
	}()
	eventually(t, "the changed set caught up", func() bool {
		for _, st := range h.detect.Statuses("acme") {
			if st.Set == "tenant" && st.Alerts == 0 && st.Lag == 0 && st.Head > 0 {
				return true
			}
		}
		return false
	})
	if n := alertsOf("tenant"); n != 0 {
		t.Fatalf("the changed rule alerted %d past events", n)
	}
	h.problem(403, trail.EFORBIDDEN, "acme", "POST", "/v1/rules:replay?since=2000-01-01T00:00:00Z", "", "")
	h.problem(400, trail.EINVALID, "admin", "POST", "/v1/rules:replay", "", "")
	h.problem(400, trail.EINVALID, "admin", "POST", "/v1/rules:replay?since=2000-01-01T00:00:00Z&set=other", "", "")
	var started struct{ Set string }
	h.ok(202, "admin", "POST", "/v1/rules:replay?since=2000-01-01T00:00:00Z", "", &started)
	if !strings.HasPrefix(started.Set, "replay.tenant.") {
		t.Errorf("replay set %q", started.Set)
	}
	eventually(t, "the replay's alerts of the 3 past failed logins", func() bool { return alertsOf("replay.tenant.") == 3 })
	eventually(t, "the replay done", func() bool {
		for _, st := range h.detect.Statuses("acme") {
			if st.Set == started.Set {
				return st.Stopped && st.LastError == ""
			}
		}
		return false
	})
}
