// Package export writes events in the formats people take them elsewhere:
// NDJSON, CSV and OCSF.
//
// A Writer streams: it encodes each event as Write receives it and keeps no
// event after Write returns, so an export of any size runs in constant memory.
// Output is buffered; Close flushes it (and does not close the underlying
// io.Writer).
//
//   - NDJSON is Trail's own JSON wire form of trail.Event, one event a line.
//     It is the lossless format: trail.ParseEvent reads its lines back.
//   - CSV is a header row and one row per event, for spreadsheets, with
//     these columns: seq, id, recorded_at, occurred_at, action, category,
//     outcome, actor_type, actor_id, actor_name, actor_email, targets (type:id
//     joined with ';'), ip, user_agent, session_id, request_id, organization,
//     workspace, team, correlation_id, reason, context (compact JSON),
//     violations (rule:path joined with ';') and redacted (paths joined with
//     ';'). Text cells are guarded against formula injection: one that begins
//     with =, +, -, @, a tab or a carriage return gets a leading single quote.
//   - OCSF maps each event to an Open Cybersecurity Schema Framework 1.3.0
//     event (Authentication, Account Change, Entity Management or API
//     Activity), one JSON object a line, for SIEMs and security data lakes.
//     The mapping is described below.
//
// # OCSF mapping
//
// The class comes from the action's catalog category, and from words of its
// name where a category mixes kinds of action. The first matching line wins:
//
//	name holds password, mfa, role or permission      Account Change (3001)
//	authentication: user_registered, …_registration_… Account Change (3001)
//	authentication, session                           Authentication (3002)
//	user_management; administration with "user"       Account Change (3001)
//	authorization, data, provider, rate_limit         API Activity (6003)
//	administration, organization, workspace, team,
//	entry, file, remittance, invitation, currency,
//	notification                                      Entity Management (3004)
//	other categories (custom actions): name holds
//	login, logout, session or auth                    Authentication (3002)
//	user or account                                   Account Change (3001)
//	api, token, integration or webhook                API Activity (6003)
//	anything else                                     Entity Management (3004)
//
// Authentication, Account Change and Entity Management are in category 3,
// Identity & Access Management; API Activity is in category 6, Application
// Activity.
//
// The activity comes from the verb of the action name, among those OCSF 1.3.0
// defines for the class; a name with none of them is 99 Other:
//
//	Authentication     1 Logon (login), 2 Logoff (logout, a session
//	                   revoked or evicted)
//	Account Change     1 Create (created, registered), 2 Enable, 3 Password
//	                   Change, 4 Password Reset, 5 Disable (suspended),
//	                   6 Delete, 7 Attach Policy (role assigned, permission
//	                   granted), 8 Detach Policy (revoked), 9 Lock, 10 MFA
//	                   Factor Enable, 11 MFA Factor Disable
//	Entity Management  1 Create (created, added, uploaded, sent), 2 Read
//	                   (viewed, downloaded, exported), 3 Update (updated,
//	                   changed, approved, rejected, submitted, archived, …),
//	                   4 Delete (deleted, removed), 5 Move, 8 Enable,
//	                   9 Disable, 10 Activate, 11 Deactivate, 12 Suspend,
//	                   13 Resume
//	API Activity       1 Create (created, imported, connected), 2 Read
//	                   (viewed, exported, synced), 3 Update (modified,
//	                   refreshed), 4 Delete (deleted, disconnected)
//
// type_uid is class_uid*100 + activity_id. The other members:
//
//	time               occurred_at (recorded_at when zero), ms since the epoch
//	status_id, status  success 1 Success; failure 2 Failure; denied 2 Failure
//	                   with status_detail "denied"; attempted 0 Unknown with
//	                   status_detail "attempted"; info 99 Other with
//	                   status_detail "info"
//	severity_id        the catalog's severity: info 1, low 2, medium 3,
//	                   high 4, critical 5; 0 Unknown for actions not in it
//	message            the action name
//	metadata           version "1.3.0", product {name, vendor_name "Trail"},
//	                   uid (id), correlation_uid, sequence (seq), log_name and
//	                   tenant_uid (tenant), logged_time (recorded_at),
//	                   original_time (occurred_at in RFC 3339, with its
//	                   full precision)
//	actor              user {uid, name, email_addr, type_id and type: user
//	                   1 User, system 3 System, service and api_key 99 Other},
//	                   session {uid}
//	user               Authentication and Account Change: the first target
//	                   of type user, else the actor when it is a user
//	entity, comment    Entity Management: the first target; the reason
//	api, resources     API Activity: operation (the action name), request
//	                   {uid} (request id); every target
//	src_endpoint       {ip}
//	http_request       {uid (request id), http_method, url {path}, user_agent}
//	unmapped           what OCSF has no attribute for, under Trail's names:
//	                   category, reason, context, targets, scope,
//	                   actor_roles, trace_id, violations, redacted; and
//	                   trail_event, the stored bytes, in an OCSF stream
//	                   (MarshalOCSF)
//
// Optional members are written only when the event has a value for them.
// This is a
// subset of OCSF: it does not fill observables, enrichments, or the
// recommended dst_endpoint and service, which Trail does not know.
package export

