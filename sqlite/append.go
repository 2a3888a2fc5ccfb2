package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/ledger"
	"github.com/trailaudit/trail/tlog"
)

type appender = ledger.Log

// backend is the store as the pipeline writes to it. SQLite has one
// writer: the DB's one write connection, whose open transaction (a group)
// many batches share, one at a time. A batch holds the writer (DB.turn)
// from Begin until it is written into the group, then waits for the
// group's COMMIT, which the committer goroutine runs once the batches that
// queued behind have joined (or once MaxWait passes, or when MaxBatch
// events have joined): many small appends cost one fsync.
//
// Everything a batch can fail on by itself is checked by the pipeline
// before it writes, so a batch refused leaves the group as it was. Any
// failure of the store's (the disk, a broken invariant) rolls the whole
// group back, and every batch in it is told.
//
// Pruning a row sets body to an empty blob and actor_id, organization,
// workspace, team and correlation_id to empty strings, deletes its
// targets rows, and sets pruned to the record's seq; hashes and the other
// columns stay.
//
// Each commit also moves the size in each tenant's row (tenants.size) to
// the size its checkpoint signs; a log found shorter than it is refused.
type backend DB

// group is the writer's open transaction and what the batches in it wrote.
type group struct {
	tx      *sql.Tx
	pending [][]any          // event rows gathered, not yet written (flush)
	targets []targetRow      // targets rows gathered
	conn    *sql.Conn        // the writer's connection, tx's
	ins     insertStmts      // the connection's prepared INSERTs
	heads   map[string]*head // the heads the group's batches left
	cps     map[string]*ledger.Checkpoint
	events  int
	start   time.Time
	broken  error         // a failure of the store's: the group rolls back
	done    chan struct{} // closed when the group has committed or rolled back
	err     error         // why it did not commit; read after done
}

// head is a tenant's head as a group's last batch for it left it.
type head struct {
	tid  int64
	head *ledger.Head
}

