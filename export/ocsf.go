package export

import (
	"bytes"
	"cmp"
	"encoding/json"
	"io"
	"strings"
	"time"

	"github.com/trailaudit/trail"
)

// OCSFVersion is the version of the Open Cybersecurity Schema Framework the
// OCSF format writes, recorded in each event's metadata.version.
const OCSFVersion = "1.3.0"

// ocsfClass is an OCSF event class and the activities an event of it can
// have.
type ocsfClass struct {
	uid          int
	name         string
	categoryUID  int
	categoryName string
	// activities are tried in order; the first whose words all occur in
	// the action name (after stemming) gives the activity. None: 99 Other.
	activities []activityRule
}

// activityRule gives an activity to action names holding all of words.
type activityRule struct {
	words []string
	id    int
	name  string
}

// The four classes events are mapped to, with their OCSF 1.3.0 uids,
// categories and activity ids. The activity rules are the verbs of Trail's
// action names each class has an activity for.
var (
	classAuthentication = &ocsfClass{
		uid: 3002, name: "Authentication", categoryUID: 3, categoryName: "Identity & Access Management",
		activities: []activityRule{
			{[]string{"logon"}, 1, "Logon"},
			{[]string{"logoff"}, 2, "Logoff"},
			{[]string{"revoke"}, 2, "Logoff"}, // session_revoked, all_sessions_revoked
			{[]string{"evict"}, 2, "Logoff"},  // session_evicted
		},
	}
	classAccountChange = &ocsfClass{
		uid: 3001, name: "Account Change", categoryUID: 3, categoryName: "Identity & Access Management",
		activities: []activityRule{
			{[]string{"password", "reset"}, 4, "Password Reset"},
			{[]string{"password"}, 3, "Password Change"},
			{[]string{"mfa", "enable"}, 10, "MFA Factor Enable"},
			{[]string{"mfa", "disable"}, 11, "MFA Factor Disable"},
			{[]string{"create"}, 1, "Create"},
			{[]string{"register"}, 1, "Create"},
			{[]string{"enable"}, 2, "Enable"},
			{[]string{"activate"}, 2, "Enable"},
			{[]string{"resume"}, 2, "Enable"},
			{[]string{"disable"}, 5, "Disable"},
			{[]string{"deactivate"}, 5, "Disable"},
			{[]string{"suspend"}, 5, "Disable"},
			{[]string{"delete"}, 6, "Delete"},
			{[]string{"assign"}, 7, "Attach Policy"}, // role_assigned
			{[]string{"grant"}, 7, "Attach Policy"},  // permission_granted
			{[]string{"revoke"}, 8, "Detach Policy"}, // role_revoked, permission_revoked
			{[]string{"lock"}, 9, "Lock"},
		},
	}
	classEntityManagement = &ocsfClass{
		uid: 3004, name: "Entity Management", categoryUID: 3, categoryName: "Identity & Access Management",
		activities: []activityRule{
			{[]string{"create"}, 1, "Create"},
			{[]string{"register"}, 1, "Create"},
			{[]string{"read"}, 2, "Read"},
			{[]string{"update"}, 3, "Update"},
			{[]string{"assign"}, 3, "Update"}, // workspace_reviewer_assigned
			{[]string{"reset"}, 3, "Update"},
			{[]string{"delete"}, 4, "Delete"},
			{[]string{"move"}, 5, "Move"},
			{[]string{"enable"}, 8, "Enable"},
			{[]string{"disable"}, 9, "Disable"},
			{[]string{"activate"}, 10, "Activate"},
			{[]string{"deactivate"}, 11, "Deactivate"},
			{[]string{"suspend"}, 12, "Suspend"},
			{[]string{"resume"}, 13, "Resume"},
		},
	}
	classAPIActivity = &ocsfClass{
		uid: 6003, name: "API Activity", categoryUID: 6, categoryName: "Application Activity",
		activities: []activityRule{
			{[]string{"create"}, 1, "Create"},
			{[]string{"register"}, 1, "Create"},
			{[]string{"connect"}, 1, "Create"}, // provider_connected
			{[]string{"read"}, 2, "Read"},
			{[]string{"update"}, 3, "Update"},
			{[]string{"reset"}, 3, "Update"},
			{[]string{"delete"}, 4, "Delete"},
			{[]string{"disconnect"}, 4, "Delete"}, // provider_disconnected
			{[]string{"revoke"}, 4, "Delete"},
		},
	}
)

