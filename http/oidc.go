package http

// Signing people in with OpenID Connect: the authorization code flow with
// PKCE (S256), state and nonce. GET /ui/oidc/login sends the browser to
// the provider with a fresh state, nonce and code verifier, which it keeps
// in a short-lived HttpOnly cookie of its own (path /ui/oidc/, ten
// minutes, SameSite=Lax so that it comes back with the provider's
// redirect). GET /ui/oidc/callback takes them back out of that cookie,
// once: the state must be the cookie's, the code is exchanged with the
// verifier, the ID token's signature, issuer, audience and expiry are
// checked by go-oidc against the provider's keys, and its nonce must be
// the cookie's. The person is then who the token says (issuer#sub), known
// by their email (refused when the token says it is not verified), and
// the people file's first rule that maps their email or groups gives them
// a tenant and scopes; a person no rule maps is refused with a page that
// says so. A mapped person gets a session of their own (Kind person),
// recorded as user_login_success (method oidc) with them as the actor.

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/trailaudit/trail"
	"golang.org/x/oauth2"
)

// oidcCookie holds a sign-in in flight: its state, nonce, code verifier
// and where to go after.
const oidcCookie = "trail_oidc"

// oidcFlowTTL is how long a sign-in at the provider may take.
const oidcFlowTTL = 10 * time.Minute

// OIDC is a relying party of an OpenID Connect provider: what the UI's
// people sign in with. Make it with NewOIDC.
type OIDC struct {
	issuer   string
	provider *oidc.Provider
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
	groups   string
	client   *http.Client // for the token exchange; nil: http.DefaultClient
}

// NewOIDC finds the provider p (its discovery document, at the issuer's
// /.well-known/openid-configuration) with client, nil for the default.
func NewOIDC(ctx context.Context, p *OIDCProvider, client *http.Client) (*OIDC, error) {
	if client != nil {
		ctx = oidc.ClientContext(ctx, client)
	}
	prov, err := oidc.NewProvider(ctx, p.Issuer)
	if err != nil {
		return nil, fmt.Errorf("OpenID Connect provider %s: %w", p.Issuer, err)
	}
	return &OIDC{
		issuer:   p.Issuer,
		provider: prov,
		oauth: oauth2.Config{ClientID: p.ClientID, ClientSecret: p.ClientSecret, RedirectURL: p.RedirectURL,
			Endpoint: prov.Endpoint(), Scopes: append([]string{oidc.ScopeOpenID}, p.Scopes...)},
		verifier: prov.Verifier(&oidc.Config{ClientID: p.ClientID}),
		groups:   p.GroupsClaim,
		client:   client,
	}, nil
}

// oidcFlow is what the flow cookie holds.
type oidcFlow struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Next     string `json:"next"`
}

// uiOIDCLogin starts a sign-in at the provider.
func (s *Server) uiOIDCLogin(w http.ResponseWriter, r *http.Request) {
	r = r.WithContext(withRequestID(r, w, time.Now()))
	if s.c.OIDC == nil || s.c.Sessions == nil {
		s.uiFail(w, r, nil, trail.Errorf(trail.ENOTFOUND, "this server signs nobody in with an identity provider: sign in with an API key"))
		return
	}
	f := oidcFlow{State: rand.Text(), Nonce: rand.Text(), Verifier: oauth2.GenerateVerifier(), Next: safeNext(r.URL.Query().Get("next"))}
	b, err := json.Marshal(f)
	if err != nil {
		s.uiFail(w, r, nil, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Value: base64.RawURLEncoding.EncodeToString(b), Path: "/ui/oidc/",
		HttpOnly: true, Secure: s.uiTLS(r), SameSite: http.SameSiteLaxMode, MaxAge: int(oidcFlowTTL / time.Second)})
	o := s.c.OIDC
	http.Redirect(w, r, o.oauth.AuthCodeURL(f.State, oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier)), http.StatusSeeOther)
}

// personClaims are the ID token's claims Trail reads.
type personClaims struct {
	Subject       string `json:"sub"`
	Email         string `json:"email"`
	EmailVerified *bool  `json:"email_verified"`
}

// uiOIDCCallback finishes a sign-in: the provider sent the browser back
// with a code.
func (s *Server) uiOIDCCallback(w http.ResponseWriter, r *http.Request) {
	r = r.WithContext(withRequestID(r, w, time.Now()))
	if s.c.OIDC == nil || s.c.Sessions == nil {
		s.uiFail(w, r, nil, trail.Errorf(trail.ENOTFOUND, "this server signs nobody in with an identity provider: sign in with an API key"))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Path: "/ui/oidc/", MaxAge: -1, HttpOnly: true, Secure: s.uiTLS(r)}) // used once
	p, err := s.oidcPerson(r)
	if err != nil {
		s.metrics.signins.WithLabelValues("failure").Inc()
		s.log.WarnContext(r.Context(), "UI sign-in at the identity provider failed", "client_ip", s.clientIP(r), "err", err)
		s.uiFail(w, r, nil, err)
		return
	}
	s.personSignedIn(w, r, p, "oidc")
}

