package client_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/client"
)

func loginAttempt() *trail.Event {
	return &trail.Event{
		Action:  catalog.UserLoginAttempted,
		Actor:   trail.Actor{Type: trail.ActorUser, ID: "u-alice"},
		Targets: []trail.Target{{Type: "session", ID: "s-1"}},
		Scope:   trail.Scope{Organization: "o-1"},
		Context: map[string]any{"email": "alice@example.com", "method": "password", "password": "hunter2"},
	}
}

func TestBeginOutcomes(t *testing.T) {
	tests := []struct {
		name   string
		end    func(ctx context.Context, op *client.Op) error
		action string
		want   map[string]string // context key → stored JSON
		reason string
	}{
		{
			name: "success",
			end: func(ctx context.Context, op *client.Op) error {
				return op.Succeed(ctx, map[string]any{"mfa": true, "remember_me": false})
			},
			action: catalog.UserLoginSuccess,
			want:   map[string]string{"method": `"password"`, "mfa": `true`, "remember_me": `false`},
		},
		{
			name: "failure",
			end: func(ctx context.Context, op *client.Op) error {
				return op.Fail(ctx, "invalid_password", map[string]any{"attempts": 3})
			},
			action: catalog.UserLoginFailed,
			want:   map[string]string{"reason": `"invalid_password"`, "attempts": `3`, "email": `"alice@example.com"`},
			reason: "invalid_password",
		},
		{
			name: "failure keeps the caller's context reason",
			end: func(ctx context.Context, op *client.Op) error {
				return op.Fail(ctx, "The password did not match.", map[string]any{"attempts": 1, "reason": "invalid_password"})
			},
			action: catalog.UserLoginFailed,
			want:   map[string]string{"reason": `"invalid_password"`},
			reason: "The password did not match.",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec, st := newTestLocal(t)
			ctx := context.Background()
			op, err := client.Begin(ctx, rec, catalog.Default(), loginAttempt())
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.end(ctx, op); err != nil {
				t.Fatal(err)
			}
			evs := storedEvents(t, st)
			if len(evs) != 2 {
				t.Fatalf("stored %d events, want 2", len(evs))
			}
			at, res := evs[0], evs[1]
			if at.Action != catalog.UserLoginAttempted || at.Outcome != trail.OutcomeAttempted {
				t.Errorf("first event %s (%s), want %s", at.Action, at.Outcome, catalog.UserLoginAttempted)
			}
			if res.Action != tc.action {
				t.Errorf("second event %s, want %s", res.Action, tc.action)
			}
			checkClean(t, at)
			checkClean(t, res)
			if at.CorrelationID == "" || at.CorrelationID != res.CorrelationID || at.CorrelationID != op.CorrelationID() {
				t.Errorf("correlation ids: attempt %q, result %q, op %q", at.CorrelationID, res.CorrelationID, op.CorrelationID())
			}
			if _, ok := trail.ParseID(op.CorrelationID()); !ok {
				t.Errorf("correlation id %q is not a trail id", op.CorrelationID())
			}
			if res.Actor.ID != "u-alice" || len(res.Targets) != 1 || res.Targets[0].ID != "s-1" || res.Scope.Organization != "o-1" {
				t.Errorf("result does not carry the attempt's actor, targets and scope: %+v %+v %+v", res.Actor, res.Targets, res.Scope)
			}
			for k, want := range tc.want {
				if got := storedJSON(t, res.Context[k]); got != want {
					t.Errorf("context %s = %s, want %s", k, got, want)
				}
			}
			if res.Reason != tc.reason {
				t.Errorf("reason %q, want %q", res.Reason, tc.reason)
			}
			// The attempt's secret was redacted, and not carried over.
			if at.Context["password"] != "[REDACTED]" {
				t.Errorf("attempt password stored as %v", at.Context["password"])
			}
			if _, ok := res.Context["password"]; ok {
				t.Error("password carried over to the result")
			}
			// An Op ends once.
			for _, again := range []func() error{
				func() error { return op.Succeed(ctx, nil) },
				func() error { return op.Fail(ctx, "again", nil) },
			} {
				if err := again(); trail.ErrorCode(err) != trail.ECONFLICT {
					t.Errorf("second end: %v, want %s", err, trail.ECONFLICT)
				}
			}
			if n := len(storedEvents(t, st)); n != 2 {
				t.Errorf("stored %d events after the second end, want 2", n)
			}
		})
	}
}

func TestBeginKeepsCorrelationID(t *testing.T) {
	rec, st := newTestLocal(t)
	ev := loginAttempt()
	ev.CorrelationID = "login-77"
	op, err := client.Begin(context.Background(), rec, nil, ev) // nil: the default catalog
	if err != nil {
		t.Fatal(err)
	}
	if err := op.Succeed(context.Background(), map[string]any{"mfa": false, "remember_me": true}); err != nil {
		t.Fatal(err)
	}
	for _, ev := range storedEvents(t, st) {
		if ev.CorrelationID != "login-77" {
			t.Errorf("%s: correlation id %q", ev.Action, ev.CorrelationID)
		}
	}
}

