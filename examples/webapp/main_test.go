package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/client"
)

func TestApp(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cat := catalog.Default()
	db, err := openLog(ctx, dir, cat)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	h := newApp(client.NewLocal(db, tenant, trail.Policy{}), cat)

	do := func(method, target, user string, form url.Values, wantStatus int) *httptest.ResponseRecorder {
		t.Helper()
		var body *strings.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		} else {
			body = strings.NewReader("")
		}
		r := httptest.NewRequest(method, target, body)
		if form != nil {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if user != "" {
			r.SetBasicAuth(user, demoPassword)
		}
		r.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != wantStatus {
			t.Fatalf("%s %s: status %d, want %d: %s", method, target, w.Code, wantStatus, w.Body)
		}
		if w.Header().Get("X-Request-Id") == "" {
			t.Errorf("%s %s: no X-Request-Id", method, target)
		}
		return w
	}

	do("POST", "/login", "", url.Values{"user": {"alice@example.com"}, "password": {demoPassword}}, 200)
	do("POST", "/login", "", url.Values{"user": {"alice@example.com"}, "password": {"wrong"}}, 401)
	do("POST", "/login", "", url.Values{"user": {"mallory@example.com"}, "password": {"guess"}}, 401)
	export := do("GET", "/export?status=approved", "alice@example.com", nil, 200)
	do("GET", "/export", "", nil, 401)
	do("POST", "/permissions", "alice@example.com", url.Values{"user": {"bob@example.com"}, "permission": {"workspace.change_entry"},
		"action": {"grant"}, "reason": {"Promoted to reviewer"}}, 200)
	do("POST", "/permissions", "bob@example.com", url.Values{"user": {"bob@example.com"}, "permission": {"workspace.admin"},
		"action": {"grant"}}, 403)
	do("POST", "/entries/approve", "alice@example.com", url.Values{"ids": {"e-1,e-2", "e-3"}, "criteria": {"auto_approval_eligible"}}, 200)

	if got := export.Body.String(); got != "id,amount,status\ne-1,120.00,approved\ne-3,310.25,approved\n" {
		t.Errorf("export body %q", got)
	}

	var evs []*trail.Event
	if err := db.Scan(ctx, tenant, 0, 0, func(ev *trail.Event) error {
		evs = append(evs, ev)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		action  string
		actor   string
		context map[string]string // key → stored JSON
	}{
		{catalog.UserLoginAttempted, "alice@example.com", map[string]string{"email": `"alice@example.com"`, "method": `"password"`}},
		{catalog.UserLoginSuccess, "alice@example.com", map[string]string{"method": `"password"`, "mfa": `false`}},
		{catalog.UserLoginAttempted, "alice@example.com", nil},
		{catalog.UserLoginFailed, "alice@example.com", map[string]string{"reason": `"invalid_password"`, "attempts": `1`, "email": `"alice@example.com"`}},
		{catalog.UserLoginAttempted, "mallory@example.com", nil},
		{catalog.UserLoginFailed, "mallory@example.com", map[string]string{"reason": `"user_not_found"`}},
		{catalog.DataExported, "alice@example.com", map[string]string{"export_format": `"csv"`, "data_scope": `"entries"`, "result_count": `2`,
			"file_size": jsonOf(t, export.Body.Len()), "filters": `{"status":"approved"}`}},
		{catalog.AccessDenied, client.AnonymousActor.ID, map[string]string{"resource": `"GET /export"`, "reason": `"unauthenticated"`}},
		{catalog.PermissionGranted, "alice@example.com", map[string]string{"permission": `"workspace.change_entry"`, "target_user_id": `"bob@example.com"`}},
		{catalog.AccessDenied, "bob@example.com", map[string]string{"resource": `"POST /permissions"`, "reason": `"no_permission"`, "status": `403`}},
		{catalog.BulkOperation, "alice@example.com", map[string]string{"operation_type": `"bulk_approve"`, "affected_count": `3`,
			"sample_ids": `["e-1","e-2","e-3"]`, "ids_sha256": jsonOf(t, client.IDsDigest([]string{"e-1", "e-2", "e-3"}))}},
	}
	if len(evs) != len(want) {
		for _, ev := range evs {
			t.Log(ev.Action)
		}
		t.Fatalf("stored %d events, want %d", len(evs), len(want))
	}
	for i, w := range want {
		ev := evs[i]
		if ev.Action != w.action || ev.Actor.ID != w.actor {
			t.Errorf("event %d: %s by %s, want %s by %s", i, ev.Action, ev.Actor.ID, w.action, w.actor)
			continue
		}
		if len(ev.Violations) != 0 {
			t.Errorf("event %d (%s): violations %+v", i, ev.Action, ev.Violations)
		}
		for k, v := range w.context {
			if got := jsonOf(t, ev.Context[k]); got != v {
				t.Errorf("event %d (%s): context %s = %s, want %s", i, ev.Action, k, got, v)
			}
		}
		if ev.Request.IP != "192.0.2.1" || ev.Request.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" || ev.Request.RequestID == "" {
			t.Errorf("event %d (%s): request %+v", i, ev.Action, ev.Request)
		}
	}
	// Each login's attempt and outcome share a correlation id of their own.
	for _, i := range []int{0, 2, 4} {
		if evs[i].CorrelationID == "" || evs[i].CorrelationID != evs[i+1].CorrelationID {
			t.Errorf("login %d: correlation ids %q and %q", i, evs[i].CorrelationID, evs[i+1].CorrelationID)
		}
	}
	if evs[0].CorrelationID == evs[2].CorrelationID {
		t.Error("two logins share a correlation id")
	}
	// The password was never stored.
	for _, ev := range evs {
		b, _ := json.Marshal(ev)
		if strings.Contains(string(b), demoPassword+`"`) || strings.Contains(string(b), "wrong") {
			t.Errorf("%s holds a password: %s", ev.Action, b)
		}
	}

	// The log reopens with the signing key kept beside it.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db2, err := openLog(ctx, dir, cat)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer db2.Close()
	if err := client.NewLocal(db2, tenant, trail.Policy{}).Record(ctx, &trail.Event{Action: catalog.UserLogout,
		Actor: trail.Actor{Type: trail.ActorUser, ID: "alice@example.com"}, Context: map[string]any{"session_id": "s-1", "logout_method": "explicit"}}); err != nil {
		t.Fatalf("append after reopening: %v", err)
	}
}

func TestLoginNeedsUser(t *testing.T) {
	ctx := context.Background()
	cat := catalog.Default()
	db, err := openLog(ctx, t.TempDir(), cat)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r := httptest.NewRequest("POST", "/login", strings.NewReader("password=demo"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	newApp(client.NewLocal(db, tenant, trail.Policy{}), cat).ServeHTTP(w, r)
	if w.Code != http.StatusBadRequest {
		t.Errorf("status %d, want 400", w.Code)
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
