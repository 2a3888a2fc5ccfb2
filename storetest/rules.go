package storetest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/trailaudit/trail"
)

// RunRules runs the conformance suite of trail.RuleStore. open must return
// a new, empty store each time it is called; the suite closes it when it
// has a Close method.
func RunRules(t *testing.T, open func(t *testing.T) trail.RuleStore) {
	runEach(t, open, []storeCase[trail.RuleStore]{
		{"PutAndGet", testRuleRoundTrip},
		{"StoreClock", testRuleDefaults},
		{"PutReplaces", testRuleReplace},
		{"Invalid", testRuleInvalid},
		{"ListByTenantAndName", testRuleList},
		{"Delete", testRuleDelete},
		{"TenantsApart", testRuleTenants},
	})
}

// RunRulesDurable runs the test of rule files only a durable store can
// pass: they survive close and reopen, also when the store is opened
// without a signer (they are not events). newDurable must return a fresh,
// empty database each call, whose Open returns a store that is also a
// trail.RuleStore.
func RunRulesDurable(t *testing.T, newDurable func(t *testing.T) Durable) {
	t.Run("ReopenKeepsRules", func(t *testing.T) {
		d := newDurable(t)
		s := ruleStore(t, d)
		for _, f := range sampleRules("acme") {
			putRule(t, s, f)
		}
		before := listRules(t, s, "")
		s.(trail.Store).Close()
		s = ruleStore(t, d)
		defer s.(trail.Store).Close()
		if diff := cmp.Diff(before, listRules(t, s, "")); diff != "" {
			t.Errorf("rule files changed across close and reopen (-before +after):\n%s", diff)
		}
	})
}

