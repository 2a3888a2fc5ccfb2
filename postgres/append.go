package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/ledger"
	"github.com/trailaudit/trail/tlog"
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

// Append prepares events through the pipeline (before touching the
// database), then stores them in one transaction that holds the tenant's
// head row locked: seqs continue from the head with no gap, RecordedAt
// never runs behind the head's, and the batch is durable when Append
// returns. The same transaction writes each event's tree hashes, the
// tree's new right edge and a checkpoint signed with Options.Signer.
func (db *DB) Append(ctx context.Context, tenant string, events []*trail.Event, opts trail.AppendOptions) (*trail.AppendResult, error) {
	if len(events) > db.o.MaxBatch {
		return nil, trail.Invalid(fmt.Sprintf("batch of %d events is larger than the store takes at once (%d)", len(events), db.o.MaxBatch))
	}
	b, err := db.p.Append(ctx, tenant, events, opts)
	if err != nil {
		return nil, err
	}
	return db.write(ctx, b)
}

// AppendOwn appends Trail's own records, or prunes (ledger.Writer), as
// Append does, in one transaction. Pruning a row sets body to NULL and
// actor_id, organization, workspace, team and correlation_id to empty
// strings, deletes its event_targets rows, and sets pruned to the record's
// seq; hashes and the other columns stay.
func (db *DB) AppendOwn(ctx context.Context, tenant string, o ledger.Own) (*trail.AppendResult, error) {
	b, err := db.p.Own(ctx, tenant, o)
	if err != nil {
		return nil, err
	}
	return db.write(ctx, b)
}

// write stores a prepared batch, counted among the appends Close waits
// for.
func (db *DB) write(ctx context.Context, b *ledger.Batch) (*trail.AppendResult, error) {
	if err := db.enter(); err != nil {
		return nil, err
	}
	defer db.inflight.Done()
	return db.appendTx(ctx, b)
}

// head is a tenant's head row: its last seq, that event's RecordedAt and
// the right edge of its tree (see continueTree).
type head struct {
	seq      uint64
	recorded time.Time
	tree     []byte
	lastRow  uint64 // the highest seq stored, which must be seq
	latest   []byte // the newest checkpoint, nil when none
}

// continueTree returns the tenant's tree at h.seq, from the edge its head
// keeps: the hashes of tlog.PeakNodes(h.seq), trail.HashSize bytes each,
// left to right.
func (h head) continueTree() (*tlog.Tree, error) {
	var peaks [][]byte
	for rest := h.tree; len(rest) >= trail.HashSize; rest = rest[trail.HashSize:] {
		peaks = append(peaks, rest[:trail.HashSize])
	}
	t, err := tlog.NewTree(h.seq, peaks)
	if err == nil && len(h.tree) != len(peaks)*trail.HashSize {
		err = fmt.Errorf("%d bytes are not whole hashes", len(h.tree))
	}
	if err != nil {
		return nil, trail.Errorf(trail.EINTERNAL, "postgres: the tree's right edge in the tenant's head is damaged (run trail verify): %v", err)
	}
	return t, nil
}

// earlier is what an idempotency key found: the batch first appended with
// it.
type earlier struct {
	found       bool
	fingerprint []byte
	first       int64
	n           int32
}

