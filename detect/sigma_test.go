package detect

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
)

// sampleEvent is an event as a store returns it (context numbers are
// json.Number), for the matching tests.
func sampleEvent() *trail.Event {
	return &trail.Event{
		ID: "0190c1a2-0000-7000-8000-000000000001", Tenant: "acme", Seq: 42,
		RecordedAt: t0, OccurredAt: t0.Add(-time.Second),
		Action: catalog.UserLoginFailed, Category: "authentication", Outcome: trail.OutcomeFailure,
		Actor:   trail.Actor{ID: "u-1", Type: trail.ActorUser, Name: "Ann", Email: "ann@example.com", Roles: []string{"admin", "billing"}},
		Targets: []trail.Target{{Type: "user", ID: "u-2"}, {Type: "workspace", ID: "ws-9", Name: "Payroll"}},
		Request: trail.Request{IP: "192.0.2.10", UserAgent: "Mozilla/5.0 (X11) Firefox/133.0", SessionID: "s-1", Method: "POST", Path: "/login"},
		Scope:   trail.Scope{Organization: "org-1", Workspace: "ws-9"},
		Context: map[string]any{"attempts": json.Number("7"), "email": "Ann@Example.com", "mfa": false,
			"tags": []any{"a", "b"}, "nested": map[string]any{"k": "v"}, "nothing": nil, "ratio": json.Number("0.25")},
		CorrelationID: "c-1",
	}
}

// detectionRule parses a rule whose detection is the YAML given.
func detectionRule(t *testing.T, detection string) *Rule {
	t.Helper()
	rules, err := ParseRules([]byte("title: test\nid: test\ndetection:\n" + indent(detection)))
	if err != nil {
		t.Fatalf("%s: %v", detection, err)
	}
	return rules[0]
}

func indent(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return strings.Join(lines, "\n") + "\n"
}

func matches(r *Rule, ev *trail.Event) bool {
	return r.matches(&input{ev: ev, actions: catalog.Default()}, &scratch{memo: make([]int8, len(r.sels))})
}

// wantMatch holds the rule of detection to matching the sample event, or
// not.
func wantMatch(t *testing.T, detection string, want bool) {
	t.Helper()
	if got := matches(detectionRule(t, detection), sampleEvent()); got != want {
		t.Errorf("%q on the sample event = %v, want %v", detection, got, want)
	}
}

// TestModifiers: how one field of a selection matches, with each
// supported modifier. Strings compare case-insensitively with * and ?
// wildcards; a field with many values (a list in context, targets,
// roles) matches when any value does; an empty field is absent.
func TestModifiers(t *testing.T) {
	tests := []struct {
		sel  string
		want bool
	}{
		{"action: user_login_failed", true},
		{"action: USER_LOGIN_FAILED", true},
		{"action: user_login_success", false},
		{"action: [user_login_success, user_login_failed]", true},
		{"action: user_login_*", true},
		{"action: user_login_?ailed", true},
		{`action: 'user_login_\*'`, false},
		{"request.user_agent|contains: firefox", true},
		{"request.user_agent|startswith: mozilla", true},
		{"request.user_agent|endswith: '133.0'", true},
		{"request.user_agent|endswith: Mozilla", false},
		{"request.user_agent|contains|all: [X11, Firefox]", true},
		{"request.user_agent|contains|all: [X11, Chrome]", false},
		{"request.ip|cidr: 192.0.2.0/24", true},
		{"request.ip|cidr: [10.0.0.0/8, 192.0.2.0/28]", true},
		{"request.ip|cidr: 10.0.0.0/8", false},
		{"request.ip|cidr: '2001:db8::/32'", false},
		{"context.attempts: 7", true},
		{"context.attempts: '7'", true},
		{"context.attempts|gte: 7", true},
		{"context.attempts|gt: 7", false},
		{"context.attempts|lt: 8", true},
		{"context.attempts|lte: 6", false},
		{"context.ratio|lt: 0.5", true},
		{"context.email|gt: 1", false},
		{"context.mfa: false", true},
		{"context.mfa: true", false},
		{"context.email|re: '^ann@'", false},
		{"context.email|re|i: '^ann@'", true},
		{"context.email|re: '^Ann@Example\\.com$'", true},
		{"context.tags: b", true},
		{"context.tags|all: [a, b]", true},
		{"context.tags|all: [a, c]", false},
		{"context.nested.k: v", true},
		{"context.nested|exists: true", true},
		{"context.nothing: null", true},
		{"context.missing: null", true},
		{"context.email: null", false},
		{"context.nothing|exists: true", true},
		{"context.missing|exists: false", true},
		{"reason: ''", true},
		{"reason|exists: false", true},
		{"request.ip|exists: true", true},
		{"actor.roles|contains: adm", true},
		{"actor.roles: auditor", false},
		{"targets.type: workspace", true},
		{"targets.id: ws-*", true},
		{"targets.name: payroll", true},
		{"severity: medium", true},
		{"seq: 42", true},
		{"seq|gte: 43", false},
		{"occurred_at|startswith: '2026-03-02T08:59:59'", true},
		{"compliance: x", false},
	}
	for _, tc := range tests {
		t.Run(tc.sel, func(t *testing.T) {
			if strings.HasPrefix(tc.sel, "compliance") {
				if _, err := ParseRules([]byte("title: t\ndetection:\n  sel:\n    " + tc.sel + "\n  condition: sel\n")); err == nil {
					t.Fatal("an unknown field was accepted")
				}
				return
			}
			wantMatch(t, "sel:\n  "+tc.sel+"\ncondition: sel", tc.want)
		})
	}
}

