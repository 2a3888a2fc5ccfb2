package catalog_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/memory"
	"github.com/trailaudit/trail/storetest"
)

func TestNearest(t *testing.T) {
	cat := catalog.Default()
	tests := []struct {
		name string
		want []string // the first names, in order
	}{
		{"user_login_sucess", []string{"user_login_success"}}, // a letter left out
		{"USER_LOGIN_SUCCES", []string{"user_login_success"}}, // case is ignored
		{"user_logn_failed", []string{"user_login_failed"}},   // a letter left out
		{"data_veiwed", []string{"data_viewed"}},              // two swapped: two edits
		{"LOGIN_SUCCES", []string{"user_login_success"}},      // near an alias: the action's name
		{"completely_unrelated_words", nil},                   // nothing near enough
		{"x", nil},                                            // too short to be near anything but 2-letter names
	}
	for _, tt := range tests {
		got := cat.Nearest(tt.name, 3)
		if len(got) > 3 || len(tt.want) == 0 && len(got) > 0 || len(got) < len(tt.want) || !slices.Equal(got[:len(tt.want)], tt.want) {
			t.Errorf("Nearest(%q) = %v, want it to begin %v", tt.name, got, tt.want)
		}
	}
}

// A filter naming an action the catalog does not know is a mistake, said
// with the nearest names, unless the tenant's log has the action (a
// tenant allowed unregistered custom actions); an alias is searched by the
// action's name, which is what the log records.
func TestResolveQueryActions(t *testing.T) {
	ctx := context.Background()
	cat := catalog.Default()
	s := memory.New(storetest.Validator(), storetest.Signer())
	custom := storetest.Login("u-1")
	custom.Action, custom.Context = "acme_widget_polished", nil
	if _, err := s.Append(ctx, "acme", []*trail.Event{custom}, trail.AppendOptions{Policy: trail.Policy{AllowCustom: true}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		actions  []string
		want     string   // "" for no error
		resolved []string // the query's actions then
	}{
		{"no action filter", nil, "", nil},
		{"known", []string{"user_login_success", "data_viewed"}, "", []string{"user_login_success", "data_viewed"}},
		{"an alias, another case", []string{"LOGIN_SUCCESS", "Data_Viewed"}, "", []string{"user_login_success", "data_viewed"}},
		{"unregistered but in the log", []string{"acme_widget_polished"}, "", []string{"acme_widget_polished"}},
		{"a typo", []string{"user_login_success", "user_login_sucess"}, `"user_login_sucess" is not an action the catalog knows, and no event of the tenant has it; nearest: user_login_success`, nil},
		{"nothing near", []string{"zzzzzzzzzzzz"}, `"zzzzzzzzzzzz" is not an action the catalog knows, and no event of the tenant has it`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := catalog.ResolveQueryActions(ctx, cat, s, trail.Query{Tenant: "acme", Actions: tt.actions})
			if tt.want == "" {
				if err != nil || !slices.Equal(q.Actions, tt.resolved) {
					t.Fatalf("actions %v, %v; want %v", q.Actions, err, tt.resolved)
				}
				return
			}
			fe := trail.ErrorFields(err)
			if trail.ErrorCode(err) != trail.EINVALID || len(fe) != 1 || fe[0].Path != "action" || !strings.HasPrefix(fe[0].Message, tt.want) {
				t.Fatalf("err %v, fields %+v; want EINVALID naming action: %s", err, fe, tt.want)
			}
		})
	}
	// Another tenant's log does not count.
	if _, err := catalog.ResolveQueryActions(ctx, cat, s, trail.Query{Tenant: "beta", Actions: []string{"acme_widget_polished"}}); trail.ErrorCode(err) != trail.EINVALID {
		t.Errorf("beta filtering by acme's unregistered action: %v, want EINVALID", err)
	}
}

// TestResolveQueryActionsPerTenant: a tenant's registered action is known
// to its own searches, suggested to its own typos, and unknown to another
// tenant's.
func TestResolveQueryActionsPerTenant(t *testing.T) {
	ctx := context.Background()
	cat := catalog.Default()
	if err := cat.For("acme").Register(trail.Action{Name: "acme_invoice_voided", Category: "billing", Outcome: trail.OutcomeSuccess, Description: "acme's"}); err != nil {
		t.Fatal(err)
	}
	s := memory.New(storetest.Validator(), storetest.Signer())
	if q, err := catalog.ResolveQueryActions(ctx, cat, s, trail.Query{Tenant: "acme", Actions: []string{"ACME_INVOICE_VOIDED"}}); err != nil || !slices.Equal(q.Actions, []string{"acme_invoice_voided"}) {
		t.Errorf("acme's own action: %v, %v", q.Actions, err)
	}
	_, err := catalog.ResolveQueryActions(ctx, cat, s, trail.Query{Tenant: "acme", Actions: []string{"acme_invoice_voide"}})
	if fe := trail.ErrorFields(err); len(fe) != 1 || !strings.HasSuffix(fe[0].Message, "nearest: acme_invoice_voided") {
		t.Errorf("acme's typo: %v %+v, want its own action suggested", err, fe)
	}
	_, err = catalog.ResolveQueryActions(ctx, cat, s, trail.Query{Tenant: "beta", Actions: []string{"acme_invoice_voided"}})
	if fe := trail.ErrorFields(err); trail.ErrorCode(err) != trail.EINVALID || len(fe) != 1 || strings.Contains(fe[0].Message, "nearest") {
		t.Errorf("beta filtering by acme's action: %v %+v, want EINVALID suggesting nothing of acme's", err, fe)
	}
}