// oidcPerson checks the callback's request and returns who signed in.
func (s *Server) oidcPerson(r *http.Request) (*person, error) {
	o := s.c.OIDC
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		return nil, trail.Errorf(trail.EUNAUTHORIZED, "the identity provider did not sign you in: %s %s", truncate(e, 100), truncate(q.Get("error_description"), 200))
	}
	c, err := r.Cookie(oidcCookie)
	if err != nil {
		return nil, trail.Errorf(trail.EUNAUTHORIZED, "this sign-in was not started here, or took longer than %s: sign in again", humanWait(oidcFlowTTL))
	}
	var f oidcFlow
	b, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil || json.Unmarshal(b, &f) != nil || f.State == "" || f.Nonce == "" || f.Verifier == "" {
		return nil, trail.Errorf(trail.EUNAUTHORIZED, "this sign-in's cookie is damaged: sign in again")
	}
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(f.State)) != 1 {
		return nil, trail.Errorf(trail.EUNAUTHORIZED, "the provider's answer is not for the sign-in this browser started (state): sign in again")
	}
	ctx := r.Context()
	if o.client != nil {
		ctx = oidc.ClientContext(ctx, o.client)
	}
	tok, err := o.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(f.Verifier))
	if err != nil {
		return nil, trail.Errorf(trail.EUNAUTHORIZED, "the identity provider refused the sign-in's code: %v", err)
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok {
		return nil, trail.Errorf(trail.EUNAUTHORIZED, "the identity provider sent no ID token")
	}
	idt, err := o.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, trail.Errorf(trail.EUNAUTHORIZED, "the identity provider's ID token is not good: %v", err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(f.Nonce)) != 1 {
		return nil, trail.Errorf(trail.EUNAUTHORIZED, "the ID token is not for the sign-in this browser started (nonce): sign in again")
	}
	claims := idt.Claims
	var cl personClaims
	if err := claims(&cl); err != nil {
		return nil, trail.Errorf(trail.EUNAUTHORIZED, "the ID token's claims could not be read: %v", err)
	}
	if cl.Email == "" {
		// Many providers put the email in the ID token only when asked;
		// the user info endpoint has it, for the same subject.
		ui, err := o.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			return nil, trail.Errorf(trail.EUNAUTHORIZED, "the ID token has no email, and the provider's user info could not be read: %v", err)
		}
		if ui.Subject != idt.Subject {
			return nil, trail.Errorf(trail.EUNAUTHORIZED, "the provider's user info is of another subject than its ID token")
		}
		claims = ui.Claims
		if err := claims(&cl); err != nil {
			return nil, trail.Errorf(trail.EUNAUTHORIZED, "the provider's user info could not be read: %v", err)
		}
	}
	var all map[string]any
	if err := claims(&all); err != nil {
		return nil, trail.Errorf(trail.EUNAUTHORIZED, "the identity's claims could not be read: %v", err)
	}
	if cl.EmailVerified != nil && !*cl.EmailVerified {
		return nil, trail.Errorf(trail.EFORBIDDEN, "the identity provider says your email %s is not verified, so Trail cannot go by it", truncate(cl.Email, 200))
	}
	var groups []string
	if gs, ok := all[o.groups].([]any); ok {
		for _, g := range gs {
			if g, ok := g.(string); ok {
				groups = append(groups, g)
			}
		}
	}
	return &person{subject: o.issuer + "#" + cl.Subject, email: cl.Email, groups: groups, next: f.Next}, nil
}

// person is someone an identity provider (or proxy) vouches for.
type person struct {
	subject string // issuer#sub
	email   string
	groups  []string
	next    string // where to go once signed in
}

// personSignedIn maps p by the people file and, when a rule maps them,
// opens their session, sets its cookie and sends the browser on. method
// is how they signed in (user_login_success's method).
func (s *Server) personSignedIn(w http.ResponseWriter, r *http.Request, p *person, method string) {
	text, _, err := s.personSession(r, p, method)
	if err != nil {
		s.uiFail(w, r, nil, err)
		return
	}
	http.SetCookie(w, s.uiSessionCookie(r, text))
	// The provider's redirect brought the browser here from another site,
	// so a redirect on would not carry the session's SameSite=Strict
	// cookie: a page of Trail's own goes on instead.
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, `<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=%s"><title>Signed in</title><p>Signed in. <a href="%s">Continue</a>.</p>`,
		template.HTMLEscapeString(p.next), template.HTMLEscapeString(p.next))
}

// personSession maps p by the people file and, when a rule maps them,
// opens their session (signed in by method) and returns its id for the
// cookie and the session. A person no rule maps is refused (EFORBIDDEN),
// saying so, and only logged: they have no tenant whose log it would go
// in.
func (s *Server) personSession(r *http.Request, p *person, method string) (string, *trail.Session, error) {
	rule := s.c.People.Match(p.email, p.groups)
	if rule == nil {
		s.metrics.signins.WithLabelValues("failure").Inc()
		s.log.WarnContext(r.Context(), "UI sign-in of a person no rule maps", "subject", p.subject, "email", p.email, "groups", p.groups,
			"method", method, "client_ip", s.clientIP(r))
		return "", nil, trail.Errorf(trail.EFORBIDDEN, "you signed in as %s, but this Trail gives %s no tenant: ask its operator to map you (a map line of its people file)",
			cmp.Or(p.email, p.subject), cmp.Or(p.email, "that account"))
	}
	if len(p.subject) > trail.DefaultLimits().MaxField || strings.ContainsFunc(p.subject, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
		return "", nil, trail.Errorf(trail.EUNAUTHORIZED, "the identity's subject is not one Trail can record")
	}
	text, sess, err := s.startPersonSession(r, p, rule, method)
	if err != nil {
		return "", nil, err
	}
	s.metrics.signins.WithLabelValues("success").Inc()
	return text, sess, nil
}