// TestSelections: a map is the AND of its fields, a list of maps their
// OR.
func TestSelections(t *testing.T) {
	tests := []struct {
		sel  string
		want bool
	}{
		{"sel:\n  action: user_login_failed\n  actor.id: u-1", true},
		{"sel:\n  action: user_login_failed\n  actor.id: u-2", false},
		{"sel:\n  - action: user_login_success\n  - actor.id: u-1", true},
		{"sel:\n  - action: user_login_success\n  - actor.id: u-2", false},
		{"sel:\n  - action: user_login_failed\n    outcome: success\n  - actor.type: user\n    scope.workspace: ws-9", true},
	}
	for _, tc := range tests {
		wantMatch(t, tc.sel+"\ncondition: sel", tc.want)
	}
}

// TestConditions: and, or, not, parentheses and "1 of" / "all of", with
// Sigma's precedence (or, and, not, x of, parentheses, least binding
// first). In the sample event a and sel_x hold; b, sel_y and _hidden do
// not.
func TestConditions(t *testing.T) {
	const sels = `a:
  action: user_login_failed
b:
  actor.id: nobody
sel_x:
  actor.type: user
sel_y:
  outcome: success
`
	tests := []struct {
		cond string
		want bool
	}{
		{"a", true},
		{"b", false},
		{"a and b", false},
		{"a or b", true},
		{"not b", true},
		{"a and not b", true},
		{"not a or b", false},
		{"b and b or a", true},
		{"a or b and b", true},
		{"not (a or b)", false},
		{"(a or b) and (sel_x and not sel_y)", true},
		{"NOT b AND a", true},
		{"1 of sel_*", true},
		{"all of sel_*", false},
		{"1 of them", true},
		{"all of them", false},
		{"all of sel_x", true},
		{"1 of sel_y or not 1 of b", true},
		{"not not a", true},
		{"[b, a]", true},
		{"[b, sel_y]", false},
	}
	for _, tc := range tests {
		t.Run(tc.cond, func(t *testing.T) {
			wantMatch(t, sels+"condition: "+tc.cond, tc.want) // [x, y]: a list of conditions, their OR
		})
	}
	// "them" leaves out the identifiers that start with _.
	wantMatch(t, "a:\n  action: user_login_failed\n_hidden:\n  actor.id: nobody\ncondition: all of them", true)
}

