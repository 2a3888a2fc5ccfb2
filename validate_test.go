package trail_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/trailaudit/trail"
)

// fakeCatalog is a hand-written ActionResolver holding a few actions, so
// these tests do not depend on the real catalog's data.
type fakeCatalog map[string]*trail.Action

func (f fakeCatalog) Resolve(name string) (*trail.Action, bool) {
	a, ok := f[strings.ToLower(name)]
	return a, ok
}

var loginFailed = &trail.Action{
	Name: "user_login_failed", Category: "authentication", Outcome: trail.OutcomeFailure,
	Context: []trail.ContextKey{
		{Key: "reason", Type: trail.TypeString, Required: true},
		{Key: "attempts", Type: trail.TypeInt, Required: true},
		{Key: "email", Type: trail.TypeString, Required: true, Personal: true},
		{Key: "score", Type: trail.TypeNumber},
	},
}

var testCatalog = fakeCatalog{
	"user_login_failed": loginFailed,
	"login_failed":      loginFailed, // an alias
}

// fakeRedactor replaces context values under the key "password".
type fakeRedactor struct{}

func (fakeRedactor) RedactEvent(ev *trail.Event) {
	if _, ok := ev.Context["password"]; ok {
		ev.Context["password"] = "[REDACTED]"
		ev.Redacted = append(ev.Redacted, "context.password")
	}
}

var now = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

func parse(t *testing.T, s string) *trail.Event {
	t.Helper()
	ev, err := trail.ParseEvent([]byte(s))
	if err != nil {
		t.Fatalf("ParseEvent(%s): %v", s, err)
	}
	return ev
}

const goodLogin = `{"action":"user_login_failed","actor":{"id":"u-1","type":"user"},
  "context":{"reason":"invalid_password","attempts":3,"email":"ana@example.com"}}`

