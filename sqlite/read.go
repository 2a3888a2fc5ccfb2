package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"slices"
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

// tid is tenantID for reads outside a transaction, remembered once found:
// the tenants table is append-only, so a tenant's number never changes.
func (db *DB) tid(ctx context.Context, tenant string) (int64, error) {
	if v, ok := db.tids.Load(tenant); ok {
		return v.(int64), nil
	}
	tid, err := tenantID(ctx, db.r, tenant)
	if err == nil && tid != 0 {
		db.tids.Store(tenant, tid)
	}
	return tid, err
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
	rows, err := q.QueryContext(ctx, "SELECT body FROM events WHERE key >= ? AND key < ? AND pruned IS NULL ORDER BY key", rowKey(tid, from), rowKey(tid, to))
	if err != nil {
		return nil, internal(err, "read")
	}
	return decodeRows(rows, nil)
}

// decodeRows decodes the bodies rows select, each checked by check (a
// trail.Query's Confirm, trail.ConfirmKey) when it is not nil.
func decodeRows(rows *sql.Rows, check func(*trail.Event) error) ([]*trail.Event, error) {
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
		if check != nil {
			if err := check(ev); err != nil {
				return nil, err
			}
		}
		out = append(out, ev)
	}
	return out, internal(rows.Err(), "read")
}

func getOne(ctx context.Context, q querier, check func(*trail.Event) error, query string, args ...any) (*trail.Event, bool, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, false, internal(err, "read")
	}
	evs, err := decodeRows(rows, check)
	if err != nil || len(evs) == 0 {
		return nil, false, err
	}
	return evs[0], true, nil
}

// Get returns the event with id in tenant's log.
func (db *DB) Get(ctx context.Context, tenant, id string) (*trail.Event, error) {
	u, ok := trail.ParseID(id)
	if ok {
		check := func(ev *trail.Event) error { return trail.ConfirmKey(ev, tenant, id, 0) }
		ev, found, err := getOne(ctx, db.r, check, "SELECT e.body FROM events e JOIN tenants t ON t.tid = e.key >> 40 WHERE e.id = ? AND t.name = ? AND e.pruned IS NULL", u[:], tenant)
		if err != nil || found {
			return ev, err
		}
	}
	return nil, trail.Errorf(trail.ENOTFOUND, "no event %q", id)
}

// GetSeq returns the event at seq in tenant's log.
func (db *DB) GetSeq(ctx context.Context, tenant string, seq uint64) (*trail.Event, error) {
	if seq >= 1 && seq <= maxSeq {
		check := func(ev *trail.Event) error { return trail.ConfirmKey(ev, tenant, "", seq) }
		ev, found, err := getOne(ctx, db.r, check, "SELECT e.body FROM tenants t JOIN events e ON e.key = (t.tid << 40) | ? WHERE t.name = ? AND e.pruned IS NULL", int64(seq), tenant)
		if err != nil || found {
			return ev, err
		}
	}
	return nil, trail.Errorf(trail.ENOTFOUND, "no event at seq %d", seq)
}

// scanRange returns tenant's number (0 when it has stored nothing) and the
// scan [from, to) clamped to its log as it is now (to == 0: all of it).
func (db *DB) scanRange(ctx context.Context, tenant string, from, to uint64) (int64, uint64, uint64, error) {
	tid, err := db.tid(ctx, tenant)
	if err != nil || tid == 0 {
		return 0, 0, 0, err
	}
	head, err := headSeq(ctx, db.r, tid)
	if err != nil {
		return 0, 0, 0, err
	}
	if to == 0 || to > head+1 {
		to = head + 1
	}
	return tid, max(from, 1), to, nil
}

