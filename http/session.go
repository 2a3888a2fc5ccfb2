package http

// The web UI's sessions. Signing in checks an API key once and opens a
// server-side session (Config.Sessions): the cookie holds only the
// session's random id, the store only its hash. Each request finds the
// session, live by its idle and absolute timeouts, and checks its key as
// the API would (not revoked; cached for Limits.KeyCacheTTL at most).
// Signing out deletes the session, and revoking a key through this server
// deletes every session of the key, so a cookie copied from a browser is
// refused at once after either. A session id is no API key: the API
// refuses it.
//
// Sign-ins are recorded in the key's tenant's log with the key as actor:
// user_login_success when a session starts (method api_key, and the
// session's Ref as its request.session_id), user_logout when it is signed
// out, all_sessions_revoked when a revocation ends sessions, and
// user_login_failed when a sign-in names a key that exists but fails
// (wrong secret, revoked). A failure naming no key is only logged and
// counted (trail_ui_signins_total): it has no tenant whose log it would
// belong in. Nothing records the text given, only the key's id. Failed
// sign-ins are throttled per client address (failures).

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
)

type sessionKey struct{}

// withSession returns r carrying sess, whose Ref the records of r name
// as their request.session_id.
func withSession(r *http.Request, sess *trail.Session) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), sessionKey{}, sess))
}

// sessionRef returns the Ref of r's session, or "".
func sessionRef(r *http.Request) string {
	if sess, ok := r.Context().Value(sessionKey{}).(*trail.Session); ok {
		return sess.Ref()
	}
	return ""
}

// errNoSessions answers a sign-in on a server that keeps no sessions.
var errNoSessions = trail.Errorf(trail.EFORBIDDEN, "this server keeps no UI sessions, so nobody can sign in here")

// uiSession finds the request's session and the key it acts with: the
// cookie's id names a session that is live now (its use recorded), and
// its key is still good. A session whose key was revoked is deleted.
// EUNAUTHORIZED means there is no session to use; another code, that the
// session could not be checked.
func (s *Server) uiSession(r *http.Request) (*trail.Session, *trail.APIKey, error) {
	c, err := r.Cookie(uiCookie)
	if err != nil || c.Value == "" || s.c.Sessions == nil {
		return nil, nil, trail.Errorf(trail.EUNAUTHORIZED, "not signed in")
	}
	hash, err := trail.ParseSessionID(c.Value)
	if err != nil {
		return nil, nil, err
	}
	ctx := r.Context()
	sess, err := s.c.Sessions.TouchSession(ctx, hash, s.c.Now())
	if trail.ErrorCode(err) == trail.ENOTFOUND {
		return nil, nil, trail.Errorf(trail.EUNAUTHORIZED, "your session has ended")
	}
	if err != nil {
		return nil, nil, err
	}
	switch sess.Kind {
	case trail.SessionPerson:
		return sess, personKey(sess), nil
	case trail.SessionKey:
	default:
		return nil, nil, trail.Errorf(trail.EUNAUTHORIZED, "a %s session is not served here", sess.Kind)
	}
	k, err := s.key(ctx, sess.KeyID)
	if err != nil {
		return nil, nil, err
	}
	if k.Revoked() || k.Tenant != sess.Tenant {
		if err := s.c.Sessions.DeleteSession(ctx, hash); err != nil && trail.ErrorCode(err) != trail.ENOTFOUND {
			s.log.WarnContext(ctx, "deleting the session of a revoked key", "session", sess.Ref(), "key", k.ID, "err", err)
		}
		return nil, nil, trail.Errorf(trail.EUNAUTHORIZED, "the session's API key was revoked")
	}
	return sess, k, nil
}

// startSession opens a session for k, records its start, and returns the
// id for the cookie.
func (s *Server) startSession(r *http.Request, k *trail.APIKey) (string, error) {
	text, _, err := s.openSession(r, &trail.Session{Tenant: k.Tenant, Kind: trail.SessionKey, KeyID: k.ID}, k, "api_key")
	return text, err
}

// startPersonSession opens a session for the person p, whom rule maps,
// records its start, and returns the id for the cookie and the session.
func (s *Server) startPersonSession(r *http.Request, p *person, rule *PersonRule, method string) (string, *trail.Session, error) {
	sess := &trail.Session{Tenant: rule.Tenant, Kind: trail.SessionPerson, Subject: p.subject, Name: p.email, Scopes: rule.Scopes}
	return s.openSession(r, sess, personKey(sess), method)
}

