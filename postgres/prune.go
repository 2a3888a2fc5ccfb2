package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/trailaudit/trail/internal/ledger"
)

// pruning is what a Prune's transaction writes after its record: the rows
// to clear, and the event_targets rows to delete.
type pruning struct {
	seqs       []int64
	by         int64 // the record's seq
	tseq       []int64
	ttype, tid []string
}

// checkPrune returns what a prune batch b (sequenced after h, with the
// tenant's head locked) writes after its record, checking every seq
// first: nil for a batch that is not a prune.
func checkPrune(ctx context.Context, conn *pgxpool.Conn, b *ledger.Batch, h *ledger.Head) (*pruning, error) {
	if b.Prune == nil {
		return nil, nil
	}
	pc, err := b.CheckPrune(h)
	if err != nil {
		return nil, err
	}
	p := &pruning{seqs: make([]int64, len(b.Prune)), by: int64(h.Seq)}
	for i, s := range b.Prune {
		p.seqs[i] = int64(s)
	}
	rows, err := conn.Query(ctx, "SELECT seq, body, pruned IS NOT NULL, action FROM events WHERE tenant = $1 AND seq = ANY($2) ORDER BY seq", b.Tenant, p.seqs)
	if err != nil {
		return nil, internal(err, "read events to prune")
	}
	var (
		seq    int64
		body   []byte
		pruned bool
		action string
	)
	_, err = pgx.ForEachRow(rows, []any{&seq, &body, &pruned, &action}, func() error {
		if err := pc.Row(uint64(seq), pruned, action); err != nil {
			return err
		}
		ts, err := ledger.PrunedTargets(uint64(seq), body)
		if err != nil {
			return err
		}
		for _, t := range ts {
			p.tseq, p.ttype, p.tid = append(p.tseq, seq), append(p.ttype, t.Type), append(p.tid, t.ID)
		}
		return nil
	})
	if err != nil {
		return nil, internal(err, "read events to prune")
	}
	if err := pc.Done(); err != nil {
		return nil, err
	}
	return p, nil
}

// queue adds p's writes to the batch that ends the transaction, after the
// record and the head's update: the row trigger lets a payload go only to
// an audit_log_pruned event that is the tenant's head. It does nothing for
// a nil p.
func (p *pruning) queue(b *pgx.Batch, tenant string) {
	if p == nil {
		return
	}
	b.Queue(`UPDATE events SET body = NULL, actor_id = '', organization = '', workspace = '', team = '', correlation_id = '', pruned = $3
		WHERE tenant = $1 AND seq = ANY($2)`, tenant, p.seqs, p.by)
	if len(p.tseq) > 0 {
		// A target named twice on an event has two rows: both go.
		b.Queue(`DELETE FROM event_targets t USING (SELECT DISTINCT * FROM unnest($2::bigint[], $3::text[], $4::text[])) AS x(seq, type, id)
			WHERE t.tenant = $1 AND t.id = x.id AND t.type = x.type AND t.seq = x.seq`, tenant, p.tseq, p.ttype, p.tid)
	}
}
