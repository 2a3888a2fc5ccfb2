package http_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/trailaudit/trail"
	trailhttp "github.com/trailaudit/trail/http"
)

// The UI's Content-Security-Policy, as the issue gives it.
const wantCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Hostile input: event fields are the attacker's. None of it may run.
const (
	hostileName = `<script>alert(1)</script>`
	hostileNote = `<img src=x onerror=alert(1)>`
	hostile     = `{"action":"user_login_failed","actor":{"type":"user","id":"mallory","name":"<script>alert(1)</script>","email":"m\"><svg onload=alert(2)>@example.com"},` +
		`"targets":[{"type":"user","id":"javascript:alert(3)","name":"'><script>alert(4)</script>"}],"scope":{"organization":"<b onmouseover=alert(5)>org</b>"},` +
		`"context":{"note":"<img src=x onerror=alert(1)>"},"correlation_id":"c-x"}`
)

// uiSession is a browser-like client of the UI: it sends the session
// cookie and follows no redirects.
type uiSession struct {
	h      *harness
	cookie *http.Cookie
}

// request sends a request to the UI and returns the response with its
// body read.
func (u *uiSession) request(method, path string, form url.Values, hdr ...string) (*http.Response, string) {
	u.h.t.Helper()
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req, err := http.NewRequest(method, u.h.url+path, body)
	if err != nil {
		u.h.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if u.cookie != nil {
		req.AddCookie(u.cookie)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		u.h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		u.h.t.Fatal(err)
	}
	return res, string(b)
}

// get fetches a page that must answer want.
func (u *uiSession) get(want int, path string, hdr ...string) string {
	u.h.t.Helper()
	res, body := u.request("GET", path, nil, hdr...)
	if res.StatusCode != want {
		u.h.t.Fatalf("GET %s: %d, want %d\n%s", path, res.StatusCode, want, body)
	}
	return body
}

// signIn signs in with the named key through the form, sending the
// headers hdr (name, value, ...).
func signIn(h *harness, name string, hdr ...string) *uiSession {
	h.t.Helper()
	u := &uiSession{h: h}
	res, body := u.request("POST", "/ui/signin", url.Values{"key": {h.keys[name]}}, hdr...)
	if res.StatusCode != http.StatusSeeOther {
		h.t.Fatalf("sign in as %s: %d\n%s", name, res.StatusCode, body)
	}
	for _, c := range res.Cookies() {
		if c.Name == "trail_session" {
			u.cookie = &http.Cookie{Name: c.Name, Value: c.Value}
		}
	}
	if u.cookie == nil {
		h.t.Fatalf("sign in as %s set no session cookie", name)
	}
	return u
}

// appendEvent appends an event (JSON) to acme's log and returns it.
func (h *harness) appendEvent(body string) *trail.Event {
	h.t.Helper()
	ev, err := trail.ParseEvent([]byte(body))
	if err != nil {
		h.t.Fatal(err)
	}
	res, err := h.store.Append(context.Background(), "acme", []*trail.Event{ev}, trail.AppendOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return res.Events[0]
}

// reads returns acme's data_viewed records, as "data_type view".
func (h *harness) reads() []string {
	var out []string
	for _, ev := range h.events("acme") {
		if ev.Action == "data_viewed" {
			out = append(out, fmt.Sprintf("%v %v", ev.Context["data_type"], ev.Context["view"]))
			if len(ev.Violations) != 0 || ev.Actor.Type != trail.ActorAPIKey {
				h.t.Errorf("a read record with violations or another actor: %+v", ev)
			}
		}
	}
	return out
}

func TestUI(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Run("SignIn", func(t *testing.T) { testUISignIn(t, newHarness(t, b.open, trailhttp.Limits{})) })
			t.Run("Headers", func(t *testing.T) { testUIHeaders(t, newHarness(t, b.open, trailhttp.Limits{})) })
			t.Run("Hostile", func(t *testing.T) { testUIHostile(t, newHarness(t, b.open, trailhttp.Limits{})) })
			t.Run("CrossOrigin", func(t *testing.T) { testUICrossOrigin(t, newHarness(t, b.open, trailhttp.Limits{})) })
			t.Run("Scopes", func(t *testing.T) { testUIScopes(t, newHarness(t, b.open, trailhttp.Limits{})) })
			t.Run("Timeline", func(t *testing.T) { testUITimeline(t, newHarness(t, b.open, trailhttp.Limits{})) })
			t.Run("ReadsRecorded", func(t *testing.T) { testUIReadsRecorded(t, newHarness(t, b.open, trailhttp.Limits{})) })
			t.Run("Tail", func(t *testing.T) { testUITail(t, newHarness(t, b.open, trailhttp.Limits{})) })
			t.Run("OwnReadsFolded", func(t *testing.T) { testUIOwnReads(t, newHarness(t, b.open, trailhttp.Limits{})) })
			t.Run("Alerts", func(t *testing.T) { testUIAlerts(t, newHarness(t, b.open, trailhttp.Limits{})) })
			t.Run("VerifyAndHealth", func(t *testing.T) { testUIVerifyHealth(t, newHarness(t, b.open, trailhttp.Limits{})) })
			t.Run("Export", func(t *testing.T) { testUIExport(t, newHarness(t, b.open, trailhttp.Limits{})) })
		})
	}
}

