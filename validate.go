package trail

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ActionResolver finds an action definition by its name or one of its
// aliases. The catalog package implements it.
type ActionResolver interface {
	Resolve(name string) (*Action, bool)
}

// TenantResolver is an ActionResolver with a view of its actions for each
// tenant: the shared ones and the tenant's own. The catalog package
// implements it; Validator.PrepareBatch resolves a tenant's events through
// that tenant's view.
type TenantResolver interface {
	ActionResolver
	ForTenant(tenant string) ActionResolver
}

// ResolverFor returns the view of r for tenant: r's own when r is a
// TenantResolver, else r.
func ResolverFor(r ActionResolver, tenant string) ActionResolver {
	if tr, ok := r.(TenantResolver); ok {
		return tr.ForTenant(tenant)
	}
	return r
}

// Redactor removes secrets from an event before it is stored, recording the
// paths it replaced in Event.Redacted. The redact package implements it.
type Redactor interface {
	RedactEvent(ev *Event)
}

// Limits bound what one event may hold, so that one bad caller cannot fill
// the log or exhaust the service. Every limit breached is named in the error.
type Limits struct {
	MaxField        int           // bytes in an identifier, name, email or role
	MaxText         int           // bytes in reason, user agent and request path
	MaxTargets      int           // targets per event
	MaxRoles        int           // roles per actor
	MaxContextBytes int           // bytes of the context in canonical form
	MaxContextDepth int           // nesting of objects and arrays in the context
	MaxClockSkew    time.Duration // how far occurred_at may lie ahead of Trail's clock before it is marked
}

// DefaultLimits are generous for real events and small enough to keep one
// event well under the storage engines' comfortable row sizes.
func DefaultLimits() Limits {
	return Limits{
		MaxField:        1024,
		MaxText:         8192,
		MaxTargets:      100,
		MaxRoles:        64,
		MaxContextBytes: 64 << 10,
		MaxContextDepth: 8,
		MaxClockSkew:    5 * time.Minute,
	}
}

// Policy is what a tenant decides about checking its events.
type Policy struct {
	// Strict refuses events that break a catalog rule (a missing or mistyped
	// context key) instead of keeping them marked with their violations.
	Strict bool
	// AllowCustom accepts actions that are not in the catalog, marked as
	// unknown_action. Registering the action is the better way.
	AllowCustom bool
}

// Validator readies events for storage: it checks their shape and limits,
// resolves the action in the catalog, checks the context keys the action
// should carry, and redacts secrets. Stores call it in Append; the CLI's
// validate command calls it alone.
type Validator struct {
	Actions  ActionResolver
	Redactor Redactor // nil stores secrets as given; only tests should do that
	Sealer   Sealer   // nil stores personal data in clear (no erasure)
	Limits   Limits
}

// Prepare validates ev in place under policy p at time now. On success ev is
// ready to store: the action is its canonical name, Category and Outcome come
// from the catalog, Context holds only JSON values, Violations lists the rules
// it broke and Redacted the paths whose values were replaced. On failure it
// returns an EINVALID error naming every offending field, and ev must not be
// stored.
func (v *Validator) Prepare(ev *Event, p Policy, now time.Time) error {
	return v.prepare(ev, p, now, v.Actions)
}

// prepare is Prepare resolving actions in actions.
func (v *Validator) prepare(ev *Event, p Policy, now time.Time, actions ActionResolver) error {
	c := checker{lim: v.Limits, ev: ev}
	if c.lim == (Limits{}) {
		c.lim = DefaultLimits()
	}
	c.assigned()
	def := c.action(actions, p)
	c.actor()
	c.targets()
	c.request()
	c.ident("scope.organization", ev.Scope.Organization, c.lim.MaxField)
	c.ident("scope.workspace", ev.Scope.Workspace, c.lim.MaxField)
	c.ident("scope.team", ev.Scope.Team, c.lim.MaxField)
	c.ident("correlation_id", ev.CorrelationID, c.lim.MaxField)
	c.text("reason", ev.Reason, c.lim.MaxText)
	if !ev.OccurredAt.IsZero() && ev.OccurredAt.After(now.Add(c.lim.MaxClockSkew)) {
		c.violate("occurred_at", RuleClockSkew, fmt.Sprintf("%s ahead of Trail's clock", ev.OccurredAt.Sub(now).Round(time.Second)))
	}
	c.context()
	if def != nil {
		c.keys(def)
	}
	slices.SortStableFunc(ev.Violations, func(a, b Violation) int { return strings.Compare(a.Path, b.Path) })
	if p.Strict {
		for _, vi := range ev.Violations {
			c.fail(vi.Path, vi.Message)
		}
	}
	if len(c.errs) > 0 {
		return Invalid("event refused", c.errs...)
	}
	if v.Redactor != nil {
		v.Redactor.RedactEvent(ev)
	}
	normalizeEmpty(ev)
	return nil
}

