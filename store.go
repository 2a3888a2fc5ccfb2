package trail

import (
	"context"
	"reflect"
	"slices"
	"time"
)

// Store is the append-only home of a tenant's events. Implementations:
// memory (tests and tools), sqlite (the embedded default) and postgres. The
// storetest package holds the conformance suite every Store must pass.
//
// Contract:
//   - Append MUST run every event through the store's Validator (which
//     validates and redacts) before anything is stored, MUST refuse
//     (EINVALID, naming the field) Trail's own records (Action.TrailRecord)
//     and actors of type api_key, which only Trail writes, MUST store the batch
//     atomically (all events or none), MUST assign each event an ID, a
//     RecordedAt and a Seq that continues the tenant's sequence with no gap
//     and no reuse, and MUST NOT return success before the batch is durable.
//   - Append with an idempotency key already seen for the tenant MUST return
//     the original result without storing anything, and MUST return
//     ECONFLICT when the same key comes with a different batch.
//   - RecordedAt MUST NOT decrease along a tenant's seq: a store clamps a
//     clock that steps back to the tenant's last RecordedAt. (So a range of
//     recorded_at is a range of seq, and the log's clock never runs
//     backwards.)
//   - A Store MUST NOT change or delete a stored event, and a durable store
//     MUST make its database refuse it too. (Retention is an explicit and
//     audited path of its own, open only to Trail's services: see
//     internal/ledger.Writer.)
//   - Reads MUST only ever return events of the tenant asked for, and MUST
//     return them exactly as Append returned them.
//   - A page cursor MUST stay valid while appends go on: the next page
//     continues after the last event seen, never repeating or skipping one.
//   - Every Store is a Log, and keeps that contract too: each commit writes
//     the tree's hashes beside the events and ends with a signed checkpoint.
type Store interface {
	// Log is the store's tamper-evident side: the Merkle tree and signed
	// checkpoints written with every append.
	Log
	// Append validates, redacts and stores events for tenant, and returns
	// them as stored (with ID, Seq, RecordedAt, Category, Outcome filled).
	Append(ctx context.Context, tenant string, events []*Event, opts AppendOptions) (*AppendResult, error)
	// Get returns one event by id, or ENOTFOUND.
	Get(ctx context.Context, tenant, id string) (*Event, error)
	// GetSeq returns the event at seq in tenant's log, or ENOTFOUND.
	GetSeq(ctx context.Context, tenant string, seq uint64) (*Event, error)
	// Query returns one page of events matching q.
	Query(ctx context.Context, q Query) (*Page, error)
	// Count returns how many events match q (its cursor and limit are
	// ignored). Count of a bare tenant query is the tenant's log size. It
	// counts index rows without decoding bodies: its answer is as good as
	// the index, which verification (tlog.Verify) holds to the signed
	// bytes.
	Count(ctx context.Context, q Query) (int64, error)
	// Scan calls fn for each of tenant's events with from <= seq < to, in
	// seq order, holding only a few in memory at a time; to == 0 means
	// through the last event stored when Scan began. It stops at fn's first
	// error and returns it. Export and verification read the log with it.
	Scan(ctx context.Context, tenant string, from, to uint64, fn func(*Event) error) error
	// Close releases the store. Appends in flight finish first.
	Close() error
}

// AppendOptions modify one Append call.
type AppendOptions struct {
	// IdempotencyKey makes a retried Append safe: the first result is
	// returned again and nothing is stored twice. It is at most 255 bytes
	// of visible ASCII; another is refused (EINVALID, idempotency_key).
	IdempotencyKey string
	// Policy is the tenant's validation policy for this batch.
	Policy Policy
	// ClientIP is the address the batch came from, as the server saw it.
	// It fills request.ip of each event that names none, after the batch
	// is fingerprinted: a retry through another address (a load balancer
	// moving the client) is the same batch. Empty: nothing is filled.
	ClientIP string
}

