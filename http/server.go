// Package http is Trail's HTTP API: ingest, search, export, checkpoints and
// proofs, the action catalog and API keys, under /v1, with health, readiness
// and Prometheus metrics beside it.
//
// Start with New, then serve Server.Handler (cmd/trail's serve does, with
// timeouts and a graceful shutdown). Every /v1 route but the OpenAPI
// document needs an API key (Authorization: Bearer trail_ID_SECRET) with the
// route's scope; the tenant every request acts on is the key's, never one
// named in the request. Reading the log is itself recorded in the log: each
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
	Writer   ledger.Writer
	Keys     trail.KeyStore
	Catalog  *catalog.Catalog
	Actions  trail.ActionStore // where registered custom actions are kept; nil: not kept
	Holds    trail.HoldStore   // legal holds (the /v1/holds routes); nil: none kept
	Eraser   *erasure.Sealer   // erases data subjects (POST /v1/subjects/{id}/erase); nil: no sealing
	Verifier *tlog.Verifier    // checks the checkpoints the API serves
	// Witnessing is the witnesses' cosigning of the checkpoints
	// (witness.Witnesser): GET /v1/checkpoint?cosigned=1 and the health
	// page. Nil: the log is not witnessed.
	Witnessing Witnessing
	Logger     *slog.Logger // default: slog.Default()
	// TrustedProxies are the addresses whose X-Forwarded-For is believed:
	// the client IP is the rightmost address in it that is not one of
	// them. Empty: the connection's address is the client's.
	TrustedProxies []netip.Prefix
	Limits         Limits
	Registry       *prometheus.Registry // for /metrics; default: a new one
	Now            func() time.Time     // default time.Now
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

// Limits bound what one request may ask. Zero fields take the defaults.
type Limits struct {
	MaxBody      int64   // bytes of a request other than a batch (default 1 MiB)
	MaxBatchBody int64   // bytes of a batch (default 32 MiB)
	MaxBatch     int     // events in a batch (default 10000)
	Rate         float64 // requests per second per key (default 2000; negative: no limit)
	Burst        int     // requests a key may make at once above its rate (default twice the rate)
	KeyCacheTTL  time.Duration
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
}

// Server answers the API. Create it with New.
type Server struct {
	c       Config
	log     *slog.Logger
	mux     *http.ServeMux
	routes  []string // "METHOD /path" of every route, for the OpenAPI check
	metrics *metrics
	limiter *limiter

	keyMu sync.Mutex
	keys  map[string]cachedKey

	ui *ui // the web UI under /ui/ (ui.go); its routes are not in routes

	writes writes // the last failure to write, for /readyz (ready.go)
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
	c.Limits.defaults()
	s := &Server{c: c, log: c.Logger, mux: http.NewServeMux(), keys: map[string]cachedKey{},
		limiter: newLimiter(c.Limits.Rate, c.Limits.Burst)}
	var err error
	if s.metrics, err = newMetrics(c.Registry); err != nil {
		return nil, err
	}
	s.routesInit()
	return s, nil
}

// Handler returns the server's handler.
func (s *Server) Handler() http.Handler { return s.mux }

// Routes returns "METHOD /path" for every route the server answers.
func (s *Server) Routes() []string { return append([]string(nil), s.routes...) }

// handlerFunc is a route's handler: it writes a response or returns an
// error, which becomes problem details.
type handlerFunc func(w http.ResponseWriter, r *http.Request, k *trail.APIKey) error

func (s *Server) routesInit() {
	open := func(pattern string, h http.HandlerFunc) {
		s.routes = append(s.routes, pattern)
		s.mux.Handle(pattern, h)
	}
	open("GET /healthz", s.healthz)
	open("GET /readyz", s.readyz)
	open("GET /metrics", s.metricsHandler().ServeHTTP)
	open("GET /v1/openapi.json", s.openapi)

	route := func(pattern string, scope trail.KeyScope, h handlerFunc) {
		s.routes = append(s.routes, pattern)
		s.mux.Handle(pattern, s.authed(pattern, scope, h))
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
	route("GET /v1/keys", trail.ScopeAdmin, s.listKeys)
	route("POST /v1/keys", trail.ScopeAdmin, s.postKey)
	route("DELETE /v1/keys/{id}", trail.ScopeAdmin, s.revokeKey)
	route("GET /v1/holds", trail.ScopeAdmin, s.listHolds)
	route("POST /v1/holds", trail.ScopeAdmin, s.postHold)
	route("DELETE /v1/holds/{id}", trail.ScopeAdmin, s.releaseHold)
	route("POST /v1/subjects/{id}/erase", trail.ScopeAdmin, s.eraseSubject)

	s.mux.Handle("/ui/", s.uiRoutes()) // the web UI (ui.go), outside the API's routes
}

// authed wraps a route: request id, the key and its scope, the rate limit,
// metrics, and errors as problem details.
func (s *Server) authed(pattern string, scope trail.KeyScope, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t0 := time.Now()
		r = r.WithContext(withRequestID(r, w, t0))
		err := func() error {
			k, err := s.authenticate(r)
			if err != nil {
				return err
			}
			if !k.Has(scope) {
				return trail.Errorf(trail.EFORBIDDEN, "this key lacks the %s scope", scope)
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
	now := s.c.Now()
	s.keyMu.Lock()
	ck, ok := s.keys[id]
	s.keyMu.Unlock()
	if !ok || now.Sub(ck.fetched) > s.c.Limits.KeyCacheTTL {
		k, err := s.c.Keys.Key(r.Context(), id)
		if trail.ErrorCode(err) == trail.ENOTFOUND {
			return nil, trail.Errorf(trail.EUNAUTHORIZED, "unknown API key")
		}
		if err != nil {
			return nil, err
		}
		ck = cachedKey{k: k, fetched: now}
		s.keyMu.Lock()
		s.keys[id] = ck
		s.keyMu.Unlock()
	}
	if !ck.k.Matches(hash) {
		return nil, trail.Errorf(trail.EUNAUTHORIZED, "unknown API key")
	}
	if ck.k.Revoked() {
		return nil, trail.Errorf(trail.EUNAUTHORIZED, "this API key was revoked")
	}
	return ck.k, nil
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