// normalizeEmpty gives ev the shape its canonical bytes decode to: empty
// lists and maps are none, times are in UTC. With numbers kept in
// canonical form, a prepared event then equals what reads return for it,
// and a store can return it without decoding what it stored.
func normalizeEmpty(ev *Event) {
	if len(ev.Actor.Roles) == 0 {
		ev.Actor.Roles = nil
	}
	if len(ev.Targets) == 0 {
		ev.Targets = nil
	}
	if len(ev.Context) == 0 {
		ev.Context = nil
	}
	if len(ev.Violations) == 0 {
		ev.Violations = nil
	}
	if len(ev.Redacted) == 0 {
		ev.Redacted = nil
	}
	if !ev.OccurredAt.IsZero() {
		ev.OccurredAt = ev.OccurredAt.UTC()
	}
}

// checker accumulates field errors and violations for one event.
type checker struct {
	lim  Limits
	ev   *Event
	errs []FieldError
}

func (c *checker) fail(path, msg string) {
	c.errs = append(c.errs, FieldError{Path: path, Message: msg})
}

func (c *checker) violate(path, rule, msg string) {
	c.ev.Violations = append(c.ev.Violations, Violation{Path: path, Rule: rule, Message: msg})
}

// assigned refuses values only Trail may set.
func (c *checker) assigned() {
	ev := c.ev
	if ev.ID != "" {
		c.fail("id", "assigned by Trail; leave it out")
	}
	if ev.Seq != 0 {
		c.fail("seq", "assigned by Trail; leave it out")
	}
	if !ev.RecordedAt.IsZero() {
		c.fail("recorded_at", "assigned by Trail; use occurred_at for the time it happened")
	}
	if len(ev.Violations) > 0 {
		c.fail("violations", "assigned by Trail; leave it out")
	}
	if len(ev.Redacted) > 0 {
		c.fail("redacted", "assigned by Trail; leave it out")
	}
}

// action resolves the action and fills category and outcome. It returns the
// definition, or nil for an unknown action.
func (c *checker) action(actions ActionResolver, p Policy) *Action {
	ev := c.ev
	if ev.Action == "" {
		c.fail("action", "required")
		return nil
	}
	var def *Action
	if actions != nil {
		def, _ = actions.Resolve(ev.Action)
	}
	if def == nil {
		if m := CheckName(ev.Action); m != "" {
			c.fail("action", m)
			return nil
		}
		if !p.AllowCustom {
			c.fail("action", fmt.Sprintf("%q is not in the catalog; register it as a custom action, or allow custom actions for this tenant", ev.Action))
			return nil
		}
		c.violate("action", RuleUnknownAction, fmt.Sprintf("%q is not in the catalog", ev.Action))
		if ev.Category == "" {
			ev.Category = "custom"
		} else if m := CheckName(ev.Category); m != "" {
			c.fail("category", m)
		}
		if ev.Outcome == "" {
			ev.Outcome = OutcomeInfo
		} else if !ev.Outcome.Valid() {
			c.fail("outcome", "must be one of attempted, success, failure, denied, info")
		}
		return nil
	}
	ev.Action = def.Name
	if ev.Category != "" && ev.Category != def.Category {
		c.fail("category", fmt.Sprintf("action %s is in category %s; leave category out and Trail fills it", def.Name, def.Category))
	}
	if ev.Outcome != "" && ev.Outcome != def.Outcome {
		c.fail("outcome", fmt.Sprintf("action %s has outcome %s; leave outcome out and Trail fills it", def.Name, def.Outcome))
	}
	ev.Category, ev.Outcome = def.Category, def.Outcome
	return def
}

