package detect

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/ledger"
)

// SupervisorConfig configures a Supervisor.
type SupervisorConfig struct {
	// Log is read (as Engine reads it), Tenants lists the tenants that
	// have a log, Rules keeps their own rule files, Cursors the sets'
	// positions, Writer appends the alerts. Required.
	Log     Reader
	Tenants trail.TenantLister
	Rules   trail.RuleStore
	Cursors trail.CursorStore
	Writer  ledger.Writer
	// Actions gives the severity of each event's action (default: the
	// built-in catalog).
	Actions trail.ActionResolver
	// Builtin is the set every tenant's log runs (default: Builtin()).
	Builtin *Set
	// Reload is how often the tenants and their rule files are read again
	// (default 5s).
	Reload time.Duration
	// Batch and Poll tune every engine (zero: Engine's defaults).
	Batch int
	Poll  time.Duration
	// Logger gets a line when an engine starts, stops or fails.
	Logger *slog.Logger
}

// Supervisor runs, over each tenant's log, the built-in set and the set of
// the tenant's own rule files (TenantSet), one Engine each. It reads the
// tenants and their files when it starts, every Reload and whenever Reload
// is called: a new tenant gets its engines, and a tenant whose files
// changed gets its set's engine again, with the new rules, from the set's
// cursor (the new rules see the events recorded from then on; to run them
// over the past, run them under a set of another name with Config.Since).
// An engine that stops (another runner has its cursor: ECONFLICT) is run
// again at the next reload after it; one whose files do not parse (a
// store from another version) waits, with the error in its status, until
// they change.
type Supervisor struct {
	c      SupervisorConfig
	reload chan struct{}

	mu      sync.Mutex
	engines map[engineKey]*supervised
	failed  map[engineKey]Status // a tenant set that could not be built
	replays map[engineKey]*supervised
	ctx     context.Context // Run's, for replays; nil before Run
	asked   []chan struct{} // Sync calls waiting for the next sync to end
}

type engineKey struct{ tenant, set string }

// supervised is one engine under supervision.
type supervised struct {
	e      *Engine
	rules  [32]byte // the digest of the rule files it runs (tenant sets)
	cancel context.CancelFunc
	done   chan struct{}
	err    error // why Run ended, once done is closed
}

// NewSupervisor returns the supervisor c describes.
func NewSupervisor(c SupervisorConfig) (*Supervisor, error) {
	if c.Log == nil || c.Tenants == nil || c.Rules == nil || c.Cursors == nil || c.Writer == nil {
		return nil, errors.New("detect: SupervisorConfig needs Log, Tenants, Rules, Cursors and Writer")
	}
	if c.Builtin == nil {
		c.Builtin = Builtin()
	}
	if c.Reload <= 0 {
		c.Reload = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return &Supervisor{c: c, reload: make(chan struct{}, 1), engines: map[engineKey]*supervised{}, failed: map[engineKey]Status{},
		replays: map[engineKey]*supervised{}}, nil
}

// Run runs the engines until ctx is done, then stops them and returns nil
// once they have stopped.
func (sv *Supervisor) Run(ctx context.Context) error {
	sv.mu.Lock()
	sv.ctx = ctx
	sv.mu.Unlock()
	t := time.NewTicker(sv.c.Reload)
	defer t.Stop()
	defer sv.stopAll()
	defer func() { answer(sv.takeAsked()) }() // every Sync still waiting: ctx is done, no later one waits
	for {
		// The Sync calls made before this sync begins are answered when
		// it ends; those made during it, by the next (their Reload
		// wakes it).
		asked := sv.takeAsked()
		sv.sync(ctx)
		answer(asked)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-sv.reload:
		}
	}
}

// Reload makes Run read the tenants and their rule files again now (the
// API calls it after a change of rules). It never waits.
func (sv *Supervisor) Reload() {
	select {
	case sv.reload <- struct{}{}:
	default:
	}
}

