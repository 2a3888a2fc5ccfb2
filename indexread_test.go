package trail

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// indexEvents are events whose canonical bytes CanonicalIndex reads, and
// whether it reads them in its one pass (without decoding them whole).
func indexEvents(t testing.TB) []struct {
	name string
	ev   *Event
	fast bool
} {
	at := time.Date(2026, 11, 24, 10, 0, 1, 123456789, time.UTC)
	full := &Event{ID: "019ab5e2-7c00-7000-8000-000000000002", Tenant: "acme", Seq: 18446744073709551615, RecordedAt: at, OccurredAt: at.Add(-time.Hour),
		Action: "user_login_failed", Category: "authentication", Outcome: OutcomeFailure,
		Actor:         Actor{ID: "u-1", Type: ActorUser, Name: `Ana "Quote" Müller`, Email: "a@example.com", Roles: []string{"admin", "é"}},
		Targets:       []Target{{Type: "doc", ID: "d-1", Name: "Q3 \\ plan"}, {Type: "doc", ID: "d-1"}, {Type: "folder", ID: "f-1"}},
		Request:       Request{IP: "2001:db8::1", UserAgent: "Mozilla/5.0", SessionID: "s-1", RequestID: "r-1", Method: "POST", Path: "/login", TraceID: "4bf9"},
		Scope:         Scope{Organization: "org-1", Workspace: "ws-1", Team: "t-1"},
		Context:       map[string]any{"a": []any{json.Number("-0.5e-3"), true, false, nil, "tab\there\u0001"}, "b": map[string]any{"c": "é\u2028"}},
		CorrelationID: "c-9", Reason: "bad\ncredentials",
		Violations: []Violation{{Path: "context.x", Rule: RuleMissingKey, Message: "required \"x\""}},
		Redacted:   []string{"context.password"}}
	quoted := full.Clone()
	quoted.Actor.ID = `u-"1"`
	unicode := full.Clone()
	unicode.Scope.Workspace = "wörk-空間"
	return []struct {
		name string
		ev   *Event
		fast bool
	}{
		{"every member", full, true},
		{"the least an event has", &Event{Action: "user_logout"}, true},
		{"unicode in an indexed field", unicode, true},
		{"an escape in an indexed field", quoted, false},
	}
}

