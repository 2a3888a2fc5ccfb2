package catalog_test

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/catalog/internal/gen"
	"github.com/trailaudit/trail/internal/testenv"
)

// TestGeneratedConstantsAreFresh fails when actions.json changed and
// actions_gen.go was not regenerated (run `go generate ./catalog`).
func TestGeneratedConstantsAreFresh(t *testing.T) {
	want, err := gen.Source(catalog.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("actions_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("actions_gen.go is stale: run `go generate ./catalog`")
	}
}

func TestConstantsResolve(t *testing.T) {
	c := catalog.Default()
	for _, name := range []string{catalog.UserLoginSuccess, catalog.UserLoginAttempted, catalog.DataExported, catalog.EntryApproved, catalog.BulkOperation} {
		if a, ok := c.Resolve(name); !ok || a.Name != name {
			t.Errorf("Resolve(%q) = %v, %v", name, a, ok)
		}
	}
}

// seedsDir finds the seed documents beside the repository. Without them the
// cross-check cannot run: it skips, except in CI where it must not.
func seedsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("TRAIL_SEEDS_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared", "seeds")
	}
	if _, err := os.Stat(dir); err != nil {
		testenv.Missing(t, "seed documents not found at %s (%v); set TRAIL_SEEDS_DIR to run the catalog cross-check", dir, err)
	}
	return dir
}

// seedMember is one action named in a seed document, with the context keys
// the seed says its events should include.
type seedMember struct {
	name string
	keys []string
}

// parseSeed000 reads the AuditAction enum documentation: each member is an
// ALL_CAPS line followed by "class-attribute", then a description and an
// optional "Context should include" list of "- key: description" lines.
func parseSeed000(t *testing.T, path string) []seedMember {
	t.Helper()
	lines := readLines(t, path)
	member := regexp.MustCompile(`^[A-Z][A-Z0-9_]+$`)
	key := regexp.MustCompile(`^- ([a-z_][a-z0-9_]*): `)
	var out []seedMember
	inAttrs, inContext := false, false
	for i, l := range lines {
		if strings.HasPrefix(l, "Attributes") {
			inAttrs = true
			continue
		}
		if !inAttrs {
			continue
		}
		if member.MatchString(l) && i+1 < len(lines) && lines[i+1] == "class-attribute" {
			out = append(out, seedMember{name: l})
			inContext = false
			continue
		}
		if l == "Context should include" {
			inContext = true
			continue
		}
		if m := key.FindStringSubmatch(l); inContext && m != nil && len(out) > 0 {
			out[len(out)-1].keys = append(out[len(out)-1].keys, m[1])
		}
	}
	return out
}

