package detect

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/trailaudit/trail"
	"go.yaml.in/yaml/v3"
)

// Bounds on a rules file, so that a hostile one costs little to refuse.
const (
	// MaxRulesSize is the largest rules file ParseRules reads.
	MaxRulesSize = trail.MaxRuleFileSize
	// MaxTimespan is the longest window a correlation rule may have:
	// its windows are held in memory.
	MaxTimespan = 31 * 24 * time.Hour

	maxDocuments = 200
	maxDepth     = 16
	maxValues    = 1000
	maxRegexp    = 1000
	maxText      = 256
	maxFieldErrs = 20
)

// ParseRules parses a Sigma rules file: one rule per YAML document
// (documents separated by ---), each a detection rule or a correlation
// rule, in the subset docs/design.md describes. Anything outside the
// subset is refused, with an EINVALID error naming each offending field by
// its path ("detection.selection.request.ip|base64offset"); in a file of
// several documents each path starts with the document's index ("[1].").
func ParseRules(data []byte) ([]*Rule, error) {
	if len(data) > MaxRulesSize {
		return nil, trail.Invalid(fmt.Sprintf("rules file of %d bytes is larger than %d", len(data), MaxRulesSize))
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*yaml.Node
	for {
		n := new(yaml.Node)
		err := dec.Decode(n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, trail.Invalid("rules are not YAML: " + strings.TrimPrefix(err.Error(), "yaml: "))
		}
		if len(docs) == maxDocuments {
			return nil, trail.Invalid(fmt.Sprintf("more than %d rules in one file", maxDocuments))
		}
		docs = append(docs, n)
	}
	if len(docs) == 0 {
		return nil, trail.Invalid("no rules: the file is empty")
	}
	p := &parser{}
	var rules []*Rule
	for i, d := range docs {
		if len(docs) > 1 {
			p.prefix = trail.PathIndex("", i) + "."
		}
		if r := p.document(d); r != nil {
			rules = append(rules, r)
		}
	}
	if len(p.fe) > 0 {
		return nil, trail.Invalid("rules refused", p.fe...)
	}
	return rules, nil
}

// parser gathers the field errors of one rules file.
type parser struct {
	prefix string
	fe     []trail.FieldError
}

func (p *parser) fail(path, format string, args ...any) {
	if len(p.fe) < maxFieldErrs {
		p.fe = append(p.fe, trail.FieldError{Path: p.prefix + path, Message: fmt.Sprintf(format, args...)})
	}
}

// pairs calls fn with each key and value of the mapping n.
func pairs(n *yaml.Node, fn func(key string, v *yaml.Node)) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		fn(n.Content[i].Value, n.Content[i+1])
	}
}

// check refuses what no part of a rule may hold: aliases (a rule is
// small; expanding aliases is how YAML bombs work), non-scalar keys and
// deep nesting.
func (p *parser) check(n *yaml.Node, path string, depth int) bool {
	if depth > maxDepth {
		p.fail(path, "nested deeper than %d", maxDepth)
		return false
	}
	switch n.Kind {
	case yaml.AliasNode:
		p.fail(path, "YAML aliases (*%s) are not supported", n.Value)
		return false
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode {
				p.fail(path, "a key must be a plain scalar")
				return false
			}
			if !p.check(n.Content[i+1], join(path, k.Value), depth+1) {
				return false
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if !p.check(c, trail.PathIndex(path, i), depth+1) {
				return false
			}
		}
	}
	return true
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// document parses one YAML document: a detection rule or a correlation
// rule.
func (p *parser) document(doc *yaml.Node) *Rule {
	n := doc
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if !p.check(n, "", 0) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		p.fail("", "a rule is a YAML mapping (title, detection or correlation, …)")
		return nil
	}
	before := len(p.fe)
	r := &Rule{Level: LevelMedium}
	var detection, corr, generate *yaml.Node
	pairs(n, func(key string, v *yaml.Node) {
		switch key {
		case "title":
			r.Title = p.text(key, v, true)
		case "id":
			r.ID = p.text(key, v, false)
		case "name":
			r.Name = p.text(key, v, false)
		case "description":
			r.Description = p.scalarText(key, v)
		case "level":
			if l := Level(p.text(key, v, true)); l.Valid() {
				r.Level = l
			} else if v.Value != "" {
				p.fail(key, "%q is not a level (informational, low, medium, high, critical)", v.Value)
			}
		case "tags":
			r.Tags = p.texts(key, v)
		case "logsource":
			r.category = p.logsource(key, v)
		case "detection":
			detection = v
		case "correlation":
			corr = v
		case "generate":
			generate = v
		case "filter":
			p.fail(key, "Sigma filters are not supported")
		case "action":
			p.fail(key, "rule collections (action: global, repeat, reset) are not supported: write one whole rule per document")
		}
		// Any other attribute (status, author, date, references,
		// falsepositives, fields, related, license, taxonomy, scope, or a
		// custom one) is information for people, kept in the file.
	})
	switch {
	case r.Title == "" && !hasKey(n, "title"):
		p.fail("title", "required")
	case detection != nil && corr != nil:
		p.fail("correlation", "a rule has a detection or a correlation, not both")
	case detection != nil:
		r.kind = KindDetection
		p.detection(r, detection)
		if generate != nil {
			p.fail("generate", "only a correlation rule has generate")
		}
	case corr != nil:
		r.corr = p.correlation(r, corr)
		if generate != nil {
			r.corr.generate = p.boolean("generate", generate)
		}
	default:
		p.fail("detection", "required (or correlation)")
	}
	if len(p.fe) > before {
		return nil
	}
	return r
}