// classRule sends actions of a category whose name holds a word to a class.
type classRule struct {
	category string // "" for any category
	word     string // a stemmed word of the action name; "" for any name
	class    *ocsfClass
}

// classRules decide an event's OCSF class from its category and its action
// name: the first rule whose category and word both match wins, and an event
// no rule matches is Entity Management. Category rules cover every category
// of the built-in catalog; the name rules at the end place custom actions of
// other categories.
var classRules = []classRule{
	// Changes to an account, wherever the catalog files them.
	{"", "password", classAccountChange}, // user_password_changed, user_password_reset_completed
	{"", "mfa", classAccountChange},      // user_mfa_enabled
	{"", "role", classAccountChange},     // role_assigned, organization_member_role_changed
	{"", "permission", classAccountChange},
	{"authentication", "register", classAccountChange}, // user_registered
	// Logins, logouts, tokens, email verification; sessions.
	{"authentication", "", classAuthentication},
	{"session", "", classAuthentication},
	// Accounts created, updated, deleted, suspended.
	{"user_management", "", classAccountChange},
	{"administration", "user", classAccountChange}, // admin_user_created
	// Access decisions, data access, provider integrations, rate limits.
	{"authorization", "", classAPIActivity}, // access_denied, unauthorized_access_attempt
	{"data", "", classAPIActivity},          // data_viewed, data_exported, data_deleted
	{"provider", "", classAPIActivity},      // provider_connected, transaction_sync_succeeded
	{"rate_limit", "", classAPIActivity},
	// The app's own entities and configuration.
	{"administration", "", classEntityManagement}, // admin_config_changed, admin_backup_created
	{"organization", "", classEntityManagement},
	{"workspace", "", classEntityManagement},
	{"team", "", classEntityManagement},
	{"entry", "", classEntityManagement},
	{"file", "", classEntityManagement},
	{"remittance", "", classEntityManagement},
	{"invitation", "", classEntityManagement},
	{"currency", "", classEntityManagement},
	{"notification", "", classEntityManagement},
	// Custom actions in other categories, by the words of their names.
	{"", "logon", classAuthentication},
	{"", "logoff", classAuthentication},
	{"", "session", classAuthentication},
	{"", "auth", classAuthentication},
	{"", "authentication", classAuthentication},
	{"", "user", classAccountChange},
	{"", "account", classAccountChange},
	{"", "api", classAPIActivity},
	{"", "token", classAPIActivity},
	{"", "integration", classAPIActivity},
	{"", "webhook", classAPIActivity},
}

