package trail

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// eventDecoder reads an event's wire form in one pass: it checks the JSON
// grammar, the nesting depth, the exact member names (each once), UTF-8
// and escapes while it decodes straight into an Event. It accepts only
// what parseEventStrict accepts, with the identical Event; at anything
// else (a refusal, or a rare form such as null for a field) it gives up
// and parseEventStrict reads the document again and names what is wrong.
// So there is one place that words each refusal, and the fast path can
// only be less accepting, never more: FuzzParseEventSame checks that the
// two agree.
//
// It reads the canonical form (MarshalCanonical's) the same way, for
// UnmarshalCanonical, against unmarshalCanonicalStrict (checked by
// FuzzUnmarshalCanonicalSame).
type eventDecoder struct {
	data  []byte
	i     int
	depth int
	form  eventForm
	buf   []byte // an escaped string, decoded
}

// eventForm is the form of event document an eventDecoder reads. The
// forms have the same members but are read by different strict readers,
// whose rules the one-pass decoder follows.
type eventForm uint8

const (
	// wireForm is what clients send (ParseEvent): no member "v";
	// timestamps are decoded strings parsed with time.Parse.
	wireForm eventForm = iota
	// canonicalForm is what MarshalCanonical writes and stores hold
	// (UnmarshalCanonical): the member "v" must be CanonicalVersion;
	// timestamps are time.Time's own JSON, read from the raw string token
	// as encoding/json hands it to time.Time.UnmarshalJSON.
	canonicalForm
)

// decodeEvent decodes data of the given form in one pass, or reports false
// when the strict reader of that form must read it.
func decodeEvent(data []byte, form eventForm) (*Event, bool) {
	if len(data) > MaxEventBytes {
		return nil, false
	}
	d := &eventDecoder{data: data, form: form}
	ev := &Event{}
	var seen uint32
	d.ws()
	ok := d.object(func(name []byte) bool {
		bit, ok := wireMembers[string(name)]
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		switch bit {
		case wireID:
			ev.ID, ok = d.str()
		case wireTenant:
			ev.Tenant, ok = d.str()
		case wireSeq:
			ev.Seq, ok = d.uint()
		case wireRecordedAt:
			ok = d.timestamp(&ev.RecordedAt)
		case wireOccurredAt:
			ok = d.timestamp(&ev.OccurredAt)
		case wireAction:
			ev.Action, ok = d.str()
		case wireCategory:
			ev.Category, ok = d.str()
		case wireOutcome:
			var s string
			s, ok = d.str()
			ev.Outcome = Outcome(s)
		case wireActor:
			ok = d.actor(&ev.Actor)
		case wireTargets:
			ev.Targets, ok = d.targets()
		case wireRequest:
			ok = d.request(&ev.Request)
		case wireScope:
			ok = d.scope(&ev.Scope)
		case wireContext:
			ev.Context, ok = d.freeObject()
		case wireCorrelationID:
			ev.CorrelationID, ok = d.str()
		case wireReason:
			ev.Reason, ok = d.str()
		case wireViolations:
			ev.Violations, ok = d.violations()
		case wireRedacted:
			ev.Redacted, ok = d.strs()
		case canonVersion:
			// Only the canonical form has a version; in the wire form
			// "v" is an unknown member, which the strict reader names.
			if form != canonicalForm {
				return false
			}
			var v uint64
			v, ok = d.uint()
			ok = ok && v == CanonicalVersion
		}
		return ok
	})
	if !ok {
		return nil, false
	}
	if d.ws(); d.i != len(d.data) {
		return nil, false
	}
	if form == canonicalForm && seen&canonVersion == 0 {
		return nil, false // the strict reader says the version is missing
	}
	return ev, true
}

// timestamp reads a timestamp member into t as the strict reader of d's
// form does, reporting false where that reader would refuse it.
func (d *eventDecoder) timestamp(t *time.Time) bool {
	start := d.i
	s, ok := d.strBytes()
	if !ok {
		return false
	}
	if d.form == canonicalForm {
		// encoding/json gives time.Time the raw token, escapes and all.
		return t.UnmarshalJSON(d.data[start:d.i]) == nil
	}
	ts, err := time.Parse(time.RFC3339Nano, string(s))
	if err != nil {
		return false
	}
	*t = ts
	return true
}

