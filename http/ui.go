package http

// The web UI for investigators and auditors, under /ui/: server-rendered
// html/template pages over the same store, keys, scopes and audited reads
// as the API, with htmx (vendored in ui/static, embedded in the binary) for
// the two things that are better live: the event list's tail and an event's
// verification. Every page reads without JavaScript.
//
// Sign-in takes an API key, checks it as the API would, and opens a
// server-side session (session.go) whose random id goes in an HttpOnly,
// SameSite=Strict cookie (Secure over TLS) scoped to /ui/; the key's text
// is kept nowhere. Each request finds the session and checks its key, so a
// revoked key stops working in the UI as it does in the API, and the key's
// tenant and scopes bound everything shown.
//
// Security: every UI response carries a strict Content-Security-Policy (no
// inline script or style anywhere, so injected markup could not run even if
// escaping failed), nosniff, no-referrer, no framing and no-store; the
// state-changing routes (sign-in, sign-out, a full verification) sit behind
// http.CrossOriginProtection. Event fields are attacker-controlled input:
// they only ever reach the page through html/template's contextual
// escaping, never as template.HTML.
//
// The /ui/ routes are kept out of Server.Routes, which lists the API that
// openapi.json describes.

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/tlog"
)

//go:embed ui/templates/*.html ui/static/*
var uiFiles embed.FS

const (
	// uiCookie holds the session's id (trail.NewSessionID).
	uiCookie = "trail_session"
	// uiCSP is the Content-Security-Policy of every UI response.
	uiCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
	// uiHTMX is the vendored htmx: version 2.0.11 from the npm package
	// htmx.org@2.0.11 (dist/htmx.min.js, Zero-Clause BSD, license header
	// kept at the top of the file).
	uiHTMX = "htmx-2.0.11.min.js"
	// uiPageSize is the number of events on one page of the timeline.
	uiPageSize = 50
	// uiTailEvery is how often an open timeline asks for newer events.
	uiTailEvery = "5s"
)

// ui is the web UI's state on a Server.
type ui struct {
	pages  map[string]*template.Template // by page name; each holds the layout and the partials
	static map[string]string             // static file name → its content hash (the ?v= of its URL)
	mux    *http.ServeMux

	mu       sync.Mutex
	verified map[string]*fullVerification // tenant → the last full verification run from the UI
	running  map[string]bool              // tenants whose full verification is running
}

// fullVerification is the outcome of the last full verification of a
// tenant's log (POST /ui/health/verify), kept in memory.
type fullVerification struct {
	At     time.Time
	Took   time.Duration
	By     string // the key that ran it: name (id)
	Report *tlog.Report
}

// uiPages are the page templates, each parsed with layout.html and
// partials.html.
var uiPages = []string{"signin", "events", "event", "health", "alerts", "actions", "sinks", "error"}

func newUI() *ui {
	u := &ui{pages: map[string]*template.Template{}, static: map[string]string{}, mux: http.NewServeMux(),
		verified: map[string]*fullVerification{}, running: map[string]bool{}}
	files, err := fs.Glob(uiFiles, "ui/static/*")
	if err != nil {
		panic(err)
	}
	for _, f := range files {
		b, err := uiFiles.ReadFile(f)
		if err != nil {
			panic(err)
		}
		h := sha256.Sum256(b)
		u.static[path.Base(f)] = hex.EncodeToString(h[:6])
	}
	base := template.Must(template.New("").Funcs(u.funcs()).ParseFS(uiFiles, "ui/templates/layout.html", "ui/templates/partials.html"))
	for _, p := range uiPages {
		u.pages[p] = template.Must(template.Must(base.Clone()).ParseFS(uiFiles, "ui/templates/"+p+".html"))
	}
	return u
}