// stems maps the words of action names to the verb (or subject) the
// activity rules match. Words not listed stand for themselves.
var stems = map[string]string{
	"login": "logon", "logon": "logon", "signin": "logon",
	"logout": "logoff", "logoff": "logoff", "signout": "logoff",

	"create": "create", "created": "create", "creation": "create",
	"add": "create", "added": "create",
	"generate": "create", "generated": "create",
	"upload": "create", "uploaded": "create",
	"import": "create", "imported": "create",
	"send": "create", "sent": "create",
	"register": "register", "registered": "register", "registration": "register",

	"read": "read", "view": "read", "viewed": "read",
	"export": "read", "exported": "read",
	"download": "read", "downloaded": "read",
	"sync": "read", "synced": "read",
	"list": "read", "listed": "read",
	"fetch": "read", "fetched": "read",
	"search": "read", "searched": "read",

	"update": "update", "updated": "update",
	"change": "update", "changed": "update",
	"modify": "update", "modified": "update", "modification": "update",
	"edit": "update", "edited": "update",
	"refresh": "update", "refreshed": "update",
	"rotate": "update", "rotated": "update", "rotation": "update",
	"submit": "update", "submitted": "update",
	"review": "update", "reviewed": "update",
	"approve": "update", "approved": "update",
	"reject": "update", "rejected": "update",
	"flag": "update", "flagged": "update", "unflag": "update", "unflagged": "update",
	"pay": "update", "paid": "update",
	"confirm": "update", "confirmed": "update",
	"cancel": "update", "canceled": "update", "cancelled": "update",
	"accept": "update", "accepted": "update",
	"decline": "update", "declined": "update",
	"archive": "update", "archived": "update",
	"close": "update", "closed": "update",
	"reset": "reset",

	"delete": "delete", "deleted": "delete", "deletion": "delete",
	"remove": "delete", "removed": "delete",
	"purge": "delete", "purged": "delete",
	"erase": "delete", "erased": "delete",

	"move": "move", "moved": "move", "rename": "move", "renamed": "move",
	"enable": "enable", "enabled": "enable",
	"disable": "disable", "disabled": "disable",
	"activate": "activate", "activated": "activate",
	"deactivate": "deactivate", "deactivated": "deactivate",
	"suspend": "suspend", "suspended": "suspend", "suspension": "suspend",
	"resume": "resume", "resumed": "resume", "unsuspend": "resume", "unsuspended": "resume",
	"assign": "assign", "assigned": "assign", "assignment": "assign",
	"grant": "grant", "granted": "grant",
	"revoke": "revoke", "revoked": "revoke", "revocation": "revoke",
	"evict": "evict", "evicted": "evict", "eviction": "evict",
	"lock": "lock", "locked": "lock", "lockout": "lock",
	"connect": "connect", "connected": "connect", "connection": "connect",
	"disconnect": "disconnect", "disconnected": "disconnect", "disconnection": "disconnect",
	"sessions": "session",
}

// maxWords bounds the words of an action name the mapping looks at.
const maxWords = 16

// ocsfActivity is where an action lands in OCSF.
type ocsfActivity struct {
	class *ocsfClass
	id    int
	name  string
}

// mapOCSF returns the OCSF class and activity of an action of category
// (Trail's catalog category) named action. It is the one place the mapping
// is decided, from classRules and the class's activity rules, and it never
// fails: an action nothing matches is Entity Management, activity 99 Other.
func mapOCSF(category, action string) ocsfActivity {
	var buf [maxWords]string
	words := buf[:0]
	for w := range strings.SplitSeq(strings.ToLower(action), "_") {
		if len(words) == maxWords {
			break
		}
		if s, ok := stems[w]; ok {
			w = s
		}
		words = append(words, w)
	}
	has := func(w string) bool {
		for _, x := range words {
			if x == w {
				return true
			}
		}
		return false
	}
	class := classEntityManagement
	for _, r := range classRules {
		if (r.category == "" || r.category == category) && (r.word == "" || has(r.word)) {
			class = r.class
			break
		}
	}
rules:
	for _, r := range class.activities {
		for _, w := range r.words {
			if !has(w) {
				continue rules
			}
		}
		return ocsfActivity{class, r.id, r.name}
	}
	return ocsfActivity{class, 99, "Other"}
}

