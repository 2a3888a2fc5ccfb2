package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/tlog"
)

// The times a timestamptz holds, with a wide margin (PostgreSQL's own
// range is 4713 BC to 294276 AD). An event outside is refused rather than
// stored with a wrong time.
var (
	minTime = time.Date(-4000, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(200000, 1, 1, 0, 0, 0, 0, time.UTC)
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

// Append validates and redacts events (before touching the database), then
// stores them in one transaction that holds the tenant's head row locked:
// seqs continue from the head with no gap, RecordedAt never runs behind the
// head's, and the batch is durable when Append returns. The same
// transaction writes each event's tree hashes, the tree's new right edge and
// a checkpoint signed with Options.Signer. The events returned are the
// prepared ones, which are exactly what reads return.
func (db *DB) Append(ctx context.Context, tenant string, events []*trail.Event, opts trail.AppendOptions) (*trail.AppendResult, error) {
	if err := db.enter(); err != nil {
		return nil, err
	}
	defer db.inflight.Done()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if db.o.Signer == nil && !db.o.noTree {
		return nil, trail.Errorf(trail.EINTERNAL, "postgres: opened without a signer, read-only")
	}
	if len(events) > db.o.MaxBatch {
		return nil, trail.Invalid(fmt.Sprintf("batch of %d events is larger than the store takes at once (%d)", len(events), db.o.MaxBatch))
	}
	var fp [32]byte
	if opts.IdempotencyKey != "" {
		var err error
		if fp, err = trail.BatchFingerprint(events); err != nil {
			return nil, trail.Errorf(trail.EINVALID, "batch cannot be fingerprinted: %v", err)
		}
	}
	prepared, err := db.o.Validator.PrepareBatch(tenant, events, opts.Policy, db.o.Now())
	if err == nil {
		err = db.o.Validator.Seal(ctx, tenant, prepared)
	}
	if err != nil {
		return nil, err
	}
	var fe []trail.FieldError
	for i, ev := range prepared {
		if ev.OccurredAt.Before(minTime) || !ev.OccurredAt.Before(maxTime) {
			fe = append(fe, trail.FieldError{Path: trail.PathIndex("", i) + ".occurred_at", Message: "outside the years the store holds (-4000 to 199999)"})
		}
		if ev.RecordedAt.Before(minTime) || !ev.RecordedAt.Before(maxTime) {
			return nil, trail.Errorf(trail.EINTERNAL, "postgres: the clock reads %v, outside the years the store holds", ev.RecordedAt)
		}
	}
	if len(fe) > 0 {
		return nil, trail.Invalid("event refused", fe...)
	}
	return db.appendTx(ctx, tenant, prepared, opts.IdempotencyKey, fp)
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
func (db *DB) appendTx(ctx context.Context, tenant string, prepared []*trail.Event, key string, fp [32]byte) (*trail.AppendResult, error) {
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
	h, e, err := begin(ctx, conn, tenant, key)
	if err != nil {
		return nil, err
	}
	if e.found {
		if !bytes.Equal(e.fingerprint, fp[:]) {
			return nil, trail.Errorf(trail.ECONFLICT, "idempotency key was used before with a different batch")
		}
		evs, err := readRange(ctx, conn, tenant, e.first, e.first+int64(e.n), int(e.n), nil)
		if err != nil {
			return nil, err
		}
		return &trail.AppendResult{Events: evs, Replay: true}, nil
	}

	var tree *tlog.Tree
	if !db.o.noTree {
		if tree, err = h.continueTree(); err != nil {
			return nil, err
		}
		if err := tlog.CheckHead(tenant, h.lastRow, tree, h.latest); err != nil {
			return nil, err
		}
	}
	pr, err := checkPrune(ctx, conn, tenant, h, prepared) // nil unless Prune called
	if err != nil {
		return nil, err
	}
	c := newColumns(tenant, len(prepared))
	for i, ev := range prepared {
		ev.Seq = h.seq + uint64(i) + 1
		if h.seq > 0 || i > 0 {
			prev := h.recorded
			if i > 0 {
				prev = prepared[i-1].RecordedAt
			}
			ev.RecordedAt = trail.NotBefore(ev.RecordedAt, prev)
		}
		if err := c.add(ev, tree); err != nil {
			return nil, err
		}
	}
	last := len(c.seq) - 1
	edge, note := h.tree, []byte(nil)
	if tree != nil {
		edge = tree.Edge()
		if note, err = db.o.Signer.Sign(tenant, tree.Size(), tree.Root()); err != nil {
			return nil, err
		}
	}

	// The events returned are the prepared ones: the Validator keeps them
	// in the form their canonical bytes decode to (trail's
	// TestPreparedEqualsStored), so they are exactly what reads return,
	// with no decoding of what is stored.
	evs := make([]*trail.Event, len(prepared))
	for i, ev := range prepared {
		evs[i] = ev.Clone()
	}
	b := &pgx.Batch{}
	if len(c.seq) >= copyMin {
		if err := c.copy(ctx, conn); err != nil {
			return nil, err
		}
	} else {
		c.insert(b)
	}
	b.Queue("UPDATE heads SET seq = $2, recorded_at = $3, recorded_ns = $4, tree = $5 WHERE tenant = $1",
		tenant, c.seq[last], c.recordedAt[last], c.recordedNs[last], edge)
	if note != nil {
		b.Queue("INSERT INTO checkpoints (tenant, size, note) VALUES ($1, $2, $3)", tenant, c.seq[last], note)
	}
	if key != "" {
		b.Queue("INSERT INTO idempotency (tenant, key, fingerprint, first_seq, n) VALUES ($1, $2, $3, $4, $5)",
			tenant, key, fp[:], c.seq[0], int32(len(c.seq)))
	}
	pr.queue(b, tenant)
	b.Queue("COMMIT")
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return nil, internal(err, "write events")
	}
	inTx = false
	return &trail.AppendResult{Events: evs}, nil
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

func newColumns(tenant string, n int) *columns {
	return &columns{tenant: tenant,
		seq: make([]int64, 0, n), id: make([][16]byte, 0, n),
		recordedAt: make([]time.Time, 0, n), occurredAt: make([]time.Time, 0, n),
		recordedNs: make([]int32, 0, n), occurredNs: make([]int32, 0, n),
		action: make([]string, 0, n), category: make([]string, 0, n), outcome: make([]string, 0, n),
		actorID: make([]string, 0, n), actorType: make([]string, 0, n),
		organization: make([]string, 0, n), workspace: make([]string, 0, n), team: make([]string, 0, n),
		correlationID: make([]string, 0, n), body: make([][]byte, 0, n), hashes: make([][]byte, 0, n),
	}
}

// add appends ev, with its Seq and RecordedAt final, its canonical bytes
// and, when tree is not nil, what appending those bytes to tree gives.
func (c *columns) add(ev *trail.Event, tree *tlog.Tree) error {
	body, err := trail.MarshalCanonical(ev)
	if err != nil {
		return internal(err, "encode an event")
	}
	id, ok := trail.ParseID(ev.ID)
	if !ok {
		return trail.Errorf(trail.EINTERNAL, "postgres: event id %q is not a UUID", ev.ID)
	}
	seq := int64(ev.Seq)
	c.seq = append(c.seq, seq)
	c.id = append(c.id, id)
	c.recordedAt = append(c.recordedAt, ev.RecordedAt)
	c.occurredAt = append(c.occurredAt, ev.OccurredAt)
	c.recordedNs = append(c.recordedNs, subMicro(ev.RecordedAt))
	c.occurredNs = append(c.occurredNs, subMicro(ev.OccurredAt))
	c.action = append(c.action, ev.Action)
	c.category = append(c.category, ev.Category)
	c.outcome = append(c.outcome, string(ev.Outcome))
	c.actorID = append(c.actorID, ev.Actor.ID)
	c.actorType = append(c.actorType, string(ev.Actor.Type))
	c.organization = append(c.organization, ev.Scope.Organization)
	c.workspace = append(c.workspace, ev.Scope.Workspace)
	c.team = append(c.team, ev.Scope.Team)
	c.correlationID = append(c.correlationID, ev.CorrelationID)
	c.body = append(c.body, body)
	hashes := []byte{} // not nil: that would be NULL
	if tree != nil {
		hashes = tree.Append(body)
	}
	c.hashes = append(c.hashes, hashes)
	for _, t := range ev.Targets {
		c.tseq = append(c.tseq, seq)
		c.ttype = append(c.ttype, t.Type)
		c.tid = append(c.tid, t.ID)
	}
	return nil
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
