package main

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/detect"
	trailhttp "github.com/trailaudit/trail/http"
	"github.com/trailaudit/trail/internal/lead"
	"github.com/trailaudit/trail/postgres"
	"github.com/trailaudit/trail/sqlite"
	"github.com/trailaudit/trail/stream/sinks"
	"github.com/trailaudit/trail/witness"
)

func newServeCmd(e *env) *cobra.Command {
	var (
		sf       storeFlags
		pf       policyFlag
		every    time.Duration
		addr     string
		proxies  []string
		tenant   string
		shutdown time.Duration
		rate     float64
		sessions sessionFlags
		detects  bool
		runSinks bool
		people   string
		memory   int64
	)
	cmd := &cobra.Command{
		Use:   "serve [--addr HOST:PORT] [--data DIR | --postgres URL]",
		Short: "Run the Trail service (HTTP API and web UI)",
		Long: `Serve runs the HTTP API and the web UI on --addr (default 127.0.0.1:8080)
over the embedded SQLite database in --data (default ./trail-data) or
PostgreSQL (--postgres). It binds the address first; then it prints the
web UI's address (with --addr 127.0.0.1:0, the port it got).

On first start it makes the signing key (DATA/log.key), an operator
credential (which manages every tenant's keys) and a bootstrap admin API
key for tenant --bootstrap-tenant, each printed once and stored only
hashed: create the apps' keys with them (POST /v1/keys, or trail keys
create). It makes an operator credential at any start that finds none;
when one exists it is not shown again, and serve says how to make
another.

It runs the sinks configured in the store (POST /v1/sinks, trail sinks add):
one per configuration, picked up at once when the API changes one, within
5 seconds when the CLI does.

It runs the detection rules over every tenant's log (the built-in set and
each tenant's own rule files, PUT /v1/rules/{name} or trail rules add), and
records what they find as alert_raised events.

Several serve may share one PostgreSQL database (or data directory): all
serve the API, and they elect one to run the sinks, the rules and the root
log below, so that nothing is done twice (an advisory lock held on a
connection of its own; with SQLite, a lock on DATA/trail.db.leader). The
leader stops that work within 3s of losing its lock; another takes over
within about 10s. The log, /readyz (leader: or follower:) and the
trail_leader gauge say which this one is. --sinks=false and --detect=false
keep it from ever running those.

With a witness policy (--witness-policy FILE, or DATA/witnesses when it exists:
witness NAME VKEY URL lines and a quorum K line) it keeps a root log: every
10s (--witness-interval) it appends the latest checkpoint of each log that
changed (under a hash of its origin) and submits the root log's checkpoint to
the witnesses, one request per witness per round; it keeps their
cosignatures, and raises an alert when one refuses (a rollback or fork): the
metric trail_witness_refusals_total, a log line, the health page and a
witness_refused record in the operators' log. Ingest never waits on
witnesses.

SIGINT or SIGTERM stops it gracefully: it stops accepting, lets requests in
flight finish (every acknowledged event is committed), stops the sinks
(each cursor where its receiver left it) and the rules, and closes the
store.

The web UI (/ui/) signs in with an API key and keeps a session on the
server: it ends when signed out, when its key is revoked, after
--session-idle unused (default 30m) and --session-max after sign-in
(default 12h). Five failed sign-ins from one address in 15 minutes make it
wait. With --people FILE, people sign in as themselves with the OpenID
Connect provider the file names (its issuer, client-id, client-secret and
redirect-url lines; the redirect URL is https://TRAIL/ui/oidc/callback),
and its map lines (map email=ADDRESS|group=NAME tenant=T scopes=read,...)
give each a tenant and scopes, the first that matches deciding; what they
do is recorded with them as the actor. A proxy-headers line in it believes
an identity-aware proxy's X-Forwarded-Email/-User/-Groups (or
X-Auth-Request-*) headers, mapped the same way, but only from
--trusted-proxy addresses.

Every flag has an environment variable: TRAIL_ADDR, TRAIL_DATA,
TRAIL_POSTGRES, TRAIL_SIGNING_KEY, TRAIL_TRUSTED_PROXIES (comma-separated),
TRAIL_BOOTSTRAP_TENANT, TRAIL_RATE_LIMIT, TRAIL_SESSION_IDLE,
TRAIL_SESSION_MAX, TRAIL_DETECT, TRAIL_SINKS, TRAIL_WITNESS_POLICY, TRAIL_PEOPLE,
TRAIL_MEMORY_LIMIT. A flag given wins over its variable. (TRAIL_DATA,
TRAIL_POSTGRES and TRAIL_SIGNING_KEY apply to every command.)`,
		Example: `  trail serve
  TRAIL_POSTGRES=postgres://trail@db/trail trail serve --addr :8080 --trusted-proxy 10.0.0.0/8`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := fromEnv(cmd, e, map[string]string{"addr": "TRAIL_ADDR", "trusted-proxy": "TRAIL_TRUSTED_PROXIES",
				"bootstrap-tenant": "TRAIL_BOOTSTRAP_TENANT", "rate-limit": "TRAIL_RATE_LIMIT",
				"session-idle": "TRAIL_SESSION_IDLE", "session-max": "TRAIL_SESSION_MAX", "detect": "TRAIL_DETECT", "sinks": "TRAIL_SINKS",
				"people": "TRAIL_PEOPLE", "memory-limit": "TRAIL_MEMORY_LIMIT"}); err != nil {
				return err
			}
			if err := limitMemory(e, memory, cmd.Flags().Changed("memory-limit")); err != nil {
				return err
			}
			var trusted []netip.Prefix
			for _, p := range proxies {
				pf, err := netip.ParsePrefix(strings.TrimSpace(p))
				if err != nil {
					a, aerr := netip.ParseAddr(strings.TrimSpace(p))
					if aerr != nil {
						return usageError("--trusted-proxy %q: want an address or CIDR prefix", p)
					}
					pf = netip.PrefixFrom(a, a.BitLen())
				}
				trusted = append(trusted, pf)
			}
			if m := trail.CheckTenant(tenant); m != "" {
				return usageError("--bootstrap-tenant: %s", m)
			}
			if err := sessions.check(); err != nil {
				return err
			}
			if every <= 0 {
				return usageError("--witness-interval: want a positive duration")
			}
			pf.every = every
			var pp *trailhttp.People
			if people != "" {
				b, err := os.ReadFile(people)
				if err != nil {
					return usageError("--people: %v", err)
				}
				if pp, err = trailhttp.ParsePeople(string(b)); err != nil {
					return usageError("--people %s: %s", people, trail.ErrorMessage(err))
				}
			}
			return serve(cmd.Context(), e, &sf, serveOptions{addr: addr, trusted: trusted, tenant: tenant, grace: shutdown, rate: rate,
				sessions: sessions, detect: detects, sinks: runSinks, witnesses: &pf, people: pp})
		},
	}
	sf.register(cmd)
	pf.register(cmd)
	f := cmd.Flags()
	f.DurationVar(&every, "witness-interval", witness.DefaultInterval, "how often the logs that changed are entered in the root log and its checkpoint submitted to the witnesses")
	f.StringVar(&addr, "addr", "127.0.0.1:8080", "address to listen on")
	f.StringSliceVar(&proxies, "trusted-proxy", nil, "address or CIDR of a proxy whose X-Forwarded-For is believed (repeatable)")
	f.StringVar(&tenant, "bootstrap-tenant", "default", "tenant of the bootstrap admin key made on first start")
	f.DurationVar(&shutdown, "shutdown-timeout", 30*time.Second, "how long a graceful stop waits for requests in flight")
	f.Float64Var(&rate, "rate-limit", 0, "requests per second each API key may make (0: the default, 2000; negative: no limit)")
	f.DurationVar(&sessions.idle, "session-idle", 30*time.Minute, "a web UI session ends after this long unused")
	f.DurationVar(&sessions.max, "session-max", 12*time.Hour, "a web UI session ends this long after sign-in, however used")
	f.BoolVar(&detects, "detect", true, "run the detection rules over the tenants' logs")
	f.BoolVar(&runSinks, "sinks", true, "run the configured sinks (they are configured either way)")
	f.Int64Var(&memory, "memory-limit", defaultMemoryLimit, "soft limit of the Go runtime's memory in MiB (debug.SetMemoryLimit): the GC works harder near it, so the process stays under about this plus SQLite's caches; 0: none (GOMEMLIMIT, when set, applies unless this flag or TRAIL_MEMORY_LIMIT is given)")
	f.StringVar(&people, "people", "", "a people file: the OpenID Connect provider people sign in to the web UI with, and the map lines giving them a tenant and scopes")
	return cmd
}

