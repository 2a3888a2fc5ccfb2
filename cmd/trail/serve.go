package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"github.com/trailaudit/trail"
	trailhttp "github.com/trailaudit/trail/http"
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
	)
	cmd := &cobra.Command{
		Use:   "serve [--addr HOST:PORT] [--data DIR | --postgres URL]",
		Short: "Run the Trail service (HTTP API and web UI)",
		Long: `Serve runs the HTTP API on --addr (default 127.0.0.1:8080) over the embedded
SQLite database in --data (default ./trail-data) or PostgreSQL (--postgres).
It prints the address it listens on (with --addr 127.0.0.1:0, the port it
got).

On first start it makes the signing key (DATA/log.key) and a bootstrap admin
API key for tenant --bootstrap-tenant, printed once and stored only hashed:
create the apps' keys with it (POST /v1/keys, or trail keys create).

With a witness policy (--witness-policy FILE, or DATA/witnesses when it exists:
witness NAME VKEY URL lines and a quorum K line) it submits each tenant's
latest checkpoint to the witnesses every 10s (--witness-interval), for the logs that grew, keeps
their cosignatures, and raises an alert when one refuses (a rollback or fork):
the metric trail_witness_refusals_total, a log line, the health page and a
witness_refused record in the tenant's log. Ingest never waits on witnesses.

SIGINT or SIGTERM stops it gracefully: it stops accepting, lets requests in
flight finish (every acknowledged event is committed), and closes the store.

Every flag has an environment variable: TRAIL_ADDR, TRAIL_DATA,
TRAIL_POSTGRES, TRAIL_SIGNING_KEY, TRAIL_TRUSTED_PROXIES (comma-separated),
TRAIL_BOOTSTRAP_TENANT, TRAIL_RATE_LIMIT, TRAIL_WITNESS_POLICY. A flag given wins over its variable. (TRAIL_DATA,
TRAIL_POSTGRES and TRAIL_SIGNING_KEY apply to every command.)`,
		Example: `  trail serve
  TRAIL_POSTGRES=postgres://trail@db/trail trail serve --addr :8080 --trusted-proxy 10.0.0.0/8`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := fromEnv(cmd, e, map[string]string{"addr": "TRAIL_ADDR", "trusted-proxy": "TRAIL_TRUSTED_PROXIES",
				"bootstrap-tenant": "TRAIL_BOOTSTRAP_TENANT", "rate-limit": "TRAIL_RATE_LIMIT"}); err != nil {
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
			if every <= 0 {
				return usageError("--witness-interval: want a positive duration")
			}
			pf.every = every
			return serve(cmd.Context(), e, &sf, &pf, addr, trusted, tenant, shutdown, rate)
		},
	}
	sf.register(cmd)
	pf.register(cmd)
	f := cmd.Flags()
	f.DurationVar(&every, "witness-interval", witness.DefaultInterval, "how often each tenant's latest checkpoint is submitted to the witnesses at most")
	f.StringVar(&addr, "addr", "127.0.0.1:8080", "address to listen on")
	f.StringSliceVar(&proxies, "trusted-proxy", nil, "address or CIDR of a proxy whose X-Forwarded-For is believed (repeatable)")
	f.StringVar(&tenant, "bootstrap-tenant", "default", "tenant of the bootstrap admin key made on first start")
	f.DurationVar(&shutdown, "shutdown-timeout", 30*time.Second, "how long a graceful stop waits for requests in flight")
	f.Float64Var(&rate, "rate-limit", 0, "requests per second each API key may make (0: the default, 2000; negative: no limit)")
	return cmd
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

func serve(ctx context.Context, e *env, sf *storeFlags, pf *policyFlag, addr string, trusted []netip.Prefix, tenant string, grace time.Duration, rate float64) error {
	log := slog.New(slog.NewTextHandler(e.stderr, nil))
	d, err := sf.open(ctx, e, true)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	defer d.Close()
	bootstrap, err := bootstrapKey(ctx, d.Keys, tenant)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	policy, policyPath, err := pf.load(e, sf)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	hc := trailhttp.Config{Store: d.Reader, Writer: d.Writer, Keys: d.Keys, Catalog: d.Catalog, Actions: d.Actions, Registry: reg,
		Holds: d.Holds, Eraser: d.Sealer, Verifier: d.Signer.Verifier(), Logger: log, TrustedProxies: trusted, Limits: trailhttp.Limits{Rate: rate}}
	// Witnessing runs beside ingest, never in its path, and stops before
	// the store closes.
	witnessing := func() {}
	if policy != nil {
		wr, err := witness.New(witness.Config{Policy: policy, Store: d.Witness, Writer: d.Writer, Interval: pf.every, Logger: log, Registerer: reg})
		if err != nil {
			return &exitError{code: 1, err: err}
		}
		hc.Witnessing = wr
		wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan struct{})
		go func() { defer close(done); wr.Run(wctx) }()
		witnessing = func() { cancel(); <-done }
		defer witnessing()
	}
	srv, err := trailhttp.New(hc)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return usageError("--addr: %v", err)
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
	fmt.Fprintf(e.stdout, "Trail is listening on http://%s (web UI: http://%s/ui/)\n", ln.Addr(), ln.Addr())
	if bootstrap != "" {
		fmt.Fprintf(e.stdout, "Bootstrap admin API key for tenant %s (shown once, stored only hashed):\n%s\n", tenant, bootstrap)
	}
	fmt.Fprintf(e.stdout, "Verifier key (for auditors): %s\n", d.Signer.VerifierKey())
	if policy != nil {
		fmt.Fprintf(e.stdout, "Witnessing each tenant's checkpoints every %v: %s\n", pf.every, describePolicy(policy, policyPath))
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	select {
	case err := <-served:
		return &exitError{code: 1, err: err}
	case <-ctx.Done():
	}
	log.Info("stopping: finishing requests in flight")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		log.Error("requests still in flight at the deadline were cut", "err", err)
	}
	witnessing()
	if err := d.Close(); err != nil {
		return &exitError{code: 1, err: fmt.Errorf("closing the store: %w", err)}
	}
	log.Info("stopped")
	return nil
}

// bootstrapKey makes an admin key when the store has none at all, and
// returns its text ("" when keys exist).
func bootstrapKey(ctx context.Context, keys trail.KeyStore, tenant string) (string, error) {
	all, err := keys.Keys(ctx, "")
	if err != nil || len(all) > 0 {
		return "", err
	}
	text, k, err := trail.NewAPIKey(tenant, "bootstrap admin", trail.KeyScopes, time.Now())
	if err != nil {
		return "", err
	}
	return text, keys.CreateKey(ctx, k)
}
