// Package http is Trail's HTTP API: ingest, search, export, checkpoints and
// proofs, the action catalog and API keys, under /v1, with health, readiness
// and Prometheus metrics beside it.
//
// Start with New, then serve Server.Handler (cmd/trail's serve does, with
// timeouts and a graceful shutdown). Every /v1 route but the OpenAPI
// document needs a credential (Server.Access says which): a tenant's API
// key (Authorization: Bearer trail_ID_SECRET) with the route's scope, for
// which the tenant every request acts on is the key's, never one named in
// the request; or, for managing tenants, an operator credential
// (trailop_ID_SECRET), which acts on no tenant's data. Reading the log is itself recorded in the log: each
// query, export and proof appends an event (data_viewed,
// data_export_attempted / data_exported / data_export_failed) with the key
// as actor, and a read whose record cannot be written is refused.
//
// Errors are RFC 9457 problem details carrying Trail's error code and the
// offending fields; codes map to statuses in one place (error.go).
package http

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/detect"
	"github.com/trailaudit/trail/erasure"
	"github.com/trailaudit/trail/internal/clientip"
	"github.com/trailaudit/trail/internal/ledger"
	"github.com/trailaudit/trail/tlog"
	"github.com/trailaudit/trail/witness"
)

// Config is what a Server serves. Store, Writer, Keys, Catalog and
// Verifier are required.
type Config struct {
	Store trail.Store
	// Writer is Trail's own path into Store: the records of audited reads,
	// legal holds and erasures go through it (ingest never can).
	Writer  ledger.Writer
	Keys    trail.KeyStore
	Catalog *catalog.Catalog
	Actions trail.ActionStore  // where registered custom actions are kept; nil: not kept
	Holds   trail.HoldStore    // legal holds (the /v1/holds routes); nil: none kept
	Tenants trail.TenantLister // the tenants GET /v1/tenants lists; nil: none listed
	Eraser  *erasure.Sealer    // erases data subjects (POST /v1/subjects/{id}/erase); nil: no sealing
	Rules   trail.RuleStore    // tenants' own detection rules (the /v1/rules routes); nil: none kept
	// Detections runs the rules over the tenants' logs; its status is in
	// GET /v1/rules and /metrics. Nil: none run here.
	Detections *detect.Supervisor
	// Sinks keeps the sinks' configurations (the /v1/sinks routes); nil:
	// none kept. SinkRunner runs them (their status, a reload after a
	// change, a resume); nil: they are not run by this server, and their
	// status says so.
	Sinks      trail.SinkStore
	SinkRunner SinkRunner
	Verifier   *tlog.Verifier // checks the checkpoints the API serves
	// Witnessing is the witnesses' cosigning of the checkpoints
	// (witness.Witnesser): GET /v1/checkpoint?cosigned=1 and the health
	// page. Nil: the log is not witnessed.
	Witnessing Witnessing
	// Leadership says whether this process runs the background work
	// (the root log and witnessing, the rules, the sinks), elected among
	// the processes sharing the store (trail.Elector): /readyz says it.
	// Nil: it runs none.
	Leadership Leadership
	Logger     *slog.Logger // default: slog.Default()
	// TrustedProxies are the addresses whose X-Forwarded-For is believed:
	// the client IP is the rightmost address in it that is not one of
	// them. Empty: the connection's address is the client's.
	TrustedProxies []netip.Prefix
	Limits         Limits
	Registry       *prometheus.Registry // for /metrics; default: a new one
	Now            func() time.Time     // default time.Now
	// Sessions keeps the web UI's sessions (session.go); nil: nobody can
	// sign in to the UI.
	Sessions trail.SessionStore
	// SessionIdle ends a UI session unused for this long (default 30
	// minutes); SessionMax ends it this long after sign-in, however much
	// it is used (default 12 hours).
	SessionIdle, SessionMax time.Duration
	// People maps the people who sign in to the UI as themselves to a
	// tenant and scopes (people.go); OIDC signs them in with its
	// provider (oidc.go). Nil: people sign in with API keys alone.
	People *People
	OIDC   *OIDC
}

// Witnessing is what the server serves and shows of the witnesses'
// cosignatures (witness.Witnesser is one).
type Witnessing interface {
	// Policy is the witnesses and the quorum.
	Policy() *witness.Policy
	// Witnessed returns tenant's largest checkpoint a quorum cosigned, or
	// ENOTFOUND.
	Witnessed(ctx context.Context, tenant string) (*witness.Cosigned, error)
	// Status returns each witness's state for tenant.
	Status(ctx context.Context, tenant string) ([]witness.Status, error)
}