func testUISignIn(t *testing.T, h *harness) {
	anon := &uiSession{h: h}
	// Signed out: every page sends you to sign in, and comes back after.
	for _, path := range []string{"/ui/", "/ui/events/x", "/ui/health", "/ui/actions", "/ui/export?format=csv"} {
		res, _ := anon.request("GET", path, nil)
		if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || loc != "/ui/signin?next="+url.QueryEscape(path) {
			t.Errorf("signed out, GET %s: %d to %q", path, res.StatusCode, loc)
		}
	}
	if res, _ := anon.request("GET", "/ui/tail?after=0", nil, "HX-Request", "true"); res.StatusCode != 401 || res.Header.Get("HX-Redirect") != "/ui/signin" {
		t.Errorf("signed out htmx poll: %d, HX-Redirect %q", res.StatusCode, res.Header.Get("HX-Redirect"))
	}
	if body := anon.get(200, "/ui/signin"); !strings.Contains(body, `name="key"`) || !strings.Contains(body, `action="/ui/signin"`) {
		t.Errorf("the sign-in page has no key form:\n%s", body)
	}

	// A wrong key is refused and sets no cookie.
	for _, key := range []string{"trail_000000000000_" + strings.Repeat("A", 43), "hello", h.keys["acme"] + "x", ""} {
		res, body := anon.request("POST", "/ui/signin", url.Values{"key": {key}})
		if res.StatusCode != 401 || len(res.Cookies()) != 0 || !strings.Contains(body, "That key was not accepted") {
			t.Errorf("sign in with %q: %d, cookies %v\n%s", key, res.StatusCode, res.Cookies(), body)
		}
	}

	// The right key: a cookie holding a session id (not the key),
	// HttpOnly, SameSite=Strict, on /ui/.
	res, _ := anon.request("POST", "/ui/signin", url.Values{"key": {h.keys["acme"]}, "next": {"/ui/health"}})
	if res.StatusCode != 303 || res.Header.Get("Location") != "/ui/health" {
		t.Fatalf("sign in: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	cs := res.Cookies()
	if len(cs) != 1 {
		t.Fatalf("sign in set %d cookies", len(cs))
	}
	c := cs[0]
	if _, err := trail.ParseSessionID(c.Value); c.Name != "trail_session" || err != nil || strings.Contains(c.Value, h.keys["acme"][19:]) ||
		!c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/ui/" || c.Secure || c.MaxAge != 12*3600 {
		t.Errorf("session cookie %+v (raw %q)", c, res.Header.Get("Set-Cookie"))
	}
	// Secure when the browser came over TLS (here: through a trusted proxy).
	res, _ = anon.request("POST", "/ui/signin", url.Values{"key": {h.keys["acme"]}}, "X-Forwarded-Proto", "https")
	if cs := res.Cookies(); len(cs) != 1 || !cs[0].Secure {
		t.Errorf("behind a TLS proxy: cookies %+v", cs)
	}
	// next never leads off the UI.
	for _, next := range []string{"https://evil.example/", "//evil.example/ui/", "/v1/events", "/ui/\\evil", ""} {
		res, _ := anon.request("POST", "/ui/signin", url.Values{"key": {h.keys["acme"]}, "next": {next}})
		if loc := res.Header.Get("Location"); loc != "/ui/" {
			t.Errorf("next %q: redirected to %q", next, loc)
		}
	}

	u := &uiSession{h: h, cookie: &http.Cookie{Name: c.Name, Value: c.Value}}
	if body := u.get(200, "/ui/"); !strings.Contains(body, ">acme<") || !strings.Contains(body, "Sign out") {
		t.Errorf("the signed-in header does not show the tenant:\n%s", body)
	}
	// Signed in, the sign-in page goes on.
	if res, _ := u.request("GET", "/ui/signin", nil); res.StatusCode != 303 {
		t.Errorf("signed in, GET /ui/signin: %d", res.StatusCode)
	}
	// Revoking the key ends the session at once.
	h.ok(200, "admin", "DELETE", "/v1/keys/"+h.keys["acme"][len("trail_"):len("trail_")+12], "", nil)
	res, _ = u.request("GET", "/ui/", nil)
	if res.StatusCode != 303 || !strings.Contains(res.Header.Get("Location"), "why=ended") || len(res.Cookies()) != 1 || res.Cookies()[0].MaxAge >= 0 {
		t.Errorf("after revocation: %d to %q, cookies %+v", res.StatusCode, res.Header.Get("Location"), res.Cookies())
	}
	// Sign out clears the cookie (and ends the session: session_test.go).
	u = signIn(h, "acme-read")
	res, _ = u.request("POST", "/ui/signout", url.Values{})
	if res.StatusCode != 303 || len(res.Cookies()) != 1 || res.Cookies()[0].Value != "" || res.Cookies()[0].MaxAge >= 0 {
		t.Errorf("sign out: %d, cookies %+v", res.StatusCode, res.Cookies())
	}
}

var (
	tagRE     = regexp.MustCompile(`<[a-zA-Z][^>]*>`)
	quotedRE  = regexp.MustCompile(`"[^"]*"`)
	handlerRE = regexp.MustCompile(`(?i)\son[a-z]+\s*=`)
	jsURLRE   = regexp.MustCompile(`(?i)(href|src|action|hx-get|hx-post)\s*=\s*"\s*javascript:`)
)

// checkMarkup fails when a page has inline script or style or a script
// URL: every <script> has a src on the UI; no tag has a style or on*
// attribute (outside the quoted values, where escaped data may say
// anything).
func checkMarkup(t *testing.T, path, body string) {
	t.Helper()
	for _, tag := range tagRE.FindAllString(body, -1) {
		bare := strings.ToLower(quotedRE.ReplaceAllString(tag, `""`))
		switch {
		case strings.HasPrefix(bare, "<script") && !strings.Contains(tag, `src="/ui/static/`),
			strings.HasPrefix(bare, "<style"),
			strings.Contains(bare, " style="),
			handlerRE.MatchString(bare),
			jsURLRE.MatchString(tag):
			t.Errorf("%s: inline script or style: %s", path, tag)
		}
	}
}

func testUIHeaders(t *testing.T, h *harness) {
	ev := h.appendEvent(login)
	u := signIn(h, "acme")
	anon := &uiSession{h: h}
	for _, tc := range []struct {
		s      *uiSession
		method string
		path   string
		status int
	}{
		{anon, "GET", "/ui/signin", 200},
		{anon, "GET", "/ui/", 303},
		{anon, "GET", "/ui/static/app.css", 200},
		{anon, "POST", "/ui/signin", 401},
		{u, "GET", "/ui/", 200},
		{u, "GET", "/ui/?actor=u-1&since=2020-01-01T00:00", 200},
		{u, "GET", "/ui/?since=yesterday", 400},
		{u, "GET", "/ui/events/" + ev.ID, 200},
		{u, "GET", "/ui/events/" + ev.ID + "/verify", 200},
		{u, "GET", "/ui/events/nope", 404},
		{u, "GET", "/ui/health", 200},
		{u, "GET", "/ui/actions", 200},
		{u, "GET", "/ui/actions?category=authentication&q=login", 200},
		{u, "GET", "/ui/tail?after=0", 200},
		{u, "GET", "/ui/export?format=csv", 200},
		{u, "GET", "/ui/export?format=xml", 400},
		{u, "GET", "/ui/nowhere", 404},
		{u, "GET", "/ui/static/" + "htmx-2.0.11.min.js", 200},
		{u, "GET", "/ui/static/nothing.js", 404},
	} {
		res, body := tc.s.request(tc.method, tc.path, url.Values{})
		if res.StatusCode != tc.status {
			t.Errorf("%s %s: %d, want %d\n%s", tc.method, tc.path, res.StatusCode, tc.status, body)
		}
		for k, want := range map[string]string{"Content-Security-Policy": wantCSP, "X-Content-Type-Options": "nosniff",
			"Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"} {
			if got := res.Header.Get(k); got != want {
				t.Errorf("%s %s: %s %q, want %q", tc.method, tc.path, k, got, want)
			}
		}
		if ct := res.Header.Get("Content-Type"); strings.HasPrefix(ct, "text/html") {
			checkMarkup(t, tc.path, body)
			if res.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("%s: Cache-Control %q", tc.path, res.Header.Get("Cache-Control"))
			}
		}
	}
	// The vendored htmx: its version and license are in the file.
	_, js := u.request("GET", "/ui/static/htmx-2.0.11.min.js", nil)
	if !strings.HasPrefix(js, "/*! htmx 2.0.11") || !strings.Contains(js, "Zero-Clause BSD") || !strings.Contains(js, `version:"2.0.11"`) {
		t.Errorf("the vendored htmx lacks its header or version: %.200s", js)
	}
	// The UI's routes are not the API's (openapi.json describes those).
	for _, r := range h.srv.Routes() {
		if strings.Contains(r, "/ui/") {
			t.Errorf("Routes() lists %s", r)
		}
	}
}