// parseSeed002 reads the markdown list of action types: "- `NAME` - text".
func parseSeed002(t *testing.T, path string) []seedMember {
	t.Helper()
	re := regexp.MustCompile("^- `([A-Z][A-Z0-9_]+)` - ")
	var out []seedMember
	for _, l := range readLines(t, path) {
		if m := re.FindStringSubmatch(l); m != nil {
			out = append(out, seedMember{name: m[1]})
		}
	}
	return out
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines = append(lines, strings.TrimSpace(sc.Text()))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

// TestCatalogCoversSeeds proves the catalog complete: every action either
// seed names resolves, and every context key seed 000 lists for an action is
// declared on the action it resolves to.
func TestCatalogCoversSeeds(t *testing.T) {
	dir := seedsDir(t)
	c := catalog.Default()
	seed000 := parseSeed000(t, filepath.Join(dir, "000_4adefa72f063dc8e.txt"))
	seed002 := parseSeed002(t, filepath.Join(dir, "002_cec3626d719ff374.txt"))
	// Guard the parsers themselves: the seeds name this many actions.
	if len(seed000) < 110 || len(seed002) < 89 {
		t.Fatalf("parsed %d actions from seed 000 and %d from seed 002; the seed parsers are broken", len(seed000), len(seed002))
	}
	for _, seed := range []struct {
		id      string
		members []seedMember
	}{{"000", seed000}, {"002", seed002}} {
		for _, m := range seed.members {
			a, ok := c.Resolve(strings.ToLower(m.name))
			if !ok {
				t.Errorf("seed %s action %s does not resolve in the catalog", seed.id, m.name)
				continue
			}
			if !slices.Contains(a.Sources, seed.id+":"+m.name) {
				t.Errorf("seed %s action %s resolves to %s, which does not list it in sources", seed.id, m.name, a.Name)
			}
			for _, k := range m.keys {
				if !slices.ContainsFunc(a.Context, func(ck trail.ContextKey) bool { return ck.Key == k }) {
					t.Errorf("seed %s action %s: context key %q is missing from %s", seed.id, m.name, k, a.Name)
				}
			}
		}
	}
	t.Logf("seed 000: %d actions, seed 002: %d actions, catalog: %d actions", len(seed000), len(seed002), len(c.Actions(catalog.Filter{})))
}

// TestSeedAliases pins the merges the two seeds need: where they name the
// same thing, one action answers to both names.
func TestSeedAliases(t *testing.T) {
	c := catalog.Default()
	for alias, name := range map[string]string{
		"login_success":                 "user_login_success",
		"LOGIN_FAILED":                  "user_login_failed",
		"logout":                        "user_logout",
		"password_changed":              "user_password_changed",
		"password_reset_requested":      "user_password_reset_requested",
		"password_reset_completed":      "user_password_reset_completed",
		"password_reset_confirm_failed": "user_password_reset_failed",
		"role_removed":                  "role_revoked",
	} {
		if a, ok := c.Resolve(alias); !ok || a.Name != name {
			t.Errorf("Resolve(%q) = %v, want %s", alias, a, name)
		}
	}
}

func TestAttemptResults(t *testing.T) {
	c := catalog.Default()
	res := c.Results(catalog.UserLoginAttempted)
	if res[trail.OutcomeSuccess] == nil || res[trail.OutcomeSuccess].Name != catalog.UserLoginSuccess ||
		res[trail.OutcomeFailure] == nil || res[trail.OutcomeFailure].Name != catalog.UserLoginFailed {
		t.Errorf("Results(user_login_attempted) = %v", res)
	}
	acc := c.Results(catalog.AccessAttempted)
	if acc[trail.OutcomeSuccess] == nil || acc[trail.OutcomeDenied] == nil {
		t.Errorf("Results(access_attempted) = %v, want granted and denied", acc)
	}
}

func TestFilter(t *testing.T) {
	c := catalog.Default()
	auth := c.Actions(catalog.Filter{Category: "authentication"})
	names := map[string]bool{}
	for _, a := range auth {
		if a.Category != "authentication" {
			t.Errorf("%s is in %s", a.Name, a.Category)
		}
		names[a.Name] = true
	}
	// Both seeds' login actions are there, merged.
	for _, n := range []string{catalog.UserLoginSuccess, catalog.UserLoginFailed, catalog.UserLogout, catalog.UserMfaEnabled} {
		if !names[n] {
			t.Errorf("authentication actions lack %s", n)
		}
	}
	for _, spelling := range []string{"pci-dss", "PCI_DSS", "PCI DSS"} {
		pci := c.Actions(catalog.Filter{Compliance: spelling})
		if len(pci) == 0 {
			t.Fatalf("no actions tagged %s", spelling)
		}
		for _, a := range pci {
			if !slices.Contains(a.Compliance, trail.CompliancePCIDSS) {
				t.Errorf("%s is not tagged PCI-DSS", a.Name)
			}
		}
	}
	if got := c.Actions(catalog.Filter{Category: "no_such"}); len(got) != 0 {
		t.Errorf("unknown category matched %d actions", len(got))
	}
}

func TestRegister(t *testing.T) {
	c := catalog.Default()
	invoice := trail.Action{Name: "invoice_paid", Category: "billing", Outcome: trail.OutcomeSuccess,
		Compliance: []string{"soc2"}, Context: []trail.ContextKey{{Key: "amount_cents", Type: trail.TypeInt, Required: true}}}
	if err := c.Register(invoice); err != nil {
		t.Fatal(err)
	}
	a, ok := c.Resolve("invoice_paid")
	if !ok || !a.Custom || a.Retention != "standard" || a.Compliance[0] != "SOC2" {
		t.Fatalf("Resolve(invoice_paid) = %+v, %v", a, ok)
	}
	if invoice.Compliance[0] != "soc2" {
		t.Error("Register modified the caller's definition")
	}
	if !slices.ContainsFunc(c.Categories(), func(k catalog.Category) bool { return k.Name == "billing" }) {
		t.Error("the new category is not listed")
	}
	if _, ok := catalog.Default().Resolve("invoice_paid"); ok {
		t.Error("a custom action leaked into another catalog")
	}

	for _, tc := range []struct {
		name string
		def  trail.Action
		code string
		path string
	}{
		{"clash with a built-in name", trail.Action{Name: "user_logout", Category: "x1", Outcome: trail.OutcomeSuccess}, trail.ECONFLICT, ""},
		{"clash with a built-in alias", trail.Action{Name: "login_success", Category: "x1", Outcome: trail.OutcomeSuccess}, trail.ECONFLICT, ""},
		{"clash with a custom action", invoice, trail.ECONFLICT, ""},
		{"alias clashes", trail.Action{Name: "invoice_voided", Aliases: []string{"logout"}, Category: "billing", Outcome: trail.OutcomeSuccess}, trail.ECONFLICT, ""},
		{"bad name", trail.Action{Name: "Invoice Paid", Category: "billing", Outcome: trail.OutcomeSuccess}, trail.EINVALID, "name"},
		{"bad outcome", trail.Action{Name: "invoice_sent", Category: "billing", Outcome: "done"}, trail.EINVALID, "outcome"},
		{"bad key type", trail.Action{Name: "invoice_sent", Category: "billing", Outcome: trail.OutcomeSuccess, Context: []trail.ContextKey{{Key: "n", Type: "integer"}}}, trail.EINVALID, "context[0].type"},
		{"duplicate key", trail.Action{Name: "invoice_sent", Category: "billing", Outcome: trail.OutcomeSuccess, Context: []trail.ContextKey{{Key: "n", Type: "int"}, {Key: "n", Type: "int"}}}, trail.EINVALID, "context[1].key"},
		{"unknown retention", trail.Action{Name: "invoice_sent", Category: "billing", Outcome: trail.OutcomeSuccess, Retention: "forever"}, trail.EINVALID, "retention"},
		{"attempt is not an attempt", trail.Action{Name: "invoice_sent", Category: "billing", Outcome: trail.OutcomeSuccess, Attempt: "user_logout"}, trail.EINVALID, "attempt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Register(tc.def)
			if trail.ErrorCode(err) != tc.code {
				t.Fatalf("Register = %v, want code %s", err, tc.code)
			}
			if tc.path != "" {
				fe := trail.ErrorFields(err)
				if len(fe) == 0 || fe[0].Path != tc.path {
					t.Errorf("field errors %v, want path %s", fe, tc.path)
				}
			}
		})
	}
}