// openSession gives sess (its tenant, kind and who) an id and its times,
// stores it, records its start (signed in by method, acting as k), and
// returns the id for the cookie. A start that cannot be recorded opens
// nothing. Then it sweeps the ended sessions, so the store holds about as
// many as are live.
func (s *Server) openSession(r *http.Request, sess *trail.Session, k *trail.APIKey, method string) (string, *trail.Session, error) {
	ctx := r.Context()
	text, hash, err := trail.NewSessionID()
	if err != nil {
		return "", nil, err
	}
	now := s.c.Now().UTC()
	sess.Hash, sess.CreatedAt, sess.SeenAt, sess.Idle, sess.ExpiresAt = hash, now, now, s.c.SessionIdle, now.Add(s.c.SessionMax)
	if err := s.c.Sessions.CreateSession(ctx, sess); err != nil {
		return "", nil, err
	}
	if err := s.audit(withSession(r, sess), k, sessionStarted(sess, method)); err != nil {
		if derr := s.c.Sessions.DeleteSession(ctx, hash); derr != nil {
			s.log.ErrorContext(ctx, "a session whose start was not recorded could not be deleted", "session", sess.Ref(), "err", derr)
		}
		return "", nil, err
	}
	s.log.InfoContext(ctx, "UI session started", "session", sess.Ref(), "kind", sess.Kind, "key", sess.KeyID, "subject", sess.Subject,
		"tenant", sess.Tenant, "client_ip", s.clientIP(r))
	if n, err := s.c.Sessions.DeleteEndedSessions(ctx, now); err != nil {
		s.log.WarnContext(ctx, "sweeping ended UI sessions", "err", err)
	} else if n > 0 {
		s.log.DebugContext(ctx, "swept ended UI sessions", "count", n)
	}
	return text, sess, nil
}

// personKey is what a person's session acts with in the UI's handlers,
// which take a credential: never stored and never an API key the API
// takes, it carries the session's tenant and scopes, with the person's
// subject as its ID and their email as its name. What is recorded of
// what they do names the person (Server.actor), not a key.
func personKey(sess *trail.Session) *trail.APIKey {
	return &trail.APIKey{ID: sess.Subject, Tenant: sess.Tenant, Name: sess.Name, Scopes: sess.Scopes}
}

// endSession records the request's session, deleted, as signed out by
// its key k.
func (s *Server) endSession(r *http.Request, sess *trail.Session, k *trail.APIKey) error {
	s.log.InfoContext(r.Context(), "UI session signed out", "session", sess.Ref(), "kind", sess.Kind, "by", k.ID, "tenant", k.Tenant)
	return s.audit(withSession(r, sess), k, sessionEnded(sess, "explicit"))
}

// endKeySessions ends every session of the key rk, just revoked by admin,
// and records how many in rk's tenant's log.
func (s *Server) endKeySessions(r *http.Request, admin, rk *trail.APIKey) error {
	if s.c.Sessions == nil {
		return nil
	}
	n, err := s.c.Sessions.DeleteKeySessions(r.Context(), rk.ID)
	if err != nil || n == 0 {
		return err
	}
	s.log.InfoContext(r.Context(), "UI sessions of a revoked key ended", "key", rk.ID, "tenant", rk.Tenant, "count", n)
	return s.audit(r, admin, keySessionsEnded(admin, rk, n))
}

// signinFailed handles a sign-in whose key was refused (err, EUNAUTHORIZED)
// from addr: it counts the failure against the address, logs it and, when
// the text names a key that exists, records it in the key's tenant's log.
// It returns the failures of addr in the window and the error of a record
// that could not be written.
func (s *Server) signinFailed(r *http.Request, text, addr string, cause error) (int, error) {
	ctx := r.Context()
	attempts := s.signins.fail(addr, s.c.Now())
	s.metrics.signins.WithLabelValues("failure").Inc()
	reason, k := "not_a_key", (*trail.APIKey)(nil)
	if id, _, err := trail.ParseAPIKey(text); err == nil {
		reason = "unknown_key"
		if known, err := s.key(ctx, id); err == nil {
			k, reason = known, "wrong_secret"
			if known.Revoked() {
				reason = "revoked_key"
			}
		}
	}
	attrs := []any{"client_ip", addr, "reason", reason, "attempts", attempts, "err", trail.ErrorMessage(cause)}
	if k == nil {
		s.log.WarnContext(ctx, "UI sign-in failed", attrs...)
		return attempts, nil
	}
	s.log.WarnContext(ctx, "UI sign-in failed", append(attrs, "key", k.ID, "tenant", k.Tenant)...)
	return attempts, s.audit(r, k, signinFailure(reason, attempts))
}

