package trail_test

import (
	"bytes"
	"strings"
	"testing"

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
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := trail.ParseEvent(data)
		if err != nil {
			if trail.ErrorCode(err) != trail.EINVALID {
				t.Fatalf("parse error is not EINVALID: %v", err)
			}
			return
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
