package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/trailaudit/trail/internal/ledger"
)

// PruneRows reads the rows a prune clears, with the tenant's head locked.
func (t *tx) PruneRows(ctx context.Context, seqs []uint64) ([]ledger.PruneRow, error) {
	rows, err := t.conn.Query(ctx, "SELECT seq, body, pruned IS NOT NULL, action FROM events WHERE tenant = $1 AND seq = ANY($2) ORDER BY seq", t.b.Tenant, toInt64s(seqs))
	if err != nil {
		return nil, internal(err, "read events to prune")
	}
	var (
		out []ledger.PruneRow
		r   ledger.PruneRow
		seq int64
	)
	_, err = pgx.ForEachRow(rows, []any{&seq, &r.Body, &r.Pruned, &r.Action}, func() error {
		r.Seq = uint64(seq)
		out = append(out, r)
		r.Body = nil // the next row scans into a slice of its own
		return nil
	})
	if err != nil {
		return nil, internal(err, "read events to prune")
	}
	return out, nil
}

// Prune queues the prune's writes to ride with COMMIT, after the record
// and the head's update: the row trigger lets a payload go only to an
// audit_log_pruned event that is the tenant's head.
func (t *tx) Prune(ctx context.Context, seqs []uint64, by uint64, targets []ledger.PrunedTarget) error {
	tenant := t.b.Tenant
	t.batch.Queue(`UPDATE events SET body = NULL, actor_id = '', organization = '', workspace = '', team = '', correlation_id = '', pruned = $3
		WHERE tenant = $1 AND seq = ANY($2)`, tenant, toInt64s(seqs), int64(by))
	if len(targets) > 0 {
		tseq := make([]int64, len(targets))
		ttype := make([]string, len(targets))
		tid := make([]string, len(targets))
		for i, x := range targets {
			tseq[i], ttype[i], tid[i] = int64(x.Seq), x.Type, x.ID
		}
		// A target named twice on an event has two rows: both go.
		t.batch.Queue(`DELETE FROM event_targets t USING (SELECT DISTINCT * FROM unnest($2::bigint[], $3::text[], $4::text[])) AS x(seq, type, id)
			WHERE t.tenant = $1 AND t.id = x.id AND t.type = x.type AND t.seq = x.seq`, tenant, tseq, ttype, tid)
	}
	return nil
}

func toInt64s(seqs []uint64) []int64 {
	out := make([]int64, len(seqs))
	for i, s := range seqs {
		out[i] = int64(s)
	}
	return out
}