// TestRefusals: what the subset does not support is refused, naming the
// field, never run as something else.
func TestRefusals(t *testing.T) {
	det := func(body string) string { return "title: t\nid: t\ndetection:\n" + indent(body) }
	corr := func(body string) string {
		return "title: t\nid: t\ncorrelation:\n" + indent(body)
	}
	const sel = "sel:\n  action: user_login_failed\n"
	tests := []struct {
		name, yaml, path, msg string
	}{
		{"base64offset", det("sel:\n  context.cmd|base64offset|contains: x\ncondition: sel"), "detection.sel.context.cmd|base64offset|contains", "modifier base64offset not supported"},
		{"cased", det("sel:\n  actor.id|cased: U-1\ncondition: sel"), "detection.sel.actor.id|cased", "modifier cased not supported"},
		{"windash", det("sel:\n  request.path|windash: -x\ncondition: sel"), "detection.sel.request.path|windash", "modifier windash not supported"},
		{"fieldref", det("sel:\n  actor.id|fieldref: targets.id\ncondition: sel"), "detection.sel.actor.id|fieldref", "modifier fieldref not supported"},
		{"an unknown modifier", det("sel:\n  actor.id|sounds_like: x\ncondition: sel"), "detection.sel.actor.id|sounds_like", `unknown modifier "sounds_like"`},
		{"i without re", det("sel:\n  actor.id|i: x\ncondition: sel"), "detection.sel.actor.id|i", "sub-modifier of re"},
		{"contains and re", det("sel:\n  actor.id|contains|re: x\ncondition: sel"), "detection.sel.actor.id|contains|re", "do not combine"},
		{"a modifier twice", det("sel:\n  actor.id|contains|contains: x\ncondition: sel"), "detection.sel.actor.id|contains|contains", "given twice"},
		{"exists with all", det("sel:\n  actor.id|exists|all: true\ncondition: sel"), "detection.sel.actor.id|exists|all", "exists takes no other"},
		{"exists not a bool", det("sel:\n  actor.id|exists: yes please\ncondition: sel"), "detection.sel.actor.id|exists", "want true or false"},
		{"all with one value", det("sel:\n  actor.id|all: x\ncondition: sel"), "detection.sel.actor.id|all", "two values or more"},
		{"gte of a string", det("sel:\n  context.attempts|gte: many\ncondition: sel"), "detection.sel.context.attempts|gte", "gte wants a number"},
		{"a bad network", det("sel:\n  request.ip|cidr: 300.1.0.0/8\ncondition: sel"), "detection.sel.request.ip|cidr", "cidr wants a network"},
		{"a regexp RE2 refuses", det("sel:\n  actor.id|re: '(?<=x)y'\ncondition: sel"), "detection.sel.actor.id|re", "not a regular expression"},
		{"a bad value in a list", det("sel:\n  context.attempts|gt: [1, x]\ncondition: sel"), "detection.sel.context.attempts|gt[1]", "gt wants a number"},
		{"keywords", det("keywords:\n  - evil\ncondition: keywords"), "detection.keywords[0]", "keyword searches"},
		{"keywords with all", det("keywords:\n  '|all': [a, b]\ncondition: keywords"), "detection.keywords.|all", "keyword searches"},
		{"a field not Trail's", det("sel:\n  CommandLine: x\ncondition: sel"), "detection.sel.CommandLine", `unknown field "CommandLine"`},
		{"a bad context path", det("sel:\n  context..x: x\ncondition: sel"), "detection.sel.context..x", "context.KEY"},
		{"a nested value", det("sel:\n  actor.id:\n    x: y\ncondition: sel"), "detection.sel.actor.id", "a scalar or a list"},
		{"an empty list", det("sel:\n  actor.id: []\ncondition: sel"), "detection.sel.actor.id", "empty list"},
		{"an aggregation", det(sel + "condition: sel | count() by actor.id > 5"), "detection.condition", "write a correlation rule"},
		{"near", det(sel + "condition: sel near sel"), "detection.condition", `unexpected "near"`},
		{"near first", det(sel + "condition: near sel"), "detection.condition", "near is not supported"},
		{"2 of", det(sel + "condition: 2 of sel*"), "detection.condition", "only 1 of and all of"},
		{"an unknown identifier", det(sel + "condition: sel and filter"), "detection.condition", `"filter" is not a search identifier`},
		{"a pattern naming nothing", det(sel + "condition: 1 of filter*"), "detection.condition", "names no search identifier"},
		{"an open parenthesis", det(sel + "condition: (sel"), "detection.condition", "not closed"},
		{"a dangling and", det(sel + "condition: sel and"), "detection.condition", "ends where"},
		{"no condition", det(sel), "detection.condition", "required"},
		{"an empty condition", det(sel + "condition: ''"), "detection.condition", "empty"},
		{"timeframe", det(sel + "timeframe: 5m\ncondition: sel"), "detection.timeframe", "correlation rule's timespan"},
		{"a bad identifier", det("sel/1:\n  action: x\ncondition: sel"), "detection.sel/1", "a search identifier is"},
		{"another product", "title: t\nlogsource:\n  product: windows\ndetection:\n" + indent(sel+"condition: sel"), "logsource.product", "product: trail"},
		{"a filter", "title: t\nfilter:\n  rules: [x]\n", "filter", "Sigma filters are not supported"},
		{"a collection", "title: t\naction: global\n", "action", "rule collections"},
		{"no title", "id: x\ndetection:\n" + indent(sel+"condition: sel"), "title", "required"},
		{"a bad level", "title: t\nlevel: severe\ndetection:\n" + indent(sel+"condition: sel"), "level", "not a level"},
		{"neither", "title: t\n", "detection", "required (or correlation)"},
		{"both", "title: t\ndetection:\n" + indent(sel+"condition: sel") + "correlation:\n  type: event_count\n", "correlation", "not both"},
		{"an alias", "title: t\nid: &x x\nname: *x\ndetection:\n" + indent(sel+"condition: sel"), "name", "YAML aliases"},
		{"not a mapping", "- a\n- b\n", "", "a rule is a YAML mapping"},
		{"generate on a detection", det(sel+"condition: sel") + "generate: true\n", "generate", "only a correlation rule"},

		{"temporal", corr("type: temporal\nrules: [a, b]\ngroup-by: [actor.id]\ntimespan: 5m"), "correlation.type", "temporal not supported"},
		{"temporal_ordered", corr("type: temporal_ordered\nrules: [a, b]\ntimespan: 5m"), "correlation.type", "temporal_ordered not supported"},
		{"value_sum", corr("type: value_sum\nrules: [a]\ntimespan: 5m\ncondition:\n  field: x\n  gt: 1"), "correlation.type", "value_sum not supported"},
		{"an unknown type", corr("type: sequence\nrules: [a]\ntimespan: 5m\ncondition:\n  gt: 1"), "correlation.type", `unknown correlation type "sequence"`},
		{"aliases", corr("type: event_count\nrules: [a]\ntimespan: 5m\ncondition:\n  gt: 1\naliases:\n  ip:\n    a: request.ip"), "correlation.aliases", "aliases are not supported"},
		{"weeks", corr("type: event_count\nrules: [a]\ntimespan: 1w\ncondition:\n  gt: 1"), "correlation.timespan", "s, m, h or d"},
		{"too long a window", corr("type: event_count\nrules: [a]\ntimespan: 40d\ncondition:\n  gt: 1"), "correlation.timespan", "longer than 31 days"},
		{"no timespan", corr("type: event_count\nrules: [a]\ncondition:\n  gt: 1"), "correlation.timespan", "required"},
		{"no rules", corr("type: event_count\ntimespan: 5m\ncondition:\n  gt: 1"), "correlation.rules", "required"},
		{"value_count without field", corr("type: value_count\nrules: [a]\ntimespan: 5m\ncondition:\n  gt: 1"), "correlation.condition.field", "required"},
		{"event_count with field", corr("type: event_count\nrules: [a]\ntimespan: 5m\ncondition:\n  field: actor.id\n  gt: 1"), "correlation.condition.field", "only value_count"},
		{"a field not Trail's", corr("type: value_count\nrules: [a]\ntimespan: 5m\ncondition:\n  field: User\n  gt: 1"), "correlation.condition.field", `unknown field "User"`},
		{"a group-by not Trail's", corr("type: event_count\nrules: [a]\ngroup-by: [actor.id, Computer]\ntimespan: 5m\ncondition:\n  gt: 1"), "correlation.group-by[1]", `unknown field "Computer"`},
		{"no bound", corr("type: event_count\nrules: [a]\ntimespan: 5m\ncondition: {}"), "correlation.condition", "needs gt, gte"},
		{"a negative bound", corr("type: event_count\nrules: [a]\ntimespan: 5m\ncondition:\n  gte: -1"), "correlation.condition.gte", "whole number"},
		{"a bound not a number", corr("type: event_count\nrules: [a]\ntimespan: 5m\ncondition:\n  gte: ten"), "correlation.condition.gte", "whole number"},
		{"neq", corr("type: event_count\nrules: [a]\ntimespan: 5m\ncondition:\n  neq: 3"), "correlation.condition.neq", "not supported"},
		{"gap", corr("type: event_count\nrules: [a]\ntimespan: 5m\ngap: 1m\ncondition:\n  gt: 1"), "correlation.gap", "not supported"},

		{"the second document", det(sel+"condition: sel") + "---\n" + det("sel:\n  actor.id|wide: x\ncondition: sel"), "[1].detection.sel.actor.id|wide", "modifier wide not supported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRules([]byte(tc.yaml))
			if trail.ErrorCode(err) != trail.EINVALID {
				t.Fatalf("ParseRules = %v, want EINVALID", err)
			}
			if !hasFieldError(err, tc.path, tc.msg) {
				t.Errorf("ParseRules: %v\nwant a field error at %q saying %q", err, tc.path, tc.msg)
			}
		})
	}
	for _, bad := range []string{"", "title: [unclosed", strings.Repeat("x", MaxRulesSize+1)} {
		if _, err := ParseRules([]byte(bad)); trail.ErrorCode(err) != trail.EINVALID {
			t.Errorf("ParseRules(%.20q…) = %v, want EINVALID", bad, err)
		}
	}
}

