package detect

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
)

// kind is the JSON type of one value of an event's field.
type kind uint8

const (
	kindString kind = iota
	kindNumber
	kindBool
	kindNull
	kindOther // an object or an array nested in an array: it exists, and matches nothing else
)

// val is one value of an event's field, as rules compare it.
type val struct {
	kind kind
	s    string
	n    float64
	b    bool
}

// text is v as the text a string pattern matches: Sigma compares every
// value as a string unless a numeric modifier says otherwise.
func (v val) text() string {
	switch v.kind {
	case kindString:
		return v.s
	case kindNumber:
		return strconv.FormatFloat(v.n, 'f', -1, 64)
	case kindBool:
		return strconv.FormatBool(v.b)
	}
	return ""
}

// number is v as a number, for gt/gte/lt/lte: a number, or a string that
// holds one.
func (v val) number() (float64, bool) {
	switch v.kind {
	case kindNumber:
		return v.n, true
	case kindString:
		f, err := strconv.ParseFloat(strings.TrimSpace(v.s), 64)
		return f, err == nil && !math.IsNaN(f)
	}
	return 0, false
}

// input is one event as rules read it.
type input struct {
	ev      *trail.Event
	actions trail.ActionResolver
	sev     string
	sevDone bool
}

func (in *input) severity() string {
	if !in.sevDone {
		in.sev, in.sevDone = severityOf(in.ev, in.actions), true
	}
	return in.sev
}

// severityOf is the severity rules see for ev: its action's in the
// catalog; for an alert, the level of the rule that raised it.
func severityOf(ev *trail.Event, actions trail.ActionResolver) string {
	if ev.Action == catalog.AlertRaised {
		if l, ok := ev.Context["level"].(string); ok {
			return string(Level(l).Severity())
		}
	}
	if actions == nil {
		return ""
	}
	if def, ok := actions.Resolve(ev.Action); ok {
		return string(def.Severity)
	}
	return ""
}

// getter appends the values of one field of in.ev to buf: none when the
// event has none (an empty string field is absent).
type getter func(in *input, buf []val) []val

func str(buf []val, s string) []val {
	if s == "" {
		return buf
	}
	return append(buf, val{kind: kindString, s: s})
}

