package sqlite

import (
	"context"

	"github.com/trailaudit/trail/internal/ledger"
	"github.com/trailaudit/trail/tlog"
)

// PruneRows reads the rows a prune clears, one read per run of
// consecutive seqs (retention's seqs come in runs). Rows the group
// gathered are written first.
func (t *tx) PruneRows(ctx context.Context, seqs []uint64) ([]ledger.PruneRow, error) {
	if err := t.g.flush(); err != nil {
		return nil, t.fail(err)
	}
	st, err := t.g.tx.PrepareContext(bg, "SELECT key, body, pruned IS NOT NULL, action FROM events WHERE key BETWEEN ? AND ? ORDER BY key")
	if err != nil {
		return nil, t.fail(internal(err, "prepare prune"))
	}
	defer st.Close()
	var out []ledger.PruneRow
	for _, run := range tlog.SeqRanges(seqs) {
		rows, err := st.QueryContext(bg, rowKey(t.tid, run[0]), rowKey(t.tid, run[1]))
		if err != nil {
			return nil, t.fail(internal(err, "read events to prune"))
		}
		for rows.Next() {
			var r ledger.PruneRow
			var key int64
			if err := rows.Scan(&key, &r.Body, &r.Pruned, &r.Action); err != nil {
				rows.Close()
				return nil, t.fail(internal(err, "read events to prune"))
			}
			r.Seq = keySeq(key)
			out = append(out, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, t.fail(internal(err, "read events to prune"))
		}
	}
	return out, nil
}

// Prune clears the rows, after the record is written (flush): the update
// trigger lets a row's payload go only to an audit_log_pruned event that is
// the tenant's latest. One update per run of seqs, one delete per targets
// row.
func (t *tx) Prune(ctx context.Context, seqs []uint64, by uint64, targets []ledger.PrunedTarget) error {
	t.wrote = true
	if err := t.g.flush(); err != nil {
		return t.fail(err)
	}
	upd, err := t.g.tx.PrepareContext(bg, "UPDATE events SET body = X'', actor_id = '', organization = '', workspace = '', team = '', correlation_id = '', pruned = ? WHERE key BETWEEN ? AND ?")
	if err != nil {
		return t.fail(internal(err, "prepare prune"))
	}
	defer upd.Close()
	for _, run := range tlog.SeqRanges(seqs) {
		if _, err := upd.ExecContext(bg, int64(by), rowKey(t.tid, run[0]), rowKey(t.tid, run[1])); err != nil {
			return t.fail(internal(err, "prune events"))
		}
	}
	if len(targets) == 0 {
		return nil
	}
	del, err := t.g.tx.PrepareContext(bg, "DELETE FROM targets WHERE id = ? AND key = ? AND type = ?")
	if err != nil {
		return t.fail(internal(err, "prepare prune"))
	}
	defer del.Close()
	for _, x := range targets {
		if _, err := del.ExecContext(bg, x.ID, rowKey(t.tid, x.Seq), x.Type); err != nil {
			return t.fail(internal(err, "delete targets of a pruned event"))
		}
	}
	return nil
}
