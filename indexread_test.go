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