// sessionFlags are the web UI sessions' timeouts.
type sessionFlags struct{ idle, max time.Duration }

func (f sessionFlags) check() error {
	switch {
	case f.idle <= 0:
		return usageError("--session-idle: want a positive duration (30m)")
	case f.max <= 0:
		return usageError("--session-max: want a positive duration (12h)")
	case f.idle > f.max:
		return usageError("--session-idle %v is longer than --session-max %v", f.idle, f.max)
	}
	return nil
}

// fromEnv sets each flag not given on the command line from its
// environment variable, when that is set; a value the flag refuses is a
// usage error naming the variable.
func fromEnv(cmd *cobra.Command, e *env, vars map[string]string) error {
	for flag, name := range vars {
		if v, ok := e.lookupEnv(name); ok && cmd.Flags().Lookup(flag) != nil && !cmd.Flags().Changed(flag) {
			if err := cmd.Flags().Set(flag, v); err != nil {
				return usageError("%s: %v", name, err)
			}
		}
	}
	return nil
}

// defaultMemoryLimit is serve's soft limit of Go's memory, in MiB. Under
// sustained batch ingest the Go heap holds the batches in flight (their
// bodies, parsed events, prepared copies, rows and answers) and, without a
// limit, grows to twice that before each collection: 100 MB of heap in use,
// and an RSS peak of 206 MB with SQLite's caches beside it. At 64 MiB the
// heap stays near 57 MB (docs/benchmarks.md, issue 18); SQLite's caches,
// outside Go's heap, are the rest.
const defaultMemoryLimit = 64

