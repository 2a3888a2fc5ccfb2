package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/ledger"
	"github.com/trailaudit/trail/tlog"
)

// appendReq is one prepared batch waiting for the writer.
type appendReq struct {
	b    *ledger.Batch
	done chan appendRes // buffered: the writer never blocks on it
}

type appendRes struct {
	res *trail.AppendResult
	err error
}

// Append prepares events through the pipeline (in the caller's goroutine,
// so that work runs in parallel), then hands them to the writer and waits
// for the commit they ride in.
func (db *DB) Append(ctx context.Context, tenant string, events []*trail.Event, opts trail.AppendOptions) (*trail.AppendResult, error) {
	b, err := db.p.Append(ctx, tenant, events, opts)
	if err != nil {
		return nil, err
	}
	return db.submit(ctx, b)
}

// AppendOwn appends Trail's own records, or prunes (ledger.Writer), as
// Append does. A prune runs in a savepoint of the writer's transaction: one
// that fails leaves nothing behind, even in a shared group commit.
//
// Pruning a row sets body to an empty blob and actor_id, organization,
// workspace, team and correlation_id to empty strings, deletes its targets
// rows, and sets pruned to the record's seq; hashes and the other columns
// stay.
func (db *DB) AppendOwn(ctx context.Context, tenant string, o ledger.Own) (*trail.AppendResult, error) {
	b, err := db.p.Own(ctx, tenant, o)
	if err != nil {
		return nil, err
	}
	return db.submit(ctx, b)
}

// submit queues a prepared batch for the writer and waits for its commit.
func (db *DB) submit(ctx context.Context, b *ledger.Batch) (*trail.AppendResult, error) {
	req := &appendReq{b: b, done: make(chan appendRes, 1)}
	db.mu.RLock()
	if db.closed {
		db.mu.RUnlock()
		return nil, trail.Errorf(trail.EINTERNAL, "sqlite: store is closed")
	}
	select {
	case db.reqs <- req:
		db.mu.RUnlock()
	case <-ctx.Done():
		db.mu.RUnlock()
		return nil, ctx.Err()
	}
	// Once queued, the batch may commit whatever the caller does; a caller
	// that gives up is told so and may retry with its idempotency key.
	select {
	case r := <-req.done:
		return r.res, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("sqlite: gave up waiting for the commit (the batch may still be stored; retry with an idempotency key): %w", ctx.Err())
	}
}

// writer is the one goroutine that writes. Each round it takes the first
// waiting request, gathers more until MaxBatch events or MaxWait, commits
// them in one transaction and answers each caller.
func (db *DB) writer() {
	defer close(db.wdone)
	var group []*appendReq
	for first := range db.reqs {
		group = append(group[:0], first)
		n := len(first.b.Events)
		var timer *time.Timer
		if db.o.MaxWait > 0 {
			timer = time.NewTimer(db.o.MaxWait)
		}
	gather:
		for n < db.o.MaxBatch {
			var r *appendReq
			var ok bool
			if timer == nil {
				select {
				case r, ok = <-db.reqs:
				default:
					break gather
				}
			} else {
				select {
				case r, ok = <-db.reqs:
				case <-timer.C:
					break gather
				}
			}
			if !ok {
				break
			}
			group = append(group, r)
			n += len(r.b.Events)
		}
		if timer != nil {
			timer.Stop()
		}
		db.commit(group)
	}
}

// head is a tenant's position during a commit.
type head struct {
	tid int64
	*ledger.Head
}

// commit writes a group in one transaction. A request that fails on its
// own (a reused idempotency key) is answered with its error while the
// others still commit.
func (db *DB) commit(group []*appendReq) {
	ctx := context.Background()
	results := make([]appendRes, len(group))
	answer := func() {
		for i, r := range group {
			r.done <- results[i]
		}
	}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		for i := range results {
			results[i].err = internal(err, "begin")
		}
		answer()
		return
	}
	w := &txWriter{tx: tx, heads: map[string]*head{}, tree: db.p.Tree()}
	// Any failure but a request's own (the disk, a broken invariant) fails
	// the whole group: the transaction is rolled back and every caller is
	// told.
	abort := func(err error) {
		tx.Rollback()
		for i := range results {
			results[i] = appendRes{err: err}
		}
		answer()
	}
	// Rows are gathered across requests and written together (flush):
	// one multi-row INSERT for a commit of many small appends. An append
	// that fails on its own (a reused idempotency key, an event that does
	// not encode, a purge record sent by hand) fails before it writes or
	// moves anything, so it needs no savepoint. A prune checks the rows it
	// clears after writing its record: it runs in a savepoint, after the
	// rows gathered before it are written.
	for i, r := range group {
		sp := r.b.Prune != nil
		var saved *head
		if sp {
			if err := w.flush(ctx); err != nil {
				abort(err)
				return
			}
			if _, err := tx.ExecContext(ctx, "SAVEPOINT req"); err != nil {
				abort(internal(err, "savepoint"))
				return
			}
			saved = w.snapshot(r.b.Tenant)
		}
		res, err := w.apply(ctx, r)
		if err != nil && !requestError(err) {
			abort(err)
			return
		}
		if err != nil && sp {
			w.restore(r.b.Tenant, saved)
			if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO req"); rerr != nil {
				abort(internal(rerr, "rollback to savepoint"))
				return
			}
		}
		if sp {
			if _, rerr := tx.ExecContext(ctx, "RELEASE req"); rerr != nil {
				abort(internal(rerr, "release savepoint"))
				return
			}
		}
		results[i] = appendRes{res, err}
	}
	if err := w.flush(ctx); err != nil {
		abort(err)
		return
	}
	if err := w.checkpoint(ctx, db.p); err != nil {
		abort(err)
		return
	}
	if err := tx.Commit(); err != nil {
		abort(internal(err, "commit"))
		return
	}
	answer()
}

