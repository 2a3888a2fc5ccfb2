package detect

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/internal/ledger"
)

// Reader is what an engine reads of a tenant's log: its events in seq
// order, queries (for the rules that look back) and its size. A
// trail.Store is one; where personal data is sealed, give the engine the
// store as erasure.Wrap returns it, so rules see the values in clear.
type Reader interface {
	Scan(ctx context.Context, tenant string, from, to uint64, fn func(*trail.Event) error) error
	Query(ctx context.Context, q trail.Query) (*trail.Page, error)
	Count(ctx context.Context, q trail.Query) (int64, error)
}

// Config configures an Engine.
type Config struct {
	// Set is the rules to run; Tenant the log they run over. Required.
	Set    *Set
	Tenant string
	// Log is read; Cursors keep the set's position in it (CursorPrefix +
	// Set.Name); Writer appends the alerts, as Trail's own records.
	// Required.
	Log     Reader
	Cursors trail.CursorStore
	Writer  ledger.Writer
	// Actions gives the severity of each event's action (default: the
	// built-in catalog).
	Actions trail.ActionResolver
	// Since is where a set that has no cursor yet in the tenant's log
	// begins: at its first event recorded at or after Since. Zero: at
	// seq 1, the whole log. (A set with a cursor goes on from it: to run
	// rules over last month again, run them in a set of another name.)
	Since time.Time
	// Until, when not 0, is the last seq the set reads: a Step past it
	// finds nothing more (a replay over the past stops there).
	Until uint64
	// Batch is how many events one Step reads at most (default 1000).
	Batch int
	// Poll is how often Run looks for new events once it has caught up
	// (default 1s).
	Poll time.Duration
	// Logger gets a line per alert and per failed step.
	Logger *slog.Logger
}

// Status is what an engine is doing.
type Status struct {
	Set    string `json:"set"`
	Tenant string `json:"tenant"`
	// Cursor is the last seq the set has finished with; Head the log's
	// size when it last looked; Lag is Head - Cursor.
	Cursor uint64 `json:"cursor"`
	Head   uint64 `json:"head"`
	Lag    uint64 `json:"lag"`
	// Alerts counts the alerts it raised since it started.
	Alerts uint64 `json:"alerts"`
	// LastError is the last failure ("" after a step that went well).
	LastError string `json:"last_error,omitempty"`
	// Stopped is set by a Supervisor when the set does not run: its
	// engine stopped (LastError says why), could not be built, or (a
	// replay) finished.
	Stopped bool `json:"stopped"`
}

// Engine runs one rule set over one tenant's log, in seq order, from the
// set's cursor, and appends an alert_raised event for each match. The
// cursor moves only after the alerts of what was read are stored, so a
// restart goes on where the last step ended: it rebuilds the correlation
// windows by reading the log again from one timespan before the cursor
// (without raising their alerts again), and finds the alerts already
// raised past the cursor (a step that stored its alerts but not its
// cursor) so that it does not raise them twice.
//
// One engine per set and tenant should run at a time: a second one's
// cursor update is refused (ECONFLICT, and Run stops), but alerts both
// raised in the meantime are both stored.
type Engine struct {
	c      Config
	cursor string
	idx    map[*Rule]int

	mu sync.Mutex
	st Status

	// Step's state: one Step at a time.
	step    sync.Mutex
	started bool
	at      uint64 // the last seq finished with
	wins    map[*Rule]*windows
	raised  map[raisedKey]bool
	matched []bool
	sc      scratch
}

// raisedKey names an alert: the rule that raised it and the seq of the
// event that completed its match.
type raisedKey struct {
	rule    string
	trigger uint64
}