// limitMemory sets the Go runtime's soft memory limit to mib MiB (0: no
// limit), unless the flag was not given (nor TRAIL_MEMORY_LIMIT) and
// GOMEMLIMIT is set: then the runtime applies GOMEMLIMIT, as every Go
// program does.
func limitMemory(e *env, mib int64, given bool) error {
	if mib < 0 {
		return usageError("--memory-limit %d: want MiB, 0 for no limit", mib)
	}
	if v, ok := e.lookupEnv("GOMEMLIMIT"); ok && v != "" && !given {
		return nil
	}
	limit := int64(math.MaxInt64)
	if mib > 0 {
		limit = mib << 20
	}
	debug.SetMemoryLimit(limit)
	return nil
}

// serveOptions are what serve's flags say.
type serveOptions struct {
	addr     string
	trusted  []netip.Prefix // proxies whose X-Forwarded-For is believed
	tenant   string         // of the bootstrap admin key
	grace    time.Duration  // a graceful stop waits this long for requests in flight
	rate     float64        // per API key (0: the default; negative: none)
	sessions sessionFlags
	detect   bool // run the detection rules
	sinks    bool // run the sinks
	// witnesses is the witness policy to cosign with (none when its
	// file is not there) and how often to submit.
	witnesses *policyFlag
	people    *trailhttp.People // who signs in as themselves (--people); nil: nobody
	// elect times the election of the process that runs the singleton
	// work (zero: the defaults; tests make it quick).
	elect postgres.ElectorOptions
}