// Scan reads the range in chunks, each its own query, so nothing is held
// open while fn runs and memory stays bounded.
func (db *DB) Scan(ctx context.Context, tenant string, from, to uint64, fn func(*trail.Event) error) error {
	tid, from, to, err := db.scanRange(ctx, tenant, from, to)
	if err != nil || tid == 0 {
		return err
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

// plan is a query turned into SQL: the tenant's key range (narrowed by the
// recorded_at range and the cursor), the rows to read from, and conditions
// on the other filters.
type plan struct {
	lo, hi  int64  // key range, inclusive
	from    string // "events e", or targets joined to events
	key     string // the key column to range over and order by
	where   []string
	args    []any
	empty   bool // nothing can match
	buckets int  // > 0: walk the key range's buckets of this many bits (bucketed indexes)
}

// planQuery resolves the tenant and the recorded_at range (a seq range,
// since recorded_at never decreases along the log) and writes the rest as
// SQL conditions. A filter on several actions is left out: the caller runs
// one query per action (each served by an index in key order) and merges.
func planQuery(ctx context.Context, tx *sql.Tx, q *trail.Query, bucketBits int) (*plan, error) {
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
	p := &plan{lo: rowKey(tid, from), hi: rowKey(tid, to) - 1, empty: from >= to, from: "events e", key: "e.key"}
	cond := func(c string, v any) {
		p.where = append(p.where, c)
		p.args = append(p.args, v)
	}
	eq := func(col, v string) {
		if v != "" {
			cond(col+" = ?", v)
		}
	}
	if q.TargetID != "" {
		// Driven by targets_id (bucket, id, key): in key order within a
		// bucket.
		p.from, p.key = "targets t JOIN events e ON e.key = t.key", "t.key"
		eq("t.id", q.TargetID)
		eq("t.type", q.TargetType)
	} else if q.TargetType != "" {
		// Targets are keyed in log order: read only the range's.
		p.where = append(p.where, "e.key IN (SELECT key FROM targets WHERE key BETWEEN ? AND ? AND type = ?)")
		p.args = append(p.args, p.lo, p.hi, q.TargetType)
	}
	// The actor, workspace and target indexes lead with the key's bucket
	// (schema.go, bucketBits): a filter on any of them is served by
	// walking the range's buckets in order, one index seek each.
	if p.key == "t.key" || q.ActorID != "" || q.Workspace != "" {
		p.buckets = bucketBits
	}
	eq("e.actor_id", q.ActorID)
	eq("e.actor_type", string(q.ActorType))
	eq("e.category", q.Category)
	eq("e.outcome", string(q.Outcome))
	eq("e.organization", q.Organization)
	eq("e.workspace", q.Workspace)
	eq("e.team", q.Team)
	eq("e.correlation_id", q.CorrelationID)
	if len(q.Actions) == 1 {
		eq("e.action", q.Actions[0])
	}
	if q.OpenAttempts {
		// An outcome may come after the query's recorded range: look for
		// it over the tenant's whole log (through the partial
		// correlation index).
		p.where = append(p.where, "e.outcome = 'attempted' AND e.correlation_id <> '' AND NOT EXISTS (SELECT 1 FROM events o "+
			"WHERE o.correlation_id = e.correlation_id AND o.correlation_id <> '' AND o.key BETWEEN ? AND ? AND o.outcome <> 'attempted')")
		p.args = append(p.args, rowKey(tid, 1), rowKey(tid, maxSeq))
	}
	if !q.OccurredAfter.IsZero() {
		cond("e.occurred_at >= ?", q.OccurredAfter.UnixNano())
	}
	if !q.OccurredBefore.IsZero() {
		cond("e.occurred_at < ?", q.OccurredBefore.UnixNano())
	}
	if !prunedCleared(q) {
		p.where = append(p.where, notPruned)
	}
	return p, nil
}

// notPruned is the condition that leaves pruned events out (prune.go).
const notPruned = "e.pruned IS NULL"

// prunedCleared reports whether q filters on a column that pruning clears
// (or on targets, whose rows it deletes): then no pruned event can match,
// and the query needs no condition on pruned, which would cost an index
// that covers the filter a lookup of each row.
func prunedCleared(q *trail.Query) bool {
	return q.ActorID != "" || q.Organization != "" || q.Workspace != "" || q.Team != "" || q.CorrelationID != "" ||
		q.TargetID != "" || q.TargetType != "" || q.OpenAttempts
}

// sql returns the statement selecting what over the plan, and its arguments.
// A bucket walk lists the range's buckets in a recursive table b, which
// SQLite walks in the order the statement's ORDER BY (p.order) asks for,
// seeking each bucket's entries in the bucketed index.
func (p *plan) sql(what, tail string) (string, []any) {
	with, args := "", []any{p.lo, p.hi}
	where := append([]string{p.key + " BETWEEN ? AND ?"}, p.where...)
	if p.buckets > 0 {
		with = "WITH RECURSIVE b(x) AS (VALUES(?) UNION ALL SELECT x+1 FROM b WHERE x < ?) "
		args = append([]any{p.lo >> p.buckets, p.hi >> p.buckets}, args...)
		where = append(where, bucketExpr(p.key, p.buckets)+" IN b")
	}
	return with + "SELECT " + what + " FROM " + p.from + " WHERE " + strings.Join(where, " AND ") + tail, append(args, p.args...)
}

// page returns the statement reading a page of bodies over the plan in seq
// order, newest first when desc, and its arguments but the last, the
// LIMIT.
func (p *plan) page(desc bool) (string, []any) {
	tail := p.order(desc) + " LIMIT ?"
	if p.key == "t.key" {
		// One row per event, though it may name the target twice.
		tail = " GROUP BY " + p.keys("") + tail
	}
	return p.sql("e.body", tail)
}

// order is the ORDER BY of a page in seq order: by bucket first in a
// bucket walk, which is the same order (a bucket is a run of keys) but
// one SQLite reads from the bucketed index without sorting.
func (p *plan) order(desc bool) string {
	dir := " ASC"
	if desc {
		dir = " DESC"
	}
	return " ORDER BY " + p.keys(dir)
}

// keys lists the plan's key, after its bucket in a bucket walk, each
// followed by suffix (a direction, or nothing).
func (p *plan) keys(suffix string) string {
	if p.buckets > 0 {
		return bucketExpr(p.key, p.buckets) + suffix + ", " + p.key + suffix
	}
	return p.key + suffix
}

// eachAction runs fn once per action of q (once with q as is when it names
// at most one), each time with q narrowed to that action.
func eachAction(q trail.Query, fn func(q trail.Query) error) error {
	if len(q.Actions) <= 1 {
		return fn(q)
	}
	for _, a := range slices.Compact(slices.Sorted(slices.Values(q.Actions))) {
		q1 := q
		q1.Actions = []string{a}
		if err := fn(q1); err != nil {
			return err
		}
	}
	return nil
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
	var evs []*trail.Event
	err = db.readTx(ctx, func(tx *sql.Tx) error {
		return eachAction(q, func(q trail.Query) error {
			p, err := planQuery(ctx, tx, &q, db.bucketBits)
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
			stmt, args := p.page(q.Descending)
			rows, err := tx.QueryContext(ctx, stmt, append(args, limit+1)...)
			if err != nil {
				return internal(err, "query")
			}
			more, err := decodeRows(rows, q.Confirm)
			evs = append(evs, more...)
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	// Several actions: merge their pages in seq order.
	slices.SortFunc(evs, func(a, b *trail.Event) int {
		if q.Descending {
			return cmp.Compare(b.Seq, a.Seq)
		}
		return cmp.Compare(a.Seq, b.Seq)
	})
	page := &trail.Page{Events: evs}
	if len(evs) > limit {
		page.Events = evs[:limit]
		page.Next = trail.EncodeCursor(evs[limit-1].Seq, q.Descending)
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
		return eachAction(q, func(q trail.Query) error {
			p, err := planQuery(ctx, tx, &q, db.bucketBits)
			if err != nil || p.empty {
				return err
			}
			if len(p.where) == 1 && p.where[0] == notPruned {
				// Seqs are contiguous: the range less its pruned rows,
				// counted in their partial index.
				var gone int64
				err := tx.QueryRowContext(ctx, "SELECT count(*) FROM events INDEXED BY events_pruned WHERE key BETWEEN ? AND ? AND pruned IS NOT NULL",
					p.lo, p.hi).Scan(&gone)
				n += p.hi - p.lo + 1 - gone
				return internal(err, "count")
			}
			var c int64
			what := "count(*)"
			if p.key == "t.key" {
				what = "count(DISTINCT t.key)"
			}
			stmt, args := p.sql(what, "")
			err = tx.QueryRowContext(ctx, stmt, args...).Scan(&c)
			n += c
			return internal(err, "count")
		})
	})
	return n, err
}
