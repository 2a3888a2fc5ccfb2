package sqlite

import (
	"context"
	"database/sql"

	"github.com/trailaudit/trail/internal/ledger"
	"github.com/trailaudit/trail/tlog"
)

// prune clears the payloads of b.Prune in tenant h, whose last event is
// b's record, just inserted: the update trigger allows a row's payload to
// go only to an audit_log_pruned event that is the tenant's latest. It
// does nothing for a batch that is not a prune.
func (w *txWriter) prune(ctx context.Context, h *head, b *ledger.Batch) error {
	if b.Prune == nil {
		return nil
	}
	pc, err := b.CheckPrune(h.Head)
	if err != nil {
		return err
	}
	by := h.Seq
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
	for _, run := range tlog.SeqRanges(b.Prune) {
		lo, hi := rowKey(h.tid, run[0]), rowKey(h.tid, run[1])
		rows, err := sel.QueryContext(ctx, lo, hi)
		if err != nil {
			return internal(err, "read events to prune")
		}
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
			if err := pc.Row(seq, pruned, action); err != nil {
				rows.Close()
				return err
			}
			ts, err := ledger.PrunedTargets(seq, body)
			if err != nil {
				rows.Close()
				return err
			}
			for _, t := range ts {
				targets = append(targets, target{key, t.ID, t.Type})
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return internal(err, "read events to prune")
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
	return pc.Done()
}