func testUIHostile(t *testing.T, h *harness) {
	ev := h.appendEvent(hostile)
	u := signIn(h, "acme")
	pages := map[string]string{
		"timeline":       u.get(200, "/ui/"),
		"filtered":       u.get(200, "/ui/?actor=mallory"),
		"filter echoing": u.get(200, "/ui/?actor="+url.QueryEscape(hostileName)+"&team="+url.QueryEscape(hostileNote)),
		"event":          u.get(200, "/ui/events/"+ev.ID),
		"verified event": u.get(200, "/ui/events/"+ev.ID+"/verify"),
		"tail":           u.get(200, "/ui/tail?after=0", "HX-Request", "true"),
	}
	for name, body := range pages {
		checkMarkup(t, name, body)
		for _, bad := range []string{"<script>alert", "<img src=x", "<svg onload", "<b onmouseover", "'><script"} {
			if strings.Contains(body, bad) {
				t.Errorf("%s: raw %q in the page", name, bad)
			}
		}
	}
	for _, name := range []string{"timeline", "filtered", "event", "verified event", "tail"} {
		if !strings.Contains(pages[name], "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("%s: the actor name is not shown as escaped text", name)
		}
	}
	for _, name := range []string{"event", "verified event"} {
		if !strings.Contains(pages[name], "&lt;img src=x onerror=alert(1)&gt;") {
			t.Errorf("%s: the context is not shown as escaped text", name)
		}
	}
	if !strings.Contains(pages["filter echoing"], `value="&lt;script&gt;alert(1)&lt;/script&gt;"`) {
		t.Error("a filter value is not echoed escaped in its input")
	}
}

