package sqlite

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/trailaudit/trail"
)

// querier is what reads need: a transaction or a pool.
type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

// tenantID returns tenant's number, or 0 when it has stored nothing.
func tenantID(ctx context.Context, q querier, tenant string) (int64, error) {
	var tid int64
	err := q.QueryRowContext(ctx, "SELECT tid FROM tenants WHERE name = ?", tenant).Scan(&tid)
	if err == sql.ErrNoRows {
		return 0, nil
	}
	return tid, internal(err, "tenant")
}

// headSeq returns the tenant's last seq.
func headSeq(ctx context.Context, q querier, tid int64) (uint64, error) {
	var key int64
	err := q.QueryRowContext(ctx, "SELECT key FROM events WHERE key BETWEEN ? AND ? ORDER BY key DESC LIMIT 1",
		rowKey(tid, 1), rowKey(tid, maxSeq)).Scan(&key)
	if err == sql.ErrNoRows {
		return 0, nil
	}
	return keySeq(key), internal(err, "head")
}

// readRange returns the tenant's events with from <= seq < to.
func readRange(ctx context.Context, q querier, tid int64, from, to uint64) ([]*trail.Event, error) {
	if to <= from {
		return nil, nil
	}
	rows, err := q.QueryContext(ctx, "SELECT body FROM events WHERE key >= ? AND key < ? ORDER BY key", rowKey(tid, from), rowKey(tid, to))
	if err != nil {
		return nil, internal(err, "read")
	}
	return decodeRows(rows)
}

func decodeRows(rows *sql.Rows) ([]*trail.Event, error) {
	defer rows.Close()
	var out []*trail.Event
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&body); err != nil {
			return nil, internal(err, "read")
		}
		ev, err := trail.UnmarshalCanonical(body)
		if err != nil {
			return nil, trail.Errorf(trail.EINTERNAL, "sqlite: stored event does not decode: %v", err)
		}
		out = append(out, ev)
	}
	return out, internal(rows.Err(), "read")
}

func getOne(ctx context.Context, q querier, query string, args ...any) (*trail.Event, bool, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, false, internal(err, "read")
	}
	evs, err := decodeRows(rows)
	if err != nil || len(evs) == 0 {
		return nil, false, err
	}
	return evs[0], true, nil
}

// Get returns the event with id in tenant's log.
func (db *DB) Get(ctx context.Context, tenant, id string) (*trail.Event, error) {
	u, ok := trail.ParseID(id)
	if ok {
		ev, found, err := getOne(ctx, db.r, "SELECT e.body FROM events e JOIN tenants t ON t.tid = e.key >> 40 WHERE e.id = ? AND t.name = ?", u[:], tenant)
		if err != nil || found {
			return ev, err
		}
	}
	return nil, trail.Errorf(trail.ENOTFOUND, "no event %q", id)
}

// GetSeq returns the event at seq in tenant's log.
func (db *DB) GetSeq(ctx context.Context, tenant string, seq uint64) (*trail.Event, error) {
	if seq >= 1 && seq <= maxSeq {
		ev, found, err := getOne(ctx, db.r, "SELECT e.body FROM tenants t JOIN events e ON e.key = (t.tid << 40) | ? WHERE t.name = ?", int64(seq), tenant)
		if err != nil || found {
			return ev, err
		}
	}
	return nil, trail.Errorf(trail.ENOTFOUND, "no event at seq %d", seq)
}

// Scan reads the range in chunks, each its own query, so nothing is held
// open while fn runs and memory stays bounded.
func (db *DB) Scan(ctx context.Context, tenant string, from, to uint64, fn func(*trail.Event) error) error {
	tid, err := tenantID(ctx, db.r, tenant)
	if err != nil || tid == 0 {
		return err
	}
	head, err := headSeq(ctx, db.r, tid)
	if err != nil {
		return err
	}
	from = max(from, 1)
	if to == 0 || to > head+1 {
		to = head + 1
	}
	const chunk = 512
	for from < to {
		evs, err := readRange(ctx, db.r, tid, from, min(from+chunk, to))
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if err := fn(ev); err != nil {
				return err
			}
		}
		from = min(from+chunk, to)
	}
	return nil
}

// plan is a query turned into SQL: a key range for the tenant and its seq
// bounds, and conditions on the other filters.
type plan struct {
	lo, hi int64 // key range, inclusive
	where  []string
	args   []any
	empty  bool // nothing can match
}

