package retention

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/internal/ledger"
)

// PlaceHold places h (a random id when it has none) and records it in the
// tenant's log as legal_hold_placed, with actor as who did it. The hold
// stands before the event is appended: if the append fails, the hold still
// protects the events and the error says so. It returns the hold as stored
// and the seq of its record.
func PlaceHold(ctx context.Context, hs trail.HoldStore, w ledger.Writer, h *trail.Hold, actor trail.Actor) (*trail.Hold, uint64, error) {
	c := *h
	if c.ID == "" {
		var b [6]byte
		rand.Read(b[:])
		c.ID = "hold-" + hex.EncodeToString(b[:])
	}
	if c.CreatedBy == "" {
		c.CreatedBy = actor.ID
	}
	if c.Reason == "" {
		return nil, 0, trail.Invalid("bad legal hold", trail.FieldError{Path: "reason", Message: "required: the matter or case"})
	}
	if err := hs.PlaceHold(ctx, &c); err != nil {
		return nil, 0, err
	}
	b, err := json.Marshal(c.Filter)
	filter := map[string]any{}
	if err == nil {
		err = json.Unmarshal(b, &filter)
	}
	var res *trail.AppendResult
	if err == nil {
		res, err = w.AppendOwn(ctx, c.Tenant, ledger.Records(&trail.Event{Action: catalog.LegalHoldPlaced, Actor: actor,
			Context: map[string]any{"hold_id": c.ID, "filter": filter, "reason": c.Reason}}))
	}
	if err != nil {
		return &c, 0, &trail.Error{Code: trail.EINTERNAL, Err: err,
			Message: fmt.Sprintf("legal hold %s stands, but its legal_hold_placed event was not recorded", c.ID)}
	}
	return &c, res.Events[0].Seq, nil
}

// ReleaseHold records the release of the tenant's standing hold id as
// legal_hold_released, then releases it: a failure leaves the hold
// standing, never a release nobody recorded. It returns the seq of the
// record. An unknown hold is ENOTFOUND, one released already ECONFLICT.
func ReleaseHold(ctx context.Context, hs trail.HoldStore, w ledger.Writer, tenant, id, reason string, actor trail.Actor, now time.Time) (uint64, error) {
	holds, err := hs.Holds(ctx, tenant)
	if err != nil {
		return 0, err
	}
	var h *trail.Hold
	for _, x := range holds {
		if x.ID == id {
			h = x
		}
	}
	switch {
	case h == nil:
		return 0, trail.Errorf(trail.ENOTFOUND, "tenant %s has no legal hold %q", tenant, id)
	case !h.Active():
		return 0, trail.Errorf(trail.ECONFLICT, "legal hold %s was released at %s", id, h.ReleasedAt.UTC().Format(time.RFC3339))
	}
	ctxMap := map[string]any{"hold_id": id}
	if reason != "" {
		ctxMap["reason"] = reason
	}
	res, err := w.AppendOwn(ctx, tenant, ledger.Records(&trail.Event{Action: catalog.LegalHoldReleased, Actor: actor, Context: ctxMap}))
	if err != nil {
		return 0, &trail.Error{Code: trail.EINTERNAL, Err: err,
			Message: fmt.Sprintf("legal hold %s still stands: its release could not be recorded", id)}
	}
	if err := hs.ReleaseHold(ctx, tenant, id, now); err != nil {
		return res.Events[0].Seq, &trail.Error{Code: trail.EINTERNAL, Err: err,
			Message: fmt.Sprintf("the release of legal hold %s is recorded at seq %d, but the hold could not be released", id, res.Events[0].Seq)}
	}
	return res.Events[0].Seq, nil
}

// SubjectHeld returns an active hold covering an event of subject (as
// actor, or as the user an event is about), or nil: while one does, the
// subject must not be erased.
func SubjectHeld(ctx context.Context, hs trail.HoldStore, store trail.Store, tenant, subject string) (*trail.Hold, error) {
	holds, err := hs.Holds(ctx, tenant)
	if err != nil {
		return nil, err
	}
	for _, h := range holds {
		if !h.Active() {
			continue
		}
		f := h.Filter
		for _, q := range []trail.Query{
			{Tenant: tenant, ActorID: subject, TargetID: f.TargetID, RecordedAfter: f.From, RecordedBefore: f.Until},
			{Tenant: tenant, ActorID: f.ActorID, TargetType: "user", TargetID: subject, RecordedAfter: f.From, RecordedBefore: f.Until},
		} {
			if f.ActorID != "" && q.ActorID != f.ActorID {
				continue
			}
			n, err := store.Count(ctx, q)
			if err != nil {
				return nil, err
			}
			if n > 0 {
				return h, nil
			}
		}
	}
	return nil, nil
}
