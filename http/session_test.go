package http_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	trailhttp "github.com/trailaudit/trail/http"
)

// The UI's sessions live on the server: what a browser holds is a random
// id that signs nobody in anywhere else, and that stops working the moment
// the session ends, wherever it was copied to.
func TestUISessions(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			// clocked is a harness whose server runs on clk.
			clocked := func(t *testing.T, edit ...func(*trailhttp.Config)) (*harness, *clock) {
				clk := &clock{}
				clk.set(time.Now().UTC().Truncate(time.Second))
				return newHarnessWith(t, b.open, func(c *trailhttp.Config, _ backend) {
					c.Now = clk.now
					for _, e := range edit {
						e(c)
					}
				}), clk
			}
			t.Run("SignOutEndsTheSession", func(t *testing.T) {
				h, _ := clocked(t)
				testSignOutEndsSession(t, h)
			})
			t.Run("CookieIsNoAPIKey", func(t *testing.T) {
				h, _ := clocked(t)
				testCookieIsNoAPIKey(t, h)
			})
			t.Run("RevocationEndsSessions", func(t *testing.T) {
				h, clk := clocked(t)
				testRevocationEndsSessions(t, h, clk)
			})
			t.Run("Timeouts", func(t *testing.T) { testSessionTimeouts(t, clocked) })
			t.Run("Recorded", func(t *testing.T) {
				h, _ := clocked(t)
				testSessionsRecorded(t, h)
			})
			t.Run("FailuresRecorded", func(t *testing.T) {
				h, _ := clocked(t)
				testSignInFailuresRecorded(t, h)
			})
			t.Run("FailuresThrottled", func(t *testing.T) {
				h, clk := clocked(t)
				testSignInThrottled(t, h, clk)
			})
		})
	}
	t.Run("NoSessionStore", func(t *testing.T) {
		h := newHarnessWith(t, backends[0].open, func(c *trailhttp.Config, _ backend) { c.Sessions = nil })
		res, body := (&uiSession{h: h}).request("POST", "/ui/signin", url.Values{"key": {h.keys["acme"]}})
		if res.StatusCode != http.StatusForbidden || len(res.Cookies()) != 0 || !strings.Contains(body, "keeps no UI sessions") {
			t.Errorf("sign in with no session store: %d, cookies %v\n%s", res.StatusCode, res.Cookies(), body)
		}
	})
}

// signedOut fails unless the session u holds is refused: sent back to
// sign in, told it ended, its cookie cleared.
func signedOut(t *testing.T, u *uiSession, why string) {
	t.Helper()
	res, _ := u.request("GET", "/ui/", nil)
	if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || !strings.Contains(loc, "why=ended") ||
		len(res.Cookies()) != 1 || res.Cookies()[0].MaxAge >= 0 {
		t.Errorf("%s: GET /ui/ answered %d to %q, cookies %v; want a redirect to sign in again", why, res.StatusCode, loc, res.Cookies())
	}
}

// signedIn fails unless the session u holds opens the timeline.
func signedIn(t *testing.T, u *uiSession, why string) {
	t.Helper()
	if res, body := u.request("GET", "/ui/", nil); res.StatusCode != http.StatusOK {
		t.Errorf("%s: GET /ui/ answered %d, want 200\n%.300s", why, res.StatusCode, body)
	}
}

// A cookie captured before sign-out is refused after it, at once.
func testSignOutEndsSession(t *testing.T, h *harness) {
	u := signIn(h, "acme")
	captured := &uiSession{h: h, cookie: &http.Cookie{Name: u.cookie.Name, Value: u.cookie.Value}}
	signedIn(t, captured, "the copy before sign-out")
	if res, _ := u.request("POST", "/ui/signout", url.Values{}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign out: %d", res.StatusCode)
	}
	signedOut(t, captured, "the copy after sign-out")
	// Signing out again with it does nothing, and fails nothing.
	if res, _ := captured.request("POST", "/ui/signout", url.Values{}); res.StatusCode != http.StatusSeeOther {
		t.Errorf("sign out with an ended session: %d", res.StatusCode)
	}
}

