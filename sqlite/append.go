package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/ledger"
	"github.com/trailaudit/trail/tlog"
)

type appender = ledger.Log

// backend is the store as the pipeline writes to it. SQLite has one
// writer: the DB's one write connection, whose transactions (groups) many
// batches share. A batch holds the writer (DB.turn) from Begin until it is
// written into the open group, then waits for the group's COMMIT, which the
// committer goroutine runs once the batches that queued behind have joined
// (or once MaxWait passes, or when MaxBatch events have joined): many small
// appends cost one fsync.
//
// The COMMIT runs without the writer held: while one group's rows are
// written and fsynced, the next group gathers and sequences its batches in
// memory (a batch's rows reach the connection only when its group commits,
// flush), continuing the heads the committing group left (its base). A
// batch that needs the connection before then (a tenant's head not in
// either group, an idempotency key, a prune) waits for the base to commit.
// So the writer's goroutine does what only it can do (the INSERTs, the
// WAL frames, the fsync), and the sequencing of the next group, the
// callers' wake-ups and their next batches' preparation run beside it,
// rather than in turn with it. Every batch still returns only after the
// COMMIT of its own group, fsynced (synchronous=FULL).
//
// Everything a batch can fail on by itself is checked by the pipeline
// before it writes, so a batch refused leaves the group as it was. Any
// failure of the store's (the disk, a broken invariant) rolls the whole
// group back, and every batch in it is told; so is every batch of the
// group that continued its heads (their seqs and tree follow rows that
// were not stored).
//
// Pruning a row sets body to an empty blob and actor_id, organization,
// workspace, team and correlation_id to empty strings, deletes its
// targets rows, and sets pruned to the record's seq; hashes and the other
// columns stay.
//
// Each commit also moves the size in each tenant's row (tenants.size) to
// the size its checkpoint signs; a log found shorter than it is refused.
type backend DB

// group is one transaction of the writer's and what the batches in it
// wrote. While open (DB.g) it is guarded by DB.turn; once detached for its
// commit, only the goroutine committing it touches it, and the next group
// only reads its heads.
type group struct {
	tx      *sql.Tx          // on the writer's connection; nil until the group first needs it (open)
	base    *group           // the group committing when this one opened; nil when none was, and once this one is done
	useBase bool             // a batch continued a head of base's
	check   bool             // base is done: its heads may be continued once the database is found unchanged since (unchanged)
	version int64            // the writer connection's data_version after this group committed (0: not known)
	pending [][]any          // event rows gathered, not yet written (flush)
	targets []targetRow      // targets rows gathered
	conn    *sql.Conn        // the writer's connection
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
		db.g = db.newGroup()
	}
	return &tx{db: db, g: db.g, b: b}, nil
}

// newGroup returns a group to open, with the writer held. Its base is the
// group committing (db.prev), if one is: the new group may continue its
// heads unless it is broken, and uses the connection after it. Once the
// group before is done, heads are read from the database, and checked
// against their checkpoints, as at the first append.
func (db *DB) newGroup() *group {
	g := &group{conn: db.w, ins: db.ins, heads: map[string]*head{}, cps: map[string]*ledger.Checkpoint{}, start: time.Now(), done: make(chan struct{})}
	if p := db.prev; p != nil {
		select {
		case <-p.done:
			if p.err == nil && p.version != 0 {
				g.base, g.check = p, true
			}
		default:
			g.base = p
		}
	}
	return g
}

var errClosed = trail.Errorf(trail.EUNAVAILABLE, "sqlite: the store is closed")

func (db *DB) isClosed() bool {
	db.mu.RLock()
	defer db.mu.RUnlock()
	return db.closed
}

// open returns the group's transaction, beginning it once the group before
// (base) is done: the writer's connection holds one transaction at a time.
func (g *group) open() (*sql.Tx, error) {
	if g.tx != nil {
		return g.tx, nil
	}
	if err := g.after(); err != nil {
		return nil, err
	}
	tx, err := g.conn.BeginTx(bg, nil)
	if err != nil {
		return nil, internal(err, "begin")
	}
	g.tx = tx
	return tx, nil
}

// after waits for the group before (base) to be done. It fails when that
// group failed and this one continued its heads.
func (g *group) after() error {
	b := g.base
	if b == nil {
		return nil
	}
	<-b.done
	if b.err != nil && g.useBase {
		return continuedFailed(b.err)
	}
	return nil
}

// continuedFailed is the failure of a group that continued the heads of
// one that failed with err.
func continuedFailed(err error) error {
	return fmt.Errorf("sqlite: the group commit before this one failed, and this one continued its log: %w", err)
}