func strs[T any](buf []val, xs []T, f func(T) string) []val {
	for _, x := range xs {
		buf = str(buf, f(x))
	}
	return buf
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// fields maps Trail's event fields, by the names rules use (the event's
// JSON names, dotted), to their values. docs/design.md lists them.
var fields = map[string]getter{
	"id":             func(in *input, b []val) []val { return str(b, in.ev.ID) },
	"tenant":         func(in *input, b []val) []val { return str(b, in.ev.Tenant) },
	"seq":            func(in *input, b []val) []val { return append(b, val{kind: kindNumber, n: float64(in.ev.Seq)}) },
	"recorded_at":    func(in *input, b []val) []val { return str(b, timeText(in.ev.RecordedAt)) },
	"occurred_at":    func(in *input, b []val) []val { return str(b, timeText(in.ev.OccurredAt)) },
	"action":         func(in *input, b []val) []val { return str(b, in.ev.Action) },
	"category":       func(in *input, b []val) []val { return str(b, in.ev.Category) },
	"outcome":        func(in *input, b []val) []val { return str(b, string(in.ev.Outcome)) },
	"severity":       func(in *input, b []val) []val { return str(b, in.severity()) },
	"correlation_id": func(in *input, b []val) []val { return str(b, in.ev.CorrelationID) },
	"reason":         func(in *input, b []val) []val { return str(b, in.ev.Reason) },

	"actor.id":    func(in *input, b []val) []val { return str(b, in.ev.Actor.ID) },
	"actor.type":  func(in *input, b []val) []val { return str(b, string(in.ev.Actor.Type)) },
	"actor.name":  func(in *input, b []val) []val { return str(b, in.ev.Actor.Name) },
	"actor.email": func(in *input, b []val) []val { return str(b, in.ev.Actor.Email) },
	"actor.roles": func(in *input, b []val) []val { return strs(b, in.ev.Actor.Roles, func(r string) string { return r }) },

	"targets.id": func(in *input, b []val) []val {
		return strs(b, in.ev.Targets, func(t trail.Target) string { return t.ID })
	},
	"targets.type": func(in *input, b []val) []val {
		return strs(b, in.ev.Targets, func(t trail.Target) string { return t.Type })
	},
	"targets.name": func(in *input, b []val) []val {
		return strs(b, in.ev.Targets, func(t trail.Target) string { return t.Name })
	},

	"request.ip":         func(in *input, b []val) []val { return str(b, in.ev.Request.IP) },
	"request.user_agent": func(in *input, b []val) []val { return str(b, in.ev.Request.UserAgent) },
	"request.session_id": func(in *input, b []val) []val { return str(b, in.ev.Request.SessionID) },
	"request.request_id": func(in *input, b []val) []val { return str(b, in.ev.Request.RequestID) },
	"request.method":     func(in *input, b []val) []val { return str(b, in.ev.Request.Method) },
	"request.path":       func(in *input, b []val) []val { return str(b, in.ev.Request.Path) },
	"request.trace_id":   func(in *input, b []val) []val { return str(b, in.ev.Request.TraceID) },

	"scope.organization": func(in *input, b []val) []val { return str(b, in.ev.Scope.Organization) },
	"scope.workspace":    func(in *input, b []val) []val { return str(b, in.ev.Scope.Workspace) },
	"scope.team":         func(in *input, b []val) []val { return str(b, in.ev.Scope.Team) },

	"violations.rule": func(in *input, b []val) []val {
		return strs(b, in.ev.Violations, func(v trail.Violation) string { return v.Rule })
	},
	"redacted": func(in *input, b []val) []val { return strs(b, in.ev.Redacted, func(p string) string { return p }) },
}

// FieldNames returns the names of the event fields rules can use, sorted,
// besides context.KEY (any context key, KEY.SUB for nested objects).
func FieldNames() []string {
	out := make([]string, 0, len(fields))
	for name := range fields {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

const contextPrefix = "context."

// field returns the getter of the field a rule names, or an error message.
func field(name string) (getter, string) {
	if g, ok := fields[name]; ok {
		return g, ""
	}
	if key, ok := strings.CutPrefix(name, contextPrefix); ok {
		path := strings.Split(key, ".")
		if slices.Contains(path, "") {
			return nil, fmt.Sprintf("field %q: a context key is context.KEY (context.KEY.SUB for a nested object)", name)
		}
		return contextGetter(path), ""
	}
	return nil, fmt.Sprintf("unknown field %q: Trail's fields are %s and context.KEY", name, strings.Join(FieldNames(), ", "))
}

// contextGetter reads the context value at path: each element of an array,
// a null as null, and an object only as existing.
func contextGetter(path []string) getter {
	return func(in *input, b []val) []val {
		var v any = in.ev.Context
		for _, k := range path {
			m, ok := v.(map[string]any)
			if !ok {
				return b
			}
			if v, ok = m[k]; !ok {
				return b
			}
		}
		if arr, ok := v.([]any); ok {
			for _, e := range arr {
				b = append(b, scalar(e))
			}
			return b
		}
		return append(b, scalar(v))
	}
}

// scalar is a JSON value (as the store decodes it, or as a Go caller gave
// it) as a val.
func scalar(v any) val {
	switch x := v.(type) {
	case nil:
		return val{kind: kindNull}
	case string:
		return val{kind: kindString, s: x}
	case bool:
		return val{kind: kindBool, b: x}
	case json.Number:
		if f, err := x.Float64(); err == nil {
			return val{kind: kindNumber, n: f}
		}
		return val{kind: kindString, s: x.String()}
	case float64:
		return val{kind: kindNumber, n: x}
	case float32:
		return val{kind: kindNumber, n: float64(x)}
	case int:
		return val{kind: kindNumber, n: float64(x)}
	case int64:
		return val{kind: kindNumber, n: float64(x)}
	case uint64:
		return val{kind: kindNumber, n: float64(x)}
	case int32:
		return val{kind: kindNumber, n: float64(x)}
	}
	return val{kind: kindOther}
}

// groupValue is the value of a group-by or value_count field: its first
// value, as text, and whether it has one.
func groupValue(g getter, in *input, buf []val) (string, bool, []val) {
	buf = g(in, buf[:0])
	for _, v := range buf {
		if v.kind != kindNull && v.kind != kindOther {
			return v.text(), true, buf
		}
	}
	return "", false, buf
}
