package detect

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/ledger"
)

// TenantSet is the name of the set a tenant's own rule files run in: its
// cursor is "detect.tenant" in the tenant's log.
const TenantSet = "tenant"

// Putting and removing a tenant's rule file changes what runs over its
// log, so each is recorded in that log first (ledger.RecordChange:
// admin_config_changed, config_key "rules:NAME", the file's digest, size
// and rules, not its text), as stream/sinks records its sinks.

// PutRules checks f's Sigma text (ParseRules, then the tenant's set with
// it: no id or name twice, every correlation's rules there), records the
// change in the tenant's log by actor and stores the file, replacing the
// tenant's file of that name. It returns the file as stored, whether it
// replaced one, and the seq of the record. A refused rule is EINVALID
// naming the field as ParseRules does; nothing is then recorded. A zero
// CreatedAt is now; a zero CreatedBy is the actor's id.
func PutRules(ctx context.Context, store trail.RuleStore, w ledger.Writer, f *trail.RuleFile, actor trail.Actor, now time.Time) (*trail.RuleFile, bool, uint64, error) {
	in := *f
	if in.CreatedBy == "" {
		in.CreatedBy = actor.ID
	}
	p, err := trail.PrepareRule(&in, now)
	if err != nil {
		return nil, false, 0, err
	}
	files, err := store.Rules(ctx, p.Tenant)
	if err != nil {
		return nil, false, 0, err
	}
	var old *trail.RuleFile
	others := files[:0:0]
	for _, o := range files {
		if o.Name == p.Name {
			old = o
		} else {
			others = append(others, o)
		}
	}
	rules, err := ParseRules([]byte(p.YAML))
	if err != nil {
		return nil, false, 0, err
	}
	set := append(others, p)
	slices.SortFunc(set, func(a, b *trail.RuleFile) int { return strings.Compare(a.Name, b.Name) })
	if _, err := tenantSet(set, map[string][]*Rule{p.Name: rules}); err != nil {
		return nil, false, 0, err
	}
	seq, err := ledger.RecordChange(ctx, w, p.Tenant, "rules:"+p.Name, shown(old, nil), shown(p, rules), actor)
	if err != nil {
		return nil, false, 0, err
	}
	if err := store.PutRule(ctx, p); err != nil {
		return nil, false, seq, ledger.NotDone(err, seq, "the rule file was not stored")
	}
	return p, old != nil, seq, nil
}

// RemoveRules records the removal of tenant's rule file name by actor and
// removes it, and returns the seq of the record. An unknown file is
// ENOTFOUND, and nothing is recorded.
func RemoveRules(ctx context.Context, store trail.RuleStore, w ledger.Writer, tenant, name string, actor trail.Actor) (uint64, error) {
	old, err := store.GetRule(ctx, tenant, name)
	if err != nil {
		return 0, err
	}
	seq, err := ledger.RecordChange(ctx, w, tenant, "rules:"+name, shown(old, nil), nil, actor)
	if err != nil {
		return 0, err
	}
	if err := store.DeleteRule(ctx, tenant, name); err != nil {
		return seq, ledger.NotDone(err, seq, "the rule file was not removed")
	}
	return seq, nil
}

// TenantRules returns the set of a tenant's rule files (TenantSet), or nil
// when it has none.
func TenantRules(files []*trail.RuleFile) (*Set, error) {
	if len(files) == 0 {
		return nil, nil
	}
	return tenantSet(files, nil)
}

// tenantSet parses files (but those parsed already) into one set. An
// error names the file.
func tenantSet(files []*trail.RuleFile, parsed map[string][]*Rule) (*Set, error) {
	var all []*Rule
	for _, f := range files {
		rs, ok := parsed[f.Name]
		if !ok {
			var err error
			if rs, err = ParseRules([]byte(f.YAML)); err != nil {
				return nil, fmt.Errorf("detect: tenant %s's rule file %s: %w", f.Tenant, f.Name, err)
			}
		}
		all = append(all, rs...)
	}
	s, err := NewSet(TenantSet, all...)
	if err != nil {
		return nil, &trail.Error{Code: trail.ErrorCode(err), Err: err, Fields: trail.ErrorFields(err),
			Message: "with the tenant's other rule files: " + trail.ErrorMessage(err) + " (rules[i] counts the rules of every file, in name order)"}
	}
	return s, nil
}

// shown is f as a record holds it: its name, size, digest and the rules
// in it (rules: parsed already, or nil), never its text; nil for none.
func shown(f *trail.RuleFile, rules []*Rule) any {
	if f == nil {
		return nil
	}
	if rules == nil {
		rules, _ = ParseRules([]byte(f.YAML))
	}
	refs := make([]any, len(rules))
	for i, r := range rules {
		refs[i] = r.Ref()
	}
	sum := sha256.Sum256([]byte(f.YAML))
	return map[string]any{"name": f.Name, "bytes": len(f.YAML), "sha256": hex.EncodeToString(sum[:]), "rules": refs}
}
