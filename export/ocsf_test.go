package export

import (
	"bufio"
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
)

// ocsfSpec holds, for each class written, its category and the activity ids
// and captions OCSF 1.3.0 defines (events/iam/*.json, events/application/
// api.json and includes/classification.json of the ocsf-schema repository
// at tag 1.3.0).
var ocsfSpec = map[int]struct {
	name       string
	category   int
	catName    string
	activities map[int]string
}{
	3001: {"Account Change", 3, "Identity & Access Management", map[int]string{
		0: "Unknown", 1: "Create", 2: "Enable", 3: "Password Change", 4: "Password Reset", 5: "Disable", 6: "Delete",
		7: "Attach Policy", 8: "Detach Policy", 9: "Lock", 10: "MFA Factor Enable", 11: "MFA Factor Disable", 99: "Other"}},
	3002: {"Authentication", 3, "Identity & Access Management", map[int]string{
		0: "Unknown", 1: "Logon", 2: "Logoff", 3: "Authentication Ticket", 4: "Service Ticket Request",
		5: "Service Ticket Renew", 6: "Preauth", 99: "Other"}},
	3004: {"Entity Management", 3, "Identity & Access Management", map[int]string{
		0: "Unknown", 1: "Create", 2: "Read", 3: "Update", 4: "Delete", 5: "Move", 6: "Enroll", 7: "Unenroll",
		8: "Enable", 9: "Disable", 10: "Activate", 11: "Deactivate", 12: "Suspend", 13: "Resume", 99: "Other"}},
	6003: {"API Activity", 6, "Application Activity", map[int]string{
		0: "Unknown", 1: "Create", 2: "Read", 3: "Update", 4: "Delete", 99: "Other"}},
}

// TestOCSFTables: every class and activity the mapping can produce is the
// one OCSF 1.3.0 defines, with its caption.
func TestOCSFTables(t *testing.T) {
	for _, cl := range []*ocsfClass{classAuthentication, classAccountChange, classEntityManagement, classAPIActivity} {
		spec, ok := ocsfSpec[cl.uid]
		if !ok || spec.name != cl.name || spec.category != cl.categoryUID || spec.catName != cl.categoryName {
			t.Errorf("class %d %q (category %d %q) is not OCSF's", cl.uid, cl.name, cl.categoryUID, cl.categoryName)
			continue
		}
		for _, r := range cl.activities {
			if spec.activities[r.id] != r.name {
				t.Errorf("%s activity %d is %q in OCSF, not %q", cl.name, r.id, spec.activities[r.id], r.name)
			}
			for _, w := range r.words {
				if s, ok := stems[w]; ok && s != w {
					t.Errorf("%s activity %s: word %q is not a stem (it stems to %q) and never matches", cl.name, r.name, w, s)
				}
			}
		}
	}
	for _, r := range classRules {
		if s, ok := stems[r.word]; ok && s != r.word {
			t.Errorf("class rule %+v: word %q stems to %q and never matches", r, r.word, s)
		}
	}
}