// New returns the engine c describes.
func New(c Config) (*Engine, error) {
	switch {
	case c.Set == nil:
		return nil, fmt.Errorf("detect: Config.Set is required")
	case c.Tenant == "":
		return nil, trail.Invalid("bad detection engine", trail.FieldError{Path: "tenant", Message: "required"})
	case c.Log == nil || c.Cursors == nil || c.Writer == nil:
		return nil, fmt.Errorf("detect: rule set %s: Log, Cursors and Writer are required", c.Set.Name)
	}
	if m := trail.CheckTenant(c.Tenant); m != "" {
		return nil, trail.Invalid("bad detection engine", trail.FieldError{Path: "tenant", Message: m})
	}
	if c.Actions == nil {
		c.Actions = catalog.Default()
	}
	c.Actions = trail.ResolverFor(c.Actions, c.Tenant) // the tenant's custom actions are its own
	if c.Batch <= 0 {
		c.Batch = 1000
	}
	if c.Poll <= 0 {
		c.Poll = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Engine{c: c, cursor: CursorPrefix + c.Set.Name, idx: map[*Rule]int{},
		st: Status{Set: c.Set.Name, Tenant: c.Tenant}}
	for i, r := range c.Set.rules {
		e.idx[r] = i
	}
	e.matched = make([]bool, len(c.Set.rules))
	e.sc.memo = make([]int8, c.Set.sels)
	return e, nil
}

// Status returns what the engine is doing.
func (e *Engine) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.st
}

func (e *Engine) update(fn func(*Status)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	fn(&e.st)
	e.st.Lag = e.st.Head - min(e.st.Cursor, e.st.Head)
}

// Run steps until ctx is done (it returns nil), waiting Poll when it has
// caught up and retrying a failed step with backoff. It stops, returning
// the error, only when another runner of the set has moved its cursor
// (ECONFLICT).
func (e *Engine) Run(ctx context.Context) error {
	wait := e.c.Poll
	for {
		n, err := e.Step(ctx)
		if ctx.Err() != nil {
			return nil
		}
		pause := e.c.Poll
		switch {
		case trail.ErrorCode(err) == trail.ECONFLICT:
			e.c.Logger.ErrorContext(ctx, "detect: rule set stopped", "set", e.c.Set.Name, "tenant", e.c.Tenant, "err", err)
			return err
		case err != nil:
			e.c.Logger.WarnContext(ctx, "detect: step failed, retrying", "set", e.c.Set.Name, "tenant", e.c.Tenant, "in", wait, "err", err)
			pause, wait = rand.N(wait)+1, min(2*wait, time.Minute)
		case n > 0:
			wait = e.c.Poll
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(pause):
		}
	}
}

// Step reads the events after the cursor (at most Batch), runs the rules
// over them, appends the alerts they raise and moves the cursor past
// them. It returns how many seqs it finished with: 0 when it had caught
// up. After a failure the next Step begins again from the stored cursor,
// as after a restart.
func (e *Engine) Step(ctx context.Context) (int, error) {
	e.step.Lock()
	defer e.step.Unlock()
	n, err := e.stepLocked(ctx)
	if err != nil {
		e.started = false // the windows may hold what the cursor does not: rebuild them
		e.update(func(st *Status) { st.LastError = trail.ErrorMessage(err) })
		return 0, err
	}
	return n, nil
}

