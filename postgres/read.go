package postgres

import (
	"context"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/trailaudit/trail"
)

// scanChunk is how many events Scan reads per query.
const scanChunk = 1000

// querier is what reads need of a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// decode reads a stored body.
func decode(body []byte) (*trail.Event, error) {
	ev, err := trail.UnmarshalCanonical(body)
	if err != nil {
		return nil, internal(err, "decode a stored event")
	}
	return ev, nil
}

// readRange returns the first limit of tenant's events with from <= seq <
// to, in seq order. With a non-nil lastSeq it also reports the last seq
// read.
func readRange(ctx context.Context, q querier, tenant string, from, to int64, limit int, lastSeq *int64) ([]*trail.Event, error) {
	rows, err := q.Query(ctx, "SELECT seq, body FROM events WHERE tenant = $1 AND seq >= $2 AND seq < $3 AND pruned IS NULL ORDER BY seq LIMIT $4",
		tenant, from, to, limit)
	if err != nil {
		return nil, internal(err, "read events")
	}
	var bodies [][]byte
	var seq int64
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&seq, &body); err != nil {
			rows.Close()
			return nil, internal(err, "read events")
		}
		bodies = append(bodies, body)
	}
	if err := rows.Err(); err != nil {
		return nil, internal(err, "read events")
	}
	if lastSeq != nil {
		*lastSeq = seq
	}
	return decodeAll(bodies, nil)
}

// decodeAll decodes stored bodies, each checked by check (a trail.Query's
// Confirm) when it is not nil.
func decodeAll(bodies [][]byte, check func(*trail.Event) error) ([]*trail.Event, error) {
	evs := make([]*trail.Event, len(bodies))
	for i, b := range bodies {
		ev, err := decode(b)
		if err != nil {
			return nil, err
		}
		if check != nil {
			if err := check(ev); err != nil {
				return nil, err
			}
		}
		evs[i] = ev
	}
	return evs, nil
}

// one returns the event a query of one body finds, checked by check
// (trail.ConfirmKey), or ENOTFOUND.
func (db *DB) one(ctx context.Context, check func(*trail.Event) error, notFound string, sql string, args ...any) (*trail.Event, error) {
	if err := db.enter(); err != nil {
		return nil, err
	}
	defer db.inflight.Done()
	var body []byte
	err := db.pool.QueryRow(ctx, sql, args...).Scan(&body)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, trail.Errorf(trail.ENOTFOUND, "%s", notFound)
	}
	if err != nil {
		return nil, internal(err, "read an event")
	}
	evs, err := decodeAll([][]byte{body}, check)
	if err != nil {
		return nil, err
	}
	return evs[0], nil
}

// Get returns one event by id. An id that is not a UUID names no event.
func (db *DB) Get(ctx context.Context, tenant, id string) (*trail.Event, error) {
	u, ok := trail.ParseID(id)
	if !ok {
		return nil, trail.Errorf(trail.ENOTFOUND, "no event %q", id)
	}
	check := func(ev *trail.Event) error { return trail.ConfirmKey(ev, tenant, id, 0) }
	return db.one(ctx, check, "no event "+strconv.Quote(id), "SELECT body FROM events WHERE tenant = $1 AND id = $2 AND pruned IS NULL", tenant, u)
}

// GetSeq returns the event at seq in tenant's log.
func (db *DB) GetSeq(ctx context.Context, tenant string, seq uint64) (*trail.Event, error) {
	notFound := "no event at seq " + strconv.FormatUint(seq, 10)
	if seq == 0 || seq > math.MaxInt64 {
		return nil, trail.Errorf(trail.ENOTFOUND, "%s", notFound)
	}
	check := func(ev *trail.Event) error { return trail.ConfirmKey(ev, tenant, "", seq) }
	return db.one(ctx, check, notFound, "SELECT body FROM events WHERE tenant = $1 AND seq = $2 AND pruned IS NULL", tenant, int64(seq))
}

// Scan calls fn for each of tenant's events with from <= seq < to, in seq
// order, reading 1000 events per query. No connection or transaction
// is held while fn runs, so fn may append (and a long export does not keep
// a snapshot open). to == 0 means through the head when Scan began.
func (db *DB) Scan(ctx context.Context, tenant string, from, to uint64, fn func(*trail.Event) error) error {
	if err := db.enter(); err != nil {
		return err
	}
	defer db.inflight.Done()
	from = max(from, 1)
	if to == 0 {
		var h int64
		err := db.pool.QueryRow(ctx, "SELECT seq FROM heads WHERE tenant = $1", tenant).Scan(&h)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return internal(err, "read the tenant's head")
		}
		to = uint64(h) + 1
	}
	to = min(to, math.MaxInt64)
	for from < to {
		if err := ctx.Err(); err != nil {
			return err
		}
		var last int64
		evs, err := readRange(ctx, db.pool, tenant, int64(from), int64(to), scanChunk, &last)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := fn(ev); err != nil {
				return err
			}
		}
		if len(evs) < scanChunk {
			return nil
		}
		from = uint64(last) + 1
	}
	return nil
}

