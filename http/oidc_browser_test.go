package http_test

import (
	"context"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	trailhttp "github.com/trailaudit/trail/http"
	"github.com/trailaudit/trail/internal/oidctest"
	"github.com/trailaudit/trail/sqlite"
	"github.com/trailaudit/trail/storetest"
)

// peopleServer is Trail over SQLite, on 127.0.0.1, signing people in with
// a real OpenID Connect provider (package oidctest) that knows alice,
// whom the people file maps to acme, and eve, whom it maps nowhere.
type peopleServer struct {
	url    string
	store  *sqlite.DB
	issuer string
}

func newPeopleServer(t *testing.T) *peopleServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	op := oidctest.Start(t, []oidctest.Person{
		{ID: "u-alice", Username: "alice", Email: "alice@acme.example"},
		{ID: "u-eve", Username: "eve", Email: "eve@other.example"},
	}, url+"/ui/oidc/callback")
	people, err := trailhttp.ParsePeople(fmt.Sprintf("issuer %s\nclient-id %s\nclient-secret %s\nredirect-url %s/ui/oidc/callback\n"+
		"map email=alice@acme.example tenant=acme scopes=read,export\n", op.Issuer, oidctest.ClientID, oidctest.ClientSecret, url))
	if err != nil {
		t.Fatal(err)
	}
	o, err := trailhttp.NewOIDC(context.Background(), people.OIDC, nil)
	if err != nil {
		t.Fatal(err)
	}
	db := servePeople(t, ln, trailhttp.Config{People: people, OIDC: o})
	return &peopleServer{url: url, store: db, issuer: op.Issuer}
}

// servePeople serves Trail over a new SQLite store on ln, with c's
// People, OIDC and TrustedProxies, and returns the store.
func servePeople(t *testing.T, ln net.Listener, c trailhttp.Config) *sqlite.DB {
	t.Helper()
	cat := catalog.Default()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "trail.db"), sqlite.Options{Validator: validator(cat), Signer: storetest.Signer()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c.Store, c.Writer, c.Keys, c.Catalog, c.Actions, c.Sessions = db, db, db, cat, db, db
	c.Verifier, c.Logger = storetest.Signer().Verifier(), slog.New(slog.DiscardHandler)
	srv, err := trailhttp.New(c)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv.Handler())
	ts.Listener.Close()
	ts.Listener = ln
	ts.Start()
	t.Cleanup(ts.Close)
	return db
}

// signInAtProvider goes from Trail's sign-in page to the provider's login
// form and signs in there as username.
func signInAtProvider(t *testing.T, ctx context.Context, p *peopleServer, username string) {
	t.Helper()
	do(t, ctx, "open the UI", chromedp.Navigate(p.url+"/ui/"), chromedp.WaitVisible(chromedp.ID("oidc")))
	do(t, ctx, "go to the provider", chromedp.Click(chromedp.ID("oidc")), chromedp.WaitVisible(chromedp.ID("username")))
	if loc := get(t, ctx, "location", chromedp.Location()); !strings.HasPrefix(loc, p.issuer) {
		t.Fatalf("the sign-in link led to %s, not the provider %s", loc, p.issuer)
	}
	do(t, ctx, "sign in at the provider",
		chromedp.SendKeys(chromedp.ID("username"), username),
		chromedp.SendKeys(chromedp.ID("password"), oidctest.Password),
		chromedp.Submit(chromedp.ID("password")))
}

