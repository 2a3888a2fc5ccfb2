package trail

import (
	"fmt"
	"regexp"
	"strings"
)

// Action describes one kind of auditable event in the catalog: its name, what
// it means, which context keys it should carry, which compliance regimes care
// about it and how long its events are kept by default.
type Action struct {
	Name        string       `json:"name"`
	Category    string       `json:"category"`
	Outcome     Outcome      `json:"outcome"`
	Description string       `json:"description,omitempty"`
	Severity    Severity     `json:"severity,omitempty"`
	Compliance  []string     `json:"compliance,omitempty"`
	Retention   string       `json:"retention,omitempty"`
	Attempt     string       `json:"attempt,omitempty"` // for a result action: the attempted action it closes
	Aliases     []string     `json:"aliases,omitempty"` // other names that resolve to this action
	Sources     []string     `json:"sources,omitempty"` // where the action comes from ("000:USER_LOGIN_SUCCESS")
	Context     []ContextKey `json:"context,omitempty"` // the context keys events of this action should carry
	Custom      bool         `json:"custom,omitempty"`  // registered at run time rather than built in
}

// TrailSource is the source of the actions that record what happens to
// the log itself (a purge, a legal hold, an erasure).
const TrailSource = "trail"

// TrailRecord reports whether a is one of Trail's own records: an action
// whose sources name Trail itself. Only Trail's own services (retention,
// legal holds, erasure) append such events, through a path no outside
// caller can take; every store's Append refuses them. A custom action
// never is one (registering clears Sources).
func (a *Action) TrailRecord() bool {
	for _, s := range a.Sources {
		if s == TrailSource {
			return true
		}
	}
	return false
}

// ContextKey is one context key an action's events should carry.
type ContextKey struct {
	Key         string  `json:"key"`
	Type        KeyType `json:"type"`
	Required    bool    `json:"required,omitempty"`
	Personal    bool    `json:"personal,omitempty"` // holds personal data (GDPR)
	Description string  `json:"description,omitempty"`
}

// KeyType is the JSON type a context key's value must have.
type KeyType string

// The types a context key can declare.
const (
	TypeString KeyType = "string"
	TypeBool   KeyType = "bool"
	TypeInt    KeyType = "int"    // a JSON number with no fractional part
	TypeNumber KeyType = "number" // any JSON number
	TypeArray  KeyType = "array"
	TypeObject KeyType = "object"
	TypeAny    KeyType = "any" // anything, including null
)

// Valid reports whether t is a defined key type.
func (t KeyType) Valid() bool {
	switch t {
	case TypeString, TypeBool, TypeInt, TypeNumber, TypeArray, TypeObject, TypeAny:
		return true
	}
	return false
}

// Severity ranks how much a security engineer should care about an event.
type Severity string

// The severities, from least to most urgent.
const (
	SeverityInfo     Severity = "info"
	SeverityLow      Severity = "low"
	SeverityMedium   Severity = "medium"
	SeverityHigh     Severity = "high"
	SeverityCritical Severity = "critical"
)

// Valid reports whether s is a defined severity.
func (s Severity) Valid() bool {
	switch s {
	case SeverityInfo, SeverityLow, SeverityMedium, SeverityHigh, SeverityCritical:
		return true
	}
	return false
}

// The compliance tags the catalog uses.
const (
	CompliancePCIDSS = "PCI-DSS"
	ComplianceSOC2   = "SOC2"
	ComplianceGDPR   = "GDPR"
)

// NormalizeCompliance returns the canonical spelling of a compliance tag, so
// that "pci_dss", "pci-dss" and "PCI DSS" all name PCI-DSS; other tags are
// upper-cased with separators removed.
func NormalizeCompliance(tag string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(tag) {
		if (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		}
	}
	switch s := b.String(); s {
	case "PCIDSS", "PCI":
		return CompliancePCIDSS
	case "SOC2":
		return ComplianceSOC2
	default:
		return s
	}
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]*[a-z0-9]$`)

// MaxNameLen is the longest action, category or context key name accepted.
const MaxNameLen = 128

// CheckName returns a message saying what is wrong with an action or category
// name, or "" when it is well formed: lower snake_case, 2 to MaxNameLen
// characters, starting with a letter.
func CheckName(name string) string {
	switch {
	case name == "":
		return "required"
	case len(name) > MaxNameLen:
		return fmt.Sprintf("longer than %d characters", MaxNameLen)
	case !nameRE.MatchString(name) || strings.Contains(name, "__"):
		return "must be lower snake_case: a letter, then letters, digits and single underscores (like user_login_success)"
	}
	return ""
}

// Check validates an action definition and returns an EINVALID error naming
// every bad field, or nil. It checks the definition alone; clashes with other
// actions are the catalog's to find.
func (a *Action) Check() error {
	var fe []FieldError
	add := func(path, msg string) { fe = append(fe, FieldError{Path: path, Message: msg}) }
	if m := CheckName(a.Name); m != "" {
		add("name", m)
	}
	if m := CheckName(a.Category); m != "" {
		add("category", m)
	}
	if !a.Outcome.Valid() {
		add("outcome", "must be one of attempted, success, failure, denied, info")
	}
	if a.Severity != "" && !a.Severity.Valid() {
		add("severity", "must be one of info, low, medium, high, critical")
	}
	if len(a.Description) > 1024 {
		add("description", "longer than 1024 characters")
	}
	if a.Attempt != "" {
		if m := CheckName(a.Attempt); m != "" {
			add("attempt", m)
		} else if a.Outcome == OutcomeAttempted {
			add("attempt", "an attempted action cannot itself close an attempt")
		}
	}
	for i, al := range a.Aliases {
		if m := CheckName(al); m != "" {
			add(PathIndex("aliases", i), m)
		}
	}
	seen := map[string]bool{}
	for i, k := range a.Context {
		p := PathIndex("context", i)
		if m := checkKeyName(k.Key); m != "" {
			add(p+".key", m)
		} else if seen[k.Key] {
			add(p+".key", fmt.Sprintf("%q is listed twice", k.Key))
		}
		seen[k.Key] = true
		if !k.Type.Valid() {
			add(p+".type", "must be one of string, bool, int, number, array, object, any")
		}
	}
	if len(fe) > 0 {
		return Invalid("invalid action definition", fe...)
	}
	return nil
}

func checkKeyName(k string) string {
	switch {
	case k == "":
		return "required"
	case len(k) > MaxNameLen:
		return fmt.Sprintf("longer than %d characters", MaxNameLen)
	}
	return ""
}
