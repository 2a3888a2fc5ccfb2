package storetest

import (
	"context"
	"slices"
	"testing"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/internal/ledger"
)

// testTenants: the store lists the logs that hold an event, in byte order,
// the operators' log among them.
func testTenants(t *testing.T, s trail.Store) {
	ctx := context.Background()
	tl, ok := s.(trail.TenantLister)
	if !ok {
		t.Fatalf("%T is not a trail.TenantLister", s)
	}
	if got, err := tl.Tenants(ctx); err != nil || len(got) != 0 {
		t.Fatalf("Tenants of an empty store = %v, %v; want none", got, err)
	}
	for _, tenant := range []string{"globex", "acme", "a-b", "globex"} {
		if _, err := s.Append(ctx, tenant, []*trail.Event{Login("u-1")}, trail.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if w, ok := s.(ledger.Writer); ok {
		rec := &trail.Event{Action: catalog.DataViewed, Actor: trail.Actor{Type: trail.ActorOperator, ID: "op-1"},
			Context: map[string]any{"data_type": "tenants", "fields_accessed": []any{"*"}}}
		if _, err := w.AppendOwn(ctx, trail.OperatorTenant, ledger.Records(rec)); err != nil {
			t.Fatalf("a record in the operators' log: %v", err)
		}
	}
	// A refused append leaves no log behind.
	if _, err := s.Append(ctx, "initech", []*trail.Event{{Action: "no_such_action"}}, trail.AppendOptions{}); err == nil {
		t.Fatal("an append of an unknown action was stored")
	}
	got, err := tl.Tenants(ctx)
	if want := []string{trail.OperatorTenant, "a-b", "acme", "globex"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("Tenants = %v, %v; want %v", got, err, want)
	}
}