func TestPrepareKeepsAndMarks(t *testing.T) {
	v := &trail.Validator{Actions: testCatalog, Redactor: fakeRedactor{}}
	for _, tc := range []struct {
		name       string
		in         string
		policy     trail.Policy
		violations []trail.Violation
		redacted   []string
	}{
		{
			name: "clean",
			in:   goodLogin,
		},
		{
			name: "alias resolves, category and outcome filled",
			in:   `{"action":"LOGIN_FAILED","actor":{"id":"u-1","type":"user"},"context":{"reason":"x","attempts":1,"email":"e"}}`,
		},
		{
			name: "missing and mistyped keys are marked, not refused",
			in:   `{"action":"user_login_failed","actor":{"id":"u-1","type":"user"},"context":{"attempts":"3","email":"e","score":"high"}}`,
			violations: []trail.Violation{
				{Path: "context.attempts", Rule: trail.RuleWrongType, Message: "user_login_failed wants int, got string"},
				{Path: "context.reason", Rule: trail.RuleMissingKey, Message: "required by user_login_failed (string)"},
				{Path: "context.score", Rule: trail.RuleWrongType, Message: "user_login_failed wants number, got string"},
			},
		},
		{
			name: "a fraction is not an int",
			in:   `{"action":"user_login_failed","actor":{"id":"u-1","type":"user"},"context":{"reason":"x","attempts":2.5,"email":"e"}}`,
			violations: []trail.Violation{
				{Path: "context.attempts", Rule: trail.RuleWrongType, Message: "user_login_failed wants int, got number"},
			},
		},
		{
			name:   "unknown action allowed by policy",
			in:     `{"action":"invoice_paid","actor":{"id":"u-1","type":"user"}}`,
			policy: trail.Policy{AllowCustom: true},
			violations: []trail.Violation{
				{Path: "action", Rule: trail.RuleUnknownAction, Message: `"invoice_paid" is not in the catalog`},
			},
		},
		{
			name: "future occurred_at",
			in:   `{"action":"user_login_failed","occurred_at":"2026-11-24T11:00:00Z","actor":{"id":"u-1","type":"user"},"context":{"reason":"x","attempts":1,"email":"e"}}`,
			violations: []trail.Violation{
				{Path: "occurred_at", Rule: trail.RuleClockSkew, Message: "1h0m0s ahead of Trail's clock"},
			},
		},
		{
			name: "a number too precise for JSON is kept as a string",
			in:   `{"action":"user_login_failed","actor":{"id":"u-1","type":"user"},"context":{"reason":"x","attempts":1,"email":"e","amount":12345678901234567890}}`,
			violations: []trail.Violation{
				{Path: "context.amount", Rule: trail.RuleNumberPrecision, Message: "number cannot be kept exactly as a JSON number (IEEE 754 double); stored as a string"},
			},
		},
		{
			name:     "redaction runs after validation",
			in:       `{"action":"user_login_failed","actor":{"id":"u-1","type":"user"},"context":{"reason":"x","attempts":1,"email":"e","password":"hunter2"}}`,
			redacted: []string{"context.password"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := parse(t, tc.in)
			if err := v.Prepare(ev, tc.policy, now); err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			if diff := cmp.Diff(tc.violations, ev.Violations); diff != "" {
				t.Errorf("violations (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.redacted, ev.Redacted); diff != "" {
				t.Errorf("redacted (-want +got):\n%s", diff)
			}
			if ev.Category == "" || !ev.Outcome.Valid() {
				t.Errorf("category %q, outcome %q not filled", ev.Category, ev.Outcome)
			}
		})
	}
}

func TestPrepareFillsFromCatalog(t *testing.T) {
	v := &trail.Validator{Actions: testCatalog}
	ev := parse(t, strings.Replace(goodLogin, "user_login_failed", "login_failed", 1))
	if err := v.Prepare(ev, trail.Policy{}, now); err != nil {
		t.Fatal(err)
	}
	if ev.Action != "user_login_failed" || ev.Category != "authentication" || ev.Outcome != trail.OutcomeFailure {
		t.Errorf("got action %q category %q outcome %q", ev.Action, ev.Category, ev.Outcome)
	}
	if ev.Context["amount"] != nil || ev.Context["attempts"] != json.Number("3") {
		t.Errorf("context = %v", ev.Context)
	}
}

// TestPrepareRefuses lists what makes an event unfit to store, each with the
// exact field paths the error must name.
func TestPrepareRefuses(t *testing.T) {
	v := &trail.Validator{Actions: testCatalog}
	long := strings.Repeat("x", 1025)
	for _, tc := range []struct {
		name   string
		in     string
		policy trail.Policy
		paths  []string
	}{
		{"no action, no actor", `{}`, trail.Policy{}, []string{"action", "actor.id", "actor.type"}},
		{"unknown action", `{"action":"teleported","actor":{"id":"u","type":"user"}}`, trail.Policy{}, []string{"action"}},
		{"badly named custom action", `{"action":"Teleported!","actor":{"id":"u","type":"user"}}`, trail.Policy{AllowCustom: true}, []string{"action"}},
		{"bad actor type", `{"action":"login_failed","actor":{"id":"u","type":"robot"},"context":{"reason":"x","attempts":1,"email":"e"}}`, trail.Policy{}, []string{"actor.type"}},
		{"contradicting the catalog", `{"action":"login_failed","category":"data","outcome":"success","actor":{"id":"u","type":"user"},"context":{"reason":"x","attempts":1,"email":"e"}}`, trail.Policy{}, []string{"category", "outcome"}},
		{"fields only Trail sets", `{"id":"x","seq":4,"recorded_at":"2026-01-01T00:00:00Z","action":"login_failed","actor":{"id":"u","type":"user"},"context":{"reason":"x","attempts":1,"email":"e"},"redacted":["a"],"violations":[{"path":"a","rule":"b","message":"c"}]}`, trail.Policy{}, []string{"id", "seq", "recorded_at", "violations", "redacted"}},
		{"bad ip", `{"action":"login_failed","actor":{"id":"u","type":"user"},"request":{"ip":"999.1.1.1"},"context":{"reason":"x","attempts":1,"email":"e"}}`, trail.Policy{}, []string{"request.ip"}},
		{"long fields", `{"action":"login_failed","actor":{"id":"` + long + `","type":"user","roles":["",""]},"targets":[{"type":"t"}],"context":{"reason":"x","attempts":1,"email":"e"}}`, trail.Policy{}, []string{"actor.id", "actor.roles[0]", "actor.roles[1]", "targets[0].id"}},
		{"strict mode refuses what it would mark", `{"action":"login_failed","actor":{"id":"u","type":"user"},"context":{"attempts":"many"}}`, trail.Policy{Strict: true}, []string{"context.attempts", "context.email", "context.reason"}},
		{"too deep", `{"action":"login_failed","actor":{"id":"u","type":"user"},"context":{"reason":"x","attempts":1,"email":"e","a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{"i":1}}}}}}}}}}`, trail.Policy{}, []string{"context.a.b.c.d.e.f.g.h"}},
		{"empty key", `{"action":"login_failed","actor":{"id":"u","type":"user"},"context":{"reason":"x","attempts":1,"email":"e","":1}}`, trail.Policy{}, []string{`context[""]`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := v.Prepare(parse(t, tc.in), tc.policy, now)
			if trail.ErrorCode(err) != trail.EINVALID {
				t.Fatalf("Prepare = %v, want EINVALID", err)
			}
			var paths []string
			for _, f := range trail.ErrorFields(err) {
				paths = append(paths, f.Path)
			}
			if diff := cmp.Diff(tc.paths, paths); diff != "" {
				t.Errorf("field paths (-want +got):\n%s\nerror: %v", diff, err)
			}
		})
	}
}

func TestPrepareContextSizeLimit(t *testing.T) {
	v := &trail.Validator{Actions: testCatalog, Limits: trail.DefaultLimits()}
	v.Limits.MaxContextBytes = 100
	ev := parse(t, goodLogin)
	ev.Context["notes"] = strings.Repeat("n", 200)
	err := v.Prepare(ev, trail.Policy{}, now)
	if fe := trail.ErrorFields(err); len(fe) != 1 || fe[0].Path != "context" {
		t.Errorf("Prepare = %v, want one error on context", err)
	}
}

// TestPrepareContextSizeExact: the context's limit is its canonical size,
// to the byte, whether or not the validator measures it (it skips the
// measure when CanonicalBound is under the limit); and the bound is never
// under the size, for every kind of value and every escape.
func TestPrepareContextSizeExact(t *testing.T) {
	for _, tc := range []struct {
		name string
		ctx  map[string]any
	}{
		{"plain", map[string]any{"reason": "invalid_password", "attempts": 3}},
		{"escapes", map[string]any{"q": "a\"b\\c\n\t\u0001\u001f", "k": "\u2028\u007f"}},
		{"unicode", map[string]any{"name": "Zoë 日本 🎉", "é": "ß"}},
		{"numbers", map[string]any{"f": 1.5e300, "n": json.Number("1e2"), "neg": -0.000001, "big": uint64(1 << 60), "z": 0}},
		{"nested", map[string]any{"a": []any{nil, true, false, "x", []any{}, map[string]any{}}, "m": map[string]any{"in": map[string]any{"deep": "v"}}}},
		{"empty", map[string]any{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prepare := func(limit int) error {
				v := &trail.Validator{Actions: testCatalog, Limits: trail.DefaultLimits()}
				v.Limits.MaxContextBytes = limit
				ev := parse(t, goodLogin)
				ev.Context = tc.ctx
				return v.Prepare(ev, trail.Policy{}, now)
			}
			v := &trail.Validator{Actions: testCatalog, Limits: trail.DefaultLimits()}
			ev := parse(t, goodLogin)
			ev.Context = tc.ctx
			if err := v.Prepare(ev, trail.Policy{}, now); err != nil {
				t.Fatal(err)
			}
			b, err := trail.Canonicalize(ev.Context)
			if err != nil {
				t.Fatal(err)
			}
			bound := trail.ContextBound(tc.ctx)
			if bound < len(b) {
				t.Errorf("ContextBound = %d, under the canonical size %d (%s)", bound, len(b), b)
			}
			if err := prepare(len(b)); err != nil {
				t.Errorf("at a limit of its size (%d bytes): %v", len(b), err)
			}
			if err := prepare(len(b) - 1); err == nil && len(b) > 2 {
				t.Errorf("at a limit of a byte under its size (%d bytes): accepted", len(b))
			}
			// At a limit of its bound the context is accepted without being
			// encoded (the fast path: fewer allocations); a byte under it, it
			// is encoded and measured.
			if bound > len(b) {
				allocs := func(limit int) float64 {
					return testing.AllocsPerRun(20, func() {
						if err := prepare(limit); err != nil {
							t.Fatalf("at a limit of %d bytes (size %d, bound %d): %v", limit, len(b), bound, err)
						}
					})
				}
				if at, under := allocs(bound), allocs(bound-1); at >= under {
					t.Errorf("at a limit of its bound (%d bytes): %v allocations, a byte under it %v; want fewer (not encoded)", bound, at, under)
				}
			}
		})
	}
}

// TestPrepareGoValues: Go callers put any values in the context; Trail turns
// them into JSON values and does not touch the caller's map.
func TestPrepareGoValues(t *testing.T) {
	v := &trail.Validator{Actions: testCatalog}
	type ids struct {
		First string `json:"first"`
	}
	ctx := map[string]any{"reason": "x", "attempts": 3, "email": "e", "big": uint64(1 << 60), "ids": ids{"a"}, "list": []string{"p"}}
	ev := &trail.Event{Action: "user_login_failed", Actor: trail.Actor{ID: "u", Type: trail.ActorUser}, Context: ctx}
	if err := v.Prepare(ev, trail.Policy{}, now); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"reason": "x", "attempts": json.Number("3"), "email": "e", "big": "1152921504606846976",
		"ids": map[string]any{"first": "a"}, "list": []any{"p"}}
	if diff := cmp.Diff(want, ev.Context); diff != "" {
		t.Errorf("context (-want +got):\n%s", diff)
	}
	if _, changed := ctx["ids"].(ids); !changed {
		t.Errorf("caller's map was modified: %v", ctx)
	}
	if len(ev.Violations) != 1 || ev.Violations[0].Path != "context.big" {
		t.Errorf("violations = %v, want number_precision on context.big", ev.Violations)
	}
}

