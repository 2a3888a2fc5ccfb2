package trail

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// RuleFile is one of a tenant's own detection rule files: Sigma YAML
// (package detect parses and runs it), kept by name. A file may hold
// several rules (YAML documents separated by ---), such as a correlation
// and the rules it counts.
type RuleFile struct {
	Tenant string `json:"tenant"`
	// Name names the file in its tenant (a URL path segment: 1 to 64
	// lower-case letters, digits, '-' and '_').
	Name string `json:"name"`
	// YAML is the file's text, as put.
	YAML      string    `json:"yaml"`
	CreatedAt time.Time `json:"created_at"` // when this version was put
	CreatedBy string    `json:"created_by"` // who put it
}

// MaxRuleFileSize is the largest rule file a tenant may keep (and the
// largest detect.ParseRules reads).
const MaxRuleFileSize = 1 << 20

// RuleStore keeps tenants' own detection rule files, in the store's
// database.
//
// Contract: PutRule checks the file (PrepareRule; a zero CreatedAt is the
// store's clock) and stores it, replacing the tenant's file of that name
// if there is one; GetRule returns one, or ENOTFOUND; Rules lists a
// tenant's files (every tenant's for "") by tenant and name, in byte
// order; DeleteRule removes one, or returns ENOTFOUND. A tenant's files
// are never another's: GetRule and DeleteRule find only the tenant's own.
// Whether the text is a rule Trail can run is package detect's to say,
// before PutRule (detect.PutRules).
type RuleStore interface {
	PutRule(ctx context.Context, f *RuleFile) error
	GetRule(ctx context.Context, tenant, name string) (*RuleFile, error)
	Rules(ctx context.Context, tenant string) ([]*RuleFile, error)
	DeleteRule(ctx context.Context, tenant, name string) error
}

// PrepareRule checks a rule file and returns a copy with its time in UTC
// and a zero CreatedAt set to now: what every RuleStore's PutRule does
// first. It names every bad field.
func PrepareRule(f *RuleFile, now time.Time) (*RuleFile, error) {
	if f == nil {
		return nil, Invalid("bad rule file", FieldError{Path: "name", Message: "required"})
	}
	p := *f
	if p.CreatedAt.IsZero() {
		p.CreatedAt = now
	}
	p.CreatedAt = p.CreatedAt.UTC()
	var fe []FieldError
	bad := func(path, msg string) { fe = append(fe, FieldError{Path: path, Message: msg}) }
	if m := CheckTenant(p.Tenant); m != "" {
		bad("tenant", m)
	}
	if m := CheckTenant(p.Name); m != "" {
		bad("name", m)
	}
	switch {
	case strings.TrimSpace(p.YAML) == "":
		bad("yaml", "required: the Sigma rules, as YAML")
	case len(p.YAML) > MaxRuleFileSize:
		bad("yaml", fmt.Sprintf("%d bytes; the limit is %d", len(p.YAML), MaxRuleFileSize))
	case !utf8.ValidString(p.YAML) || strings.ContainsRune(p.YAML, 0):
		bad("yaml", "not UTF-8 text (or holds NUL)")
	}
	if f := CheckTime("created_at", p.CreatedAt); f != nil {
		fe = append(fe, *f)
	}
	if len(p.CreatedBy) > MaxNameLen {
		bad("created_by", fmt.Sprintf("longer than %d bytes", MaxNameLen))
	}
	if len(fe) > 0 {
		return nil, Invalid("bad rule file", fe...)
	}
	return &p, nil
}
