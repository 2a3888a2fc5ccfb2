package detect

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/internal/ledger"
	"github.com/trailaudit/trail/storetest"
)

// eventually polls cond until it holds (the supervisor runs in the
// background), failing with what after a generous while.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 1000 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("never: %s", what)
}

func alertsOf(t *testing.T, s trail.Store, tenant string) []*trail.Event {
	t.Helper()
	page, err := s.Query(context.Background(), trail.Query{Tenant: tenant, Actions: []string{catalog.AlertRaised}, Limit: trail.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	return page.Events
}

func statusOf(sv *Supervisor, tenant, set string) (Status, bool) {
	for _, st := range sv.Statuses(tenant) {
		if st.Set == set {
			return st, true
		}
	}
	return Status{}, false
}

// A supervisor runs the built-in set over every tenant's log and each
// tenant's own set over its log, picks up new tenants and changed rules,
// and says where each set is.
func TestSupervisor(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s := newMemory(t)
	appendAll(t, s, failures("ann@example.com", 10, 0)...) // acme: brute force
	if _, err := s.Append(ctx, "globex", []*trail.Event{failedLogin("bob@example.com", "203.0.113.9", 0)}, trail.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := PutRules(ctx, s, s, &trail.RuleFile{Tenant: "globex", Name: "mine", YAML: storetest.SigmaRule("r-1")}, admin, t0); err != nil {
		t.Fatal(err)
	}
	sv, err := NewSupervisor(SupervisorConfig{Log: s, Tenants: s, Rules: s, Cursors: s, Writer: s, Reload: time.Hour, Poll: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- sv.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	eventually(t, "acme's brute force alert", func() bool { return len(alertsOf(t, s, "acme")) == 1 })
	eventually(t, "globex's own rule's alert", func() bool { return len(alertsOf(t, s, "globex")) == 1 })
	if a := alertsOf(t, s, "globex")[0]; a.Context["rule_set"] != TenantSet || a.Context["rule_id"] != "r-1" {
		t.Errorf("globex's alert %v", a.Context)
	}
	if _, ok := statusOf(sv, "acme", TenantSet); ok {
		t.Error("acme has no rule files but runs a tenant set")
	}
	eventually(t, "acme's built-in set caught up", func() bool {
		st, ok := statusOf(sv, "acme", BuiltinSet)
		return ok && st.Lag == 0 && st.Head == 11 && st.Cursor == 11 && st.Alerts == 1 && !st.Stopped
	})

	// A new tenant is picked up at the reload.
	if _, err := s.Append(ctx, "initech", failures("cy@example.com", 10, 0), trail.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	sv.Reload()
	eventually(t, "initech's brute force alert", func() bool { return len(alertsOf(t, s, "initech")) == 1 })

	// Changed rules run from the set's cursor: the new rule sees only
	// what is recorded after the change.
	changed := strings.ReplaceAll(storetest.SigmaRule("r-2"), "user_login_failed", "user_login_success")
	if _, _, _, err := PutRules(ctx, s, s, &trail.RuleFile{Tenant: "globex", Name: "mine", YAML: changed}, admin, t0); err != nil {
		t.Fatal(err)
	}
	sv.Reload()
	eventually(t, "globex's set runs the changed rule", func() bool {
		st, ok := statusOf(sv, "globex", TenantSet)
		return ok && st.Alerts == 0 && st.Cursor >= 3
	})
	if _, err := s.Append(ctx, "globex", []*trail.Event{login("bob", "203.0.113.9", time.Minute)}, trail.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the changed rule's alert", func() bool { return len(alertsOf(t, s, "globex")) == 2 })
	if a := alertsOf(t, s, "globex")[1]; a.Context["rule_id"] != "r-2" {
		t.Errorf("alert %v, want rule r-2's", a.Context)
	}

	// A tenant's files that no longer make a set (here, written behind
	// the API's back) stop its set, with the reason in its status.
	if err := s.PutRule(ctx, &trail.RuleFile{Tenant: "globex", Name: "other", YAML: storetest.SigmaRule("r-2")}); err != nil {
		t.Fatal(err)
	}
	sv.Reload()
	eventually(t, "globex's set stopped for its rule files", func() bool {
		st, ok := statusOf(sv, "globex", TenantSet)
		return ok && st.Stopped && strings.Contains(st.LastError, "names two rules")
	})
	if got := fmt.Sprint(len(sv.Statuses(""))); got != "4" {
		t.Errorf("%s statuses, want 4 (3 built-in, 1 tenant set)", got)
	}
}

// Sync returns once the engines run the rules stored before it: the
// status read right after it shows the set a new rule file makes (with
// Reload alone, the set starts some time later), and a Replay started
// right after it replays the new rules. It returns at once when Run is
// not running, and when Run has stopped.
func TestSupervisorSync(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s := newMemory(t)
	appendAll(t, s, failures("ann@example.com", 3, 0)...)
	sv, err := NewSupervisor(SupervisorConfig{Log: s, Tenants: s, Rules: s, Cursors: s, Writer: s, Reload: time.Hour, Poll: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := sv.Sync(ctx); err != nil {
		t.Fatalf("Sync before Run: %v", err)
	}
	done := make(chan error)
	go func() { done <- sv.Run(ctx) }()
	eventually(t, "acme's built-in set runs", func() bool { _, ok := statusOf(sv, "acme", BuiltinSet); return ok })
	for i, rule := range []string{storetest.SigmaRule("r-1"), strings.ReplaceAll(storetest.SigmaRule("r-2"), "user_login_failed", "user_logout")} {
		if _, _, _, err := PutRules(ctx, s, s, &trail.RuleFile{Tenant: "acme", Name: "mine", YAML: rule}, admin, t0); err != nil {
			t.Fatal(err)
		}
		if err := sv.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		sv.mu.Lock()
		running := sv.engines[engineKey{"acme", TenantSet}]
		sv.mu.Unlock()
		if running == nil {
			t.Fatalf("rule file %d: no tenant set runs once Sync returned", i)
		}
		if got := running.e.c.Set.rules[0].ID; got != fmt.Sprintf("r-%d", i+1) {
			t.Errorf("rule file %d: the tenant set runs rule %s once Sync returned", i, got)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if err := sv.Sync(context.Background()); err != nil {
		t.Errorf("Sync after Run: %v", err)
	}
}

// TestSupervisorReservedLogs: no rules run over the logs Trail keeps for
// itself (the root log, the operators' log): no engine, no status (a
// failed one was shown before), no alert, while a tenant's log runs its
// rules as before.
func TestSupervisorReservedLogs(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s := newMemory(t)
	appendAll(t, s, failures("ann@example.com", 10, 0)...) // acme: brute force
	if _, err := s.AppendOwn(ctx, trail.RootTenant, ledger.Records(storetest.RootEntry("abc", 10))); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendOwn(ctx, trail.OperatorTenant, ledger.Records(&trail.Event{Action: catalog.DataViewed,
		Actor: trail.Actor{Type: trail.ActorOperator, ID: "op-1"}, Context: map[string]any{"data_type": "tenants", "fields_accessed": []any{"*"}}})); err != nil {
		t.Fatal(err)
	}
	sv, err := NewSupervisor(SupervisorConfig{Log: s, Tenants: s, Rules: s, Cursors: s, Writer: s, Reload: time.Hour, Poll: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- sv.Run(ctx) }()
	eventually(t, "acme's brute force alert", func() bool { return len(alertsOf(t, s, "acme")) == 1 })
	for _, st := range sv.Statuses("") {
		if trail.Reserved(st.Tenant) {
			t.Errorf("a rule set over %s's log: %+v", st.Tenant, st)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	for _, log := range []string{trail.RootTenant, trail.OperatorTenant} {
		if a := alertsOf(t, s, log); len(a) != 0 {
			t.Errorf("alerts in %s's log: %v", log, a)
		}
	}
}
