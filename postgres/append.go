package postgres

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/ledger"
)

// eventColumns are the columns of events, in the order columns.eventRow
// gives them.
var eventColumns = []string{"tenant", "seq", "id", "recorded_at", "occurred_at", "recorded_ns", "occurred_ns",
	"action", "category", "outcome", "actor_id", "actor_type", "organization", "workspace", "team", "correlation_id", "body", "hashes"}

var targetColumns = []string{"tenant", "seq", "type", "id"}

// subMicro is the part of t's nanoseconds that a timestamptz drops: pgx
// writes a time as whole microseconds since 2000, rounding down, and this
// is the remainder, so (timestamptz, subMicro) orders exactly as t does.
func subMicro(t time.Time) int32 { return int32(t.Nanosecond() % 1000) }

type appender = ledger.Log

// backend is the store as the pipeline writes to it: each batch is one
// transaction, on a connection of its own that it manages by hand so that
// BEGIN and COMMIT ride with other statements (a small batch costs two
// round trips), holding the tenant's head row FOR UPDATE.
//
// Pruning a row sets body to NULL and actor_id, organization, workspace,
// team and correlation_id to empty strings, deletes its event_targets
// rows, and sets pruned to the record's seq; hashes and the other columns
// stay.
type backend DB

// tx is one batch's transaction.
type tx struct {
	db    *DB
	conn  *pgxpool.Conn
	b     *ledger.Batch
	h     ledger.Stored
	e     earlier
	edge  []byte     // the head's stored tree edge
	batch *pgx.Batch // what rides with COMMIT
}

// earlier is what an idempotency key found: the batch first appended with
// it.
type earlier struct {
	found       bool
	fingerprint []byte
	first       int64
	n           int32
}