// TestUIOIDCBrowser signs people in through a real OpenID Connect
// provider in Chromium, the whole way: Trail's sign-in page, the
// provider's login form, the code's way back (state, PKCE, nonce), and
// the UI as the person, whose sign-in and reads are recorded with them
// as the actor and their session as request.session_id. A person no rule
// maps is refused, saying so.
func TestUIOIDCBrowser(t *testing.T) {
	p := newPeopleServer(t)
	ctx := newBrowser(t, 60*time.Second)

	signInAtProvider(t, ctx, p, "alice")
	do(t, ctx, "the UI as alice", chromedp.WaitVisible(`.keyname`))
	if loc := get(t, ctx, "location", chromedp.Location()); loc != p.url+"/ui/" {
		t.Errorf("signed in, the browser is at %s; want %s/ui/", loc, p.url)
	}
	if who := get(t, ctx, "who", chromedp.Text(`.keyname`)); who != "alice@acme.example" {
		t.Errorf("the header says %q is signed in; want alice@acme.example", who)
	}
	if tenant := get(t, ctx, "tenant", chromedp.Text(`.tenant`)); tenant != "acme" {
		t.Errorf("the header's tenant is %q; want acme", tenant)
	}

	pg, err := p.store.Query(context.Background(), trail.Query{Tenant: "acme", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	alice := trail.Actor{Type: trail.ActorUser, ID: p.issuer + "#u-alice", Name: "alice@acme.example", Email: "alice@acme.example"}
	var login *trail.Event
	reads := 0
	for _, ev := range pg.Events {
		switch ev.Action {
		case catalog.UserLoginSuccess:
			login = ev
		case catalog.DataViewed:
			reads++
			if ev.Actor.Type != alice.Type || ev.Actor.ID != alice.ID || ev.Actor.Email != alice.Email {
				t.Errorf("a read in the UI is recorded with actor %+v; want alice, %+v", ev.Actor, alice)
			}
			if login != nil && ev.Request.SessionID != login.Request.SessionID {
				t.Errorf("a read names session %q; alice's sign-in, %q", ev.Request.SessionID, login.Request.SessionID)
			}
		}
	}
	switch {
	case login == nil:
		t.Fatalf("no user_login_success recorded in acme's log: %d events", len(pg.Events))
	case login.Actor.Type != alice.Type || login.Actor.ID != alice.ID || login.Actor.Name != alice.Name:
		t.Errorf("the sign-in's actor is %+v; want %+v", login.Actor, alice)
	case login.Context["method"] != "oidc" || login.Request.SessionID == "":
		t.Errorf("the sign-in's method %v and session %q; want oidc and a session", login.Context["method"], login.Request.SessionID)
	}
	if reads == 0 {
		t.Error("the timeline alice opened is recorded as no read")
	}

	do(t, ctx, "sign out", chromedp.Click(`.signout button`), chromedp.WaitVisible(chromedp.ID("oidc")))
	signInAtProvider(t, ctx, p, "eve")
	do(t, ctx, "eve is refused", chromedp.WaitVisible(`main`))
	body := get(t, ctx, "refusal", chromedp.Text(`main`))
	if !strings.Contains(body, "you signed in as eve@other.example, but this Trail gives eve@other.example no tenant") {
		t.Errorf("eve, whom no rule maps, sees:\n%s", body)
	}
	if n := get(t, ctx, "cookies", chromedp.Evaluate[int](`document.querySelectorAll('.keyname').length`)); n != 0 {
		t.Error("eve, whom no rule maps, is shown as signed in")
	}
}

// The provider's way back is refused, setting no session, when it is not
// for the sign-in this browser started: no flow cookie, another state, a
// code the provider never gave.
func TestUIOIDCCallbackRefused(t *testing.T) {
	p := newPeopleServer(t)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Get(p.url + "/ui/oidc/login?next=/ui/alerts")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	to, err := url.Parse(res.Header.Get("Location"))
	if err != nil || res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(to.String(), p.issuer) {
		t.Fatalf("login: %d to %q; want a redirect to the provider", res.StatusCode, to)
	}
	q := to.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("state") == "" || q.Get("nonce") == "" {
		t.Errorf("the authorization request lacks PKCE, state or nonce: %v", q)
	}
	var flow *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == "trail_oidc" {
			flow = c
		}
	}
	if flow == nil || !flow.HttpOnly || flow.Path != "/ui/oidc/" {
		t.Fatalf("the flow cookie: %+v", flow)
	}
	for _, tc := range []struct {
		name   string
		cookie bool
		state  string
		want   string
	}{
		{"no flow cookie", false, q.Get("state"), "this sign-in was not started here"},
		{"another state", true, "forged", "not for the sign-in this browser started (state)"},
		{"a code the provider never gave", true, q.Get("state"), "refused the sign-in's code"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", p.url+"/ui/oidc/callback?"+url.Values{"state": {tc.state}, "code": {"made-up"}}.Encode(), nil)
			if tc.cookie {
				req.AddCookie(flow)
			}
			res, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusUnauthorized || !strings.Contains(html.UnescapeString(string(b)), tc.want) {
				t.Errorf("callback: %d, want 401 saying %q:\n%s", res.StatusCode, tc.want, b)
			}
			for _, c := range res.Cookies() {
				if c.Name == "trail_session" && c.Value != "" {
					t.Errorf("a refused callback set a session cookie")
				}
			}
		})
	}
}