func serve(ctx context.Context, e *env, sf *storeFlags, o serveOptions) error {
	log := slog.New(slog.NewTextHandler(e.stderr, nil))
	// Bind first: a server that cannot listen makes no credential, which
	// it could then never show.
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return usageError("--addr %s: %v (is another server using it? pick another --addr)", o.addr, err)
	}
	defer ln.Close()
	d, err := sf.open(ctx, e, true)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	defer d.Close()
	// The sinks stream the log as stored (personal data sealed: the bytes
	// the tree hashes), from a context of their own: they stop after the
	// requests in flight, before the store closes.
	var sinksv *sinks.Supervisor
	if o.sinks {
		if sinksv, err = sinks.New(sinks.Config{Configs: d.Sinks, Log: d.Store, Cursors: d.Cursors, Writer: d.Writer, Actions: d.Catalog, Logger: log}); err != nil {
			return &exitError{code: 1, err: err}
		}
	}
	var detectsv *detect.Supervisor
	if o.detect {
		// The rules read the log with personal data opened (d.Reader), as
		// people are shown it.
		if detectsv, err = detect.NewSupervisor(detect.SupervisorConfig{Log: d.Reader, Tenants: d.Tenants, Rules: d.Rules, Cursors: d.Cursors,
			Writer: d.Writer, Actions: d.Catalog, Logger: log}); err != nil {
			return &exitError{code: 1, err: err}
		}
	}
	pf := o.witnesses
	if pf == nil {
		pf = &policyFlag{every: witness.DefaultInterval}
	}
	policy, policyPath, err := pf.load(e, sf)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	hc := trailhttp.Config{Store: d.Reader, Writer: d.Writer, Keys: d.Keys, Catalog: d.Catalog, Actions: d.Actions, Registry: reg,
		Holds: d.Holds, Tenants: d.Tenants, Eraser: d.Sealer, Sinks: d.Sinks, Rules: d.Rules, Detections: detectsv,
		Verifier: d.Signer.Verifier(), Logger: log, TrustedProxies: o.trusted, Limits: trailhttp.Limits{Rate: o.rate},
		Sessions: d.Sessions, SessionIdle: o.sessions.idle, SessionMax: o.sessions.max, People: o.people}
	if sinksv != nil { // a nil *Supervisor in the interface would not be nil
		hc.SinkRunner = sinksv
	}
	if o.people != nil && o.people.OIDC != nil {
		if hc.OIDC, err = trailhttp.NewOIDC(ctx, o.people.OIDC, nil); err != nil {
			return &exitError{code: 1, err: err}
		}
	}
	// The singleton work runs only in the process that leads (see
	// runSingletons); witnessing runs beside ingest, never in its path.
	var singletons []func(context.Context)
	if sinksv != nil {
		singletons = append(singletons, func(ctx context.Context) { sinksv.Run(ctx) })
	}
	if detectsv != nil {
		singletons = append(singletons, func(ctx context.Context) { detectsv.Run(ctx) })
	}
	if policy != nil {
		wr, err := witness.New(witness.Config{Policy: policy, Store: d.Witness, Writer: d.Writer, Interval: pf.every, Logger: log, Registerer: reg})
		if err != nil {
			return &exitError{code: 1, err: err}
		}
		hc.Witnessing = wr
		singletons = append(singletons, wr.Run)
	}
	leading := &lead.Status{}
	if len(singletons) > 0 {
		hc.Leadership = leading
	}
	if err := reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "trail_leader",
		Help: "1 while this process runs the background work (root log and witnessing, detections, sinks), elected among the processes sharing the store; else 0."},
		func() float64 {
			if leading.Leading() {
				return 1
			}
			return 0
		})); err != nil {
		return &exitError{code: 1, err: err}
	}
	if d.WAL != nil {
		if err := registerWAL(reg, d.WAL); err != nil {
			return &exitError{code: 1, err: err}
		}
	}
	srv, err := trailhttp.New(hc)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	fmt.Fprintf(e.stdout, "Trail web UI: http://%s/ui/\n", ln.Addr())
	fmt.Fprintf(e.stdout, "Trail is listening on http://%s (API under /v1/)\n", ln.Addr())
	if err := bootstrap(ctx, e, d.Keys, o.tenant, sf); err != nil {
		return &exitError{code: 1, err: err}
	}
	fmt.Fprintf(e.stdout, "Verifier key (for auditors): %s\n", d.Signer.VerifierKey())
	if hc.OIDC != nil {
		fmt.Fprintf(e.stdout, "People sign in to the web UI with %s (%d map rules)\n", o.people.OIDC.Issuer, len(o.people.Rules))
	}
	if policy != nil {
		fmt.Fprintf(e.stdout, "Witnessing the tenants' checkpoints through the root log every %v: %s\n", pf.every, describePolicy(policy, policyPath))
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The singletons stop after the requests in flight, before the store
	// closes: from a context of their own.
	eo := o.elect
	eo.Logger = cmp.Or(eo.Logger, log)
	stopSingletons := runSingletons(context.WithoutCancel(ctx), d.Elector(eo), log, leading, singletons)
	defer stopSingletons()
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	select {
	case err := <-served:
		return &exitError{code: 1, err: err}
	case <-ctx.Done():
	}
	log.Info("stopping: finishing requests in flight")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.grace)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		log.Error("requests still in flight at the deadline were cut", "err", err)
	}
	stopSingletons()
	if err := d.Close(); err != nil {
		return &exitError{code: 1, err: fmt.Errorf("closing the store: %w", err)}
	}
	log.Info("stopped")
	return nil
}