func TestPrepareBatch(t *testing.T) {
	v := &trail.Validator{Actions: testCatalog}
	good, bad := parse(t, goodLogin), parse(t, `{"action":"user_login_failed","actor":{"id":"u"}}`)
	_, err := v.PrepareBatch("acme", []*trail.Event{good, bad, nil}, trail.Policy{}, now)
	var paths []string
	for _, f := range trail.ErrorFields(err) {
		paths = append(paths, f.Path)
	}
	if diff := cmp.Diff([]string{"[1].actor.type", "[2]"}, paths); diff != "" {
		t.Errorf("paths (-want +got):\n%s", diff)
	}

	out, err := v.PrepareBatch("acme", []*trail.Event{good}, trail.Policy{}, now)
	if err != nil {
		t.Fatal(err)
	}
	ev := out[0]
	if ev == good || ev.Tenant != "acme" || ev.ID == "" || !ev.RecordedAt.Equal(now) || !ev.OccurredAt.Equal(now) {
		t.Errorf("prepared event: %+v", ev)
	}
	if good.ID != "" || good.Tenant != "" {
		t.Errorf("caller's event was modified: %+v", good)
	}
	for _, tenant := range []string{"", "Acme", "-x", strings.Repeat("a", 65)} {
		if _, err := v.PrepareBatch(tenant, []*trail.Event{good}, trail.Policy{}, now); trail.ErrorCode(err) != trail.EINVALID {
			t.Errorf("tenant %q: err = %v, want EINVALID", tenant, err)
		}
	}
}