// TestSetRefusals: a set holds rules it can name, and correlations count
// detection rules of the set.
func TestSetRefusals(t *testing.T) {
	parse := func(y string) []*Rule {
		rs, err := ParseRules([]byte(y))
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	base := parse("title: a\nid: a\ndetection:\n  sel:\n    action: x\n  condition: sel\n")[0]
	anon := parse("title: anon\ndetection:\n  sel:\n    action: x\n  condition: sel\n")[0]
	count := func(ref string) *Rule {
		return parse("title: c\nid: c-" + ref + "\ncorrelation:\n  type: event_count\n  rules: [" + ref + "]\n  timespan: 1m\n  condition:\n    gte: 2\n")[0]
	}
	tests := []struct {
		name, set string
		rules     []*Rule
		path, msg string
	}{
		{"no name", "", []*Rule{base}, "name", "printable"},
		{"a space in the name", "my set", []*Rule{base}, "name", "printable"},
		{"a rule with neither id nor name", "s", []*Rule{anon}, "rules[0].id", "needs an id or a name"},
		{"two rules of one id", "s", []*Rule{base, base}, "rules[1].id", `"a" names two rules`},
		{"a correlation of a rule not in the set", "s", []*Rule{count("nope")}, "rules[0].correlation.rules[0]", `no rule of the set has the id or name "nope"`},
		{"a correlation of a correlation", "s", []*Rule{base, count("a"), count("c-a")}, "rules[2].correlation.rules[0]", "counts detection rules only"},
	}
	for _, tc := range tests {
		_, err := NewSet(tc.set, tc.rules...)
		if !hasFieldError(err, tc.path, tc.msg) {
			t.Errorf("%s: NewSet = %v, want a field error at %s saying %q", tc.name, err, tc.path, tc.msg)
		}
	}
}

func hasFieldError(err error, path, msg string) bool {
	for _, f := range trail.ErrorFields(err) {
		if f.Path == path && strings.Contains(f.Message, msg) {
			return true
		}
	}
	return false
}

// TestCorrelationWindows: how a correlation's condition meets its window,
// on a log of events one minute apart (the rule counts user_login_failed
// by context.email).
func TestCorrelationWindows(t *testing.T) {
	tests := []struct {
		name, corr string
		events     []*trail.Event
		want       map[string]int
	}{
		{"a range holds when the count enters it", "timespan: 10m\ncondition:\n  gt: 2\n  lte: 3",
			failures("ann@example.com", 3, 0), map[string]int{"c": 1}},
		{"eq", "timespan: 10m\ncondition:\n  eq: 2", failures("ann@example.com", 5, 0), map[string]int{"c": 2}},
		{"lt alone holds at the first event", "timespan: 10m\ncondition:\n  lt: 5", failures("ann@example.com", 2, 0), map[string]int{"c": 2}},
		{"the window is by occurred_at, whatever the seq order", "timespan: 3m\ncondition:\n  gte: 3", []*trail.Event{
			failedLogin("ann@example.com", "192.0.2.1", 2*time.Minute),
			failedLogin("ann@example.com", "192.0.2.1", 0),
			failedLogin("ann@example.com", "192.0.2.1", time.Minute),
		}, map[string]int{"c": 1}},
		{"an event a timespan older than its group's newest is not counted", "timespan: 3m\ncondition:\n  gte: 3", []*trail.Event{
			failedLogin("ann@example.com", "192.0.2.1", 10*time.Minute),
			failedLogin("ann@example.com", "192.0.2.1", 11*time.Minute),
			failedLogin("ann@example.com", "192.0.2.1", 0),
		}, map[string]int{}},
		{"groups count apart", "timespan: 10m\ncondition:\n  gte: 3", concat(
			failures("ann@example.com", 2, 0), failures("bob@example.com", 2, 0)), map[string]int{}},
		{"an event without the group's field is in no group", "timespan: 10m\ncondition:\n  gte: 3", times(3, func(i int) *trail.Event {
			ev := failedLogin("", "192.0.2.1", time.Duration(i)*time.Minute)
			delete(ev.Context, "email")
			return ev
		}), map[string]int{}},
		{"generate: the counted rule alerts too", "timespan: 10m\ngenerate: true\ncondition:\n  gte: 2",
			failures("ann@example.com", 2, 0), map[string]int{"c": 1, "f": 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rules, err := ParseRules([]byte("title: f\nid: f\ndetection:\n  sel:\n    action: user_login_failed\n  condition: sel\n---\n" +
				"title: c\nid: c\ncorrelation:\n  type: event_count\n  rules: [f]\n  group-by: [context.email]\n" + indent(tc.corr)))
			if err != nil {
				t.Fatal(err)
			}
			set, err := NewSet("test", rules...)
			if err != nil {
				t.Fatal(err)
			}
			wantAlerts(t, set, tc.events, tc.want)
		})
	}
}

// TestFields: the value of every field rules can name on one event
// (testdata/fields.golden): the mapping of Trail's events to Sigma fields.
func TestFields(t *testing.T) {
	names := append(FieldNames(), "context.attempts", "context.email", "context.tags", "context.nested", "context.nested.k", "context.nothing", "context.missing")
	var b strings.Builder
	in := &input{ev: sampleEvent(), actions: catalog.Default()}
	for _, n := range names {
		g, msg := field(n)
		if msg != "" {
			t.Fatalf("%s: %s", n, msg)
		}
		var vals []string
		for _, v := range g(in, nil) {
			switch v.kind {
			case kindNull:
				vals = append(vals, "null")
			case kindOther:
				vals = append(vals, "(an object)")
			case kindString:
				vals = append(vals, fmt.Sprintf("%q", v.s))
			default:
				vals = append(vals, v.text())
			}
		}
		fmt.Fprintf(&b, "%s: %s\n", n, strings.Join(vals, ", "))
	}
	golden := filepath.Join("testdata", "fields.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if b.String() != string(want) {
		t.Errorf("fields:\n%s\nwant (%s):\n%s", b.String(), golden, want)
	}
}
