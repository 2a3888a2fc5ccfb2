package trail

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// MaxEventBytes is the largest JSON event ParseEvent reads.
const MaxEventBytes = 256 << 10

// maxWireDepth bounds the nesting ParseEvent accepts before decoding, so that
// a hostile document cannot make the decoder recurse deeply. The validator
// then applies the tighter context depth limit.
const maxWireDepth = 32

// ParseEvent decodes one event from its JSON wire form. It refuses unknown
// members, trailing data, oversized or deeply nested documents and malformed
// timestamps, and what other parsers could read as another event: a member
// given twice in one object, a member name that is not exactly Trail's (in
// another case), invalid UTF-8 and lone surrogate escapes. Each refusal is
// an EINVALID error naming the offending fields. Context numbers are kept
// as json.Number so no digit is lost.
//
// An event is read in one pass by eventDecoder; a document it does not
// accept whole goes to parseEventStrict, which says what is wrong with it.
func ParseEvent(data []byte) (*Event, error) {
	if ev, ok := decodeEvent(data, wireForm); ok {
		return ev, nil
	}
	return parseEventStrict(data)
}

// parseEventStrict is ParseEvent in several passes (depth, member and
// encoding checks, then encoding/json): it gives every refusal its error,
// and is the reference the one-pass decoder must agree with.
func parseEventStrict(data []byte) (*Event, error) {
	if len(data) > MaxEventBytes {
		return nil, Invalid(fmt.Sprintf("event is %d bytes; the limit is %d", len(data), MaxEventBytes))
	}
	if d := jsonDepth(data); d > maxWireDepth {
		return nil, Invalid(fmt.Sprintf("event is nested %d levels deep; the limit is %d", d, maxWireDepth))
	}
	if json.Valid(data) { // else the decoder says what is malformed
		if fe := checkMembers(data, wireShape()); len(fe) > 0 {
			return nil, Invalid("event refused", fe...)
		}
	}
	var w wireEvent
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return nil, decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, Invalid("trailing data after the event object")
	}
	ev := &Event{
		ID: w.ID, Tenant: w.Tenant, Seq: w.Seq,
		Action: w.Action, Category: w.Category, Outcome: w.Outcome,
		Actor: w.Actor, Targets: w.Targets, Request: w.Request, Scope: w.Scope,
		Context: w.Context, CorrelationID: w.CorrelationID, Reason: w.Reason,
		Violations: w.Violations, Redacted: w.Redacted,
	}
	var fe []FieldError
	for _, t := range []struct {
		path string
		in   *string
		out  *time.Time
	}{{"occurred_at", w.OccurredAt, &ev.OccurredAt}, {"recorded_at", w.RecordedAt, &ev.RecordedAt}} {
		if t.in == nil {
			continue
		}
		ts, err := time.Parse(time.RFC3339Nano, *t.in)
		if err != nil {
			fe = append(fe, FieldError{Path: t.path, Message: "not an RFC 3339 timestamp (like 2026-11-24T10:00:00Z)"})
			continue
		}
		*t.out = ts
	}
	if fe != nil {
		return nil, Invalid("event refused", fe...)
	}
	return ev, nil
}

// wireEvent is Event as it arrives, with timestamps as text so that a bad one
// can be named.
type wireEvent struct {
	ID            string         `json:"id"`
	Tenant        string         `json:"tenant"`
	Seq           uint64         `json:"seq"`
	RecordedAt    *string        `json:"recorded_at"`
	OccurredAt    *string        `json:"occurred_at"`
	Action        string         `json:"action"`
	Category      string         `json:"category"`
	Outcome       Outcome        `json:"outcome"`
	Actor         Actor          `json:"actor"`
	Targets       []Target       `json:"targets"`
	Request       Request        `json:"request"`
	Scope         Scope          `json:"scope"`
	Context       map[string]any `json:"context"`
	CorrelationID string         `json:"correlation_id"`
	Reason        string         `json:"reason"`
	Violations    []Violation    `json:"violations"`
	Redacted      []string       `json:"redacted"`
}

// decodeError turns an encoding/json error into an EINVALID error naming the
// field where it can.
func decodeError(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		path := te.Field
		if path == "" {
			return Invalid(fmt.Sprintf("an event must be a JSON object, not %s", te.Value))
		}
		return Invalid("event refused", FieldError{Path: path, Message: fmt.Sprintf("must be %s, not %s", jsonTypeName(te.Type.Kind().String()), te.Value)})
	case errors.As(err, &se):
		return Invalid(fmt.Sprintf("malformed JSON at byte %d: %s", se.Offset, strings.TrimPrefix(se.Error(), "json: ")))
	case errors.Is(err, io.EOF):
		return Invalid("empty input: expected a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return Invalid("truncated JSON")
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, `json: unknown field "`); ok {
		name = strings.TrimSuffix(name, `"`)
		return Invalid("event refused", FieldError{Path: name, Message: "unknown field"})
	}
	return Invalid(strings.TrimPrefix(msg, "json: "))
}

func jsonTypeName(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "struct", "map":
		return "an object"
	case "slice", "array":
		return "an array"
	case "bool":
		return "a boolean"
	default:
		return "a number"
	}
}

// jsonDepth returns the deepest nesting of objects and arrays in data,
// ignoring brackets inside strings. It does not validate the JSON.
func jsonDepth(data []byte) int {
	depth, max := 0, 0
	inStr, esc := false, false
	for _, c := range data {
		if inStr {
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
		case '{', '[':
			depth++
			if depth > max {
				max = depth
			}
		case '}', ']':
			depth--
		}
	}
	return max
}

// unmarshalNumbers decodes JSON keeping numbers as json.Number.
func unmarshalNumbers(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return dec.Decode(v)
}
