// Package catalog is Trail's action catalog: every auditable action of the
// apps Trail was built from, with its category, outcome, the context keys its
// events should carry, compliance tags, severity and default retention.
//
// The catalog is one data file, actions.json, embedded in the binary; the Go
// constants in actions_gen.go (catalog.UserLoginSuccess, …) are generated from
// it with go generate. Apps add their own actions at run time with Register,
// with no code or schema change.
//
// Start with Default, which returns a fresh catalog holding the built-in
// actions; pass it to trail.Validator as its Actions. A catalog shared by
// tenants gives each its own view (For): the shared actions, read-only,
// and the tenant's custom actions, which no other tenant sees; the
// Validator resolves each tenant's events in its view.
package catalog

//go:generate go run gen_main.go

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/trailaudit/trail"
)

//go:embed actions.json
var builtin []byte

var _ trail.TenantResolver = (*Catalog)(nil)

// Catalog holds action definitions by name and alias. It is safe for
// concurrent use: Register may run while events are being validated.
//
// A Catalog is either shared (Default, Parse) or one tenant's view of a
// shared one (For). A view resolves, lists and registers as a catalog
// does, over the shared actions and its own: what is registered in a view
// is in that view alone, and a name a view registers is free in every
// other view. What is registered in the shared catalog itself is in every
// view: the service never does, and a deployment of one tenant may.
type Catalog struct {
	mu         sync.RWMutex
	actions    []*trail.Action          // in file order, then custom actions in registration order (a view: its own)
	byName     map[string]*trail.Action // names and aliases (a view: its own)
	categories []Category               // a view: the categories its own actions added
	retention  []RetentionClass         // a view: none (the shared catalog's)

	base    *Catalog            // a view's shared catalog; nil for a shared one
	tenants map[string]*Catalog // a shared catalog's views, by tenant
}

