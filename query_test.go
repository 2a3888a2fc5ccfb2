package trail_test

import (
	"testing"
	"time"

	"github.com/trailaudit/trail"
)

// TestQueryCheck: a filter no stored value can equal is refused, naming
// the filter as the API and the CLI call it: a control character or
// invalid UTF-8 in an identifier (PostgreSQL cannot even hold a NUL, and
// would fail the read).
func TestQueryCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		q    trail.Query
		want []trail.FieldError
	}{
		{"every filter well formed", trail.Query{Tenant: "acme", ActorID: "ü-1", ActorType: trail.ActorUser, Actions: []string{"user_login_failed"},
			Category: "authentication", Outcome: trail.OutcomeFailure, TargetType: "invoice", TargetID: "inv 1", Organization: "o",
			Workspace: "w", Team: "t", CorrelationID: "c-1"}, nil},
		{"no tenant", trail.Query{}, []trail.FieldError{{Path: "tenant", Message: "required"}}},
		{"NUL in the actor", trail.Query{Tenant: "acme", ActorID: "u-1\x00"},
			[]trail.FieldError{{Path: "actor", Message: "holds the control character U+0000 at byte 3; identifiers hold none"}}},
		{"an empty and a bad action", trail.Query{Tenant: "acme", Actions: []string{"user_login_failed", "", "a\nb"}},
			[]trail.FieldError{{Path: "action[1]", Message: "empty"}, {Path: "action[2]", Message: "holds the control character U+000A at byte 1; identifiers hold none"}}},
		{"every other filter", trail.Query{Tenant: "acme", ActorType: "\x00", Category: "\x01", Outcome: "\x02", TargetType: "\x03",
			TargetID: "\x04", Organization: "\x05", Workspace: "\x06", Team: "\x7f", CorrelationID: "\u009f"},
			[]trail.FieldError{
				{Path: "actor_type", Message: "holds the control character U+0000 at byte 0; identifiers hold none"},
				{Path: "category", Message: "holds the control character U+0001 at byte 0; identifiers hold none"},
				{Path: "outcome", Message: "holds the control character U+0002 at byte 0; identifiers hold none"},
				{Path: "target_type", Message: "holds the control character U+0003 at byte 0; identifiers hold none"},
				{Path: "target", Message: "holds the control character U+0004 at byte 0; identifiers hold none"},
				{Path: "organization", Message: "holds the control character U+0005 at byte 0; identifiers hold none"},
				{Path: "workspace", Message: "holds the control character U+0006 at byte 0; identifiers hold none"},
				{Path: "team", Message: "holds the control character U+007F at byte 0; identifiers hold none"},
				{Path: "correlation", Message: "holds the control character U+009F at byte 0; identifiers hold none"},
			}},
		{"invalid UTF-8", trail.Query{Tenant: "acme", Workspace: "w\xff"}, []trail.FieldError{{Path: "workspace", Message: "not valid UTF-8"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantFields(t, tc.q.Check(), tc.want)
		})
	}
}

// TestWindowOnly: a query of a tenant's recorded_at window, paged, is a
// window; any other filter is not.
func TestWindowOnly(t *testing.T) {
	t0 := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		q    trail.Query
		want bool
	}{
		{"the whole log", trail.Query{Tenant: "acme"}, true},
		{"a window, paged", trail.Query{Tenant: "acme", RecordedAfter: t0, RecordedBefore: t0.Add(time.Hour), Limit: 10, Cursor: "x", Descending: true}, true},
		{"no actions", trail.Query{Tenant: "acme", Actions: []string{}}, true},
		{"an action", trail.Query{Tenant: "acme", Actions: []string{"user_logout"}}, false},
		{"an actor", trail.Query{Tenant: "acme", ActorID: "u-1"}, false},
		{"occurred_at", trail.Query{Tenant: "acme", OccurredAfter: t0}, false},
		{"open attempts", trail.Query{Tenant: "acme", OpenAttempts: true}, false},
		{"an outcome", trail.Query{Tenant: "acme", Outcome: trail.OutcomeFailure}, false},
	} {
		if got := tc.q.WindowOnly(); got != tc.want {
			t.Errorf("%s: WindowOnly() = %v, want %v", tc.name, got, tc.want)
		}
	}
}