// AppendResult says what Append stored.
type AppendResult struct {
	Events []*Event // the events as stored, in order
	Replay bool     // true when an idempotency key matched an earlier append
}

// Query selects a tenant's events. Zero fields do not filter. Time ranges are
// half-open: After is inclusive, Before exclusive.
type Query struct {
	Tenant         string
	ActorID        string
	ActorType      ActorType
	Actions        []string
	Category       string
	Outcome        Outcome
	TargetType     string
	TargetID       string
	Organization   string
	Workspace      string
	Team           string
	CorrelationID  string
	RecordedAfter  time.Time
	RecordedBefore time.Time
	OccurredAfter  time.Time
	OccurredBefore time.Time
	// OpenAttempts keeps only attempts still waiting for their outcome:
	// events with outcome attempted and a correlation id that no event of
	// another outcome shares. With RecordedBefore it lists the attempts
	// that got no outcome within a time (logins begun over 5 minutes ago
	// and never finished, say).
	OpenAttempts bool
	Cursor       string // from Page.Next; empty for the first page
	Limit        int    // at most MaxPageSize; 0 means DefaultPageSize
	Descending   bool   // newest first
}

// WindowOnly reports whether q selects by nothing but its tenant and a
// window of recorded_at (paging and order aside): its events are then a
// range of seqs (RecordedAt never decreases along seq), of which a bundle
// can prove that none is left out. Any other filter, present or added
// later, makes it false.
func (q *Query) WindowOnly() bool {
	w := Query{Tenant: q.Tenant, Actions: q.Actions, RecordedAfter: q.RecordedAfter, RecordedBefore: q.RecordedBefore,
		Cursor: q.Cursor, Limit: q.Limit, Descending: q.Descending}
	return len(q.Actions) == 0 && reflect.DeepEqual(*q, w)
}

// Page sizes.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// Page is one page of query results.
type Page struct {
	Events []*Event
	Next   string // cursor for the next page; empty when there is none
}

// Check returns an EINVALID error naming the query's bad filters, or nil.
// (PageLimit and DecodeCursor check the paging fields.) A filter that is
// not a well-formed identifier (CheckIdent) could match no stored event
// and is refused rather than answered with nothing. Each is named as the
// API's query parameters and the CLI's flags call it: actor, action[1],
// target, correlation.
func (q *Query) Check() error {
	var fe []FieldError
	if m := CheckLog(q.Tenant); m != "" {
		fe = append(fe, FieldError{Path: "tenant", Message: m})
	}
	for _, f := range []struct{ path, value string }{
		{"actor", q.ActorID}, {"actor_type", string(q.ActorType)}, {"category", q.Category}, {"outcome", string(q.Outcome)},
		{"target_type", q.TargetType}, {"target", q.TargetID}, {"organization", q.Organization}, {"workspace", q.Workspace},
		{"team", q.Team}, {"correlation", q.CorrelationID},
	} {
		if m := CheckIdent(f.value); m != "" {
			fe = append(fe, FieldError{Path: f.path, Message: m})
		}
	}
	for i, a := range q.Actions {
		m := CheckIdent(a)
		if a == "" {
			m = "empty"
		}
		if m != "" {
			fe = append(fe, FieldError{Path: PathIndex("action", i), Message: m})
		}
	}
	if len(fe) > 0 {
		return Invalid("bad query", fe...)
	}
	return nil
}

// Paging checks q whole and returns its page size and the seq its cursor
// resumes after (0 for the first page): what every Store's Query needs
// before it reads.
func (q *Query) Paging() (limit int, after uint64, err error) {
	if err := q.Check(); err != nil {
		return 0, 0, err
	}
	if limit, err = PageLimit(q.Limit); err != nil {
		return 0, 0, err
	}
	if after, err = DecodeCursor(q.Cursor, q.Descending); err != nil {
		return 0, 0, err
	}
	return limit, after, nil
}