// ocsfStatus maps an outcome to status_id, status and status_detail.
// success is 1 Success; failure is 2 Failure; denied is 2 Failure with
// detail "denied"; attempted (the result is not known yet) is 0 Unknown
// with detail "attempted"; info (an observation) is 99 Other with detail
// "info". Any other outcome is 0 Unknown with the outcome as detail.
func ocsfStatus(o trail.Outcome) (id int, status, detail string) {
	switch o {
	case trail.OutcomeSuccess:
		return 1, "Success", ""
	case trail.OutcomeFailure:
		return 2, "Failure", ""
	case trail.OutcomeDenied:
		return 2, "Failure", "denied"
	case trail.OutcomeAttempted:
		return 0, "Unknown", "attempted"
	case trail.OutcomeInfo:
		return 99, "Other", "info"
	}
	return 0, "Unknown", string(o)
}

// ocsfSeverity maps a catalog severity to severity_id and severity; an
// action not in the catalog, or with no severity, is 0 Unknown.
func ocsfSeverity(s trail.Severity) (int, string) {
	switch s {
	case trail.SeverityInfo:
		return 1, "Informational"
	case trail.SeverityLow:
		return 2, "Low"
	case trail.SeverityMedium:
		return 3, "Medium"
	case trail.SeverityHigh:
		return 4, "High"
	case trail.SeverityCritical:
		return 5, "Critical"
	}
	return 0, "Unknown"
}

// ocsfUserType maps an actor type to the OCSF user type_id and type: user
// 1 User, system 3 System, and service or api_key 99 Other with Trail's
// type as the type.
func ocsfUserType(t trail.ActorType) (int, string) {
	switch t {
	case trail.ActorUser:
		return 1, "User"
	case trail.ActorSystem:
		return 3, "System"
	case "":
		return 0, ""
	}
	return 99, string(t)
}

// The OCSF objects written. Field order is output order; empty members are
// left out.
type (
	ocsfEvent struct {
		ClassUID     int              `json:"class_uid"`
		ClassName    string           `json:"class_name"`
		CategoryUID  int              `json:"category_uid"`
		CategoryName string           `json:"category_name"`
		ActivityID   int              `json:"activity_id"`
		ActivityName string           `json:"activity_name"`
		TypeUID      int              `json:"type_uid"`
		TypeName     string           `json:"type_name"`
		Time         int64            `json:"time"`
		SeverityID   int              `json:"severity_id"`
		Severity     string           `json:"severity"`
		StatusID     int              `json:"status_id"`
		Status       string           `json:"status"`
		StatusDetail string           `json:"status_detail,omitempty"`
		Message      string           `json:"message"`
		Metadata     ocsfMetadata     `json:"metadata"`
		Actor        *ocsfActor       `json:"actor,omitempty"`
		User         *ocsfUser        `json:"user,omitempty"`
		Service      *ocsfEntity      `json:"service,omitempty"`
		Entity       *ocsfEntity      `json:"entity,omitempty"`
		Comment      string           `json:"comment,omitempty"`
		API          *ocsfAPI         `json:"api,omitempty"`
		Resources    []ocsfEntity     `json:"resources,omitempty"`
		SrcEndpoint  *ocsfEndpoint    `json:"src_endpoint,omitempty"`
		HTTPRequest  *ocsfHTTPRequest `json:"http_request,omitempty"`
		Unmapped     *ocsfUnmapped    `json:"unmapped,omitempty"`
	}
	ocsfMetadata struct {
		Version        string      `json:"version"`
		Product        ocsfProduct `json:"product"`
		UID            string      `json:"uid,omitempty"`
		CorrelationUID string      `json:"correlation_uid,omitempty"`
		Sequence       uint64      `json:"sequence,omitempty"`
		LogName        string      `json:"log_name,omitempty"`
		TenantUID      string      `json:"tenant_uid,omitempty"`
		LoggedTime     int64       `json:"logged_time,omitempty"`
		OriginalTime   string      `json:"original_time,omitempty"`
	}
	ocsfProduct struct {
		Name       string `json:"name"`
		VendorName string `json:"vendor_name"`
	}
	ocsfActor struct {
		User    *ocsfUser    `json:"user,omitempty"`
		Session *ocsfSession `json:"session,omitempty"`
	}
	ocsfUser struct {
		UID       string `json:"uid,omitempty"`
		Name      string `json:"name,omitempty"`
		EmailAddr string `json:"email_addr,omitempty"`
		TypeID    int    `json:"type_id,omitempty"`
		Type      string `json:"type,omitempty"`
	}
	ocsfSession struct {
		UID string `json:"uid"`
	}
	ocsfEntity struct {
		UID  string `json:"uid,omitempty"`
		Name string `json:"name,omitempty"`
		Type string `json:"type,omitempty"`
	}
	ocsfAPI struct {
		Operation string       `json:"operation"`
		Request   *ocsfRequest `json:"request,omitempty"`
	}
	ocsfRequest struct {
		UID string `json:"uid"`
	}
	ocsfEndpoint struct {
		IP      string `json:"ip,omitempty"`
		SvcName string `json:"svc_name,omitempty"`
		Name    string `json:"name,omitempty"`
	}
	ocsfHTTPRequest struct {
		UID        string   `json:"uid,omitempty"`
		HTTPMethod string   `json:"http_method,omitempty"`
		URL        *ocsfURL `json:"url,omitempty"`
		UserAgent  string   `json:"user_agent,omitempty"`
	}
	ocsfURL struct {
		Path string `json:"path"`
	}
	// ocsfUnmapped holds what OCSF has no attribute for, under Trail's
	// own names, so that nothing of the event is lost.
	ocsfUnmapped struct {
		Category   string            `json:"category,omitempty"`
		Reason     string            `json:"reason,omitempty"`
		Context    map[string]any    `json:"context,omitempty"`
		Targets    []trail.Target    `json:"targets,omitempty"`
		Scope      *trail.Scope      `json:"scope,omitempty"`
		ActorRoles []string          `json:"actor_roles,omitempty"`
		TraceID    string            `json:"trace_id,omitempty"`
		HTTPMethod string            `json:"http_method,omitempty"` // one OCSF 1.3's http_method does not list
		Violations []trail.Violation `json:"violations,omitempty"`
		Redacted   []string          `json:"redacted,omitempty"`
		// TrailEvent is the event's stored bytes, verbatim, in an OCSF
		// stream (MarshalOCSF): what a receiver checks against Trail's
		// signed checkpoints.
		TrailEvent json.RawMessage `json:"trail_event,omitempty"`
	}
)