var _ Witnessing = (*witness.Witnesser)(nil)

// Leadership is whether this process leads (internal/lead.Status is one).
type Leadership interface {
	// Leading reports whether this process runs the background work now.
	Leading() bool
}

// Limits bound what one request may ask. Zero fields take the defaults.
type Limits struct {
	MaxBody      int64   // bytes of a request other than a batch (default 1 MiB)
	MaxBatchBody int64   // bytes of a batch (default 32 MiB)
	MaxBatch     int     // events in a batch (default 10000)
	Rate         float64 // requests per second per key (default 2000; negative: no limit)
	Burst        int     // requests a key may make at once above its rate (default twice the rate)
	KeyCacheTTL  time.Duration
	// SignInFailures is how many failed UI sign-ins one client address
	// may make in SignInWindow before it must wait (defaults 5 and 15
	// minutes).
	SignInFailures int
	SignInWindow   time.Duration
}

func (l *Limits) defaults() {
	if l.MaxBody <= 0 {
		l.MaxBody = 1 << 20
	}
	if l.MaxBatchBody <= 0 {
		l.MaxBatchBody = 32 << 20
	}
	if l.MaxBatch <= 0 {
		l.MaxBatch = 10000
	}
	if l.Rate == 0 {
		l.Rate = 2000
	}
	if l.Burst <= 0 {
		l.Burst = max(1, int(2*l.Rate))
	}
	if l.KeyCacheTTL <= 0 {
		l.KeyCacheTTL = 5 * time.Second
	}
	if l.SignInFailures <= 0 {
		l.SignInFailures = 5
	}
	if l.SignInWindow <= 0 {
		l.SignInWindow = 15 * time.Minute
	}
}

// Server answers the API. Create it with New.
type Server struct {
	c       Config
	log     *slog.Logger
	mux     *http.ServeMux
	routes  []Route // every route with its credential, for Access and the OpenAPI check
	metrics *metrics
	limiter *limiter
	signins *failures // failed UI sign-ins by client address (session.go)

	keyMu sync.Mutex
	keys  map[string]cachedKey

	ui *ui // the web UI under /ui/ (ui.go); its routes are not in routes

	writes writes // the last failure to write, for /readyz (ready.go)

	builtin   []detect.RuleInfo // the built-in detection rules and Trail's own (GET /v1/rules)
	forgeries *detect.Forgeries // alerts of refused forgeries of Trail's records (events.go)
}

type cachedKey struct {
	k       *trail.APIKey
	fetched time.Time
}