// The members of an event, each a bit of decodeEvent's seen set.
const (
	wireID uint32 = 1 << iota
	wireTenant
	wireSeq
	wireRecordedAt
	wireOccurredAt
	wireAction
	wireCategory
	wireOutcome
	wireActor
	wireTargets
	wireRequest
	wireScope
	wireContext
	wireCorrelationID
	wireReason
	wireViolations
	wireRedacted
	canonVersion // canonical form only
)

// wireMembers maps each member name of an event to its bit; "v" is a
// member of the canonical form only.
var wireMembers = map[string]uint32{
	"id":             wireID,
	"tenant":         wireTenant,
	"seq":            wireSeq,
	"recorded_at":    wireRecordedAt,
	"occurred_at":    wireOccurredAt,
	"action":         wireAction,
	"category":       wireCategory,
	"outcome":        wireOutcome,
	"actor":          wireActor,
	"targets":        wireTargets,
	"request":        wireRequest,
	"scope":          wireScope,
	"context":        wireContext,
	"correlation_id": wireCorrelationID,
	"reason":         wireReason,
	"violations":     wireViolations,
	"redacted":       wireRedacted,
	"v":              canonVersion,
}

// request decodes a request object into r.
func (d *eventDecoder) request(r *Request) bool {
	return d.fields(func(name []byte) (*string, uint8) {
		switch string(name) {
		case "ip":
			return &r.IP, 1
		case "user_agent":
			return &r.UserAgent, 2
		case "session_id":
			return &r.SessionID, 4
		case "request_id":
			return &r.RequestID, 8
		case "method":
			return &r.Method, 16
		case "path":
			return &r.Path, 32
		case "trace_id":
			return &r.TraceID, 64
		}
		return nil, 0
	})
}

// scope decodes a scope object into s.
func (d *eventDecoder) scope(s *Scope) bool {
	return d.fields(func(name []byte) (*string, uint8) {
		switch string(name) {
		case "organization":
			return &s.Organization, 1
		case "workspace":
			return &s.Workspace, 2
		case "team":
			return &s.Team, 4
		}
		return nil, 0
	})
}