// TestOCSFEveryAction maps an event of every built-in action and checks it
// is a well-formed OCSF event of one of the four classes.
func TestOCSFEveryAction(t *testing.T) {
	cat := catalog.Default()
	actions := cat.Actions(catalog.Filter{})
	if len(actions) < 100 {
		t.Fatalf("only %d actions in the catalog", len(actions))
	}
	seen := map[int]int{}
	for _, a := range actions {
		ev := &trail.Event{
			ID: "evt", Seq: 1, Action: a.Name, Category: a.Category, Outcome: a.Outcome,
			OccurredAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
			Actor:      trail.Actor{ID: "u-1", Type: trail.ActorUser},
			Targets:    []trail.Target{{Type: "user", ID: "u-2"}},
			Request:    trail.Request{IP: "192.0.2.1", RequestID: "r-1"},
		}
		oe := toOCSF(ev, resolve(cat, ev))
		spec, ok := ocsfSpec[oe.ClassUID]
		if !ok {
			t.Errorf("%s: class_uid %d is not one of the four classes", a.Name, oe.ClassUID)
			continue
		}
		seen[oe.ClassUID]++
		name, ok := spec.activities[oe.ActivityID]
		switch {
		case !ok || name != oe.ActivityName:
			t.Errorf("%s: activity %d %q is not a %s activity", a.Name, oe.ActivityID, oe.ActivityName, spec.name)
		case oe.ClassName != spec.name || oe.CategoryUID != spec.category || oe.CategoryName != spec.catName:
			t.Errorf("%s: class %q category %d %q", a.Name, oe.ClassName, oe.CategoryUID, oe.CategoryName)
		case oe.TypeUID != oe.ClassUID*100+oe.ActivityID:
			t.Errorf("%s: type_uid %d", a.Name, oe.TypeUID)
		case oe.TypeName != oe.ClassName+": "+oe.ActivityName:
			t.Errorf("%s: type_name %q", a.Name, oe.TypeName)
		case oe.SeverityID < 1 || oe.SeverityID > 5:
			t.Errorf("%s: severity_id %d for catalog severity %q", a.Name, oe.SeverityID, a.Severity)
		case oe.Time != ev.OccurredAt.UnixMilli():
			t.Errorf("%s: time %d", a.Name, oe.Time)
		case oe.Message != a.Name || oe.Metadata.Version != "1.3.0" || oe.Metadata.Product.VendorName != "Trail":
			t.Errorf("%s: message %q metadata %+v", a.Name, oe.Message, oe.Metadata)
		}
		// The attributes each class requires.
		switch oe.ClassUID {
		case 3001, 3002:
			if oe.User == nil || oe.User.UID != "u-2" {
				t.Errorf("%s: user %+v, want the target user", a.Name, oe.User)
			}
		case 3004:
			if oe.Entity == nil {
				t.Errorf("%s: no entity", a.Name)
			}
		case 6003:
			if oe.API == nil || oe.API.Operation != a.Name || oe.Actor == nil || oe.SrcEndpoint == nil {
				t.Errorf("%s: api %+v actor %+v src_endpoint %+v", a.Name, oe.API, oe.Actor, oe.SrcEndpoint)
			}
		}
		wantStatus := map[trail.Outcome]int{trail.OutcomeSuccess: 1, trail.OutcomeFailure: 2, trail.OutcomeDenied: 2, trail.OutcomeAttempted: 0, trail.OutcomeInfo: 99}[a.Outcome]
		if oe.StatusID != wantStatus {
			t.Errorf("%s (%s): status_id %d, want %d", a.Name, a.Outcome, oe.StatusID, wantStatus)
		}
	}
	for uid := range ocsfSpec {
		if seen[uid] == 0 {
			t.Errorf("no action maps to class %d", uid)
		}
	}
	t.Logf("actions per class: %v", seen)
}

