package detect

import (
	"fmt"
	"time"

	"github.com/trailaudit/trail"
)

// CursorPrefix starts the name of every rule set's cursor: a set named N
// keeps its position in each tenant's log as the consumer "detect.N".
const CursorPrefix = "detect."

// Set is a named set of rules that run together over a tenant's log, from
// a cursor of their own (CursorPrefix + Name). A correlation rule counts
// the matches of rules of its own set.
type Set struct {
	Name  string
	rules []*Rule
	span  time.Duration // the longest timespan of its correlations
	sels  int           // the most selections of any rule (scratch size)
}

// NewSet returns the set of rules named name. Each rule needs an id or a
// name, unique in the set; each rule a correlation names must be a
// detection rule of the set. A detection rule a correlation counts alerts
// by itself only when that correlation says generate: true.
func NewSet(name string, rules ...*Rule) (*Set, error) {
	if name == "" || trail.CheckCursorName(CursorPrefix+name) != nil {
		return nil, trail.Invalid("bad rule set", trail.FieldError{Path: "name",
			Message: fmt.Sprintf("1 to %d printable characters, no spaces", 200-len(CursorPrefix))})
	}
	s := &Set{Name: name}
	byRef := map[string]*Rule{}
	var fe []trail.FieldError
	for i, r := range rules {
		p := trail.PathIndex("rules", i)
		if r.Ref() == "" {
			fe = append(fe, trail.FieldError{Path: p + ".id", Message: "a rule in a set needs an id or a name"})
			continue
		}
		for _, k := range []string{r.ID, r.Name} {
			if k == "" {
				continue
			}
			if _, dup := byRef[k]; dup {
				fe = append(fe, trail.FieldError{Path: p + ".id", Message: fmt.Sprintf("%q names two rules of the set", k)})
			}
			byRef[k] = r
		}
	}
	// Resolve references on copies: a Rule is shared, and may sit in
	// several sets, counted by a correlation in one and not in another.
	copies := make(map[*Rule]*Rule, len(rules))
	for _, r := range rules {
		c := *r
		c.refd = false
		copies[r] = &c
		s.rules = append(s.rules, &c)
	}
	for i, r := range s.rules {
		s.sels = max(s.sels, len(r.sels))
		if r.corr == nil {
			continue
		}
		corr := *r.corr
		corr.rules = nil
		for j, ref := range corr.refs {
			p := trail.PathIndex(trail.PathIndex("rules", i)+".correlation.rules", j)
			t, ok := byRef[ref]
			switch {
			case !ok:
				fe = append(fe, trail.FieldError{Path: p, Message: fmt.Sprintf("no rule of the set has the id or name %q", ref)})
			case t.kind != KindDetection:
				fe = append(fe, trail.FieldError{Path: p, Message: fmt.Sprintf("%q is a %s rule: a correlation counts detection rules only", ref, t.kind)})
			default:
				c := copies[t]
				if !corr.generate {
					c.refd = true
				}
				corr.rules = append(corr.rules, c)
			}
		}
		r.corr = &corr
		s.span = max(s.span, corr.span)
	}
	if len(fe) > 0 {
		return nil, trail.Invalid("bad rule set", fe...)
	}
	return s, nil
}

// Rules returns the set's rules.
func (s *Set) Rules() []*Rule { return append([]*Rule(nil), s.rules...) }

// Rule returns the rule of the set whose id or name is ref, or nil.
func (s *Set) Rule(ref string) *Rule {
	for _, r := range s.rules {
		if r.ID == ref || r.Name == ref {
			return r
		}
	}
	return nil
}