// TestUIOAuth2ProxyBrowser signs a person in through a real oauth2-proxy
// in front of Trail, against the same real provider, in Chromium the whole
// way: the proxy sends the browser to the provider's login form, back to
// its callback, and on to Trail's UI with the person's identity in its
// headers, which Trail believes from the proxy's address alone; the
// person's reads are recorded with them as the actor.
func TestUIOAuth2ProxyBrowser(t *testing.T) {
	port := oidctest.FreePort(t)
	proxy := fmt.Sprintf("http://127.0.0.1:%d", port)
	op := oidctest.Start(t, []oidctest.Person{{ID: "u-alice", Username: "alice", Email: "alice@acme.example"}}, proxy+"/oauth2/callback")
	people, err := trailhttp.ParsePeople("proxy-headers\nmap email=alice@acme.example tenant=acme scopes=read\n")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	db := servePeople(t, ln, trailhttp.Config{People: people, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	op.StartOAuth2Proxy(t, port, "http://"+ln.Addr().String()+"/")
	ctx := newBrowser(t, 90*time.Second)

	do(t, ctx, "open the UI through the proxy", chromedp.Navigate(proxy+"/ui/"), chromedp.WaitVisible(chromedp.ID("username")))
	if loc := get(t, ctx, "location", chromedp.Location()); !strings.HasPrefix(loc, op.Issuer) {
		t.Fatalf("the proxy led to %s, not the provider %s", loc, op.Issuer)
	}
	do(t, ctx, "sign in at the provider",
		chromedp.SendKeys(chromedp.ID("username"), "alice"),
		chromedp.SendKeys(chromedp.ID("password"), oidctest.Password),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(`.keyname`))
	if who := get(t, ctx, "who", chromedp.Text(`.keyname`)); who != "alice@acme.example" {
		t.Errorf("the header says %q is signed in; want alice@acme.example", who)
	}
	do(t, ctx, "open the alerts", chromedp.Navigate(proxy+"/ui/alerts"), chromedp.WaitVisible(`.keyname`))

	pg, err := db.Query(context.Background(), trail.Query{Tenant: "acme", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	logins, reads := 0, 0
	for _, ev := range pg.Events {
		if ev.Actor.Type != trail.ActorUser || ev.Actor.Email != "alice@acme.example" || !strings.HasPrefix(ev.Actor.ID, "proxy#") {
			t.Errorf("%s recorded with actor %+v; want alice, through the proxy", ev.Action, ev.Actor)
		}
		switch ev.Action {
		case catalog.UserLoginSuccess:
			logins++
		case catalog.DataViewed:
			reads++
		}
	}
	if logins != 1 || reads < 2 {
		t.Errorf("acme's log has %d sign-ins and %d reads; want alice's one sign-in and her two pages", logins, reads)
	}
}
