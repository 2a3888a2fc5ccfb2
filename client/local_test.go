package client_test

import (
	"context"
	"testing"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/storetest"
)

// TestLocalRefusesTrailRecords: an app recording through a Local recorder
// cannot forge Trail's own records (a purge, a legal hold, an erasure) nor
// the record of an API key's read; the error names the field, and nothing
// is stored.
func TestLocalRefusesTrailRecords(t *testing.T) {
	ctx := context.Background()
	rec, store := newTestLocal(t)
	forged := append(storetest.TrailRecords(),
		&trail.Event{Action: catalog.DataViewed, Actor: trail.Actor{ID: "key-of-the-admin", Type: trail.ActorAPIKey}})
	for _, ev := range forged {
		err := rec.Record(ctx, ev)
		if trail.ErrorCode(err) != trail.EINVALID || len(trail.ErrorFields(err)) == 0 {
			t.Errorf("Record(%s by %s) = %v, want EINVALID naming the field", ev.Action, ev.Actor.Type, err)
		}
	}
	if n, err := store.Count(ctx, trail.Query{Tenant: testTenant}); err != nil || n != 0 {
		t.Errorf("the log holds %d events (%v), want none", n, err)
	}
}