// begin opens the append's transaction on conn and locks tenant's head row
// (creating it when the tenant has none), in one round trip. Appends to
// the tenant, from this process or any other, wait here for the one
// holding the lock to commit or roll back, and then read the head it left:
// this lock is what keeps seqs contiguous. Once it is held, begin also
// reads key's earlier use, if any: no other append of the tenant can be
// recording it meanwhile.
func begin(ctx context.Context, conn *pgxpool.Conn, tenant, key string) (head, earlier, error) {
	var (
		h   head
		e   earlier
		seq int64
		rec *time.Time
		ns  int32
	)
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	// Two appenders of a new tenant may both insert: the second waits for
	// the first to commit and then does nothing. For a known tenant this
	// finds the row in the index and writes nothing.
	b.Queue("INSERT INTO heads (tenant) VALUES ($1) ON CONFLICT (tenant) DO NOTHING", tenant)
	b.Queue("SELECT seq, recorded_at, recorded_ns, tree FROM heads WHERE tenant = $1 FOR UPDATE", tenant).QueryRow(func(row pgx.Row) error {
		return row.Scan(&seq, &rec, &ns, &h.tree)
	})
	// What CheckHead compares the head with: rows and checkpoints written
	// behind the store's back would show here.
	b.Queue("SELECT coalesce(max(seq), 0) FROM events WHERE tenant = $1", tenant).QueryRow(func(row pgx.Row) error {
		return row.Scan(&h.lastRow)
	})
	b.Queue("SELECT note FROM checkpoints WHERE tenant = $1 ORDER BY size DESC LIMIT 1", tenant).QueryRow(func(row pgx.Row) error {
		err := row.Scan(&h.latest)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	if key != "" {
		b.Queue("SELECT fingerprint, first_seq, n FROM idempotency WHERE tenant = $1 AND key = $2", tenant, key).QueryRow(func(row pgx.Row) error {
			err := row.Scan(&e.fingerprint, &e.first, &e.n)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			e.found = err == nil
			return err
		})
	}
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return h, e, internal(err, "lock the tenant's head")
	}
	h.seq = uint64(seq)
	if rec != nil {
		h.recorded = rec.UTC().Add(time.Duration(ns))
	}
	return h, e, nil
}

// appendTx stores a prepared batch in one transaction, on a connection of
// its own that it manages by hand so that BEGIN and COMMIT ride with other
// statements: a small batch costs two round trips.
func (db *DB) appendTx(ctx context.Context, b *ledger.Batch) (*trail.AppendResult, error) {
	tenant := b.Tenant
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return nil, internal(err, "connect")
	}
	// Release closes a connection left inside a transaction, so a failed
	// ROLLBACK leaves nothing behind either.
	defer conn.Release()
	inTx := true
	defer func() {
		if inTx {
			conn.Exec(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	h, e, err := begin(ctx, conn, tenant, b.Key)
	if err != nil {
		return nil, err
	}
	if e.found {
		if err := b.Replay(e.fingerprint); err != nil {
			return nil, err
		}
		evs, err := readRange(ctx, conn, tenant, e.first, e.first+int64(e.n), int(e.n), nil)
		if err != nil {
			return nil, err
		}
		return &trail.AppendResult{Events: evs, Replay: true}, nil
	}

	var tree *tlog.Tree
	if db.p.Tree() {
		if tree, err = h.continueTree(); err != nil {
			return nil, err
		}
	}
	lh, err := ledger.NewHead(tenant, h.seq, h.recorded, tree, h.lastRow, h.latest)
	if err != nil {
		return nil, err
	}
	rows, err := lh.Sequence(b, 0)
	if err != nil {
		return nil, err
	}
	pr, err := checkPrune(ctx, conn, b, lh) // nil unless b prunes
	if err != nil {
		return nil, err
	}
	c := newColumns(tenant, rows)
	last := len(c.seq) - 1
	edge := h.tree
	if tree != nil {
		edge = tree.Edge()
	}
	note, err := db.p.Sign(lh)
	if err != nil {
		return nil, err
	}
	batch := &pgx.Batch{}
	if len(c.seq) >= copyMin {
		if err := c.copy(ctx, conn); err != nil {
			return nil, err
		}
	} else {
		c.insert(batch)
	}
	batch.Queue("UPDATE heads SET seq = $2, recorded_at = $3, recorded_ns = $4, tree = $5 WHERE tenant = $1",
		tenant, c.seq[last], c.recordedAt[last], c.recordedNs[last], edge)
	if note != nil {
		batch.Queue("INSERT INTO checkpoints (tenant, size, note) VALUES ($1, $2, $3)", tenant, c.seq[last], note)
	}
	if b.Key != "" {
		batch.Queue("INSERT INTO idempotency (tenant, key, fingerprint, first_seq, n) VALUES ($1, $2, $3, $4, $5)",
			tenant, b.Key, b.Fingerprint[:], c.seq[0], int32(len(c.seq)))
	}
	pr.queue(batch, tenant)
	batch.Queue("COMMIT")
	if err := conn.SendBatch(ctx, batch).Close(); err != nil {
		return nil, internal(err, "write events")
	}
	inTx = false
	return ledger.Result(rows), nil
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
