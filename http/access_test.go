package http_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/erasure"
	trailhttp "github.com/trailaudit/trail/http"
	"github.com/trailaudit/trail/internal/ledger"
	"github.com/trailaudit/trail/memory"
	"github.com/trailaudit/trail/storetest"
)

// newSealedHarness is newHarness on a memory store that seals personal
// data, with legal holds and erasure: every route the server has works.
func newSealedHarness(t *testing.T) *harness {
	t.Helper()
	cat := catalog.Default()
	sealer := erasure.NewSealer(memory.NewSubjectKeys(), cat)
	v := validator(cat)
	v.Sealer = sealer
	store := memory.New(v, storetest.Signer())
	t.Cleanup(func() { store.Close() })
	srv, err := trailhttp.New(trailhttp.Config{Store: erasure.Wrap(store, sealer), Writer: store, Keys: store, Catalog: cat,
		Actions: store, Holds: store, Tenants: store, Sinks: store, Rules: store, Eraser: sealer, Verifier: storetest.Signer().Verifier(), Logger: slog.New(slog.DiscardHandler),
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &harness{t: t, url: ts.URL, store: store, srv: srv, keys: map[string]string{}}
}

// keyID returns the id of the named key.
func (h *harness) keyID(name string) string {
	h.t.Helper()
	id, _, err := trail.ParseAPIKey(h.keys[name])
	if err != nil {
		h.t.Fatal(err)
	}
	return id
}

// TestEveryRouteRefusesOtherTenants tries every route the server has
// (Server.Access, so that a new route cannot be left out) with a key of
// tenant beta, and with beta's admin key, on acme's objects: each is
// refused, or acts on beta's own tenant alone, and answers acme's object
// exactly as an unknown one, so nothing says whether it exists; and acme's
// log, keys, holds and data are as they were.
func TestEveryRouteRefusesOtherTenants(t *testing.T) {
	h := newSealedHarness(t)
	h.key("admin", "acme", trail.KeyScopes...)
	h.key("acme", "acme", trail.ScopeRead)
	h.key("beta", "beta", trail.ScopeIngest, trail.ScopeRead, trail.ScopeExport, trail.ScopeVerify)
	h.key("beta-admin", "beta", trail.KeyScopes...)
	acmeEvent := `{"action":"user_login_success","actor":{"type":"user","id":"acme-u-7","email":"acme7@example.com"},"context":{"method":"password","mfa":true,"remember_me":false}}`
	var one struct{ Event *trail.Event }
	h.ok(201, "admin", "POST", "/v1/events", acmeEvent, &one)
	h.ok(201, "admin", "POST", "/v1/holds", `{"id":"h-acme","filter":{"actor_id":"acme-u-7"},"reason":"acme's case"}`, nil)
	h.ok(201, "admin", "POST", "/v1/actions", `{"name":"acme_only","category":"billing","outcome":"success","description":"acme's secret process"}`, nil)
	h.do("admin", "PUT", "/v1/rules/acme-rules", "application/yaml", "title: acme's secret rule\nid: acme-r\ndetection:\n  sel:\n    action: user_logout\n  condition: sel\n")
	h.ok(201, "admin", "POST", "/v1/sinks", `{"name":"acme-siem","kind":"webhook","url":"https://siem.acme.example/in"}`, nil)
	acmeKey := h.keyID("acme")
	// An operator's change, recorded (sealed) in beta's log and the
	// operators'.
	h.operator("operator")
	h.ok(201, "operator", "POST", "/v1/keys", `{"tenant":"beta","name":"by the operator","scopes":["read"]}`, nil)

	// Each route's request about acme's objects, and the same request
	// about objects nobody has (probe: "" when the route names none).
	// Markers are what of acme's must never show in an answer to beta.
	type call struct{ path, body, probe, ct string } // ct: the body's type (default JSON)
	cases := map[string]call{
		"POST /v1/events":              {path: "/v1/events", body: `{"action":"user_logout","actor":{"type":"user","id":"b-1"}}`},
		"POST /v1/events:batch":        {path: "/v1/events:batch", body: `{"action":"user_logout","actor":{"type":"user","id":"b-1"}}`},
		"GET /v1/events":               {path: "/v1/events?actor=acme-u-7"},
		"GET /v1/events/{id}":          {path: "/v1/events/" + one.Event.ID, probe: "/v1/events/" + trail.NewID(one.Event.RecordedAt)},
		"GET /v1/export":               {path: "/v1/export?actor=acme-u-7"},
		"GET /v1/checkpoint":           {path: "/v1/checkpoint"},
		"GET /v1/proofs/inclusion":     {path: "/v1/proofs/inclusion?seq=1"},
		"GET /v1/proofs/consistency":   {path: "/v1/proofs/consistency?from=1"},
		"GET /v1/actions":              {path: "/v1/actions?category=billing"},
		"POST /v1/actions":             {path: "/v1/actions", body: `{"name":"acme_only","category":"billing","outcome":"failure","description":"beta's"}`},
		"GET /v1/keys":                 {path: "/v1/keys?tenant=acme", probe: "/v1/keys?tenant=nobody"},
		"POST /v1/keys":                {path: "/v1/keys", body: `{"tenant":"acme","scopes":["admin"]}`, probe: "/v1/keys"},
		"DELETE /v1/keys/{id}":         {path: "/v1/keys/" + acmeKey, probe: "/v1/keys/000000000000"},
		"GET /v1/tenants":              {path: "/v1/tenants"},
		"GET /v1/holds":                {path: "/v1/holds"},
		"POST /v1/holds":               {path: "/v1/holds", body: `{"id":"h-beta","filter":{"actor_id":"b-1"},"reason":"beta's case"}`},
		"DELETE /v1/holds/{id}":        {path: "/v1/holds/h-acme?reason=x", probe: "/v1/holds/h-nobody?reason=x"},
		"POST /v1/subjects/{id}/erase": {path: "/v1/subjects/acme-u-7/erase", body: `{"reason":"beta asks"}`, probe: "/v1/subjects/nobody-9/erase"},
		"GET /v1/sinks":                {path: "/v1/sinks"},
		"GET /v1/rules":                {path: "/v1/rules"},
		"GET /v1/rules/{name}":         {path: "/v1/rules/acme-rules", probe: "/v1/rules/nobody-rules"},
		"PUT /v1/rules/{name}":         {path: "/v1/rules/beta-rules", ct: "application/yaml", body: "title: beta's\nid: beta-r\ndetection:\n  sel:\n    action: user_login_failed\n  condition: sel\n"},
		"DELETE /v1/rules/{name}":      {path: "/v1/rules/acme-rules", probe: "/v1/rules/nobody-rules"},
		"POST /v1/rules:replay":        {path: "/v1/rules:replay?since=2026-01-01T00:00:00Z"},
		"GET /v1/alerts":               {path: "/v1/alerts"},
		"POST /v1/sinks":               {path: "/v1/sinks", body: `{"name":"beta-siem","kind":"webhook","url":"https://siem.beta.example/in"}`},
		"GET /v1/sinks/{name}":         {path: "/v1/sinks/acme-siem", probe: "/v1/sinks/nobody-siem"},
		"DELETE /v1/sinks/{name}":      {path: "/v1/sinks/acme-siem", probe: "/v1/sinks/nobody-siem"},
		"POST /v1/sinks/{name}/resume": {path: "/v1/sinks/acme-siem/resume", probe: "/v1/sinks/nobody-siem/resume"},
	}
	markers := []string{one.Event.ID, "siem.acme.example", "acme-u-7", "acme7@example.com", h.keyID("admin"), acmeKey, "h-acme", "acme's", "acme_only", `"acme"`}
	// probeBody is the body of a probe: for POST /v1/keys, the same but
	// naming a tenant nobody has.
	probeBody := func(c call) string { return strings.ReplaceAll(c.body, `"acme"`, `"nobody"`) }

	before := len(h.events("acme"))
	keysBefore, _ := h.store.Keys(context.Background(), "acme")
	for _, rt := range h.srv.Access() {
		if rt.Credential == trailhttp.NoCredential {
			continue
		}
		c, ok := cases[rt.Pattern]
		if !ok {
			t.Errorf("route %s has no case in TestEveryRouteRefusesOtherTenants: add one", rt.Pattern)
			continue
		}
		method, _, _ := strings.Cut(rt.Pattern, " ")
		for _, key := range []string{"beta", "beta-admin"} {
			t.Run(key+" "+rt.Pattern, func(t *testing.T) {
				ct := c.ct
				if ct == "" && c.body != "" {
					ct = "application/json"
				}
				status, _, b := h.do(key, method, c.path, ct, c.body)
				for _, m := range markers {
					if strings.Contains(string(b), m) && !strings.Contains(c.path+c.body, m) {
						t.Errorf("%s %s: the answer shows acme's %s: %d %s", method, c.path, m, status, b)
					}
				}
				if c.probe == "" {
					return
				}
				pstatus, _, pb := h.do(key, method, c.probe, ct, probeBody(c))
				got, want := problemOf(b), problemOf(pb)
				if status != pstatus || got.Code != want.Code || generic(got.Detail, c.path) != generic(want.Detail, c.probe) {
					t.Errorf("acme's object and an unknown one are answered apart:\n%s %s: %d %s\n%s %s: %d %s", method, c.path, status, b, method, c.probe, pstatus, pb)
				}
			})
		}
	}

	if n := len(h.events("acme")); n != before {
		t.Errorf("acme's log grew from %d to %d events by beta's requests", before, n)
	}
	keysAfter, _ := h.store.Keys(context.Background(), "acme")
	if len(keysAfter) != len(keysBefore) || slices.ContainsFunc(keysAfter, (*trail.APIKey).Revoked) {
		t.Errorf("acme's keys changed: %+v", keysAfter)
	}
	holds, _ := h.store.Holds(context.Background(), "acme")
	if len(holds) != 1 || holds[0].Reason != "acme's case" || !holds[0].ReleasedAt.IsZero() {
		t.Errorf("acme's holds changed: %+v", holds)
	}
	var acts struct{ Actions []*trail.Action }
	h.ok(200, "acme", "GET", "/v1/actions?category=billing", "", &acts)
	if len(acts.Actions) != 1 || acts.Actions[0].Description != "acme's secret process" {
		t.Errorf("acme's custom actions changed: %+v", acts.Actions)
	}
	if rf, err := h.store.GetRule(context.Background(), "acme", "acme-rules"); err != nil || !strings.Contains(rf.YAML, "acme's secret rule") {
		t.Errorf("acme's rules changed: %+v %v", rf, err)
	}
	if sk, err := h.store.GetSink(context.Background(), "acme", "acme-siem"); err != nil || sk.URL != "https://siem.acme.example/in" {
		t.Errorf("acme's sink changed: %+v %v", sk, err)
	}
	var ev trail.Event
	h.ok(200, "acme", "GET", "/v1/events/"+one.Event.ID, "", &ev)
	if ev.Actor.Email != "acme7@example.com" {
		t.Errorf("acme's subject was erased by beta: %+v", ev.Actor)
	}
}

// problemOf decodes a problem document (the zero one when b is not one).
func problemOf(b []byte) trailhttp.Problem {
	var p trailhttp.Problem
	json.Unmarshal(b, &p)
	return p
}

// generic replaces in detail the last segment of the path asked for (an
// id) and "acme" / "nobody", so that the answers about two objects can be
// compared.
func generic(detail, path string) string {
	path, _, _ = strings.Cut(path, "?")
	id := path[strings.LastIndex(path, "/")+1:]
	for _, s := range []string{id, "acme", "nobody"} {
		detail = strings.ReplaceAll(detail, s, "ID")
	}
	return detail
}

// TestOperators: an operator credential manages any tenant's keys, each
// change on record in that tenant's log and in the operators' own; it acts
// on no tenant's data, and does not sign in to the UI; a tenant's admin key
// manages its own tenant alone and never an operator credential.
func TestOperators(t *testing.T) {
	h := newHarness(t, backends[0].open, trailhttp.Limits{})
	ctx := context.Background()

	var created struct {
		Key    string
		Record trail.APIKey
	}
	h.ok(201, "operator", "POST", "/v1/keys", `{"tenant":"initech","name":"ci","scopes":["admin","read"]}`, &created)
	h.keys["initech-admin"] = created.Key
	h.ok(200, "initech-admin", "GET", "/v1/keys", "", nil)
	h.ok(200, "operator", "DELETE", "/v1/keys/"+h.keyID("globex"), "", nil)
	for _, tc := range []struct {
		tenant, action, target string
	}{{"initech", catalog.PermissionGranted, created.Record.ID}, {"globex", catalog.PermissionRevoked, h.keyID("globex")}} {
		var inTenant, inOperators int
		for _, ev := range h.events(tc.tenant) {
			if ev.Action == tc.action && ev.Context["target_user_id"] == tc.target {
				inTenant++
				if ev.Actor.Type != trail.ActorOperator || ev.Actor.ID != h.keyID("operator") {
					t.Errorf("%s's record names actor %+v, want the operator", tc.tenant, ev.Actor)
				}
			}
		}
		for _, ev := range h.events(trail.OperatorTenant) {
			if ev.Action == tc.action && ev.Context["target_user_id"] == tc.target && ev.Context["tenant"] == tc.tenant && ev.Actor.Type == trail.ActorOperator {
				inOperators++
			}
		}
		if inTenant != 1 || inOperators != 1 {
			t.Errorf("%s of a key of %s: %d records in its log and %d in the operators', want 1 and 1", tc.action, tc.tenant, inTenant, inOperators)
		}
	}

	// The operator lists any tenant's keys, never operator credentials.
	var list struct{ Keys []trail.APIKey }
	h.ok(200, "operator", "GET", "/v1/keys", "", &list)
	tenants := map[string]bool{}
	for _, k := range list.Keys {
		tenants[k.Tenant] = true
	}
	if !tenants["acme"] || !tenants["globex"] || !tenants["initech"] || tenants[trail.OperatorTenant] {
		t.Errorf("the operator's list of keys has the tenants %v", tenants)
	}
	h.ok(200, "operator", "GET", "/v1/keys?tenant=initech", "", &list)
	if len(list.Keys) != 1 || list.Keys[0].ID != created.Record.ID {
		t.Errorf("initech's keys: %+v", list.Keys)
	}
	if evs := h.events("initech"); evs[len(evs)-1].Action != catalog.DataViewed || evs[len(evs)-1].Context["data_type"] != "api_keys" ||
		evs[len(evs)-1].Actor.Type != trail.ActorOperator {
		t.Errorf("initech's log does not record the operator's look at its keys: %+v", evs[len(evs)-1])
	}

	// A tenant's admin: its own tenant's keys only.
	h.ok(200, "admin", "GET", "/v1/keys", "", &list)
	for _, k := range list.Keys {
		if k.Tenant != "acme" {
			t.Errorf("acme's admin lists a key of %s", k.Tenant)
		}
	}
	h.problem(403, trail.EFORBIDDEN, "admin", "GET", "/v1/keys?tenant=initech", "", "")
	h.problem(403, trail.EFORBIDDEN, "admin", "POST", "/v1/keys", "application/json", `{"tenant":"initech","scopes":["admin"]}`)
	var own struct{ Record trail.APIKey }
	h.ok(201, "admin", "POST", "/v1/keys", `{"name":"mine","scopes":["read"]}`, &own)
	if own.Record.Tenant != "acme" {
		t.Errorf("a key acme's admin made without naming a tenant is %s's", own.Record.Tenant)
	}
	for _, id := range []string{created.Record.ID, h.keyID("operator")} {
		p := h.problem(404, trail.ENOTFOUND, "admin", "DELETE", "/v1/keys/"+id, "", "")
		if p.Detail != `no API key "`+id+`"` {
			t.Errorf("revoking a key acme does not manage: %q", p.Detail)
		}
	}
	h.problem(404, trail.ENOTFOUND, "operator", "DELETE", "/v1/keys/"+h.keyID("operator"), "", "")
	h.problem(400, trail.EINVALID, "operator", "POST", "/v1/keys", "application/json", `{"tenant":"_operators","scopes":["admin"]}`)
	h.problem(400, trail.EINVALID, "operator", "POST", "/v1/keys", "application/json", `{"scopes":["admin"]}`)

	// The tenants, known by their logs, for operators alone; the read is on
	// the operators' record. The logs Trail keeps for itself (the
	// operators', the root log) are no tenants.
	if _, err := h.store.AppendOwn(context.Background(), trail.RootTenant, ledger.Records(storetest.RootEntry("abc", 1))); err != nil {
		t.Fatal(err)
	}
	var tenantList struct{ Tenants []struct{ Name string } }
	h.ok(200, "operator", "GET", "/v1/tenants", "", &tenantList)
	var names []string
	for _, tn := range tenantList.Tenants {
		names = append(names, tn.Name)
	}
	if want := []string{"acme", "globex", "initech"}; !slices.Equal(names, want) {
		t.Errorf("GET /v1/tenants = %v, want %v", names, want)
	}
	if evs := h.events(trail.OperatorTenant); evs[len(evs)-1].Action != catalog.DataViewed || evs[len(evs)-1].Context["data_type"] != "tenants" {
		t.Errorf("the operators' log does not record the list of tenants: %+v", evs[len(evs)-1])
	}
	h.problem(403, trail.EFORBIDDEN, "admin", "GET", "/v1/tenants", "", "")

	// No tenant's data, and no UI.
	for _, r := range routes {
		if r.scope == trail.ScopeAdmin && strings.HasPrefix(r.path, "/v1/keys") {
			continue
		}
		h.problem(403, trail.EFORBIDDEN, "operator", r.method, strings.Replace(r.path, "EVENT", "x", 1), "application/json", r.body)
	}
	u := &uiSession{h: h}
	if res, body := u.request("POST", "/ui/signin", map[string][]string{"key": {h.keys["operator"]}}); res.StatusCode != 401 {
		t.Errorf("UI sign-in with an operator credential: %d\n%s", res.StatusCode, body)
	}

	// The text says which kind of credential it is.
	op := h.keys["operator"]
	h.keys["forged"] = "trail_" + strings.TrimPrefix(op, trail.OperatorKeyPrefix)
	h.problem(401, trail.EUNAUTHORIZED, "forged", "GET", "/v1/keys", "", "")
	h.keys["forged"] = trail.OperatorKeyPrefix + strings.TrimPrefix(h.keys["admin"], "trail_")
	h.problem(401, trail.EUNAUTHORIZED, "forged", "GET", "/v1/keys", "", "")

	// Only Trail writes the operators' log, and operator actors.
	if _, err := h.store.Append(ctx, trail.OperatorTenant, []*trail.Event{{Action: "user_logout", Actor: trail.Actor{Type: trail.ActorUser, ID: "u"}}}, trail.AppendOptions{}); trail.ErrorCode(err) != trail.EINVALID {
		t.Errorf("an outside append to the operators' log: %v", err)
	}
	p := h.problem(400, trail.EINVALID, "acme", "POST", "/v1/events", "application/json", `{"action":"user_logout","actor":{"type":"operator","id":"x"}}`)
	if !hasPath(p, "[0].actor.type") {
		t.Errorf("an operator actor from a caller: %+v", p)
	}
}

// TestAccessTable holds docs/design.md's table of who may do what to the
// routes the server answers (Server.Access), and openapi.json's
// x-trail-credential and x-trail-scope of each operation to the same.
func TestAccessTable(t *testing.T) {
	h := newHarness(t, backends[0].open, trailhttp.Limits{})
	want := map[string]string{}
	for _, rt := range h.srv.Access() {
		want[rt.Pattern] = string(rt.Credential) + " | " + scopeCell(rt.Scope)
	}

	doc, err := os.ReadFile("../docs/design.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(doc), "\n### Who may do what\n")
	if !ok {
		t.Fatal("docs/design.md has no section \"### Who may do what\"")
	}
	table, _, _ = strings.Cut(table, "\n#")
	row := regexp.MustCompile("(?m)^\\| `([A-Z]+ /[^`]*)` \\| ([a-z ]+) \\| `?([a-z-]+)`? \\|")
	got := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(table, -1) {
		if _, dup := got[m[1]]; dup {
			t.Errorf("docs/design.md lists %s twice", m[1])
		}
		got[m[1]] = m[2] + " | " + m[3]
	}
	for p, w := range want {
		if g, ok := got[p]; !ok {
			t.Errorf("docs/design.md's access table lacks %s (%s)", p, w)
		} else if g != w {
			t.Errorf("docs/design.md says %s takes %s; the server: %s", p, g, w)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("docs/design.md's access table lists %s, which the server does not answer", p)
		}
	}

	_, _, b := h.do("", "GET", "/v1/openapi.json", "", "")
	var api struct {
		Paths map[string]map[string]struct {
			Credential string `json:"x-trail-credential"`
			Scope      string `json:"x-trail-scope"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(b, &api); err != nil {
		t.Fatal(err)
	}
	for p, w := range want {
		method, path, _ := strings.Cut(p, " ")
		op, ok := api.Paths[path][strings.ToLower(method)]
		if !ok {
			continue // TestOpenAPI reports it
		}
		if g := op.Credential + " | " + scopeCell(trail.KeyScope(op.Scope)); g != w {
			t.Errorf("openapi.json says %s takes %s; the server: %s", p, g, w)
		}
	}
}

func scopeCell(s trail.KeyScope) string {
	if s == "" {
		return "-"
	}
	return string(s)
}
