package postgres

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/tlog"
)

// logChunk is how many checkpoints or leaves the Log methods read per
// query. Each chunk is read whole before its callbacks run, so no
// connection is held while they do (they may read the store themselves, as
// tlog.BundleWriter does).
var logChunk = 1000

// Checkpoint returns tenant's latest signed checkpoint.
func (db *DB) Checkpoint(ctx context.Context, tenant string) ([]byte, error) {
	if err := db.enter(); err != nil {
		return nil, err
	}
	defer db.inflight.Done()
	var note []byte
	err := db.pool.QueryRow(ctx, "SELECT note FROM checkpoints WHERE tenant = $1 ORDER BY size DESC LIMIT 1", tenant).Scan(&note)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, trail.Errorf(trail.ENOTFOUND, "tenant %s has no checkpoint", tenant)
	}
	return note, internal(err, "read the checkpoint")
}

// Checkpoints calls fn with each of tenant's checkpoints, smallest first,
// reading them in chunks.
func (db *DB) Checkpoints(ctx context.Context, tenant string, fn func(note []byte) error) error {
	if err := db.enter(); err != nil {
		return err
	}
	defer db.inflight.Done()
	var after int64 = -1
	for {
		rows, err := db.pool.Query(ctx, "SELECT size, note FROM checkpoints WHERE tenant = $1 AND size > $2 ORDER BY size LIMIT $3",
			tenant, after, logChunk)
		if err != nil {
			return internal(err, "read checkpoints")
		}
		var note []byte
		notes := make([][]byte, 0, logChunk)
		if _, err := pgx.ForEachRow(rows, []any{&after, &note}, func() error {
			notes = append(notes, note)
			return nil
		}); err != nil {
			return internal(err, "read checkpoints")
		}
		for _, n := range notes {
			if err := fn(n); err != nil {
				return err
			}
		}
		if len(notes) < logChunk {
			return nil
		}
	}
}

// TreeHashes returns the hashes of tree nodes, read in one query from the
// rows that store them.
func (db *DB) TreeHashes(ctx context.Context, tenant string, nodes []trail.TreeNode) ([][]byte, error) {
	if err := db.enter(); err != nil {
		return nil, err
	}
	defer db.inflight.Done()
	return tlog.ReadTreeHashes(nodes, func(seqs []uint64) ([][]byte, error) {
		at := make(map[int64][]int, len(seqs))
		args := make([]int64, 0, len(seqs))
		for i, s := range seqs {
			if s > math.MaxInt64 {
				continue // no row holds it
			}
			if at[int64(s)] == nil {
				args = append(args, int64(s))
			}
			at[int64(s)] = append(at[int64(s)], i)
		}
		out := make([][]byte, len(seqs))
		rows, err := db.pool.Query(ctx, "SELECT seq, hashes FROM events WHERE tenant = $1 AND seq = ANY($2)", tenant, args)
		if err != nil {
			return nil, internal(err, "read tree hashes")
		}
		var (
			seq    int64
			hashes []byte
		)
		_, err = pgx.ForEachRow(rows, []any{&seq, &hashes}, func() error {
			for _, i := range at[seq] {
				out[i] = hashes
			}
			return nil
		})
		return out, internal(err, "read tree hashes")
	})
}

// ScanLeaves reads tenant's rows as stored, in chunks of seq (each a query
// from the seq after the last row read), up to the last row stored when it
// began when to is 0. A chunk's bytes share one buffer, reused by the next
// chunk.
func (db *DB) ScanLeaves(ctx context.Context, tenant string, from, to uint64, fn func(trail.Leaf) error) error {
	if err := db.enter(); err != nil {
		return err
	}
	defer db.inflight.Done()
	from = max(from, 1)
	if to == 0 {
		var last *int64
		if err := db.pool.QueryRow(ctx, "SELECT max(seq) FROM events WHERE tenant = $1", tenant).Scan(&last); err != nil {
			return internal(err, "read leaves")
		}
		if last == nil {
			return nil
		}
		to = uint64(*last) + 1
	}
	to = min(to, math.MaxInt64)
	// A row's body is buf[previous row's end:mid], its hashes buf[mid:end].
	type row struct {
		seq      uint64
		mid, end int
	}
	var (
		buf []byte
		rs  []row
	)
	for from < to {
		rows, err := db.pool.Query(ctx, "SELECT seq, body, hashes FROM events WHERE tenant = $1 AND seq >= $2 AND seq < $3 ORDER BY seq LIMIT $4",
			tenant, int64(from), int64(to), logChunk)
		if err != nil {
			return internal(err, "read leaves")
		}
		buf, rs = buf[:0], rs[:0]
		var (
			seq          int64
			body, hashes pgtype.DriverBytes // valid until the next row: copied into buf
		)
		_, err = pgx.ForEachRow(rows, []any{&seq, &body, &hashes}, func() error {
			buf = append(buf, body...)
			mid := len(buf)
			buf = append(buf, hashes...)
			rs = append(rs, row{uint64(seq), mid, len(buf)})
			return nil
		})
		if err != nil {
			return internal(err, "read leaves")
		}
		start := 0
		for _, r := range rs {
			l := trail.Leaf{Seq: r.seq, Body: buf[start:r.mid:r.mid], Hashes: buf[r.mid:r.end:r.end]}
			if start == r.mid {
				l.Body = nil // pruned (prune.go)
			}
			if err := fn(l); err != nil {
				return err
			}
			start = r.end
		}
		if len(rs) < logChunk {
			return nil
		}
		from = rs[len(rs)-1].seq + 1
	}
	return nil
}

