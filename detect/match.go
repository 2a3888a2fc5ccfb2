package detect

import (
	"net/netip"
	"regexp"
	"strings"
)

// test is one value of a rule's field, compiled: whether an event's value
// matches it.
type test struct {
	fn func(v val) bool
	// absent: the test also holds when the event has no value at all
	// (the rule's value is null or '').
	absent bool
}

// fieldMatch is one key of a selection (FIELD|MODIFIERS: VALUES): the
// event's values of the field against the rule's values. It holds when
// one of the rule's values (all of them, with the all modifier) matches
// one of the event's values.
type fieldMatch struct {
	get    getter
	tests  []test
	all    bool
	exists *bool // the exists modifier: the field has a value (or has none)
}

func (f *fieldMatch) match(in *input, buf []val) (bool, []val) {
	vals := f.get(in, buf[:0])
	if f.exists != nil {
		return (len(vals) > 0) == *f.exists, vals
	}
	for _, t := range f.tests {
		ok := len(vals) == 0 && t.absent
		for i := 0; !ok && i < len(vals); i++ {
			ok = t.fn(vals[i])
		}
		if ok && !f.all {
			return true, vals
		}
		if !ok && f.all {
			return false, vals
		}
	}
	return f.all, vals
}

// selection is a search identifier of a rule's detection: maps (each an
// AND of its fields), any of which matches (a list of maps is an OR).
type selection struct {
	name string
	maps [][]fieldMatch
}

func (s *selection) match(in *input, buf []val) (bool, []val) {
	for _, m := range s.maps {
		ok := true
		for i := range m {
			if ok, buf = m[i].match(in, buf); !ok {
				break
			}
		}
		if ok {
			return true, buf
		}
	}
	return false, buf
}

// stringTest matches the event's value as text against pattern, a Sigma
// string: case-insensitive, with the wildcards * and ? (a backslash
// escapes them and itself), anchored at both ends unless contains,
// startswith or endswith leave an end open.
func stringTest(pattern string, openStart, openEnd bool) test {
	lit, wild := unescape(pattern)
	absent := pattern == "" && !openStart && !openEnd
	if !wild && !openStart && !openEnd {
		return test{absent: absent, fn: func(v val) bool {
			return v.kind != kindNull && v.kind != kindOther && strings.EqualFold(v.text(), lit)
		}}
	}
	re := regexp.MustCompile(wildcardRegexp(pattern, openStart, openEnd)) // QuoteMeta'd: always compiles
	return test{absent: absent, fn: func(v val) bool {
		return v.kind != kindNull && v.kind != kindOther && re.MatchString(v.text())
	}}
}

// unescape returns pattern with its escapes resolved, and whether it holds
// an unescaped wildcard.
func unescape(pattern string) (string, bool) {
	var b strings.Builder
	wild := false
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		switch {
		case c == '\\' && i+1 < len(pattern) && strings.IndexByte(`*?\`, pattern[i+1]) >= 0:
			i++
			b.WriteByte(pattern[i])
		case c == '*' || c == '?':
			wild = true
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), wild
}

// wildcardRegexp turns a Sigma string into an equivalent regular
// expression.
func wildcardRegexp(pattern string, openStart, openEnd bool) string {
	var b strings.Builder
	b.WriteString(`(?is)`)
	if !openStart {
		b.WriteString(`\A`)
	}
	lit := func(c byte) { b.WriteString(regexp.QuoteMeta(string(c))) }
	for i := 0; i < len(pattern); i++ {
		switch c := pattern[i]; {
		case c == '\\' && i+1 < len(pattern) && strings.IndexByte(`*?\`, pattern[i+1]) >= 0:
			i++
			lit(pattern[i])
		case c == '*':
			b.WriteString(`.*`)
		case c == '?':
			b.WriteString(`.`)
		default:
			lit(c)
		}
	}
	if !openEnd {
		b.WriteString(`\z`)
	}
	return b.String()
}

// numberTest compares a number the rule gives with the event's value, a
// number or text: equal (as text, the way Sigma compares), or by op.
func numberTest(n float64, op string) test {
	switch op {
	case "gt":
		return test{fn: func(v val) bool { x, ok := v.number(); return ok && x > n }}
	case "gte":
		return test{fn: func(v val) bool { x, ok := v.number(); return ok && x >= n }}
	case "lt":
		return test{fn: func(v val) bool { x, ok := v.number(); return ok && x < n }}
	case "lte":
		return test{fn: func(v val) bool { x, ok := v.number(); return ok && x <= n }}
	}
	return test{fn: func(v val) bool { x, ok := v.number(); return ok && x == n }}
}

func boolTest(b bool) test {
	return test{fn: func(v val) bool {
		return (v.kind == kindBool && v.b == b) || (v.kind == kindString && strings.EqualFold(v.s, boolText(b)))
	}}
}

func boolText(b bool) string { return val{kind: kindBool, b: b}.text() }

var nullTest = test{absent: true, fn: func(v val) bool { return v.kind == kindNull }}

func regexpTest(re *regexp.Regexp) test {
	return test{fn: func(v val) bool { return v.kind != kindNull && v.kind != kindOther && re.MatchString(v.text()) }}
}

func cidrTest(p netip.Prefix) test {
	return test{fn: func(v val) bool {
		if v.kind != kindString {
			return false
		}
		a, err := netip.ParseAddr(v.s)
		return err == nil && p.Contains(a.Unmap())
	}}
}