import (
	"errors"
	"io"
	"strings"

	"github.com/trailaudit/trail"
)

// Format names an export format.
type Format string

// The export formats.
const (
	NDJSON Format = "ndjson" // Trail's JSON wire form, one event a line
	CSV    Format = "csv"    // a header row, then one row per event
	OCSF   Format = "ocsf"   // OCSF 1.3.0 events, one JSON object a line
)

// ParseFormat returns the format named s, ignoring case and surrounding
// white space. Any other name is an EINVALID error that lists the allowed
// values (and, as Trail's errors do, does not echo the input).
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(strings.TrimSpace(s))); f {
	case NDJSON, CSV, OCSF:
		return f, nil
	case "":
		return "", trail.Errorf(trail.EINVALID, "export format is required: use one of ndjson, csv, ocsf")
	}
	return "", trail.Errorf(trail.EINVALID, "unknown export format: use one of ndjson, csv, ocsf")
}

// ContentType returns the media type of f's output, for an HTTP
// Content-Type header: application/x-ndjson for NDJSON and for OCSF (whose
// events are written as NDJSON), text/csv; charset=utf-8 for CSV, and ""
// for an unknown format.
func (f Format) ContentType() string {
	switch f {
	case NDJSON, OCSF:
		return "application/x-ndjson"
	case CSV:
		return "text/csv; charset=utf-8"
	}
	return ""
}

// Writer writes events in one format. It is not safe for concurrent use.
type Writer interface {
	// Write encodes one event. The event is not retained. After an error
	// from the underlying io.Writer, every later Write returns that error.
	Write(ev *trail.Event) error
	// Close flushes buffered output; it does not close the underlying
	// io.Writer. A CSV export of no events still gets its header row.
	// Write after Close is an error; Close after Close does nothing.
	Close() error
}

// NewWriter returns a Writer of format f onto w.
//
// actions resolves action names in the catalog (a *catalog.Catalog, or any
// trail.ActionResolver). The CSV and OCSF writers use it to fill an event's
// category and outcome when the event lacks them, and the OCSF writer to
// classify the event and take its severity. It may be nil; then only what
// the events carry is used, and OCSF severity is Unknown.
//
// An unknown format or a nil w is an EINVALID error.
func NewWriter(w io.Writer, f Format, actions trail.ActionResolver) (Writer, error) {
	if w == nil {
		return nil, trail.Errorf(trail.EINVALID, "export: no output to write to")
	}
	switch f {
	case NDJSON:
		return newNDJSONWriter(w), nil
	case CSV:
		return newCSVWriter(w, actions), nil
	case OCSF:
		return newOCSFWriter(w, actions), nil
	}
	_, err := ParseFormat(string(f))
	return nil, err
}

// errClosed is returned by Write after Close.
var errClosed = errors.New("export: write after Close")

// errNilEvent is returned by Write(nil).
var errNilEvent = trail.Errorf(trail.EINVALID, "export: nil event")

// resolve returns the catalog definition of ev's action, or nil.
func resolve(actions trail.ActionResolver, ev *trail.Event) *trail.Action {
	if actions == nil || ev.Action == "" {
		return nil
	}
	a, ok := actions.Resolve(ev.Action)
	if !ok {
		return nil
	}
	return a
}

// categoryOutcome returns ev's category and outcome, taking each from the
// catalog definition def when the event does not carry it.
func categoryOutcome(ev *trail.Event, def *trail.Action) (string, trail.Outcome) {
	cat, out := ev.Category, ev.Outcome
	if def != nil {
		if cat == "" {
			cat = def.Category
		}
		if out == "" {
			out = def.Outcome
		}
	}
	return cat, out
}
