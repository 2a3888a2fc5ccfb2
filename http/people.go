package http

// People: who may sign in to the web UI as themselves, rather than with
// an API key. A people file (trail serve --people FILE) names the OpenID
// Connect provider Trail signs people in with, and the rules that map a
// person's email and groups, as the provider asserts them, to one tenant
// and the scopes they have there. ParsePeople reads it.

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/trailaudit/trail"
)

// People is a parsed people file.
type People struct {
	// OIDC is the provider people sign in with; nil when the file names
	// none.
	OIDC *OIDCProvider
	// Rules map people to tenants, in the file's order: the first that
	// matches a person decides.
	Rules []PersonRule
	// ProxyHeaders, when set (the file's proxy-headers line), believes
	// the identity headers of an identity-aware proxy (proxy.go) on
	// requests from a trusted proxy's address (Config.TrustedProxies).
	ProxyHeaders bool
}

// OIDCProvider is an OpenID Connect provider and Trail's registration
// with it.
type OIDCProvider struct {
	Issuer       string // its issuer URL, exactly as its ID tokens name it
	ClientID     string
	ClientSecret string
	// RedirectURL is Trail's callback as registered with the provider:
	// https://TRAIL/ui/oidc/callback.
	RedirectURL string
	// Scopes are asked for beside openid (default email profile).
	Scopes []string
	// GroupsClaim is the ID token's claim listing the person's groups
	// (default groups).
	GroupsClaim string
}

// PersonRule maps the people with an email, or in a group, to a tenant
// and scopes.
type PersonRule struct {
	Line   int    // where it is in the file
	Email  string // matches this email, case-insensitively; or
	Group  string // matches a member of this group, exactly
	Tenant string
	Scopes []trail.KeyScope
}

// Match returns the first rule that maps the person with email and
// groups, or nil when none does: that person may not sign in.
func (p *People) Match(email string, groups []string) *PersonRule {
	for i := range p.Rules {
		r := &p.Rules[i]
		if (r.Email != "" && email != "" && strings.EqualFold(r.Email, email)) || (r.Group != "" && slices.Contains(groups, r.Group)) {
			return r
		}
	}
	return nil
}

// ParsePeople reads a people file: one statement a line, blank lines and
// # comments (whole lines, or after a statement) ignored:
//
//	issuer URL                  the OpenID Connect provider's issuer
//	client-id ID                Trail's client at the provider
//	client-secret SECRET        and its secret
//	redirect-url URL            https://TRAIL/ui/oidc/callback, as registered
//	oidc-scopes SCOPE...        beside openid (default: email profile)
//	groups-claim NAME           the claim listing groups (default: groups)
//	map email=ADDRESS|group=NAME tenant=TENANT scopes=SCOPE,...
//	proxy-headers               believe an identity-aware proxy's headers
//
// The provider's lines are all there or none; at least one map line is.
// Anything else fails (EINVALID), naming the line and the field.
func ParsePeople(text string) (*People, error) {
	p := &People{}
	var o OIDCProvider
	seen := map[string]int{} // statement -> line, for those said once
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		if c := strings.Index(line, "#"); c >= 0 {
			line = line[:c]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		st := f[0]
		if st != "map" {
			if at, ok := seen[st]; ok {
				return nil, peopleErr(n, "a second %s (the first is on line %d)", st, at)
			}
			seen[st] = n
		}
		one := func(what string) (string, error) {
			if len(f) != 2 {
				return "", peopleErr(n, "want: %s %s", st, what)
			}
			return f[1], nil
		}
		var err error
		switch st {
		case "issuer":
			if o.Issuer, err = one("URL"); err == nil {
				err = checkURL(n, st, o.Issuer)
			}
		case "client-id":
			o.ClientID, err = one("ID")
		case "client-secret":
			o.ClientSecret, err = one("SECRET")
		case "redirect-url":
			if o.RedirectURL, err = one("URL"); err == nil {
				err = checkURL(n, st, o.RedirectURL)
			}
		case "oidc-scopes":
			if len(f) < 2 {
				err = peopleErr(n, "want: oidc-scopes SCOPE...")
			}
			o.Scopes = f[1:]
		case "groups-claim":
			o.GroupsClaim, err = one("NAME")
		case "proxy-headers":
			if len(f) != 1 {
				err = peopleErr(n, "want: proxy-headers (no value)")
			}
			p.ProxyHeaders = true
		case "map":
			var r *PersonRule
			if r, err = parseRule(n, f[1:]); err == nil {
				p.Rules = append(p.Rules, *r)
			}
		default:
			err = peopleErr(n, "unknown statement %q: want issuer, client-id, client-secret, redirect-url, oidc-scopes, groups-claim, proxy-headers or map", truncate(st, 40))
		}
		if err != nil {
			return nil, err
		}
	}
	provider := []string{"issuer", "client-id", "client-secret", "redirect-url"}
	given := 0
	for _, st := range provider {
		if _, ok := seen[st]; ok {
			given++
		}
	}
	switch {
	case given == len(provider):
		if o.Scopes == nil {
			o.Scopes = []string{"email", "profile"}
		}
		if o.GroupsClaim == "" {
			o.GroupsClaim = "groups"
		}
		p.OIDC = &o
	case given > 0 || seen["oidc-scopes"] > 0 || seen["groups-claim"] > 0:
		var missing []string
		for _, st := range provider {
			if _, ok := seen[st]; !ok {
				missing = append(missing, st)
			}
		}
		return nil, trail.Errorf(trail.EINVALID, "people file: the provider lacks %s (issuer, client-id, client-secret and redirect-url go together)", strings.Join(missing, ", "))
	}
	if len(p.Rules) == 0 {
		return nil, trail.Errorf(trail.EINVALID, "people file: no map line, so nobody could sign in (map email=ADDRESS|group=NAME tenant=TENANT scopes=read)")
	}
	return p, nil
}

