package detect

import (
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
)

// TestBuiltinRules runs the built-in set over logs that must and must not
// alert, and holds each to exactly the alerts it must raise, by rule name.
func TestBuiltinRules(t *testing.T) {
	min := time.Minute
	admin, member := user("u-admin", "admin"), user("u-member", "member")
	key := trail.Actor{Type: trail.ActorAPIKey, ID: "k-1"}
	role := func(actor trail.Actor, name string) *trail.Event {
		return event(catalog.RoleAssigned, actor, 0, map[string]any{"role_name": name, "assigned_by": actor.ID, "target_user_id": "u-2"})
	}
	grant := func(actor trail.Actor, perm string) *trail.Event {
		return event(catalog.PermissionGranted, actor, 0, map[string]any{"permission": perm, "target_user_id": "u-2"})
	}
	export := func(actor string, at time.Duration, ctx map[string]any) *trail.Event {
		base := map[string]any{"export_format": "csv", "data_scope": "entries", "export_reason": "user_request", "file_size": 1024, "result_count": 10}
		maps.Copy(base, ctx)
		return event(catalog.DataExported, user(actor), at, base)
	}
	denied := func(id string, at time.Duration) *trail.Event {
		return event(catalog.RateLimitCheckDenied, user("u-1"), at, map[string]any{"endpoint": "/login", "identifier": id,
			"scope": "ip", "retry_after": 30, "limit": 10, "remaining": "0"})
	}
	stale := func(ip string, at time.Duration) *trail.Event {
		ev := event(catalog.TokenRejectedVersionMismatch, user("u-1"), at, map[string]any{"token_version": 3, "required_version": 4, "rejection_reason": "user_rotation"})
		ev.Request.IP = ip
		return ev
	}
	evicted := func(i int) *trail.Event {
		return event(catalog.SessionEvicted, user(fmt.Sprintf("u-%d", i)), time.Duration(i)*10*time.Second,
			map[string]any{"session_id": fmt.Sprint("s-", i), "eviction_reason": "limit_exceeded", "active_sessions_count": 5})
	}
	mfaOff := func(actor trail.Actor, at time.Duration, targets ...trail.Target) *trail.Event {
		ev := event(catalog.UserMfaDisabled, actor, at, map[string]any{"initiated_by": "user", "reason": "lost_device"})
		ev.Targets = targets
		return ev
	}
	const ipA, ipB = "192.0.2.10", "203.0.113.99"
	day := 24 * time.Hour

	tests := []struct {
		name   string
		events []*trail.Event
		want   map[string]int
	}{
		{"ten failures for one account in 15 minutes", times(10, func(i int) *trail.Event {
			return failedLogin("ann@example.com", fmt.Sprintf("192.0.2.%d", i), time.Duration(i)*min)
		}), map[string]int{"brute_force_account": 1}},
		{"nine failures for one account", times(9, func(i int) *trail.Event {
			return failedLogin("ann@example.com", fmt.Sprintf("192.0.2.%d", i), time.Duration(i)*min)
		}), map[string]int{}},
		{"ten failures for one account, 2 minutes apart: never ten in 15 minutes", times(10, func(i int) *trail.Event {
			return failedLogin("ann@example.com", ipA, time.Duration(i)*2*min)
		}), map[string]int{}},
		{"twenty failures for one account: two alerts, each with new evidence", times(20, func(i int) *trail.Event {
			return failedLogin("ann@example.com", fmt.Sprintf("192.0.2.%d", i), time.Duration(i)*10*time.Second)
		}), map[string]int{"brute_force_account": 2}},
		{"twenty failures from one address, on five accounts", times(20, func(i int) *trail.Event {
			return failedLogin(fmt.Sprintf("user%d@example.com", i%5), ipA, time.Duration(i)*10*time.Second)
		}), map[string]int{"brute_force_address": 1}},
		{"nineteen failures from one address", times(19, func(i int) *trail.Event {
			return failedLogin(fmt.Sprintf("user%d@example.com", i%5), ipA, time.Duration(i)*10*time.Second)
		}), map[string]int{}},
		{"ten accounts tried from one address within an hour: spraying", times(10, func(i int) *trail.Event {
			return failedLogin(fmt.Sprintf("user%d@example.com", i), ipA, time.Duration(i)*5*min)
		}), map[string]int{"password_spraying": 1}},
		{"nine accounts tried from one address, over and over", times(18, func(i int) *trail.Event {
			return failedLogin(fmt.Sprintf("user%d@example.com", i%9), ipA, time.Duration(i)*3*min)
		}), map[string]int{}},
		{"ten accounts tried from ten addresses", times(10, func(i int) *trail.Event {
			return failedLogin(fmt.Sprintf("user%d@example.com", i), fmt.Sprintf("192.0.2.%d", i), time.Duration(i)*min)
		}), map[string]int{}},
		{"the app counts ten consecutive failures", []*trail.Event{func() *trail.Event {
			ev := failedLogin("ann@example.com", ipA, 0)
			ev.Context["attempts"] = 10
			return ev
		}()}, map[string]int{"consecutive_failed_logins": 1}},
		{"the app counts nine", []*trail.Event{func() *trail.Event {
			ev := failedLogin("ann@example.com", ipA, 0)
			ev.Context["attempts"] = 9
			return ev
		}()}, map[string]int{}},

		{"an admin makes someone an admin", []*trail.Event{role(admin, "admin")}, map[string]int{"admin_rights_granted": 1}},
		{"a member makes someone a Workspace Admin", []*trail.Event{role(member, "Workspace Admin")}, map[string]int{"admin_rights_granted_by_non_admin": 1}},
		{"an admin makes someone a reviewer", []*trail.Event{role(admin, "reviewer")}, map[string]int{}},
		{"an admin API key makes an admin key", []*trail.Event{grant(key, "api_key:admin,read")}, map[string]int{"admin_rights_granted": 1}},
		{"an API key makes a read key", []*trail.Event{grant(key, "api_key:read,ingest")}, map[string]int{}},
		{"a user with no roles grants workspace.manage", []*trail.Event{grant(user("u-3"), "workspace.manage")}, map[string]int{"admin_rights_granted_by_non_admin": 1}},
		{"an admin grants entries.read", []*trail.Event{grant(admin, "entries.read")}, map[string]int{}},
		{"an admin creates an admin account", []*trail.Event{event(catalog.AdminUserCreated, admin, 0,
			map[string]any{"created_by": "u-admin", "initial_role": "org_admin", "user_email": "new@example.com"})}, map[string]int{"admin_rights_granted": 1}},

		{"one export of 20,000 records", []*trail.Event{export("u-1", 0, map[string]any{"result_count": 20000})}, map[string]int{"large_export": 1}},
		{"Trail's own export record of 10,000 records", []*trail.Event{export("u-1", 0, map[string]any{"result_count": nil, "record_count": 10000})}, map[string]int{"large_export": 1}},
		{"one export of 200 MiB", []*trail.Event{export("u-1", 0, map[string]any{"file_size": 200 << 20})}, map[string]int{"large_export": 1}},
		{"a small export", []*trail.Event{export("u-1", 0, nil)}, map[string]int{}},
		{"ten exports by one actor in an hour", times(10, func(i int) *trail.Event { return export("u-1", time.Duration(i)*5*min, nil) }),
			map[string]int{"exports_in_a_window": 1}},
		{"ten exports by ten actors", times(10, func(i int) *trail.Event { return export(fmt.Sprint("u-", i), time.Duration(i)*min, nil) }),
			map[string]int{}},

		{"thirty denials of one client in 5 minutes", times(30, func(i int) *trail.Event { return denied("ip:192.0.2.1", time.Duration(i)*5*time.Second) }),
			map[string]int{"rate_limit_burst": 1}},
		{"twenty-nine denials", times(29, func(i int) *trail.Event { return denied("ip:192.0.2.1", time.Duration(i)*5*time.Second) }),
			map[string]int{}},
		{"thirty denials over half an hour", times(30, func(i int) *trail.Event { return denied("ip:192.0.2.1", time.Duration(i)*min) }),
			map[string]int{}},

		{"ten stale tokens from one address", times(10, func(i int) *trail.Event { return stale(ipA, time.Duration(i)*min) }),
			map[string]int{"token_mismatch_burst": 1}},
		{"ten stale tokens from ten addresses (a global rotation)", times(10, func(i int) *trail.Event { return stale(fmt.Sprint("192.0.2.", i), time.Duration(i)*min) }),
			map[string]int{}},

		{"twenty-five evictions in 10 minutes", times(25, evicted), map[string]int{"session_eviction_storm": 1}},
		{"twenty-four evictions", times(24, evicted), map[string]int{}},

		{"suspicious session activity", []*trail.Event{event(catalog.SuspiciousSessionActivity, user("u-1"), 0,
			map[string]any{"session_id": "s-1", "activity_type": "ip_change", "risk_score": 0.9, "detection_reason": "impossible travel"})},
			map[string]int{"suspicious_session_activity": 1}},

		{"MFA disabled half an hour after a login from a new address", []*trail.Event{
			login("u-1", ipA, -10*day), login("u-1", ipB, -30*min), mfaOff(user("u-1"), 0)},
			map[string]int{"mfa_disabled_after_new_address": 1}},
		{"MFA disabled after a login from the usual address", []*trail.Event{
			login("u-1", ipA, -10*day), login("u-1", ipA, -30*min), mfaOff(user("u-1"), 0)},
			map[string]int{}},
		{"MFA disabled two hours after a login from a new address", []*trail.Event{
			login("u-1", ipA, -10*day), login("u-1", ipB, -2*time.Hour), mfaOff(user("u-1"), 0)},
			map[string]int{}},
		{"MFA disabled after an account's first login: no history to be new to", []*trail.Event{
			login("u-1", ipB, -30*min), mfaOff(user("u-1"), 0)},
			map[string]int{}},
		{"an admin disables the MFA of an account that just logged in from a new address", []*trail.Event{
			login("u-1", ipA, -10*day), login("u-1", ipB, -30*min), mfaOff(admin, 0, trail.Target{Type: "user", ID: "u-1"})},
			map[string]int{"mfa_disabled_after_new_address": 1}},
		{"the new address was last used more than 30 days before", []*trail.Event{
			login("u-1", ipB, -40*day), login("u-1", ipA, -10*day), login("u-1", ipB, -30*min), mfaOff(user("u-1"), 0)},
			map[string]int{"mfa_disabled_after_new_address": 1}},
	}
	set := Builtin()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { wantAlerts(t, set, tc.events, tc.want) })
	}
}

// TestBuiltinRulesParse: every built-in file parses, every rule has an id
// and a title, and every correlation's rules are in the set.
func TestBuiltinRulesParse(t *testing.T) {
	files := BuiltinFiles()
	if len(files) < 8 {
		t.Fatalf("%d built-in rule files", len(files))
	}
	for name, data := range files {
		if _, err := ParseRules(data); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, r := range Builtin().Rules() {
		if r.ID == "" || r.Name == "" || r.Title == "" || r.Description == "" {
			t.Errorf("rule %q: id, name, title and description are required of a built-in rule", r.Ref())
		}
	}
}