// PrepareBatch shares the caller's context until validation copies it
// (cloneSharingContext): what it normalizes, redacts and marks is the copy,
// and the caller's event, nested values and all, stays as it was, whether
// the event is prepared or refused.
func TestPrepareLeavesCallersContext(t *testing.T) {
	v := &trail.Validator{Actions: testCatalog, Redactor: fakeRedactor{}}
	for name, ev := range map[string]string{
		"prepared": `{"action":"user_login_failed","actor":{"id":"u-1","type":"user"},
			"context":{"reason":"r","attempts":3,"email":"a@example.com","password":"hunter2","extra":{"n":1.50,"list":[1,{"k":"v"}]}}}`,
		"refused": `{"action":"user_login_failed","actor":{"id":"u-1"},
			"context":{"reason":"r","attempts":3,"email":"a@example.com","password":"hunter2","extra":{"n":1.50}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			in, want := parse(t, ev), parse(t, ev)
			out, err := v.PrepareBatch("acme", []*trail.Event{in}, trail.Policy{}, now)
			if (err == nil) != (name == "prepared") {
				t.Fatalf("err = %v", err)
			}
			if diff := cmp.Diff(want, in); diff != "" {
				t.Errorf("caller's event changed (-before +after):\n%s", diff)
			}
			if err == nil && out[0].Context["password"] != "[REDACTED]" {
				t.Errorf("prepared context = %v, want the password redacted", out[0].Context)
			}
		})
	}
}

func TestBatchFingerprint(t *testing.T) {
	a, b := parse(t, goodLogin), parse(t, strings.Replace(goodLogin, "u-1", "u-2", 1))
	fa, _ := trail.BatchFingerprint([]*trail.Event{a})
	fa2, _ := trail.BatchFingerprint([]*trail.Event{parse(t, goodLogin)})
	fb, _ := trail.BatchFingerprint([]*trail.Event{b})
	fab, _ := trail.BatchFingerprint([]*trail.Event{a, b})
	if fa != fa2 || fa == fb || fa == fab {
		t.Error("fingerprints must be equal exactly for equal batches")
	}
}

// TestPreparedEqualsStored: a prepared event equals what its canonical
// bytes decode to, so what Append returns is what reads return, whatever
// the numbers, empty lists and time zones the caller used.
func TestPreparedEqualsStored(t *testing.T) {
	v := &trail.Validator{Limits: trail.DefaultLimits()}
	zone := time.FixedZone("CET", 3600)
	evs := []*trail.Event{
		{Action: "custom_thing", Actor: trail.Actor{ID: "u-1", Type: trail.ActorUser, Roles: []string{}},
			Targets: []trail.Target{}, Context: map[string]any{}, OccurredAt: time.Date(2026, 11, 24, 10, 0, 0, 123, zone)},
		{Action: "custom_thing", Actor: trail.Actor{ID: "u-1", Type: trail.ActorUser},
			Context: map[string]any{
				"a": json.Number("1.0"), "b": json.Number("1e2"), "c": json.Number("-0"), "d": 0.1, "e": float32(2.5),
				"f": 7, "g": uint8(3), "h": json.Number("123456789012345678901234567890"), "i": []any{}, "j": map[string]any{},
				"k": map[string]any{"n": json.Number("1.50"), "l": []any{json.Number("2E3"), nil, true}},
			}},
	}
	prepared, err := v.PrepareBatch("acme", evs, trail.Policy{AllowCustom: true}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range prepared {
		ev.Seq = uint64(i + 1)
		body, err := trail.MarshalCanonical(ev)
		if err != nil {
			t.Fatal(err)
		}
		back, err := trail.UnmarshalCanonical(body)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(ev, back); diff != "" {
			t.Errorf("event %d: prepared and stored differ (-prepared +stored):\n%s", i, diff)
		}
	}
}

// TestPrepareOneMeaning: a string means one thing to every store and every
// reader. Identifiers (what searches match: actor, targets, scope,
// correlation and request ids, roles, context keys) hold no control
// character; no string holds NUL (PostgreSQL's text cannot, and C-string
// readers stop at it) or invalid UTF-8 (repairing it would make two values
// one). Go callers get the same refusals as JSON ones, naming the field.
func TestPrepareOneMeaning(t *testing.T) {
	v := &trail.Validator{Actions: testCatalog}
	for _, tc := range []struct {
		name  string
		edit  func(ev *trail.Event)
		paths []string
	}{
		{"NUL in actor.id", func(ev *trail.Event) { ev.Actor.ID = "u-1\x00admin" }, []string{"actor.id"}},
		{"NUL in scope.workspace", func(ev *trail.Event) { ev.Scope.Workspace = "\x00" }, []string{"scope.workspace"}},
		{"NUL in a target id", func(ev *trail.Event) { ev.Targets = []trail.Target{{Type: "invoice", ID: "inv-1\x00"}} }, []string{"targets[0].id"}},
		{"a tab in a target type", func(ev *trail.Event) { ev.Targets = []trail.Target{{Type: "in\tvoice", ID: "1"}} }, []string{"targets[0].type"}},
		{"a newline in the correlation id", func(ev *trail.Event) { ev.CorrelationID = "c-1\nc-2" }, []string{"correlation_id"}},
		{"DEL in scope.organization", func(ev *trail.Event) { ev.Scope.Organization = "o\x7f" }, []string{"scope.organization"}},
		{"a C1 control in scope.team", func(ev *trail.Event) { ev.Scope.Team = "t\u0085" }, []string{"scope.team"}},
		{"an escape in a role", func(ev *trail.Event) { ev.Actor.Roles = []string{"admin", "\x1b[31m"} }, []string{"actor.roles[1]"}},
		{"controls in request ids", func(ev *trail.Event) {
			ev.Request = trail.Request{SessionID: "s\r", RequestID: "r\x00", TraceID: "t\x01", Method: "GET\n"}
		}, []string{"request.method", "request.request_id", "request.session_id", "request.trace_id"}},
		{"a control character in a context key", func(ev *trail.Event) { ev.Context["a\x00b"] = 1 }, []string{`context["a\x00b"]`}},
		{"NUL in the reason", func(ev *trail.Event) { ev.Reason = "ok\x00 (not really)" }, []string{"reason"}},
		{"NUL in free text", func(ev *trail.Event) {
			ev.Actor.Name, ev.Request.UserAgent, ev.Request.Path = "\x00", "ua\x00", "/\x00"
		}, []string{"actor.name", "request.path", "request.user_agent"}},
		{"NUL in a context string", func(ev *trail.Event) { ev.Context["note"] = map[string]any{"list": []any{"a\x00"}} }, []string{"context.note.list[0]"}},
		{"invalid UTF-8 in an identifier", func(ev *trail.Event) { ev.Actor.ID = "u-\xff" }, []string{"actor.id"}},
		{"invalid UTF-8 in free text", func(ev *trail.Event) { ev.Reason, ev.Actor.Email = "caf\xe9", "\xc0@x" }, []string{"actor.email", "reason"}},
		{"a lone surrogate as Go writes it", func(ev *trail.Event) { ev.Targets = []trail.Target{{Type: "t", ID: "1", Name: "\xed\xa0\x80"}} }, []string{"targets[0].name"}},
		{"invalid UTF-8 in a context string", func(ev *trail.Event) { ev.Context["note"] = "\xff" }, []string{"context.note"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := parse(t, goodLogin)
			tc.edit(ev)
			err := v.Prepare(ev, trail.Policy{}, now)
			if trail.ErrorCode(err) != trail.EINVALID {
				t.Fatalf("Prepare = %v, want EINVALID", err)
			}
			var paths []string
			for _, f := range trail.ErrorFields(err) {
				paths = append(paths, f.Path)
			}
			slices.Sort(paths)
			if diff := cmp.Diff(tc.paths, paths); diff != "" {
				t.Errorf("field paths (-want +got):\n%s\nerror: %v", diff, err)
			}
			if len(ev.Violations) != 0 {
				t.Errorf("refused and marked too: %v", ev.Violations)
			}
		})
	}
}

// TestPrepareKeepsText: free text keeps the characters text has (tabs,
// newlines, other controls but NUL, any Unicode), unchanged and unmarked.
func TestPrepareKeepsText(t *testing.T) {
	v := &trail.Validator{Actions: testCatalog}
	ev := parse(t, goodLogin)
	text := "line 1\n\tline 2\r\n\x1b[0m \u0085 \u2028 é 東京 😀"
	ev.Reason, ev.Actor.Name, ev.Request.UserAgent, ev.Context["notes"] = text, text, text, []any{text}
	ev.Targets = []trail.Target{{Type: "user", ID: "ü-1", Name: text}}
	if err := v.Prepare(ev, trail.Policy{Strict: true}, now); err != nil {
		t.Fatal(err)
	}
	if ev.Reason != text || ev.Actor.Name != text || ev.Request.UserAgent != text || ev.Targets[0].Name != text || len(ev.Violations) != 0 {
		t.Errorf("free text changed or marked: %+v", ev)
	}
}

// TestValidText: text taken from outside on nobody's word is made into
// text an event may hold, and text that already is stays as it was.
func TestValidText(t *testing.T) {
	for in, want := range map[string]string{
		"Mozilla/5.0 (X11) é\t\n": "Mozilla/5.0 (X11) é\t\n",
		"curl\xff/8":              "curl\uFFFD/8",
		"/login\x00.php":          "/login\uFFFD.php",
		"\xed\xa0\x80":            "\uFFFD",
		"":                        "",
	} {
		got := trail.ValidText(in)
		if got != want || trail.CheckText(got) != "" {
			t.Errorf("ValidText(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestPrepareErrorsInOrder: the errors of a context name its keys in
// order, so one input gets one answer (a map's order changes from run to
// run).
func TestPrepareErrorsInOrder(t *testing.T) {
	v := &trail.Validator{Actions: testCatalog}
	var want []string
	for i := range 20 {
		ev := parse(t, goodLogin)
		for _, k := range []string{"j", "b", "h", "a", "e", "c", "i", "d", "g", "f"} {
			ev.Context[k] = "\x00"
		}
		var paths []string
		for _, f := range trail.ErrorFields(v.Prepare(ev, trail.Policy{}, now)) {
			paths = append(paths, f.Path)
		}
		if i == 0 {
			want = paths
			if !slices.IsSorted(want) || len(want) != 10 {
				t.Fatalf("paths %v, want the ten keys in order", want)
			}
		}
		if !slices.Equal(paths, want) {
			t.Fatalf("run %d named %v, run 0 %v", i, paths, want)
		}
	}
}

// TestPrepareTargets: each target's type and id are required identifiers
// and its name is text, at most Limits.MaxField bytes; every fault is
// named by its path, and a sound target among faulty ones has none.
func TestPrepareTargets(t *testing.T) {
	v := &trail.Validator{Actions: testCatalog, Limits: trail.DefaultLimits()}
	v.Limits.MaxField = 8
	for _, tc := range []struct {
		name    string
		targets []trail.Target
		want    []trail.FieldError // in the order reported
	}{
		{"sound", []trail.Target{{Type: "invoice", ID: "inv-1", Name: "March"}}, nil},
		{"nothing given", []trail.Target{{}}, []trail.FieldError{
			{Path: "targets[0].type", Message: "required"}, {Path: "targets[0].id", Message: "required"}}},
		{"a bad type, no id", []trail.Target{{Type: "in\tvoice"}}, []trail.FieldError{
			{Path: "targets[0].type", Message: "holds the control character U+0009 at byte 2; identifiers hold none"},
			{Path: "targets[0].id", Message: "required"}}},
		{"too long", []trail.Target{{Type: "t", ID: "123456789", Name: "123456789"}}, []trail.FieldError{
			{Path: "targets[0].id", Message: "longer than 8 bytes"}, {Path: "targets[0].name", Message: "longer than 8 bytes"}}},
		{"a sound one, then a NUL in a name", []trail.Target{{Type: "t", ID: "1"}, {Type: "t", ID: "2", Name: "a\x00"}}, []trail.FieldError{
			{Path: "targets[1].name", Message: "holds U+0000 (NUL) at byte 1; no text may"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := parse(t, goodLogin)
			ev.Targets = tc.targets
			err := v.Prepare(ev, trail.Policy{}, now)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Prepare = %v, want it stored", err)
				}
				return
			}
			if diff := cmp.Diff(tc.want, trail.ErrorFields(err)); diff != "" {
				t.Errorf("field errors (-want +got):\n%s", diff)
			}
		})
	}
}