// TestOCSFMapping pins the class and activity of named actions, built-in
// and custom.
func TestOCSFMapping(t *testing.T) {
	for _, tc := range []struct {
		category, action string
		class, activity  int
	}{
		{"authentication", catalog.UserLoginSuccess, 3002, 1},
		{"authentication", catalog.UserLoginFailed, 3002, 1},
		{"authentication", catalog.UserLoginAttempted, 3002, 1},
		{"authentication", catalog.UserLogout, 3002, 2},
		{"authentication", catalog.AuthTokenRefreshed, 3002, 99},
		{"authentication", catalog.UserEmailVerified, 3002, 99},
		{"session", catalog.SessionRevoked, 3002, 2},
		{"session", catalog.AllSessionsRevoked, 3002, 2},
		{"session", catalog.SuspiciousSessionActivity, 3002, 99},
		{"authentication", catalog.UserRegistered, 3001, 1},
		{"authentication", catalog.UserPasswordChanged, 3001, 3},
		{"authentication", catalog.UserPasswordResetCompleted, 3001, 4},
		{"authentication", catalog.UserPasswordResetRequested, 3001, 4},
		{"authentication", catalog.UserMfaEnabled, 3001, 10},
		{"authentication", catalog.UserMfaDisabled, 3001, 11},
		{"authorization", catalog.RoleAssigned, 3001, 7},
		{"authorization", catalog.RoleRevoked, 3001, 8},
		{"authorization", catalog.PermissionGranted, 3001, 7},
		{"authorization", catalog.PermissionRevoked, 3001, 8},
		{"authorization", catalog.PermissionChanged, 3001, 99},
		{"user_management", catalog.UserCreated, 3001, 1},
		{"user_management", catalog.UserDeleted, 3001, 6},
		{"user_management", catalog.UserUpdated, 3001, 99},
		{"administration", catalog.AdminUserSuspended, 3001, 5},
		{"organization", catalog.OrganizationMemberRoleChanged, 3001, 99},
		{"authorization", catalog.AccessDenied, 6003, 99},
		{"data", catalog.DataViewed, 6003, 2},
		{"data", catalog.DataExported, 6003, 2},
		{"data", catalog.DataDeleted, 6003, 4},
		{"data", catalog.DataModified, 6003, 3},
		{"provider", catalog.ProviderConnected, 6003, 1},
		{"provider", catalog.ProviderDisconnected, 6003, 4},
		{"provider", catalog.ProviderTokenRefreshed, 6003, 3},
		{"provider", catalog.TransactionSyncSucceeded, 6003, 2},
		{"rate_limit", catalog.RateLimitCheckDenied, 6003, 99},
		{"entry", catalog.EntryApproved, 3004, 3},
		{"entry", catalog.EntryCreated, 3004, 1},
		{"workspace", catalog.WorkspaceCreated, 3004, 1},
		{"workspace", catalog.WorkspaceActivated, 3004, 10},
		{"administration", catalog.AdminConfigChanged, 3004, 3},
		{"administration", catalog.AdminBackupCreated, 3004, 1},
		{"file", catalog.FileDownloaded, 3004, 2},
		{"team", catalog.TeamMemberRemoved, 3004, 4},
		{"remittance", catalog.RemittanceOverdue, 3004, 99},
		// Custom actions, placed by the words of their names.
		{"billing", "billing_invoice_sent", 3004, 1},
		{"custom", "sso_login_success", 3002, 1},
		{"custom", "kiosk_logout", 3002, 2},
		{"custom", "webhook_deleted", 6003, 4},
		{"custom", "api_key_created", 6003, 1},
		{"custom", "customer_account_locked", 3001, 9},
		{"custom", "widget_renamed", 3004, 5},
		{"custom", "", 3004, 99},
		{"", "WEIRD_Name__x", 3004, 99},
	} {
		m := mapOCSF(tc.category, tc.action)
		if m.class.uid != tc.class || m.id != tc.activity {
			t.Errorf("%s/%s = %d %s / %d %s, want %d / %d", tc.category, tc.action, m.class.uid, m.class.name, m.id, m.name, tc.class, tc.activity)
		}
	}
}

func TestOCSFStatus(t *testing.T) {
	for _, tc := range []struct {
		outcome        trail.Outcome
		id             int
		status, detail string
	}{
		{trail.OutcomeSuccess, 1, "Success", ""},
		{trail.OutcomeFailure, 2, "Failure", ""},
		{trail.OutcomeDenied, 2, "Failure", "denied"},
		{trail.OutcomeAttempted, 0, "Unknown", "attempted"},
		{trail.OutcomeInfo, 99, "Other", "info"},
		{"", 0, "Unknown", ""},
	} {
		id, status, detail := ocsfStatus(tc.outcome)
		if id != tc.id || status != tc.status || detail != tc.detail {
			t.Errorf("ocsfStatus(%q) = %d %q %q, want %d %q %q", tc.outcome, id, status, detail, tc.id, tc.status, tc.detail)
		}
	}
	for s, want := range map[trail.Severity]int{"info": 1, "low": 2, "medium": 3, "high": 4, "critical": 5, "": 0, "extreme": 0} {
		if got, _ := ocsfSeverity(s); got != want {
			t.Errorf("ocsfSeverity(%q) = %d, want %d", s, got, want)
		}
	}
}

