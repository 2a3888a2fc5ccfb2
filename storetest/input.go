package storetest

import (
	"context"
	"testing"

	"github.com/trailaudit/trail"
)

// testOneMeaning: a value a store could not hold as it was sent
// (PostgreSQL's text has no NUL), or that readers would take for another,
// is refused naming the field before anything of its batch is stored,
// and so is a search for one: EINVALID from every store, never a failed
// write or read.
func testOneMeaning(t *testing.T, s trail.Store) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		edit func(ev *trail.Event)
		path string
	}{
		{"NUL in actor.id", func(ev *trail.Event) { ev.Actor.ID = "u-1\x00admin" }, "[1].actor.id"},
		{"NUL in scope.workspace", func(ev *trail.Event) { ev.Scope.Workspace = "ws-1\x00" }, "[1].scope.workspace"},
		{"NUL in a target id", func(ev *trail.Event) { ev.Targets[0].ID = "\x00" }, "[1].targets[0].id"},
		{"NUL in the correlation id", func(ev *trail.Event) { ev.CorrelationID = "c\x00" }, "[1].correlation_id"},
		{"a newline in scope.organization", func(ev *trail.Event) { ev.Scope.Organization = "org-1\norg-2" }, "[1].scope.organization"},
		{"NUL in the reason", func(ev *trail.Event) { ev.Reason = "ok\x00" }, "[1].reason"},
		{"invalid UTF-8 in the actor's email", func(ev *trail.Event) { ev.Actor.Email = "u\xff@example.com" }, "[1].actor.email"},
		{"a lone surrogate in a context string", func(ev *trail.Event) { ev.Context["method"] = "\xed\xa0\x80" }, "[1].context.method"},
	} {
		ev := Login("u-2")
		tc.edit(ev)
		_, err := s.Append(ctx, "acme", []*trail.Event{Login("u-1"), ev}, trail.AppendOptions{})
		if fe := trail.ErrorFields(err); trail.ErrorCode(err) != trail.EINVALID || len(fe) != 1 || fe[0].Path != tc.path {
			t.Errorf("%s: Append = %v, want EINVALID naming %s alone", tc.name, err, tc.path)
		}
	}
	for _, tc := range []struct {
		q    trail.Query
		path string
	}{
		{trail.Query{ActorID: "u-1\x00"}, "actor"},
		{trail.Query{Workspace: "\x00"}, "workspace"},
		{trail.Query{TargetID: "s-u-1\x00"}, "target"},
		{trail.Query{CorrelationID: "c\x01"}, "correlation"},
		{trail.Query{Actions: []string{"user_login_success\x00"}}, "action[0]"},
	} {
		tc.q.Tenant = "acme"
		_, qerr := s.Query(ctx, tc.q)
		_, cerr := s.Count(ctx, tc.q)
		for _, err := range []error{qerr, cerr} {
			if fe := trail.ErrorFields(err); trail.ErrorCode(err) != trail.EINVALID || len(fe) != 1 || fe[0].Path != tc.path {
				t.Errorf("a search by %s holding a control character: %v, want EINVALID naming it", tc.path, err)
			}
		}
	}
	if got := appendOK(t, s, "acme", Login("u-1")); got[0].Seq != 1 {
		t.Errorf("the first event stored is seq %d, want 1: a refused batch left something", got[0].Seq)
	}
}