// uiRoutes builds the UI and returns its handler, for /ui/.
func (s *Server) uiRoutes() http.Handler {
	s.ui = newUI()
	m := s.ui.mux
	m.HandleFunc("GET /ui/static/{name}", s.uiStatic)
	m.HandleFunc("GET /ui/signin", s.uiSignin)
	m.HandleFunc("POST /ui/signin", s.uiSigninPost)
	m.HandleFunc("POST /ui/signout", s.uiSignout)
	m.HandleFunc("GET /ui/oidc/login", s.uiOIDCLogin)
	m.HandleFunc("GET /ui/oidc/callback", s.uiOIDCCallback)
	m.Handle("GET /ui/{$}", s.uiPage(s.uiEvents, trail.ScopeRead))
	m.Handle("GET /ui/tail", s.uiPage(s.uiTail, trail.ScopeRead))
	m.Handle("GET /ui/events/{id}", s.uiPage(s.uiEvent, trail.ScopeRead))
	m.Handle("GET /ui/events/{id}/verify", s.uiPage(s.uiVerify, trail.ScopeRead, trail.ScopeVerify))
	m.Handle("GET /ui/health", s.uiPage(s.uiHealth, trail.ScopeRead))
	m.Handle("POST /ui/health/verify", s.uiPage(s.uiRunVerify, trail.ScopeVerify))
	m.Handle("GET /ui/alerts", s.uiPage(s.uiAlerts, trail.ScopeRead))
	m.Handle("GET /ui/seq/{seq}", s.uiPage(s.uiSeq, trail.ScopeRead))
	m.Handle("GET /ui/actions", s.uiPage(s.uiActions, trail.ScopeRead))
	m.Handle("GET /ui/sinks", s.uiPage(s.uiSinks, trail.ScopeAdmin))
	m.Handle("GET /ui/export", s.uiPage(s.uiExport, trail.ScopeExport))
	m.Handle("/ui/", s.uiPage(func(w http.ResponseWriter, r *http.Request, k *trail.APIKey) error {
		return trail.Errorf(trail.ENOTFOUND, "there is no page %s", r.URL.Path)
	}))

	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.uiFail(w, r, nil, trail.Errorf(trail.EFORBIDDEN, "cross-origin request refused: this form can only be sent from Trail's own pages"))
	}))
	h := cop.Handler(m)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hdr := w.Header()
		hdr.Set("Content-Security-Policy", uiCSP)
		hdr.Set("X-Content-Type-Options", "nosniff")
		hdr.Set("Referrer-Policy", "no-referrer")
		hdr.Set("X-Frame-Options", "DENY")
		hdr.Set("Cross-Origin-Opener-Policy", "same-origin")
		hdr.Set("Cross-Origin-Resource-Policy", "same-origin")
		hdr.Set("Cache-Control", "no-store") // audit data stays out of caches; static files override it
		hdr.Set("Vary", "Cookie, HX-Request")
		h.ServeHTTP(w, r)
	})
}

// uiHandler is a UI page's handler: it writes a page or returns an error,
// which becomes an error page.
type uiHandler func(w http.ResponseWriter, r *http.Request, k *trail.APIKey) error

// uiPage wraps a page that needs a signed-in key with scopes: request id,
// the session's key (or a redirect to sign in), the scopes (a 403 page),
// the key's rate limit, metrics, and errors as pages.
func (s *Server) uiPage(h uiHandler, scopes ...trail.KeyScope) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t0 := time.Now()
		r = r.WithContext(withRequestID(r, w, t0))
		sess, k, err := s.uiSession(r)
		if p := s.proxyPerson(r); p != nil && (err != nil || sess.Subject != p.subject) {
			// An identity-aware proxy names someone this session is not
			// (or there is none): they get a session of their own, used
			// at once (a redirect might not bring its cookie back).
			var text string
			if text, sess, err = s.personSession(r, p, "proxy"); err != nil {
				s.uiFail(w, r, nil, err)
				return
			}
			http.SetCookie(w, s.uiSessionCookie(r, text))
			k = personKey(sess)
		}
		if err != nil {
			s.uiSignedOut(w, r, err)
			return
		}
		r = withSession(r, sess)
		err = func() error {
			for _, sc := range scopes {
				if !k.Has(sc) {
					return trail.Errorf(trail.EFORBIDDEN, "this key lacks the %s scope, which this page needs", sc)
				}
			}
			if wait, ok := s.limiter.allow(k.ID, s.c.Now()); !ok {
				w.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
				return &apiError{code: eTooMany, msg: "this key is over its rate limit; try again in a moment"}
			}
			return h(w, r, k)
		}()
		if err != nil {
			s.uiFail(w, r, k, err)
		}
		s.metrics.requests.WithLabelValues("UI " + r.Pattern).Observe(time.Since(t0).Seconds())
	})
}