func TestBeginDeny(t *testing.T) {
	rec, st := newTestLocal(t)
	ctx := context.Background()
	op, err := client.Begin(ctx, rec, nil, &trail.Event{Action: catalog.AccessAttempted, Actor: testAlice,
		Context: map[string]any{"resource": "/admin", "action": "read"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := op.Deny(ctx, "no_permission", nil); err != nil {
		t.Fatal(err)
	}
	evs := storedEvents(t, st)
	if evs[1].Action != catalog.AccessDenied || evs[1].Context["reason"] != "no_permission" {
		t.Errorf("result %s %v", evs[1].Action, evs[1].Context)
	}
	checkClean(t, evs[1])
}

func TestBeginRefuses(t *testing.T) {
	cat := catalog.Default()
	if err := cat.Register(trail.Action{Name: "orphan_attempted", Category: "custom", Outcome: trail.OutcomeAttempted}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		ev   *trail.Event
		says string
	}{
		{"nil event", nil, "no event"},
		{"unknown action", &trail.Event{Action: "made_up_attempted", Actor: testAlice}, "not in the catalog"},
		{"not an attempt", &trail.Event{Action: catalog.UserLoginSuccess, Actor: testAlice}, "not an attempted one"},
		{"no result action", &trail.Event{Action: "orphan_attempted", Actor: testAlice}, "has no result action"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec, st := newTestLocal(t)
			op, err := client.Begin(context.Background(), rec, cat, tc.ev)
			if op != nil || trail.ErrorCode(err) != trail.EINVALID || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("Begin: %v, %v; want EINVALID saying %q", op, err, tc.says)
			}
			if n := len(storedEvents(t, st)); n != 0 {
				t.Errorf("stored %d events, want none", n)
			}
		})
	}
}

// An attempt with no failure action in the catalog cannot fail, and trying
// does not end the Op.
func TestOpMissingOutcome(t *testing.T) {
	rec, st := newTestLocal(t)
	ctx := context.Background()
	op, err := client.Begin(ctx, rec, nil, &trail.Event{Action: catalog.PasswordResetRequestAttempted, Actor: testAlice,
		Context: map[string]any{"email": "alice@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	err = op.Fail(ctx, "smtp_down", nil)
	if trail.ErrorCode(err) != trail.EINVALID || !strings.Contains(err.Error(), "no failure action") {
		t.Fatalf("Fail: %v, want EINVALID naming the missing failure action", err)
	}
	if err := op.Succeed(ctx, map[string]any{"method": "email_link"}); err != nil {
		t.Fatal(err)
	}
	if evs := storedEvents(t, st); len(evs) != 2 || evs[1].Action != catalog.UserPasswordResetRequested {
		t.Errorf("stored %d events", len(evs))
	} else {
		checkClean(t, evs[1])
	}
}

// flakyRecorder fails its first n Records.
type flakyRecorder struct {
	client.Recorder
	mu sync.Mutex
	n  int
}

func (f *flakyRecorder) Record(ctx context.Context, ev *trail.Event) error {
	f.mu.Lock()
	fail := f.n > 0
	f.n--
	f.mu.Unlock()
	if fail {
		return errors.New("store down")
	}
	return f.Recorder.Record(ctx, ev)
}

// A result that could not be recorded does not end the Op: the caller can
// try again. An attempt that could not be recorded gives no Op.
func TestOpRetryAfterRecordError(t *testing.T) {
	local, st := newTestLocal(t)
	ctx := context.Background()
	if op, err := client.Begin(ctx, &flakyRecorder{Recorder: local, n: 1}, nil, loginAttempt()); err == nil || op != nil {
		t.Fatalf("Begin with a failing recorder: %v, %v", op, err)
	}
	rec := &flakyRecorder{Recorder: local}
	op, err := client.Begin(ctx, rec, nil, loginAttempt())
	if err != nil {
		t.Fatal(err)
	}
	rec.n = 1
	if err := op.Succeed(ctx, map[string]any{"mfa": false, "remember_me": false}); err == nil {
		t.Fatal("Succeed with a failing recorder returned nil")
	}
	if err := op.Succeed(ctx, map[string]any{"mfa": false, "remember_me": false}); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if evs := storedEvents(t, st); len(evs) != 2 || evs[1].Action != catalog.UserLoginSuccess {
		t.Fatalf("stored %d events", len(evs))
	}
}

// Concurrent ends record exactly one result.
func TestOpEndsOnceConcurrently(t *testing.T) {
	rec, st := newTestLocal(t)
	ctx := context.Background()
	op, err := client.Begin(ctx, rec, nil, loginAttempt())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for i := range 8 {
		wg.Go(func() {
			var err error
			if i%2 == 0 {
				err = op.Succeed(ctx, map[string]any{"mfa": false, "remember_me": false})
			} else {
				err = op.Fail(ctx, "invalid_password", map[string]any{"attempts": 1})
			}
			if err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if ok != 1 {
		t.Errorf("%d ends succeeded, want 1", ok)
	}
	if n := len(storedEvents(t, st)); n != 2 {
		t.Errorf("stored %d events, want 2", n)
	}
}
