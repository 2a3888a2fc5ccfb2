package postgres

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/ledger"
)

// eventColumns are the columns of events, in the order eventFields gives
// them, and targetColumns those of event_targets (targetFields).
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

// Write sends a large batch's rows with COPY as the pipeline encodes them,
// and queues a small one's INSERTs to ride with COMMIT. The transaction is
// the batch's own, so a COPY that stops at an event that does not encode
// leaves nothing once it is rolled back.
func (t *tx) Write(ctx context.Context, rows *ledger.Rows) error {
	tenant := t.b.Tenant
	if rows.Len() >= copyMin {
		if err := copyRows(ctx, t.conn, tenant, rows); err != nil {
			return err
		}
	} else {
		all, err := rows.All()
		if err != nil {
			return err
		}
		insertRows(t.batch, tenant, all)
	}
	next := rows.Head()
	edge := t.edge
	if next.Tree != nil {
		edge = next.Tree.Edge()
	}
	t.batch.Queue("UPDATE heads SET seq = $2, recorded_at = $3, recorded_ns = $4, tree = $5 WHERE tenant = $1",
		tenant, int64(next.Seq), next.RecordedAt, subMicro(next.RecordedAt), edge)
	if t.b.Key != "" {
		t.batch.Queue("INSERT INTO idempotency (tenant, key, fingerprint, first_seq, n) VALUES ($1, $2, $3, $4, $5)",
			tenant, t.b.Key, t.b.Fingerprint[:], int64(rows.First()), int32(rows.Len()))
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
	insertEvent  = insertInto("events", eventColumns)
	insertTarget = insertInto("event_targets", targetColumns)
	copyEvents   = copyInto("events", eventColumns)
	copyTargets  = copyInto("event_targets", targetColumns)
)

// insertInto is the INSERT of one row of columns into table.
func insertInto(table string, columns []string) string {
	params := make([]string, len(columns))
	for i := range params {
		params[i] = fmt.Sprintf("$%d", i+1)
	}
	return "INSERT INTO " + table + " (" + strings.Join(columns, ", ") + ") VALUES (" + strings.Join(params, ", ") + ")"
}

// copyInto is the COPY of columns into table, in the binary format.
func copyInto(table string, columns []string) string {
	return "COPY " + table + " (" + strings.Join(columns, ", ") + ") FROM STDIN (FORMAT binary)"
}

// copyRows writes rows, and their targets rows, with COPY in the binary
// format, encoded straight from the rows as the connection sends them
// (copyReader): no per-value conversion or allocation, no statement
// description to fetch. The events' COPY reads the rows chunk by chunk as
// the pipeline encodes them (ledger.Rows), so the server inserts the
// first while the last are still being encoded; the targets' COPY follows
// once all are read.
func copyRows(ctx context.Context, conn *pgxpool.Conn, tenant string, rows *ledger.Rows) error {
	pg := conn.Conn().PgConn()
	buf := make([]byte, 0, copyBuffer) // both COPYs' data, a read at a time
	var (
		mu      sync.Mutex   // pgx reads in a goroutine of its own, which a broken connection may leave running
		over    bool         // CopyFrom returned: the rows are no longer this reader's
		part    []ledger.Row // the chunk being sent
		i       int          // the next row of part
		readErr error        // what ended the rows early
	)
	events := newCopyReader(buf, func(c *binaryCopy) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		if over {
			return false, errCopyOver
		}
		if i == len(part) {
			if part, readErr = rows.Next(); readErr != nil || part == nil {
				return false, readErr
			}
			i = 0
		}
		c.row(len(eventColumns))
		eventFields(c, tenant, &part[i])
		i++
		return true, nil
	})
	_, err := pg.CopyFrom(ctx, events, copyEvents)
	mu.Lock()
	over = true
	mu.Unlock()
	if err != nil {
		if readErr != nil {
			return readErr
		}
		return internal(err, "write events")
	}
	all, err := rows.All() // all read already: this returns them
	if err != nil {
		return err
	}
	n := 0
	for i := range all {
		n += len(all[i].Index.Targets)
	}
	if n == 0 {
		return nil
	}
	i, j := 0, 0
	targets := newCopyReader(events.c.b[:0], func(c *binaryCopy) (bool, error) {
		for i < len(all) && j == len(all[i].Index.Targets) {
			i, j = i+1, 0
		}
		if i == len(all) {
			return false, nil
		}
		c.row(len(targetColumns))
		targetFields(c, tenant, int64(all[i].Event.Seq), all[i].Index.Targets[j])
		j++
		return true, nil
	})
	if _, err := pg.CopyFrom(ctx, targets, copyTargets); err != nil {
		return internal(err, "write event targets")
	}
	return nil
}

var errCopyOver = errors.New("postgres: the COPY ended")

// insertRows queues rows, and their targets rows, on b as INSERTs.
func insertRows(b *pgx.Batch, tenant string, rows []ledger.Row) {
	for i := range rows {
		var a args
		eventFields(&a, tenant, &rows[i])
		b.Queue(insertEvent, a...)
	}
	for i := range rows {
		for _, tg := range rows[i].Index.Targets {
			var a args
			targetFields(&a, tenant, int64(rows[i].Event.Seq), tg)
			b.Queue(insertTarget, a...)
		}
	}
}

// fields takes a row's values, one column after the other. eventFields
// and targetFields are the one place that says what each column holds;
// args (for INSERT) and binaryCopy (for COPY) are the two ways the values
// are sent.
type fields interface {
	text(s string)
	int8(v int64)
	int4(v int32)
	uuid(id [16]byte)
	timestamptz(t time.Time)
	bytea(b []byte) // nil is NULL
}

var (
	_ fields = (*args)(nil)
	_ fields = (*binaryCopy)(nil)
)