// Sync is Reload that waits: it returns once Run has read the tenants and
// their rule files again, after the call, and started, stopped or
// restarted the engines to match, so that a Replay or a status read after
// it sees the rules stored before it; or ctx's error once ctx is done. It
// returns at once when Run is not running: no engine runs here to change
// (the process that runs them reloads on its own).
func (sv *Supervisor) Sync(ctx context.Context) error {
	sv.mu.Lock()
	if sv.ctx == nil || sv.ctx.Err() != nil {
		sv.mu.Unlock()
		return nil
	}
	c := make(chan struct{})
	sv.asked = append(sv.asked, c)
	sv.mu.Unlock()
	sv.Reload()
	select {
	case <-c:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// takeAsked returns the Sync calls waiting, and forgets them.
func (sv *Supervisor) takeAsked() []chan struct{} {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	asked := sv.asked
	sv.asked = nil
	return asked
}

// answer ends the Sync calls waiting on asked.
func answer(asked []chan struct{}) {
	for _, c := range asked {
		close(c)
	}
}

// Statuses returns the status of each of tenant's engines (every
// tenant's for ""), by tenant and set.
func (sv *Supervisor) Statuses(tenant string) []Status {
	sv.mu.Lock()
	var out []Status
	for k, s := range sv.engines {
		if tenant == "" || k.tenant == tenant {
			out = append(out, s.status())
		}
	}
	for k, st := range sv.failed {
		if tenant == "" || k.tenant == tenant {
			out = append(out, st)
		}
	}
	for k, s := range sv.replays {
		if tenant == "" || k.tenant == tenant {
			out = append(out, s.status())
		}
	}
	sv.mu.Unlock()
	slices.SortFunc(out, func(a, b Status) int {
		return cmp.Or(strings.Compare(a.Tenant, b.Tenant), strings.Compare(a.Set, b.Set))
	})
	return out
}

func (s *supervised) status() Status {
	st := s.e.Status()
	select {
	case <-s.done:
		st.Stopped = true
		if s.err != nil {
			st.LastError = trail.ErrorMessage(s.err)
		}
	default:
	}
	return st
}

// sync starts, stops and restarts engines to match the tenants and their
// rule files. What cannot be read leaves the engines as they are.
func (sv *Supervisor) sync(ctx context.Context) {
	tenants, err := sv.c.Tenants.Tenants(ctx)
	if err != nil {
		sv.warn(ctx, "detect: reading the tenants failed; the engines go on as they were", err)
		return
	}
	files, err := sv.c.Rules.Rules(ctx, "")
	if err != nil {
		sv.warn(ctx, "detect: reading the tenants' rule files failed; the engines go on as they were", err)
		return
	}
	byTenant := map[string][]*trail.RuleFile{}
	for _, f := range files {
		byTenant[f.Tenant] = append(byTenant[f.Tenant], f)
	}
	type want struct {
		set    *Set
		digest [32]byte
	}
	wants := map[engineKey]want{}
	failed := map[engineKey]Status{}
	for _, t := range tenants {
		if trail.Reserved(t) {
			// No rules run over the logs Trail keeps for itself. The
			// root log's records are the tenants' checkpoints, which no
			// rule reads anything into (and an alert appended there would
			// be a record of the root log that is no root entry). What
			// operators do to a tenant's data is recorded in the tenant's
			// log too, where its rules see it: run over the operators'
			// log as well, they would raise each alert twice; the rest
			// of it (keys made, tenants listed, witness refusals, already
			// alerts) is no user's activity the rules are about.
			continue
		}
		wants[engineKey{t, sv.c.Builtin.Name}] = want{set: sv.c.Builtin}
		fs := byTenant[t]
		if len(fs) == 0 {
			continue
		}
		k := engineKey{t, TenantSet}
		set, err := TenantRules(fs)
		if err != nil {
			failed[k] = Status{Set: TenantSet, Tenant: t, Stopped: true, LastError: described(err)}
			continue
		}
		wants[k] = want{set: set, digest: digest(fs)}
	}
	sv.mu.Lock()
	var stop []*supervised
	for k, s := range sv.engines {
		w, ok := wants[k]
		ended := false
		select {
		case <-s.done:
			ended = true
		default:
		}
		if !ok || w.digest != s.rules || ended {
			stop = append(stop, s)
			delete(sv.engines, k)
		}
	}
	sv.failed = failed
	sv.mu.Unlock()
	for _, s := range stop {
		s.cancel()
		<-s.done
	}
	sv.mu.Lock()
	defer sv.mu.Unlock()
	for k, w := range wants {
		if _, ok := sv.engines[k]; ok {
			continue
		}
		e, err := New(Config{Set: w.set, Tenant: k.tenant, Log: sv.c.Log, Cursors: sv.c.Cursors, Writer: sv.c.Writer,
			Actions: sv.c.Actions, Batch: sv.c.Batch, Poll: sv.c.Poll, Logger: sv.c.Logger})
		if err != nil {
			sv.failed[k] = Status{Set: k.set, Tenant: k.tenant, Stopped: true, LastError: described(err)}
			continue
		}
		ectx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		s := &supervised{e: e, rules: w.digest, cancel: cancel, done: make(chan struct{})}
		sv.engines[k] = s
		sv.c.Logger.InfoContext(ctx, "detect: rule set started", "tenant", k.tenant, "set", k.set, "rules", len(w.set.rules))
		go func() {
			defer close(s.done)
			s.err = e.Run(ectx)
		}()
	}
}

func (sv *Supervisor) warn(ctx context.Context, msg string, err error) {
	if ctx.Err() == nil {
		sv.c.Logger.WarnContext(ctx, msg, "err", err)
	}
}

// ReplayPrefix starts the name of a replay's set: "replay." + the set
// replayed + "." + the Unix time it began.
const ReplayPrefix = "replay."

// Replay runs tenant's set (BuiltinSet or TenantSet) over the events of
// its log recorded since, up to where the running set has got to (the
// events after are the running set's): a rule added today run over last
// month. It runs in the background as a set of its own name (returned;
// its alerts name it), from a cursor of its own, and stops once it has
// read up to there; its status is among Statuses until the supervisor
// stops. Events the running set saw already may raise their alerts
// again, under the replay's name. It needs Run to be running.
func (sv *Supervisor) Replay(tenant, set string, since time.Time, now time.Time) (string, error) {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	if sv.ctx == nil || sv.ctx.Err() != nil {
		return "", trail.Errorf(trail.EUNAVAILABLE, "the detection rules are not running")
	}
	live, ok := sv.engines[engineKey{tenant, set}]
	if !ok {
		return "", trail.Errorf(trail.ENOTFOUND, "no rule set %q runs over tenant %s's log", set, tenant)
	}
	name := fmt.Sprintf("%s%s.%d", ReplayPrefix, set, now.Unix())
	k := engineKey{tenant, name}
	if _, dup := sv.replays[k]; dup {
		return "", trail.Errorf(trail.ECONFLICT, "replay %s is running already", name)
	}
	rs, err := NewSet(name, live.e.c.Set.rules...)
	if err != nil {
		return "", err
	}
	until := live.e.Status().Cursor
	if until == 0 {
		return "", trail.Errorf(trail.ECONFLICT, "rule set %s has read nothing of the log yet: there is nothing to replay before it", set)
	}
	e, err := New(Config{Set: rs, Tenant: tenant, Log: sv.c.Log, Cursors: sv.c.Cursors, Writer: sv.c.Writer, Actions: sv.c.Actions,
		Since: since, Until: until, Batch: sv.c.Batch, Logger: sv.c.Logger})
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(sv.ctx))
	s := &supervised{e: e, cancel: cancel, done: make(chan struct{})}
	sv.replays[k] = s
	sv.c.Logger.InfoContext(ctx, "detect: replay started", "tenant", tenant, "set", name, "since", since, "until_seq", until)
	go func() {
		defer close(s.done)
		for ctx.Err() == nil {
			n, err := e.Step(ctx)
			if err != nil {
				s.err = err
				return
			}
			if n == 0 {
				return
			}
		}
	}()
	return name, nil
}

// stopAll stops every engine and waits for them.
func (sv *Supervisor) stopAll() {
	sv.mu.Lock()
	all := make([]*supervised, 0, len(sv.engines)+len(sv.replays))
	for _, s := range sv.engines {
		all = append(all, s)
	}
	for _, s := range sv.replays {
		all = append(all, s)
	}
	sv.engines = map[engineKey]*supervised{}
	sv.mu.Unlock()
	for _, s := range all {
		s.cancel()
	}
	for _, s := range all {
		<-s.done
	}
}

// described is err's message with the fields it names.
func described(err error) string {
	msg := trail.ErrorMessage(err)
	for _, f := range trail.ErrorFields(err) {
		msg += "; " + f.Path + ": " + f.Message
	}
	return msg
}

// digest is the digest of a tenant's rule files: their names and texts.
func digest(files []*trail.RuleFile) [32]byte {
	h := sha256.New()
	for _, f := range files {
		h.Write([]byte(f.Name))
		h.Write([]byte{0})
		h.Write([]byte(f.YAML))
		h.Write([]byte{0})
	}
	var d [32]byte
	h.Sum(d[:0])
	return d
}