// checkpoint signs and stores a checkpoint for each tenant the commit
// appended to, in the commit's transaction.
func (w *txWriter) checkpoint(ctx context.Context, p *ledger.Pipeline) error {
	for _, h := range w.heads {
		if !h.Moved() {
			continue
		}
		note, err := p.Sign(h.Head)
		if err != nil || note == nil {
			return err
		}
		if _, err := w.tx.ExecContext(ctx, "INSERT OR ROLLBACK INTO checkpoints (tid, size, note) VALUES (?, ?, ?)", h.tid, h.Seq, note); err != nil {
			return internal(err, "insert checkpoint")
		}
	}
	return nil
}

// requestError reports whether err is one request's own failure rather
// than the store's.
func requestError(err error) bool {
	switch trail.ErrorCode(err) {
	case trail.ECONFLICT, trail.EINVALID:
		return true
	}
	return false
}

// txWriter applies requests inside one transaction.
type txWriter struct {
	tx      *sql.Tx
	pending [][]any // event rows gathered, not yet written (flush)
	targets []any   // targets rows gathered: id, type, key each
	tree    bool    // maintain the tenants' trees (false only in benchmarks)
	heads   map[string]*head
	stmts   map[int]*sql.Stmt // multi-row inserts by row count
}

func (w *txWriter) snapshot(tenant string) *head {
	if h := w.heads[tenant]; h != nil {
		return &head{tid: h.tid, Head: h.Head.Clone()}
	}
	return nil
}

func (w *txWriter) restore(tenant string, h *head) {
	if h == nil {
		delete(w.heads, tenant)
		return
	}
	w.heads[tenant] = h
}

// head loads (or creates) tenant's row in tenants and its last event.
func (w *txWriter) head(ctx context.Context, tenant string) (*head, error) {
	if h := w.heads[tenant]; h != nil {
		return h, nil
	}
	var tid int64
	err := w.tx.QueryRowContext(ctx, "SELECT tid FROM tenants WHERE name = ?", tenant).Scan(&tid)
	if err == sql.ErrNoRows {
		err = w.tx.QueryRowContext(ctx, "INSERT INTO tenants (name) VALUES (?) RETURNING tid", tenant).Scan(&tid)
	}
	if err != nil {
		return nil, internal(err, "tenant")
	}
	var (
		key, rec int64
		seq      uint64
		recorded time.Time
		tree     *tlog.Tree
		latest   []byte
	)
	err = w.tx.QueryRowContext(ctx, "SELECT key, recorded_at FROM events WHERE key BETWEEN ? AND ? ORDER BY key DESC LIMIT 1",
		rowKey(tid, 1), rowKey(tid, maxSeq)).Scan(&key, &rec)
	switch {
	case err == sql.ErrNoRows:
	case err != nil:
		return nil, internal(err, "head")
	default:
		seq, recorded = keySeq(key), time.Unix(0, rec).UTC()
	}
	if w.tree {
		if tree, err = loadTree(ctx, w.tx, tid, seq); err != nil {
			return nil, err
		}
		err := w.tx.QueryRowContext(ctx, "SELECT note FROM checkpoints WHERE tid = ? ORDER BY size DESC LIMIT 1", tid).Scan(&latest)
		if err != nil && err != sql.ErrNoRows {
			return nil, internal(err, "read checkpoint")
		}
	}
	// SQLite's head is its last row: seq and lastRow are one.
	lh, err := ledger.NewHead(tenant, seq, recorded, tree, seq, latest)
	if err != nil {
		return nil, err
	}
	h := &head{tid: tid, Head: lh}
	w.heads[tenant] = h
	return h, nil
}

// loadTree continues tenant tid's tree of size leaves from the hashes of its
// peaks, stored in a few of its rows.
func loadTree(ctx context.Context, q querier, tid int64, size uint64) (*tlog.Tree, error) {
	nodes := tlog.PeakNodes(size)
	peaks, err := tlog.ReadTreeHashes(nodes, func(seqs []uint64) ([][]byte, error) {
		return readHashes(ctx, q, nil, tid, seqs)
	})
	if err != nil {
		return nil, trail.Errorf(trail.EINTERNAL, "sqlite: the tree's right edge cannot be read (run trail verify): %v", err)
	}
	return tlog.NewTree(size, peaks)
}