func hasKey(n *yaml.Node, key string) bool {
	found := false
	pairs(n, func(k string, _ *yaml.Node) { found = found || k == key })
	return found
}

// text returns the string scalar v (at most maxText characters).
func (p *parser) text(path string, v *yaml.Node, required bool) string {
	if v.Kind != yaml.ScalarNode || v.ShortTag() == "!!null" {
		if required || v.Kind != yaml.ScalarNode {
			p.fail(path, "want a string")
		}
		return ""
	}
	switch {
	case required && strings.TrimSpace(v.Value) == "":
		p.fail(path, "required")
	case len(v.Value) > maxText:
		p.fail(path, "longer than %d characters", maxText)
	case strings.ContainsFunc(v.Value, func(r rune) bool { return r < ' ' || r == 0x7f }):
		p.fail(path, "holds a control character")
	}
	return v.Value
}

// scalarText returns a scalar of any length (a description).
func (p *parser) scalarText(path string, v *yaml.Node) string {
	if v.Kind != yaml.ScalarNode {
		p.fail(path, "want a string")
		return ""
	}
	return v.Value
}

// texts returns a list of strings (or one string, as a list of one).
func (p *parser) texts(path string, v *yaml.Node) []string {
	if v.Kind == yaml.ScalarNode {
		if v.ShortTag() == "!!null" {
			return nil
		}
		return []string{p.text(path, v, true)}
	}
	if v.Kind != yaml.SequenceNode {
		p.fail(path, "want a list of strings")
		return nil
	}
	out := make([]string, 0, len(v.Content))
	for i, c := range v.Content {
		out = append(out, p.text(trail.PathIndex(path, i), c, true))
	}
	return out
}

func (p *parser) boolean(path string, v *yaml.Node) bool {
	if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!bool" {
		p.fail(path, "want true or false")
		return false
	}
	b, _ := strconv.ParseBool(strings.ToLower(v.Value))
	return b
}

// logsource checks a rule's logsource: Trail's rules read Trail's log, so
// a product is trail; a category is a catalog category, and selects the
// events of that category. It returns the category.
func (p *parser) logsource(path string, v *yaml.Node) string {
	if v.Kind != yaml.MappingNode {
		p.fail(path, "want a mapping (product, category, service)")
		return ""
	}
	var category string
	pairs(v, func(key string, c *yaml.Node) {
		switch key {
		case "product":
			if prod := p.text(path+".product", c, true); prod != "" && !strings.EqualFold(prod, "trail") {
				p.fail(path+".product", "%q: Trail's rules read Trail's log (product: trail)", prod)
			}
		case "category":
			category = p.text(path+".category", c, false)
		}
	})
	return category
}

var identRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// detection parses a detection rule's search identifiers and condition.
func (p *parser) detection(r *Rule, n *yaml.Node) {
	const path = "detection"
	if n.Kind != yaml.MappingNode {
		p.fail(path, "want a mapping of search identifiers and a condition")
		return
	}
	var conds *yaml.Node
	var names []string
	pairs(n, func(key string, v *yaml.Node) {
		switch {
		case key == "condition":
			conds = v
		case key == "timeframe":
			p.fail(path+"."+key, "not supported: a window is a correlation rule's timespan")
		case !identRE.MatchString(key):
			p.fail(path+"."+key, "a search identifier is letters, digits, _, . and -")
		default:
			names = append(names, key)
			r.sels = append(r.sels, p.selection(path+"."+key, key, v))
		}
	})
	if conds == nil {
		p.fail(path+".condition", "required")
		return
	}
	var texts []string
	switch conds.Kind {
	case yaml.ScalarNode:
		texts = []string{conds.Value}
	case yaml.SequenceNode:
		for i, c := range conds.Content {
			if c.Kind != yaml.ScalarNode {
				p.fail(trail.PathIndex(path+".condition", i), "want a condition")
				return
			}
			texts = append(texts, c.Value)
		}
	}
	if len(texts) == 0 {
		p.fail(path+".condition", "want a condition (or a list of them)")
		return
	}
	// A list of conditions is their OR.
	or := &cond{op: condOr}
	for i, t := range texts {
		c, msg := parseCondition(t, names)
		if msg != "" {
			cp := path + ".condition"
			if conds.Kind == yaml.SequenceNode {
				cp = trail.PathIndex(cp, i)
			}
			p.fail(cp, "%s", msg)
			return
		}
		or.kids = append(or.kids, c)
	}
	r.cond = or
	if len(or.kids) == 1 {
		r.cond = or.kids[0]
	}
}

// selection parses one search identifier: a map of fields, or a list of
// such maps (any of which matches).
func (p *parser) selection(path, name string, v *yaml.Node) selection {
	s := selection{name: name}
	switch v.Kind {
	case yaml.MappingNode:
		s.maps = append(s.maps, p.fieldMap(path, v))
	case yaml.SequenceNode:
		for i, c := range v.Content {
			if c.Kind != yaml.MappingNode {
				p.fail(trail.PathIndex(path, i), "keyword searches (values with no field) are not supported: name the field (action: …, context.KEY: …)")
				return s
			}
			s.maps = append(s.maps, p.fieldMap(trail.PathIndex(path, i), c))
		}
	default:
		p.fail(path, "a search identifier is a map of fields, or a list of maps")
		return s
	}
	if len(s.maps) == 0 {
		p.fail(path, "empty")
	}
	return s
}

func (p *parser) fieldMap(path string, v *yaml.Node) []fieldMatch {
	if len(v.Content) == 0 {
		p.fail(path, "empty: a map needs a field")
		return nil
	}
	var out []fieldMatch
	pairs(v, func(key string, val *yaml.Node) {
		out = append(out, p.fieldMatch(path+"."+key, key, val))
	})
	return out
}

// Modifiers of the subset, and those of the Sigma specification refused by
// name.
var (
	supportedModifiers = []string{"contains", "startswith", "endswith", "all", "re", "cidr", "gt", "gte", "lt", "lte", "exists"}
	refusedModifiers   = []string{"base64", "base64offset", "utf16le", "utf16be", "utf16", "wide", "windash", "cased", "neq",
		"expand", "fieldref", "minute", "hour", "day", "week", "month", "year"}
)

// modifiers is what a field's modifiers ask for.
type modifiers struct {
	startsOpen, endsOpen bool // contains, endswith (open start); contains, startswith (open end)
	all, re, cidr        bool
	exists               bool
	num                  string // gt, gte, lt, lte
	reFlags              string
	kinds                []string // the modifiers that decide how a value is compared
}

// modifiers parses the modifiers after a field's name.
func (p *parser) modifiers(path string, mods []string) (modifiers, bool) {
	var m modifiers
	seen := map[string]bool{}
	for _, mod := range mods {
		if seen[mod] {
			p.fail(path, "modifier %s given twice", mod)
			return m, false
		}
		seen[mod] = true
		switch mod {
		case "contains":
			m.startsOpen, m.endsOpen = true, true
		case "startswith":
			m.endsOpen = true
		case "endswith":
			m.startsOpen = true
		case "all":
			m.all = true
			continue
		case "re":
			m.re = true
		case "i", "m", "s":
			if !m.re {
				p.fail(path, "%s is a sub-modifier of re and follows it (re|%s)", mod, mod)
				return m, false
			}
			m.reFlags += mod
			continue
		case "cidr":
			m.cidr = true
		case "exists":
			m.exists = true
		case "gt", "gte", "lt", "lte":
			m.num = mod
		default:
			if slices.Contains(refusedModifiers, mod) {
				p.fail(path, "modifier %s not supported (supported: %s)", mod, strings.Join(supportedModifiers, ", "))
			} else {
				p.fail(path, "unknown modifier %q (supported: %s)", mod, strings.Join(supportedModifiers, ", "))
			}
			return m, false
		}
		m.kinds = append(m.kinds, mod)
	}
	if len(m.kinds) > 1 {
		p.fail(path, "modifiers %s do not combine", strings.Join(m.kinds, " and "))
		return m, false
	}
	if m.exists && m.all {
		p.fail(path, "exists takes no other modifier")
		return m, false
	}
	return m, true
}