// NotBefore returns t, or floor when t is before it. Stores use it to keep
// RecordedAt from running backwards along a tenant's log.
func NotBefore(t, floor time.Time) time.Time {
	if t.Before(floor) {
		return floor
	}
	return t
}

// Matches reports whether ev passes every filter of q (all but the cursor,
// the limit and OpenAttempts, which depends on other events: see
// OpenAttempt). Stores that filter in memory use it; SQL stores mirror it,
// check each row they return with it (Confirm), and the conformance suite
// holds them to the same answers.
func (q *Query) Matches(ev *Event) bool { return q.mismatch(ev) == "" }

// mismatch returns the name of the first filter of q that ev fails (as
// Matches decides), or "".
func (q *Query) mismatch(ev *Event) string {
	for _, f := range [...]struct{ name, want, got string }{
		{"tenant", q.Tenant, ev.Tenant},
		{"actor", q.ActorID, ev.Actor.ID},
		{"actor_type", string(q.ActorType), string(ev.Actor.Type)},
		{"category", q.Category, ev.Category},
		{"outcome", string(q.Outcome), string(ev.Outcome)},
		{"organization", q.Organization, ev.Scope.Organization},
		{"workspace", q.Workspace, ev.Scope.Workspace},
		{"team", q.Team, ev.Scope.Team},
		{"correlation_id", q.CorrelationID, ev.CorrelationID},
	} {
		if f.want != "" && f.got != f.want {
			return f.name
		}
	}
	switch {
	case len(q.Actions) > 0 && !slices.Contains(q.Actions, ev.Action):
		return "action"
	case !q.RecordedAfter.IsZero() && ev.RecordedAt.Before(q.RecordedAfter):
		return "recorded_after"
	case !q.RecordedBefore.IsZero() && !ev.RecordedAt.Before(q.RecordedBefore):
		return "recorded_before"
	case !q.OccurredAfter.IsZero() && ev.OccurredAt.Before(q.OccurredAfter):
		return "occurred_after"
	case !q.OccurredBefore.IsZero() && !ev.OccurredAt.Before(q.OccurredBefore):
		return "occurred_before"
	}
	if q.TargetType == "" && q.TargetID == "" {
		return ""
	}
	for _, t := range ev.Targets {
		if (q.TargetType == "" || t.Type == q.TargetType) && (q.TargetID == "" || t.ID == q.TargetID) {
			return ""
		}
	}
	return "target"
}

// Clone returns a copy of ev that shares no slices or maps with it, so a
// store can prepare an event without touching the caller's.
func (ev *Event) Clone() *Event {
	c := ev.cloneSharingContext()
	if ev.Context != nil {
		c.Context = cloneValue(ev.Context).(map[string]any)
	}
	return c
}

// cloneSharingContext is Clone but for the context, which the copy shares
// with ev. PrepareBatch starts from it: validation replaces the context
// with a normalized copy (checker.context) before anything changes it,
// so a deep copy first was made only to be thrown away (a seventh of a
// batch's allocations).
func (ev *Event) cloneSharingContext() *Event {
	c := *ev
	c.Actor.Roles = slices.Clone(ev.Actor.Roles)
	c.Targets = slices.Clone(ev.Targets)
	c.Violations = slices.Clone(ev.Violations)
	c.Redacted = slices.Clone(ev.Redacted)
	return &c
}

func cloneValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = cloneValue(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = cloneValue(e)
		}
		return s
	}
	return v
}

// OpenAttempt reports whether ev is an attempt still waiting for its
// outcome, given closed: the correlation ids that events of other outcomes
// carry. Stores that filter in memory use it for Query.OpenAttempts.
func OpenAttempt(ev *Event, closed map[string]bool) bool {
	return ev.Outcome == OutcomeAttempted && ev.CorrelationID != "" && !closed[ev.CorrelationID]
}