// authenticateText authenticates a key given as text (from the sign-in
// form) through authenticate. The UI shows one
// tenant's log, so it takes tenants' keys alone: an operator credential
// acts on no tenant's data.
func (s *Server) authenticateText(r *http.Request, text string) (*trail.APIKey, error) {
	req := (&http.Request{Header: http.Header{"Authorization": {"Bearer " + text}}}).WithContext(r.Context())
	k, err := s.authenticate(req)
	if err == nil && k.Operator() {
		return nil, trail.Errorf(trail.EUNAUTHORIZED, "an operator credential manages tenants and shows no tenant's log: sign in with a key of the tenant")
	}
	return k, err
}

// uiSignedOut answers a request with no valid session: a redirect to the
// sign-in page (an htmx request is told to go there with HX-Redirect). A
// cookie whose session has ended (signed out, timed out, its key revoked)
// is cleared.
func (s *Server) uiSignedOut(w http.ResponseWriter, r *http.Request, err error) {
	why := ""
	if c, cerr := r.Cookie(uiCookie); cerr == nil && c.Value != "" {
		if trail.ErrorCode(err) != trail.EUNAUTHORIZED {
			// The session could not be checked (the store failed): say
			// so, and keep the cookie for when the store answers again.
			s.uiFail(w, r, nil, err)
			return
		}
		http.SetCookie(w, s.uiSessionCookie(r, ""))
		why = "ended"
	}
	v := url.Values{}
	if r.Method == http.MethodGet && r.Header.Get("HX-Request") == "" {
		v.Set("next", r.URL.RequestURI())
	}
	if why != "" {
		v.Set("why", why)
	}
	to := "/ui/signin"
	if len(v) > 0 {
		to += "?" + v.Encode()
	}
	if r.Header.Get("HX-Request") != "" {
		w.Header().Set("HX-Redirect", to)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// uiSessionCookie returns the session cookie holding the session id
// text; empty text clears it. The browser keeps it until the session's
// absolute timeout at most; the server decides whether it is still good.
func (s *Server) uiSessionCookie(r *http.Request, text string) *http.Cookie {
	c := &http.Cookie{Name: uiCookie, Value: text, Path: "/ui/", HttpOnly: true, Secure: s.uiTLS(r),
		SameSite: http.SameSiteStrictMode, MaxAge: int(s.c.SessionMax / time.Second)}
	if text == "" {
		c.MaxAge = -1
	}
	return c
}

// uiTLS reports whether the browser reached the server over TLS: the
// connection is TLS, or a trusted proxy says it terminated TLS.
func (s *Server) uiTLS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	return err == nil && s.trusted(ap.Addr().Unmap()) && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// uiFail answers err as an error page (an htmx request gets a fragment),
// with the status the API would give it. k is nil when no key is known.
func (s *Server) uiFail(w http.ResponseWriter, r *http.Request, k *trail.APIKey, err error) {
	p := s.failed(w, r, err, "UI request failed")
	w.Header().Del("Content-Disposition")
	if r.Header.Get("HX-Request") != "" {
		s.uiFragment(w, p.Status, "problem", p)
		return
	}
	if err := s.uiRender(w, r, p.Status, "error", k, p.Title, p); err != nil {
		s.log.ErrorContext(r.Context(), "rendering an error page", "err", err)
	}
}

// uiView is what every page template gets.
type uiView struct {
	Title string
	Nav   string     // the active section: events, health, alerts, actions
	Key   *uiKeyView // nil when signed out
	Page  any        // the page's own data
	Every string     // how often the timeline polls
	Now   time.Time
}

// uiKeyView is the signed-in key as the header shows it.
type uiKeyView struct {
	ID, Name, Tenant                    string
	Scopes                              []string
	Read, Export, Verify, Ingest, Admin bool
	Person                              bool // a person signed in (ID is their subject), not a key
}

func keyView(k *trail.APIKey) *uiKeyView {
	if k == nil {
		return nil
	}
	v := &uiKeyView{ID: k.ID, Name: k.Name, Tenant: k.Tenant, Read: k.Has(trail.ScopeRead), Export: k.Has(trail.ScopeExport),
		Verify: k.Has(trail.ScopeVerify), Ingest: k.Has(trail.ScopeIngest), Admin: k.Has(trail.ScopeAdmin)}
	for _, sc := range k.Scopes {
		v.Scopes = append(v.Scopes, string(sc))
	}
	return v
}

// uiRender writes a whole page. It renders into a buffer first, so a
// template error becomes an error page rather than half a page.
func (s *Server) uiRender(w http.ResponseWriter, r *http.Request, status int, page string, k *trail.APIKey, title string, data any) error {
	nav := page
	if page == "event" {
		nav = "events"
	}
	var buf bytes.Buffer
	v := uiView{Title: title, Nav: nav, Key: keyView(k), Page: data, Every: uiTailEvery, Now: s.c.Now().UTC()}
	if v.Key != nil {
		v.Key.Person = s.actor(r, k).Type == trail.ActorUser
	}
	if err := s.ui.pages[page].ExecuteTemplate(&buf, "layout", v); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	if err != nil {
		s.log.DebugContext(r.Context(), "writing a UI page", "err", err)
	}
	return nil
}

// uiFragment writes one named partial template: the answer to an htmx
// request.
func (s *Server) uiFragment(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := s.ui.pages["error"].ExecuteTemplate(&buf, name, data); err != nil {
		s.log.Error("rendering a UI fragment", "name", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// uiStatic serves the embedded static files. A URL with the file's
// current hash (as the pages link it) may be cached.
func (s *Server) uiStatic(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	h, ok := s.ui.static[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.URL.Query().Get("v") == h {
		w.Header().Set("Cache-Control", "public, max-age=86400, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	sub, _ := fs.Sub(uiFiles, "ui/static")
	http.ServeFileFS(w, r, sub, name)
}

// uiSignin shows the sign-in form (or, signed in already, goes on).
func (s *Server) uiSignin(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	if _, _, err := s.uiSession(r); err == nil {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	d := s.signinPage(next)
	if r.URL.Query().Get("why") == "ended" {
		d.Error = "Your session has ended: it was signed out, it was left unused too long or reached its time limit, or its key was revoked. Sign in again."
	}
	if err := s.uiRender(w, r, http.StatusOK, "signin", nil, "Sign in", d); err != nil {
		s.uiFail(w, r, nil, err)
	}
}

type signinPage struct {
	Next, Error string
	Idle, Max   string // the session timeouts, for people
	// OIDC is where a person signs in at the identity provider; "" when
	// this server has none.
	OIDC string
}

func (s *Server) signinPage(next string) signinPage {
	d := signinPage{Next: next, Idle: humanWait(s.c.SessionIdle), Max: humanWait(s.c.SessionMax)}
	if s.c.OIDC != nil {
		d.OIDC = "/ui/oidc/login?" + url.Values{"next": {next}}.Encode()
	}
	return d
}

// uiSigninPost checks the key from the form and, when the API would accept
// it, opens a session and sets its cookie. A wrong key sets no cookie and
// counts against the client's address; an address over its failures is
// refused (429) before its key is looked at.
func (s *Server) uiSigninPost(w http.ResponseWriter, r *http.Request) {
	r = r.WithContext(withRequestID(r, w, time.Now()))
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		s.uiFail(w, r, nil, trail.Errorf(trail.EINVALID, "the sign-in form could not be read"))
		return
	}
	if s.c.Sessions == nil {
		s.uiFail(w, r, nil, errNoSessions)
		return
	}
	text := strings.TrimSpace(r.PostFormValue("key"))
	d := s.signinPage(safeNext(r.PostFormValue("next")))
	addr := s.clientIP(r)
	// refuse answers with the sign-in page saying why.
	refuse := func(err error, msg string) {
		p := s.failed(w, r, err, "UI sign-in refused")
		d.Error = msg
		if err := s.uiRender(w, r, p.Status, "signin", nil, "Sign in", d); err != nil {
			s.uiFail(w, r, nil, err)
		}
	}
	if wait := s.signins.wait(addr, s.c.Now()); wait > 0 {
		s.metrics.signins.WithLabelValues("throttled").Inc()
		s.log.WarnContext(r.Context(), "UI sign-in throttled", "client_ip", addr, "retry_after", wait)
		w.Header().Set("Retry-After", retryAfter(wait))
		msg := fmt.Sprintf("Too many failed sign-ins from your address (%d in %s): try again in %s.",
			s.c.Limits.SignInFailures, humanWait(s.c.Limits.SignInWindow), humanWait(wait))
		refuse(&apiError{code: eTooMany, msg: msg}, msg)
		return
	}
	k, err := s.authenticateText(r, text)
	if err != nil {
		if trail.ErrorCode(err) != trail.EUNAUTHORIZED {
			refuse(err, "The key could not be checked just now; try again.")
			return
		}
		n, rerr := s.signinFailed(r, text, addr, err)
		if rerr != nil {
			s.uiFail(w, r, nil, rerr)
			return
		}
		msg := "That key was not accepted: " + trail.ErrorMessage(err) + "."
		if n >= s.c.Limits.SignInFailures {
			msg += fmt.Sprintf(" Your address has had %d failed sign-ins in %s: the next must wait.", n, humanWait(s.c.Limits.SignInWindow))
		}
		refuse(err, msg)
		return
	}
	text, err = s.startSession(r, k)
	if err != nil {
		s.uiFail(w, r, nil, err)
		return
	}
	s.metrics.signins.WithLabelValues("success").Inc()
	http.SetCookie(w, s.uiSessionCookie(r, text))
	http.Redirect(w, r, d.Next, http.StatusSeeOther)
}

// uiSignout ends the session: deletes it, so its cookie is refused from
// then on, wherever it was copied to, records that, and clears the cookie.
// A session that could not be deleted keeps its cookie, and the page says
// so.
func (s *Server) uiSignout(w http.ResponseWriter, r *http.Request) {
	r = r.WithContext(withRequestID(r, w, time.Now()))
	sess, k, err := s.uiSession(r)
	if err != nil && trail.ErrorCode(err) != trail.EUNAUTHORIZED {
		s.uiFail(w, r, nil, err) // the session could not be checked: it may stand
		return
	}
	if err == nil {
		if err := s.c.Sessions.DeleteSession(r.Context(), sess.Hash); err != nil && trail.ErrorCode(err) != trail.ENOTFOUND {
			s.uiFail(w, r, k, err) // it still stands, and so does its cookie
			return
		}
		if err := s.endSession(r, sess, k); err != nil {
			http.SetCookie(w, s.uiSessionCookie(r, ""))
			s.uiFail(w, r, nil, err) // ended, but not recorded
			return
		}
	}
	http.SetCookie(w, s.uiSessionCookie(r, ""))
	http.Redirect(w, r, "/ui/signin", http.StatusSeeOther)
}

// safeNext returns next when it is a path of the UI (never another site),
// or /ui/.
func safeNext(next string) string {
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(next, "/ui/") ||
		strings.ContainsAny(next, "\\\r\n") || strings.HasPrefix(next, "//") {
		return "/ui/"
	}
	return next
}

// funcs are the templates' helpers.
func (u *ui) funcs() template.FuncMap {
	return template.FuncMap{
		"static": func(name string) string {
			return "/ui/static/" + name + "?v=" + u.static[name]
		},
		"htmx": func() string { return "/ui/static/" + uiHTMX + "?v=" + u.static[uiHTMX] },
		"utc": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.UTC().Format("2006-01-02 15:04:05")
		},
		"iso": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.UTC().Format(time.RFC3339Nano)
		},
		"hex":      func(b []byte) string { return hex.EncodeToString(b) },
		"b64":      func(b []byte) string { return base64.StdEncoding.EncodeToString(b) },
		"json":     prettyJSON,
		"join":     strings.Join,
		"eventURL": func(id string) string { return "/ui/events/" + url.PathEscape(id) },
		"filterURL": func(kv ...string) string {
			v := url.Values{}
			for i := 0; i+1 < len(kv); i += 2 {
				v.Set(kv[i], kv[i+1])
			}
			return "/ui/?" + v.Encode()
		},
		"scalar": func(v any) bool {
			switch v.(type) {
			case map[string]any, []any:
				return false
			}
			return true
		},
		"short": func(s string, n int) string {
			if len([]rune(s)) <= n {
				return s
			}
			return string([]rune(s)[:n-1]) + "…"
		},
		"contains": slices.Contains[[]string],
		"add":      func(a, b int) int { return a + b },
		"kv":       func(k, v string) [2]string { return [2]string{k, v} },
	}
}

// prettyJSON returns v as indented JSON text (for a <pre>, where the
// template escapes it).
func prettyJSON(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return "(" + err.Error() + ")"
	}
	return strings.TrimRight(buf.String(), "\n")
}
