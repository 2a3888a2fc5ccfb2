package trail_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/trailaudit/trail"
)

// TestParseEventErrors: malformed input is refused with a message that names
// the field, and never echoes a value.
func TestParseEventErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"unknown member", `{"action":"a","colour":"red"}`, "colour: unknown field"},
		{"wrong type names the path", `{"action":"a","actor":{"id":7}}`, "actor.id: must be a string, not number"},
		{"list where object", `{"action":"a","request":[]}`, "request: must be an object, not array"},
		{"bad timestamp", `{"action":"a","occurred_at":"yesterday"}`, "occurred_at: not an RFC 3339 timestamp"},
		{"not an object", `["a"]`, "an event must be a JSON object, not array"},
		{"trailing data", `{"action":"a"} {"action":"b"}`, "trailing data"},
		{"truncated", `{"action":"a"`, "truncated JSON"},
		{"syntax", `{"action":'a'}`, "malformed JSON at byte"},
		{"empty", ``, "empty input"},
		{"too deep", strings.Repeat(`{"a":`, 40) + `1` + strings.Repeat(`}`, 40), "nested 40 levels deep"},
		{"too big", `{"action":"` + strings.Repeat("a", trail.MaxEventBytes) + `"}`, "the limit is"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := trail.ParseEvent([]byte(tc.in))
			if trail.ErrorCode(err) != trail.EINVALID {
				t.Fatalf("ParseEvent = %v, want EINVALID", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

func TestParseEventSecretNotEchoed(t *testing.T) {
	_, err := trail.ParseEvent([]byte(`{"action":"a","actor":{"id":"u","type":"user"},"context":{"password":"hunter2"},"oops":"hunter2"}`))
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error %v: want a refusal that does not echo the value", err)
	}
}

// FuzzParseEvent feeds arbitrary bytes to the parser and, for what it
// accepts, checks that the canonical encoding reads back to the same bytes.
func FuzzParseEvent(f *testing.F) {
	f.Add([]byte(goodLogin))
	f.Add([]byte(`{"action":"a","occurred_at":"2026-11-24T10:00:00.5+02:00","context":{"n":[1e21,-0,"\u0000"]}}`))
	f.Add([]byte(`{"action":"a","targets":[{"type":"t","id":"1"}],"scope":{"team":"x"}}`))
	f.Add([]byte(`{"action":"a","context":{"a":{"b":[{"c":1,"d":"\ud83d\ude00"}]},"A":"\u00e9"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := trail.ParseEvent(data)
		if err != nil {
			if trail.ErrorCode(err) != trail.EINVALID {
				t.Fatalf("parse error is not EINVALID: %v", err)
			}
			return
		}
		if !utf8.Valid(data) {
			t.Fatalf("accepted invalid UTF-8: %q", data)
		}
		if path := repeatedMember(data); path != "" {
			t.Fatalf("accepted a member given twice (%s): %s", path, data)
		}
		b1, err := trail.MarshalCanonical(ev)
		if err != nil {
			return // numbers out of range are refused by the validator, not the parser
		}
		back, err := trail.UnmarshalCanonical(b1)
		if err != nil {
			t.Fatalf("canonical bytes do not read back: %v\n%s", err, b1)
		}
		b2, err := trail.MarshalCanonical(back)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b1, b2) {
			t.Fatalf("canonical round trip differs:\n%s\n%s", b1, b2)
		}
	})
}

// repeatedMember returns the path of a member that an object of data,
// valid JSON, holds twice (decoded names compared), or "". It walks the
// tokens of encoding/json's Decoder: another reading than ParseEvent's.
func repeatedMember(data []byte) string {
	type frame struct {
		object bool
		key    bool // the next token of this object is a member name
		seen   map[string]bool
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.key {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				continue
			}
			name := tok.(string)
			if top.seen[name] {
				return name
			}
			top.seen[name], top.key = true, false
			continue
		}
		if top != nil && top.object {
			top.key = true // this token is a member's value
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, key: true, seen: map[string]bool{}})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
	}
}

// TestParseEventOneMeaning: an event means one thing to every parser that
// reads it. Member names are exact and appear once per object, at any
// depth; every string is valid UTF-8 with no lone surrogate escape. Each
// refusal names the path, never the value.
func TestParseEventOneMeaning(t *testing.T) {
	const actor = `"actor":{"id":"u-1","type":"user"}`
	for _, tc := range []struct {
		name, in string
		want     []trail.FieldError
	}{
		{"a second action (last would win)", `{"action":"user_login_failed",` + actor + `,"action":"user_login_success"}`,
			[]trail.FieldError{{Path: "action", Message: "duplicate member"}}},
		{"a name differing in case (it would override)", `{"action":"user_login_failed",` + actor + `,"Action":"user_login_success"}`,
			[]trail.FieldError{{Path: "Action", Message: `unknown field (member names are exact: "action")`}}},
		{"a name in another case alone", `{"ACTION":"user_login_failed",` + actor + `}`,
			[]trail.FieldError{{Path: "ACTION", Message: `unknown field (member names are exact: "action")`}}},
		{"an escaped spelling of the same name", `{"action":"a",` + actor + `,"\u0061ction":"b"}`,
			[]trail.FieldError{{Path: "action", Message: "duplicate member"}}},
		{"twice in actor", `{"action":"a","actor":{"id":"u-1","type":"user","id":"u-2"}}`,
			[]trail.FieldError{{Path: "actor.id", Message: "duplicate member"}}},
		{"case in actor", `{"action":"a","actor":{"id":"u-1","type":"user","ID":"u-2"}}`,
			[]trail.FieldError{{Path: "actor.ID", Message: `unknown field (member names are exact: "id")`}}},
		{"twice in a target", `{"action":"a",` + actor + `,"targets":[{"type":"t","id":"1"},{"type":"t","id":"2","id":"3"}]}`,
			[]trail.FieldError{{Path: "targets[1].id", Message: "duplicate member"}}},
		{"twice in scope", `{"action":"a",` + actor + `,"scope":{"workspace":"w-1","workspace":"w-2"}}`,
			[]trail.FieldError{{Path: "scope.workspace", Message: "duplicate member"}}},
		{"twice in request", `{"action":"a",` + actor + `,"request":{"ip":"192.0.2.1","ip":"192.0.2.2"}}`,
			[]trail.FieldError{{Path: "request.ip", Message: "duplicate member"}}},
		{"twice in context", `{"action":"a",` + actor + `,"context":{"card":"x","card":"y"}}`,
			[]trail.FieldError{{Path: "context.card", Message: "duplicate member"}}},
		{"twice in a nested context object", `{"action":"a",` + actor + `,"context":{"order":{"items":[{"sku":"1","sku":"2"}]}}}`,
			[]trail.FieldError{{Path: "context.order.items[0].sku", Message: "duplicate member"}}},
		{"context keys differing in case are two keys, not a duplicate, and stay", `{"action":"a",` + actor + `,"context":{"card":"x","Card":"y"}}`,
			nil},
		{"three times is one error", `{"action":"a","action":"b","action":"c",` + actor + `}`,
			[]trail.FieldError{{Path: "action", Message: "duplicate member"}}},
		{"every path at once", `{"action":"a",` + actor + `,"action":"b","scope":{"team":"t","team":"u"}}`,
			[]trail.FieldError{{Path: "action", Message: "duplicate member"}, {Path: "scope.team", Message: "duplicate member"}}},
		{"invalid UTF-8 in actor.id", `{"action":"a","actor":{"id":"u-` + "\xff" + `","type":"user"}}`,
			[]trail.FieldError{{Path: "actor.id", Message: "not valid UTF-8"}}},
		{"invalid UTF-8 in a context string", `{"action":"a",` + actor + `,"context":{"note":"caf` + "\xe9" + `"}}`,
			[]trail.FieldError{{Path: "context.note", Message: "not valid UTF-8"}}},
		{"invalid UTF-8 in a context list", `{"action":"a",` + actor + `,"context":{"notes":["ok","` + "\xc0\xaf" + `"]}}`,
			[]trail.FieldError{{Path: "context.notes[1]", Message: "not valid UTF-8"}}},
		{"invalid UTF-8 in a member name", `{"action":"a",` + actor + `,"context":{"n` + "\xff" + `":1}}`,
			[]trail.FieldError{{Path: `context["n\xff"]`, Message: "member name: not valid UTF-8"}}},
		{"a lone high surrogate", `{"action":"a",` + actor + `,"reason":"x\ud800"}`,
			[]trail.FieldError{{Path: "reason", Message: `a lone surrogate escape (\ud800 to \udfff not in a pair) is not a character`}}},
		{"a lone low surrogate", `{"action":"a",` + actor + `,"targets":[{"type":"t","id":"\udc00"}]}`,
			[]trail.FieldError{{Path: "targets[0].id", Message: `a lone surrogate escape (\ud800 to \udfff not in a pair) is not a character`}}},
		{"a high surrogate before a non-surrogate", `{"action":"a",` + actor + `,"scope":{"workspace":"\ud800\u0041"}}`,
			[]trail.FieldError{{Path: "scope.workspace", Message: `a lone surrogate escape (\ud800 to \udfff not in a pair) is not a character`}}},
		{"two high surrogates", `{"action":"a",` + actor + `,"reason":"\ud83d\ud83d\ude00"}`,
			[]trail.FieldError{{Path: "reason", Message: `a lone surrogate escape (\ud800 to \udfff not in a pair) is not a character`}}},
		{"a surrogate pair is one character", `{"action":"a",` + actor + `,"reason":"\ud83d\ude00 \u00e9\\\""}`,
			nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := trail.ParseEvent([]byte(tc.in))
			wantFields(t, err, tc.want)
		})
	}
}

// wantFields fails t unless err is nil when want is, and otherwise an
// EINVALID error with exactly the field errors want.
func wantFields(t *testing.T, err error, want []trail.FieldError) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("error %v, want none", err)
	case want != nil && trail.ErrorCode(err) != trail.EINVALID:
		t.Fatalf("error %v, want EINVALID", err)
	}
	if diff := cmp.Diff(want, trail.ErrorFields(err)); diff != "" {
		t.Errorf("field errors (-want +got):\n%s\nerror: %v", diff, err)
	}
}

// TestParseEventKeepsContextKeyCase: context keys are the caller's own
// names, matched exactly: "Card" and "card" are two keys.
func TestParseEventKeepsContextKeyCase(t *testing.T) {
	ev, err := trail.ParseEvent([]byte(`{"action":"a","context":{"card":"x","Card":"y"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"card": "x", "Card": "y"}, ev.Context); diff != "" {
		t.Errorf("context (-want +got):\n%s", diff)
	}
}
