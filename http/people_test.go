package http_test

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/trailaudit/trail"
	trailhttp "github.com/trailaudit/trail/http"
)

func TestParsePeople(t *testing.T) {
	b, err := os.ReadFile("testdata/people.txt")
	if err != nil {
		t.Fatal(err)
	}
	p, err := trailhttp.ParsePeople(string(b))
	if err != nil {
		t.Fatal(err)
	}
	want := &trailhttp.People{
		OIDC: &trailhttp.OIDCProvider{Issuer: "https://idp.example.com/", ClientID: "trail", ClientSecret: "s3cret",
			RedirectURL: "https://trail.example.com/ui/oidc/callback", Scopes: []string{"email", "profile"}, GroupsClaim: "roles"},
		Rules: []trailhttp.PersonRule{
			{Line: 8, Email: "ciso@example.com", Tenant: "acme", Scopes: []trail.KeyScope{"read", "export", "verify", "admin"}},
			{Line: 9, Group: "acme-auditors", Tenant: "acme", Scopes: []trail.KeyScope{"read", "export"}},
			{Line: 10, Group: "beta-ops", Tenant: "beta", Scopes: []trail.KeyScope{"read"}},
		},
	}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("ParsePeople (-want +got):\n%s", diff)
	}
	for _, tc := range []struct {
		name, email string
		groups      []string
		line        int // of the rule that maps them; 0: none does
	}{
		{"by email, any case", "CISO@example.com", nil, 8},
		{"by group", "bob@example.com", []string{"staff", "acme-auditors"}, 9},
		{"the first rule wins", "ciso@example.com", []string{"beta-ops"}, 8},
		{"a group is matched exactly", "bob@example.com", []string{"ACME-auditors"}, 0},
		{"nobody", "eve@example.com", []string{"staff"}, 0},
		{"no email matches no email rule", "", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := p.Match(tc.email, tc.groups)
			switch {
			case tc.line == 0 && r != nil:
				t.Errorf("Match mapped them by line %d; want no rule", r.Line)
			case tc.line != 0 && (r == nil || r.Line != tc.line):
				t.Errorf("Match = %+v; want the rule of line %d", r, tc.line)
			}
		})
	}
}

// A people file with no provider maps people for an identity-aware
// proxy alone.
func TestParsePeopleNoProvider(t *testing.T) {
	p, err := trailhttp.ParsePeople("map group=ops tenant=acme scopes=read\n")
	if err != nil || p.OIDC != nil || len(p.Rules) != 1 {
		t.Fatalf("ParsePeople = %+v, %v; want one rule and no provider", p, err)
	}
}

func TestParsePeopleErrors(t *testing.T) {
	const provider = "issuer https://idp/\nclient-id c\nclient-secret s\nredirect-url https://t/ui/oidc/callback\n"
	for _, tc := range []struct{ name, text, want string }{
		{"empty", "", "no map line"},
		{"unknown statement", "mapp email=a@b tenant=acme scopes=read\n", "line 1: unknown statement \"mapp\""},
		{"half a provider", "issuer https://idp/\nmap email=a@b tenant=acme scopes=read\n", "lacks client-id, client-secret, redirect-url"},
		{"issuer twice", provider + "issuer https://other/\nmap email=a@b tenant=acme scopes=read\n", "line 5: a second issuer (the first is on line 1)"},
		{"issuer not a URL", "issuer idp.example.com\n", "line 1: issuer \"idp.example.com\": want an absolute https URL"},
		{"client-id with spaces", "client-id a b\n", "line 1: want: client-id ID"},
		{"map whom", "map tenant=acme scopes=read\n", "line 1: want email=ADDRESS or group=NAME"},
		{"map both", "map email=a@b group=g tenant=acme scopes=read\n", "line 1: email and group on one line"},
		{"map no tenant", "map email=a@b scopes=read\n", "line 1: tenant: required"},
		{"map bad tenant", "map email=a@b tenant=Acme scopes=read\n", "line 1: tenant:"},
		{"map no scopes", "map email=a@b tenant=acme\n", "line 1: scopes: required"},
		{"map bad scope", "map email=a@b tenant=acme scopes=read,root\n", "line 1: scopes: \"root\" is not a scope"},
		{"map unknown field", "map email=a@b tenant=acme scopes=read role=x\n", "line 1: unknown field \"role\""},
		{"map field twice", "map email=a@b tenant=acme tenant=beta scopes=read\n", "line 1: tenant is given twice"},
		{"map not key=value", "map email tenant=acme scopes=read\n", "line 1: \"email\": want NAME=VALUE"},
		{"map email not an address", "map email=bob tenant=acme scopes=read\n", "line 1: email \"bob\": want an address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := trailhttp.ParsePeople(tc.text)
			if trail.ErrorCode(err) != trail.EINVALID || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParsePeople = %v; want EINVALID saying %q", err, tc.want)
			}
		})
	}
}

func FuzzParsePeople(f *testing.F) {
	if b, err := os.ReadFile("testdata/people.txt"); err == nil {
		f.Add(string(b))
	}
	f.Add("map group=ops tenant=acme scopes=read\n")
	f.Add("map email=a@b tenant=acme scopes=read,read # x\nissuer http://x/\n")
	f.Fuzz(func(t *testing.T, text string) {
		p, err := trailhttp.ParsePeople(text)
		if err != nil {
			if trail.ErrorCode(err) != trail.EINVALID {
				t.Fatalf("ParsePeople failed with %v, not EINVALID", err)
			}
			return
		}
		if len(p.Rules) == 0 {
			t.Fatal("a people file with no rule was taken")
		}
		for _, r := range p.Rules {
			if trail.CheckTenant(r.Tenant) != "" || len(r.Scopes) == 0 || (r.Email == "") == (r.Group == "") {
				t.Fatalf("a bad rule was taken: %+v", r)
			}
			for _, sc := range r.Scopes {
				if !sc.Valid() {
					t.Fatalf("a bad scope was taken: %+v", r)
				}
			}
		}
	})
}