// actor decodes an actor object into a.
func (d *eventDecoder) actor(a *Actor) bool {
	var seen uint8
	return d.object(func(name []byte) bool {
		var bit uint8
		var ok bool
		switch string(name) {
		case "id":
			bit = 1
			a.ID, ok = d.str()
		case "type":
			bit = 2
			var s string
			s, ok = d.str()
			a.Type = ActorType(s)
		case "name":
			bit = 4
			a.Name, ok = d.str()
		case "email":
			bit = 8
			a.Email, ok = d.str()
		case "roles":
			bit = 16
			a.Roles, ok = d.strs()
		default:
			return false
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		return ok
	})
}

// targets decodes an array of targets.
func (d *eventDecoder) targets() ([]Target, bool) {
	return stringObjects(d, func(t *Target, name []byte) (*string, uint8) {
		switch string(name) {
		case "type":
			return &t.Type, 1
		case "id":
			return &t.ID, 2
		case "name":
			return &t.Name, 4
		}
		return nil, 0
	})
}

// violations decodes an array of violations.
func (d *eventDecoder) violations() ([]Violation, bool) {
	return stringObjects(d, func(v *Violation, name []byte) (*string, uint8) {
		switch string(name) {
		case "path":
			return &v.Path, 1
		case "rule":
			return &v.Rule, 2
		case "message":
			return &v.Message, 4
		}
		return nil, 0
	})
}

// stringObjects decodes an array of objects of string members (d.fields),
// member giving each member's place in the element and its bit.
func stringObjects[T any](d *eventDecoder, member func(e *T, name []byte) (*string, uint8)) ([]T, bool) {
	out := []T{}
	ok := d.array(func() bool {
		var e T
		if !d.fields(func(name []byte) (*string, uint8) { return member(&e, name) }) {
			return false
		}
		out = append(out, e)
		return true
	})
	return out, ok
}

// fields decodes an object of string members, each given at most once,
// into the strings field names (nil: not a member); bit numbers each
// member for the once check.
func (d *eventDecoder) fields(field func(name []byte) (into *string, bit uint8)) bool {
	var seen uint8
	return d.object(func(name []byte) bool {
		p, bit := field(name)
		if p == nil || seen&bit != 0 {
			return false
		}
		seen |= bit
		var ok bool
		*p, ok = d.str()
		return ok
	})
}

// strs decodes an array of strings.
func (d *eventDecoder) strs() ([]string, bool) {
	out := []string{}
	ok := d.array(func() bool {
		s, ok := d.str()
		out = append(out, s)
		return ok
	})
	return out, ok
}

// freeObject decodes an object as encoding/json does into map[string]any
// with UseNumber, each name once.
func (d *eventDecoder) freeObject() (map[string]any, bool) {
	m := map[string]any{}
	ok := d.object(func(name []byte) bool {
		if _, dup := m[string(name)]; dup {
			return false
		}
		k := string(name)
		v, ok := d.free()
		m[k] = v
		return ok
	})
	return m, ok
}

// free decodes any JSON value as encoding/json does into any with
// UseNumber.
func (d *eventDecoder) free() (any, bool) {
	switch d.peek() {
	case '{':
		return d.freeObject()
	case '[':
		out := []any{}
		ok := d.array(func() bool {
			v, ok := d.free()
			out = append(out, v)
			return ok
		})
		return out, ok
	case '"':
		return d.str()
	case 't':
		return true, d.literal("true")
	case 'f':
		return false, d.literal("false")
	case 'n':
		return nil, d.literal("null")
	}
	start := d.i
	if !d.number() {
		return nil, false
	}
	return json.Number(d.data[start:d.i]), true
}

// literal reads the literal lit (true, false or null).
func (d *eventDecoder) literal(lit string) bool {
	if len(d.data)-d.i < len(lit) || string(d.data[d.i:d.i+len(lit)]) != lit {
		return false
	}
	d.i += len(lit)
	return true
}

// number reads a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (d *eventDecoder) number() bool {
	if d.peek() == '-' {
		d.i++
	}
	switch c := d.peek(); {
	case c == '0':
		d.i++
	case c >= '1' && c <= '9':
		d.digits()
	default:
		return false
	}
	if d.peek() == '.' {
		d.i++
		if !d.digits() {
			return false
		}
	}
	if c := d.peek(); c == 'e' || c == 'E' {
		d.i++
		if c := d.peek(); c == '+' || c == '-' {
			d.i++
		}
		if !d.digits() {
			return false
		}
	}
	return true
}

// digits reads one or more digits.
func (d *eventDecoder) digits() bool {
	start := d.i
	for c := d.peek(); c >= '0' && c <= '9'; c = d.peek() {
		d.i++
	}
	return d.i > start
}

// uint reads a number that encoding/json decodes into a uint64 without
// error: digits only, in range.
func (d *eventDecoder) uint() (uint64, bool) {
	start := d.i
	if !d.number() {
		return 0, false
	}
	n, err := strconv.ParseUint(string(d.data[start:d.i]), 10, 64)
	return n, err == nil
}

// peek returns the byte at d.i, or 0 at the end.
func (d *eventDecoder) peek() byte {
	if d.i < len(d.data) {
		return d.data[d.i]
	}
	return 0
}

