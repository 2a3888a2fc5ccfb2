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

	"github.com/spf13/cobra"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/detect"
	trailhttp "github.com/trailaudit/trail/http"
)

func newServeCmd(e *env) *cobra.Command {
	var (
		sf       storeFlags
		addr     string
		proxies  []string
		tenant   string
		shutdown time.Duration
		rate     float64
		detects  bool
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

It runs the detection rules over every tenant's log (the built-in set and
each tenant's own rule files, PUT /v1/rules/{name} or trail rules add), and
records what they find as alert_raised events. Where several Trail processes
share one PostgreSQL database, run the rules in one of them: give the others
--detect=false.

SIGINT or SIGTERM stops it gracefully: it stops accepting, lets requests in
flight finish (every acknowledged event is committed), stops the rules, and
closes the store.

Every flag has an environment variable: TRAIL_ADDR, TRAIL_DATA,
TRAIL_POSTGRES, TRAIL_SIGNING_KEY, TRAIL_TRUSTED_PROXIES (comma-separated),
TRAIL_BOOTSTRAP_TENANT, TRAIL_RATE_LIMIT, TRAIL_DETECT. A flag given wins over its variable. (TRAIL_DATA,
TRAIL_POSTGRES and TRAIL_SIGNING_KEY apply to every command.)`,
		Example: `  trail serve
  TRAIL_POSTGRES=postgres://trail@db/trail trail serve --addr :8080 --trusted-proxy 10.0.0.0/8`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := fromEnv(cmd, e, map[string]string{"addr": "TRAIL_ADDR", "trusted-proxy": "TRAIL_TRUSTED_PROXIES",
				"bootstrap-tenant": "TRAIL_BOOTSTRAP_TENANT", "rate-limit": "TRAIL_RATE_LIMIT", "detect": "TRAIL_DETECT"}); err != nil {
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
			return serve(cmd.Context(), e, &sf, addr, trusted, tenant, shutdown, rate, detects)
		},
	}
	sf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "127.0.0.1:8080", "address to listen on")
	f.StringSliceVar(&proxies, "trusted-proxy", nil, "address or CIDR of a proxy whose X-Forwarded-For is believed (repeatable)")
	f.StringVar(&tenant, "bootstrap-tenant", "default", "tenant of the bootstrap admin key made on first start")
	f.DurationVar(&shutdown, "shutdown-timeout", 30*time.Second, "how long a graceful stop waits for requests in flight")
	f.Float64Var(&rate, "rate-limit", 0, "requests per second each API key may make (0: the default, 2000; negative: no limit)")
	f.BoolVar(&detects, "detect", true, "run the detection rules over the tenants' logs")
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

func serve(ctx context.Context, e *env, sf *storeFlags, addr string, trusted []netip.Prefix, tenant string, grace time.Duration, rate float64, detects bool) error {
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
	var sv *detect.Supervisor
	if detects {
		// The rules read the log with personal data opened (d.Reader), as
		// people are shown it.
		if sv, err = detect.NewSupervisor(detect.SupervisorConfig{Log: d.Reader, Tenants: d.Tenants, Rules: d.Rules, Cursors: d.Cursors,
			Writer: d.Writer, Actions: d.Catalog, Logger: log}); err != nil {
			return &exitError{code: 1, err: err}
		}
	}
	srv, err := trailhttp.New(trailhttp.Config{Store: d.Reader, Writer: d.Writer, Keys: d.Keys, Catalog: d.Catalog, Actions: d.Actions,
		Holds: d.Holds, Eraser: d.Sealer, Rules: d.Rules, Detections: sv, Verifier: d.Signer.Verifier(), Logger: log,
		TrustedProxies: trusted, Limits: trailhttp.Limits{Rate: rate}})
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
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	dctx, stopDetect := context.WithCancel(context.WithoutCancel(ctx))
	detected := make(chan struct{})
	go func() {
		defer close(detected)
		if sv != nil {
			sv.Run(dctx)
		}
	}()
	defer func() { stopDetect(); <-detected }()
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
	stopDetect()
	<-detected
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