// For returns tenant's view of the catalog (of the shared catalog, when c
// is a view), made at its first use.
func (c *Catalog) For(tenant string) *Catalog {
	if c.base != nil {
		return c.base.For(tenant)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.tenants[tenant]
	if !ok {
		if c.tenants == nil {
			c.tenants = map[string]*Catalog{}
		}
		v = &Catalog{byName: map[string]*trail.Action{}, base: c}
		c.tenants[tenant] = v
	}
	return v
}

// ForTenant is For as a trail.TenantResolver.
func (c *Catalog) ForTenant(tenant string) trail.ActionResolver { return c.For(tenant) }

// lookup returns the action of exactly name (a name or an alias): the
// shared catalog's, else the view's own. The caller holds c.mu.
func (c *Catalog) lookup(name string) (*trail.Action, bool) {
	if c.base != nil {
		c.base.mu.RLock()
		a, ok := c.base.byName[name]
		c.base.mu.RUnlock()
		if ok {
			return a, true
		}
	}
	a, ok := c.byName[name]
	return a, ok
}

// shared returns the catalog c's shared actions live in: c, or a view's
// base.
func (c *Catalog) shared() *Catalog {
	if c.base != nil {
		return c.base
	}
	return c
}

// Category groups related actions (authentication, entry, remittance, …).
type Category struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// RetentionClass is a named default retention period for actions.
type RetentionClass struct {
	Name        string `json:"name"`
	Days        int    `json:"days"`
	Description string `json:"description"`
}

// File is the layout of the catalog data file.
type File struct {
	Format           int              `json:"format"`
	RetentionClasses []RetentionClass `json:"retention_classes"`
	Categories       []Category       `json:"categories"`
	Actions          []trail.Action   `json:"actions"`
}

// FileFormat is the catalog file format this package reads.
const FileFormat = 1

// Default returns a new catalog holding the built-in actions. Each call
// returns an independent catalog, so custom actions registered in one (say,
// one tenant's) do not leak into another.
func Default() *Catalog {
	c, err := Parse(builtin)
	if err != nil {
		// The embedded file is checked by this package's tests.
		panic("catalog: embedded actions.json: " + err.Error())
	}
	return c
}

// Builtin returns the embedded catalog file, for tools that show or export it.
func Builtin() []byte { return bytes.Clone(builtin) }

// Parse reads a catalog file and checks it whole: every action well formed,
// names and aliases unique, categories and retention classes defined, every
// attempt link pointing at an attempted action.
func Parse(data []byte) (*Catalog, error) {
	var f File
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("catalog file: %w", err)
	}
	if f.Format != FileFormat {
		return nil, fmt.Errorf("catalog file: format %d is not supported (this build reads %d)", f.Format, FileFormat)
	}
	c := &Catalog{byName: map[string]*trail.Action{}, categories: f.Categories, retention: f.RetentionClasses}
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	for i := range f.Actions {
		a := &f.Actions[i]
		if err := a.Check(); err != nil {
			bad("actions[%d] (%s): %v", i, a.Name, err)
			continue
		}
		if !c.hasCategory(a.Category) {
			bad("action %s: category %q is not defined", a.Name, a.Category)
		}
		if _, ok := c.retentionClass(a.Retention); !ok {
			bad("action %s: retention class %q is not defined", a.Name, a.Retention)
		}
		for _, t := range a.Compliance {
			if trail.NormalizeCompliance(t) != t {
				bad("action %s: compliance tag %q should be spelled %q", a.Name, t, trail.NormalizeCompliance(t))
			}
		}
		for _, n := range append([]string{a.Name}, a.Aliases...) {
			if prev, ok := c.byName[n]; ok {
				bad("name %q is used by both %s and %s", n, prev.Name, a.Name)
				continue
			}
			c.byName[n] = a
		}
		c.actions = append(c.actions, a)
	}
	for _, a := range c.actions {
		if a.Attempt == "" {
			continue
		}
		if at, ok := c.byName[a.Attempt]; !ok || at.Name != a.Attempt || at.Outcome != trail.OutcomeAttempted {
			bad("action %s: attempt %q is not an attempted action", a.Name, a.Attempt)
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("catalog file: %s", strings.Join(problems, "; "))
	}
	return c, nil
}

func (c *Catalog) hasCategory(name string) bool {
	return slices.ContainsFunc(c.categories, func(k Category) bool { return k.Name == name })
}

func (c *Catalog) retentionClass(name string) (RetentionClass, bool) {
	i := slices.IndexFunc(c.retention, func(r RetentionClass) bool { return r.Name == name })
	if i < 0 {
		return RetentionClass{}, false
	}
	return c.retention[i], true
}

// Resolve returns the action named name, or the action name is an alias of.
// Names are matched case-insensitively, so the seeds' enum member names
// (LOGIN_SUCCESS) resolve too. The returned action must not be modified.
func (c *Catalog) Resolve(name string) (*trail.Action, bool) {
	c.mu.RLock()
	a, ok := c.lookup(name)
	if !ok {
		a, ok = c.lookup(strings.ToLower(name))
	}
	c.mu.RUnlock()
	return a, ok
}

// Register adds a custom action at run time. The definition must be well
// formed and its name and aliases must not clash with any action's name or
// alias (ECONFLICT). Its retention class defaults to "standard". A custom
// action may use a new category; it is added with no description.
func (c *Catalog) Register(a trail.Action) error {
	a.Custom = true
	a.Sources = nil
	if a.Retention == "" {
		a.Retention = "standard"
	}
	if err := a.Check(); err != nil {
		return err
	}
	a.Aliases, a.Context = slices.Clone(a.Aliases), slices.Clone(a.Context)
	a.Compliance = slices.Clone(a.Compliance)
	for i, t := range a.Compliance {
		a.Compliance[i] = trail.NormalizeCompliance(t)
	}
	if !slices.ContainsFunc(c.RetentionClasses(), func(r RetentionClass) bool { return r.Name == a.Retention }) {
		return trail.Invalid("invalid action definition", trail.FieldError{Path: "retention", Message: fmt.Sprintf("no retention class %q", a.Retention)})
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if a.Attempt != "" {
		if at, ok := c.lookup(a.Attempt); !ok || at.Outcome != trail.OutcomeAttempted {
			return trail.Invalid("invalid action definition", trail.FieldError{Path: "attempt", Message: fmt.Sprintf("%q is not an attempted action", a.Attempt)})
		}
	}
	for _, n := range append([]string{a.Name}, a.Aliases...) {
		if prev, ok := c.lookup(n); ok {
			return trail.Errorf(trail.ECONFLICT, "action name %q is taken by %s", n, prev.Name)
		}
	}
	if slices.Contains(a.Aliases, a.Name) {
		return trail.Invalid("invalid action definition", trail.FieldError{Path: "aliases", Message: "an alias cannot repeat the name"})
	}
	def := &a
	for _, n := range append([]string{a.Name}, a.Aliases...) {
		c.byName[n] = def
	}
	c.actions = append(c.actions, def)
	if !c.hasCategory(a.Category) && (c.base == nil || !slices.ContainsFunc(c.base.Categories(), func(k Category) bool { return k.Name == a.Category })) {
		c.categories = append(c.categories, Category{Name: a.Category})
	}
	return nil
}

// Filter selects actions for Actions. Zero fields match everything.
type Filter struct {
	Category   string
	Compliance string // any spelling NormalizeCompliance understands
	Outcome    trail.Outcome
}

// Actions returns the actions that pass f, in catalog order. The returned
// actions must not be modified.
func (c *Catalog) Actions(f Filter) []*trail.Action {
	tag := ""
	if f.Compliance != "" {
		tag = trail.NormalizeCompliance(f.Compliance)
	}
	var out []*trail.Action
	if c.base != nil {
		out = c.base.Actions(f)
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, a := range c.actions {
		if (f.Category == "" || a.Category == f.Category) &&
			(f.Outcome == "" || a.Outcome == f.Outcome) &&
			(tag == "" || slices.Contains(a.Compliance, tag)) {
			out = append(out, a)
		}
	}
	return out
}

// Categories returns the categories, in catalog order (a view: the shared
// ones, then those its own actions added).
func (c *Catalog) Categories() []Category {
	var out []Category
	if c.base != nil {
		out = c.base.Categories()
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return append(out, c.categories...)
}

// RetentionClasses returns the retention classes, in catalog order.
func (c *Catalog) RetentionClasses() []RetentionClass {
	c = c.shared()
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.Clone(c.retention)
}

// Results returns the actions that close the attempted action attempt, by
// outcome: for user_login_attempted, success is user_login_success and
// failure is user_login_failed. It is how a recorded attempt finds its
// matching result.
func (c *Catalog) Results(attempt string) map[trail.Outcome]*trail.Action {
	out := map[trail.Outcome]*trail.Action{}
	if c.base != nil {
		out = c.base.Results(attempt)
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, a := range c.actions {
		if a.Attempt == attempt {
			if _, dup := out[a.Outcome]; !dup {
				out[a.Outcome] = a
			}
		}
	}
	return out
}