// ws skips JSON whitespace.
func (d *eventDecoder) ws() {
	for d.i < len(d.data) {
		switch d.data[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// open enters the object or array that starts with c at d.i.
func (d *eventDecoder) open(c byte) bool {
	if d.peek() != c {
		return false
	}
	d.i++
	d.depth++
	d.ws()
	return d.depth <= maxWireDepth
}

// object reads an object, calling member with each name and d.i at its
// value.
func (d *eventDecoder) object(member func(name []byte) bool) bool {
	if !d.open('{') {
		return false
	}
	if d.peek() == '}' {
		d.i++
		d.depth--
		return true
	}
	for {
		name, ok := d.strBytes()
		if !ok {
			return false
		}
		if d.ws(); d.peek() != ':' {
			return false
		}
		d.i++
		d.ws()
		if !member(name) {
			return false
		}
		d.ws()
		switch d.peek() {
		case ',':
			d.i++
			d.ws()
		case '}':
			d.i++
			d.depth--
			return true
		default:
			return false
		}
	}
}

// array reads an array, calling elem with d.i at each element.
func (d *eventDecoder) array(elem func() bool) bool {
	if !d.open('[') {
		return false
	}
	if d.peek() == ']' {
		d.i++
		d.depth--
		return true
	}
	for {
		if !elem() {
			return false
		}
		d.ws()
		switch d.peek() {
		case ',':
			d.i++
			d.ws()
		case ']':
			d.i++
			d.depth--
			return true
		default:
			return false
		}
	}
}

// str reads a string as strBytes does, copied.
func (d *eventDecoder) str() (string, bool) {
	b, ok := d.strBytes()
	return string(b), ok
}

// strBytes reads the string at d.i and returns what it holds, valid only
// until the next string. It refuses a string that is not exactly what it
// holds: invalid UTF-8, a lone surrogate escape.
func (d *eventDecoder) strBytes() ([]byte, bool) {
	if d.peek() != '"' {
		return nil, false
	}
	d.i++
	start := d.i
	for d.i < len(d.data) {
		switch c := d.data[d.i]; {
		case c == '"':
			d.i++
			return d.data[start : d.i-1], true
		case c == '\\':
			return d.escaped(start)
		case c < 0x20:
			return nil, false
		case c < utf8.RuneSelf:
			d.i++
		default:
			r, size := utf8.DecodeRune(d.data[d.i:])
			if r == utf8.RuneError && size == 1 {
				return nil, false
			}
			d.i += size
		}
	}
	return nil, false
}

// escaped goes on reading a string from its first escape, decoding it
// into d.buf.
func (d *eventDecoder) escaped(start int) ([]byte, bool) {
	d.buf = append(d.buf[:0], d.data[start:d.i]...)
	for d.i < len(d.data) {
		switch c := d.data[d.i]; {
		case c == '"':
			d.i++
			return d.buf, true
		case c == '\\':
			if d.i+1 >= len(d.data) {
				return nil, false
			}
			e := d.data[d.i+1]
			d.i += 2
			switch e {
			case '"', '\\', '/':
				d.buf = append(d.buf, e)
			case 'b':
				d.buf = append(d.buf, '\b')
			case 'f':
				d.buf = append(d.buf, '\f')
			case 'n':
				d.buf = append(d.buf, '\n')
			case 'r':
				d.buf = append(d.buf, '\r')
			case 't':
				d.buf = append(d.buf, '\t')
			case 'u':
				r, ok := d.hex()
				if !ok {
					return nil, false
				}
				if utf16.IsSurrogate(r) {
					if r >= 0xDC00 || d.i+1 >= len(d.data) || d.data[d.i] != '\\' || d.data[d.i+1] != 'u' {
						return nil, false
					}
					d.i += 2
					lo, ok := d.hex()
					if !ok || lo < 0xDC00 || lo > 0xDFFF {
						return nil, false
					}
					r = utf16.DecodeRune(r, lo)
				}
				d.buf = utf8.AppendRune(d.buf, r)
			default:
				return nil, false
			}
		case c < 0x20:
			return nil, false
		case c < utf8.RuneSelf:
			d.buf = append(d.buf, c)
			d.i++
		default:
			r, size := utf8.DecodeRune(d.data[d.i:])
			if r == utf8.RuneError && size == 1 {
				return nil, false
			}
			d.buf = append(d.buf, d.data[d.i:d.i+size]...)
			d.i += size
		}
	}
	return nil, false
}

// hex reads the four hex digits of a \u escape.
func (d *eventDecoder) hex() (rune, bool) {
	if len(d.data)-d.i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range d.data[d.i : d.i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	d.i += 4
	return r, true
}
