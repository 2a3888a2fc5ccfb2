package trail

import (
	"time"
)

// Outcome says how an action ended. The catalog fixes the outcome of every
// known action, so an attempt and its result are separate events tied together
// by a correlation id.
type Outcome string

// The outcomes an event can have.
const (
	OutcomeAttempted Outcome = "attempted" // the action was started; its result follows in another event
	OutcomeSuccess   Outcome = "success"   // the action completed
	OutcomeFailure   Outcome = "failure"   // the action was tried and failed
	OutcomeDenied    Outcome = "denied"    // the action was refused by access control or policy
	OutcomeInfo      Outcome = "info"      // something was observed rather than done (an expiry, an alert)
)

// Outcomes lists every valid outcome, in a stable order.
var Outcomes = []Outcome{OutcomeAttempted, OutcomeSuccess, OutcomeFailure, OutcomeDenied, OutcomeInfo}

// Valid reports whether o is one of the defined outcomes.
func (o Outcome) Valid() bool {
	switch o {
	case OutcomeAttempted, OutcomeSuccess, OutcomeFailure, OutcomeDenied, OutcomeInfo:
		return true
	}
	return false
}

// ActorType says what kind of principal acted.
type ActorType string

// The kinds of actor.
const (
	ActorUser    ActorType = "user"    // a person signed in to the app
	ActorService ActorType = "service" // another program acting on its own behalf
	ActorSystem  ActorType = "system"  // the app itself: jobs, schedulers, signal handlers
	ActorAPIKey  ActorType = "api_key" // a Trail API key: set by Trail itself (its audited reads), refused from callers
	// ActorOperator is a Trail operator credential: set by Trail itself
	// (what operators do to tenants), refused from callers.
	ActorOperator ActorType = "operator"
)

// Valid reports whether t is one of the defined actor types.
func (t ActorType) Valid() bool {
	switch t {
	case ActorUser, ActorService, ActorSystem, ActorAPIKey, ActorOperator:
		return true
	}
	return false
}

// Actor is who did it.
type Actor struct {
	ID    string    `json:"id"`
	Type  ActorType `json:"type"`
	Name  string    `json:"name,omitempty"`
	Email string    `json:"email,omitempty"`
	Roles []string  `json:"roles,omitempty"`
}

// Target is what it was done to. An event may have several (a bulk approval,
// a permission granted to a user on a workspace).
type Target struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// Request is where it came from: the request context of the call that caused
// the event.
type Request struct {
	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
	SessionID string `json:"session_id,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	Method    string `json:"method,omitempty"`
	Path      string `json:"path,omitempty"`
	TraceID   string `json:"trace_id,omitempty"`
}

// Scope places the event in the app's tenancy model, so that one
// organization's, workspace's or team's events can be found together.
type Scope struct {
	Organization string `json:"organization,omitempty"`
	Workspace    string `json:"workspace,omitempty"`
	Team         string `json:"team,omitempty"`
}

// Violation is a rule an event broke that did not get it refused: a missing or
// mistyped context key, an action not in the catalog. The event is kept and
// carries its violations, because a real event must not be lost to a
// developer's mistake; strict mode refuses such events instead.
type Violation struct {
	Path    string `json:"path"`
	Rule    string `json:"rule"`
	Message string `json:"message"`
}

// The rules a Violation can name.
const (
	RuleMissingKey      = "missing_key"      // a required context key is absent
	RuleWrongType       = "wrong_type"       // a context key has the wrong JSON type
	RuleUnknownAction   = "unknown_action"   // the action is not in the catalog (custom actions allowed)
	RuleClockSkew       = "clock_skew"       // occurred_at is in the future by more than the allowed skew
	RuleNumberPrecision = "number_precision" // a number could not be kept exactly and is stored as a string
)

// RuleInvalidUTF8 marked a string whose invalid UTF-8 was replaced by
// U+FFFD. Events stored before invalid UTF-8 was refused may carry it.
//
// Deprecated: invalid UTF-8 is refused now (EINVALID naming the field);
// no event is marked with it.
const RuleInvalidUTF8 = "invalid_utf8"

// Event is one audit record: who did what, to what, when, from where, and with
// what outcome.
//
// The caller fills Action, Actor and whatever else it knows; Trail assigns ID,
// Tenant, Seq and RecordedAt when it stores the event, fills Category and
// Outcome from the catalog, and records what validation found (Violations)
// and which paths redaction replaced (Redacted, paths only, never values).
type Event struct {
	ID            string         `json:"id,omitempty"`
	Tenant        string         `json:"tenant,omitempty"`
	Seq           uint64         `json:"seq,omitempty"`
	RecordedAt    time.Time      `json:"recorded_at,omitzero"`
	OccurredAt    time.Time      `json:"occurred_at,omitzero"`
	Action        string         `json:"action"`
	Category      string         `json:"category,omitempty"`
	Outcome       Outcome        `json:"outcome,omitempty"`
	Actor         Actor          `json:"actor"`
	Targets       []Target       `json:"targets,omitempty"`
	Request       Request        `json:"request,omitzero"`
	Scope         Scope          `json:"scope,omitzero"`
	Context       map[string]any `json:"context,omitempty"`
	CorrelationID string         `json:"correlation_id,omitempty"`
	Reason        string         `json:"reason,omitempty"`
	Violations    []Violation    `json:"violations,omitempty"`
	Redacted      []string       `json:"redacted,omitempty"`
}