func testUICrossOrigin(t *testing.T, h *harness) {
	u := signIn(h, "acme")
	for _, tc := range []struct {
		path string
		hdr  []string
	}{
		{"/ui/signin", []string{"Sec-Fetch-Site", "cross-site"}},
		{"/ui/signout", []string{"Sec-Fetch-Site", "cross-site"}},
		{"/ui/health/verify", []string{"Sec-Fetch-Site", "cross-site"}},
		{"/ui/health/verify", []string{"Sec-Fetch-Site", "same-site"}},
		{"/ui/health/verify", []string{"Origin", "https://evil.example"}},
	} {
		res, body := u.request("POST", tc.path, url.Values{"key": {h.keys["acme"]}}, tc.hdr...)
		if res.StatusCode != 403 || len(res.Cookies()) != 0 || !strings.Contains(body, "cross-origin request refused") {
			t.Errorf("POST %s with %v: %d, cookies %v\n%s", tc.path, tc.hdr, res.StatusCode, res.Cookies(), body)
		}
		if res.Header.Get("Content-Security-Policy") != wantCSP {
			t.Errorf("the refusal has no CSP")
		}
	}
	if body := u.get(200, "/ui/health"); !strings.Contains(body, "Not run since this server started") {
		t.Error("a refused cross-origin POST ran a verification")
	}
	// From the UI's own pages it works.
	res, _ := u.request("POST", "/ui/health/verify", url.Values{}, "Sec-Fetch-Site", "same-origin", "Origin", h.url)
	if res.StatusCode != 303 {
		t.Errorf("a same-origin POST: %d", res.StatusCode)
	}
}