// ocsfWriter writes each event as an OCSF event, one a line.
type ocsfWriter struct {
	jsonLines
	actions trail.ActionResolver
}

func newOCSFWriter(w io.Writer, actions trail.ActionResolver) *ocsfWriter {
	return &ocsfWriter{jsonLines: newJSONLines(w), actions: actions}
}

// Write writes ev as one OCSF event on one line.
func (o *ocsfWriter) Write(ev *trail.Event) error {
	if err := o.check(ev); err != nil {
		return err
	}
	oe := toOCSF(ev, resolve(o.actions, ev))
	return o.encode(&oe)
}

// MarshalOCSF returns ev as one OCSF event, encoded as the OCSF format
// writes it (without the newline); actions is as for NewWriter. stored,
// when not nil, is ev's stored bytes (its canonical form, which its leaf
// hash is of), carried verbatim as unmapped.trail_event: an OCSF stream
// (package stream) sends them so that its receiver can check the event
// against Trail's signed checkpoints, and check that the rest is this
// mapping of those bytes.
func MarshalOCSF(ev *trail.Event, actions trail.ActionResolver, stored []byte) ([]byte, error) {
	if ev == nil {
		return nil, errNilEvent
	}
	oe := toOCSF(ev, resolve(actions, ev))
	if stored != nil {
		if !json.Valid(stored) {
			return nil, trail.Errorf(trail.EINVALID, "export: the stored bytes of event %s are not JSON", ev.ID)
		}
		if oe.Unmapped == nil {
			oe.Unmapped = &ocsfUnmapped{}
		}
		oe.Unmapped.TrailEvent = stored
	}
	// As the writer encodes: no HTML escaping, which would also change
	// the stored bytes.
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&oe); err != nil {
		return nil, trail.Errorf(trail.EINVALID, "export: event cannot be written as JSON: %w", err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// millis returns t in milliseconds since the Unix epoch.
func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// toOCSF maps ev, whose catalog definition is def (nil when unknown), to an
// OCSF event. The result shares ev's slices and maps; it is encoded at once.
func toOCSF(ev *trail.Event, def *trail.Action) ocsfEvent {
	category, outcome := categoryOutcome(ev, def)
	act := mapOCSF(category, ev.Action)
	cl := act.class
	var severity trail.Severity
	if def != nil {
		severity = def.Severity
	}
	oe := ocsfEvent{
		ClassUID: cl.uid, ClassName: cl.name,
		CategoryUID: cl.categoryUID, CategoryName: cl.categoryName,
		ActivityID: act.id, ActivityName: act.name,
		TypeUID:  cl.uid*100 + act.id,
		TypeName: cl.name + ": " + act.name,
		Message:  ev.Action,
		Metadata: ocsfMetadata{
			Version:        OCSFVersion,
			Product:        ocsfProduct{Name: "Trail", VendorName: "Trail"},
			UID:            ev.ID,
			CorrelationUID: ev.CorrelationID,
			Sequence:       ev.Seq,
			LogName:        ev.Tenant,
			TenantUID:      ev.Tenant,
			LoggedTime:     millis(ev.RecordedAt),
		},
	}
	oe.SeverityID, oe.Severity = ocsfSeverity(severity)
	oe.StatusID, oe.Status, oe.StatusDetail = ocsfStatus(outcome)
	when := ev.OccurredAt
	if when.IsZero() {
		when = ev.RecordedAt
	}
	oe.Time = millis(when)
	if !ev.OccurredAt.IsZero() {
		oe.Metadata.OriginalTime = trail.FormatTime(ev.OccurredAt) // in full precision
	}

	a := ev.Actor
	var actorUser *ocsfUser
	if a.ID != "" || a.Name != "" || a.Email != "" || a.Type != "" {
		actorUser = &ocsfUser{UID: a.ID, Name: a.Name, EmailAddr: a.Email}
		actorUser.TypeID, actorUser.Type = ocsfUserType(a.Type)
	}
	if actorUser != nil || ev.Request.SessionID != "" {
		oe.Actor = &ocsfActor{User: actorUser}
		if ev.Request.SessionID != "" {
			oe.Actor.Session = &ocsfSession{UID: ev.Request.SessionID}
		}
	}

	// Each class's required attributes are always written (OCSF 1.3:
	// Authentication and Account Change require user, Authentication
	// service or dst_endpoint, Entity Management entity, API Activity
	// actor and src_endpoint), from the best the event has; "unknown"
	// where it has nothing, rather than an event the schema refuses.
	switch cl {
	case classAuthentication, classAccountChange:
		oe.User = ocsfSubject(ev, actorUser)
		if cl == classAuthentication {
			// The service logged in to: the tenant's application.
			oe.Service = &ocsfEntity{Name: cmp.Or(ev.Tenant, ev.Scope.Organization, "unknown")}
		}
	case classEntityManagement:
		oe.Entity = ocsfManaged(ev)
		oe.Comment = ev.Reason
	case classAPIActivity:
		oe.API = &ocsfAPI{Operation: ev.Action}
		if ev.Request.RequestID != "" {
			oe.API.Request = &ocsfRequest{UID: ev.Request.RequestID}
		}
		if len(ev.Targets) > 0 {
			oe.Resources = make([]ocsfEntity, len(ev.Targets))
			for i, t := range ev.Targets {
				oe.Resources[i] = ocsfEntity{UID: t.ID, Name: t.Name, Type: t.Type}
			}
		}
	}

	r := ev.Request
	switch {
	case r.IP != "":
		oe.SrcEndpoint = &ocsfEndpoint{IP: r.IP}
	case cl == classAPIActivity && a.ID != "" && a.Type != trail.ActorUser:
		oe.SrcEndpoint = &ocsfEndpoint{SvcName: a.ID} // a service or system calling, no address
	case cl == classAPIActivity:
		oe.SrcEndpoint = &ocsfEndpoint{Name: "unknown"}
	}
	if cl == classAPIActivity && oe.Actor == nil {
		oe.Actor = &ocsfActor{User: &ocsfUser{Name: "unknown"}}
	}
	method, otherMethod := strings.ToUpper(r.Method), ""
	if method != "" && !ocsfHTTPMethods[method] {
		method, otherMethod = "", method
	}
	if r.UserAgent != "" || method != "" || r.Path != "" || r.RequestID != "" {
		oe.HTTPRequest = &ocsfHTTPRequest{UID: r.RequestID, HTTPMethod: method, UserAgent: r.UserAgent}
		if r.Path != "" {
			oe.HTTPRequest.URL = &ocsfURL{Path: r.Path}
		}
	}

	u := ocsfUnmapped{
		Category:   category,
		Reason:     ev.Reason,
		Context:    ev.Context,
		Targets:    ev.Targets,
		ActorRoles: a.Roles,
		TraceID:    r.TraceID,
		HTTPMethod: otherMethod,
		Violations: ev.Violations,
		Redacted:   ev.Redacted,
	}
	if ev.Scope != (trail.Scope{}) {
		s := ev.Scope
		u.Scope = &s
	}
	if u.Category != "" || u.Reason != "" || len(u.Context) > 0 || len(u.Targets) > 0 || u.Scope != nil ||
		len(u.ActorRoles) > 0 || u.TraceID != "" || u.HTTPMethod != "" || len(u.Violations) > 0 || len(u.Redacted) > 0 {
		oe.Unmapped = &u
	}
	return oe
}

// ocsfHTTPMethods are the values OCSF 1.3's http_request.http_method
// allows; another method (PATCH) goes to unmapped.http_method.
var ocsfHTTPMethods = map[string]bool{"CONNECT": true, "DELETE": true, "GET": true, "HEAD": true,
	"OPTIONS": true, "POST": true, "PUT": true, "TRACE": true}

// ocsfSubject is the account an Authentication or Account Change event is
// about: the first target of type user, else the actor (a user, or the
// service or system account acting on itself), else the first target.
func ocsfSubject(ev *trail.Event, actor *ocsfUser) *ocsfUser {
	for _, t := range ev.Targets {
		if t.Type == "user" {
			return &ocsfUser{UID: t.ID, Name: t.Name}
		}
	}
	if actor != nil && (actor.UID != "" || actor.Name != "") {
		return actor
	}
	if len(ev.Targets) > 0 {
		t := ev.Targets[0]
		return &ocsfUser{UID: t.ID, Name: t.Name, Type: t.Type, TypeID: 99}
	}
	return &ocsfUser{Name: "unknown"}
}

// ocsfManaged is the entity an Entity Management event is about: its first
// target, else the narrowest scope it names.
func ocsfManaged(ev *trail.Event) *ocsfEntity {
	if len(ev.Targets) > 0 {
		t := ev.Targets[0]
		return &ocsfEntity{UID: t.ID, Name: t.Name, Type: t.Type}
	}
	sc := ev.Scope
	switch {
	case sc.Team != "":
		return &ocsfEntity{UID: sc.Team, Type: "team"}
	case sc.Workspace != "":
		return &ocsfEntity{UID: sc.Workspace, Type: "workspace"}
	case sc.Organization != "":
		return &ocsfEntity{UID: sc.Organization, Type: "organization"}
	}
	return &ocsfEntity{Name: "unknown"}
}