// unchanged reports whether the group may continue the heads of a base
// that is done: whether no other connection has committed to the database
// since (PRAGMA data_version, read in the group's transaction, is what it
// was after the base's commit). Otherwise every head is read from the
// database and checked against its checkpoint, as at the first append; a
// write of another connection of this process (API keys, the WAL
// checkpointer) costs no more than that.
func (g *group) unchanged() bool {
	if !g.check {
		return true
	}
	g.check = false
	if q, err := g.open(); err == nil {
		var v int64
		if q.QueryRowContext(bg, "PRAGMA data_version").Scan(&v) == nil && v == g.base.version {
			return true
		}
	}
	g.base = nil // an error here is met again by the reads that follow
	return false
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

// Head returns the head an earlier batch of the group, or of its base,
// left, or loads the tenant's (creating its row in tenants): its last
// row, the tree's right edge from the hashes of its peaks, and its newest
// checkpoint.
func (t *tx) Head(ctx context.Context) (ledger.Stored, error) {
	if h := t.g.heads[t.b.Tenant]; h != nil {
		t.tid = h.tid
		return ledger.Stored{Kept: h.head}, nil
	}
	if b := t.g.base; b != nil && b.broken == nil && t.g.unchanged() {
		if h := b.heads[t.b.Tenant]; h != nil {
			t.tid = h.tid
			t.g.useBase = true
			return ledger.Stored{Kept: h.head}, nil
		}
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
	q, err := t.g.open()
	if err != nil {
		return st, 0, err
	}
	err = q.QueryRowContext(bg, "SELECT tid, size FROM tenants WHERE name = ?", t.b.Tenant).Scan(&t.tid, &size)
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
// multi-row INSERTs (flush), and records the key (on the connection: a
// batch with a key has read it there already, Earlier).
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
		q, err := g.open()
		if err != nil {
			return t.fail(err)
		}
		if _, err := q.ExecContext(bg, "INSERT INTO idempotency (tid, key, fingerprint, first_seq, n) VALUES (?, ?, ?, ?, ?)",
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
// is committed by the batch that finds it full). It commits with the
// writer free, so the next group gathers meanwhile, and one group at a
// time: the next is detached once this one is done.
func (db *DB) committer() {
	defer close(db.wdone)
	for {
		select {
		case <-db.kick:
		case <-db.stop:
			return
		}
		g := db.gathered()
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
		if db.g != g {
			<-db.turn
			continue
		}
		db.detach()
		<-db.turn
		db.end(g)
		if g.err != nil {
			// The group open now may have continued g's heads: it fails
			// too, and the one after it reads the heads from the database.
			db.turn <- struct{}{}
			if n := db.g; n != nil && n.base == g && n.useBase && n.broken == nil {
				n.broken = continuedFailed(g.err)
			}
			<-db.turn
		}
	}
}

// gathered returns the open group once the batches ready to join it have:
// while it grows, the committer lets the goroutines that can run go first
// (runtime.Gosched), so the callers its last commit answered, preparing
// their next batches, join this group rather than the next. A lone caller
// waits for nothing: its group stops growing at the first look.
func (db *DB) gathered() *group {
	n := -1
	for {
		db.turn <- struct{}{}
		g := db.g
		events := 0
		if g != nil {
			events = g.events
		}
		<-db.turn
		if g == nil || events == n {
			return g
		}
		n = events
		runtime.Gosched()
	}
}

// detach ends the open group's gathering, with the writer held: it
// becomes the group committing (db.prev), which the next group continues.
func (db *DB) detach() *group {
	g := db.g
	db.g = nil
	db.prev = g
	return g
}

// commitGroup commits the open group at once, with the writer held, once
// the group before it is done.
func (db *DB) commitGroup() {
	db.end(db.detach())
}

// settle, with the writer held, commits the open group and waits for the
// one committing: no transaction of the writer's is open after it.
func (db *DB) settle() {
	if db.g != nil {
		db.commitGroup()
	}
	if p := db.prev; p != nil {
		<-p.done
	}
}

// end commits a detached group, after the group before it: it writes the
// rows gathered and the newest checkpoint of each tenant, and commits, or
// rolls back a broken group; then it answers every batch in it.
func (db *DB) end(g *group) {
	err := g.broken
	if err == nil {
		err = g.after()
	}
	if err == nil {
		err = g.finish()
	}
	if err != nil {
		if g.tx != nil {
			g.tx.Rollback()
		}
	} else {
		db.kickCheckpoint()
		// What the next group checks the database against before it
		// continues g's heads (group.unchanged); 0 when it cannot be read.
		if db.w.QueryRowContext(bg, "PRAGMA data_version").Scan(&g.version) != nil {
			g.version = 0
		}
	}
	// What the next group needs of g is its heads alone.
	g.tx, g.base, g.pending, g.targets, g.cps = nil, nil, nil, nil, nil
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

// flush writes the rows gathered so far, in the group's transaction.
func (w *group) flush() error {
	if _, err := w.open(); err != nil {
		return err
	}
	if len(w.pending) > 0 {
		err := w.insert(eventsInsert, len(w.pending), func(args []driver.NamedValue, i int) []driver.NamedValue {
			for _, v := range w.pending[i] {
				args = append(args, driver.NamedValue{Ordinal: len(args) + 1, Value: v})
			}
			return args
		})
		if err != nil {
			return internal(err, "insert events")
		}
		w.pending = w.pending[:0]
	}
	// The rows go in in the order of the table's key (key, id, type): at
	// its end, each after the last. A target listed twice on one event is
	// stored once.
	slices.SortFunc(w.targets, targetRow.compare)
	err := w.insert(targetsInsert, len(w.targets), func(args []driver.NamedValue, i int) []driver.NamedValue {
		r := w.targets[i]
		n := len(args)
		return append(args, driver.NamedValue{Ordinal: n + 1, Value: r.id}, driver.NamedValue{Ordinal: n + 2, Value: r.key},
			driver.NamedValue{Ordinal: n + 3, Value: r.typ})
	})
	if err != nil {
		return internal(err, "insert targets")
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
	return cmp.Or(cmp.Compare(a.key, b.key), strings.Compare(a.id, b.id), strings.Compare(a.typ, b.typ))
}

// rowsPerInsert is how many rows one INSERT statement carries at most:
// fewer statements to step, within SQLite's limit of 32766 bound
// parameters. Each multi-row INSERT into events is a statement SQLite
// may abort part-way (the key's integer check), so it opens a statement
// journal, which copies every page the statement is first to change: a
// batch of 1000 in runs of 64 copied its hot index pages 17 times over,
// in runs of up to 512 (512, 256, ..., 8) 6 times. The larger the run,
// the larger its prepared statement (about 0.7 MB of SQLite's memory
// for 512 rows of events, 0.1 MB for 64), prepared only once a group
// needs it.
const rowsPerInsert = 512

// multiInsert is a multi-row INSERT statement of one table, by its first
// line ("INSERT OR ROLLBACK INTO events") and its columns.
type multiInsert struct {
	head string
	cols int
}

var (
	eventsInsert = multiInsert{"INSERT OR ROLLBACK INTO events (" + strings.Join(eventCols, ", ") + ")", len(eventCols)}
	// A target listed twice on one event is stored once (OR IGNORE).
	targetsInsert = multiInsert{"INSERT OR IGNORE INTO targets (id, key, type)", 3}
)

// query is the statement inserting n rows.
func (m multiInsert) query(n int) string {
	one := "(" + strings.TrimSuffix(strings.Repeat("?,", m.cols), ",") + ")"
	return m.head + " VALUES " + strings.TrimSuffix(strings.Repeat(one+",", n), ",")
}

// insertStmts are the writer connection's multi-row INSERTs, by statement
// and row count (a power of two up to rowsPerInsert): prepared once for
// the connection's life rather than once per transaction, since a group
// of a few events would otherwise parse statements of its own size at
// every commit. Used by whoever has the writer's connection (a batch
// holding DB.turn with no group committing, or the committer); closed by
// Close.
type insertStmts map[insertKey]driver.Stmt

type insertKey struct {
	m multiInsert
	n int
}

// close finalizes the statements.
func (s insertStmts) close() error {
	var errs []error
	for _, st := range s {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}

// insert writes n rows with m: runs of rowsPerInsert rows, and the rest
// in runs of falling powers of two, each with its statement prepared once
// (insertStmts). arg appends row i's values to args; they are bound
// straight to the driver's statement.
func (w *group) insert(m multiInsert, n int, arg func(args []driver.NamedValue, i int) []driver.NamedValue) error {
	if n == 0 {
		return nil
	}
	return w.conn.Raw(func(dc any) error {
		c, ok := dc.(driver.ConnPrepareContext)
		if !ok {
			return trail.Errorf(trail.EINTERNAL, "sqlite: the driver's connection (%T) cannot prepare statements", dc)
		}
		args := make([]driver.NamedValue, 0, min(n, rowsPerInsert)*m.cols)
		for i := 0; i < n; {
			k := rowsPerInsert
			for k > n-i {
				k /= 2
			}
			st := w.ins[insertKey{m, k}]
			if st == nil {
				var err error
				if st, err = c.PrepareContext(bg, m.query(k)); err != nil {
					return err
				}
				w.ins[insertKey{m, k}] = st
			}
			args = args[:0]
			for j := i; j < i+k; j++ {
				args = arg(args, j)
			}
			if _, err := st.(driver.StmtExecContext).ExecContext(bg, args); err != nil {
				return err
			}
			i += k
		}
		return nil
	})
}