func testUIScopes(t *testing.T, h *harness) {
	ev := h.appendEvent(login)
	// A key without read sees no events, and is told why.
	for _, name := range []string{"acme-ingest", "acme-export", "acme-verify"} {
		u := signIn(h, name)
		for _, path := range []string{"/ui/", "/ui/events/" + ev.ID, "/ui/health", "/ui/alerts", "/ui/seq/1", "/ui/actions", "/ui/tail?after=0"} {
			body := u.get(403, path)
			if !strings.Contains(body, "lacks the read scope") || strings.Contains(body, "u1@example.com") {
				t.Errorf("%s GET %s:\n%s", name, path, body)
			}
		}
	}
	// read alone: no export, no verification, and the page offers neither.
	u := signIn(h, "acme-read")
	body := u.get(200, "/ui/")
	if strings.Contains(body, "/ui/export") {
		t.Error("a key without export is offered an export")
	}
	if body := u.get(200, "/ui/events/"+ev.ID); strings.Contains(body, `id="verify"`) || !strings.Contains(body, "needs a key with the verify scope") {
		t.Error("a key without verify is offered verification")
	}
	if body := u.get(200, "/ui/health"); strings.Contains(body, `action="/ui/health/verify"`) {
		t.Error("a key without verify is offered a full verification")
	}
	u.get(403, "/ui/export?format=csv")
	u.get(403, "/ui/events/"+ev.ID+"/verify")
	if res, _ := u.request("POST", "/ui/health/verify", url.Values{}); res.StatusCode != 403 {
		t.Errorf("POST /ui/health/verify without verify: %d", res.StatusCode)
	}
	// With them, they are offered.
	u = signIn(h, "acme")
	if body := u.get(200, "/ui/"); !strings.Contains(body, "/ui/export?format=csv") || !strings.Contains(body, "/ui/export?format=ndjson") {
		t.Error("a key with export is offered no export")
	}
	if body := u.get(200, "/ui/events/"+ev.ID); !strings.Contains(body, `id="verify"`) {
		t.Error("a key with verify is offered no verification")
	}
	// Another tenant's key sees none of acme's events.
	g := signIn(h, "globex")
	g.get(404, "/ui/events/"+ev.ID)
	if body := g.get(200, "/ui/"); strings.Contains(body, ev.ID) {
		t.Error("globex sees acme's events")
	}
}

func testUITimeline(t *testing.T, h *harness) {
	for i := range 55 {
		h.appendEvent(loginOf(fmt.Sprintf("u-%d", i%3)))
	}
	h.appendEvent(`{"action":"user_login_attempted","actor":{"type":"user","id":"u-9"},"correlation_id":"c-9","context":{"email":"u9@example.com","method":"password"}}`)
	h.appendEvent(`{"action":"user_login_failed","actor":{"type":"user","id":"u-9"},"correlation_id":"c-9","context":{"email":"u9@example.com","reason":"invalid_password","attempts":1}}`)
	u := signIn(h, "acme") // seq 58: the record of the sign-in
	rows := func(body string) int { return strings.Count(body, `data-label="Seq"`) }

	// Newest first, a page of 50, then the rest.
	body := u.get(200, "/ui/")
	if rows(body) != 50 || strings.Index(body, ">58<") > strings.Index(body, ">57<") {
		t.Errorf("first page: %d rows, newest first?", rows(body))
	}
	next := regexp.MustCompile(`href="(/ui/\?cursor=[^"]+)"[^>]*>Older`).FindStringSubmatch(body)
	if next == nil {
		t.Fatal("no link to the older page")
	}
	if body := u.get(200, strings.ReplaceAll(next[1], "&amp;", "&")); rows(body) != 8 || !strings.Contains(body, "Newest") {
		t.Errorf("second page: %d rows", rows(body))
	}
	// Filters: actor, several actions, category, outcome, time range.
	if body := u.get(200, "/ui/?actor=u-1"); rows(body) != 18 {
		t.Errorf("actor u-1: %d rows", rows(body))
	}
	if body := u.get(200, "/ui/?action=user_login_attempted,+user_login_failed"); rows(body) != 2 {
		t.Errorf("two actions: %d rows", rows(body))
	}
	if body := u.get(200, "/ui/?category=authentication&outcome=failure"); rows(body) != 1 {
		t.Errorf("category and outcome: %d rows", rows(body))
	}
	if body := u.get(200, "/ui/?until=2000-01-01T00:00"); rows(body) != 0 || !strings.Contains(body, "No events match these filters") {
		t.Errorf("until 2000: %d rows", rows(body))
	}
	if body := u.get(200, "/ui/?since=2000-01-01T00:00&actor=u-9"); rows(body) != 2 || !strings.Contains(body, `value="2000-01-01T00:00"`) {
		t.Errorf("since 2000: %d rows", rows(body))
	}
	if body := u.get(400, "/ui/?since=yesterday"); !strings.Contains(body, "not an RFC 3339 time") {
		t.Errorf("a bad time is not named:\n%s", body)
	}
	// An action no one has is named, with the nearest; an alias is
	// searched by the action's name.
	if body := u.get(400, "/ui/?action=user_login_faild"); !strings.Contains(body, "nearest: user_login_failed") {
		t.Errorf("an unknown action is not named:\n%s", body)
	}
	if body := u.get(200, "/ui/?action=LOGIN_FAILED"); rows(body) != 1 {
		t.Errorf("the alias LOGIN_FAILED: %d rows", rows(body))
	}
	if body := u.get(200, "/ui/?open_attempts=true"); rows(body) != 0 {
		t.Errorf("open attempts: %d rows", rows(body))
	}
	// The correlated attempt and outcome link to each other.
	var failed *trail.Event
	for _, ev := range h.events("acme") {
		if ev.Action == "user_login_failed" {
			failed = ev
		}
	}
	body = u.get(200, "/ui/events/"+failed.ID)
	if !strings.Contains(body, "user_login_attempted</a>") || !strings.Contains(body, "(this one)") || !strings.Contains(body, "c-9") {
		t.Errorf("the event page does not list its correlated attempt:\n%s", body)
	}
	// The catalog browser.
	body = u.get(200, "/ui/actions?category=authentication&q=failed")
	if !strings.Contains(body, `id="action-user_login_failed"`) || strings.Contains(body, `id="action-user_login_success"`) {
		t.Error("the catalog filter")
	}
}

