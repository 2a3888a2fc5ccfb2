package client

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
)

// Op is an attempted action waiting for its outcome: Begin records the
// attempt, then exactly one of Succeed, Fail or Deny records the result the
// catalog pairs with it, under the attempt's correlation id. So a log that
// holds an attempt and no result shows an operation that never finished
// (trail.Query.OpenAttempts finds them). An Op is safe for concurrent use.
type Op struct {
	rec     Recorder
	attempt *trail.Action
	results map[trail.Outcome]*trail.Action
	ev      *trail.Event // the attempt as recorded (a copy)

	mu    sync.Mutex
	ended string // the result action recorded, once there is one
}

// defaultCatalog is the catalog Begin uses when given none.
var defaultCatalog = sync.OnceValue(catalog.Default)

// Begin records ev, whose action must be an attempted action of cat (nil
// means catalog.Default()), and returns the Op that records its outcome.
// ev gets a new correlation id (trail.NewID) unless it has one; like any
// recorded event, it is filled from the request in ctx. The attempt must
// have at least one result action in cat (cat.Results).
func Begin(ctx context.Context, rec Recorder, cat *catalog.Catalog, ev *trail.Event) (*Op, error) {
	if ev == nil {
		return nil, invalidArg("ev", "no event")
	}
	if cat == nil {
		cat = defaultCatalog()
	}
	def, ok := cat.Resolve(ev.Action)
	switch {
	case !ok:
		return nil, invalidArg("action", fmt.Sprintf("%q is not in the catalog", ev.Action))
	case def.Outcome != trail.OutcomeAttempted:
		return nil, invalidArg("action", fmt.Sprintf("%s is a %s action, not an attempted one: Record it directly", def.Name, def.Outcome))
	}
	results := cat.Results(def.Name)
	if len(results) == 0 {
		return nil, invalidArg("action", fmt.Sprintf("attempted action %s has no result action in the catalog (none names it as its attempt)", def.Name))
	}
	if ev.CorrelationID == "" {
		ev.CorrelationID = trail.NewID(time.Now())
	}
	if err := rec.Record(ctx, ev); err != nil {
		return nil, err
	}
	return &Op{rec: rec, attempt: def, results: results, ev: ev.Clone()}, nil
}

// CorrelationID returns the id the attempt and its result share.
func (o *Op) CorrelationID() string { return o.ev.CorrelationID }

// Succeed records the attempt's success action (for user_login_attempted,
// user_login_success) with the attempt's actor, targets, request, scope and
// correlation id, and values as its context. Context keys the success
// action declares and values lacks are carried over from the attempt's
// context (the login's method, say). values itself is not modified.
func (o *Op) Succeed(ctx context.Context, values map[string]any) error {
	return o.end(ctx, trail.OutcomeSuccess, "", values)
}

// Fail records the attempt's failure action (for user_login_attempted,
// user_login_failed) as Succeed does, with reason as the event's Reason and,
// when the failure action declares a "reason" context key and values sets
// none, as context reason too.
func (o *Op) Fail(ctx context.Context, reason string, values map[string]any) error {
	return o.end(ctx, trail.OutcomeFailure, reason, values)
}

// Deny records the attempt's denied action (for access_attempted,
// access_denied; for rate_limit_check_attempted, rate_limit_check_denied) as
// Fail does.
func (o *Op) Deny(ctx context.Context, reason string, values map[string]any) error {
	return o.end(ctx, trail.OutcomeDenied, reason, values)
}

// end records the result of outcome. An Op ends once: a second result is
// refused (ECONFLICT). A result whose recording failed does not end it, so
// the caller may try again.
func (o *Op) end(ctx context.Context, outcome trail.Outcome, reason string, c map[string]any) error {
	def, ok := o.results[outcome]
	if !ok {
		return trail.Errorf(trail.EINVALID, "attempted action %s has no %s action in the catalog", o.attempt.Name, outcome)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ended != "" {
		return trail.Errorf(trail.ECONFLICT, "operation %s already ended with %s", o.ev.CorrelationID, o.ended)
	}
	out := make(map[string]any, len(c)+2)
	for _, k := range def.Context {
		if v, ok := o.ev.Context[k.Key]; ok {
			out[k.Key] = v
		}
	}
	maps.Copy(out, c)
	if reason != "" && declares(def, "reason") {
		if _, set := c["reason"]; !set {
			out["reason"] = reason
		}
	}
	a := o.ev.Clone()
	ev := &trail.Event{
		Action:        def.Name,
		Actor:         a.Actor,
		Targets:       a.Targets,
		Request:       a.Request,
		Scope:         a.Scope,
		Context:       out,
		CorrelationID: a.CorrelationID,
		Reason:        reason,
	}
	if len(ev.Context) == 0 {
		ev.Context = nil
	}
	if err := o.rec.Record(ctx, ev); err != nil {
		return err
	}
	o.ended = def.Name
	return nil
}

func declares(a *trail.Action, key string) bool {
	return slices.ContainsFunc(a.Context, func(k trail.ContextKey) bool { return k.Key == key })
}