// eventFields gives f r's row of events, in eventColumns order.
func eventFields(f fields, tenant string, r *ledger.Row) {
	ix := &r.Index
	f.text(tenant)
	f.int8(int64(r.Event.Seq))
	f.uuid(r.ID)
	f.timestamptz(ix.RecordedAt)
	f.timestamptz(ix.OccurredAt)
	f.int4(subMicro(ix.RecordedAt))
	f.int4(subMicro(ix.OccurredAt))
	f.text(ix.Action)
	f.text(ix.Category)
	f.text(string(ix.Outcome))
	f.text(ix.ActorID)
	f.text(string(ix.ActorType))
	f.text(ix.Organization)
	f.text(ix.Workspace)
	f.text(ix.Team)
	f.text(ix.CorrelationID)
	f.bytea(r.Body)
	f.bytea(r.Hashes)
}

// targetFields gives f the event_targets row of target t of the event at
// seq, in targetColumns order.
func targetFields(f fields, tenant string, seq int64, t trail.Target) {
	f.text(tenant)
	f.int8(seq)
	f.text(t.Type)
	f.text(t.ID)
}

// args is a row as the arguments of an INSERT.
type args []any

func (a *args) text(s string)           { *a = append(*a, s) }
func (a *args) int8(v int64)            { *a = append(*a, v) }
func (a *args) int4(v int32)            { *a = append(*a, v) }
func (a *args) uuid(id [16]byte)        { *a = append(*a, id) }
func (a *args) timestamptz(t time.Time) { *a = append(*a, t) }
func (a *args) bytea(b []byte)          { *a = append(*a, b) }

// copyReader is COPY data in the binary format (binaryCopy) read as it is
// encoded: each Read encodes rows (next encodes one, or reports there is
// none left, or the error that ends the data early) until what is pending
// fills the caller's buffer, so it holds no more than a buffer and a row of
// the data at once.
type copyReader struct {
	c    binaryCopy
	off  int // what of c.b was read
	next func(c *binaryCopy) (bool, error)
	done bool // next has reported the end, and the trailer is in c.b
}

var _ io.Reader = (*copyReader)(nil)

// copyBuffer is the capacity a copyReader's buffer needs: a read of pgx's
// (64 KB) and the row that crosses its end. Made at this size once, it
// never grows: grown by append, it allocated about four times as much per
// COPY.
const copyBuffer = 64<<10 + 16<<10

// newCopyReader returns the reader of the rows next encodes, holding them
// in buf (its length is ignored).
func newCopyReader(buf []byte, next func(c *binaryCopy) (bool, error)) *copyReader {
	r := &copyReader{next: next, c: binaryCopy{b: buf[:0]}}
	r.c.header()
	return r
}

// Read returns the data; an error of next is returned at once (pgx then
// ends the COPY with CopyFail, so the server stores none of it).
func (r *copyReader) Read(p []byte) (int, error) {
	if r.off > 0 { // keep only what is pending, at the front
		r.c.b = r.c.b[:copy(r.c.b, r.c.b[r.off:])]
		r.off = 0
	}
	for !r.done && len(r.c.b) < len(p) {
		more, err := r.next(&r.c)
		if err != nil {
			return 0, err
		}
		if !more {
			r.c.end()
			r.done = true
		}
	}
	n := copy(p, r.c.b)
	r.off = n
	if r.done && r.off == len(r.c.b) {
		return n, io.EOF
	}
	return n, nil
}

// binaryCopy is COPY data in PostgreSQL's binary format (the COPY
// documentation's "Binary Format"): a signature and header, then per row
// its field count and each field as a length (-1 for NULL) and bytes in the
// type's binary send format, then -1 for the end.
type binaryCopy struct{ b []byte }

// copySignature begins binary COPY data; the flags and the header
// extension's length follow, both 0.
const copySignature = "PGCOPY\n\377\r\n\000"

// microsFromUnixToY2K is how many microseconds PostgreSQL's epoch,
// 2000-01-01 UTC, is after Unix's.
const microsFromUnixToY2K = 946684800 * 1000000

// header begins the data.
func (c *binaryCopy) header() {
	c.b = append(c.b, copySignature...)
	c.b = binary.BigEndian.AppendUint64(c.b, 0)
}

// row begins a row of n fields.
func (c *binaryCopy) row(n int) { c.b = binary.BigEndian.AppendUint16(c.b, uint16(n)) }

// end ends the data.
func (c *binaryCopy) end() { c.b = binary.BigEndian.AppendUint16(c.b, 0xffff) }

func (c *binaryCopy) field(n int) { c.b = binary.BigEndian.AppendUint32(c.b, uint32(n)) }

func (c *binaryCopy) text(s string) {
	c.field(len(s))
	c.b = append(c.b, s...)
}

func (c *binaryCopy) int8(v int64) {
	c.field(8)
	c.b = binary.BigEndian.AppendUint64(c.b, uint64(v))
}

func (c *binaryCopy) int4(v int32) {
	c.field(4)
	c.b = binary.BigEndian.AppendUint32(c.b, uint32(v))
}

func (c *binaryCopy) uuid(id [16]byte) {
	c.field(16)
	c.b = append(c.b, id[:]...)
}

// timestamptz writes t as PostgreSQL keeps it: whole microseconds since
// 2000-01-01 UTC, rounded down (as pgx writes a time; subMicro is the rest).
func (c *binaryCopy) timestamptz(t time.Time) {
	c.int8(t.Unix()*1000000 + int64(t.Nanosecond())/1000 - microsFromUnixToY2K)
}

func (c *binaryCopy) bytea(b []byte) {
	if b == nil {
		c.field(-1)
		return
	}
	c.field(len(b))
	c.b = append(c.b, b...)
}