// New returns a Server for c.
func New(c Config) (*Server, error) {
	switch {
	case c.Store == nil, c.Writer == nil, c.Keys == nil, c.Catalog == nil, c.Verifier == nil:
		return nil, errors.New("http: Config needs Store, Writer, Keys, Catalog and Verifier")
	case c.OIDC != nil && c.People == nil:
		return nil, errors.New("http: Config.OIDC needs Config.People, whose rules map the people it signs in")
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
	if c.SessionIdle <= 0 {
		c.SessionIdle = 30 * time.Minute
	}
	if c.SessionMax <= 0 {
		c.SessionMax = 12 * time.Hour
	}
	c.Limits.defaults()
	s := &Server{c: c, log: c.Logger, mux: http.NewServeMux(), keys: map[string]cachedKey{},
		limiter: newLimiter(c.Limits.Rate, c.Limits.Burst), signins: newFailures(c.Limits.SignInFailures, c.Limits.SignInWindow)}
	var err error
	if s.metrics, err = newMetrics(c.Registry, c.Detections); err != nil {
		return nil, err
	}
	if c.SinkRunner != nil {
		if err := c.Registry.Register(sinkCollector{r: c.SinkRunner, now: c.Now}); err != nil {
			return nil, err
		}
	}
	s.builtin = append(detect.Infos(detect.Builtin().Rules()), detect.OwnRules()...)
	s.forgeries = detect.NewForgeries(c.Writer, time.Hour)
	s.routesInit()
	return s, nil
}

// Handler returns the server's handler.
func (s *Server) Handler() http.Handler { return s.mux }

// Routes returns "METHOD /path" for every route the server answers.
func (s *Server) Routes() []string {
	out := make([]string, len(s.routes))
	for i, r := range s.routes {
		out[i] = r.Pattern
	}
	return out
}

// Credential is the kind of credential a route takes.
type Credential string

// The kinds of credential.
const (
	// NoCredential: the route is open.
	NoCredential Credential = "none"
	// TenantKey: a tenant's API key with the route's scope; the route acts
	// on the key's tenant alone.
	TenantKey Credential = "tenant"
	// OperatorCredential: an operator credential; no tenant's key, whatever
	// its scopes.
	OperatorCredential Credential = "operator"
	// TenantOrOperator: a tenant's key with the route's scope, acting on its
	// own tenant alone, or an operator credential, acting on any tenant.
	TenantOrOperator Credential = "tenant or operator"
)

// Route is one route of the API and what it takes: the one statement of
// who may call it, which docs/design.md's access table and openapi.json's
// x-trail-credential are checked against.
type Route struct {
	Pattern    string         // "METHOD /path"
	Credential Credential     // the kind of credential it takes
	Scope      trail.KeyScope // the scope a tenant's key needs; "" when none does
}

// Access returns every route the server answers with the credential it
// takes, in the order they were added.
func (s *Server) Access() []Route { return append([]Route(nil), s.routes...) }

// handlerFunc is a route's handler: it writes a response or returns an
// error, which becomes problem details.
type handlerFunc func(w http.ResponseWriter, r *http.Request, k *trail.APIKey) error

func (s *Server) routesInit() {
	open := func(pattern string, h http.HandlerFunc) {
		s.routes = append(s.routes, Route{Pattern: pattern, Credential: NoCredential})
		s.mux.Handle(pattern, h)
	}
	open("GET /healthz", s.healthz)
	open("GET /readyz", s.readyz)
	open("GET /metrics", s.metricsHandler().ServeHTTP)
	open("GET /v1/openapi.json", s.openapi)

	add := func(rt Route, h handlerFunc) {
		s.routes = append(s.routes, rt)
		s.mux.Handle(rt.Pattern, s.authed(rt, h))
	}
	route := func(pattern string, scope trail.KeyScope, h handlerFunc) {
		add(Route{Pattern: pattern, Credential: TenantKey, Scope: scope}, h)
	}
	// managed routes are a tenant's admin's for its own tenant, and an
	// operator's for any tenant.
	managed := func(pattern string, h handlerFunc) {
		add(Route{Pattern: pattern, Credential: TenantOrOperator, Scope: trail.ScopeAdmin}, h)
	}
	route("POST /v1/events", trail.ScopeIngest, s.postEvent)
	route("POST /v1/events:batch", trail.ScopeIngest, s.postBatch)
	route("GET /v1/events", trail.ScopeRead, s.listEvents)
	route("GET /v1/events/{id}", trail.ScopeRead, s.getEvent)
	route("GET /v1/export", trail.ScopeExport, s.export)
	route("GET /v1/checkpoint", trail.ScopeVerify, s.checkpoint)
	route("GET /v1/proofs/inclusion", trail.ScopeVerify, s.inclusion)
	route("GET /v1/proofs/consistency", trail.ScopeVerify, s.consistency)
	route("GET /v1/actions", trail.ScopeRead, s.listActions)
	route("POST /v1/actions", trail.ScopeAdmin, s.postAction)
	managed("GET /v1/keys", s.listKeys)
	managed("POST /v1/keys", s.postKey)
	managed("DELETE /v1/keys/{id}", s.revokeKey)
	add(Route{Pattern: "GET /v1/tenants", Credential: OperatorCredential}, s.listTenants)
	route("GET /v1/holds", trail.ScopeAdmin, s.listHolds)
	route("POST /v1/holds", trail.ScopeAdmin, s.postHold)
	route("DELETE /v1/holds/{id}", trail.ScopeAdmin, s.releaseHold)
	route("POST /v1/subjects/{id}/erase", trail.ScopeAdmin, s.eraseSubject)
	route("GET /v1/sinks", trail.ScopeAdmin, s.listSinks)
	route("POST /v1/sinks", trail.ScopeAdmin, s.postSink)
	route("GET /v1/sinks/{name}", trail.ScopeAdmin, s.getSink)
	route("DELETE /v1/sinks/{name}", trail.ScopeAdmin, s.deleteSink)
	route("POST /v1/sinks/{name}/resume", trail.ScopeAdmin, s.resumeSink)
	route("GET /v1/rules", trail.ScopeRead, s.listRules)
	route("GET /v1/rules/{name}", trail.ScopeRead, s.getRules)
	route("PUT /v1/rules/{name}", trail.ScopeAdmin, s.putRules)
	route("DELETE /v1/rules/{name}", trail.ScopeAdmin, s.deleteRules)
	route("POST /v1/rules:replay", trail.ScopeAdmin, s.replayRules)
	route("GET /v1/alerts", trail.ScopeRead, s.listAlerts)

	s.mux.Handle("/ui/", s.uiRoutes()) // the web UI (ui.go), outside the API's routes
}

// authed wraps a route: request id, the credential (its kind and scope),
// the rate limit, metrics, and errors as problem details.
func (s *Server) authed(rt Route, h handlerFunc) http.Handler {
	pattern := rt.Pattern
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t0 := time.Now()
		r = r.WithContext(withRequestID(r, w, t0))
		err := func() error {
			k, err := s.authenticate(r)
			if err != nil {
				return err
			}
			if err := rt.allows(k); err != nil {
				return err
			}
			if wait, ok := s.limiter.allow(k.ID, s.c.Now()); !ok {
				w.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
				return &apiError{code: eTooMany, msg: "this key is over its rate limit; retry after the time in Retry-After"}
			}
			return h(w, r, k)
		}()
		if err != nil {
			s.writeError(w, r, err)
		}
		s.metrics.requests.WithLabelValues(pattern).Observe(time.Since(t0).Seconds())
	})
}