// fieldMatch parses one key of a selection, FIELD|MODIFIERS, and its
// values.
func (p *parser) fieldMatch(path, key string, v *yaml.Node) fieldMatch {
	parts := strings.Split(key, "|")
	name := parts[0]
	if name == "" {
		p.fail(path, "keyword searches (values with no field) are not supported: name the field")
		return fieldMatch{}
	}
	get, msg := field(name)
	if msg != "" {
		p.fail(path, "%s", msg)
		return fieldMatch{}
	}
	m, ok := p.modifiers(path, parts[1:])
	if !ok {
		return fieldMatch{}
	}
	fm := fieldMatch{get: get, all: m.all}
	values := []*yaml.Node{v}
	list := v.Kind == yaml.SequenceNode
	if list {
		values = v.Content
	}
	switch {
	case v.Kind == yaml.MappingNode:
		p.fail(path, "a value is a scalar or a list of scalars")
		return fm
	case len(values) == 0:
		p.fail(path, "an empty list matches nothing")
		return fm
	case len(values) > maxValues:
		p.fail(path, "more than %d values", maxValues)
		return fm
	case m.all && len(values) < 2:
		p.fail(path, "all needs a list of two values or more")
		return fm
	case m.exists:
		if list {
			p.fail(path, "exists takes true or false")
			return fm
		}
		b := p.boolean(path, v)
		fm.exists = &b
		return fm
	}
	for i, c := range values {
		vp := path
		if list {
			vp = trail.PathIndex(path, i)
		}
		if t, ok := p.value(vp, c, m); ok {
			fm.tests = append(fm.tests, t)
		}
	}
	return fm
}

// value compiles one of a field's values under its modifiers.
func (p *parser) value(path string, n *yaml.Node, m modifiers) (test, bool) {
	if n.Kind != yaml.ScalarNode {
		p.fail(path, "a value is a scalar or a list of scalars")
		return test{}, false
	}
	x, msg := scalarOf(n)
	if msg != "" {
		p.fail(path, "%s", msg)
		return test{}, false
	}
	s, isStr := x.(string)
	f, isNum := x.(float64)
	switch {
	case m.re:
		if !isStr || len(s) > maxRegexp {
			p.fail(path, "re wants a regular expression (a string of at most %d characters)", maxRegexp)
			return test{}, false
		}
		if m.reFlags != "" {
			s = "(?" + m.reFlags + ")" + s
		}
		re, err := regexp.Compile(s)
		if err != nil {
			p.fail(path, "not a regular expression Trail runs (RE2 syntax): %v", err)
			return test{}, false
		}
		return regexpTest(re), true
	case m.cidr:
		pre, err := netip.ParsePrefix(s)
		if !isStr || err != nil {
			p.fail(path, "cidr wants a network (10.0.0.0/8, 2001:db8::/32)")
			return test{}, false
		}
		return cidrTest(pre.Masked()), true
	case m.num != "":
		if !isNum {
			p.fail(path, "%s wants a number", m.num)
			return test{}, false
		}
		return numberTest(f, m.num), true
	case m.startsOpen || m.endsOpen:
		if !isStr && !isNum {
			p.fail(path, "%s wants a string", m.kinds[0])
			return test{}, false
		}
		return stringTest(val{kind: kindOf(x), s: s, n: f}.text(), m.startsOpen, m.endsOpen), true
	}
	switch x := x.(type) {
	case nil:
		return nullTest, true
	case bool:
		return boolTest(x), true
	case float64:
		return numberTest(x, "eq"), true
	}
	return stringTest(s, false, false), true
}

func kindOf(x any) kind {
	if _, ok := x.(float64); ok {
		return kindNumber
	}
	return kindString
}

// scalarOf returns a YAML scalar as a string, a float64, a bool or nil.
func scalarOf(n *yaml.Node) (any, string) {
	switch n.ShortTag() {
	case "!!str", "!!timestamp":
		return n.Value, ""
	case "!!int", "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			return nil, fmt.Sprintf("%q is not a number Trail can compare", n.Value)
		}
		return f, ""
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return nil, fmt.Sprintf("%q is not a boolean", n.Value)
		}
		return b, ""
	case "!!null":
		return nil, ""
	}
	return nil, fmt.Sprintf("values tagged %s are not supported", n.ShortTag())
}