func (e *Engine) stepLocked(ctx context.Context) (int, error) {
	if !e.started {
		if err := e.start(ctx); err != nil {
			return 0, err
		}
	}
	size, err := e.c.Log.Count(ctx, trail.Query{Tenant: e.c.Tenant})
	if err != nil {
		return 0, err
	}
	head := uint64(size)
	if head < e.at {
		return 0, trail.Errorf(trail.EINTERNAL, "detect: rule set %s is at seq %d but the log holds %d events: the log went back (run trail verify)", e.c.Set.Name, e.at, head)
	}
	if e.c.Until > 0 {
		head = max(min(head, e.c.Until), e.at)
	}
	e.update(func(st *Status) { st.Head = head })
	if head == e.at {
		e.update(func(st *Status) { st.LastError = "" })
		return 0, nil
	}
	to := min(head, e.at+uint64(e.c.Batch))
	var alerts []*trail.Event
	err = e.c.Log.Scan(ctx, e.c.Tenant, e.at+1, to+1, func(ev *trail.Event) error {
		found, err := e.event(ctx, ev, true)
		alerts = append(alerts, found...)
		return err
	})
	if err != nil {
		return 0, err
	}
	for len(alerts) > 0 {
		chunk := alerts[:min(len(alerts), maxAlertsPerAppend)]
		if _, err := e.c.Writer.AppendOwn(ctx, e.c.Tenant, ledger.Records(chunk...)); err != nil {
			return 0, fmt.Errorf("detect: rule set %s: storing %d alerts: %w", e.c.Set.Name, len(chunk), err)
		}
		for _, a := range chunk {
			e.c.Logger.InfoContext(ctx, "detect: alert", "set", e.c.Set.Name, "tenant", e.c.Tenant,
				"rule", a.Context["rule_id"], "level", a.Context["level"], "trigger_seq", a.Context["trigger_seq"])
		}
		e.update(func(st *Status) { st.Alerts += uint64(len(chunk)) })
		alerts = alerts[len(chunk):]
	}
	if err := e.c.Cursors.SetCursor(ctx, e.cursor, e.c.Tenant, to); err != nil {
		return 0, err
	}
	n := int(to - e.at)
	e.at = to
	for k := range e.raised {
		if k.trigger <= to {
			delete(e.raised, k)
		}
	}
	e.update(func(st *Status) { st.Cursor, st.LastError = to, "" })
	return n, nil
}

// maxAlertsPerAppend bounds the alerts one append stores.
const maxAlertsPerAppend = 100

// start finds where the set is, rebuilds its correlation windows from
// the log before that, and gathers the alerts it raised past it.
func (e *Engine) start(ctx context.Context) error {
	e.wins = map[*Rule]*windows{}
	e.raised = map[raisedKey]bool{}
	for _, r := range e.c.Set.rules {
		if r.corr != nil {
			e.wins[r] = newWindows(r)
		}
	}
	at, err := e.c.Cursors.Cursor(ctx, e.cursor, e.c.Tenant)
	if err != nil {
		return err
	}
	if at > 0 {
		if err := e.replay(ctx, at); err != nil {
			return err
		}
	} else if !e.c.Since.IsZero() {
		if at, err = e.firstSince(ctx, e.c.Since); err != nil {
			return err
		}
	}
	if err := e.alreadyRaised(ctx, at); err != nil {
		return err
	}
	e.at, e.started = at, true
	e.update(func(st *Status) { st.Cursor = at })
	return nil
}

// firstSince returns the seq before the tenant's first event recorded at
// or after t: the log's size when there is none.
func (e *Engine) firstSince(ctx context.Context, t time.Time) (uint64, error) {
	page, err := e.c.Log.Query(ctx, trail.Query{Tenant: e.c.Tenant, RecordedAfter: t, Limit: 1})
	if err != nil {
		return 0, err
	}
	if len(page.Events) == 0 {
		n, err := e.c.Log.Count(ctx, trail.Query{Tenant: e.c.Tenant})
		return uint64(n), err
	}
	return page.Events[0].Seq - 1, nil
}

// replay rebuilds the correlation windows as they stood at seq at: it
// reads the events recorded since one timespan (the set's longest) before
// the event at at, into the windows, raising nothing, and consumes the
// evidence of the set's own alerts among them as raising them did.
func (e *Engine) replay(ctx context.Context, at uint64) error {
	if e.c.Set.span == 0 {
		return nil
	}
	page, err := e.c.Log.Query(ctx, trail.Query{Tenant: e.c.Tenant, Descending: true, Cursor: trail.EncodeCursor(at+1, true), Limit: 1})
	if err != nil || len(page.Events) == 0 {
		return err
	}
	from, err := e.firstSince(ctx, page.Events[0].RecordedAt.Add(-e.c.Set.span))
	if err != nil {
		return err
	}
	return e.c.Log.Scan(ctx, e.c.Tenant, from+1, at+1, func(ev *trail.Event) error {
		_, err := e.event(ctx, ev, false)
		return err
	})
}

