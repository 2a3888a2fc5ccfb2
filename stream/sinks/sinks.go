// Package sinks runs the sinks configured in a store (trail.SinkStore):
// one stream.Sink per configuration, over the transport its kind names.
//
// A Supervisor reads the configurations when it starts, again every few
// seconds and whenever Reload is called, and starts the sinks added, stops
// the ones removed and restarts one whose configuration changed. A sink
// that fails for a reason worth a retry (the store, the NATS server
// unreachable) is run again with backoff and jitter; one that stops for
// good (stream.Final: the receiver refused a message, the log went back)
// stays stopped, with its error in its status, until it is resumed
// (Resume) or its configuration is removed or put again. Such a stop is an
// alert: a log line at error level, Status.Stopped (the server's
// trail_sink_stopped metric) and a sink_stopped record in the tenant's
// log. A sink configured to skip (on_refusal skip) records each event its
// receiver refuses as sink_skipped and goes on. Statuses says what each is
// doing.
package sinks

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/ledger"
	"github.com/trailaudit/trail/stream"
	"github.com/trailaudit/trail/stream/natsjs"
)

// Config configures a Supervisor.
type Config struct {
	// Configs is where the sinks' configurations are kept. Required.
	Configs trail.SinkStore
	// Log is the log the sinks stream (its stored bytes and checkpoints),
	// Cursors where their positions are kept. Required.
	Log     trail.Log
	Cursors trail.CursorStore
	// Writer is where the supervisor's own records go: a sink stopped for
	// good (sink_stopped), an event skipped (sink_skipped). Required.
	Writer ledger.Writer
	// Reload is how often the configurations are read again (default 5s).
	Reload time.Duration
	// MinBackoff and MaxBackoff bound the wait before a failed sink runs
	// again, which doubles from MinBackoff (default 1s) up to MaxBackoff
	// (default 1m), with jitter.
	MinBackoff, MaxBackoff time.Duration
	// Sink tunes every sink: its Batch, Poll, CheckpointEvery, MinBackoff
	// and MaxBackoff are used (zero: stream's defaults); the rest is the
	// supervisor's to set.
	Sink stream.Config
	// Actions resolves action names for the sinks in OCSF (class,
	// severity), each sink through its tenant's view when Actions is a
	// trail.TenantResolver (a catalog); nil maps from what the events
	// carry.
	Actions trail.ActionResolver
	// Logger gets a line when a sink starts, fails or stops (default:
	// none).
	Logger *slog.Logger
}

// Supervisor runs the configured sinks. Create it with New, then call Run.
type Supervisor struct {
	c      Config
	reload chan struct{}

	mu      sync.Mutex
	runners map[key]*runner
}

type key struct{ tenant, name string }