// Begin opens the batch's transaction and locks tenant's head row
// (creating it when the tenant has none), in one round trip. Appends to
// the tenant, from this process or any other, wait here for the one
// holding the lock to commit or roll back, and then read the head it left:
// this lock is what keeps seqs contiguous. Once it is held, Begin also
// reads the key's earlier use, if any: no other append of the tenant can be
// recording it meanwhile. The append counts among those Close waits for.
func (be *backend) Begin(ctx context.Context, b *ledger.Batch) (ledger.Tx, error) {
	db := (*DB)(be)
	if err := db.enter(); err != nil {
		return nil, err
	}
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		db.inflight.Done()
		return nil, internal(err, "connect")
	}
	t := &tx{db: db, conn: conn, b: b, batch: &pgx.Batch{}}
	var (
		seq int64
		rec *time.Time
		ns  int32
	)
	q := &pgx.Batch{}
	q.Queue("BEGIN")
	// Two appenders of a new tenant may both insert: the second waits for
	// the first to commit and then does nothing. For a known tenant this
	// finds the row in the index and writes nothing.
	q.Queue("INSERT INTO heads (tenant) VALUES ($1) ON CONFLICT (tenant) DO NOTHING", b.Tenant)
	q.Queue("SELECT seq, recorded_at, recorded_ns, tree FROM heads WHERE tenant = $1 FOR UPDATE", b.Tenant).QueryRow(func(row pgx.Row) error {
		return row.Scan(&seq, &rec, &ns, &t.edge)
	})
	// What the head is checked against: rows and checkpoints written
	// behind the store's back would show here.
	q.Queue("SELECT coalesce(max(seq), 0) FROM events WHERE tenant = $1", b.Tenant).QueryRow(func(row pgx.Row) error {
		return row.Scan(&t.h.LastRow)
	})
	q.Queue("SELECT note FROM checkpoints WHERE tenant = $1 ORDER BY size DESC LIMIT 1", b.Tenant).QueryRow(func(row pgx.Row) error {
		err := row.Scan(&t.h.Latest)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	if b.Key != "" {
		q.Queue("SELECT fingerprint, first_seq, n FROM idempotency WHERE tenant = $1 AND key = $2", b.Tenant, b.Key).QueryRow(func(row pgx.Row) error {
			err := row.Scan(&t.e.fingerprint, &t.e.first, &t.e.n)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			t.e.found = err == nil
			return err
		})
	}
	if err := conn.SendBatch(ctx, q).Close(); err != nil {
		t.Rollback()
		return nil, internal(err, "lock the tenant's head")
	}
	t.h.Seq, t.h.Edge = uint64(seq), t.edge
	if rec != nil {
		t.h.RecordedAt = rec.UTC().Add(time.Duration(ns))
	}
	return t, nil
}

func (t *tx) Head(ctx context.Context) (ledger.Stored, error) { return t.h, nil }

func (t *tx) Earlier(ctx context.Context) ([]byte, []*trail.Event, error) {
	if !t.e.found {
		return nil, nil, nil
	}
	evs, err := readRange(ctx, t.conn, t.b.Tenant, t.e.first, t.e.first+int64(t.e.n), int(t.e.n), nil)
	if err != nil {
		return nil, nil, err
	}
	return t.e.fingerprint, evs, nil
}

// Write sends a large batch's rows with COPY at once, and queues a small
// one's INSERTs to ride with COMMIT.
func (t *tx) Write(ctx context.Context, rows []ledger.Row, next *ledger.Head) error {
	tenant := t.b.Tenant
	c := newColumns(tenant, rows)
	if len(c.seq) >= copyMin {
		if err := c.copy(ctx, t.conn); err != nil {
			return err
		}
	} else {
		c.insert(t.batch)
	}
	edge := t.edge
	if next.Tree != nil {
		edge = next.Tree.Edge()
	}
	t.batch.Queue("UPDATE heads SET seq = $2, recorded_at = $3, recorded_ns = $4, tree = $5 WHERE tenant = $1",
		tenant, int64(next.Seq), next.RecordedAt, subMicro(next.RecordedAt), edge)
	if t.b.Key != "" {
		t.batch.Queue("INSERT INTO idempotency (tenant, key, fingerprint, first_seq, n) VALUES ($1, $2, $3, $4, $5)",
			tenant, t.b.Key, t.b.Fingerprint[:], c.seq[0], int32(len(c.seq)))
	}
	return nil
}

// Commit stores cp and commits, in one round trip with what Write and
// Prune queued.
func (t *tx) Commit(ctx context.Context, cp *ledger.Checkpoint) error {
	defer t.release()
	if cp != nil {
		note, err := cp.Note()
		if err != nil {
			t.rollback(ctx)
			return err
		}
		t.batch.Queue("INSERT INTO checkpoints (tenant, size, note) VALUES ($1, $2, $3)", cp.Tenant, int64(cp.Size), note)
	}
	t.batch.Queue("COMMIT")
	if err := t.conn.SendBatch(ctx, t.batch).Close(); err != nil {
		t.rollback(ctx)
		return internal(err, "write events")
	}
	return nil
}

func (t *tx) Rollback() {
	t.rollback(context.Background())
	t.release()
}

// rollback ends the transaction. Release closes a connection left inside
// a transaction, so a failed ROLLBACK leaves nothing behind either.
func (t *tx) rollback(ctx context.Context) {
	t.conn.Exec(context.WithoutCancel(ctx), "ROLLBACK")
}

func (t *tx) release() {
	t.conn.Release()
	t.db.inflight.Done()
}

// copyMin is the smallest batch written with COPY. A smaller one is
// written with one INSERT per row, all sent in one round trip with the
// head's update: a lone event costs four round trips (BEGIN, lock, write,
// COMMIT) instead of six. (An INSERT ... SELECT FROM unnest of arrays
// measured three times slower than plain INSERTs for one event.)
var copyMin = 32

var (
	insertEvent = "INSERT INTO events (" + strings.Join(eventColumns, ", ") +
		") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
	insertTarget = "INSERT INTO event_targets (tenant, seq, type, id) VALUES ($1, $2, $3, $4)"
)

// copy writes c's rows with COPY.
func (c *columns) copy(ctx context.Context, conn *pgxpool.Conn) error {
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"events"}, eventColumns, c.eventRows()); err != nil {
		return internal(err, "write events")
	}
	if len(c.tseq) > 0 {
		if _, err := conn.CopyFrom(ctx, pgx.Identifier{"event_targets"}, targetColumns, c.targetRows()); err != nil {
			return internal(err, "write event targets")
		}
	}
	return nil
}