func testUIReadsRecorded(t *testing.T, h *harness) {
	ev := h.appendEvent(login)
	u := signIn(h, "acme")
	before := len(h.reads())
	u.get(200, "/ui/?actor=u-1")
	u.get(200, "/ui/events/"+ev.ID)
	u.get(200, "/ui/events/"+ev.ID+"/verify", "HX-Request", "true")
	u.get(200, "/ui/health")
	u.get(200, "/ui/actions") // the catalog is not audit data: not recorded
	u.get(404, "/ui/nowhere")
	got := h.reads()[before:]
	want := []string{"audit_events ui_timeline", "audit_event ui_event", "audit_proof ui_verify", "audit_events ui_health"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("reads recorded: %q, want %q", got, want)
	}
	evs := h.events("acme")
	last := evs[len(evs)-1]
	if last.Actor.Name != "acme" || last.Request.Path != "/ui/health" || last.Request.RequestID == "" {
		t.Errorf("the record of a page: %+v", last)
	}
	// The full page of a verification records the event read and the proof.
	u.get(200, "/ui/events/"+ev.ID+"/verify")
	if got := h.reads(); strings.Join(got[len(got)-2:], "|") != "audit_event ui_event|audit_proof ui_verify" {
		t.Errorf("a verification page records %q", got[len(got)-2:])
	}
}

// The viewer's own reads (every page opened records one) are folded in
// the timeline into one line per run, "and N reads by you", linking to the
// page with them shown one by one (?reads=show, a toggle the page always
// offers and its links keep); another credential's reads are events like
// any other; and every read stays in the log.
func testUIOwnReads(t *testing.T, h *harness) {
	for i := range 3 {
		h.appendEvent(loginOf(fmt.Sprintf("u-%d", i))) // seqs 1-3
	}
	u := signIn(h, "acme") // its session's start is seq 4
	for range 3 {
		u.get(200, "/ui/") // records seqs 5-7
	}
	signIn(h, "acme-read").get(200, "/ui/") // seqs 8 (its sign-in) and 9, by another key
	rows := func(body string) int { return strings.Count(body, `data-label="Seq"`) }

	body := u.get(200, "/ui/") // shows 1-9, records 10
	if n := rows(body); n != 6 {
		t.Errorf("%d event rows, want the 3 logins, the 2 sign-ins and the other key's read", n)
	}
	fold := regexp.MustCompile(`and 3 reads by you <span class="muted">\(data_viewed: still in the log\)</span> <a href="([^"]+)">show them</a></td>\s*<td class="num" data-label="Seqs">5–7</td>`).FindStringSubmatch(body)
	if fold == nil {
		t.Fatalf("no folded line for seqs 5-7:\n%s", body)
	}
	if strings.Count(body, "reads by you") != 1 || !strings.Contains(body, "your own reads folded") {
		t.Errorf("want one fold and the toggle to show them:\n%s", body)
	}
	// The fold's link shows them one by one, and the page's links keep
	// showing them.
	shown := u.get(200, strings.ReplaceAll(fold[1], "&amp;", "&"))
	if n := rows(shown); n != 10 || strings.Contains(shown, "reads by you") || !strings.Contains(shown, "fold them") {
		t.Errorf("shown one by one: %d rows, want 10:\n%s", n, shown)
	}
	if !regexp.MustCompile(`hx-get="/ui/tail\?after=10&amp;reads=show"`).MatchString(shown) || !strings.Contains(shown, `<input type="hidden" name="reads" value="show">`) {
		t.Errorf("the tail and the filter form do not keep showing the reads:\n%s", shown)
	}
	// A tail poll folds the viewer's new reads too (10 and 11: the pages
	// just opened).
	if tail := u.get(200, "/ui/tail?after=9", "HX-Request", "true"); !strings.Contains(tail, "2 reads by you") || rows(tail) != 0 {
		t.Errorf("the tail's own reads are not folded:\n%s", tail)
	}
	// Folded, not gone: every read is in the log (5-7, 9-11; a tail poll
	// that found only echoes of the UI's reads records none).
	if got := len(h.reads()); got != 6 {
		t.Errorf("%d reads recorded, want 6", got)
	}
}

