package detect

import (
	"fmt"
	"path"
	"strings"
)

// A condition is a Sigma detection's condition, compiled: a tree over
// the rule's selections.
type cond struct {
	op   condOp
	kids []*cond
	sels []int // condSel: one; condAny, condAll: those the pattern names
}

type condOp uint8

const (
	condSel condOp = iota
	condAnd
	condOr
	condNot
	condAny // 1 of PATTERN
	condAll // all of PATTERN
)

// scratch is what evaluating rules over one event needs: each selection's
// result once computed, and a buffer for field values. One engine owns
// one, so a rule set can be shared by engines running at once.
type scratch struct {
	memo []int8 // per selection: 0 not yet, 1 true, -1 false
	buf  []val
}

func (c *cond) eval(r *Rule, in *input, s *scratch) bool {
	switch c.op {
	case condSel:
		return selected(r, c.sels[0], in, s)
	case condAnd:
		for _, k := range c.kids {
			if !k.eval(r, in, s) {
				return false
			}
		}
		return true
	case condOr:
		for _, k := range c.kids {
			if k.eval(r, in, s) {
				return true
			}
		}
		return false
	case condNot:
		return !c.kids[0].eval(r, in, s)
	case condAny:
		for _, i := range c.sels {
			if selected(r, i, in, s) {
				return true
			}
		}
		return false
	default: // condAll
		for _, i := range c.sels {
			if !selected(r, i, in, s) {
				return false
			}
		}
		return true
	}
}

func selected(r *Rule, i int, in *input, s *scratch) bool {
	if m := s.memo[i]; m != 0 {
		return m > 0
	}
	ok, buf := r.sels[i].match(in, s.buf)
	s.buf = buf
	s.memo[i] = -1
	if ok {
		s.memo[i] = 1
	}
	return ok
}

// Bounds on a condition, so that a hostile rule costs little to refuse.
const (
	maxConditionLen   = 4096
	maxConditionDepth = 32
)

// parseCondition compiles the condition text against the rule's selections
// (names[i] is selection i). The grammar, least binding first: or, and,
// not, "1 of" / "all of" (a pattern with * wildcards, or them), then
// parentheses.
func parseCondition(text string, names []string) (*cond, string) {
	if len(text) > maxConditionLen {
		return nil, fmt.Sprintf("longer than %d characters", maxConditionLen)
	}
	toks, msg := tokenize(text)
	if msg != "" {
		return nil, msg
	}
	if len(toks) == 0 {
		return nil, "empty"
	}
	p := &condParser{toks: toks, names: names}
	c, msg := p.or(0)
	if msg == "" && p.i < len(p.toks) {
		msg = fmt.Sprintf("unexpected %q", p.toks[p.i])
	}
	return c, msg
}

func tokenize(text string) ([]string, string) {
	var toks []string
	for i := 0; i < len(text); {
		c := text[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(' || c == ')':
			toks = append(toks, string(c))
			i++
		case isWordByte(c):
			j := i
			for j < len(text) && isWordByte(text[j]) {
				j++
			}
			toks = append(toks, text[i:j])
			i = j
		case c == '|':
			return nil, "aggregations after | (count() by …) are not supported: write a correlation rule (event_count, value_count)"
		default:
			return nil, fmt.Sprintf("unexpected character %q", c)
		}
	}
	return toks, ""
}

func isWordByte(c byte) bool {
	return c == '_' || c == '*' || c == '-' || c == '.' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

type condParser struct {
	toks  []string
	i     int
	names []string
}

func (p *condParser) peek() string {
	if p.i < len(p.toks) {
		return strings.ToLower(p.toks[p.i])
	}
	return ""
}

func (p *condParser) binary(depth int, op condOp, word string, next func(int) (*cond, string)) (*cond, string) {
	first, msg := next(depth)
	if msg != "" {
		return nil, msg
	}
	c := &cond{op: op, kids: []*cond{first}}
	for p.peek() == word {
		p.i++
		k, msg := next(depth)
		if msg != "" {
			return nil, msg
		}
		c.kids = append(c.kids, k)
	}
	if len(c.kids) == 1 {
		return first, ""
	}
	return c, ""
}

func (p *condParser) or(depth int) (*cond, string) {
	if depth > maxConditionDepth {
		return nil, fmt.Sprintf("nested deeper than %d", maxConditionDepth)
	}
	return p.binary(depth, condOr, "or", p.and)
}

func (p *condParser) and(depth int) (*cond, string) { return p.binary(depth, condAnd, "and", p.not) }

func (p *condParser) not(depth int) (*cond, string) {
	if p.peek() != "not" {
		return p.atom(depth)
	}
	p.i++
	if depth > maxConditionDepth {
		return nil, fmt.Sprintf("nested deeper than %d", maxConditionDepth)
	}
	k, msg := p.not(depth + 1)
	if msg != "" {
		return nil, msg
	}
	return &cond{op: condNot, kids: []*cond{k}}, ""
}

func (p *condParser) atom(depth int) (*cond, string) {
	tok := p.peek()
	switch tok {
	case "":
		return nil, "ends where a search identifier, not, 1 of, all of or ( should follow"
	case "(":
		p.i++
		c, msg := p.or(depth + 1)
		if msg != "" {
			return nil, msg
		}
		if p.peek() != ")" {
			return nil, "a ( is not closed"
		}
		p.i++
		return c, ""
	case ")", "and", "or", "of", "them":
		return nil, fmt.Sprintf("unexpected %q", p.toks[p.i])
	case "near":
		return nil, "near is not supported: write a temporal correlation rule (not supported either) or a Go rule"
	}
	if p.i+1 < len(p.toks) && strings.ToLower(p.toks[p.i+1]) == "of" {
		return p.of(tok)
	}
	p.i++
	for i, n := range p.names {
		if n == p.toks[p.i-1] {
			return &cond{op: condSel, sels: []int{i}}, ""
		}
	}
	return nil, fmt.Sprintf("%q is not a search identifier of the detection", p.toks[p.i-1])
}

// of compiles "1 of PATTERN" and "all of PATTERN" (PATTERN may be them).
func (p *condParser) of(quant string) (*cond, string) {
	op := condAny
	switch quant {
	case "1":
	case "all":
		op = condAll
	default:
		return nil, fmt.Sprintf("%q of: only 1 of and all of are supported", p.toks[p.i])
	}
	p.i += 2
	pattern := p.peek()
	if pattern == "" || pattern == "(" || pattern == ")" {
		return nil, quant + " of: a search identifier pattern or them must follow"
	}
	pattern = p.toks[p.i]
	p.i++
	c := &cond{op: op}
	for i, n := range p.names {
		var ok bool
		if strings.EqualFold(pattern, "them") {
			ok = !strings.HasPrefix(n, "_")
		} else {
			ok, _ = path.Match(pattern, n) // names and patterns hold no / or [ (checked when parsed)
		}
		if ok {
			c.sels = append(c.sels, i)
		}
	}
	if len(c.sels) == 0 {
		return nil, fmt.Sprintf("%s of %s names no search identifier", quant, pattern)
	}
	return c, ""
}
