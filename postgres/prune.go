package postgres

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/tlog"
)

var _ trail.Pruner = (*DB)(nil)

// pruneKey carries a Prune's seqs through Append to appendTx.
type pruneKey struct{}

// Prune removes the payloads of tenant's events at seqs and appends record
// (their audit_log_pruned event), in one transaction: record goes through
// Append (validation, redaction, sealing, the head lock, CheckHead, tree
// hashes, the signed checkpoint) with the seqs riding along; appendTx,
// holding the tenant's head locked, checks them (checkPrune) before it
// writes anything, and queues the prune after the record's INSERT and the
// head's UPDATE, before COMMIT, in the same round trip.
//
// Pruning a row sets body to NULL and actor_id, organization, workspace,
// team and correlation_id to empty strings, deletes its event_targets
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

// pruning is what a Prune's transaction writes after its record: the rows
// to clear, and the event_targets rows to delete.
type pruning struct {
	seqs       []int64
	by         int64 // the record's seq
	tseq       []int64
	ttype, tid []string
}

// checkPrune returns what a Prune (through appendTx, with the tenant's head
// h locked) writes after its record, prepared, checking every seq first:
// nil for a plain Append, which it refuses if it carries audit_log_pruned
// events.
func checkPrune(ctx context.Context, conn *pgxpool.Conn, tenant string, h head, prepared []*trail.Event) (*pruning, error) {
	seqs, _ := ctx.Value(pruneKey{}).([]uint64)
	if seqs == nil {
		return nil, tlog.RefuseRecords(prepared) // Prune alone appends them
	}
	if len(prepared) != 1 {
		return nil, trail.Errorf(trail.EINTERNAL, "postgres: a prune carries one record, not %d events", len(prepared))
	}
	sorted, err := tlog.PruneSeqs(prepared[0], seqs)
	if err != nil {
		return nil, err
	}
	p := &pruning{seqs: make([]int64, len(sorted)), by: int64(h.seq) + 1}
	for i, s := range sorted {
		if s >= uint64(p.by) {
			return nil, trail.Errorf(trail.EINVALID, "tenant %s has no event at seq %d to prune", tenant, s)
		}
		p.seqs[i] = int64(s)
	}
	rows, err := conn.Query(ctx, "SELECT seq, body, pruned IS NOT NULL, action FROM events WHERE tenant = $1 AND seq = ANY($2) ORDER BY seq", tenant, p.seqs)
	if err != nil {
		return nil, internal(err, "read events to prune")
	}
	var (
		seq    int64
		body   []byte
		pruned bool
		action string
		next   int // index in p.seqs of the next row expected
	)
	_, err = pgx.ForEachRow(rows, []any{&seq, &body, &pruned, &action}, func() error {
		if seq != p.seqs[next] {
			return trail.Errorf(trail.EINVALID, "tenant %s has no event at seq %d to prune", tenant, p.seqs[next])
		}
		next++
		switch {
		case pruned:
			return trail.Errorf(trail.EINVALID, "the event at seq %d is pruned already", seq)
		case action == tlog.PrunedAction:
			return trail.Errorf(trail.EINVALID, "the event at seq %d is an %s record, the proof of a purge: it is never pruned", seq, tlog.PrunedAction)
		}
		var ev struct {
			Targets []trail.Target `json:"targets"`
		}
		if err := json.Unmarshal(body, &ev); err != nil {
			return trail.Errorf(trail.EINTERNAL, "postgres: the event at seq %d does not decode: %v", seq, err)
		}
		for _, t := range ev.Targets {
			p.tseq, p.ttype, p.tid = append(p.tseq, seq), append(p.ttype, t.Type), append(p.tid, t.ID)
		}
		return nil
	})
	if err != nil {
		return nil, internal(err, "read events to prune")
	}
	if next < len(p.seqs) {
		return nil, trail.Errorf(trail.EINVALID, "tenant %s has no event at seq %s to prune", tenant, strconv.FormatInt(p.seqs[next], 10))
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
