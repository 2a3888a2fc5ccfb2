package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/tlog"
)

// appendReq is one Append call waiting for the writer.
type appendReq struct {
	tenant string
	events []*trail.Event // prepared: validated, redacted, with ids
	key    string         // idempotency key, or ""
	fp     [32]byte
	done   chan appendRes // buffered: the writer never blocks on it
	prune  []uint64       // Prune: the seqs events[0], the record, prunes (prune.go)
}

type appendRes struct {
	res *trail.AppendResult
	err error
}

// Append validates and redacts events (in the caller's goroutine, so that
// work runs in parallel), then hands them to the writer and waits for the
// commit they ride in.
func (db *DB) Append(ctx context.Context, tenant string, events []*trail.Event, opts trail.AppendOptions) (*trail.AppendResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if db.o.Signer == nil && !db.o.noTree {
		return nil, trail.Errorf(trail.EINTERNAL, "sqlite: opened without a signer, read-only")
	}
	req := &appendReq{tenant: tenant, key: opts.IdempotencyKey, done: make(chan appendRes, 1), prune: pruneSeqs(ctx)}
	if req.key != "" {
		var err error
		if req.fp, err = trail.BatchFingerprint(events); err != nil {
			return nil, trail.Errorf(trail.EINVALID, "batch cannot be fingerprinted: %v", err)
		}
	}
	var err error
	if req.events, err = db.o.Validator.PrepareBatch(tenant, events, opts.Policy, db.o.Now()); err != nil {
		return nil, err
	}
	if err := db.o.Validator.Seal(ctx, tenant, req.events); err != nil {
		return nil, err
	}
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
		n := len(first.events)
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
			n += len(r.events)
		}
		if timer != nil {
			timer.Stop()
		}
		db.commit(group)
	}
}