// Correlation types of the specification that the subset refuses.
var refusedCorrelations = []string{"temporal", "temporal_ordered", "value_sum", "value_avg", "value_percentile", "value_median"}

var timespanRE = regexp.MustCompile(`^([1-9][0-9]{0,6})([smhd])$`)

// correlation parses a correlation rule's correlation section.
func (p *parser) correlation(r *Rule, n *yaml.Node) *correlation {
	const path = "correlation"
	c := &correlation{}
	if n.Kind != yaml.MappingNode {
		p.fail(path, "want a mapping (type, rules, group-by, timespan, condition)")
		return c
	}
	var typ string
	var condition *yaml.Node
	pairs(n, func(key string, v *yaml.Node) {
		kp := path + "." + key
		switch key {
		case "type":
			typ = p.text(kp, v, true)
		case "rules":
			c.refs = p.texts(kp, v)
		case "group-by":
			c.groupBy = p.texts(kp, v)
			for i, f := range c.groupBy {
				g, msg := field(f)
				if msg != "" {
					p.fail(trail.PathIndex(kp, i), "%s", msg)
				}
				c.groups = append(c.groups, g)
			}
		case "timespan":
			c.span = p.timespan(kp, v)
		case "condition":
			condition = v
		case "generate":
			c.generate = p.boolean(kp, v)
		case "aliases":
			p.fail(kp, "field name aliases are not supported")
		default:
			p.fail(kp, "not supported (a correlation has type, rules, group-by, timespan, condition and generate)")
		}
	})
	switch {
	case typ == "":
		if !hasKey(n, "type") {
			p.fail(path+".type", "required")
		}
	case typ == string(KindEventCount) || typ == string(KindValueCount):
		r.kind = Kind(typ)
	case slices.Contains(refusedCorrelations, typ):
		p.fail(path+".type", "correlation type %s not supported (supported: event_count, value_count)", typ)
	default:
		p.fail(path+".type", "unknown correlation type %q (supported: event_count, value_count)", typ)
	}
	if len(c.refs) == 0 {
		p.fail(path+".rules", "required: the rules whose matches it counts")
	}
	if c.span == 0 && !hasKey(n, "timespan") {
		p.fail(path+".timespan", "required")
	}
	if condition == nil {
		p.fail(path+".condition", "required")
		return c
	}
	p.condition(c, r.kind, path+".condition", condition)
	return c
}

func (p *parser) timespan(path string, v *yaml.Node) time.Duration {
	m := timespanRE.FindStringSubmatch(v.Value)
	if v.Kind != yaml.ScalarNode || m == nil {
		p.fail(path, "want a number and a unit: s, m, h or d (90m, 1h, 7d)")
		return 0
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	unit := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour}[m[2]]
	d := time.Duration(n) * unit
	if d > MaxTimespan {
		p.fail(path, "longer than %d days: windows are held in memory", MaxTimespan/(24*time.Hour))
		return 0
	}
	return d
}

// condition parses a correlation's condition: gt, gte, lt, lte and eq
// (all must hold), and for value_count the field whose values count.
func (p *parser) condition(c *correlation, k Kind, path string, v *yaml.Node) {
	if v.Kind != yaml.MappingNode {
		p.fail(path, "want a mapping (gte: 10)")
		return
	}
	pairs(v, func(key string, x *yaml.Node) {
		switch key {
		case "gt", "gte", "lt", "lte", "eq":
			n, err := strconv.ParseInt(x.Value, 10, 64)
			if x.Kind != yaml.ScalarNode || x.ShortTag() != "!!int" || err != nil || n < 0 {
				p.fail(path+"."+key, "want a whole number, 0 or more")
				return
			}
			c.bounds = append(c.bounds, bound{op: key, n: n})
		case "field":
			c.field = p.text(path+".field", x, true)
			if g, msg := field(c.field); msg != "" {
				p.fail(path+".field", "%s", msg)
			} else {
				c.value = g
			}
		default:
			p.fail(path+"."+key, "not supported (a condition has gt, gte, lt, lte, eq and, for value_count, field)")
		}
	})
	if len(c.bounds) == 0 {
		p.fail(path, "needs gt, gte, lt, lte or eq")
	}
	switch {
	case k == KindValueCount && c.field == "" && !hasKey(v, "field"):
		p.fail(path+".field", "required: value_count counts the distinct values of a field")
	case k == KindEventCount && hasKey(v, "field"):
		p.fail(path+".field", "only value_count counts a field's values")
	}
}
