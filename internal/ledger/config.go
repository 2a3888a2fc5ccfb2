package ledger

import (
	"context"
	"fmt"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
)

// A change of what Trail does with a tenant's log (where it streams, which
// rules run over it) is recorded in that log, and recorded first: a change
// that fails after its record leaves a record of a change not made, which
// says so (NotDone), rather than a change made with no record of it.
// stream/sinks and detect record theirs through RecordChange.

// RecordChange appends to tenant's log the admin_config_changed record of
// the configuration key going from one value to another (nil: none) by
// actor, and returns its seq. It fails, saying the change was not made,
// when the record cannot be written: the caller must then not make it.
func RecordChange(ctx context.Context, w Writer, tenant, key string, from, to any, actor trail.Actor) (uint64, error) {
	res, err := w.AppendOwn(ctx, tenant, Records(&trail.Event{Action: catalog.AdminConfigChanged, Actor: actor,
		Context: map[string]any{"config_key": key, "old_value": from, "new_value": to, "changed_by": actor.ID}}))
	if err != nil {
		return 0, &trail.Error{Code: trail.EINTERNAL, Err: err,
			Message: fmt.Sprintf("the change of %s could not be recorded in the log, so it was not made", key)}
	}
	return res.Events[0].Seq, nil
}

// NotDone is the error of a change recorded at seq that then failed with
// err; what says what was not done ("the sink was not added").
func NotDone(err error, seq uint64, what string) error {
	return &trail.Error{Code: trail.ErrorCode(err), Err: err,
		Message: fmt.Sprintf("%s (the change is recorded at seq %d, but %s)", trail.ErrorMessage(err), seq, what)}
}