// TestParseRefusesBadFiles: the catalog file is checked whole when read.
func TestParseRefusesBadFiles(t *testing.T) {
	base := `{"format":1,"retention_classes":[{"name":"standard","days":365}],"categories":[{"name":"aa"},{"name":"bb"}],"actions":[%s]}`
	for _, tc := range []struct{ name, actions, want string }{
		{"duplicate name", `{"name":"x_y","category":"aa","outcome":"success","retention":"standard"},{"name":"x_y","category":"aa","outcome":"success","retention":"standard"}`, "used by both"},
		{"alias clash", `{"name":"x_y","category":"aa","outcome":"success","retention":"standard","aliases":["z_z"]},{"name":"z_z","category":"aa","outcome":"success","retention":"standard"}`, "used by both"},
		{"undefined category", `{"name":"x_y","category":"cc","outcome":"success","retention":"standard"}`, "category \"cc\" is not defined"},
		{"undefined retention", `{"name":"x_y","category":"aa","outcome":"success","retention":"long"}`, "retention class \"long\""},
		{"dangling attempt", `{"name":"x_y","category":"aa","outcome":"success","retention":"standard","attempt":"x_attempted"}`, "not an attempted action"},
		{"misspelt tag", `{"name":"x_y","category":"aa","outcome":"success","retention":"standard","compliance":["pci"]}`, "should be spelled"},
		{"unknown member", `{"name":"x_y","category":"aa","outcome":"success","retention":"standard","colour":"red"}`, "unknown field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := catalog.Parse([]byte(strings.Replace(base, "%s", tc.actions, 1)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse error = %v, want one saying %q", err, tc.want)
			}
		})
	}
	if _, err := catalog.Parse([]byte(`{"format":2}`)); err == nil {
		t.Error("format 2 accepted")
	}
}

