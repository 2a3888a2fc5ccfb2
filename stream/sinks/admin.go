package sinks

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/internal/ledger"
	"github.com/trailaudit/trail/stream"
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

// Actor is the actor of the supervisor's own records: a sink stopped for
// good, an event skipped.
var Actor = trail.Actor{Type: trail.ActorSystem, ID: "trail-sinks", Name: "Trail sinks"}

// TargetType is the type of the target of every record about a sink: the
// sink, by name.
const TargetType = "sink"

// appendRecord appends one of Trail's own records about tenant's sink name
// and returns its seq.
func appendRecord(ctx context.Context, w ledger.Writer, tenant, name, action string, actor trail.Actor, c map[string]any) (uint64, error) {
	c["sink"] = name
	res, err := w.AppendOwn(ctx, tenant, ledger.Records(&trail.Event{Action: action, Actor: actor,
		Targets: []trail.Target{{Type: TargetType, ID: name}}, Context: c}))
	if err != nil {
		return 0, err
	}
	return res.Events[0].Seq, nil
}

// Resumed records in tenant's log that actor resumed sink name, which had
// stopped with stoppedBy, and returns the seq of the record. Resume it
// (Supervisor.Resume) after: a sink that delivers again with no record
// of it is what this prevents.
func Resumed(ctx context.Context, w ledger.Writer, tenant, name, stoppedBy string, actor trail.Actor) (uint64, error) {
	seq, err := appendRecord(ctx, w, tenant, name, catalog.SinkResumed, actor, map[string]any{"stopped_by": stoppedBy})
	if err != nil {
		return 0, &trail.Error{Code: trail.EINTERNAL, Err: err,
			Message: fmt.Sprintf("the resume of sink %s could not be recorded in the log, so it was not resumed", name)}
	}
	return seq, nil
}

// recordStop records in the sink's tenant's log that r stopped for good
// (sink_stopped), with the reason its status gives. A record that cannot
// be written is logged and added to the status's error: the stop stands
// either way, and the log line and status say it.
func (sv *Supervisor) recordStop(ctx context.Context, r *runner) {
	st := r.status()
	if _, err := appendRecord(ctx, sv.c.Writer, r.cfg.Tenant, r.cfg.Name, catalog.SinkStopped, Actor,
		map[string]any{"reason": st.LastError, "cursor": st.Cursor}); err != nil {
		sv.c.Logger.ErrorContext(ctx, "sinks: the stop of a sink could not be recorded in its log", "tenant", r.cfg.Tenant, "sink", r.cfg.Name, "err", err)
		r.note("the stop could not be recorded in the log: " + trail.ErrorMessage(err))
	}
}

// skipper returns the stream.Config.Skip of tenant's sink name: it
// records each event skipped (sink_skipped). It refuses to skip the
// sink's own record of a skip: a receiver refusing those would have the
// sink record skips forever, so that stops the sink instead.
func (sv *Supervisor) skipper(tenant, name string) func(context.Context, stream.Record, string) error {
	return func(ctx context.Context, rec stream.Record, reason string) error {
		var ev struct {
			Action  string `json:"action"`
			Context struct {
				Sink string `json:"sink"`
			} `json:"context"`
		}
		if json.Unmarshal(rec.Body, &ev) == nil && ev.Action == catalog.SinkSkipped && ev.Context.Sink == name {
			return fmt.Errorf("sinks: the receiver refused the sink's own record of a skip (seq %d), which it will not skip: %w", rec.Seq, &stream.Refused{Reason: reason})
		}
		_, err := appendRecord(ctx, sv.c.Writer, tenant, name, catalog.SinkSkipped, Actor,
			map[string]any{"skipped_seq": rec.Seq, "reason": reason})
		return err
	}
}
