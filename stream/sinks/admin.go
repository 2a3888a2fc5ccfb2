package sinks

import (
	"context"
	"encoding/json"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/ledger"
)

// Adding and removing a sink changes where a tenant's log goes, so each is
// recorded in that log first (ledger.RecordChange: admin_config_changed,
// config_key "sink:NAME", the configuration as Public shows it, never its
// secret): no sink streams the log somewhere with no record of it, and
// none is removed unseen.

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
		return nil, seq, ledger.NotDone(err, seq, "the sink was not added")
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
		return seq, ledger.NotDone(err, seq, "the sink was not removed")
	}
	return seq, nil
}

// record records the change of tenant's sink name from one configuration
// to another (nil: none) by actor.
func record(ctx context.Context, w ledger.Writer, tenant, name string, from, to *trail.SinkConfig, actor trail.Actor) (uint64, error) {
	return ledger.RecordChange(ctx, w, tenant, "sink:"+name, shown(from), shown(to), actor)
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