// sessionStarted is the record of a session opened by signing in with
// method (api_key, oidc, proxy).
func sessionStarted(sess *trail.Session, method string) record {
	return record{action: catalog.UserLoginSuccess, what: "sign-in", context: map[string]any{
		"method": method, "mfa": false, "remember_me": false, "session_id": sess.Ref(),
		"idle_timeout_seconds": int64(sess.Idle / time.Second), "expires_at": sess.ExpiresAt.Format(time.RFC3339),
	}}
}

// sessionEnded is the record of a session ended by how (user_logout's
// logout_method).
func sessionEnded(sess *trail.Session, how string) record {
	return record{action: catalog.UserLogout, what: "sign-out", context: map[string]any{
		"session_id": sess.Ref(), "logout_method": how,
	}}
}

// keySessionsEnded is the record of n sessions of rk ended by admin
// revoking rk, in rk's tenant's log.
func keySessionsEnded(admin, rk *trail.APIKey, n int) record {
	return record{action: catalog.AllSessionsRevoked, what: "end of the key's sessions", tenant: rk.Tenant, context: map[string]any{
		"revoked_by": admin.ID, "reason": "api_key_revoked", "sessions_revoked_count": n, "key_id": rk.ID,
	}}
}

// signinFailure is the record of a failed sign-in, the attempts-th from
// its address in the window. An API key has no email: the catalog asks
// for one, and it is left empty.
func signinFailure(reason string, attempts int) record {
	return record{action: catalog.UserLoginFailed, what: "failed sign-in", context: map[string]any{
		"method": "api_key", "reason": reason, "attempts": attempts, "email": "",
	}}
}

// failures counts the failed UI sign-ins of each client address over a
// sliding window: an address with max failures in the last window must
// wait until the oldest leaves it. An IPv6 address counts as its /64,
// which one client usually holds whole. Addresses with no failure in the
// window are dropped, so the map stays as small as the set of addresses
// failing now.
type failures struct {
	max    int
	window time.Duration

	mu    sync.Mutex
	by    map[string][]time.Time // the failures in the window, oldest first; at most max
	swept time.Time
}

func newFailures(max int, window time.Duration) *failures {
	return &failures{max: max, window: window, by: map[string][]time.Time{}}
}

// wait returns how long addr must wait before it may try again: zero when
// it has fewer than max failures in the window.
func (f *failures) wait(addr string, now time.Time) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	ts := f.recent(throttleKey(addr), now)
	if len(ts) < f.max {
		return 0
	}
	return ts[0].Add(f.window).Sub(now)
}

// fail records a failure of addr at now and returns how many it has in
// the window.
func (f *failures) fail(addr string, now time.Time) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := throttleKey(addr)
	ts := append(f.recent(key, now), now)
	if len(ts) > f.max {
		ts = ts[len(ts)-f.max:]
	}
	f.by[key] = ts
	return len(ts)
}

// recent returns key's failures within the window before now (and, once
// a minute, drops every address with none). The caller holds f.mu.
func (f *failures) recent(key string, now time.Time) []time.Time {
	if now.Sub(f.swept) > time.Minute {
		for k, ts := range f.by {
			if now.Sub(ts[len(ts)-1]) >= f.window {
				delete(f.by, k)
			}
		}
		f.swept = now
	}
	ts := f.by[key]
	for len(ts) > 0 && now.Sub(ts[0]) >= f.window {
		ts = ts[1:]
	}
	if len(ts) == 0 {
		delete(f.by, key)
	}
	return ts
}

// throttleKey is what failures counts addr under: an IPv4 address, or
// an IPv6 address's /64.
func throttleKey(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil || a.Is4() {
		return addr
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// retryAfter is the Retry-After of a wait: whole seconds, rounded up.
func retryAfter(wait time.Duration) string {
	return strconv.Itoa(int((wait + time.Second - 1) / time.Second))
}

// humanWait says a wait for people, rounded up: "12 hours", "3
// minutes", "40 seconds".
func humanWait(wait time.Duration) string {
	if wait > 90*time.Minute {
		return fmt.Sprintf("%d hours", int((wait+time.Hour-1)/time.Hour))
	}
	if wait > time.Minute {
		return fmt.Sprintf("%d minutes", int((wait+time.Minute-1)/time.Minute))
	}
	return fmt.Sprintf("%d seconds", int((wait+time.Second-1)/time.Second))
}
