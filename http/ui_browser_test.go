package http_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	trailhttp "github.com/trailaudit/trail/http"
	"github.com/trailaudit/trail/internal/testenv"
	"github.com/trailaudit/trail/sqlite"
	"github.com/trailaudit/trail/storetest"
)

var updateScreenshots = flag.Bool("update-screenshots", false, "write the UI's screenshots to docs/screenshots (needs Chromium)")

// chromiumPath finds Debian's Chromium. Without it the browser tests
// skip, except under CI=true, where they fail: CI must run them (make test
// installs it).
func chromiumPath(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	testenv.Missing(t, "no Chromium at /usr/bin/chromium or on PATH: install it (apt-get install -y chromium, which make test does) to run the browser tests")
	return ""
}

// newBrowser starts a headless Chromium with an empty profile and exactly
// the flags below, and returns a tab's context, bounded by timeout.
func newBrowser(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(bcancel)
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return bctx
}

// demo is a server over SQLite with a day of events of tenant acme.
type demo struct {
	url   string
	store *sqlite.DB
	key   string // acme: read, export, verify
	dave  *trail.Event
	evil  *trail.Event
}

// clock is a settable clock for the store: zero means the real time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.t.IsZero() {
		return time.Now()
	}
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// newDemo starts the server on 127.0.0.1, port 0, over a SQLite store
// holding a day of plausible events: sign-ins, failed logins with a burst,
// work on entries and files, a login attempt and its failure under one
// correlation id (dave's), marked and redacted events, and a hostile event
// (script in the actor's name and the context).
func newDemo(t *testing.T) *demo {
	t.Helper()
	cat := catalog.Default()
	clk := &clock{}
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "trail.db"),
		sqlite.Options{Validator: validator(cat), Signer: storetest.Signer(), Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	srv, err := trailhttp.New(trailhttp.Config{Store: db, Writer: db, Keys: db, Catalog: cat, Actions: db, Sessions: db,
		Verifier: storetest.Signer().Verifier(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	d := &demo{url: ts.URL, store: db}
	text, k, err := trail.NewAPIKey("acme", "investigator", []trail.KeyScope{trail.ScopeRead, trail.ScopeExport, trail.ScopeVerify}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	d.key = text

	add := func(at time.Time, js string) *trail.Event {
		t.Helper()
		clk.set(at)
		ev, err := trail.ParseEvent([]byte(js))
		if err != nil {
			t.Fatalf("%v: %s", err, js)
		}
		res, err := db.Append(context.Background(), "acme", []*trail.Event{ev}, trail.AppendOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return res.Events[0]
	}
	users := []struct{ id, name, ip string }{
		{"alice", "Alice Moreau", "198.51.100.7"}, {"bob", "Bob Okafor", "203.0.113.24"}, {"carol", "Carol Lindqvist", "192.0.2.41"},
	}
	ua := "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
	failures := []int{0, 1, 0, 0, 2, 0, 1, 0, 0, 0, 3, 1, 0, 0, 0, 2, 9, 14, 6, 1, 0, 1, 0, 2}
	now := time.Now().UTC()
	start := now.Truncate(time.Hour).Add(-23 * time.Hour)
	for h := range 24 {
		hour := start.Add(time.Duration(h) * time.Hour)
		for i := range failures[h] {
			at := hour.Add(time.Duration(2+i*3) * time.Minute)
			if at.After(now.Add(-55 * time.Minute)) {
				break // the last hour is the recent events' below
			}
			add(at, fmt.Sprintf(`{"action":"user_login_failed","actor":{"type":"user","id":"unknown","email":"admin%d@acme.example"},"request":{"ip":"185.220.101.%d","user_agent":"python-requests/2.31"},"scope":{"organization":"acme-corp"},"context":{"reason":"user_not_found","attempts":%d,"email":"admin%d@acme.example"}}`, i%4, 10+i, i+1, i%4))
		}
		u := users[h%3]
		at := hour.Add(41 * time.Minute)
		if at.After(now.Add(-55 * time.Minute)) {
			continue
		}
		add(at, fmt.Sprintf(`{"action":"user_login_success","actor":{"type":"user","id":%q,"name":%q,"roles":["accountant"]},"request":{"ip":%q,"user_agent":%q,"method":"POST","path":"/login"},"scope":{"organization":"acme-corp","workspace":"finance"},"context":{"method":"password","mfa":true,"remember_me":false}}`, u.id, u.name, u.ip, ua))
		switch h % 4 {
		case 0:
			add(at.Add(5*time.Minute), fmt.Sprintf(`{"action":"entry_created","actor":{"type":"user","id":%q,"name":%q},"targets":[{"type":"entry","id":"ent-%d","name":"Invoice %d"}],"scope":{"organization":"acme-corp","workspace":"finance","team":"payables"},"request":{"ip":%q}}`, u.id, u.name, 4100+h, 2200+h, u.ip))
		case 1:
			add(at.Add(6*time.Minute), fmt.Sprintf(`{"action":"file_uploaded","actor":{"type":"user","id":%q,"name":%q},"targets":[{"type":"file","id":"f-%d","name":"statement-%02d.pdf"}],"scope":{"organization":"acme-corp","workspace":"finance"},"context":{"file_name":"statement-%02d.pdf","size":48213}}`, u.id, u.name, 900+h, h, h))
		case 2:
			add(at.Add(7*time.Minute), `{"action":"entry_approved","actor":{"type":"user","id":"carol","name":"Carol Lindqvist","roles":["controller"]},"targets":[{"type":"entry","id":"ent-4100"}],"scope":{"organization":"acme-corp","workspace":"finance","team":"payables"},"reason":"matches PO 7781"}`)
		case 3:
			add(at.Add(8*time.Minute), `{"action":"report_generated","actor":{"type":"service","id":"reporter"},"scope":{"organization":"acme-corp"}}`)
		}
	}
	base := now.Add(-45 * time.Minute)
	add(base, `{"action":"role_assigned","actor":{"type":"user","id":"alice","name":"Alice Moreau"},"targets":[{"type":"user","id":"erin","name":"Erin Park"}],"scope":{"organization":"acme-corp","workspace":"finance"},"context":{"role_name":"approver","assigned_by":"alice"}}`)
	add(base.Add(3*time.Minute), `{"action":"user_password_changed","actor":{"type":"user","id":"bob","name":"Bob Okafor"},"context":{"initiated_by":"user","method":"settings","password":"hunter2"},"scope":{"organization":"acme-corp"}}`)
	add(base.Add(5*time.Minute), `{"action":"access_denied","actor":{"type":"user","id":"erin","name":"Erin Park"},"targets":[{"type":"workspace","id":"payroll"}],"context":{"resource":"workspace:payroll","action":"read"},"scope":{"organization":"acme-corp","workspace":"payroll"}}`)
	add(base.Add(9*time.Minute), `{"action":"user_login_attempted","actor":{"type":"user","id":"dave","name":"Dave Jensen"},"correlation_id":"login-7f3a","request":{"ip":"198.51.100.99","user_agent":"`+ua+`"},"scope":{"organization":"acme-corp"},"context":{"email":"dave@acme.example","method":"password"}}`)
	d.dave = add(base.Add(9*time.Minute+2*time.Second), `{"action":"user_login_failed","actor":{"type":"user","id":"dave","name":"Dave Jensen"},"correlation_id":"login-7f3a","request":{"ip":"198.51.100.99","user_agent":"`+ua+`"},"scope":{"organization":"acme-corp"},"context":{"email":"dave@acme.example","reason":"invalid_password","attempts":1}}`)
	d.evil = add(base.Add(12*time.Minute), hostile)
	add(base.Add(20*time.Minute), `{"action":"data_exported","actor":{"type":"user","id":"alice","name":"Alice Moreau"},"scope":{"organization":"acme-corp","workspace":"finance"},"context":{"export_format":"csv","data_scope":"entries","export_reason":"quarter close","file_size":182734,"result_count":412}}`)
	clk.set(time.Time{})
	return d
}

// do runs chromedp actions, failing the test on error.
func do(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// get runs one chromedp action that returns a value.
func get[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// TestUIBrowser drives the UI in headless Chromium: sign in through the
// form, filter, open an event, verify it, export, watch the live tail, and
// open a hostile event, which must render as inert text.
func TestUIBrowser(t *testing.T) {
	d := newDemo(t)
	ctx := newBrowser(t, 60*time.Second)

	// Listen for JavaScript dialogs (dismissing any, so nothing hangs) and
	// for errors in the console, such as CSP violations.
	var mu sync.Mutex
	var dialogs, problems []string
	err := chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *page.EventJavascriptDialogOpening:
			dialogs = append(dialogs, ev.Message)
			go chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		case *cdplog.EventEntryAdded:
			// Failed loads are the network's (the wrong key's 401 is one);
			// script errors and CSP violations are the others.
			if ev.Entry.Level == cdplog.EntryLevelError && ev.Entry.Source != cdplog.EntrySourceNetwork {
				problems = append(problems, ev.Entry.Text)
			}
		case *runtime.EventExceptionThrown:
			problems = append(problems, ev.ExceptionDetails.Text)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, "viewport", chromedp.EmulateViewport(1280, 800))

	// Signed out, the UI asks for a key; a wrong one is refused; the right
	// one signs in.
	do(t, ctx, "open the UI", chromedp.Navigate(d.url+"/ui/"), chromedp.WaitVisible(chromedp.ID("key")))
	if loc := get(t, ctx, "location", chromedp.Location()); !strings.Contains(loc, "/ui/signin") {
		t.Fatalf("signed out, /ui/ is %s", loc)
	}
	do(t, ctx, "submit a wrong key",
		chromedp.SendKeys(chromedp.ID("key"), "trail_000000000000_"+strings.Repeat("A", 43)),
		chromedp.Submit(chromedp.ID("key")),
		chromedp.WaitVisible(chromedp.CSS(".alert.error")),
	)
	do(t, ctx, "submit the key",
		chromedp.SendKeys(chromedp.ID("key"), d.key),
		chromedp.Submit(chromedp.ID("key")),
		chromedp.WaitVisible(chromedp.CSS("table.events")),
	)
	if loc := get(t, ctx, "location", chromedp.Location()); loc != d.url+"/ui/" {
		t.Errorf("after sign-in: %s", loc)
	}
	cookies, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{d.url + "/ui/"}})
	if err != nil {
		t.Fatal(err)
	}
	var session *network.Cookie
	for _, c := range cookies.Cookies {
		if c.Name == "trail_session" {
			session = c
		}
	}
	if session == nil || !session.HTTPOnly || session.SameSite != network.CookieSameSiteStrict || session.Path != "/ui/" {
		t.Fatalf("the session cookie: %+v", session)
	}
	if get(t, ctx, "document.cookie", chromedp.Evaluate[bool](`document.cookie.includes("trail_session")`)) {
		t.Error("a script can read the session cookie")
	}

	// Filter by actor.
	do(t, ctx, "filter by actor",
		chromedp.SendKeys(chromedp.CSS(`input[name="actor"]`), "dave"),
		chromedp.Submit(chromedp.CSS(`input[name="actor"]`)),
		chromedp.WaitVisible(chromedp.CSS(".filters-head a")),
	)
	loc := get(t, ctx, "location", chromedp.Location())
	actors := get(t, ctx, "actors", chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("#rows td.actor a")).map(a => a.textContent)`))
	if !strings.Contains(loc, "actor=dave") || len(actors) != 2 || actors[0] != "dave" || actors[1] != "dave" {
		t.Fatalf("filtered by dave at %s: actors %q", loc, actors)
	}

	// Open the failure: its attempt is linked, and it verifies.
	do(t, ctx, "open an event",
		chromedp.Click(chromedp.CSS(`#rows tr:first-child td.act a`)),
		chromedp.WaitVisible(chromedp.ID("integrity")),
	)
	loc = get(t, ctx, "location", chromedp.Location())
	correlated := get(t, ctx, "correlated", chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll(".correlated li")).map(li => li.textContent.trim().split(/\s+/)[0])`))
	if !strings.HasSuffix(loc, "/ui/events/"+d.dave.ID) || strings.Join(correlated, ",") != "user_login_attempted,user_login_failed" {
		t.Errorf("the event page at %s lists correlated %q", loc, correlated)
	}
	do(t, ctx, "verify it", chromedp.Click(chromedp.ID("verify")), chromedp.WaitVisible(chromedp.ID("proof-result")))
	verdict := get(t, ctx, "verdict", chromedp.Text(chromedp.CSS("#proof-result .verdict")))
	if loc := get(t, ctx, "location", chromedp.Location()); !strings.HasPrefix(verdict, "✓ Verified") || strings.HasSuffix(loc, "/verify") {
		t.Errorf("verify (by htmx, staying at %s): %q", loc, verdict)
	}

	// Export the filter: the link the page offers gives CSV to the
	// session's cookie.
	do(t, ctx, "back to the filter", chromedp.Navigate(d.url+"/ui/?actor=dave"), chromedp.WaitVisible(chromedp.CSS("table.events")))
	href := get(t, ctx, "the export link", chromedp.AttributeValue(chromedp.CSS(`.exports a[href*="format=csv"]`), "href"))
	req, _ := http.NewRequest("GET", d.url+href.Value, nil)
	req.AddCookie(&http.Cookie{Name: session.Name, Value: session.Value})
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	csv, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/csv") ||
		!strings.HasPrefix(string(csv), "seq,id,recorded_at") || strings.Count(string(csv), "dave") < 2 || strings.Contains(string(csv), "alice") {
		t.Errorf("the CSV export link %s: %d %s\n%s", href.Value, res.StatusCode, res.Header.Get("Content-Type"), csv)
	}

	// The live tail: a new event shows up on the open page by itself.
	do(t, ctx, "open the timeline", chromedp.Navigate(d.url+"/ui/"), chromedp.WaitVisible(chromedp.ID("tail")))
	live := `{"action":"user_login_success","actor":{"type":"user","id":"live-tail-user"},"context":{"method":"password","mfa":true,"remember_me":false}}`
	ev, _ := trail.ParseEvent([]byte(live))
	if _, err := d.store.Append(context.Background(), "acme", []*trail.Event{ev}, trail.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, "wait for the tail", chromedp.WaitVisible(chromedp.Search(`//tbody[@id="rows"]/tr[1]//a[text()="live-tail-user"]`)))

	// The hostile event: its script is text, and nothing runs.
	do(t, ctx, "open the hostile event", chromedp.Navigate(d.url+"/ui/events/"+d.evil.ID), chromedp.WaitVisible(chromedp.ID("integrity")))
	name := get(t, ctx, "actor name", chromedp.Evaluate[string](`Array.from(document.querySelectorAll("dt")).find(dt => dt.textContent === "Name").nextElementSibling.textContent`))
	note := get(t, ctx, "context", chromedp.Text(chromedp.CSS("pre.json")))
	scripts := get(t, ctx, "scripts", chromedp.Evaluate[int](`document.scripts.length`))
	injected := get(t, ctx, "injected", chromedp.Evaluate[int](`document.querySelectorAll("main img, main svg [onload], main b[onmouseover]").length`))
	if name != hostileName || !strings.Contains(note, hostileNote) || scripts != 1 || injected != 0 {
		t.Errorf("the hostile event: name %q, context %q, %d scripts, %d injected elements", name, note, scripts, injected)
	}
	do(t, ctx, "verify the hostile event and list it",
		chromedp.Click(chromedp.ID("verify")),
		chromedp.WaitVisible(chromedp.ID("proof-result")),
		chromedp.Navigate(d.url+"/ui/?actor=mallory"),
		chromedp.WaitVisible(chromedp.CSS("table.events")),
		chromedp.Sleep(300*time.Millisecond),
	)
	if n := get(t, ctx, "hostile rows", chromedp.Evaluate[int](`document.querySelectorAll("#rows td.actor").length`)); n != 1 {
		t.Errorf("the hostile event's row: %d", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(dialogs) > 0 {
		t.Errorf("JavaScript dialogs opened: %q", dialogs)
	}
	if len(problems) > 0 {
		t.Errorf("errors in the browser's console: %q", problems)
	}
}

// TestUIScreenshots renders each page at 1280×800 and at a phone's width
// and checks every capture is a whole page. With -update-screenshots it
// saves them under docs/screenshots (so the files change only when someone
// means them to); without, in a temporary directory.
func TestUIScreenshots(t *testing.T) {
	d := newDemo(t)
	ctx := newBrowser(t, 90*time.Second)
	dir := t.TempDir()
	if *updateScreenshots {
		dir = filepath.Join("..", "docs", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	width, maxWidth := 1200, 1280 // 1280 less a scroll bar; no overflow sideways
	shot := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		do(t, ctx, name, append(actions, chromedp.Sleep(300*time.Millisecond))...)
		b := get(t, ctx, name, chromedp.FullScreenshot(100))
		cfg, err := png.DecodeConfig(bytes.NewReader(b))
		if err != nil || cfg.Width < width || cfg.Width > maxWidth || cfg.Height < 400 {
			t.Fatalf("%s: screenshot %dx%d (%v); want a page %d to %d wide", name, cfg.Width, cfg.Height, err, width, maxWidth)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".png"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	desktop := chromedp.EmulateViewport(1280, 800)
	phone := chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2))

	shot("signin", desktop, chromedp.Navigate(d.url+"/ui/signin"), chromedp.WaitVisible(chromedp.ID("key")))
	do(t, ctx, "sign in",
		chromedp.SendKeys(chromedp.ID("key"), d.key),
		chromedp.Submit(chromedp.ID("key")),
		chromedp.WaitVisible(chromedp.CSS("table.events")))
	shot("events", chromedp.Navigate(d.url+"/ui/"), chromedp.WaitVisible(chromedp.CSS("table.events")))
	width, maxWidth = 700, 780 // 390 at scale 2, less a scroll bar
	shot("events-phone", phone, chromedp.Navigate(d.url+"/ui/"), chromedp.WaitVisible(chromedp.CSS("table.events")))
	shot("event-phone", chromedp.Navigate(d.url+"/ui/events/"+d.dave.ID), chromedp.WaitVisible(chromedp.ID("verify")),
		chromedp.Click(chromedp.ID("verify")), chromedp.WaitVisible(chromedp.ID("proof-result")))
	do(t, ctx, "desktop", desktop)
	width, maxWidth = 1200, 1280
	shot("event", chromedp.Navigate(d.url+"/ui/events/"+d.dave.ID), chromedp.WaitVisible(chromedp.ID("verify")),
		chromedp.Click(chromedp.ID("verify")), chromedp.WaitVisible(chromedp.ID("proof-result")))
	shot("event-hostile", chromedp.Navigate(d.url+"/ui/events/"+d.evil.ID), chromedp.WaitVisible(chromedp.ID("verify")))
	do(t, ctx, "full verification",
		chromedp.Navigate(d.url+"/ui/health"),
		chromedp.WaitVisible(chromedp.CSS("#verification button")),
		chromedp.Click(chromedp.CSS("#verification button")),
		chromedp.WaitVisible(chromedp.CSS("#verification .verdict.ok")))
	shot("health", chromedp.Navigate(d.url+"/ui/health"), chromedp.WaitVisible(chromedp.CSS(".chart")))
	shot("actions", chromedp.Navigate(d.url+"/ui/actions?category=authentication"), chromedp.WaitVisible(chromedp.CSS("table.actions")))
}