// planQuery resolves the tenant and the recorded_at range (a seq range,
// since recorded_at never decreases along the log) and writes the rest as
// SQL conditions.
func planQuery(ctx context.Context, tx *sql.Tx, q *trail.Query) (*plan, error) {
	tid, err := tenantID(ctx, tx, q.Tenant)
	if err != nil || tid == 0 {
		return &plan{empty: true}, err
	}
	head, err := headSeq(ctx, tx, tid)
	if err != nil {
		return nil, err
	}
	from, to := uint64(1), head+1 // seq range, half-open
	if !q.RecordedAfter.IsZero() {
		if from, err = seqRecordedAt(ctx, tx, tid, head, q.RecordedAfter); err != nil {
			return nil, err
		}
	}
	if !q.RecordedBefore.IsZero() {
		if to, err = seqRecordedAt(ctx, tx, tid, head, q.RecordedBefore); err != nil {
			return nil, err
		}
	}
	p := &plan{lo: rowKey(tid, from), hi: rowKey(tid, to) - 1, empty: from >= to}
	eq := func(col, v string) {
		if v != "" {
			p.where = append(p.where, col+" = ?")
			p.args = append(p.args, v)
		}
	}
	eq("actor_id", q.ActorID)
	eq("actor_type", string(q.ActorType))
	eq("category", q.Category)
	eq("outcome", string(q.Outcome))
	eq("organization", q.Organization)
	eq("workspace", q.Workspace)
	eq("team", q.Team)
	eq("correlation_id", q.CorrelationID)
	if len(q.Actions) == 1 {
		eq("action", q.Actions[0])
	} else if len(q.Actions) > 1 {
		p.where = append(p.where, "action IN ("+strings.TrimSuffix(strings.Repeat("?,", len(q.Actions)), ",")+")")
		for _, a := range q.Actions {
			p.args = append(p.args, a)
		}
	}
	if !q.OccurredAfter.IsZero() {
		p.where = append(p.where, "occurred_at >= ?")
		p.args = append(p.args, q.OccurredAfter.UnixNano())
	}
	if !q.OccurredBefore.IsZero() {
		p.where = append(p.where, "occurred_at < ?")
		p.args = append(p.args, q.OccurredBefore.UnixNano())
	}
	if q.TargetID != "" || q.TargetType != "" {
		var sub []string
		var args []any
		if q.TargetID != "" {
			sub, args = append(sub, "t.id = ?"), append(args, q.TargetID)
		}
		if q.TargetType != "" {
			sub, args = append(sub, "t.type = ?"), append(args, q.TargetType)
		}
		p.where = append(p.where, "key IN (SELECT t.key FROM targets t WHERE "+strings.Join(sub, " AND ")+" AND t.key BETWEEN ? AND ?)")
		p.args = append(p.args, append(args, p.lo, p.hi)...)
	}
	return p, nil
}

// seqRecordedAt returns the first seq whose recorded_at is at or after t
// (head+1 when none is), by binary search over the log: recorded_at never
// decreases along it, so no index on time is needed.
func seqRecordedAt(ctx context.Context, tx *sql.Tx, tid int64, head uint64, t time.Time) (uint64, error) {
	lo, hi := uint64(1), head+1
	want := t.UnixNano()
	for lo < hi {
		mid := lo + (hi-lo)/2
		var rec int64
		if err := tx.QueryRowContext(ctx, "SELECT recorded_at FROM events WHERE key = ?", rowKey(tid, mid)).Scan(&rec); err != nil {
			return 0, internal(err, "seek recorded_at")
		}
		if rec >= want {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo, nil
}

// readTx runs fn in one read transaction, so a query sees one snapshot.
func (db *DB) readTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.r.BeginTx(ctx, nil)
	if err != nil {
		return internal(err, "begin read")
	}
	defer tx.Rollback()
	return fn(tx)
}

// Query returns one page of events matching q, in seq order.
func (db *DB) Query(ctx context.Context, q trail.Query) (*trail.Page, error) {
	limit, after, err := q.Paging()
	if err != nil {
		return nil, err
	}
	page := &trail.Page{}
	err = db.readTx(ctx, func(tx *sql.Tx) error {
		p, err := planQuery(ctx, tx, &q)
		if err != nil || p.empty {
			return err
		}
		if after != 0 {
			c := rowKey(p.lo>>seqBits, after)
			if q.Descending {
				p.hi = min(p.hi, c-1)
			} else {
				p.lo = max(p.lo, c+1)
			}
		}
		order := "ASC"
		if q.Descending {
			order = "DESC"
		}
		where := append([]string{"key BETWEEN ? AND ?"}, p.where...)
		args := append([]any{p.lo, p.hi}, p.args...)
		rows, err := tx.QueryContext(ctx, "SELECT body FROM events WHERE "+strings.Join(where, " AND ")+
			" ORDER BY key "+order+" LIMIT ?", append(args, limit+1)...)
		if err != nil {
			return internal(err, "query")
		}
		evs, err := decodeRows(rows)
		if err != nil {
			return err
		}
		if len(evs) > limit {
			evs = evs[:limit]
			page.Next = trail.EncodeCursor(evs[limit-1].Seq, q.Descending)
		}
		page.Events = evs
		return nil
	})
	if err != nil {
		return nil, err
	}
	return page, nil
}

// Count returns how many events match q.
func (db *DB) Count(ctx context.Context, q trail.Query) (int64, error) {
	if err := q.Check(); err != nil {
		return 0, err
	}
	var n int64
	err := db.readTx(ctx, func(tx *sql.Tx) error {
		p, err := planQuery(ctx, tx, &q)
		if err != nil || p.empty {
			return err
		}
		if len(p.where) == 0 {
			n = p.hi - p.lo + 1 // seqs are contiguous
			return nil
		}
		where := append([]string{"key BETWEEN ? AND ?"}, p.where...)
		return internal(tx.QueryRowContext(ctx, "SELECT count(*) FROM events WHERE "+strings.Join(where, " AND "),
			append([]any{p.lo, p.hi}, p.args...)...).Scan(&n), "count")
	})
	return n, err
}
