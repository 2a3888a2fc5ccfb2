package detect

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/internal/ledger"
	"github.com/trailaudit/trail/memory"
	"github.com/trailaudit/trail/storetest"
)

// t0 is when the tests' events happen.
var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// store is what the tests run engines over: a store that keeps cursors and
// takes Trail's own records.
type store interface {
	trail.Store
	trail.CursorStore
	ledger.Writer
	trail.RuleStore
	trail.TenantLister
}

func newMemory(t testing.TB) store {
	t.Helper()
	s := memory.New(storetest.Validator(), nil)
	t.Cleanup(func() { s.Close() })
	return s
}

// appendAll appends evs to tenant acme's log, each in a batch of its own
// (events whose actor is an API key through Trail's own path).
func appendAll(t testing.TB, s store, evs ...*trail.Event) {
	t.Helper()
	ctx := context.Background()
	for _, ev := range evs {
		var err error
		if ev.Actor.Type == trail.ActorAPIKey {
			_, err = s.AppendOwn(ctx, "acme", ledger.Records(ev))
		} else {
			_, err = s.Append(ctx, "acme", []*trail.Event{ev}, trail.AppendOptions{})
		}
		if err != nil {
			t.Fatalf("append %s: %v", ev.Action, err)
		}
	}
}

func engine(t testing.TB, s store, set *Set, c Config) *Engine {
	t.Helper()
	c.Set, c.Tenant, c.Log, c.Cursors, c.Writer = set, "acme", s, s, s
	e, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// catchUp steps e until it has read the whole log.
func catchUp(t testing.TB, e *Engine) {
	t.Helper()
	for range 1000 {
		n, err := e.Step(context.Background())
		if err != nil {
			t.Fatalf("step: %v", err)
		}
		if n == 0 {
			return
		}
	}
	t.Fatal("the engine never caught up")
}

// alerts returns the alerts in acme's log, oldest first.
func alerts(t *testing.T, s trail.Store) []*trail.Event {
	t.Helper()
	page, err := s.Query(context.Background(), trail.Query{Tenant: "acme", Actions: []string{catalog.AlertRaised}, Limit: trail.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	return page.Events
}

// byRule counts alerts by the name of the rule that raised them.
func byRule(set *Set, alerts []*trail.Event) map[string]int {
	out := map[string]int{}
	for _, a := range alerts {
		name := fmt.Sprint(a.Context["rule_id"])
		if r := set.Rule(name); r != nil && r.Name != "" {
			name = r.Name
		}
		out[name]++
	}
	return out
}

// Events of the seeds' actions, at t0 + at.

func failedLogin(email, ip string, at time.Duration) *trail.Event {
	return &trail.Event{Action: catalog.UserLoginFailed, OccurredAt: t0.Add(at),
		Actor:   trail.Actor{Type: trail.ActorUser, ID: "anonymous"},
		Request: trail.Request{IP: ip},
		Context: map[string]any{"reason": "invalid_password", "attempts": 1, "email": email}}
}

func login(user, ip string, at time.Duration) *trail.Event {
	return &trail.Event{Action: catalog.UserLoginSuccess, OccurredAt: t0.Add(at),
		Actor: trail.Actor{Type: trail.ActorUser, ID: user}, Request: trail.Request{IP: ip},
		Context: map[string]any{"method": "password", "mfa": true, "remember_me": false}}
}

func event(action string, actor trail.Actor, at time.Duration, ctx map[string]any) *trail.Event {
	return &trail.Event{Action: action, OccurredAt: t0.Add(at), Actor: actor, Request: trail.Request{IP: "198.51.100.7"}, Context: ctx}
}

func user(id string, roles ...string) trail.Actor {
	return trail.Actor{Type: trail.ActorUser, ID: id, Roles: roles}
}

// times returns n events made by mk(i), i from 0.
func times(n int, mk func(i int) *trail.Event) []*trail.Event {
	out := make([]*trail.Event, n)
	for i := range out {
		out[i] = mk(i)
	}
	return out
}

// wantAlerts runs set over a log of events and holds it to the alerts
// want, counted by rule name.
func wantAlerts(t *testing.T, set *Set, events []*trail.Event, want map[string]int) {
	t.Helper()
	s := newMemory(t)
	appendAll(t, s, events...)
	catchUp(t, engine(t, s, set, Config{}))
	if got := byRule(set, alerts(t, s)); !maps.Equal(got, want) {
		t.Errorf("alerts %v, want %v", got, want)
	}
}

func concat(parts ...[]*trail.Event) []*trail.Event {
	var out []*trail.Event
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