func ruleStore(t *testing.T, d Durable) trail.RuleStore {
	t.Helper()
	s, err := d.Open(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	rs, ok := s.(trail.RuleStore)
	if !ok {
		s.Close()
		t.Fatalf("%T is not a trail.RuleStore", s)
	}
	return rs
}

// SigmaRule is a small Sigma rule file for tests: the YAML text of a
// detection rule whose id is id, matching user_login_failed.
func SigmaRule(id string) string {
	return "title: Failed login " + id + "\nid: " + id + "\nlevel: low\nlogsource:\n  product: trail\n" +
		"detection:\n  selection:\n    action: user_login_failed\n  condition: selection\n"
}

// sampleRules returns rule files of tenant, with every field set, in
// name order; the last one's text is not ASCII and spans documents.
func sampleRules(tenant string) []*trail.RuleFile {
	return []*trail.RuleFile{
		{Tenant: tenant, Name: "failed-logins", YAML: SigmaRule("r-1"), CreatedAt: sinkTime, CreatedBy: "key 3f9c2a7b1e04"},
		{Tenant: tenant, Name: "payroll", YAML: SigmaRule("r-2") + "---\n" + strings.Replace(SigmaRule("r-3"), "Failed", "Échec de", 1),
			CreatedAt: sinkTime.Add(time.Second), CreatedBy: "cli:ops"},
	}
}

func putRule(t *testing.T, s trail.RuleStore, f *trail.RuleFile) {
	t.Helper()
	if err := s.PutRule(context.Background(), f); err != nil {
		t.Fatalf("PutRule(%s/%s): %v", f.Tenant, f.Name, err)
	}
}

func getRule(t *testing.T, s trail.RuleStore, tenant, name string) *trail.RuleFile {
	t.Helper()
	f, err := s.GetRule(context.Background(), tenant, name)
	if err != nil {
		t.Fatalf("GetRule(%s, %s): %v", tenant, name, err)
	}
	return f
}

func listRules(t *testing.T, s trail.RuleStore, tenant string) []*trail.RuleFile {
	t.Helper()
	fs, err := s.Rules(context.Background(), tenant)
	if err != nil {
		t.Fatalf("Rules(%q): %v", tenant, err)
	}
	return fs
}

func ruleNames(fs []*trail.RuleFile) []string {
	out := []string{}
	for _, f := range fs {
		out = append(out, f.Tenant+"/"+f.Name)
	}
	return out
}

// Every field comes back as put, the time as the same instant in UTC.
func testRuleRoundTrip(t *testing.T, s trail.RuleStore) {
	for _, f := range sampleRules("acme") {
		putRule(t, s, f)
		want := *f
		want.CreatedAt = f.CreatedAt.UTC()
		if diff := cmp.Diff(&want, getRule(t, s, "acme", f.Name)); diff != "" {
			t.Errorf("rule file %s (-put +got):\n%s", f.Name, diff)
		}
	}
}

// A zero CreatedAt is the store's clock; the caller's file is left as it
// was.
func testRuleDefaults(t *testing.T, s trail.RuleStore) {
	f := &trail.RuleFile{Tenant: "acme", Name: "mine", YAML: SigmaRule("r-1")}
	before := time.Now().Add(-time.Second)
	putRule(t, s, f)
	got := getRule(t, s, "acme", "mine")
	if got.CreatedAt.Before(before) || got.CreatedAt.After(time.Now().Add(time.Second)) || got.CreatedAt.Location() != time.UTC {
		t.Errorf("got %+v: want created now in UTC", got)
	}
	if !f.CreatedAt.IsZero() {
		t.Errorf("PutRule changed the caller's file: %+v", f)
	}
}

// Putting a name again replaces the file, text, time and author; another
// tenant's file of that name stays.
func testRuleReplace(t *testing.T, s trail.RuleStore) {
	first := sampleRules("acme")[0]
	putRule(t, s, first)
	putRule(t, s, sampleRules("globex")[0])
	again := &trail.RuleFile{Tenant: "acme", Name: first.Name, YAML: SigmaRule("r-9"), CreatedAt: sinkTime.Add(time.Hour), CreatedBy: "someone else"}
	putRule(t, s, again)
	want := *again
	want.CreatedAt = again.CreatedAt.UTC()
	if diff := cmp.Diff(&want, getRule(t, s, "acme", first.Name)); diff != "" {
		t.Errorf("after a second put (-want +got):\n%s", diff)
	}
	if got := listRules(t, s, "acme"); len(got) != 1 {
		t.Errorf("acme has %v, want one file", ruleNames(got))
	}
	if got := getRule(t, s, "globex", first.Name); got.YAML != first.YAML {
		t.Errorf("globex's file changed: %+v", got)
	}
}

// A bad file is refused naming the field, and nothing is stored.
func testRuleInvalid(t *testing.T, s trail.RuleStore) {
	for _, tc := range []struct {
		field string
		f     trail.RuleFile
	}{
		{"name", trail.RuleFile{Tenant: "acme", Name: "Has Spaces", YAML: SigmaRule("r-1")}},
		{"tenant", trail.RuleFile{Name: "mine", YAML: SigmaRule("r-1")}},
		{"yaml", trail.RuleFile{Tenant: "acme", Name: "mine", YAML: "  \n"}},
		{"yaml", trail.RuleFile{Tenant: "acme", Name: "mine", YAML: "title: \xff"}},
		{"yaml", trail.RuleFile{Tenant: "acme", Name: "mine", YAML: strings.Repeat("#", trail.MaxRuleFileSize+1)}},
	} {
		err := s.PutRule(context.Background(), &tc.f)
		if f := trail.ErrorFields(err); trail.ErrorCode(err) != trail.EINVALID || len(f) != 1 || f[0].Path != tc.field {
			t.Errorf("PutRule(%.40q): %v %v, want EINVALID naming %s", tc.f.Name+" "+tc.f.YAML, err, f, tc.field)
		}
	}
	if err := s.PutRule(context.Background(), nil); trail.ErrorCode(err) != trail.EINVALID {
		t.Errorf("PutRule(nil): %v, want EINVALID", err)
	}
	if fs := listRules(t, s, ""); len(fs) != 0 {
		t.Errorf("stored %v", ruleNames(fs))
	}
}

// Rules lists a tenant's (or every tenant's) by tenant and name; none is
// an empty list.
func testRuleList(t *testing.T, s trail.RuleStore) {
	if fs := listRules(t, s, "acme"); fs == nil || len(fs) != 0 {
		t.Fatalf("no rule files: %v, want an empty list", fs)
	}
	a, g := sampleRules("acme"), sampleRules("globex")
	for _, f := range []*trail.RuleFile{a[1], g[0], a[0], g[1]} {
		putRule(t, s, f)
	}
	if got, want := ruleNames(listRules(t, s, "acme")), []string{"acme/failed-logins", "acme/payroll"}; !cmp.Equal(got, want) {
		t.Errorf("acme's rule files %v, want %v", got, want)
	}
	if got, want := ruleNames(listRules(t, s, "")), []string{"acme/failed-logins", "acme/payroll", "globex/failed-logins", "globex/payroll"}; !cmp.Equal(got, want) {
		t.Errorf("every rule file %v, want %v", got, want)
	}
	if listRules(t, s, "acme")[1].YAML != a[1].YAML {
		t.Error("Rules left out the text, which the engines need")
	}
}

// A deleted file is gone, and deleting it again is ENOTFOUND.
func testRuleDelete(t *testing.T, s trail.RuleStore) {
	for _, f := range sampleRules("acme") {
		putRule(t, s, f)
	}
	ctx := context.Background()
	if err := s.DeleteRule(ctx, "acme", "payroll"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetRule(ctx, "acme", "payroll"); trail.ErrorCode(err) != trail.ENOTFOUND {
		t.Errorf("GetRule after DeleteRule: %v, want ENOTFOUND", err)
	}
	if err := s.DeleteRule(ctx, "acme", "payroll"); trail.ErrorCode(err) != trail.ENOTFOUND {
		t.Errorf("DeleteRule again: %v, want ENOTFOUND", err)
	}
	if got, want := ruleNames(listRules(t, s, "acme")), []string{"acme/failed-logins"}; !cmp.Equal(got, want) {
		t.Errorf("rule files %v, want %v", got, want)
	}
}

// A tenant's file is found and deleted only through that tenant.
func testRuleTenants(t *testing.T, s trail.RuleStore) {
	putRule(t, s, sampleRules("acme")[0])
	ctx := context.Background()
	if f, err := s.GetRule(ctx, "globex", "failed-logins"); trail.ErrorCode(err) != trail.ENOTFOUND {
		t.Errorf("globex got acme's rule file: %+v, %v", f, err)
	}
	if err := s.DeleteRule(ctx, "globex", "failed-logins"); trail.ErrorCode(err) != trail.ENOTFOUND {
		t.Errorf("globex deleting acme's rule file: %v, want ENOTFOUND", err)
	}
	getRule(t, s, "acme", "failed-logins")
	if fs := listRules(t, s, "globex"); len(fs) != 0 {
		t.Errorf("globex lists %v", ruleNames(fs))
	}
}