// Query returns one page of events matching q, in seq order (newest first
// when q.Descending).
func (db *DB) Query(ctx context.Context, q trail.Query) (*trail.Page, error) {
	limit, after, err := q.Paging()
	if err != nil {
		return nil, err
	}
	if err := db.enter(); err != nil {
		return nil, err
	}
	defer db.inflight.Done()
	var w where
	w.filters(&q)
	order := " ORDER BY e.seq"
	if q.Descending {
		order += " DESC"
	}
	if after != 0 {
		if after > math.MaxInt64 {
			after = math.MaxInt64
		}
		op := " > "
		if q.Descending {
			op = " < "
		}
		w.add("e.seq" + op + w.arg(int64(after)))
	}
	sql := "SELECT e.seq, e.body FROM events e WHERE " + strings.Join(w.conds, " AND ") + order + " LIMIT " + w.arg(limit+1)
	rows, err := db.pool.Query(ctx, sql, append([]any{queryMode}, w.args...)...)
	if err != nil {
		return nil, internal(err, "query events")
	}
	var (
		bodies [][]byte
		seqs   []int64
	)
	for rows.Next() {
		var (
			seq  int64
			body []byte
		)
		if err := rows.Scan(&seq, &body); err != nil {
			rows.Close()
			return nil, internal(err, "query events")
		}
		bodies = append(bodies, body)
		seqs = append(seqs, seq)
	}
	if err := rows.Err(); err != nil {
		return nil, internal(err, "query events")
	}
	page := &trail.Page{}
	if len(bodies) > limit {
		bodies = bodies[:limit]
		page.Next = trail.EncodeCursor(uint64(seqs[limit-1]), q.Descending)
	}
	if page.Events, err = decodeAll(bodies, q.Confirm); err != nil {
		return nil, err
	}
	if len(page.Events) == 0 {
		page.Events = nil
	}
	return page, nil
}

// Count returns how many events match q; its cursor and limit are ignored.
func (db *DB) Count(ctx context.Context, q trail.Query) (int64, error) {
	if err := q.Check(); err != nil {
		return 0, err
	}
	if err := db.enter(); err != nil {
		return 0, err
	}
	defer db.inflight.Done()
	var w where
	w.filters(&q)
	var n int64
	sql := "SELECT count(*) FROM events e WHERE " + strings.Join(w.conds, " AND ")
	if len(w.conds) == 2 && w.conds[1] == notPruned {
		// The tenant's whole log: its rows (an index-only scan of the
		// primary key) less its pruned ones (their partial index).
		sql = "SELECT (SELECT count(*) FROM events e WHERE " + w.conds[0] + ") - (SELECT count(*) FROM events e WHERE " + w.conds[0] + " AND e.pruned IS NOT NULL)"
	}
	if err := db.pool.QueryRow(ctx, sql, append([]any{queryMode}, w.args...)...).Scan(&n); err != nil {
		return 0, internal(err, "count events")
	}
	return n, nil
}

// queryMode runs the statements Query and Count build: as unnamed
// statements, which PostgreSQL plans with the values at hand (a cached
// generic plan would not know which tenant or actor it serves), with
// their descriptions cached so that arguments and results still travel
// in binary and a statement costs one round trip after its first.
const queryMode = pgx.QueryExecModeCacheDescribe

// where builds a WHERE clause over events e: its conditions and their
// arguments ($1, $2, ...).
type where struct {
	conds []string
	args  []any
}

// arg adds an argument and returns its placeholder.
func (w *where) arg(v any) string {
	w.args = append(w.args, v)
	return "$" + strconv.Itoa(len(w.args))
}

func (w *where) add(cond string) { w.conds = append(w.conds, cond) }

// eq adds col = v when v is not empty: a zero filter does not filter.
func (w *where) eq(col, v string) {
	if v != "" {
		w.add(col + " = " + w.arg(v))
	}
}

// time adds a condition on a (timestamptz, nanoseconds) column pair that is
// exactly op against t: see the first migration.
func (w *where) time(col, op string, t time.Time) {
	t = clampTime(t)
	w.add("(e." + col + "_at, e." + col + "_ns) " + op + " (" + w.timeArgs(t) + ")")
}

// timeArgs adds t as the two arguments (timestamptz, nanoseconds) that
// compare with a column pair, and returns their placeholders. The
// timestamptz is t cut to whole microseconds here, as pgx cuts every time
// it writes, so the pair is exact whatever way the argument travels (in
// text PostgreSQL would round it to the nearest microsecond instead).
func (w *where) timeArgs(t time.Time) string {
	return w.arg(t.UTC().Truncate(time.Microsecond)) + "::timestamptz, " + w.arg(subMicro(t)) + "::integer"
}