// TestEveryActionIsWellDescribed holds the data file to the standards the
// users rely on: each action has a description, a severity, a retention class
// and (but for notifications) a compliance tag, and every attempted action is
// closed by at least one result.
func TestEveryActionIsWellDescribed(t *testing.T) {
	c := catalog.Default()
	for _, a := range c.Actions(catalog.Filter{}) {
		if a.Description == "" || a.Severity == "" || a.Retention == "" || len(a.Sources) == 0 {
			t.Errorf("%s: description, severity, retention and sources are required", a.Name)
		}
		if len(a.Compliance) == 0 && a.Category != "notification" {
			t.Errorf("%s: no compliance tag", a.Name)
		}
		if a.Outcome == trail.OutcomeAttempted && len(c.Results(a.Name)) == 0 {
			t.Errorf("%s: an attempt that no result closes", a.Name)
		}
	}
}

// TestTenantViews: a tenant's view of a shared catalog holds the built-in
// actions and the tenant's own custom actions alone; two tenants may
// register one name with different definitions; a built-in name stays
// taken in every view; a tenant's events resolve in its view.
func TestTenantViews(t *testing.T) {
	shared := catalog.Default()
	acme, beta := shared.For("acme"), shared.For("beta")
	if shared.For("acme") != acme || acme.For("beta") != beta {
		t.Fatal("For does not return the one view of a tenant")
	}
	mine := trail.Action{Name: "invoice_paid", Category: "billing", Outcome: trail.OutcomeSuccess, Description: "acme's",
		Context: []trail.ContextKey{{Key: "iban", Type: trail.TypeString, Personal: true}}}
	theirs := trail.Action{Name: "invoice_paid", Category: "payments", Outcome: trail.OutcomeFailure, Description: "beta's"}
	if err := acme.Register(mine); err != nil {
		t.Fatal(err)
	}
	if err := beta.Register(theirs); err != nil {
		t.Fatalf("beta registering a name acme has: %v", err)
	}
	for _, tc := range []struct {
		view *catalog.Catalog
		want string // the description of invoice_paid; "" for none
	}{{acme, "acme's"}, {beta, "beta's"}, {shared.For("gamma"), ""}, {shared, ""}} {
		a, ok := tc.view.Resolve("invoice_paid")
		if got := ""; ok {
			got = a.Description
			if got != tc.want {
				t.Errorf("invoice_paid resolves to %q, want %q", got, tc.want)
			}
		} else if tc.want != "" {
			t.Errorf("invoice_paid does not resolve, want %q", tc.want)
		}
		n := len(tc.view.Actions(catalog.Filter{}))
		if want := len(shared.Actions(catalog.Filter{})) + min(len(tc.want), 1); n != want {
			t.Errorf("the view lists %d actions, want %d", n, want)
		}
		if _, ok := tc.view.Resolve(catalog.UserLogout); !ok {
			t.Error("a built-in action does not resolve in a view")
		}
	}
	if slices.ContainsFunc(acme.Categories(), func(k catalog.Category) bool { return k.Name == "payments" }) {
		t.Error("beta's new category shows in acme's view")
	}
	if code := trail.ErrorCode(acme.Register(trail.Action{Name: "user_logout", Category: "x1", Outcome: trail.OutcomeSuccess})); code != trail.ECONFLICT {
		t.Errorf("a view registering a built-in name: %s, want conflict", code)
	}
	if got := beta.Results("invoice_paid"); len(got) != 0 {
		t.Errorf("results of a non-attempt: %v", got)
	}

	// The validator resolves a tenant's events in the tenant's view.
	v := &trail.Validator{Actions: shared}
	ev := &trail.Event{Action: "invoice_paid", Actor: trail.Actor{Type: trail.ActorUser, ID: "u-1"}}
	for tenant, want := range map[string]string{"acme": "billing", "beta": "payments"} {
		out, err := v.PrepareBatch(tenant, []*trail.Event{ev}, trail.Policy{}, time.Now())
		if err != nil || out[0].Category != want {
			t.Errorf("%s's invoice_paid: %v, %v; want category %s", tenant, out, err, want)
		}
	}
	if _, err := v.PrepareBatch("gamma", []*trail.Event{ev}, trail.Policy{}, time.Now()); trail.ErrorCode(err) != trail.EINVALID {
		t.Errorf("gamma's invoice_paid, which gamma never registered: %v, want it refused", err)
	}
}