// The session's id is no API key: the API refuses it, as a bearer key, in
// every shape.
func testCookieIsNoAPIKey(t *testing.T, h *harness) {
	u := signIn(h, "acme")
	h.keys["cookie"] = u.cookie.Value
	h.problem(http.StatusUnauthorized, trail.EUNAUTHORIZED, "cookie", "GET", "/v1/events", "", "")
	h.problem(http.StatusUnauthorized, trail.EUNAUTHORIZED, "cookie", "POST", "/v1/events", "application/json", login)
	// Nor is the cookie the key's text (as it once was).
	if strings.Contains(u.cookie.Value, h.keys["acme"][len("trail_")+13:]) || strings.HasPrefix(u.cookie.Value, "trail_") {
		t.Errorf("the cookie %q holds the key", u.cookie.Value)
	}
}

// Revoking a key through this server ends all its sessions at once, and
// says so in the log; revoked elsewhere (trail keys revoke), within the
// key cache's time.
func testRevocationEndsSessions(t *testing.T, h *harness, clk *clock) {
	a, b := signIn(h, "acme"), signIn(h, "acme")
	other := signIn(h, "acme-read")
	h.ok(200, "admin", "DELETE", "/v1/keys/"+keyID(h, "acme"), "", nil)
	signedOut(t, a, "the key's first session after revocation")
	signedOut(t, b, "the key's second session after revocation")
	signedIn(t, other, "another key's session")
	var ended *trail.Event
	for _, ev := range h.events("acme") {
		if ev.Action == "all_sessions_revoked" {
			ended = ev
		}
	}
	if ended == nil || ended.Actor.ID != keyID(h, "admin") || ended.Context["sessions_revoked_count"] != json.Number("2") ||
		ended.Context["key_id"] != keyID(h, "acme") || len(ended.Violations) != 0 {
		t.Errorf("the record of the sessions ended: %+v", ended)
	}

	// Revoked behind the server's back: refused once the cached key is
	// older than the cache's time (5 s).
	c := signIn(h, "acme-read")
	signedIn(t, c, "before the revocation elsewhere")
	if err := h.store.RevokeKey(context.Background(), keyID(h, "acme-read"), time.Now()); err != nil {
		t.Fatal(err)
	}
	clk.set(clk.now().Add(6 * time.Second))
	signedOut(t, c, "after the revocation elsewhere, past the key cache's time")
}

// keyID returns the id of the named key.
func keyID(h *harness, name string) string { return h.keys[name][len("trail_") : len("trail_")+12] }

// A session ends after its idle timeout unused and at its absolute
// timeout however used; both can be set.
func testSessionTimeouts(t *testing.T, clocked func(*testing.T, ...func(*trailhttp.Config)) (*harness, *clock)) {
	t.Run("IdleByDefault", func(t *testing.T) {
		h, clk := clocked(t)
		u := signIn(h, "acme")
		start := clk.now()
		clk.set(start.Add(29 * time.Minute))
		signedIn(t, u, "29 minutes unused")
		clk.set(start.Add(58 * time.Minute))
		signedIn(t, u, "used at 29 minutes, then 29 more unused")
		clk.set(start.Add(88 * time.Minute))
		signedOut(t, u, "30 minutes unused")
	})
	t.Run("AbsoluteByDefault", func(t *testing.T) {
		h, clk := clocked(t)
		u := signIn(h, "acme")
		start := clk.now()
		for at := 20 * time.Minute; at < 12*time.Hour; at += 20 * time.Minute {
			clk.set(start.Add(at))
			signedIn(t, u, "used every 20 minutes, "+at.String()+" in")
			if t.Failed() {
				return
			}
		}
		clk.set(start.Add(12 * time.Hour))
		signedOut(t, u, "12 hours after sign-in, used all along")
	})
	t.Run("Configured", func(t *testing.T) {
		h, clk := clocked(t, func(c *trailhttp.Config) { c.SessionIdle, c.SessionMax = 5*time.Minute, time.Hour })
		u := signIn(h, "acme")
		res, _ := (&uiSession{h: h}).request("POST", "/ui/signin", url.Values{"key": {h.keys["acme"]}})
		if cs := res.Cookies(); len(cs) != 1 || cs[0].MaxAge != 3600 {
			t.Errorf("the cookie of a one-hour session: %v", cs)
		}
		start := clk.now()
		clk.set(start.Add(4 * time.Minute))
		signedIn(t, u, "4 of 5 idle minutes")
		clk.set(start.Add(9*time.Minute + 30*time.Second))
		signedOut(t, u, "5 idle minutes")
		v := signIn(h, "acme")
		for at := 4 * time.Minute; at < time.Hour; at += 4 * time.Minute {
			clk.set(start.Add(9*time.Minute + 30*time.Second + at))
			signedIn(t, v, "used every 4 minutes")
		}
		clk.set(start.Add(9*time.Minute + 30*time.Second + time.Hour))
		signedOut(t, v, "an hour in")
	})
}