// allows returns the refusal of credential k on route rt, or nil: the one
// place the kind of credential and the scope a route takes are checked.
func (rt Route) allows(k *trail.APIKey) error {
	switch {
	case k.Operator() && rt.Credential != OperatorCredential && rt.Credential != TenantOrOperator:
		return trail.Errorf(trail.EFORBIDDEN, "an operator credential manages tenants and acts on no tenant's data: use a key of the tenant")
	case k.Operator():
		return nil
	case rt.Credential == OperatorCredential:
		return trail.Errorf(trail.EFORBIDDEN, "this route takes an operator credential (trail operator create); a tenant's key manages only its own tenant")
	case !k.Has(rt.Scope):
		return trail.Errorf(trail.EFORBIDDEN, "this key lacks the %s scope", rt.Scope)
	}
	return nil
}

// authenticate finds the request's key: present, well formed, known, not
// revoked, and matching. Keys are cached for Limits.KeyCacheTTL, so a key
// revoked elsewhere (trail keys revoke) stops working within that time; a
// revocation through the API takes effect at once.
func (s *Server) authenticate(r *http.Request) (*trail.APIKey, error) {
	h := r.Header.Get("Authorization")
	text, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		return nil, trail.Errorf(trail.EUNAUTHORIZED, "missing API key: send Authorization: Bearer trail_ID_SECRET")
	}
	id, hash, err := trail.ParseAPIKey(strings.TrimSpace(text))
	if err != nil {
		return nil, err
	}
	k, err := s.key(r.Context(), id)
	if err != nil {
		return nil, err
	}
	// An operator's record is used only with an operator's text, and a
	// tenant's only with a tenant's: the text says what it is.
	if !k.Matches(hash) || k.Operator() != strings.HasPrefix(strings.TrimSpace(text), trail.OperatorKeyPrefix) {
		return nil, trail.Errorf(trail.EUNAUTHORIZED, "unknown API key")
	}
	if k.Revoked() {
		return nil, trail.Errorf(trail.EUNAUTHORIZED, "this API key was revoked")
	}
	return k, nil
}

// key returns the record of the key id, revoked or not, from the cache
// (for at most Limits.KeyCacheTTL) or the store; EUNAUTHORIZED when there
// is none.
func (s *Server) key(ctx context.Context, id string) (*trail.APIKey, error) {
	now := s.c.Now()
	s.keyMu.Lock()
	ck, ok := s.keys[id]
	s.keyMu.Unlock()
	if ok && now.Sub(ck.fetched) <= s.c.Limits.KeyCacheTTL {
		return ck.k, nil
	}
	k, err := s.c.Keys.Key(ctx, id)
	if trail.ErrorCode(err) == trail.ENOTFOUND {
		return nil, trail.Errorf(trail.EUNAUTHORIZED, "unknown API key")
	}
	if err != nil {
		return nil, err
	}
	s.keyMu.Lock()
	s.keys[id] = cachedKey{k: k, fetched: now}
	s.keyMu.Unlock()
	return k, nil
}

// forgetKey drops a key from the cache (after a revocation).
func (s *Server) forgetKey(id string) {
	s.keyMu.Lock()
	delete(s.keys, id)
	s.keyMu.Unlock()
}

// trusted reports whether a is one of the trusted proxies.
func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.c.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientIP returns the address of the request's client: the connection's,
// or, from a trusted proxy, the rightmost untrusted X-Forwarded-For entry.
func (s *Server) clientIP(r *http.Request) string {
	return clientip.FromRequest(r, s.c.TrustedProxies)
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}
