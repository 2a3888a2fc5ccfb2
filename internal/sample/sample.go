// Package sample makes realistic audit events for benchmarks, load tests
// (trail bench) and examples.
package sample

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
)

// Sample makes realistic events for benchmarks and load tests: about 500
// bytes each in canonical form, with 4 to 6 context keys that satisfy the
// catalog, spread over many actors, a few organizations and dozens of
// workspaces, and an action mix led by logins and data access, as an app's
// audit log is.
type Sample struct {
	r *rand.Rand
	// Actors, Workspaces and Organizations size the populations (defaults
	// 10000, 50, 5).
	Actors, Workspaces, Organizations int
	// Entities, when > 0, gives each event a second target, an entry of
	// that many (the records an app's events are about: far more of them
	// than workspaces, few events each). 0, the default, leaves the
	// events, and the random sequence, as they were.
	Entities int
}

// New returns a Sample seeded with seed, so runs are repeatable.
func New(seed uint64) *Sample {
	return &Sample{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), Actors: 10000, Workspaces: 50, Organizations: 5}
}

type sampleAction struct {
	name   string
	weight int
	ctx    func(r *rand.Rand) map[string]any
}

var sampleActions = []sampleAction{
	{catalog.UserLoginSuccess, 30, func(r *rand.Rand) map[string]any {
		return map[string]any{"method": pick(r, "password", "oauth", "passkey"), "mfa": r.IntN(4) > 0, "remember_me": r.IntN(3) == 0, "login_method": "email"}
	}},
	{catalog.UserLoginFailed, 6, func(r *rand.Rand) map[string]any {
		return map[string]any{"reason": pick(r, "invalid_password", "user_not_found", "mfa_failed"), "attempts": 1 + r.IntN(5), "email": fmt.Sprintf("user%d@example.com", r.IntN(10000)), "client": "web"}
	}},
	{catalog.DataViewed, 25, func(r *rand.Rand) map[string]any {
		return map[string]any{"data_type": pick(r, "profile", "financial", "statement"), "fields_accessed": []any{"name", "balance", "iban_last4"}, "purpose": "support_ticket", "ticket": fmt.Sprintf("T-%d", r.IntN(99999))}
	}},
	{catalog.ProviderTransactionViewed, 15, func(r *rand.Rand) map[string]any {
		return map[string]any{"provider_name": pick(r, "schwab", "chase", "fidelity"), "account_mask": fmt.Sprintf("%04d", r.IntN(10000)), "transaction_count": r.IntN(200), "date_range": "2026-10-01/2026-10-31", "view": "list"}
	}},
	{catalog.EntryApproved, 8, func(r *rand.Rand) map[string]any {
		return map[string]any{"notes": "Entry meets all requirements", "level": "standard", "amount_cents": r.IntN(1000000), "currency": pick(r, "USD", "EUR", "NPR")}
	}},
	{catalog.EntrySubmitted, 8, func(r *rand.Rand) map[string]any {
		return map[string]any{"notes": "Monthly expenses", "level": "standard", "amount_cents": r.IntN(1000000), "currency": pick(r, "USD", "EUR", "NPR")}
	}},
	{catalog.AccessDenied, 4, func(r *rand.Rand) map[string]any {
		return map[string]any{"resource": fmt.Sprintf("/workspaces/%d/entries", r.IntN(50)), "reason": "no_permission", "action": pick(r, "read", "write", "delete"), "role": "member"}
	}},
	{catalog.DataExported, 2, func(r *rand.Rand) map[string]any {
		return map[string]any{"export_format": pick(r, "csv", "json", "pdf"), "data_scope": "entries", "export_reason": "user_request", "file_size": r.IntN(1 << 20), "result_count": r.IntN(5000)}
	}},
	{catalog.RoleAssigned, 2, func(r *rand.Rand) map[string]any {
		return map[string]any{"role_name": pick(r, "reviewer", "admin", "member"), "assigned_by": fmt.Sprintf("u-%d", r.IntN(100)), "target_user_id": fmt.Sprintf("u-%d", r.IntN(10000)), "reason": "promotion"}
	}},
}

var sampleWeights = func() (total int) {
	for _, a := range sampleActions {
		total += a.weight
	}
	return total
}()

func pick(r *rand.Rand, s ...string) string { return s[r.IntN(len(s))] }

// Event returns the next sample event, occurring at t.
func (s *Sample) Event(t time.Time) *trail.Event {
	r := s.r
	w := r.IntN(sampleWeights)
	a := sampleActions[0]
	for _, c := range sampleActions {
		if w < c.weight {
			a = c
			break
		}
		w -= c.weight
	}
	actor := r.IntN(s.Actors)
	ws := r.IntN(s.Workspaces)
	targets := []trail.Target{{Type: "workspace", ID: fmt.Sprintf("ws-%d", ws)}}
	if s.Entities > 0 {
		targets = append(targets, trail.Target{Type: "entry", ID: fmt.Sprintf("e-%d", r.IntN(s.Entities))})
	}
	return &trail.Event{
		Action:     a.name,
		OccurredAt: t,
		Actor:      trail.Actor{ID: fmt.Sprintf("u-%d", actor), Type: trail.ActorUser, Email: fmt.Sprintf("user%d@example.com", actor)},
		Targets:    targets,
		Request: trail.Request{IP: fmt.Sprintf("203.0.113.%d", r.IntN(255)), UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0",
			SessionID: fmt.Sprintf("s-%d-%d", actor, r.IntN(8)), RequestID: fmt.Sprintf("r-%016x", r.Uint64())},
		Scope:   trail.Scope{Organization: fmt.Sprintf("org-%d", ws%s.Organizations), Workspace: fmt.Sprintf("ws-%d", ws)},
		Context: a.ctx(r),
	}
}

// Batch returns n sample events occurring one millisecond apart from t.
func (s *Sample) Batch(n int, t time.Time) []*trail.Event {
	out := make([]*trail.Event, n)
	for i := range out {
		out[i] = s.Event(t.Add(time.Duration(i) * time.Millisecond))
	}
	return out
}
