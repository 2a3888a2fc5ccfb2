package catalog

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/trailaudit/trail"
)

// Nearest returns up to n names of actions in the catalog nearest to name
// by edit distance (Levenshtein, case ignored, over each action's name and
// aliases), nearest first and then in catalog order; only names within a
// third of name's length (at least 2 edits) are near enough.
func (c *Catalog) Nearest(name string, n int) []string {
	name = strings.ToLower(name)
	limit := max(2, len([]rune(name))/3)
	type near struct {
		name string
		d, i int
	}
	var found []near
	for i, a := range c.Actions(Filter{}) { // a tenant's view: the built-in ones, then its own
		best := limit + 1
		for _, s := range append([]string{a.Name}, a.Aliases...) {
			best = min(best, editDistance(name, strings.ToLower(s), limit+1))
		}
		if best <= limit {
			found = append(found, near{a.Name, best, i})
		}
	}
	slices.SortFunc(found, func(a, b near) int {
		if a.d != b.d {
			return a.d - b.d
		}
		return a.i - b.i
	})
	out := make([]string, 0, min(n, len(found)))
	for _, f := range found[:min(n, len(found))] {
		out = append(out, f.name)
	}
	return out
}

// editDistance returns the Levenshtein distance of a and b in runes, or
// bound when it is at least bound (the rest is not worked out).
func editDistance(a, b string, bound int) int {
	ra, rb := []rune(a), []rune(b)
	if d := len(ra) - len(rb); d >= bound || -d >= bound {
		return bound
	}
	prev, cur := make([]int, len(rb)+1), make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			rowMin = min(rowMin, cur[j])
		}
		if rowMin >= bound {
			return bound
		}
		prev, cur = cur, prev
	}
	return min(prev[len(rb)], bound)
}

// ResolveQueryActions returns q with each action it filters by under the
// name the log records it by (an alias, or another case, resolved to the
// action's name), or an EINVALID error naming the field "action" when one
// is an action that q's tenant's view of c (For) does not know and that no event of q's tenant in s
// carries (a tenant allowed unregistered custom actions still finds its
// own): such a filter can only match nothing, which is a mistake worth
// saying, with the nearest known names. A failed search is the store's
// error.
func ResolveQueryActions(ctx context.Context, c *Catalog, s trail.Store, q trail.Query) (trail.Query, error) {
	if len(q.Actions) == 0 {
		return q, nil
	}
	c = c.For(q.Tenant)
	names := make([]string, len(q.Actions))
	for i, name := range q.Actions {
		if a, ok := c.Resolve(name); ok {
			names[i] = a.Name
			continue
		}
		names[i] = name
		p, err := s.Query(ctx, trail.Query{Tenant: q.Tenant, Actions: []string{name}, Limit: 1})
		if err != nil {
			return q, err
		}
		if len(p.Events) > 0 {
			continue
		}
		msg := fmt.Sprintf("%q is not an action the catalog knows, and no event of the tenant has it", name)
		if near := c.Nearest(name, 3); len(near) > 0 {
			msg += "; nearest: " + strings.Join(near, ", ")
		}
		return q, trail.Invalid("unknown action", trail.FieldError{Path: "action", Message: msg})
	}
	q.Actions = names
	return q, nil
}