// TestCanonicalIndex: CanonicalIndex gives what IndexOf gives for the
// event, reading canonical bytes in one pass unless an indexed string holds
// an escape, and fails as UnmarshalCanonical does.
func TestCanonicalIndex(t *testing.T) {
	for _, tc := range indexEvents(t) {
		t.Run(tc.name, func(t *testing.T) {
			body, err := MarshalCanonical(tc.ev)
			if err != nil {
				t.Fatal(err)
			}
			ix, err := CanonicalIndex(body)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(IndexOf(tc.ev), ix); diff != "" {
				t.Errorf("CanonicalIndex (-IndexOf +got):\n%s", diff)
			}
			if _, fast := readIndex(body, string(body)); fast != tc.fast {
				t.Errorf("read in one pass: %v, want %v (%s)", fast, tc.fast, body)
			}
		})
	}
	goldens, _ := filepath.Glob("testdata/canonical/*.golden")
	for _, g := range goldens {
		body, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		if _, fast := readIndex(body, string(body)); !fast {
			t.Errorf("%s is not read in one pass", g)
		}
	}
	for _, body := range []string{
		``, `{}`, `{"action":"x"}`, `{"action":"x","v":2}`, `{"Action":"x","v":1}`, `{"action":"x","action":"y","v":1}`,
		`{"action":"x","v":1,"seq":1}`, `{"action":1,"v":1}`, `{"action":"x","context":5,"v":1}`, `{"action":"x","v":1} `,
		`{"\u0061ction":"x","v":1}`, `{"action":"x","v" :1}`, `{"action":"x","v":1,"v":1}`, `{"action":"x\q","v":1}`,
		`{"action":"x","occurred_at":"2026-02-29T00:00:00Z","v":1}`, `{"action":"x","occurred_at":"2026-01-01T00:00:60Z","v":1}`,
		`{"action":"x","occurred_at":"2026-01-01T01:00:00+01:00","v":1}`, `{"action":"x","occurred_at":"0001-01-01T00:00:00Z","v":1}`,
		`{"action":"x","reason":"\u00e9\n","v":1}`, `{"action":"x","reason":"\u00g9","v":1}`, `{"action":"x","reason":"a\`,
	} {
		_, err := CanonicalIndex([]byte(body))
		_, uerr := UnmarshalCanonical([]byte(body))
		if (err == nil) != (uerr == nil) {
			t.Errorf("CanonicalIndex(%s) = %v; UnmarshalCanonical: %v", body, err, uerr)
		}
	}
}

// FuzzCanonicalIndex holds the one-pass read to UnmarshalCanonical: bytes
// it reads decode, to an event whose IndexOf is what it read.
func FuzzCanonicalIndex(f *testing.F) {
	for _, tc := range indexEvents(f) {
		body, err := MarshalCanonical(tc.ev)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body)
	}
	goldens, _ := filepath.Glob("testdata/canonical/*.golden")
	for _, g := range goldens {
		if body, err := os.ReadFile(g); err == nil {
			f.Add(body)
		}
	}
	for _, body := range []string{
		`{"action":"x","occurred_at":"2026-11-24T10:00:01.1Z","v":1}`, `{"action":"x","occurred_at":"2026-11-24T10:00:01.100Z","v":1}`,
		`{"action":"x","occurred_at":"2026-11-24T11:00:01+01:00","v":1}`, `{"action":"x","recorded_at":"2024-02-29T00:00:00Z","v":1}`,
		`{"action":"x","context":{"a":["\u00e9\"",1.5e-3,true,null,{}]},"v":1}`, `{"\u0061ction":"x","v":1}`,
	} {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ix, fast := readIndex(body, string(body))
		ev, err := UnmarshalCanonical(body)
		if fast && err != nil {
			t.Fatalf("read in one pass, but UnmarshalCanonical refuses it (%v): %q", err, body)
		}
		if fast {
			if diff := cmp.Diff(IndexOf(ev), ix); diff != "" {
				t.Fatalf("one pass read (-IndexOf +read):\n%s\n%q", diff, body)
			}
		}
		if cix, cerr := CanonicalIndex(body); (cerr == nil) != (err == nil) || (err == nil && !cmp.Equal(IndexOf(ev), cix)) {
			t.Fatalf("CanonicalIndex = %+v, %v; UnmarshalCanonical: %v", cix, cerr, err)
		}
	})
}

// TestCanonicalTime: the form FormatTime writes is read to the instant
// time.Time's JSON gives; any text out of range or in another form is
// left to time (false), which reads or refuses it.
func TestCanonicalTime(t *testing.T) {
	for _, tc := range []struct {
		s    string
		fast bool // canonicalTime reads it
	}{
		{"2026-11-24T10:00:01Z", true},
		{"2026-11-24T10:00:01.1Z", true},
		{"2026-11-24T10:00:01.123456789Z", true},
		{"2026-11-24T10:00:01.100Z", true}, // trailing zeros: not FormatTime's, the same instant
		{"0001-01-01T00:00:00Z", true},     // the zero time: readIndex refuses it after
		{"0000-01-01T00:00:00Z", true},
		{"9999-12-31T23:59:59.999999999Z", true},
		{"0000-02-29T00:00:00Z", true}, // year 0 is a leap year
		{"0000-03-01T00:00:00Z", true},
		{"0399-12-31T23:59:59Z", true},
		{"1969-12-31T23:59:59.5Z", true},
		{"1970-01-01T00:00:00Z", true},
		{"2000-03-01T00:00:00Z", true},
		{"2024-02-29T00:00:00Z", true},             // leap year
		{"2000-02-29T00:00:00Z", true},             // divisible by 400
		{"1900-02-29T00:00:00Z", false},            // divisible by 100: no such day
		{"2026-02-29T00:00:00Z", false},            // no such day
		{"2026-04-31T00:00:00Z", false},            // no such day
		{"2026-12-31T23:59:60Z", false},            // a leap second: time has none
		{"2026-13-01T00:00:00Z", false},            // month
		{"2026-00-01T00:00:00Z", false},            // month
		{"2026-01-00T00:00:00Z", false},            // day
		{"2026-01-01T24:00:00Z", false},            // hour
		{"2026-01-01T00:60:00Z", false},            // minute
		{"2026-11-24T10:00:01.Z", false},           // a '.' and no digits
		{"2026-11-24T10:00:01.1234567891Z", false}, // ten digits: time reads them, not canonicalTime
		{"2026-11-24T10:00:01,5Z", false},
		{"2026-11-24T10:00:01+01:00", false}, // an offset
		{"2026-11-24T10:00:01-00:00", false},
		{"2026-11-24T10:00:01.5+05:30", false},
		{"2026-11-24t10:00:01z", false},
		{"2026-11-24 10:00:01Z", false},
		{"2026-11-24T10:00:1Z", false},
		{"2026-11-24T1:00:01Z", false},
		{"+2026-11-24T10:00:01Z", false},
		{"2026-1a-24T10:00:01Z", false},
		{"2026-11-24T10:00:01", false},
		{"", false},
	} {
		got, fast := canonicalTime(tc.s)
		if fast != tc.fast {
			t.Errorf("canonicalTime(%q) reads it: %v, want %v", tc.s, fast, tc.fast)
		}
		checkCanonicalTime(t, tc.s)
		if fast && got.Location() != time.UTC {
			t.Errorf("canonicalTime(%q) is in %v, want UTC", tc.s, got.Location())
		}
	}
}

// checkCanonicalTime fails t when canonicalTime reads s to another instant
// than time.Time's JSON reads, or reads what time refuses.
func checkCanonicalTime(t *testing.T, s string) {
	t.Helper()
	got, fast := canonicalTime(s)
	var want time.Time
	err := want.UnmarshalJSON([]byte(`"` + s + `"`))
	if fast && (err != nil || !got.Equal(want)) {
		t.Errorf("canonicalTime(%q) = %v; time reads %v, %v", s, got, want, err)
	}
}

// FuzzCanonicalTime holds canonicalTime to time.Time's JSON.
func FuzzCanonicalTime(f *testing.F) {
	for _, s := range []string{"2026-11-24T10:00:01.123456789Z", "2024-02-29T23:59:59Z", "2026-12-31T23:59:60Z", "0000-01-01T00:00:00.5Z"} {
		f.Add(s)
	}
	f.Fuzz(checkCanonicalTime)
}

// TestMemberPlaces: the constants readIndex switches on name the members
// at their places in eventMembers and actorMembers.
func TestMemberPlaces(t *testing.T) {
	for _, tc := range []struct {
		names []memberName
		place int
		name  string
	}{
		{eventMembers, evAction, "action"}, {eventMembers, evActor, "actor"}, {eventMembers, evCategory, "category"},
		{eventMembers, evContext, "context"}, {eventMembers, evCorrelationID, "correlation_id"}, {eventMembers, evID, "id"},
		{eventMembers, evOccurredAt, "occurred_at"}, {eventMembers, evOutcome, "outcome"}, {eventMembers, evReason, "reason"},
		{eventMembers, evRecordedAt, "recorded_at"}, {eventMembers, evRedacted, "redacted"}, {eventMembers, evRequest, "request"},
		{eventMembers, evScope, "scope"}, {eventMembers, evSeq, "seq"}, {eventMembers, evTargets, "targets"},
		{eventMembers, evTenant, "tenant"}, {eventMembers, evV, "v"}, {eventMembers, evViolations, "violations"},
		{actorMembers, acEmail, "email"}, {actorMembers, acID, "id"}, {actorMembers, acName, "name"},
		{actorMembers, acRoles, "roles"}, {actorMembers, acType, "type"},
	} {
		if got, want := tc.names[tc.place].q, `"`+tc.name+`":`; got != want {
			t.Errorf("member %d is %s, want %s", tc.place, got, want)
		}
	}
	if len(eventMembers) != evViolations+1 || len(actorMembers) != acType+1 {
		t.Errorf("%d event members, %d actor members: a constant is missing", len(eventMembers), len(actorMembers))
	}
}
