package storetest

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/internal/ledger"
)

// Legacy is how RunActionMigration takes a durable store's database back
// to before custom actions were per tenant.
type Legacy struct {
	// Undo are the statements that undo the migration to per-tenant
	// actions (drop its table, set the schema version back).
	Undo []string
	// Save returns the statement that saves the custom action name with
	// definition def as the store did before (one catalog for every
	// tenant).
	Save func(name string, def []byte) string
}

// RunActionMigration: the custom actions a store saved when one catalog
// served every tenant are given, by the migration, to the tenant whose log
// records registering it and to every tenant whose log holds an event of
// it, so that no tenant that used one loses it; one no log names goes to
// no tenant; and the migration says what it did (MigrationNotes).
func RunActionMigration(t *testing.T, d Durable, legacy Legacy) {
	ctx := context.Background()
	s := d.open(t)
	w, ok := s.(ledger.Writer)
	if !ok {
		t.Fatalf("%T is not a ledger.Writer", s)
	}
	custom := trail.AppendOptions{Policy: trail.Policy{AllowCustom: true}}
	registered := &trail.Event{Action: catalog.AdminConfigChanged, Actor: trail.Actor{Type: trail.ActorAPIKey, ID: "k-acme-admin"},
		Context: map[string]any{"config_key": "action:invoice_paid", "old_value": nil, "new_value": "invoice_paid", "changed_by": "k-acme-admin"}}
	if _, err := w.AppendOwn(ctx, "acme", ledger.Records(registered)); err != nil {
		t.Fatal(err)
	}
	for tenant, action := range map[string]string{"beta": "invoice_paid", "gamma": "report_run", "delta": catalog.UserLogout} {
		ev := &trail.Event{Action: action, Actor: trail.Actor{Type: trail.ActorUser, ID: "u-1"}}
		if _, err := s.Append(ctx, tenant, []*trail.Event{ev}, custom); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	defs := map[string]*trail.Action{}
	for _, name := range []string{"invoice_paid", "report_run", "badge_scanned"} {
		defs[name] = &trail.Action{Name: name, Category: "custom", Outcome: trail.OutcomeSuccess, Description: name + " of before", Custom: true}
		def, _ := json.Marshal(defs[name])
		legacy.Undo = append(legacy.Undo, legacy.Save(name, def))
	}
	for _, stmt := range legacy.Undo {
		if err := d.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}

	s = d.open(t)
	defer s.Close()
	as, ok := s.(trail.ActionStore)
	if !ok {
		t.Fatalf("%T is not a trail.ActionStore", s)
	}
	got, err := as.SavedActions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []trail.SavedAction{
		{Tenant: "acme", Action: defs["invoice_paid"]}, // its log registered it
		{Tenant: "beta", Action: defs["invoice_paid"]}, // its log used it
		{Tenant: "gamma", Action: defs["report_run"]},
	}
	slices.SortFunc(got, func(a, b trail.SavedAction) int {
		return strings.Compare(a.Action.Name+a.Tenant, b.Action.Name+b.Tenant)
	})
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("saved actions after the migration (-want +got):\n%s", diff)
	}
	n, ok := s.(interface{ MigrationNotes() []string })
	if !ok {
		t.Fatalf("%T has no MigrationNotes", s)
	}
	notes := strings.Join(n.MigrationNotes(), "\n")
	for _, w := range []string{
		"custom action invoice_paid, saved when custom actions were shared by every tenant, now belongs to tenant acme, beta",
		"custom action report_run, saved when custom actions were shared by every tenant, now belongs to tenant gamma",
		"custom action badge_scanned, saved when custom actions were shared by every tenant, is in no tenant's log, so no tenant has it now",
	} {
		if !strings.Contains(notes, w) {
			t.Errorf("the migration's notes do not say %q:\n%s", w, notes)
		}
	}
	// The store goes on per tenant: delta may save its own invoice_paid.
	if err := as.SaveAction(ctx, "delta", &trail.Action{Name: "invoice_paid", Category: "billing", Outcome: trail.OutcomeSuccess}); err != nil {
		t.Errorf("delta saving a name acme and beta have: %v", err)
	}
	wantCode(t, "acme saving its migrated action again", as.SaveAction(ctx, "acme", defs["invoice_paid"]), trail.ECONFLICT)
}