// clampTime moves t into [minTime, maxTime]. Every stored time lies
// strictly inside (Append refuses others), so a time outside compares with
// all of them as its clamped value does.
func clampTime(t time.Time) time.Time {
	switch {
	case t.Before(minTime):
		return minTime
	case t.After(maxTime):
		return maxTime
	}
	return t
}

// filters adds every filter of q but the cursor.
func (w *where) filters(q *trail.Query) {
	tenant := w.arg(q.Tenant)
	w.add("e.tenant = " + tenant)
	w.eq("e.actor_id", q.ActorID)
	w.eq("e.actor_type", string(q.ActorType))
	switch len(q.Actions) {
	case 0:
	case 1:
		w.eq("e.action", q.Actions[0])
	default:
		w.add("e.action = ANY(" + w.arg(q.Actions) + "::text[])")
	}
	w.eq("e.category", q.Category)
	w.eq("e.outcome", string(q.Outcome))
	w.eq("e.organization", q.Organization)
	w.eq("e.workspace", q.Workspace)
	w.eq("e.team", q.Team)
	w.eq("e.correlation_id", q.CorrelationID)
	if q.OpenAttempts {
		// The outcome may lie outside the query's other bounds: look over
		// the tenant's whole log, through events_correlation.
		w.add("e.outcome = 'attempted' AND e.correlation_id <> '' AND NOT EXISTS (SELECT FROM events o " +
			"WHERE o.tenant = e.tenant AND o.correlation_id = e.correlation_id AND o.correlation_id <> '' AND o.outcome <> 'attempted')")
	}
	if q.TargetType != "" || q.TargetID != "" {
		c := "EXISTS (SELECT FROM event_targets t WHERE t.tenant = e.tenant AND t.seq = e.seq"
		if q.TargetID != "" {
			c += " AND t.id = " + w.arg(q.TargetID)
		}
		if q.TargetType != "" {
			c += " AND t.type = " + w.arg(q.TargetType)
		}
		w.add(c + ")")
	}
	// RecordedAt never decreases along seq, so a range of recorded_at is a
	// range of seq: find its ends by binary search over the primary key
	// (about log2(n) index probes) and let the seq bounds drive the read.
	// The direct conditions on recorded_at stay, for exactness.
	if !q.RecordedAfter.IsZero() {
		w.add("e.seq >= " + w.firstSeqAtOrAfter(tenant, q.RecordedAfter))
		w.time("recorded", ">=", q.RecordedAfter)
	}
	if !q.RecordedBefore.IsZero() {
		w.add("e.seq < " + w.firstSeqAtOrAfter(tenant, q.RecordedBefore))
		w.time("recorded", "<", q.RecordedBefore)
	}
	if !q.OccurredAfter.IsZero() {
		w.time("occurred", ">=", q.OccurredAfter)
	}
	if !q.OccurredBefore.IsZero() {
		w.time("occurred", "<", q.OccurredBefore)
	}
	if !prunedCleared(q) {
		w.add(notPruned)
	}
}

// notPruned is the condition that leaves pruned events out (prune.go).
const notPruned = "e.pruned IS NULL"

// prunedCleared reports whether q filters on a column that pruning clears
// (or on targets, whose rows it deletes): then no pruned event can match,
// and the query needs no condition on pruned.
func prunedCleared(q *trail.Query) bool {
	return q.ActorID != "" || q.Organization != "" || q.Workspace != "" || q.Team != "" || q.CorrelationID != "" ||
		q.TargetID != "" || q.TargetType != "" || q.OpenAttempts
}

// firstSeqAtOrAfter returns a scalar subquery: the first seq of the tenant
// (placeholder tenant) recorded at or after t, or the head's seq + 1 when
// none is. It is a binary search in SQL over seq in [1, head+1), one
// primary key probe per step, run once per statement.
func (w *where) firstSeqAtOrAfter(tenant string, t time.Time) string {
	pair := w.timeArgs(clampTime(t))
	return `(WITH RECURSIVE b(lo, hi) AS (
		SELECT 1::bigint, COALESCE((SELECT h.seq FROM heads h WHERE h.tenant = ` + tenant + `), 0) + 1
		UNION ALL
		SELECT CASE WHEN m.ge THEN b.lo ELSE (b.lo + b.hi) / 2 + 1 END,
		       CASE WHEN m.ge THEN (b.lo + b.hi) / 2 ELSE b.hi END
		FROM b CROSS JOIN LATERAL (
			SELECT (x.recorded_at, x.recorded_ns) >= (` + pair + `) AS ge
			FROM events x WHERE x.tenant = ` + tenant + ` AND x.seq = (b.lo + b.hi) / 2
		) m
		WHERE b.lo < b.hi
	) SELECT max(lo) FROM b)`
}
