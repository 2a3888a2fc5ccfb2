package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"slices"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/tlog"
)

var _ trail.Pruner = (*DB)(nil)

// pruneKey carries a Prune's seqs through Append to the writer.
type pruneKey struct{}

// pruneSeqs returns the seqs Prune put in ctx, or nil for a plain Append.
func pruneSeqs(ctx context.Context) []uint64 {
	seqs, _ := ctx.Value(pruneKey{}).([]uint64)
	return seqs
}

// Prune removes the payloads of tenant's events at seqs and appends record
// (their audit_log_pruned event), in one transaction of the writer
// goroutine: the record goes through Append's path (validation,
// redaction, seq, tree hashes, CheckHead, the commit's signed checkpoint)
// with the seqs riding along, and the writer prunes them right after
// inserting it, before anything else of the commit (see txWriter.prune).
// A Prune that fails leaves nothing behind, even in a shared group commit
// (its savepoint is rolled back).
//
// Pruning a row sets body to an empty blob and actor_id, organization,
// workspace, team and correlation_id to empty strings, deletes its targets
// rows, and sets pruned to the record's seq; hashes and the other columns
// stay. Record must be an audit_log_pruned event whose seq_ranges name
// exactly seqs (tlog.PruneSeqs); a seq the tenant does not have, one
// pruned already, one given twice and one of an audit_log_pruned event are
// refused (EINVALID), and then nothing is pruned or appended.
func (db *DB) Prune(ctx context.Context, tenant string, seqs []uint64, record *trail.Event) (*trail.AppendResult, error) {
	if _, err := tlog.PruneSeqs(record, seqs); err != nil {
		return nil, err
	}
	ctx = context.WithValue(ctx, pruneKey{}, slices.Clone(seqs))
	return db.Append(ctx, tenant, []*trail.Event{record}, trail.AppendOptions{})
}

// prune clears the payloads of r.prune in tenant h, whose last event is
// r's record, just inserted: the update trigger allows a row's payload to
// go only to an audit_log_pruned event that is the tenant's latest.
// It does nothing for a plain Append (r.prune nil), whose purge records
// apply refused before writing anything.
func (w *txWriter) prune(ctx context.Context, h *head, r *appendReq) error {
	if r.prune == nil {
		return nil
	}
	if len(r.events) != 1 {
		return trail.Errorf(trail.EINTERNAL, "sqlite: a prune carries one record, not %d events", len(r.events))
	}
	seqs, err := tlog.PruneSeqs(r.events[0], r.prune) // the record as validated
	if err != nil {
		return err
	}
	by := r.events[0].Seq
	var stmts []*sql.Stmt
	defer func() {
		for _, st := range stmts {
			st.Close()
		}
	}()
	prepare := func(q string) (*sql.Stmt, error) {
		st, err := w.tx.PrepareContext(ctx, q)
		if err != nil {
			return nil, internal(err, "prepare prune")
		}
		stmts = append(stmts, st)
		return st, nil
	}
	// One read and one update per run of consecutive seqs (retention's
	// seqs come in runs), one delete per targets row.
	sel, err := prepare("SELECT key, body, pruned IS NOT NULL, action FROM events WHERE key BETWEEN ? AND ? ORDER BY key")
	if err != nil {
		return err
	}
	upd, err := prepare("UPDATE events SET body = X'', actor_id = '', organization = '', workspace = '', team = '', correlation_id = '', pruned = ? WHERE key BETWEEN ? AND ?")
	if err != nil {
		return err
	}
	del, err := prepare("DELETE FROM targets WHERE id = ? AND key = ? AND type = ?")
	if err != nil {
		return err
	}
	type target struct {
		key      int64
		id, kind string
	}
	var targets []target
	for _, run := range tlog.SeqRanges(seqs) {
		if run[1] >= by {
			return trail.Errorf(trail.EINVALID, "tenant %s has no event at seq %d to prune", r.tenant, max(run[0], by))
		}
		lo, hi := rowKey(h.tid, run[0]), rowKey(h.tid, run[1])
		rows, err := sel.QueryContext(ctx, lo, hi)
		if err != nil {
			return internal(err, "read events to prune")
		}
		next := lo // the key expected next
		targets = targets[:0]
		for rows.Next() {
			var (
				key    int64
				body   []byte
				pruned bool
				action string
			)
			if err := rows.Scan(&key, &body, &pruned, &action); err != nil {
				rows.Close()
				return internal(err, "read events to prune")
			}
			seq := keySeq(key)
			var bad error
			switch {
			case key != next:
				bad = trail.Errorf(trail.EINVALID, "tenant %s has no event at seq %d to prune", r.tenant, keySeq(next))
			case pruned:
				bad = trail.Errorf(trail.EINVALID, "the event at seq %d is pruned already", seq)
			case action == tlog.PrunedAction:
				bad = trail.Errorf(trail.EINVALID, "the event at seq %d is an %s record, the proof of a purge: it is never pruned", seq, tlog.PrunedAction)
			}
			if bad != nil {
				rows.Close()
				return bad
			}
			ts, err := bodyTargets(body)
			if err != nil {
				rows.Close()
				return trail.Errorf(trail.EINTERNAL, "sqlite: the event at seq %d does not decode: %v", seq, err)
			}
			for _, t := range ts {
				targets = append(targets, target{key, t.ID, t.Type})
			}
			next++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return internal(err, "read events to prune")
		}
		if next != hi+1 {
			return trail.Errorf(trail.EINVALID, "tenant %s has no event at seq %d to prune", r.tenant, keySeq(next))
		}
		if _, err := upd.ExecContext(ctx, int64(by), lo, hi); err != nil {
			return internal(err, "prune events")
		}
		for _, t := range targets {
			if _, err := del.ExecContext(ctx, t.id, t.key, t.kind); err != nil {
				return internal(err, "delete targets of a pruned event")
			}
		}
	}
	return nil
}

// bodyTargets returns the targets an event's stored bytes hold: the rows
// of targets to delete with it.
func bodyTargets(body []byte) ([]trail.Target, error) {
	var ev struct {
		Targets []trail.Target `json:"targets"`
	}
	err := json.Unmarshal(body, &ev)
	return ev.Targets, err
}