// head is a tenant's position during a commit.
type head struct {
	tid      int64
	seq      uint64
	recorded time.Time
	tree     *tlog.Tree // the tenant's tree at seq; nil with noTree
	start    uint64     // seq when the commit began: a checkpoint is due when seq passes it
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
	w := &txWriter{tx: tx, heads: map[string]*head{}, tree: !db.o.noTree}
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
		sp := r.prune != nil
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
			saved = w.snapshot(r.tenant)
		}
		res, err := w.apply(ctx, r)
		if err != nil && !requestError(err) {
			abort(err)
			return
		}
		if err != nil && sp {
			w.restore(r.tenant, saved)
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
	if err := w.checkpoint(ctx, db.o.Signer); err != nil {
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
func (w *txWriter) checkpoint(ctx context.Context, s *tlog.Signer) error {
	for name, h := range w.heads {
		if h.tree == nil || h.seq == h.start {
			continue
		}
		note, err := s.Sign(name, h.seq, h.tree.Root())
		if err != nil {
			return err
		}
		if _, err := w.tx.ExecContext(ctx, "INSERT OR ROLLBACK INTO checkpoints (tid, size, note) VALUES (?, ?, ?)", h.tid, h.seq, note); err != nil {
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
		c := *h
		if h.tree != nil {
			c.tree = h.tree.Clone()
		}
		return &c
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
	h := &head{}
	err := w.tx.QueryRowContext(ctx, "SELECT tid FROM tenants WHERE name = ?", tenant).Scan(&h.tid)
	if err == sql.ErrNoRows {
		err = w.tx.QueryRowContext(ctx, "INSERT INTO tenants (name) VALUES (?) RETURNING tid", tenant).Scan(&h.tid)
	}
	if err != nil {
		return nil, internal(err, "tenant")
	}
	var key, rec int64
	err = w.tx.QueryRowContext(ctx, "SELECT key, recorded_at FROM events WHERE key BETWEEN ? AND ? ORDER BY key DESC LIMIT 1",
		rowKey(h.tid, 1), rowKey(h.tid, maxSeq)).Scan(&key, &rec)
	switch {
	case err == sql.ErrNoRows:
	case err != nil:
		return nil, internal(err, "head")
	default:
		h.seq, h.recorded = keySeq(key), time.Unix(0, rec).UTC()
	}
	h.start = h.seq
	if w.tree {
		if h.tree, err = loadTree(ctx, w.tx, h.tid, h.seq); err != nil {
			return nil, err
		}
		var latest []byte
		err := w.tx.QueryRowContext(ctx, "SELECT note FROM checkpoints WHERE tid = ? ORDER BY size DESC LIMIT 1", h.tid).Scan(&latest)
		if err != nil && err != sql.ErrNoRows {
			return nil, internal(err, "read checkpoint")
		}
		if err := tlog.CheckHead(tenant, h.seq, h.tree, latest); err != nil {
			return nil, err
		}
	}
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
	h, err := w.head(ctx, r.tenant)
	if err != nil {
		return nil, err
	}
	if r.prune == nil {
		if err := tlog.RefuseRecords(r.events); err != nil {
			return nil, err // before anything is written
		}
	}
	if r.key != "" {
		// A replay reads the rows of the first append, which may be among
		// those gathered: write them first.
		if err := w.flush(ctx); err != nil {
			return nil, err
		}
		var fp []byte
		var first uint64
		var n int
		err := w.tx.QueryRowContext(ctx, "SELECT fingerprint, first_seq, n FROM idempotency WHERE tid = ? AND key = ?", h.tid, r.key).Scan(&fp, &first, &n)
		switch {
		case err == sql.ErrNoRows:
		case err != nil:
			return nil, internal(err, "idempotency")
		case string(fp) != string(r.fp[:]):
			return nil, trail.Errorf(trail.ECONFLICT, "idempotency key was used before with a different batch")
		default:
			evs, err := readRange(ctx, w.tx, h.tid, first, first+uint64(n))
			if err != nil {
				return nil, err
			}
			return &trail.AppendResult{Events: evs, Replay: true}, nil
		}
	}
	if h.seq+uint64(len(r.events)) > maxSeq {
		return nil, trail.Errorf(trail.EINTERNAL, "sqlite: tenant %s is full (%d events)", r.tenant, uint64(maxSeq))
	}
	first := h.seq + 1
	rows := make([][]any, len(r.events))
	var targets []any
	// Everything that can fail does so before the head and the tree move:
	// a request that fails here leaves nothing to undo.
	seq, recorded := h.seq, h.recorded
	for i, ev := range r.events {
		seq++
		ev.Seq = seq
		ev.RecordedAt = trail.NotBefore(ev.RecordedAt, recorded)
		recorded = ev.RecordedAt
		body, err := trail.MarshalCanonical(ev)
		if err != nil {
			return nil, trail.Errorf(trail.EINVALID, "event %d cannot be encoded: %v", i, err)
		}
		id, ok := trail.ParseID(ev.ID)
		if !ok {
			return nil, trail.Errorf(trail.EINTERNAL, "sqlite: event id %q is not a UUID", ev.ID)
		}
		key := rowKey(h.tid, ev.Seq)
		rows[i] = []any{key, id[:], ev.RecordedAt.UnixNano(), ev.OccurredAt.UnixNano(), ev.Action, ev.Category, string(ev.Outcome),
			ev.Actor.ID, string(ev.Actor.Type), ev.Scope.Organization, ev.Scope.Workspace, ev.Scope.Team, ev.CorrelationID, body, []byte{}}
		for _, t := range ev.Targets {
			targets = append(targets, t.ID, t.Type, key)
		}
	}
	if h.tree != nil {
		for _, row := range rows {
			row[len(row)-1] = h.tree.Append(row[len(row)-2].([]byte))
		}
	}
	h.seq, h.recorded = seq, recorded
	w.pending = append(w.pending, rows...)
	w.targets = append(w.targets, targets...)
	if r.prune != nil {
		// The prune's checks and the triggers read its record's row.
		if err := w.flush(ctx); err != nil {
			return nil, err
		}
	}
	if r.key != "" {
		if _, err := w.tx.ExecContext(ctx, "INSERT INTO idempotency (tid, key, fingerprint, first_seq, n) VALUES (?, ?, ?, ?, ?)",
			h.tid, r.key, r.fp[:], first, len(r.events)); err != nil {
			return nil, internal(err, "insert idempotency key")
		}
	}
	if err := w.prune(ctx, h, r); err != nil { // prune.go
		return nil, err
	}
	out := make([]*trail.Event, len(r.events))
	for i, ev := range r.events {
		out[i] = ev.Clone()
	}
	return &trail.AppendResult{Events: out}, nil
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