// registerWAL registers on reg the trail_sqlite_wal_* series: what
// stats (the SQLite store's DB.WALStats) says at each scrape, read once a
// scrape so that the series agree with each other.
func registerWAL(reg prometheus.Registerer, stats func() sqlite.WALStats) error {
	c := &walCollector{stats: stats}
	for _, m := range []struct {
		name, help string
		kind       prometheus.ValueType
		value      func(sqlite.WALStats) float64
	}{
		{"trail_sqlite_wal_resets_total", "Resets of the SQLite write-ahead log (RESTART checkpoints, once it is over its bound) since the store opened.", prometheus.CounterValue,
			func(s sqlite.WALStats) float64 { return float64(s.Resets) }},
		{"trail_sqlite_wal_resets_busy_total", "Resets of the SQLite write-ahead log a reader on an older snapshot kept from finishing (the log stays over its bound until a later one).", prometheus.CounterValue,
			func(s sqlite.WALStats) float64 { return float64(s.Busy) }},
		{"trail_sqlite_wal_reset_held_seconds_total", "Time the resets of the SQLite write-ahead log held the writer (appends waited).", prometheus.CounterValue,
			func(s sqlite.WALStats) float64 { return s.Held.Seconds() }},
		{"trail_sqlite_wal_reset_waited_seconds_total", "Time the checkpointer waited for the writer before resetting the SQLite write-ahead log.", prometheus.CounterValue,
			func(s sqlite.WALStats) float64 { return s.Waited.Seconds() }},
		{"trail_sqlite_wal_largest_bytes", "The largest SQLite write-ahead log a checkpoint found since the store opened.", prometheus.GaugeValue,
			func(s sqlite.WALStats) float64 { return float64(s.Largest) }},
	} {
		c.series = append(c.series, walSeries{prometheus.NewDesc(m.name, m.help, nil, nil), m.kind, m.value})
	}
	if err := reg.Register(c); err != nil {
		return fmt.Errorf("register the trail_sqlite_wal_* series: %w", err)
	}
	return nil
}

// walCollector is registerWAL's prometheus.Collector.
type walCollector struct {
	stats  func() sqlite.WALStats
	series []walSeries
}

// walSeries is one of walCollector's series.
type walSeries struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(sqlite.WALStats) float64
}

var _ prometheus.Collector = (*walCollector)(nil)

func (c *walCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.series {
		ch <- m.desc
	}
}

func (c *walCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	for _, m := range c.series {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(s))
	}
}

// runSingletons runs the singleton work (each of work, side by side) while
// this process leads among those sharing the store (elector), stopping it
// on a loss of leadership and starting it again on regain, until the
// function it returns is called: that stops the work, releases leadership
// and returns once done (calling it again does nothing). With no work it
// asks for no leadership.
func runSingletons(ctx context.Context, elector trail.Elector, log *slog.Logger, st *lead.Status, work []func(context.Context)) (stop func()) {
	if len(work) == 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		lead.Run(ctx, elector, log, st, func(ctx context.Context) {
			var wg sync.WaitGroup
			for _, w := range work {
				wg.Go(func() { w(ctx) })
			}
			wg.Wait()
		})
	}()
	return sync.OnceFunc(func() { cancel(); <-done })
}

// bootstrap makes and prints, once the server is bound, the credentials a
// new deployment needs: an operator credential when there is no live one,
// and an admin key for tenant when no tenant has a key. A credential that
// exists is never shown again (only its hash is kept), so when it makes no
// operator credential it says how to make another.
func bootstrap(ctx context.Context, e *env, keys trail.KeyStore, tenant string, sf *storeFlags) error {
	all, err := keys.Keys(ctx, "")
	if err != nil {
		return err
	}
	operators, tenants := 0, 0
	for _, k := range all {
		switch {
		case k.Operator() && !k.Revoked():
			operators++
		case !k.Operator():
			tenants++
		}
	}
	if operators == 0 {
		text, k, err := trail.NewOperatorKey("bootstrap operator", time.Now())
		if err != nil {
			return err
		}
		if err := keys.CreateKey(ctx, k); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "Operator credential (manages every tenant's keys; shown once, stored only hashed):\n%s\n", text)
	} else {
		fmt.Fprintf(e.stdout, "Operator credentials exist and are not shown again; to make another: trail operator create --name NAME%s\n", storeArgs(sf))
	}
	if tenants == 0 {
		text, k, err := trail.NewAPIKey(tenant, "bootstrap admin", trail.KeyScopes, time.Now())
		if err != nil {
			return err
		}
		if err := keys.CreateKey(ctx, k); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "Bootstrap admin API key for tenant %s (shown once, stored only hashed):\n%s\n", tenant, text)
	}
	return nil
}

// storeArgs is what a command must be given to find the store serve uses,
// as a hint: the flags, never a URL's secrets.
func storeArgs(sf *storeFlags) string {
	switch {
	case sf.postgres != "":
		return " --postgres URL"
	case sf.data != "trail-data":
		return " --data " + sf.data
	}
	return ""
}