// ScanIndex reads the index columns of the events rows and the
// event_targets rows in chunks of logChunk events, each chunk in one
// read-only snapshot, read whole before fn runs.
func (db *DB) ScanIndex(ctx context.Context, tenant string, from, to uint64, fn func(trail.IndexRow) error) error {
	if err := db.enter(); err != nil {
		return err
	}
	defer db.inflight.Done()
	lo, hi := int64(min(max(from, 1), math.MaxInt64)), int64(math.MaxInt64)
	if to != 0 && to < math.MaxInt64 {
		hi = int64(to)
	}
	for lo < hi {
		var rows []trail.IndexRow
		err := pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
			var err error
			rows, lo, err = readIndex(ctx, tx, tenant, lo, hi)
			return err
		})
		if err != nil {
			return internal(err, "read index")
		}
		for _, r := range rows {
			if err := fn(r); err != nil {
				return err
			}
		}
	}
	return nil
}

// readIndex reads the index values of up to logChunk events rows from seq
// lo on (below hi), and the event_targets rows of the seqs they span, and
// returns them by seq with the seq the next chunk starts at.
func readIndex(ctx context.Context, tx pgx.Tx, tenant string, lo, hi int64) ([]trail.IndexRow, int64, error) {
	rows, err := tx.Query(ctx, `SELECT seq, id, recorded_at, recorded_ns, occurred_at, occurred_ns, action, category, outcome,
		actor_id, actor_type, organization, workspace, team, correlation_id, pruned IS NOT NULL
		FROM events WHERE tenant = $1 AND seq >= $2 AND seq < $3 ORDER BY seq LIMIT $4`, tenant, lo, hi, logChunk)
	if err != nil {
		return nil, 0, err
	}
	var (
		out      []trail.IndexRow
		r        trail.IndexRow
		seq      int64
		id       [16]byte
		rec, occ time.Time
		rns, ons int32
	)
	ix := &r.Index
	if _, err := pgx.ForEachRow(rows, []any{&seq, &id, &rec, &rns, &occ, &ons, &ix.Action, &ix.Category, &ix.Outcome,
		&ix.ActorID, &ix.ActorType, &ix.Organization, &ix.Workspace, &ix.Team, &ix.CorrelationID, &r.Pruned}, func() error {
		r.Seq, ix.ID = uint64(seq), trail.FormatID(id)
		ix.RecordedAt, ix.OccurredAt = rec.UTC().Add(time.Duration(rns)), occ.UTC().Add(time.Duration(ons))
		out = append(out, r)
		return nil
	}); err != nil {
		return nil, 0, err
	}
	end := hi
	if len(out) == logChunk {
		end = int64(out[len(out)-1].Seq) + 1
	}
	trows, err := tx.Query(ctx, "SELECT seq, type, id FROM event_targets WHERE tenant = $1 AND seq >= $2 AND seq < $3 ORDER BY seq", tenant, lo, end)
	if err != nil {
		return nil, 0, err
	}
	var (
		targets []trail.SeqTarget
		t       trail.SeqTarget
	)
	if _, err := pgx.ForEachRow(trows, []any{&seq, &t.Target.Type, &t.Target.ID}, func() error {
		t.Seq = uint64(seq)
		targets = append(targets, t)
		return nil
	}); err != nil {
		return nil, 0, err
	}
	return trail.WithTargets(out, targets), end, nil
}

// SizeRecords returns the size tenant's heads row records and the last seq
// its idempotency keys name.
func (db *DB) SizeRecords(ctx context.Context, tenant string) ([]trail.SizeRecord, error) {
	if err := db.enter(); err != nil {
		return nil, err
	}
	defer db.inflight.Done()
	var seq, keys int64
	err := db.pool.QueryRow(ctx, `SELECT h.seq, (SELECT coalesce(max(first_seq + n - 1), 0) FROM idempotency WHERE tenant = h.tenant)
		FROM heads h WHERE h.tenant = $1`, tenant).Scan(&seq, &keys)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, internal(err, "read size records")
	}
	return trail.HeadSizes("the heads row", uint64(seq), uint64(keys)), nil
}

var _ trail.TenantLister = (*DB)(nil)

// Tenants returns the name of every log that holds an event, in byte
// order.
func (db *DB) Tenants(ctx context.Context) ([]string, error) {
	if err := db.enter(); err != nil {
		return nil, err
	}
	defer db.inflight.Done()
	rows, err := db.pool.Query(ctx, "SELECT tenant FROM heads WHERE seq > 0 ORDER BY tenant")
	if err != nil {
		return nil, internal(err, "list tenants")
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, internal(err, "list tenants")
		}
		out = append(out, name)
	}
	return out, internal(rows.Err(), "list tenants")
}
