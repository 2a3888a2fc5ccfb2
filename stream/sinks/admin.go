package sinks

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/internal/ledger"
)

// Adding and removing a sink changes where a tenant's log goes, so each is
// recorded in that log (admin_config_changed, config_key "sink:NAME", the
// configuration as Public shows it, never its secret), and recorded
// first: a change that fails after its record leaves a record of a change
// not made, which says so, rather than a sink that streams the log
// somewhere with no record of it, or one removed unseen.

// Add checks c, records it in its tenant's log by actor and stores it. It
// returns the configuration as stored and the seq of its record. A zero
// CreatedAt is now; a zero CreatedBy is the actor's id.
func Add(ctx context.Context, store trail.SinkStore, w ledger.Writer, c *trail.SinkConfig, actor trail.Actor, now time.Time) (*trail.SinkConfig, uint64, error) {
	in := *c
	if in.CreatedBy == "" {
		in.CreatedBy = actor.ID
	}
	p, err := trail.PrepareSink(&in, now)
	if err != nil {
		return nil, 0, err
	}
	switch _, err := store.GetSink(ctx, p.Tenant, p.Name); {
	case err == nil:
		return nil, 0, trail.Errorf(trail.ECONFLICT, "tenant %s has a sink %q already", p.Tenant, p.Name)
	case trail.ErrorCode(err) != trail.ENOTFOUND:
		return nil, 0, err
	}
	seq, err := record(ctx, w, p.Tenant, p.Name, nil, p, actor)
	if err != nil {
		return nil, 0, err
	}
	if err := store.PutSink(ctx, p); err != nil {
		return nil, seq, notDone(err, seq, "added")
	}
	return p, seq, nil
}

// Remove records the removal of tenant's sink name by actor and removes
// it, and returns the seq of the record. An unknown sink is ENOTFOUND,
// and nothing is recorded.
func Remove(ctx context.Context, store trail.SinkStore, w ledger.Writer, tenant, name string, actor trail.Actor) (uint64, error) {
	old, err := store.GetSink(ctx, tenant, name)
	if err != nil {
		return 0, err
	}
	seq, err := record(ctx, w, tenant, name, old, nil, actor)
	if err != nil {
		return 0, err
	}
	if err := store.DeleteSink(ctx, tenant, name); err != nil {
		return seq, notDone(err, seq, "removed")
	}
	return seq, nil
}

// notDone is the error of a change that failed after its record.
func notDone(err error, seq uint64, what string) error {
	return &trail.Error{Code: trail.ErrorCode(err), Err: err,
		Message: fmt.Sprintf("%s (the change is recorded at seq %d, but the sink was not %s)", trail.ErrorMessage(err), seq, what)}
}

// record appends to tenant's log the admin_config_changed record of sink
// name's configuration going from one to another (nil: none), and returns
// its seq.
func record(ctx context.Context, w ledger.Writer, tenant, name string, from, to *trail.SinkConfig, actor trail.Actor) (uint64, error) {
	res, err := w.AppendOwn(ctx, tenant, ledger.Records(&trail.Event{Action: catalog.AdminConfigChanged, Actor: actor,
		Context: map[string]any{"config_key": "sink:" + name, "old_value": shown(from), "new_value": shown(to), "changed_by": actor.ID}}))
	if err != nil {
		return 0, &trail.Error{Code: trail.EINTERNAL, Err: err,
			Message: fmt.Sprintf("the change of sink %s could not be recorded in the log, so it was not made", name)}
	}
	return res.Events[0].Seq, nil
}

// shown is c as a record holds it: its public fields as JSON values, or
// nil.
func shown(c *trail.SinkConfig) any {
	if c == nil {
		return nil
	}
	b, err := json.Marshal(c.Public())
	if err != nil {
		panic(err) // a SinkConfig always encodes
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		panic(err)
	}
	return v
}