// New returns the supervisor c describes.
func New(c Config) (*Supervisor, error) {
	if c.Configs == nil || c.Log == nil || c.Cursors == nil || c.Writer == nil {
		return nil, errors.New("sinks: Configs, Log, Cursors and Writer are required")
	}
	if c.Reload <= 0 {
		c.Reload = 5 * time.Second
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = time.Second
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = max(time.Minute, c.MinBackoff)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return &Supervisor{c: c, reload: make(chan struct{}, 1), runners: map[key]*runner{}}, nil
}

// Run runs the sinks until ctx is done, then stops them all and returns
// nil once they have stopped.
func (sv *Supervisor) Run(ctx context.Context) error {
	t := time.NewTicker(sv.c.Reload)
	defer t.Stop()
	defer sv.stopAll()
	for {
		sv.sync(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-sv.reload:
		}
	}
}

// Reload makes Run read the configurations again now (the API calls it
// after adding or removing a sink). It never waits.
func (sv *Supervisor) Reload() {
	select {
	case sv.reload <- struct{}{}:
	default:
	}
}

// Resume runs again tenant's sink name, which stopped for good: from its
// cursor, at once. It returns ENOTFOUND when the supervisor does not run
// that sink, ECONFLICT when the sink has not stopped. The caller records
// the resume (Resumed).
func (sv *Supervisor) Resume(tenant, name string) error {
	sv.mu.Lock()
	r, ok := sv.runners[key{tenant, name}]
	if ok && r.status().Stopped {
		delete(sv.runners, key{tenant, name}) // the next sync starts it afresh
	}
	sv.mu.Unlock()
	switch {
	case !ok:
		return trail.Errorf(trail.ENOTFOUND, "tenant %s has no sink %q running here", tenant, name)
	case !r.status().Stopped:
		return trail.Errorf(trail.ECONFLICT, "sink %q has not stopped: nothing to resume", name)
	}
	r.stop()
	sv.Reload()
	return nil
}

// Statuses returns the status of each of tenant's sinks (every tenant's
// for ""), by tenant and name. Delivered and Failures count over every run
// of the sink since the supervisor started it.
func (sv *Supervisor) Statuses(tenant string) []stream.Status {
	sv.mu.Lock()
	rs := make([]*runner, 0, len(sv.runners))
	for k, r := range sv.runners {
		if tenant == "" || k.tenant == tenant {
			rs = append(rs, r)
		}
	}
	sv.mu.Unlock()
	out := make([]stream.Status, len(rs))
	for i, r := range rs {
		out[i] = r.status()
	}
	slices.SortFunc(out, func(a, b stream.Status) int {
		return cmp.Or(strings.Compare(a.Tenant, b.Tenant), strings.Compare(a.Name, b.Name))
	})
	return out
}

// Status returns the status of tenant's sink name, and false when the
// supervisor does not run it (yet: a sink just added starts at the next
// reload).
func (sv *Supervisor) Status(tenant, name string) (stream.Status, bool) {
	sv.mu.Lock()
	r, ok := sv.runners[key{tenant, name}]
	sv.mu.Unlock()
	if !ok {
		return stream.Status{}, false
	}
	return r.status(), true
}

// sync starts, stops and restarts sinks to match the stored
// configurations. When they cannot be read, the sinks go on as they are.
func (sv *Supervisor) sync(ctx context.Context) {
	cfgs, err := sv.c.Configs.Sinks(ctx, "")
	if err != nil {
		if ctx.Err() == nil {
			sv.c.Logger.WarnContext(ctx, "sinks: reading the sinks' configurations failed; the sinks go on as they were", "err", err)
		}
		return
	}
	want := map[key]*trail.SinkConfig{}
	for _, c := range cfgs {
		want[key{c.Tenant, c.Name}] = c
	}
	sv.mu.Lock()
	var stop []*runner
	for k, r := range sv.runners {
		if c, ok := want[k]; !ok || *c != r.cfg {
			stop = append(stop, r)
			delete(sv.runners, k)
		}
	}
	var start []*runner
	for k, c := range want {
		if _, ok := sv.runners[k]; !ok {
			r := newRunner(ctx, c)
			sv.runners[k] = r
			start = append(start, r)
		}
	}
	sv.mu.Unlock()
	for _, r := range stop {
		r.stop()
		sv.c.Logger.InfoContext(ctx, "sinks: sink stopped: its configuration was removed or changed", "tenant", r.cfg.Tenant, "sink", r.cfg.Name)
	}
	for _, r := range start {
		sv.c.Logger.InfoContext(ctx, "sinks: sink started", "tenant", r.cfg.Tenant, "sink", r.cfg.Name, "kind", r.cfg.Kind, "to", r.cfg.Target())
		go sv.supervise(r)
	}
}

// stopAll stops every sink and waits for them.
func (sv *Supervisor) stopAll() {
	sv.mu.Lock()
	rs := make([]*runner, 0, len(sv.runners))
	for _, r := range sv.runners {
		rs = append(rs, r)
	}
	sv.mu.Unlock()
	for _, r := range rs {
		r.cancel()
	}
	for _, r := range rs {
		<-r.done
	}
}

// supervise runs r's sink until its context ends or it stops for good,
// running it again after any other failure.
func (sv *Supervisor) supervise(r *runner) {
	defer close(r.done)
	ctx := r.ctx
	wait := sv.c.MinBackoff
	for {
		began := time.Now()
		err := sv.runOnce(ctx, r)
		if ctx.Err() != nil {
			return
		}
		if stream.Final(err) || isConfigError(err) {
			r.ended(err, true)
			sv.c.Logger.ErrorContext(ctx, "sinks: sink stopped for good; resume it once fixed (POST /v1/sinks/NAME:resume)",
				"tenant", r.cfg.Tenant, "sink", r.cfg.Name, "err", err)
			sv.recordStop(ctx, r)
			return
		}
		if time.Since(began) > sv.c.MaxBackoff {
			wait = sv.c.MinBackoff // it ran a good while: this is a new failure
		}
		r.ended(err, false)
		d := wait/2 + rand.N(wait/2+1)
		sv.c.Logger.WarnContext(ctx, "sinks: sink failed; running it again", "tenant", r.cfg.Tenant, "sink", r.cfg.Name, "in", d, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
		wait = min(2*wait, sv.c.MaxBackoff)
	}
}

// runOnce builds r's transport and sink and runs it.
func (sv *Supervisor) runOnce(ctx context.Context, r *runner) error {
	tr, done, err := Transport(ctx, &r.cfg, trail.ResolverFor(sv.c.Actions, r.cfg.Tenant))
	if err != nil {
		return err
	}
	defer done()
	sc := sv.c.Sink
	sc.Name, sc.Tenant, sc.Log, sc.Cursors, sc.Transport, sc.Logger = r.cfg.Name, r.cfg.Tenant, sv.c.Log, sv.c.Cursors, tr, sv.c.Logger
	sc.Skip = nil
	if r.cfg.OnRefusal == trail.OnRefusalSkip {
		sc.Skip = sv.skipper(r.cfg.Tenant, r.cfg.Name)
	}
	sk, err := stream.New(sc)
	if err != nil {
		return configError{err}
	}
	r.running(sk)
	return sk.Run(ctx)
}

// configError is the error of a configuration no transport can be built
// from: running the sink again would not help.
type configError struct{ err error }

func (e configError) Error() string { return e.err.Error() }
func (e configError) Unwrap() error { return e.err }

func isConfigError(err error) bool {
	var ce configError
	return errors.As(err, &ce)
}

// Transport builds the transport c names, writing its format (an OCSF
// sink maps actions through actions; nil: from what the events carry),
// and returns what releases it once the sink is done with it. A NATS sink connects to its server here
// (an error worth a retry when the server is unreachable); a configuration
// no transport can be built from is an error no retry cures.
func Transport(ctx context.Context, c *trail.SinkConfig, actions trail.ActionResolver) (stream.Transport, func(), error) {
	nothing := func() {}
	enc := stream.Encoding{OCSF: c.Format == trail.FormatOCSF, Actions: actions}
	switch c.Kind {
	case trail.SinkWebhook:
		w, err := stream.NewWebhook(c.URL, stream.WebhookOptions{Secret: c.Secret, Splunk: c.Format == trail.FormatSplunk, Encoding: enc})
		if err != nil {
			return nil, nil, configError{err}
		}
		return w, nothing, nil
	case trail.SinkSyslog:
		var o stream.SyslogOptions
		if c.TLS {
			host, _, err := net.SplitHostPort(c.Address)
			if err != nil {
				return nil, nil, configError{err}
			}
			o.TLS = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		}
		s, err := stream.NewSyslog(c.Address, o)
		if err != nil {
			return nil, nil, configError{err}
		}
		return s, func() { s.Close() }, nil
	case trail.SinkNATS:
		nc, err := nats.Connect(c.URL, nats.Name("trail sink "+c.Tenant+"/"+c.Name))
		if err != nil {
			return nil, nil, fmt.Errorf("sinks: connect to NATS at %s: %w", c.Public().URL, err)
		}
		t, err := natsjs.New(nc, c.Subject, enc)
		if err != nil {
			nc.Close()
			return nil, nil, configError{err}
		}
		return t, nc.Close, nil
	}
	return nil, nil, configError{fmt.Errorf("sinks: sink %s/%s: unknown kind %q", c.Tenant, c.Name, c.Kind)}
}

// runner is one configured sink under supervision.
type runner struct {
	cfg    trail.SinkConfig
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu   sync.Mutex
	sink *stream.Sink  // the current run's; nil between runs
	last stream.Status // as the last run ended (or before the first)
	base [3]uint64     // Delivered, Failures and Skipped of the runs ended
}

func newRunner(parent context.Context, c *trail.SinkConfig) *runner {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	return &runner{cfg: *c, ctx: ctx, cancel: cancel, done: make(chan struct{}),
		last: stream.Status{Name: c.Name, Tenant: c.Tenant}}
}

// stop cancels the runner and waits for its sink to stop.
func (r *runner) stop() {
	r.cancel()
	<-r.done
}

func (r *runner) running(sk *stream.Sink) {
	r.mu.Lock()
	r.sink = sk
	r.mu.Unlock()
}

// ended records the end of a run that failed with err: stopped for good
// when final. The run's own status says why it ended; a run that never
// began (its transport could not be built) says err.
func (r *runner) ended(err error, final bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.last
	st.LastError = err.Error()
	if r.sink != nil {
		st = r.sink.Status()
		r.base[0] += st.Delivered
		r.base[1] += st.Failures
		r.base[2] += st.Skipped
		r.sink = nil
	}
	r.base[1]++ // the run's end is a failure too
	st.Delivered, st.Failures, st.Skipped, st.Stopped = r.base[0], r.base[1], r.base[2], final
	r.last = st
}

// note adds to the status's last error.
func (r *runner) note(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last.LastError += "; " + msg
}

func (r *runner) status() stream.Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sink == nil {
		return r.last
	}
	st := r.sink.Status()
	st.Delivered += r.base[0]
	st.Failures += r.base[1]
	st.Skipped += r.base[2]
	return st
}