// insert queues c's rows on b as INSERTs.
func (c *columns) insert(b *pgx.Batch) {
	for i := range c.seq {
		b.Queue(insertEvent, c.eventRow(i)...)
	}
	for i := range c.tseq {
		b.Queue(insertTarget, c.tenant, c.tseq[i], c.ttype[i], c.tid[i])
	}
}

// columns holds a batch as the columns of events and event_targets.
type columns struct {
	tenant                                       string
	seq                                          []int64
	id                                           [][16]byte
	recordedAt, occurredAt                       []time.Time
	recordedNs, occurredNs                       []int32
	action, category, outcome                    []string
	actorID, actorType                           []string
	organization, workspace, team, correlationID []string
	body, hashes                                 [][]byte

	tseq       []int64
	ttype, tid []string
}

// newColumns lays rows out as the columns of events and event_targets.
func newColumns(tenant string, rows []ledger.Row) *columns {
	n := len(rows)
	c := &columns{tenant: tenant,
		seq: make([]int64, 0, n), id: make([][16]byte, 0, n),
		recordedAt: make([]time.Time, 0, n), occurredAt: make([]time.Time, 0, n),
		recordedNs: make([]int32, 0, n), occurredNs: make([]int32, 0, n),
		action: make([]string, 0, n), category: make([]string, 0, n), outcome: make([]string, 0, n),
		actorID: make([]string, 0, n), actorType: make([]string, 0, n),
		organization: make([]string, 0, n), workspace: make([]string, 0, n), team: make([]string, 0, n),
		correlationID: make([]string, 0, n), body: make([][]byte, 0, n), hashes: make([][]byte, 0, n),
	}
	for i := range rows {
		c.add(&rows[i])
	}
	return c
}

// add appends r.
func (c *columns) add(r *ledger.Row) {
	ix := &r.Index
	seq := int64(r.Event.Seq)
	c.seq = append(c.seq, seq)
	c.id = append(c.id, r.ID)
	c.recordedAt = append(c.recordedAt, ix.RecordedAt)
	c.occurredAt = append(c.occurredAt, ix.OccurredAt)
	c.recordedNs = append(c.recordedNs, subMicro(ix.RecordedAt))
	c.occurredNs = append(c.occurredNs, subMicro(ix.OccurredAt))
	c.action = append(c.action, ix.Action)
	c.category = append(c.category, ix.Category)
	c.outcome = append(c.outcome, string(ix.Outcome))
	c.actorID = append(c.actorID, ix.ActorID)
	c.actorType = append(c.actorType, string(ix.ActorType))
	c.organization = append(c.organization, ix.Organization)
	c.workspace = append(c.workspace, ix.Workspace)
	c.team = append(c.team, ix.Team)
	c.correlationID = append(c.correlationID, ix.CorrelationID)
	c.body = append(c.body, r.Body)
	c.hashes = append(c.hashes, r.Hashes)
	for _, t := range ix.Targets {
		c.tseq = append(c.tseq, seq)
		c.ttype = append(c.ttype, t.Type)
		c.tid = append(c.tid, t.ID)
	}
}

// eventRow is c's event i as a row, in eventColumns order.
func (c *columns) eventRow(i int) []any {
	return []any{c.tenant, c.seq[i], c.id[i], c.recordedAt[i], c.occurredAt[i], c.recordedNs[i], c.occurredNs[i],
		c.action[i], c.category[i], c.outcome[i], c.actorID[i], c.actorType[i],
		c.organization[i], c.workspace[i], c.team[i], c.correlationID[i], c.body[i], c.hashes[i]}
}

// eventRows is c's events as COPY rows.
func (c *columns) eventRows() pgx.CopyFromSource {
	return pgx.CopyFromSlice(len(c.seq), func(i int) ([]any, error) { return c.eventRow(i), nil })
}

// targetRows is c's targets as COPY rows, in targetColumns order.
func (c *columns) targetRows() pgx.CopyFromSource {
	return pgx.CopyFromSlice(len(c.tseq), func(i int) ([]any, error) {
		return []any{c.tenant, c.tseq[i], c.ttype[i], c.tid[i]}, nil
	})
}
