package detect

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/internal/ledger"
	"github.com/trailaudit/trail/storetest"
)

var admin = trail.Actor{Type: trail.ActorSystem, ID: "cli:ops"}

// changes returns the admin_config_changed records of acme's log.
func changes(t *testing.T, s trail.Store) []*trail.Event {
	t.Helper()
	page, err := s.Query(context.Background(), trail.Query{Tenant: "acme", Actions: []string{catalog.AdminConfigChanged}})
	if err != nil {
		t.Fatal(err)
	}
	return page.Events
}

// A rule file is checked, recorded (digest and rules, never the text) and
// stored; put again it replaces the file, recording the old and the new.
func TestPutRules(t *testing.T) {
	ctx := context.Background()
	s := newMemory(t)
	f := &trail.RuleFile{Tenant: "acme", Name: "mine", YAML: storetest.SigmaRule("r-1")}
	got, replaced, seq, err := PutRules(ctx, s, s, f, admin, t0)
	if err != nil || replaced || got.CreatedBy != "cli:ops" || !got.CreatedAt.Equal(t0) {
		t.Fatalf("PutRules: %+v %v %v", got, replaced, err)
	}
	f.YAML = storetest.SigmaRule("r-2")
	if _, replaced, _, err = PutRules(ctx, s, s, f, admin, t0); err != nil || !replaced {
		t.Fatalf("PutRules again: replaced %v, %v", replaced, err)
	}
	recs := changes(t, s)
	if len(recs) != 2 || recs[0].Seq != seq {
		t.Fatalf("records %d, first at %d; want 2, the first at %d", len(recs), recs[0].Seq, seq)
	}
	c := recs[1].Context
	if c["config_key"] != "rules:mine" || c["changed_by"] != "cli:ops" || recs[1].Actor.ID != admin.ID {
		t.Errorf("record %+v", recs[1])
	}
	old, _ := c["old_value"].(map[string]any)
	now, _ := c["new_value"].(map[string]any)
	if rs, _ := old["rules"].([]any); len(rs) != 1 || rs[0] != "r-1" {
		t.Errorf("old_value %v, want the rules r-1", old)
	}
	if rs, _ := now["rules"].([]any); len(rs) != 1 || rs[0] != "r-2" || len(now["sha256"].(string)) != 64 {
		t.Errorf("new_value %v, want rule r-2 and a digest", now)
	}
	if b, _ := json.Marshal(recs[1]); strings.Contains(string(b), "detection") {
		t.Error("the record holds the rule's text")
	}
	if stored, _ := s.GetRule(ctx, "acme", "mine"); stored.YAML != f.YAML {
		t.Errorf("stored %q", stored.YAML)
	}
}

// A refused file is EINVALID naming the field as ParseRules does, and
// nothing is recorded or stored.
func TestPutRulesRefused(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, yaml, path string
	}{
		{"modifier", strings.Replace(storetest.SigmaRule("r-2"), "action:", "context.cmd|base64offset:", 1), "detection.selection.context.cmd|base64offset"},
		{"duplicate id", storetest.SigmaRule("r-1"), "rules[1].id"},
		{"not YAML", "title: [", ""},
		{"empty", "", "yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newMemory(t)
			if _, _, _, err := PutRules(ctx, s, s, &trail.RuleFile{Tenant: "acme", Name: "a", YAML: storetest.SigmaRule("r-1")}, admin, t0); err != nil {
				t.Fatal(err)
			}
			_, _, _, err := PutRules(ctx, s, s, &trail.RuleFile{Tenant: "acme", Name: "b", YAML: tc.yaml}, admin, t0)
			fe := trail.ErrorFields(err)
			if trail.ErrorCode(err) != trail.EINVALID || (tc.path != "" && (len(fe) == 0 || fe[0].Path != tc.path)) {
				t.Fatalf("PutRules: %v %v, want EINVALID naming %q", err, fe, tc.path)
			}
			if n := len(changes(t, s)); n != 1 {
				t.Errorf("%d records, want only the first file's", n)
			}
			if _, err := s.GetRule(ctx, "acme", "b"); trail.ErrorCode(err) != trail.ENOTFOUND {
				t.Errorf("the refused file was stored: %v", err)
			}
		})
	}
}

// failingWriter refuses every append, as a full disk would.
type failingWriter struct{}

func (failingWriter) AppendOwn(context.Context, string, ledger.Own) (*trail.AppendResult, error) {
	return nil, trail.Errorf(trail.ESTORAGEFULL, "disk full")
}

// A change whose record cannot be written is not made.
func TestRulesChangeUnrecorded(t *testing.T) {
	ctx := context.Background()
	s := newMemory(t)
	f := &trail.RuleFile{Tenant: "acme", Name: "mine", YAML: storetest.SigmaRule("r-1")}
	if _, _, _, err := PutRules(ctx, s, failingWriter{}, f, admin, t0); err == nil || !strings.Contains(err.Error(), "not made") {
		t.Fatalf("PutRules with no record: %v", err)
	}
	if _, err := s.GetRule(ctx, "acme", "mine"); trail.ErrorCode(err) != trail.ENOTFOUND {
		t.Fatalf("stored unrecorded: %v", err)
	}
	if _, _, _, err := PutRules(ctx, s, s, f, admin, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := RemoveRules(ctx, s, failingWriter{}, "acme", "mine", admin); err == nil {
		t.Fatal("RemoveRules with no record succeeded")
	}
	if _, err := s.GetRule(ctx, "acme", "mine"); err != nil {
		t.Fatalf("removed unrecorded: %v", err)
	}
}

// Removing records the file going; an unknown file is ENOTFOUND, another
// tenant's too, and records nothing.
func TestRemoveRules(t *testing.T) {
	ctx := context.Background()
	s := newMemory(t)
	if _, _, _, err := PutRules(ctx, s, s, &trail.RuleFile{Tenant: "globex", Name: "mine", YAML: storetest.SigmaRule("r-1")}, admin, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := RemoveRules(ctx, s, s, "acme", "mine", admin); trail.ErrorCode(err) != trail.ENOTFOUND {
		t.Errorf("acme removing globex's file: %v, want ENOTFOUND", err)
	}
	if _, _, _, err := PutRules(ctx, s, s, &trail.RuleFile{Tenant: "acme", Name: "mine", YAML: storetest.SigmaRule("r-1")}, admin, t0); err != nil {
		t.Fatal(err)
	}
	seq, err := RemoveRules(ctx, s, s, "acme", "mine", admin)
	if err != nil {
		t.Fatal(err)
	}
	recs := changes(t, s)
	if last := recs[len(recs)-1]; last.Seq != seq || last.Context["new_value"] != nil || last.Context["old_value"] == nil {
		t.Errorf("record %+v", last.Context)
	}
	if _, err := s.GetRule(ctx, "globex", "mine"); err != nil {
		t.Errorf("globex's file: %v", err)
	}
	var te *trail.Error
	if _, err := RemoveRules(ctx, s, s, "acme", "mine", admin); !errors.As(err, &te) || te.Code != trail.ENOTFOUND {
		t.Errorf("removing again: %v", err)
	}
}