// Begin waits for the writer and opens a group if none is open (or the
// open one is full: its batch commits it first).
func (be *backend) Begin(ctx context.Context, b *ledger.Batch) (ledger.Tx, error) {
	db := (*DB)(be)
	if db.isClosed() {
		return nil, errClosed
	}
	select {
	case db.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if db.isClosed() {
		<-db.turn
		return nil, errClosed
	}
	if db.g != nil && db.g.events >= db.o.MaxBatch {
		db.commitGroup()
	}
	if db.g == nil {
		tx, err := db.w.BeginTx(context.Background(), nil)
		if err != nil {
			<-db.turn
			return nil, internal(err, "begin")
		}
		db.g = &group{tx: tx, conn: db.w, ins: db.ins, heads: map[string]*head{}, cps: map[string]*ledger.Checkpoint{}, start: time.Now(), done: make(chan struct{})}
	}
	return &tx{db: db, g: db.g, b: b}, nil
}

var errClosed = trail.Errorf(trail.EUNAVAILABLE, "sqlite: the store is closed")

func (db *DB) isClosed() bool {
	db.mu.RLock()
	defer db.mu.RUnlock()
	return db.closed
}

// tx is one batch's part of a group, holding the writer. Its statements
// run without the caller's context: the group is not the caller's alone.
type tx struct {
	db    *DB
	g     *group
	b     *ledger.Batch
	tid   int64
	wrote bool
}

// fail marks the group broken by err, a failure of the store's, and
// returns err.
func (t *tx) fail(err error) error {
	if err != nil && t.g.broken == nil {
		t.g.broken = err
	}
	return err
}

var bg = context.Background()

// Head returns the head an earlier batch of the group left, or loads the
// tenant's (creating its row in tenants): its last row, the tree's right
// edge from the hashes of its peaks, and its newest checkpoint.
func (t *tx) Head(ctx context.Context) (ledger.Stored, error) {
	if h := t.g.heads[t.b.Tenant]; h != nil {
		t.tid = h.tid
		return ledger.Stored{Kept: h.head}, nil
	}
	st, size, err := t.load()
	if err != nil {
		return st, t.fail(err)
	}
	if size > st.Seq {
		// Rows deleted with their checkpoints: the tree would be continued
		// from an earlier size, and the size could not be written.
		return st, trail.Errorf(trail.EINTERNAL, "sqlite: tenant %s: the log ends at seq %d but its tenants row records size %d "+
			"(run trail verify); refusing to append", t.b.Tenant, st.Seq, size)
	}
	return st, nil
}

// load reads the tenant's head (creating its row in tenants), and the size
// its row records.
func (t *tx) load() (ledger.Stored, uint64, error) {
	var st ledger.Stored
	var size uint64
	q := t.g.tx
	err := q.QueryRowContext(bg, "SELECT tid, size FROM tenants WHERE name = ?", t.b.Tenant).Scan(&t.tid, &size)
	if err == sql.ErrNoRows {
		err = q.QueryRowContext(bg, "INSERT INTO tenants (name) VALUES (?) RETURNING tid", t.b.Tenant).Scan(&t.tid)
	}
	if err != nil {
		return st, 0, internal(err, "tenant")
	}
	var key, rec int64
	err = q.QueryRowContext(bg, "SELECT key, recorded_at FROM events WHERE key BETWEEN ? AND ? ORDER BY key DESC LIMIT 1",
		rowKey(t.tid, 1), rowKey(t.tid, maxSeq)).Scan(&key, &rec)
	switch {
	case err == sql.ErrNoRows:
	case err != nil:
		return st, 0, internal(err, "head")
	default:
		st.Seq, st.RecordedAt = keySeq(key), time.Unix(0, rec).UTC()
	}
	st.LastRow = st.Seq // SQLite's head is its last row
	if t.db.o.noTree {
		return st, size, nil
	}
	peaks, err := tlog.ReadTreeHashes(tlog.PeakNodes(st.Seq), func(seqs []uint64) ([][]byte, error) {
		return readHashes(bg, q, nil, t.tid, seqs)
	})
	if err != nil {
		return st, 0, trail.Errorf(trail.EINTERNAL, "sqlite: the tree's right edge cannot be read (run trail verify): %v", err)
	}
	for _, p := range peaks {
		st.Edge = append(st.Edge, p...)
	}
	err = q.QueryRowContext(bg, "SELECT note FROM checkpoints WHERE tid = ? ORDER BY size DESC LIMIT 1", t.tid).Scan(&st.Latest)
	if err != nil && err != sql.ErrNoRows {
		return st, 0, internal(err, "read checkpoint")
	}
	return st, size, nil
}

// Earlier reads the key's first use, and its events. They may be among
// the rows the group gathered: those are written first.
func (t *tx) Earlier(ctx context.Context) ([]byte, []*trail.Event, error) {
	if err := t.g.flush(); err != nil {
		return nil, nil, t.fail(err)
	}
	var fp []byte
	var first uint64
	var n int
	err := t.g.tx.QueryRowContext(bg, "SELECT fingerprint, first_seq, n FROM idempotency WHERE tid = ? AND key = ?", t.tid, t.b.Key).Scan(&fp, &first, &n)
	switch {
	case err == sql.ErrNoRows:
		return nil, nil, nil
	case err != nil:
		return nil, nil, t.fail(internal(err, "idempotency"))
	}
	evs, err := readRange(bg, t.g.tx, t.tid, first, first+uint64(n))
	if err != nil {
		return nil, nil, t.fail(err)
	}
	return fp, evs, nil
}

// Write gathers the rows, to be written with the group's others in
// multi-row INSERTs (flush), and records the key.
func (t *tx) Write(ctx context.Context, r *ledger.Rows) error {
	// The group's transaction holds other batches: nothing is written
	// before every row is read (and encoded).
	rows, err := r.All()
	if err != nil {
		return err
	}
	t.wrote = true
	g := t.g
	for _, row := range rows {
		ix := &row.Index
		key := rowKey(t.tid, row.Event.Seq)
		g.pending = append(g.pending, []any{key, row.ID[:], ix.RecordedAt.UnixNano(), ix.OccurredAt.UnixNano(), ix.Action, ix.Category, string(ix.Outcome),
			ix.ActorID, string(ix.ActorType), ix.Organization, ix.Workspace, ix.Team, ix.CorrelationID, row.Body, row.Hashes})
		for _, tg := range ix.Targets {
			g.targets = append(g.targets, targetRow{tg.ID, key, tg.Type})
		}
	}
	if t.b.Key != "" {
		if _, err := g.tx.ExecContext(bg, "INSERT INTO idempotency (tid, key, fingerprint, first_seq, n) VALUES (?, ?, ?, ?, ?)",
			t.tid, t.b.Key, t.b.Fingerprint[:], rows[0].Event.Seq, len(rows)); err != nil {
			return t.fail(internal(err, "insert idempotency key"))
		}
	}
	g.heads[t.b.Tenant] = &head{tid: t.tid, head: r.Head()}
	g.events += len(rows)
	return nil
}

// Commit leaves cp for the group's COMMIT (the newest of each tenant is
// stored), hands the writer on and waits for the group to commit.
func (t *tx) Commit(ctx context.Context, cp *ledger.Checkpoint) error {
	g := t.g
	if cp != nil {
		g.cps[cp.Tenant] = cp
	}
	t.release()
	select {
	case <-g.done:
		return g.err
	case <-ctx.Done():
		// Once written into the group, the batch may commit whatever the
		// caller does; a caller that gives up is told so and may retry
		// with its idempotency key.
		return fmt.Errorf("sqlite: gave up waiting for the commit (the batch may still be stored; retry with an idempotency key): %w", ctx.Err())
	}
}

// Rollback hands the writer on. A batch refused wrote nothing; one that
// wrote and failed has broken the group, which rolls back.
func (t *tx) Rollback() {
	if t.wrote {
		t.fail(trail.Errorf(trail.EINTERNAL, "sqlite: a batch failed after writing"))
	}
	t.release()
}

func (t *tx) release() {
	<-t.db.turn
	select {
	case t.db.kick <- struct{}{}:
	default: // a kick is pending already
	}
}

// committer commits the open group once the batches that were waiting for
// the writer have joined it: it queues for the writer behind them. With
// MaxWait, it first waits that long from the group's start (a full group
// is committed by the batch that finds it full).
func (db *DB) committer() {
	defer close(db.wdone)
	for {
		select {
		case <-db.kick:
		case <-db.stop:
			return
		}
		db.turn <- struct{}{}
		g := db.g
		<-db.turn
		if g == nil {
			continue
		}
		if wait := db.o.MaxWait - time.Since(g.start); db.o.MaxWait > 0 && wait > 0 {
			timer := time.NewTimer(wait)
			select {
			case <-timer.C:
			case <-g.done:
			case <-db.stop:
			}
			timer.Stop()
		}
		db.turn <- struct{}{}
		if db.g == g {
			db.commitGroup()
		}
		<-db.turn
	}
}

// commitGroup ends the open group, with the writer held: it writes the
// rows gathered and the newest checkpoint of each tenant, and commits, or
// rolls back a broken group; then it answers every batch in it.
func (db *DB) commitGroup() {
	g := db.g
	db.g = nil
	err := g.broken
	if err == nil {
		err = g.finish()
	}
	if err != nil {
		g.tx.Rollback()
	} else {
		db.kickCheckpoint()
	}
	g.err = err
	close(g.done)
}

func (g *group) finish() error {
	if err := g.flush(); err != nil {
		return err
	}
	for tenant, cp := range g.cps {
		note, err := cp.Note()
		if err != nil {
			return err
		}
		if _, err := g.tx.ExecContext(bg, "INSERT OR ROLLBACK INTO checkpoints (tid, size, note) VALUES (?, ?, ?)", g.heads[tenant].tid, cp.Size, note); err != nil {
			return internal(err, "insert checkpoint")
		}
	}
	for _, h := range g.heads {
		// The size beside the rows (tenants.size): trail verify holds the
		// rows to it.
		if _, err := g.tx.ExecContext(bg, "UPDATE tenants SET size = ? WHERE tid = ?", h.head.Seq, h.tid); err != nil {
			return internal(err, "record the log's size")
		}
	}
	return internal(g.tx.Commit(), "commit")
}

var eventCols = []string{"key", "id", "recorded_at", "occurred_at", "action", "category", "outcome",
	"actor_id", "actor_type", "organization", "workspace", "team", "correlation_id", "body", "hashes"}

// flush writes the rows gathered so far.
func (w *group) flush() error {
	if len(w.pending) > 0 {
		if err := w.insert(w.pending); err != nil {
			return err
		}
		w.pending = w.pending[:0]
	}
	// The rows go in in the order of the table's key (id, key, type), so
	// that consecutive inserts land on the same B-tree pages rather than
	// one page each. A target listed twice on one event is stored once.
	// Each statement stays well within SQLite's 32766 bound parameters.
	slices.SortFunc(w.targets, targetRow.compare)
	const perStmt = 3000
	args := make([]any, 0, 3*min(len(w.targets), perStmt))
	for rows := w.targets; len(rows) > 0; {
		n := min(len(rows), perStmt)
		args = args[:0]
		for _, r := range rows[:n] {
			args = append(args, r.id, r.key, r.typ)
		}
		q := "INSERT OR IGNORE INTO targets (id, key, type) VALUES " + strings.TrimSuffix(strings.Repeat("(?,?,?),", n), ",")
		if _, err := w.tx.ExecContext(bg, q, args...); err != nil {
			return internal(err, "insert targets")
		}
		rows = rows[n:]
	}
	w.targets = w.targets[:0]
	return nil
}

// targetRow is a row of targets, in the order of the table's primary key.
type targetRow struct {
	id  string
	key int64
	typ string
}

func (a targetRow) compare(b targetRow) int {
	return cmp.Or(strings.Compare(a.id, b.id), cmp.Compare(a.key, b.key), strings.Compare(a.typ, b.typ))
}

// rowsPerInsert is how many rows one INSERT statement carries at most:
// fewer statements to step, within SQLite's limit of 32766 bound
// parameters.
const rowsPerInsert = 64

// insertStmts are the writer connection's multi-row INSERTs into events,
// by row count (a power of two up to rowsPerInsert): prepared once for the
// connection's life rather than once per transaction, since a group of a
// few events would otherwise parse a statement of its own size at every
// commit. Used with the writer held (DB.turn); closed by Close.
type insertStmts map[int]driver.Stmt

// close finalizes the statements.
func (s insertStmts) close() error {
	var errs []error
	for _, st := range s {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}

// insert writes rows of events: runs of rowsPerInsert rows, and the rest
// in runs of falling powers of two, each with its statement prepared once
// (insertStmts). The values are bound straight to the driver's statement.
func (w *group) insert(rows [][]any) error {
	return w.conn.Raw(func(dc any) error {
		c, ok := dc.(driver.ConnPrepareContext)
		if !ok {
			return trail.Errorf(trail.EINTERNAL, "sqlite: the driver's connection (%T) cannot prepare statements", dc)
		}
		args := make([]driver.NamedValue, 0, min(len(rows), rowsPerInsert)*len(eventCols))
		for len(rows) > 0 {
			n := rowsPerInsert
			for n > len(rows) {
				n /= 2
			}
			st := w.ins[n]
			if st == nil {
				one := "(" + strings.TrimSuffix(strings.Repeat("?,", len(eventCols)), ",") + ")"
				q := "INSERT OR ROLLBACK INTO events (" + strings.Join(eventCols, ", ") + ") VALUES " + strings.TrimSuffix(strings.Repeat(one+",", n), ",")
				var err error
				if st, err = c.PrepareContext(bg, q); err != nil {
					return internal(err, "prepare insert")
				}
				w.ins[n] = st
			}
			args = args[:0]
			for _, r := range rows[:n] {
				for _, v := range r {
					args = append(args, driver.NamedValue{Ordinal: len(args) + 1, Value: v})
				}
			}
			if _, err := st.(driver.StmtExecContext).ExecContext(bg, args); err != nil {
				return internal(err, "insert events")
			}
			rows = rows[n:]
		}
		return nil
	})
}