// parseRule reads the fields of a map line.
func parseRule(n int, fields []string) (*PersonRule, error) {
	r := &PersonRule{Line: n}
	got := map[string]bool{}
	for _, kv := range fields {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || v == "" {
			return nil, peopleErr(n, "%q: want NAME=VALUE (email, group, tenant, scopes)", truncate(kv, 40))
		}
		if got[k] {
			return nil, peopleErr(n, "%s is given twice", k)
		}
		got[k] = true
		switch k {
		case "email":
			if !strings.Contains(v, "@") {
				return nil, peopleErr(n, "email %q: want an address", truncate(v, 40))
			}
			r.Email = v
		case "group":
			r.Group = v
		case "tenant":
			if m := trail.CheckTenant(v); m != "" {
				return nil, peopleErr(n, "tenant: %s", m)
			}
			r.Tenant = v
		case "scopes":
			for sc := range strings.SplitSeq(v, ",") {
				if !trail.KeyScope(sc).Valid() {
					return nil, peopleErr(n, "scopes: %q is not a scope (read, export, verify, ingest, admin)", truncate(sc, 40))
				}
				if !slices.Contains(r.Scopes, trail.KeyScope(sc)) {
					r.Scopes = append(r.Scopes, trail.KeyScope(sc))
				}
			}
		default:
			return nil, peopleErr(n, "unknown field %q: want email or group, tenant, scopes", truncate(k, 40))
		}
	}
	switch {
	case r.Email == "" && r.Group == "":
		return nil, peopleErr(n, "want email=ADDRESS or group=NAME: whom the line maps")
	case r.Email != "" && r.Group != "":
		return nil, peopleErr(n, "email and group on one line: give each its own map line")
	case r.Tenant == "":
		return nil, peopleErr(n, "tenant: required")
	case len(r.Scopes) == 0:
		return nil, peopleErr(n, "scopes: required (read, export, verify, ingest, admin; comma-separated)")
	}
	return r, nil
}

// checkURL refuses a URL that is not absolute http or https.
func checkURL(n int, st, s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return peopleErr(n, "%s %q: want an absolute https URL", st, truncate(s, 40))
	}
	return nil
}

func peopleErr(n int, format string, args ...any) error {
	return trail.Errorf(trail.EINVALID, "people file: line %d: %s", n, fmt.Sprintf(format, args...))
}