func testUITail(t *testing.T, h *harness) {
	h.appendEvent(login)
	u := signIn(h, "acme")
	evs := h.events("acme")
	last := evs[len(evs)-1] // the record of the sign-in
	page := u.get(200, "/ui/")
	m := regexp.MustCompile(`hx-get="(/ui/tail\?after=\d+)"`).FindStringSubmatch(page)
	if m == nil || m[1] != fmt.Sprintf("/ui/tail?after=%d", last.Seq) {
		t.Fatalf("the timeline has no tail poller after seq %d: %v", last.Seq, m)
	}
	poll := func(path string) (string, string) {
		t.Helper()
		body := u.get(200, path, "HX-Request", "true")
		m := regexp.MustCompile(`hx-get="(/ui/tail\?[^"]+)"`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("the tail answer has no poller:\n%s", body)
		}
		return body, strings.ReplaceAll(m[1], "&amp;", "&")
	}
	n := len(h.events("acme"))
	// The page's own record is an echo: shown, not recorded again.
	body, next := poll(m[1])
	if got := len(h.events("acme")); got != n || !strings.Contains(body, "data_viewed") {
		t.Errorf("a poll that found only the page's own record: %d events, was %d\n%s", got, n, body)
	}
	// Nothing new: nothing recorded, however often it asks.
	for range 3 {
		body, next = poll(next)
		if got := len(h.events("acme")); got != n || strings.Contains(body, "<tr") {
			t.Fatalf("an empty poll: %d events, was %d\n%s", got, n, body)
		}
	}
	// A new event arrives: shown on top, and the read recorded.
	h.appendEvent(loginOf("u-new"))
	body, next = poll(next)
	if !strings.Contains(body, "u-new") || !strings.Contains(body, `hx-swap-oob="afterbegin:#rows"`) {
		t.Errorf("the poll does not show the new event:\n%s", body)
	}
	if got := h.reads(); got[len(got)-1] != "audit_events ui_live_tail" {
		t.Errorf("the poll that showed an event was not recorded: %q", got)
	}
	// ... whose record does not start a loop of records.
	n = len(h.events("acme"))
	for range 3 {
		_, next = poll(next)
	}
	if got := len(h.events("acme")); got != n {
		t.Errorf("polls after a recorded one added %d events", got-n)
	}
	// Filters hold in the tail too.
	h.appendEvent(loginOf("u-other"))
	if body := u.get(200, "/ui/tail?after=0&actor=u-new", "HX-Request", "true"); strings.Contains(body, "u-other") || !strings.Contains(body, "u-new") {
		t.Errorf("a filtered tail:\n%s", body)
	}
}