func (c *checker) actor() {
	a := &c.ev.Actor
	if a.ID == "" {
		c.fail("actor.id", "required: who did it")
	}
	c.ident("actor.id", a.ID, c.lim.MaxField)
	switch {
	case a.Type == "":
		c.fail("actor.type", "required: one of user, service, system, api_key")
	case !a.Type.Valid():
		c.fail("actor.type", "must be one of user, service, system, api_key")
	}
	c.text("actor.name", a.Name, c.lim.MaxField)
	c.text("actor.email", a.Email, c.lim.MaxField)
	if len(a.Roles) > c.lim.MaxRoles {
		c.fail("actor.roles", fmt.Sprintf("more than %d roles", c.lim.MaxRoles))
		return
	}
	for i := range a.Roles {
		p := PathIndex("actor.roles", i)
		if a.Roles[i] == "" {
			c.fail(p, "empty role")
		}
		c.ident(p, a.Roles[i], c.lim.MaxField)
	}
}

func (c *checker) targets() {
	ts := c.ev.Targets
	if len(ts) > c.lim.MaxTargets {
		c.fail("targets", fmt.Sprintf("more than %d targets", c.lim.MaxTargets))
		return
	}
	for i := range ts {
		faults := c.targetFaults(&ts[i])
		if faults == ([3]string{}) {
			continue // nothing to report: no paths to make
		}
		p := PathIndex("targets", i)
		for j, member := range [...]string{".type", ".id", ".name"} {
			if faults[j] != "" {
				c.fail(p+member, faults[j])
			}
		}
	}
}

// targetFaults returns what is wrong with t's type, id and name, ""
// where nothing is: the type and id are required identifiers, the name
// is text. It makes no path: only a fault needs one.
func (c *checker) targetFaults(t *Target) [3]string {
	return [...]string{required(t.Type, c.lim.MaxField, CheckIdent), required(t.ID, c.lim.MaxField, CheckIdent),
		strFault(t.Name, c.lim.MaxField, CheckText)}
}

func (c *checker) request() {
	r := &c.ev.Request
	if r.IP != "" {
		if addr, err := netip.ParseAddr(r.IP); err != nil {
			c.fail("request.ip", "not an IP address")
		} else if b := addr.Unmap().AppendTo(make([]byte, 0, 64)); string(b) != r.IP {
			r.IP = string(b) // a new string only when the form changes
		}
	}
	c.text("request.user_agent", r.UserAgent, c.lim.MaxText)
	c.ident("request.session_id", r.SessionID, c.lim.MaxField)
	c.ident("request.request_id", r.RequestID, c.lim.MaxField)
	c.ident("request.method", r.Method, 16)
	c.text("request.path", r.Path, c.lim.MaxText)
	c.ident("request.trace_id", r.TraceID, c.lim.MaxField)
}

// ident checks an identifier: at most max bytes, and CheckIdent.
func (c *checker) ident(path, s string, max int) { c.str(path, s, max, CheckIdent) }

// text checks free text: at most max bytes, and CheckText.
func (c *checker) text(path, s string, max int) { c.str(path, s, max, CheckText) }

func (c *checker) str(path, s string, max int, check func(string) string) {
	if m := strFault(s, max, check); m != "" {
		c.fail(path, m)
	}
}

// required is what is wrong with s, which must be given: strFault's
// answer, or "required" when s is empty.
func required(s string, max int, check func(string) string) string {
	if s == "" {
		return "required"
	}
	return strFault(s, max, check)
}

// strFault is what is wrong with s, at most max bytes and passing check,
// or "".
func strFault(s string, max int, check func(string) string) string {
	if len(s) > max {
		return fmt.Sprintf("longer than %d bytes", max)
	}
	return check(s)
}

// CheckIdent returns what is wrong with s as an identifier, or "" when
// nothing is: valid UTF-8 with no control character (U+0000 to U+001F,
// U+007F to U+009F). Identifiers are what searches match exactly (actor,
// target, scope, correlation and request ids, roles, context keys), so
// each must mean one thing to every store and reader: PostgreSQL's text
// cannot hold NUL, a repaired byte would make two ids one, and a control
// character is invisible where an investigator reads the id.
func CheckIdent(s string) string {
	for i, r := range s {
		switch {
		case r == utf8.RuneError && invalidAt(s, i):
			return msgInvalidUTF8
		case r < 0x20 || (r >= 0x7f && r <= 0x9f):
			return fmt.Sprintf("holds the control character U+%04X at byte %d; identifiers hold none", r, i)
		}
	}
	return ""
}