func (w *txWriter) apply(ctx context.Context, r *appendReq) (*trail.AppendResult, error) {
	b := r.b
	h, err := w.head(ctx, b.Tenant)
	if err != nil {
		return nil, err
	}
	if b.Key != "" {
		// A replay reads the rows of the first append, which may be among
		// those gathered: write them first.
		if err := w.flush(ctx); err != nil {
			return nil, err
		}
		var fp []byte
		var first uint64
		var n int
		err := w.tx.QueryRowContext(ctx, "SELECT fingerprint, first_seq, n FROM idempotency WHERE tid = ? AND key = ?", h.tid, b.Key).Scan(&fp, &first, &n)
		switch {
		case err == sql.ErrNoRows:
		case err != nil:
			return nil, internal(err, "idempotency")
		default:
			if err := b.Replay(fp); err != nil {
				return nil, err
			}
			evs, err := readRange(ctx, w.tx, h.tid, first, first+uint64(n))
			if err != nil {
				return nil, err
			}
			return &trail.AppendResult{Events: evs, Replay: true}, nil
		}
	}
	// A batch that fails to sequence leaves the head where it was.
	rows, err := h.Sequence(b, maxSeq)
	if err != nil {
		return nil, err
	}
	for _, row := range rows {
		ix := &row.Index
		key := rowKey(h.tid, row.Event.Seq)
		w.pending = append(w.pending, []any{key, row.ID[:], ix.RecordedAt.UnixNano(), ix.OccurredAt.UnixNano(), ix.Action, ix.Category, string(ix.Outcome),
			ix.ActorID, string(ix.ActorType), ix.Organization, ix.Workspace, ix.Team, ix.CorrelationID, row.Body, row.Hashes})
		for _, t := range ix.Targets {
			w.targets = append(w.targets, t.ID, t.Type, key)
		}
	}
	if b.Prune != nil {
		// The prune's checks and the triggers read its record's row.
		if err := w.flush(ctx); err != nil {
			return nil, err
		}
	}
	if b.Key != "" {
		if _, err := w.tx.ExecContext(ctx, "INSERT INTO idempotency (tid, key, fingerprint, first_seq, n) VALUES (?, ?, ?, ?, ?)",
			h.tid, b.Key, b.Fingerprint[:], rows[0].Event.Seq, len(rows)); err != nil {
			return nil, internal(err, "insert idempotency key")
		}
	}
	if err := w.prune(ctx, h, b); err != nil { // prune.go
		return nil, err
	}
	return ledger.Result(rows), nil
}

var eventCols = []string{"key", "id", "recorded_at", "occurred_at", "action", "category", "outcome",
	"actor_id", "actor_type", "organization", "workspace", "team", "correlation_id", "body", "hashes"}

// flush writes the rows gathered so far.
func (w *txWriter) flush(ctx context.Context) error {
	if len(w.pending) > 0 {
		if err := w.insert(ctx, "events", eventCols, w.pending); err != nil {
			return err
		}
		w.pending = w.pending[:0]
	}
	// A target listed twice on one event is stored once. Each statement
	// stays well within SQLite's 32766 bound parameters.
	const perStmt = 3 * 3000
	for len(w.targets) > 0 {
		n := min(len(w.targets), perStmt)
		q := "INSERT OR IGNORE INTO targets (id, type, key) VALUES " + strings.TrimSuffix(strings.Repeat("(?,?,?),", n/3), ",")
		if _, err := w.tx.ExecContext(ctx, q, w.targets[:n]...); err != nil {
			return internal(err, "insert targets")
		}
		w.targets = w.targets[n:]
	}
	return nil
}

// rowsPerInsert is how many rows one INSERT statement carries: fewer
// statements to step, within SQLite's limit of 32766 bound parameters.
const rowsPerInsert = 64

// insert writes rows with multi-row INSERT statements, prepared once per
// transaction per row count.
func (w *txWriter) insert(ctx context.Context, table string, cols []string, rows [][]any) error {
	if w.stmts == nil {
		w.stmts = map[int]*sql.Stmt{}
	}
	one := "(" + strings.TrimSuffix(strings.Repeat("?,", len(cols)), ",") + ")"
	args := make([]any, 0, rowsPerInsert*len(cols))
	for len(rows) > 0 {
		n := min(len(rows), rowsPerInsert)
		st := w.stmts[n]
		if st == nil {
			q := "INSERT OR ROLLBACK INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES " + strings.TrimSuffix(strings.Repeat(one+",", n), ",")
			var err error
			if st, err = w.tx.PrepareContext(ctx, q); err != nil {
				return internal(err, "prepare insert")
			}
			w.stmts[n] = st
		}
		args = args[:0]
		for _, r := range rows[:n] {
			args = append(args, r...)
		}
		if _, err := st.ExecContext(ctx, args...); err != nil {
			return internal(err, "insert "+table)
		}
		rows = rows[n:]
	}
	return nil
}
