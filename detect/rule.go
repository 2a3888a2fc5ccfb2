package detect

import (
	"context"
	"time"

	"github.com/trailaudit/trail"
)

// Level is a Sigma rule's level: how urgent its alerts are.
type Level string

// The levels of the Sigma specification, least urgent first.
const (
	LevelInformational Level = "informational"
	LevelLow           Level = "low"
	LevelMedium        Level = "medium"
	LevelHigh          Level = "high"
	LevelCritical      Level = "critical"
)

// severities maps each level to Trail's severity: informational is
// info, the others are named alike.
var severities = map[Level]trail.Severity{
	LevelInformational: trail.SeverityInfo, LevelLow: trail.SeverityLow, LevelMedium: trail.SeverityMedium,
	LevelHigh: trail.SeverityHigh, LevelCritical: trail.SeverityCritical,
}

// Valid reports whether l is one of the five levels.
func (l Level) Valid() bool {
	_, ok := severities[l]
	return ok
}

// Severity is l as Trail's severity. An unknown level is medium.
func (l Level) Severity() trail.Severity {
	if s, ok := severities[l]; ok {
		return s
	}
	return trail.SeverityMedium
}

// Kind says what a rule is.
type Kind string

// The kinds of rule.
const (
	// KindDetection matches single events: selections and a condition.
	KindDetection Kind = "detection"
	// KindEventCount and KindValueCount are Sigma correlation rules over
	// the events other rules of the set match, in windows of a timespan.
	KindEventCount Kind = "event_count"
	KindValueCount Kind = "value_count"
	// KindGo is one of Trail's built-in rules the Sigma subset cannot
	// express, written in Go.
	KindGo Kind = "go"
)

// Rule is one rule: a Sigma detection or correlation rule (ParseRules),
// or a built-in Go rule (Builtin). A Rule is immutable once made, and one
// rule may serve many engines at once.
type Rule struct {
	// ID and Name identify the rule in its set (ID first: Ref); Title,
	// Description, Level and Tags are the Sigma attributes of the same
	// names. A rule without a level is medium.
	ID, Name, Title, Description string
	Level                        Level
	Tags                         []string

	kind     Kind
	category string // logsource.category: only events of this category
	sels     []selection
	cond     *cond
	corr     *correlation
	goRule   goRule
	refd     bool // a correlation of the set counts its matches (so it alerts only if that correlation generates)
}

// Ref is the rule's name in its set and in its alerts: its id, else its
// name.
func (r *Rule) Ref() string {
	if r.ID != "" {
		return r.ID
	}
	return r.Name
}

// Kind says what the rule is.
func (r *Rule) Kind() Kind { return r.kind }

// matches reports whether the detection rule r matches in.
func (r *Rule) matches(in *input, s *scratch) bool {
	if r.category != "" && in.ev.Category != r.category {
		return false
	}
	clear(s.memo[:len(r.sels)])
	return r.cond.eval(r, in, s)
}

// correlation is a correlation rule's definition.
type correlation struct {
	refs     []string // the rules it counts, as written
	rules    []*Rule  // the same, resolved by NewSet
	groupBy  []string
	groups   []getter
	span     time.Duration
	field    string // value_count: the field whose distinct values count
	value    getter
	bounds   []bound // all must hold
	generate bool    // the rules it counts alert too
}

// bound is one criterion of a correlation's condition: count OP n.
type bound struct {
	op string // gt, gte, lt, lte, eq
	n  int64
}

func (c *correlation) holds(count int) bool {
	n := int64(count)
	for _, b := range c.bounds {
		var ok bool
		switch b.op {
		case "gt":
			ok = n > b.n
		case "gte":
			ok = n >= b.n
		case "lt":
			ok = n < b.n
		case "lte":
			ok = n <= b.n
		default:
			ok = n == b.n
		}
		if !ok {
			return false
		}
	}
	return true
}

// goRule is a built-in rule written in Go: it looks at one event, may read
// the tenant's log before it (through q), and returns a hit or nil.
type goRule interface {
	check(ctx context.Context, q Reader, ev *trail.Event) (*hit, error)
}

// hit is what a rule found: its evidence, the window it spans and the
// group's values.
type hit struct {
	evidence []uint64 // seqs, oldest first
	count    int      // how many events matched (len(evidence) or more)
	from, to time.Time
	group    map[string]any
	values   int // value_count: distinct values
	trigger  uint64
}

// RuleInfo is what a rule says of itself, as the API and the CLI list it.
type RuleInfo struct {
	ID          string   `json:"id,omitempty"`
	Name        string   `json:"name,omitempty"`
	Title       string   `json:"title"`
	Description string   `json:"description,omitempty"`
	Level       Level    `json:"level"`
	Kind        Kind     `json:"kind"`
	Tags        []string `json:"tags,omitempty"`
}

// Info returns what r says of itself.
func (r *Rule) Info() RuleInfo {
	return RuleInfo{ID: r.ID, Name: r.Name, Title: r.Title, Description: r.Description, Level: r.Level, Kind: r.kind, Tags: r.Tags}
}

// Infos returns the Info of each rule.
func Infos(rules []*Rule) []RuleInfo {
	out := make([]RuleInfo, len(rules))
	for i, r := range rules {
		out[i] = r.Info()
	}
	return out
}