// CheckText returns what is wrong with s as free text (a name, an email,
// a reason, a user agent, a path, a context string), or "" when nothing
// is: valid UTF-8 with no NUL. Other control characters (tabs, newlines)
// are text, kept as given.
func CheckText(s string) string {
	for i, r := range s {
		switch {
		case r == utf8.RuneError && invalidAt(s, i):
			return msgInvalidUTF8
		case r == 0:
			return fmt.Sprintf("holds U+0000 (NUL) at byte %d; no text may", i)
		}
	}
	return ""
}

// ValidText returns s with each run of invalid UTF-8 and each NUL replaced
// by U+FFFD: text CheckText accepts. It is for text an event records from
// outside on nobody's word (a request's User-Agent or path, taken by
// middleware), where no caller could be told to fix it; a caller's own
// text is refused instead, so that what is stored is what was sent.
func ValidText(s string) string {
	if CheckText(s) == "" {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// invalidAt reports whether the RuneError at byte i of s is an invalid
// byte rather than U+FFFD written as itself.
func invalidAt(s string, i int) bool {
	_, size := utf8.DecodeRuneInString(s[i:])
	return size == 1
}

// context turns the context into plain JSON values, bounded in depth and size.
func (c *checker) context() {
	if c.ev.Context == nil {
		return
	}
	out, bound, ok := c.normalize(valuePath{parent: "context"}, c.ev.Context, 0)
	if !ok {
		return
	}
	m, _ := out.(map[string]any)
	c.ev.Context = m
	// The size is measured only when it might be over the limit: encoding
	// the context here only to measure it was a tenth of an append's work in
	// Go, and the bound is far under the limit for most contexts.
	if c.lim.MaxContextDepth <= maxCanonDepth && bound <= c.lim.MaxContextBytes {
		return
	}
	b, err := Canonicalize(m)
	if err != nil {
		c.fail("context", err.Error())
		return
	}
	if len(b) > c.lim.MaxContextBytes {
		c.fail("context", fmt.Sprintf("%d bytes; the limit is %d", len(b), c.lim.MaxContextBytes))
	}
}

// scalar is normalize's answer for v, a value it returns as neither map
// nor array (a string, a number in canonical form, a bool or nil), with
// a bound on the length of v's canonical JSON: a string's byte takes at
// most 6 bytes escaped (\u00XX).
func scalar(v any, ok bool) (any, int, bool) {
	switch x := v.(type) {
	case string:
		return v, 6*len(x) + 2, ok
	case json.Number:
		return v, len(x), ok
	}
	return v, 5, ok // null, true, false
}

// valuePath is the path of a value normalize visits, made into a string
// only for an error or a violation: building each member's path was a
// string and an allocation per context key.
type valuePath struct {
	parent string // the container's path, or the value's own when it is neither member nor element
	member bool   // a member, at key
	key    string
	elem   bool // an element, at index
	index  int
}

func (p valuePath) String() string {
	switch {
	case p.member:
		return PathKey(p.parent, p.key)
	case p.elem:
		return PathIndex(p.parent, p.index)
	}
	return p.parent
}

// normalize returns v as a JSON value: map[string]any, []any, string, bool,
// nil or json.Number. It copies maps and slices, so the caller's stay as they
// were. It returns a bound on the length of the value's canonical JSON (at
// least Canonicalize's), made in the same walk, and reports false when it
// recorded an error (the bound is then of no use).
func (c *checker) normalize(at valuePath, v any, depth int) (any, int, bool) {
	switch x := v.(type) {
	case nil, bool:
		return scalar(x, true)
	case string:
		if m := CheckText(x); m != "" {
			c.fail(at.String(), m)
			return nil, 0, false
		}
		return scalar(v, true) // v, not x: no new interface value
	case json.Number:
		if canonicalInteger(string(x)) {
			return scalar(v, true)
		}
		return scalar(c.number(at, string(x)))
	case float64:
		return scalar(c.float(at, x))
	case float32:
		return scalar(c.float(at, float64(x)))
	case int:
		return scalar(c.number(at, strconv.FormatInt(int64(x), 10)))
	case int8, int16, int32, int64:
		return scalar(c.number(at, strconv.FormatInt(reflect.ValueOf(x).Int(), 10)))
	case uint, uint8, uint16, uint32, uint64, uintptr:
		return scalar(c.number(at, strconv.FormatUint(reflect.ValueOf(x).Uint(), 10)))
	case map[string]any:
		path := at.String()
		if depth >= c.lim.MaxContextDepth {
			c.fail(path, fmt.Sprintf("nested deeper than %d levels", c.lim.MaxContextDepth))
			return nil, 0, false
		}
		out := make(map[string]any, len(x))
		ok := true
		bound := 2 // the braces
		var small [16]string
		for _, k := range sortedKeys(&small, x, false) { // in order: one answer, whatever the map's order
			e := x[k]
			kp := valuePath{parent: path, member: true, key: k}
			if k == "" || len(k) > MaxNameLen || !utf8.ValidString(k) {
				c.fail(kp.String(), fmt.Sprintf("a context key must be 1 to %d bytes of UTF-8", MaxNameLen))
				ok = false
				continue
			}
			if m := CheckIdent(k); m != "" {
				c.fail(kp.String(), m)
				ok = false
				continue
			}
			n, size, good := c.normalize(kp, e, depth+1)
			ok = ok && good
			out[k] = n
			bound += 6*len(k) + 4 + size // the key escaped, its quotes, the colon and a comma
		}
		return out, bound, ok
	case []any:
		path := at.String()
		if depth >= c.lim.MaxContextDepth {
			c.fail(path, fmt.Sprintf("nested deeper than %d levels", c.lim.MaxContextDepth))
			return nil, 0, false
		}
		out := make([]any, len(x))
		ok := true
		bound := 2 // the brackets
		for i, e := range x {
			n, size, good := c.normalize(valuePath{parent: path, elem: true, index: i}, e, depth+1)
			ok = ok && good
			out[i] = n
			bound += 1 + size // and a comma
		}
		return out, bound, ok
	default:
		// Typed Go values (structs, typed maps and slices, time.Time): take
		// their encoding/json form.
		b, err := json.Marshal(x)
		if err != nil {
			c.fail(at.String(), fmt.Sprintf("cannot be written as JSON: %T", x))
			return nil, 0, false
		}
		var generic any
		if err := unmarshalNumbers(b, &generic); err != nil {
			c.fail(at.String(), fmt.Sprintf("cannot be written as JSON: %T", x))
			return nil, 0, false
		}
		return c.normalize(at, generic, depth)
	}
}

func (c *checker) float(at valuePath, f float64) (any, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		c.fail(at.String(), "NaN and infinity are not JSON numbers")
		return nil, false
	}
	// A double is exact as itself: straight to its canonical form.
	canon, _ := formatES6(f) // fails only for NaN and infinity
	return json.Number(canon), true
}

// number keeps a number literal when canonical form preserves it exactly and
// otherwise stores the literal as a string, marked, so no digit is lost.
func (c *checker) number(at valuePath, lit string) (any, bool) {
	if !json.Valid([]byte(lit)) {
		c.fail(at.String(), "not a JSON number")
		return nil, false
	}
	if !NumberExact(lit) {
		c.violate(at.String(), RuleNumberPrecision, "number cannot be kept exactly as a JSON number (IEEE 754 double); stored as a string")
		return lit, true
	}
	// Kept in canonical form (1.0 is 1, 1e2 is 100), as the stored bytes
	// have it: what Append returns is what reads return.
	canon, err := CanonicalNumber(lit)
	if err != nil {
		c.fail(at.String(), "not a JSON number")
		return nil, false
	}
	return json.Number(canon), true
}

// keys checks the context keys the action's definition asks for.
func (c *checker) keys(def *Action) {
	for _, k := range def.Context {
		val, ok := c.ev.Context[k.Key]
		if !ok {
			if k.Required {
				c.violate(PathKey("context", k.Key), RuleMissingKey, fmt.Sprintf("required by %s (%s)", def.Name, k.Type))
			}
			continue
		}
		if got := jsonType(val); !typeMatches(k.Type, val) {
			c.violate(PathKey("context", k.Key), RuleWrongType, fmt.Sprintf("%s wants %s, got %s", def.Name, k.Type, got))
		}
	}
}

func typeMatches(t KeyType, v any) bool {
	switch t {
	case TypeAny:
		return true
	case TypeString:
		_, ok := v.(string)
		return ok
	case TypeBool:
		_, ok := v.(bool)
		return ok
	case TypeNumber:
		_, ok := v.(json.Number)
		return ok
	case TypeInt:
		n, ok := v.(json.Number)
		if !ok {
			return false
		}
		f, err := strconv.ParseFloat(string(n), 64)
		return err == nil && f == math.Trunc(f)
	case TypeArray:
		_, ok := v.([]any)
		return ok
	case TypeObject:
		_, ok := v.(map[string]any)
		return ok
	}
	return false
}

// jsonType names the JSON type of a normalized value, for messages.
func jsonType(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "bool"
	case string:
		return "string"
	case json.Number:
		if typeMatches(TypeInt, x) {
			return "int"
		}
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// CheckTenant returns a message saying what is wrong with a tenant name, or
// "" when it is well formed: 1 to 64 characters of lower-case letters, digits,
// '-' and '_', starting with a letter or digit.
func CheckTenant(t string) string {
	if t == "" {
		return "required"
	}
	if len(t) > 64 {
		return "longer than 64 characters"
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (i > 0 && (c == '-' || c == '_')) {
			continue
		}
		return "must be lower-case letters, digits, '-' and '_', starting with a letter or digit"
	}
	return ""
}

// PrepareBatch readies a batch for tenant at time now: it copies each event
// (the caller's stay untouched), prepares it, and assigns Tenant, ID and
// RecordedAt, and OccurredAt where the caller gave none. Seq is the store's to
// assign. Field errors are reported for the whole batch at once, each path
// prefixed with the event's index ("[3].actor.id"), and then nothing of the
// batch may be stored.
func (v *Validator) PrepareBatch(tenant string, events []*Event, p Policy, now time.Time) ([]*Event, error) {
	if m := CheckLog(tenant); m != "" {
		return nil, Invalid("event refused", FieldError{Path: "tenant", Message: m})
	}
	if len(events) == 0 {
		return nil, Invalid("empty batch: nothing to append")
	}
	now = now.UTC()
	actions := ResolverFor(v.Actions, tenant) // a tenant's events resolve in its view of the catalog
	out := make([]*Event, len(events))
	var fe []FieldError
	for i, in := range events {
		if in == nil {
			fe = append(fe, FieldError{Path: PathIndex("", i), Message: "nil event"})
			continue
		}
		ev := in.cloneSharingContext() // the caller's context is read, never changed: checker.context copies it
		if ev.Tenant != "" && ev.Tenant != tenant {
			fe = append(fe, FieldError{Path: PathIndex("", i) + ".tenant", Message: "differs from the tenant appending it; leave it out"})
			continue
		}
		if err := v.prepare(ev, p, now, actions); err != nil {
			for _, f := range ErrorFields(err) {
				f.Path = PathIndex("", i) + "." + f.Path
				fe = append(fe, f)
			}
			continue
		}
		ev.Tenant = tenant
		ev.ID = NewID(now)
		ev.RecordedAt = now
		if ev.OccurredAt.IsZero() {
			ev.OccurredAt = now
		}
		out[i] = ev
	}
	switch {
	case len(fe) > 0 && len(events) == 1:
		return nil, Invalid("event refused", fe...)
	case len(fe) > 0:
		return nil, Invalid("batch refused: nothing was stored", fe...)
	}
	return out, nil
}

// BatchFingerprint returns a digest of a batch as the caller sent it, so a
// store can tell a retried Append (same key, same batch) from a conflicting
// one (same key, different batch).
func BatchFingerprint(events []*Event) ([32]byte, error) {
	h := sha256.New()
	for _, ev := range events {
		if ev == nil {
			h.Write([]byte("null\n"))
			continue
		}
		b, err := MarshalCanonical(ev)
		if err != nil {
			return [32]byte{}, err
		}
		h.Write(b)
		h.Write([]byte{'\n'})
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum, nil
}

// Seal encrypts the personal data of prepared events with v's Sealer (it
// does nothing without one). Stores call it after PrepareBatch, in the
// caller's goroutine.
func (v *Validator) Seal(ctx context.Context, tenant string, evs []*Event) error {
	if v.Sealer == nil {
		return nil
	}
	return v.Sealer.Seal(ctx, tenant, evs)
}