// Who looked: a session's start and sign-out are in the key's tenant's
// log with the key as actor, and every read made in it names the session,
// by a reference that is not the cookie.
func testSessionsRecorded(t *testing.T, h *harness) {
	h.appendEvent(login)
	u := signIn(h, "acme", "User-Agent", "Firefox/140", "X-Forwarded-For", "198.51.100.7")
	u.get(200, "/ui/")
	if res, _ := u.request("POST", "/ui/signout", url.Values{}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign out: %d", res.StatusCode)
	}
	var got []string
	var ref string
	for _, ev := range h.events("acme")[1:] {
		got = append(got, ev.Action)
		if ev.Actor.Type != trail.ActorAPIKey || ev.Actor.ID != keyID(h, "acme") || ev.Request.SessionID == "" || len(ev.Violations) != 0 {
			t.Errorf("a record of the session: %+v", ev)
		}
		if ref == "" {
			ref = ev.Request.SessionID
		}
		if ev.Request.SessionID != ref || strings.Contains(u.cookie.Value, ref) {
			t.Errorf("%s names session %q, want %q (not part of the cookie %q)", ev.Action, ev.Request.SessionID, ref, u.cookie.Value)
		}
		if sid, ok := ev.Context["session_id"]; ok && sid != ref {
			t.Errorf("%s: context.session_id %v, want %q", ev.Action, sid, ref)
		}
	}
	if want := "user_login_success data_viewed user_logout"; strings.Join(got, " ") != want {
		t.Fatalf("records %q, want %q", got, want)
	}
	start := h.events("acme")[1]
	if start.Context["method"] != "api_key" || start.Context["idle_timeout_seconds"] != json.Number("1800") ||
		start.Request.IP != "198.51.100.7" || start.Request.UserAgent != "Firefox/140" || start.Request.Path != "/ui/signin" {
		t.Errorf("the record of the sign-in: %+v", start)
	}
	if end := h.events("acme")[3]; end.Context["logout_method"] != "explicit" {
		t.Errorf("the record of the sign-out: %+v", end.Context)
	}
}

// A failed sign-in naming a key that exists is in that key's tenant's
// log (the key as actor, why, how many from the address), never with the
// text given; one naming no key is only logged and counted.
func testSignInFailuresRecorded(t *testing.T, h *harness) {
	anon := &uiSession{h: h}
	wrong := h.keys["acme"][:len(h.keys["acme"])-4] + "AAAA"
	if wrong == h.keys["acme"] {
		wrong = h.keys["acme"][:len(h.keys["acme"])-4] + "BBBB"
	}
	before := len(h.events("acme"))
	for i, text := range []string{wrong, wrong} {
		res, _ := anon.request("POST", "/ui/signin", url.Values{"key": {text}}, "X-Forwarded-For", "198.51.100.7")
		if res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("sign in %d with a wrong secret: %d", i, res.StatusCode)
		}
	}
	evs := h.events("acme")[before:]
	if len(evs) != 2 {
		t.Fatalf("%d records of 2 failed sign-ins", len(evs))
	}
	for i, ev := range evs {
		b, _ := json.Marshal(ev)
		if ev.Action != "user_login_failed" || ev.Actor.Type != trail.ActorAPIKey || ev.Actor.ID != keyID(h, "acme") ||
			ev.Context["reason"] != "wrong_secret" || ev.Context["attempts"] != json.Number([]string{"1", "2"}[i]) ||
			ev.Request.IP != "198.51.100.7" || len(ev.Violations) != 0 {
			t.Errorf("failed sign-in %d recorded as %s", i+1, b)
		}
		if strings.Contains(string(b), wrong[19:]) || strings.Contains(string(b), h.keys["acme"][19:]) {
			t.Errorf("the record holds the secret: %s", b)
		}
	}

	// A revoked key: recorded as such.
	h.ok(200, "admin", "DELETE", "/v1/keys/"+keyID(h, "acme-read"), "", nil)
	anon.request("POST", "/ui/signin", url.Values{"key": {h.keys["acme-read"]}}, "X-Forwarded-For", "198.51.100.8")
	if evs := h.events("acme"); evs[len(evs)-1].Context["reason"] != "revoked_key" {
		t.Errorf("a revoked key's sign-in recorded as %+v", evs[len(evs)-1])
	}

	// No key by that id, or no key at all: no tenant's log, only the
	// server's log and metrics.
	counts := map[string]int{}
	for _, tenant := range []string{"acme", "globex"} {
		counts[tenant] = len(h.events(tenant))
	}
	for _, text := range []string{"trail_000000000000_" + strings.Repeat("A", 43), "hunter2"} {
		if res, _ := anon.request("POST", "/ui/signin", url.Values{"key": {text}}, "X-Forwarded-For", "198.51.100.9"); res.StatusCode != http.StatusUnauthorized {
			t.Errorf("sign in with %q: %d", text, res.StatusCode)
		}
	}
	for tenant, n := range counts {
		if got := len(h.events(tenant)); got != n {
			t.Errorf("a sign-in naming no key wrote %d records in %s's log", got-n, tenant)
		}
	}
	_, _, metrics := h.do("", "GET", "/metrics", "", "")
	if !strings.Contains(string(metrics), `trail_ui_signins_total{result="failure"} 5`) {
		t.Errorf("the failures are not counted:\n%s", grepLines(string(metrics), "trail_ui_signins"))
	}
}