// alreadyRaised gathers the set's alerts stored after seq at.
func (e *Engine) alreadyRaised(ctx context.Context, at uint64) error {
	q := trail.Query{Tenant: e.c.Tenant, Actions: []string{catalog.AlertRaised}, Limit: trail.MaxPageSize}
	if at > 0 {
		q.Cursor = trail.EncodeCursor(at, false)
	}
	for {
		page, err := e.c.Log.Query(ctx, q)
		if err != nil {
			return err
		}
		for _, ev := range page.Events {
			if a, ok := e.own(ev); ok {
				e.raised[raisedKey{a.rule, a.trigger}] = true
			}
		}
		if page.Next == "" {
			return nil
		}
		q.Cursor = page.Next
	}
}

// event runs the rules over ev. Live, it returns the alerts ev raises;
// replaying (live false), it only fills the windows. Either way an alert
// of the set's own consumes its evidence, and is not run through the
// rules (a rule matching the set's own alerts would feed on itself).
func (e *Engine) event(ctx context.Context, ev *trail.Event, live bool) ([]*trail.Event, error) {
	if a, ok := e.own(ev); ok {
		if r := e.c.Set.Rule(a.rule); r != nil && r.corr != nil && len(a.group) == len(r.corr.groupBy) {
			e.wins[r].consume(a.group, a.from, a.to, a.trigger)
		}
		return nil, nil
	}
	in := input{ev: ev, actions: e.c.Actions}
	var out []*trail.Event
	raise := func(r *Rule, h *hit) {
		if live && !e.raised[raisedKey{r.Ref(), h.trigger}] {
			out = append(out, alertEvent(e.c.Set.Name, r, h))
		}
	}
	for i, r := range e.c.Set.rules {
		if r.kind != KindDetection {
			continue
		}
		e.matched[i] = r.matches(&in, &e.sc)
		if e.matched[i] && !r.refd {
			raise(r, &hit{evidence: []uint64{ev.Seq}, count: 1, trigger: ev.Seq, from: ev.OccurredAt, to: ev.OccurredAt})
		}
	}
	for _, r := range e.c.Set.rules {
		switch {
		case r.corr != nil:
			if h := e.correlate(r, &in, live); h != nil {
				raise(r, h)
			}
		case r.goRule != nil && live:
			h, err := r.goRule.check(ctx, e.c.Log, ev)
			if err != nil {
				return nil, fmt.Errorf("detect: rule %s at seq %d: %w", r.Ref(), ev.Seq, err)
			}
			if h != nil {
				raise(r, h)
			}
		}
	}
	return out, nil
}

// correlate counts in in the correlation rule r, if one of the rules it
// counts matched, and (when evaluate is set) returns the hit of a
// condition that now holds.
func (e *Engine) correlate(r *Rule, in *input, evaluate bool) *hit {
	c := r.corr
	counted := false
	for _, t := range c.rules {
		counted = counted || e.matched[e.idx[t]]
	}
	if !counted {
		return nil
	}
	values := make([]string, len(c.groups))
	for i, g := range c.groups {
		var ok bool
		if values[i], ok, e.sc.buf = groupValue(g, in, e.sc.buf); !ok {
			return nil // an event without the group's field belongs to no group
		}
	}
	var value string
	if c.value != nil {
		var ok bool
		if value, ok, e.sc.buf = groupValue(c.value, in, e.sc.buf); !ok {
			return nil
		}
	}
	return e.wins[r].add(values, in.ev.Seq, in.ev.OccurredAt, value, evaluate)
}
