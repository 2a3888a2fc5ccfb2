// Package client is how a Go app records audit events: in-process into a
// Trail store (Local), or to a trail serve over HTTP with a durable on-disk
// spool so that nothing acknowledged is lost (Remote). Both are a Recorder.
//
// Start with NewLocal or NewRemote, then call Record with a trail.Event, or
// one of the business helpers (EntryAction, PermissionChange, DataExport,
// BulkOperation, StatusChange, FileOperation), or Begin to pair an attempt
// with its outcome. Middleware puts each HTTP request's context (client IP,
// user agent, request id, trace id, session and actor) into ctx, and every
// Record fills what an event leaves out from it.
//
// A refusal (a 4xx answer such as EINVALID, naming the events' fields or
// refusing the batch as a whole) is the answer for the events refused,
// never a reason to stop delivering: in FailClosed only the caller of a
// refused event gets the error, and the others in its batch are stored; in
// Spool a refused event goes to dead.ndjson beside the spool (a JSON line
// with the event, the server's status, code, detail and field errors, and
// the time), RemoteStats.DeadLettered counts it, and delivery goes on. A
// batch refused as a whole, naming no event, is sent again in halves until
// the events refused are found (RemoteStats.Splits); each part has its own
// idempotency key, derived from the refused batch's key and the events it
// holds, so that a resend of it is a replay. Failures of the server or the
// network (5xx, 429, no answer) are retried, the events waiting.
//
// The seed apps' audit.record(action=..., user_id=..., resource_type=...,
// context={...}) is, one to one:
//
//	rec.Record(ctx, &trail.Event{Action: catalog.UserLoginSuccess,
//		Actor:   trail.Actor{Type: trail.ActorUser, ID: userID},
//		Targets: []trail.Target{{Type: "session", ID: sessionID}},
//		Context: map[string]any{"method": "password", "mfa": true, "remember_me": false}})
package client

import (
	"context"

	"github.com/trailaudit/trail"
)

// Recorder records audit events.
//
// Contract: Record MUST NOT return nil before the event is durable (stored,
// or in a durable spool, depending on the implementation's mode) and MUST
// return an error when it cannot make it so: an audit write is never
// silently dropped. Flush returns when everything recorded so far is stored
// (or ctx ends); Close flushes and releases the recorder.
type Recorder interface {
	Record(ctx context.Context, ev *trail.Event) error
	Flush(ctx context.Context) error
	Close(ctx context.Context) error
}

// RequestInfo is what Middleware learns of an HTTP request, carried in its
// context so that every Record in the handler can use it.
type RequestInfo struct {
	Request trail.Request
	Actor   trail.Actor // zero when the app's ActorFunc knows none
	Scope   trail.Scope
}

type requestKey struct{}

// WithRequest returns ctx carrying info.
func WithRequest(ctx context.Context, info RequestInfo) context.Context {
	return context.WithValue(ctx, requestKey{}, info)
}

// RequestFrom returns the RequestInfo ctx carries, if any.
func RequestFrom(ctx context.Context) (RequestInfo, bool) {
	info, ok := ctx.Value(requestKey{}).(RequestInfo)
	return info, ok
}

// Fill completes ev from the RequestInfo in ctx: each request field, the
// actor and each scope field the event leaves empty. What the event says
// wins.
func Fill(ctx context.Context, ev *trail.Event) {
	info, ok := RequestFrom(ctx)
	if !ok {
		return
	}
	r, from := &ev.Request, info.Request
	for _, f := range []struct {
		to *string
		v  string
	}{
		{&r.IP, from.IP}, {&r.UserAgent, from.UserAgent}, {&r.SessionID, from.SessionID}, {&r.RequestID, from.RequestID},
		{&r.TraceID, from.TraceID}, {&r.Method, from.Method}, {&r.Path, from.Path},
		{&ev.Scope.Organization, info.Scope.Organization}, {&ev.Scope.Workspace, info.Scope.Workspace}, {&ev.Scope.Team, info.Scope.Team},
	} {
		if *f.to == "" {
			*f.to = f.v
		}
	}
	if ev.Actor.ID == "" && ev.Actor.Type == "" {
		ev.Actor = info.Actor
	}
}

// Local records into a Trail store in the same process: an app that embeds
// Trail (SQLite or PostgreSQL) needs no server. Record returns once the
// store's commit is durable.
type Local struct {
	store  trail.Store
	tenant string
	policy trail.Policy
}

var _ Recorder = (*Local)(nil)

// NewLocal returns a Recorder appending to tenant's log in store. The
// caller keeps owning the store (Close does not close it).
func NewLocal(store trail.Store, tenant string, p trail.Policy) *Local {
	return &Local{store: store, tenant: tenant, policy: p}
}

// Record fills ev from ctx and appends it.
func (l *Local) Record(ctx context.Context, ev *trail.Event) error {
	Fill(ctx, ev)
	_, err := l.store.Append(ctx, l.tenant, []*trail.Event{ev}, trail.AppendOptions{Policy: l.policy})
	return err
}

// Flush returns at once: every Record was stored before it returned.
func (l *Local) Flush(ctx context.Context) error { return ctx.Err() }

// Close does nothing: the store is the caller's.
func (l *Local) Close(ctx context.Context) error { return nil }