func testUIVerifyHealth(t *testing.T, h *harness) {
	ev := h.appendEvent(login)
	for range 3 {
		h.appendEvent(`{"action":"user_login_failed","actor":{"type":"user","id":"u-2"},"context":{"email":"u2@example.com","reason":"invalid_password","attempts":2}}`)
	}
	u := signIn(h, "acme")
	frag := u.get(200, "/ui/events/"+ev.ID+"/verify", "HX-Request", "true")
	if strings.Contains(frag, "<html") || !strings.Contains(frag, "✓ Verified") || strings.Contains(frag, "✗") {
		t.Errorf("the verification fragment:\n%s", frag)
	}
	for _, want := range []string{"The signature by key", "Leaf hash", "Inclusion proof", "Hashing the leaf up the proof gives the signed root", "Tree size"} {
		if !strings.Contains(frag, want) {
			t.Errorf("the verification does not show %q", want)
		}
	}
	page := u.get(200, "/ui/events/"+ev.ID+"/verify")
	if !strings.Contains(page, "<html") || !strings.Contains(page, "✓ Verified") || !strings.Contains(page, "u1@example.com") {
		t.Error("the verification without JavaScript is not the event page with the proof")
	}

	body := u.get(200, "/ui/health")
	if strings.Count(body, `<g class="slot">`) != 24 || !strings.Contains(body, "3 in total") || !strings.Contains(body, "failed logins") {
		t.Errorf("the chart of failed logins:\n%s", body)
	}
	if !strings.Contains(body, "✓ Signature verifies") || !strings.Contains(body, "Not run since this server started") {
		t.Errorf("the health page:\n%s", body)
	}
	res, _ := u.request("POST", "/ui/health/verify", url.Values{})
	if res.StatusCode != 303 || res.Header.Get("Location") != "/ui/health#verification" {
		t.Fatalf("POST /ui/health/verify: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if body := u.get(200, "/ui/health"); !strings.Contains(body, "✓ Intact") || !strings.Contains(body, "acme (") ||
		!strings.Contains(body, "nothing outside the database vouches for this log") {
		t.Errorf("the last verification is not shown, with what nothing outside the database vouches for:\n%s", body)
	}
	// It is the tenant's: another tenant's health page does not show it.
	if body := signIn(h, "globex").get(200, "/ui/health"); !strings.Contains(body, "Not run since this server started") {
		t.Error("globex sees acme's verification")
	}
}

func testUIExport(t *testing.T, h *harness) {
	for i := range 3 {
		h.appendEvent(loginOf(fmt.Sprintf("u-%d", i)))
	}
	u := signIn(h, "acme")
	res, body := u.request("GET", "/ui/export?format=csv&actor=u-1&since=2000-01-01T00:00", nil)
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/csv") ||
		!strings.HasPrefix(res.Header.Get("Content-Disposition"), "attachment") || !strings.HasPrefix(body, "seq,id,recorded_at") {
		t.Fatalf("CSV export: %d %s\n%s", res.StatusCode, res.Header, body)
	}
	if strings.Count(body, "\n") != 2 || !strings.Contains(body, "u-1") {
		t.Errorf("the CSV export of u-1's events:\n%s", body)
	}
	// The three logins, and the record of the sign-in.
	res, body = u.request("GET", "/ui/export?format=ndjson&action=user_login_success", nil)
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/x-ndjson") || strings.Count(body, "\n") != 4 {
		t.Errorf("NDJSON export: %d\n%s", res.StatusCode, body)
	}
	var attempted, done int
	for _, ev := range h.events("acme") {
		switch ev.Action {
		case "data_export_attempted":
			attempted++
			if ev.Request.Path != "/ui/export" {
				t.Errorf("the export's record: %+v", ev)
			}
		case "data_exported":
			done++
			if ev.Context["export_reason"] != "ui_download" {
				t.Errorf("the export's record: %+v", ev.Context)
			}
		}
	}
	if attempted != 2 || done != 2 {
		t.Errorf("%d exports attempted and %d done on record, want 2 and 2", attempted, done)
	}
	// A bad filter is an error page, and no export is recorded.
	if body := u.get(400, "/ui/export?format=csv&until=tomorrow"); !strings.Contains(body, "<html") || !strings.Contains(body, "until") {
		t.Errorf("a bad export filter:\n%s", body)
	}
}

// The alerts page lists the tenant's alerts newest first, each with its
// rule, level, window, group and links to its evidence events, and the
// status of the rule sets; it is a recorded read, escapes what events
// put in an alert (the group's values are a caller's), and shows another
// tenant nothing.
func testUIAlerts(t *testing.T, h *harness) {
	h.runDetections()
	email := `<script>alert(1)</script>@example.com`
	for range 10 {
		h.appendEvent(strings.Replace(failedLogin("EMAIL"), "EMAIL", strings.ReplaceAll(email, `"`, `\"`), 1))
	}
	eventually(t, "the brute force alert", func() bool {
		p, err := h.store.Query(context.Background(), trail.Query{Tenant: "acme", Actions: []string{"alert_raised"}})
		return err == nil && len(p.Events) == 1
	})
	u := signIn(h, "acme-read")
	body := u.get(200, "/ui/alerts")
	for _, want := range []string{
		`aria-current="page">Alerts</a>`,
		"Brute force against an account", `<span class="sev sev-high">high</span>`,
		"<code>context.email=&lt;script&gt;alert(1)&lt;/script&gt;@example.com</code>",
		`10 events:`, `<a href="/ui/seq/1" class="seq">1</a>`, `<a href="/ui/seq/10" class="seq">10</a>`,
		"2026-", // the window's times
		"<td data-label=\"Set\">builtin</td>",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the alerts page lacks %s\n%s", want, body)
		}
	}
	if strings.Contains(body, "<script>alert(1)") {
		t.Error("the alerts page carries the event's markup unescaped")
	}
	res, _ := u.request("GET", "/ui/seq/3", nil)
	third := h.events("acme")[2]
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/ui/events/"+third.ID {
		t.Errorf("GET /ui/seq/3: %d to %s, want the page of event %s", res.StatusCode, res.Header.Get("Location"), third.ID)
	}
	u.get(404, "/ui/seq/999")
	u.get(400, "/ui/seq/x")
	if !slices.Contains(h.reads(), "audit_events ui_alerts") {
		t.Errorf("the alerts page was not recorded as a read: %v", h.reads())
	}
	g := signIn(h, "globex")
	if body := g.get(200, "/ui/alerts"); !strings.Contains(body, "No alerts.") || strings.Contains(body, "Brute force") {
		t.Errorf("globex's alerts page:\n%s", body)
	}
	g.get(404, "/ui/seq/9") // acme has it; globex has only the records of its own reads
}