// Five failed sign-ins from one address in 15 minutes make the next wait
// (429, Retry-After, saying so on the page), even with a good key; other
// addresses are not held up, nor is an address whose failures are older
// than the window. An IPv6 client counts as its /64.
func testSignInThrottled(t *testing.T, h *harness, clk *clock) {
	anon := &uiSession{h: h}
	start := clk.now()
	signinFrom := func(addr, text string) (*http.Response, string) {
		return anon.request("POST", "/ui/signin", url.Values{"key": {text}}, "X-Forwarded-For", addr)
	}
	for i := range 5 {
		clk.set(start.Add(time.Duration(i) * time.Minute))
		if res, _ := signinFrom("198.51.100.7", "hunter2"); res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d, want 401", i+1, res.StatusCode)
		}
	}
	recorded := len(h.events("acme"))
	clk.set(start.Add(5 * time.Minute))
	res, body := signinFrom("198.51.100.7", h.keys["acme"])
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") != "600" || len(res.Cookies()) != 0 ||
		!strings.Contains(body, "Too many failed sign-ins from your address (5 in 15 minutes): try again in 10 minutes.") || !strings.Contains(body, `name="key"`) {
		t.Errorf("the sixth sign-in from the address: %d, Retry-After %q, cookies %v\n%s", res.StatusCode, res.Header.Get("Retry-After"), res.Cookies(), body)
	}
	if got := len(h.events("acme")); got != recorded {
		t.Errorf("a throttled sign-in wrote %d records", got-recorded)
	}
	if res, _ := signinFrom("203.0.113.9", h.keys["acme"]); res.StatusCode != http.StatusSeeOther {
		t.Errorf("another address: %d, want a session", res.StatusCode)
	}
	// The first failure leaves the window at 15 minutes: one try again.
	clk.set(start.Add(15 * time.Minute))
	if res, _ := signinFrom("198.51.100.7", h.keys["acme"]); res.StatusCode != http.StatusSeeOther {
		t.Errorf("once the first failure is 15 minutes old: %d, want a session", res.StatusCode)
	}

	for i := range 5 {
		signinFrom("2001:db8:1:2::7", "hunter2"+strings.Repeat("x", i))
	}
	if res, _ := signinFrom("2001:db8:1:2:abcd::1", h.keys["acme"]); res.StatusCode != http.StatusTooManyRequests {
		t.Errorf("another address of the failing /64: %d, want 429", res.StatusCode)
	}
	if res, _ := signinFrom("2001:db8:1:3::7", h.keys["acme"]); res.StatusCode != http.StatusSeeOther {
		t.Errorf("another /64: %d, want a session", res.StatusCode)
	}
	_, _, metrics := h.do("", "GET", "/metrics", "", "")
	if !strings.Contains(string(metrics), `trail_ui_signins_total{result="throttled"} 2`) {
		t.Errorf("the throttled sign-ins are not counted:\n%s", grepLines(string(metrics), "trail_ui_signins"))
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