// TestOCSFLines checks the written lines of the sample events as generic
// JSON: the members every OCSF event requires, and a few mapped values.
func TestOCSFLines(t *testing.T) {
	events := sampleEvents()
	out := writeAll(t, OCSF, events)
	if !bytes.Contains(out, []byte("<script>")) {
		t.Errorf("OCSF output escapes HTML")
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	var lines []map[string]any
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %d: %v", len(lines)+1, err)
		}
		lines = append(lines, m)
	}
	if len(lines) != len(events) {
		t.Fatalf("%d lines for %d events", len(lines), len(events))
	}
	for i, m := range lines {
		for _, k := range []string{"class_uid", "category_uid", "activity_id", "type_uid", "time", "severity_id", "metadata"} {
			if _, ok := m[k]; !ok {
				t.Errorf("event %d: no %s", i+1, k)
			}
		}
	}
	get := func(m map[string]any, path ...string) any {
		var v any = m
		for _, p := range path {
			o, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = o[p]
		}
		return v
	}
	for _, tc := range []struct {
		event int
		path  []string
		want  any
	}{
		{1, []string{"class_uid"}, 3002.0},
		{1, []string{"type_uid"}, 300201.0},
		{1, []string{"time"}, float64(time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC).UnixMilli())},
		{1, []string{"metadata", "sequence"}, 1.0},
		{1, []string{"metadata", "log_name"}, "acme"},
		{1, []string{"actor", "user", "email_addr"}, "alice@example.com"},
		{1, []string{"actor", "session", "uid"}, "s-1"},
		{1, []string{"src_endpoint", "ip"}, "203.0.113.7"},
		{1, []string{"http_request", "http_method"}, "POST"},
		{1, []string{"user", "uid"}, "u-1"},
		{1, []string{"severity_id"}, 2.0},
		{2, []string{"status_id"}, 2.0},
		{2, []string{"user", "name"}, "Bob"},
		{2, []string{"metadata", "correlation_uid"}, "c-login-2"},
		{2, []string{"metadata", "original_time"}, "2026-11-24T10:00:01.0005Z"},
		{3, []string{"class_uid"}, 3001.0},
		{3, []string{"activity_name"}, "Attach Policy"},
		{3, []string{"unmapped", "reason"}, "quarterly access review"},
		{3, []string{"unmapped", "scope", "workspace"}, "ws-7"},
		{4, []string{"class_uid"}, 6003.0},
		{4, []string{"api", "operation"}, "data_exported"},
		{4, []string{"api", "request", "uid"}, "r-0004"},
		{4, []string{"unmapped", "context", "result_count"}, 1200.0},
		{5, []string{"class_uid"}, 3004.0},
		{5, []string{"entity", "uid"}, "e-42"},
		{5, []string{"unmapped", "scope", "team"}, "team-finance"},
		{6, []string{"actor", "user", "name"}, hostileName},
		{6, []string{"unmapped", "context", "bio"}, "<script>alert(1)</script>"},
		{7, []string{"status_id"}, 2.0},
		{7, []string{"status_detail"}, "denied"},
		{7, []string{"actor", "user", "type_id"}, 99.0},
		{7, []string{"actor", "user", "type"}, "api_key"},
		{8, []string{"severity_id"}, 0.0},
		{8, []string{"status_id"}, 99.0},
		{8, []string{"time"}, float64(time.Date(2026, 11, 24, 10, 0, 7, 120e6, time.UTC).UnixMilli())},
		{8, []string{"actor", "user", "type"}, "System"},
		{8, []string{"unmapped", "category"}, "billing"},
		{9, []string{"status_id"}, 0.0},
		{9, []string{"status_detail"}, "attempted"},
	} {
		if got := get(lines[tc.event-1], tc.path...); got != tc.want {
			t.Errorf("event %d %v = %#v, want %#v", tc.event, tc.path, got, tc.want)
		}
	}
}
