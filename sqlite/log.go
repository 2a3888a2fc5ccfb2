package sqlite

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/tlog"
	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// Checkpoint returns tenant's latest signed checkpoint.
func (db *DB) Checkpoint(ctx context.Context, tenant string) ([]byte, error) {
	var note []byte
	err := db.r.QueryRowContext(ctx, `SELECT c.note FROM tenants t JOIN checkpoints c ON c.tid = t.tid
		WHERE t.name = ? ORDER BY c.size DESC LIMIT 1`, tenant).Scan(&note)
	if err == sql.ErrNoRows {
		return nil, trail.Errorf(trail.ENOTFOUND, "tenant %s has no checkpoint", tenant)
	}
	return note, internal(err, "read checkpoint")
}

// Checkpoints calls fn with each of tenant's checkpoints, smallest first.
func (db *DB) Checkpoints(ctx context.Context, tenant string, fn func(note []byte) error) error {
	tid, err := db.tid(ctx, tenant)
	if err != nil || tid == 0 {
		return err
	}
	// Chunks by size, each its own query, so nothing stays open while fn
	// runs.
	var after int64 = -1
	for {
		rows, err := db.r.QueryContext(ctx, "SELECT size, note FROM checkpoints WHERE tid = ? AND size > ? ORDER BY size LIMIT 1024", tid, after)
		if err != nil {
			return internal(err, "read checkpoints")
		}
		var notes [][]byte
		for rows.Next() {
			var note []byte
			if err := rows.Scan(&after, &note); err != nil {
				rows.Close()
				return internal(err, "read checkpoints")
			}
			notes = append(notes, note)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return internal(err, "read checkpoints")
		}
		for _, n := range notes {
			if err := fn(n); err != nil {
				return err
			}
		}
		if len(notes) < 1024 {
			return nil
		}
	}
}

// TreeHashes returns the hashes of tree nodes, read from the rows that
// store them.
func (db *DB) TreeHashes(ctx context.Context, tenant string, nodes []trail.TreeNode) ([][]byte, error) {
	tid, err := db.tid(ctx, tenant)
	if err != nil {
		return nil, err
	}
	// One statement (for up to hashesIn rows, which is any proof): the rows
	// it reads are one snapshot.
	return tlog.ReadTreeHashes(nodes, func(seqs []uint64) ([][]byte, error) {
		return readHashes(ctx, db.r, db.hashesStmt, tid, seqs)
	})
}

// hashesIn is how many keys one read of tree hashes asks for: a proof of a
// log of 2^40 events needs at most 80 nodes, from fewer rows.
const hashesIn = 64

// hashesQuery reads the hashes of up to hashesIn rows. Unused places repeat
// a key, so that the statement is always the same and is prepared once.
var hashesQuery = "SELECT key, hashes FROM events WHERE key IN (" + strings.TrimSuffix(strings.Repeat("?,", hashesIn), ",") + ")"

// readHashes returns the hashes column of the rows at seqs (nil for a row
// that is not there). stmt is hashesQuery prepared, or nil to prepare it on
// q.
func readHashes(ctx context.Context, q querier, stmt *sql.Stmt, tid int64, seqs []uint64) ([][]byte, error) {
	out := make([][]byte, len(seqs))
	if tid == 0 {
		return out, nil
	}
	at := make(map[int64][]int, len(seqs))
	var keys []any
	for i, s := range seqs {
		k := rowKey(tid, s)
		if _, ok := at[k]; !ok {
			keys = append(keys, k)
		}
		at[k] = append(at[k], i)
	}
	for len(keys) > 0 {
		n := min(len(keys), hashesIn)
		args := make([]any, hashesIn)
		for i := range args {
			args[i] = keys[min(i, n-1)]
		}
		keys = keys[n:]
		var rows *sql.Rows
		var err error
		if stmt != nil {
			rows, err = stmt.QueryContext(ctx, args...)
		} else {
			rows, err = q.QueryContext(ctx, hashesQuery, args...)
		}
		if err != nil {
			return nil, internal(err, "read tree")
		}
		for rows.Next() {
			var k int64
			var h []byte
			if err := rows.Scan(&k, &h); err != nil {
				rows.Close()
				return nil, internal(err, "read tree")
			}
			for _, i := range at[k] {
				out[i] = h
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, internal(err, "read tree")
		}
	}
	return out, nil
}

// ScanLeaves reads the rows in chunks of keys (scanChunks), as stored: a
// missing row is simply not there.
func (db *DB) ScanLeaves(ctx context.Context, tenant string, from, to uint64, fn func(trail.Leaf) error) error {
	return db.scanChunks(ctx, tenant, from, to, false, func(c *leafChunk) error {
		for _, l := range c.leaves {
			if err := fn(l); err != nil {
				return err
			}
		}
		return nil
	})
}

var _ trail.LeafIndexScanner = (*DB)(nil)

// ScanLeavesIndexed is ScanLeaves and ScanIndex in one pass (scanChunks):
// each chunk of keys is one read transaction, one query reading its rows'
// bytes and columns together and one its targets rows (the last chunk's
// through to, or the tenant's last key when to is 0, as ScanIndex reads
// them).
func (db *DB) ScanLeavesIndexed(ctx context.Context, tenant string, from, to uint64, fn func(*trail.Leaf, *trail.IndexRow) error) error {
	return db.scanChunks(ctx, tenant, from, to, true, func(c *leafChunk) error {
		next := 0 // c.leaves[next] is the next row; every row has index values
		for i := range c.ix {
			var l *trail.Leaf
			if next < len(c.leaves) && c.leaves[next].Seq == c.ix[i].Seq {
				l = &c.leaves[next]
				next++
			}
			if err := fn(l, &c.ix[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// scanChunks reads tenant's rows with from <= seq < to (to == 0: through
// the last row as it begins), with their index values when indexed, in
// chunks of keys, each its own query, and calls each with the chunks in
// order. Reading a row costs SQLite more than hashing it costs the
// verifier, so up to Readers chunks are read at once, on their own
// connections (when indexed, rawConns opened for the scan and closed
// before it returns), while each works through the chunks before them. A chunk's
// buffers are reused for a later chunk once each is done with it (a Leaf
// is only valid during fn), so a whole scan allocates about Readers+1
// chunks' bytes, not the log's.
func (db *DB) scanChunks(ctx context.Context, tenant string, from, to uint64, indexed bool, each func(*leafChunk) error) error {
	ixTo := to // where the last chunk's index values end: as ScanIndex's
	if ixTo == 0 || ixTo > maxSeq+1 {
		ixTo = maxSeq + 1
	}
	tid, from, to, err := db.scanRange(ctx, tenant, from, to)
	if err != nil || tid == 0 {
		return err
	}
	if !indexed {
		ixTo = to
	}
	const chunk = 2048
	n := db.scanAhead
	if n == 0 {
		n = db.o.Readers // reading waits on the disk too: more than one per core pays
	}
	free := make(chan *leafChunk, n+1) // chunks each is done with
	for range n + 1 {
		free <- &leafChunk{}
	}
	// The connections beneath database/sql that the chunks are read on
	// (rawConn), opened as needed, at most n; nil where none is open.
	conns := make(chan *rawConn, n)
	for range n {
		conns <- nil
	}
	var noRaw atomic.Bool // opening one failed: read through database/sql
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		wg.Wait()
		for range n {
			(<-conns).close()
		}
	}()
	ahead := make(chan chan *leafChunk, n)
	wg.Go(func() {
		defer close(ahead)
		// Index values may lie past the last row (targets rows left at
		// seqs of no row): the last chunk reads them to ixTo.
		for lo := from; lo < to || (lo == from && lo < ixTo); lo += chunk {
			var c *leafChunk
			select {
			case c = <-free:
			case <-ctx.Done():
				return
			}
			res := make(chan *leafChunk, 1)
			select {
			case ahead <- res:
			case <-ctx.Done():
				return
			}
			hi, ixHi := max(lo, min(lo+chunk, to)), ixTo
			if hi < to {
				ixHi = hi
			}
			wg.Go(func() {
				rc := <-conns
				if rc == nil && indexed && !noRaw.Load() {
					var err error
					if rc, err = db.openRaw(ctx); err != nil {
						noRaw.Store(true)
						db.o.Logger.Debug("sqlite: verification reads through database/sql", "err", err)
					}
				}
				c.err = db.readChunk(ctx, rc, tid, lo, hi, ixHi, indexed, c)
				conns <- rc
				res <- c
			})
		}
	})
	for res := range ahead {
		c := <-res
		if c.err != nil {
			return c.err
		}
		if err := each(c); err != nil {
			return err
		}
		free <- c
	}
	return ctx.Err()
}

// leafChunk is the rows of one chunk of keys, their bytes back to back in
// buf (a row's body is buf[previous row's end:mid], its hashes
// buf[mid:end]), and when indexed the index values of its seqs; readChunk
// refills it, keeping what its slices grew to.
type leafChunk struct {
	leaves []trail.Leaf
	buf    []byte
	ends   [][2]int // each row's mid and end in buf
	ix     []trail.IndexRow
	err    error
}

// leavesQuery reads rows as ScanLeaves gives them; leavesIndexQuery
// reads them with their index columns, as ScanLeaves and ScanIndex read
// them (rawConn reads the same query beneath database/sql).
const (
	leavesQuery      = "SELECT key, body, hashes FROM events WHERE key >= ? AND key < ? ORDER BY key"
	leavesIndexQuery = "SELECT key, body, hashes, " + indexColumns + " FROM events WHERE key >= ? AND key < ? ORDER BY key"
)

// readChunk reads into c the rows with from <= seq < to and, when
// indexed, their index values and the targets rows of the seqs from from
// to ixTo (past to only in the last chunk), in one read transaction: on
// rc, beneath database/sql, when it is not nil and reads the chunk
// (rawConn.readChunk), else through database/sql.
func (db *DB) readChunk(ctx context.Context, rc *rawConn, tid int64, from, to, ixTo uint64, indexed bool, c *leafChunk) error {
	c.reset()
	if !indexed {
		if err := c.read(ctx, db.r, tid, from, to); err != nil {
			return err
		}
		c.slice()
		return nil
	}
	lo, hi, ixHi := rowKey(tid, from), rowKey(tid, to), rowKey(tid, 0)+int64(ixTo)
	if rc != nil && rc.readChunk(lo, hi, ixHi, c) {
		db.chunkReads.raw.Add(1)
		c.slice()
		return nil
	}
	db.chunkReads.sql.Add(1)
	c.reset()
	return db.readTx(ctx, func(tx *sql.Tx) error {
		if err := c.readIndexed(ctx, tx, lo, hi); err != nil {
			return err
		}
		c.slice()
		targets, err := readTargets(ctx, tx, lo, ixHi)
		c.ix = trail.WithTargets(c.ix, targets)
		return err
	})
}

// reset empties c, keeping what its slices grew to.
func (c *leafChunk) reset() {
	c.leaves, c.buf, c.ends, c.ix = c.leaves[:0], c.buf[:0], c.ends[:0], c.ix[:0]
}

// read reads the rows with from <= seq < to into c.
func (c *leafChunk) read(ctx context.Context, q querier, tid int64, from, to uint64) error {
	var (
		k            int64
		body, hashes sql.RawBytes // valid until Next: copied into buf
	)
	rows, err := q.QueryContext(ctx, leavesQuery, rowKey(tid, from), rowKey(tid, to))
	if err != nil {
		return internal(err, "read leaves")
	}
	defer rows.Close()
	for rows.Next() {
		if err := rows.Scan(&k, &body, &hashes); err != nil {
			return internal(err, "read leaves")
		}
		c.add(k, body, hashes)
	}
	return internal(rows.Err(), "read leaves")
}

// add appends a row to c (its Leaf's slices are set by slice).
func (c *leafChunk) add(key int64, body, hashes []byte) {
	c.buf = append(c.buf, body...)
	mid := len(c.buf)
	c.buf = append(c.buf, hashes...)
	c.ends = append(c.ends, [2]int{mid, len(c.buf)})
	c.leaves = append(c.leaves, trail.Leaf{Seq: keySeq(key)})
}

// slice sets the Leaf slices of c's rows, once buf has stopped growing.
func (c *leafChunk) slice() {
	start := 0
	for i, e := range c.ends {
		l := &c.leaves[i]
		l.Body, l.Hashes = c.buf[start:e[0]:e[0]], c.buf[e[0]:e[1]:e[1]]
		if start == e[0] {
			l.Body = nil // pruned (prune.go)
		}
		start = e[1]
	}
}

// readIndexed reads the rows with keys from lo to hi (exclusive) into c
// with their index columns, as ScanLeaves and ScanIndex read them.
func (c *leafChunk) readIndexed(ctx context.Context, tx *sql.Tx, lo, hi int64) error {
	var (
		k            int64
		body, hashes sql.RawBytes // valid until Next: copied into buf
		ix           indexScan
	)
	rows, err := tx.QueryContext(ctx, leavesIndexQuery, lo, hi)
	if err != nil {
		return internal(err, "read leaves")
	}
	defer rows.Close()
	dest := append([]any{&k, &body, &hashes}, ix.dest()...)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return internal(err, "read leaves")
		}
		c.add(k, body, hashes)
		c.ix = append(c.ix, ix.row(k))
	}
	return internal(rows.Err(), "read leaves")
}

// indexChunk is how many event rows one read of ScanIndex takes.
const indexChunk = 1024

// ScanIndex reads the index columns of the events rows and the targets
// rows in chunks of keys, each chunk in one read transaction (so that its
// two reads see one snapshot) and passed to fn after it ends.
func (db *DB) ScanIndex(ctx context.Context, tenant string, from, to uint64, fn func(trail.IndexRow) error) error {
	tid, err := db.tid(ctx, tenant)
	if err != nil || tid == 0 {
		return err
	}
	if to == 0 || to > maxSeq+1 {
		to = maxSeq + 1
	}
	for lo, hi := rowKey(tid, max(from, 1)), rowKey(tid, 0)+int64(to); lo < hi; {
		var rows []trail.IndexRow
		err := db.readTx(ctx, func(tx *sql.Tx) error {
			var err error
			rows, lo, err = readIndex(ctx, tx, lo, hi)
			return err
		})
		if err != nil {
			return err
		}
		for _, r := range rows {
			if err := fn(r); err != nil {
				return err
			}
		}
	}
	return nil
}

// indexColumns are the columns of an events row that reads select on, as
// indexScan scans them.
const indexColumns = `id, recorded_at, occurred_at, action, category, outcome, actor_id, actor_type,
	organization, workspace, team, correlation_id, pruned IS NOT NULL`

// indexScan is where a row's indexColumns are scanned to. Every
// destination is of a type database/sql assigns without reflection (not
// trail.Outcome, not bool): verification scans every row of the log.
type indexScan struct {
	id            sql.RawBytes // formatted before Next
	rec, occ, pun int64
	r             trail.IndexRow
}

// dest returns the destinations of indexColumns, in their order.
func (s *indexScan) dest() []any {
	ix := &s.r.Index
	return []any{&s.id, &s.rec, &s.occ, &ix.Action, &ix.Category, (*string)(&ix.Outcome), &ix.ActorID, (*string)(&ix.ActorType),
		&ix.Organization, &ix.Workspace, &ix.Team, &ix.CorrelationID, &s.pun}
}

// row returns the index values scanned for the row of key.
func (s *indexScan) row(key int64) trail.IndexRow {
	r := s.r
	r.Seq, r.Index.ID, r.Pruned = keySeq(key), formatID(s.id), s.pun != 0
	r.Index.RecordedAt, r.Index.OccurredAt = time.Unix(0, s.rec).UTC(), time.Unix(0, s.occ).UTC()
	return r
}

// readIndex reads the index values of up to indexChunk events rows from key
// lo on (below hi), and the targets rows of the keys they span, and returns
// them by seq with the key the next chunk starts at.
func readIndex(ctx context.Context, tx *sql.Tx, lo, hi int64) ([]trail.IndexRow, int64, error) {
	rows, err := tx.QueryContext(ctx, "SELECT key, "+indexColumns+" FROM events WHERE key >= ? AND key < ? ORDER BY key LIMIT ?", lo, hi, indexChunk)
	if err != nil {
		return nil, 0, internal(err, "read index")
	}
	out := make([]trail.IndexRow, 0, indexChunk)
	var key int64
	var ix indexScan
	dest := append([]any{&key}, ix.dest()...)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			rows.Close()
			return nil, 0, internal(err, "read index")
		}
		out = append(out, ix.row(key))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, 0, internal(err, "read index")
	}
	end := hi
	if len(out) == indexChunk {
		end = rowKey(lo>>seqBits, out[len(out)-1].Seq) + 1
	}
	targets, err := readTargets(ctx, tx, lo, end)
	return trail.WithTargets(out, targets), end, err
}

// targetsQuery reads the targets rows of the keys from one to another
// (exclusive) in key order.
const targetsQuery = "SELECT key, type, id FROM targets WHERE key >= ? AND key < ? ORDER BY key"

// readTargets reads the targets rows of the keys from lo to hi (exclusive)
// in key order.
func readTargets(ctx context.Context, tx *sql.Tx, lo, hi int64) ([]trail.SeqTarget, error) {
	rows, err := tx.QueryContext(ctx, targetsQuery, lo, hi)
	if err != nil {
		return nil, internal(err, "read index")
	}
	defer rows.Close()
	var targets []trail.SeqTarget
	for rows.Next() {
		var key int64
		var t trail.SeqTarget
		if err := rows.Scan(&key, &t.Target.Type, &t.Target.ID); err != nil {
			return nil, internal(err, "read index")
		}
		t.Seq = keySeq(key)
		targets = append(targets, t)
	}
	return targets, internal(rows.Err(), "read index")
}

// formatID is the text of a stored id (hex when it is not 16 bytes, as no
// id the store writes is).
func formatID(id []byte) string {
	if len(id) == 16 {
		return trail.FormatID([16]byte(id))
	}
	return hex.EncodeToString(id)
}

// SizeRecords returns the size tenant's row in tenants records and the
// last seq its idempotency keys name.
func (db *DB) SizeRecords(ctx context.Context, tenant string) ([]trail.SizeRecord, error) {
	var size, keys int64
	err := db.r.QueryRowContext(ctx, `SELECT t.size, (SELECT coalesce(max(first_seq + n - 1), 0) FROM idempotency WHERE tid = t.tid)
		FROM tenants t WHERE t.name = ?`, tenant).Scan(&size, &keys)
	if err == sql.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, internal(err, "read size records")
	}
	return trail.HeadSizes("the tenants row", uint64(size), uint64(keys)), nil
}

var _ trail.TenantLister = (*DB)(nil)

// Tenants returns the name of every log that holds an event (one with a
// checkpoint), in byte order.
func (db *DB) Tenants(ctx context.Context) ([]string, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT name FROM tenants t WHERE EXISTS (SELECT 1 FROM checkpoints c WHERE c.tid = t.tid)
		ORDER BY name`)
	if err != nil {
		return nil, internal(err, "list tenants")
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, internal(err, "list tenants")
		}
		out = append(out, name)
	}
	return out, internal(rows.Err(), "list tenants")
}

// rawConn is a read-only connection to the database beneath database/sql,
// through modernc's SQLite library itself, that verification reads its
// chunks of rows on (scanChunks). Verification reads every row: through
// database/sql each value costs the driver three calls into SQLite, each
// taking the connection's mutex, and a Go copy of its own, and a row of
// sixteen values, a chunk's targets rows three each, was most of a verify's
// CPU. A rawConn is opened without that mutex (SQLITE_OPEN_NOMUTEX: it is
// used by one goroutine at a time) and reads each value in place, copied
// once, into the chunk. It reads a chunk exactly as ScanLeaves and
// ScanIndex would give it, or not at all: a value of a type the store never
// writes there (the kinds of rawConn.value), or any failure, and the chunk is read again
// through database/sql, which gives that value or the error.
type rawConn struct {
	tls                  *libc.TLS
	db                   uintptr   // *sqlite3
	rows, targets        uintptr   // *sqlite3_stmt: leavesIndexQuery, targetsQuery
	begin, commit, abort uintptr   // C strings of the statements around a chunk
	spans                []rawSpan // reused from chunk to chunk
	keys                 []int64   // of the targets rows, reused
	textCap              int       // the text of a chunk takes about this much
}

// chunkReads counts the chunks of verification read on a rawConn and
// those read through database/sql, for the tests that each path is taken.
type chunkReads struct{ raw, sql atomic.Int64 }

// rawSpan is where a text value of a chunk lies in its text.
type rawSpan struct{ off, n int }

// openRaw opens a rawConn on db's file, as its read connections open it.
func (db *DB) openRaw(ctx context.Context) (rc *rawConn, err error) {
	var params url.Values
	if db.o.ReadOnly {
		if params, err = readOnly(ctx, db.path); err != nil {
			return nil, err
		}
	}
	rc = &rawConn{tls: libc.NewTLS()}
	defer func() {
		if err != nil {
			rc.close()
			rc = nil
		}
	}()
	for _, s := range []struct {
		p   *uintptr
		sql string
	}{{&rc.begin, "BEGIN"}, {&rc.commit, "COMMIT"}, {&rc.abort, "ROLLBACK"}} {
		if *s.p, err = libc.CString(s.sql); err != nil {
			return nil, err
		}
	}
	name, err := libc.CString(dsn(db.path, params, nil))
	if err != nil {
		return nil, err
	}
	defer libc.Xfree(rc.tls, name)
	out := libc.Xmalloc(rc.tls, 8)
	if out == 0 {
		return nil, errors.New("sqlite: out of memory")
	}
	defer libc.Xfree(rc.tls, out)
	rv := sqlite3.Xsqlite3_open_v2(rc.tls, name, out, sqlite3.SQLITE_OPEN_READONLY|sqlite3.SQLITE_OPEN_NOMUTEX|sqlite3.SQLITE_OPEN_URI, 0)
	rc.db = *(*uintptr)(cmem(out))
	if err := rc.check(rv, "open"); err != nil {
		return nil, err
	}
	if err := rc.check(sqlite3.Xsqlite3_busy_timeout(rc.tls, rc.db, 10_000), "busy_timeout"); err != nil {
		return nil, err
	}
	if err := rc.exec("PRAGMA " + cacheSize(db.o.ReaderCache)); err != nil { // a reader's page cache
		return nil, err
	}
	for _, s := range []struct {
		p   *uintptr
		sql string
	}{{&rc.rows, leavesIndexQuery}, {&rc.targets, targetsQuery}} {
		q, err := libc.CString(s.sql)
		if err != nil {
			return nil, err
		}
		rv := sqlite3.Xsqlite3_prepare_v2(rc.tls, rc.db, q, -1, out, 0)
		libc.Xfree(rc.tls, q)
		*s.p = *(*uintptr)(cmem(out))
		if err := rc.check(rv, "prepare"); err != nil {
			return nil, err
		}
	}
	return rc, nil
}

// check returns nil when rv is SQLITE_OK, else the connection's error.
func (rc *rawConn) check(rv int32, what string) error {
	if rv == sqlite3.SQLITE_OK {
		return nil
	}
	msg := "out of memory"
	if rc.db != 0 {
		msg = libc.GoString(sqlite3.Xsqlite3_errmsg(rc.tls, rc.db))
	}
	return fmt.Errorf("sqlite: %s: %s (%d)", what, msg, rv)
}

// exec runs statements with no result rows.
func (rc *rawConn) exec(stmts string) error {
	q, err := libc.CString(stmts)
	if err != nil {
		return err
	}
	defer libc.Xfree(rc.tls, q)
	return rc.check(sqlite3.Xsqlite3_exec(rc.tls, rc.db, q, 0, 0, 0), "exec")
}

// close closes rc (a nil one too).
func (rc *rawConn) close() {
	if rc == nil {
		return
	}
	for _, p := range []uintptr{rc.rows, rc.targets} {
		if p != 0 {
			sqlite3.Xsqlite3_finalize(rc.tls, p)
		}
	}
	if rc.db != 0 {
		sqlite3.Xsqlite3_close_v2(rc.tls, rc.db)
	}
	for _, p := range []uintptr{rc.begin, rc.commit, rc.abort} {
		if p != 0 {
			libc.Xfree(rc.tls, p)
		}
	}
	rc.tls.Close()
}

// readChunk reads into c (empty) the events rows with keys from lo to hi
// (exclusive) with their index columns, and the targets rows of the keys
// from lo to ixHi, in one read transaction, and reports whether it read
// them all; when not, c holds a part of them.
func (rc *rawConn) readChunk(lo, hi, ixHi int64, c *leafChunk) bool {
	if sqlite3.Xsqlite3_exec(rc.tls, rc.db, rc.begin, 0, 0, 0) != sqlite3.SQLITE_OK {
		return false
	}
	ok := rc.readRows(lo, hi, ixHi, c)
	end := rc.commit
	if !ok {
		end = rc.abort
	}
	return sqlite3.Xsqlite3_exec(rc.tls, rc.db, end, 0, 0, 0) == sqlite3.SQLITE_OK && ok
}

// rawKinds are the types rawValue reads, as bits: a value of any other
// type is read through database/sql.
const (
	rawInt   = 1 << sqlite3.SQLITE_INTEGER
	rawBytes = 1<<sqlite3.SQLITE_BLOB | 1<<sqlite3.SQLITE_TEXT // as database/sql gives both to a string or RawBytes
	rawNull  = 1 << sqlite3.SQLITE_NULL                        // nil RawBytes
)

// readRows reads the chunk of readChunk in its transaction. The index
// strings of the chunk are slices of one string of theirs, made once the
// chunk is read, on bytes no later chunk reuses (the verifier keeps them),
// and the targets of its rows share one array.
func (rc *rawConn) readRows(lo, hi, ixHi int64, c *leafChunk) bool {
	text := make([]byte, 0, rc.textCap)
	spans := rc.spans[:0]
	str := func(st uintptr, i int32) bool {
		b, ok := rc.value(st, i, rawBytes)
		spans = append(spans, rawSpan{len(text), len(b)})
		text = append(text, b...)
		return ok
	}
	defer func() { rc.spans = spans[:0] }()
	ok := rc.each(rc.rows, lo, hi, func(st uintptr) bool {
		key, ok1 := rc.int(st, 0)
		body, ok2 := rc.value(st, 1, rawBytes|rawNull)
		hashes, ok3 := rc.value(st, 2, rawBytes|rawNull)
		id, ok4 := rc.value(st, 3, rawBytes)
		rec, ok5 := rc.int(st, 4)
		occ, ok6 := rc.int(st, 5)
		pruned, ok7 := rc.int(st, 15)
		if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) {
			return false
		}
		for i := int32(6); i < 15; i++ {
			if !str(st, i) {
				return false
			}
		}
		c.add(key, body, hashes)
		c.ix = append(c.ix, trail.IndexRow{Seq: keySeq(key), Pruned: pruned != 0, Index: trail.Index{
			ID: formatID(id), RecordedAt: time.Unix(0, rec).UTC(), OccurredAt: time.Unix(0, occ).UTC()}})
		return true
	})
	rows := len(spans)
	keys := rc.keys[:0]
	defer func() { rc.keys = keys[:0] }()
	ok = ok && rc.each(rc.targets, lo, ixHi, func(st uintptr) bool {
		key, ok := rc.int(st, 0)
		keys = append(keys, key)
		return ok && str(st, 1) && str(st, 2)
	})
	if !ok {
		return false
	}
	rc.textCap = max(rc.textCap, len(text)+len(text)/8)
	s := unsafe.String(unsafe.SliceData(text), len(text)) // text is not written again
	get := func(i int) string { return s[spans[i].off : spans[i].off+spans[i].n] }
	for i := range c.ix {
		ix, j := &c.ix[i].Index, i*9
		ix.Action, ix.Category, ix.Outcome, ix.ActorID = get(j), get(j+1), trail.Outcome(get(j+2)), get(j+3)
		ix.ActorType, ix.Organization, ix.Workspace = trail.ActorType(get(j+4)), get(j+5), get(j+6)
		ix.Team, ix.CorrelationID = get(j+7), get(j+8)
	}
	targets := make([]trail.SeqTarget, len(keys))
	for i, k := range keys {
		targets[i] = trail.SeqTarget{Seq: keySeq(k), Target: trail.Target{Type: get(rows + 2*i), ID: get(rows + 2*i + 1)}}
	}
	shareTargets(c.ix, targets)
	c.ix = trail.WithTargets(c.ix, targets)
	return true
}

// shareTargets gives each row of rows (by seq) that targets (by seq) has
// rows for an empty slice of one array with room for them, so that
// trail.WithTargets adds them without an allocation a row.
func shareTargets(rows []trail.IndexRow, targets []trail.SeqTarget) {
	all := make([]trail.Target, len(targets))
	for i, j := 0, 0; i < len(rows) && j < len(targets); {
		switch seq := rows[i].Seq; {
		case targets[j].Seq < seq:
			j++
		case targets[j].Seq > seq:
			i++
		default:
			n := 0
			for j+n < len(targets) && targets[j+n].Seq == seq {
				n++
			}
			rows[i].Index.Targets = all[j : j : j+n]
			i, j = i+1, j+n
		}
	}
}

// each binds the key range lo to hi to the statement st and calls row on
// each row it steps to, then resets st; it reports whether every step and
// every row succeeded, stopping at the first that did not.
func (rc *rawConn) each(st uintptr, lo, hi int64, row func(st uintptr) bool) bool {
	if !rc.bind(st, lo, hi) {
		return false
	}
	defer sqlite3.Xsqlite3_reset(rc.tls, st)
	for {
		switch sqlite3.Xsqlite3_step(rc.tls, st) {
		case sqlite3.SQLITE_DONE:
			return true
		case sqlite3.SQLITE_ROW:
			if !row(st) {
				return false
			}
		default:
			return false
		}
	}
}

// bind binds the two keys of a statement's range.
func (rc *rawConn) bind(st uintptr, lo, hi int64) bool {
	return sqlite3.Xsqlite3_bind_int64(rc.tls, st, 1, lo) == sqlite3.SQLITE_OK &&
		sqlite3.Xsqlite3_bind_int64(rc.tls, st, 2, hi) == sqlite3.SQLITE_OK
}

// int returns column i of the row st is on, when it is an integer.
func (rc *rawConn) int(st uintptr, i int32) (int64, bool) {
	v := sqlite3.Xsqlite3_column_value(rc.tls, st, i)
	if sqlite3.Xsqlite3_value_type(rc.tls, v) != sqlite3.SQLITE_INTEGER {
		return 0, false
	}
	return sqlite3.Xsqlite3_value_int64(rc.tls, v), true
}

// value returns the bytes of column i of the row st is on (valid until the
// statement moves), when its type is one of kinds. The column's value is
// looked up once (sqlite3_column_value) and read with the sqlite3_value_*
// calls, not three sqlite3_column_* calls that each look it up again:
// SQLite calls such a value
// unprotected, safe to read only where no other thread uses the
// connection, as none uses a rawConn.
func (rc *rawConn) value(st uintptr, i int32, kinds int) ([]byte, bool) {
	v := sqlite3.Xsqlite3_column_value(rc.tls, st, i)
	t := sqlite3.Xsqlite3_value_type(rc.tls, v)
	if kinds&(1<<t) == 0 {
		return nil, false
	}
	if t == sqlite3.SQLITE_NULL {
		return nil, true
	}
	p := sqlite3.Xsqlite3_value_blob(rc.tls, v)
	n := sqlite3.Xsqlite3_value_bytes(rc.tls, v)
	if p == 0 || n <= 0 {
		return nil, true
	}
	return unsafe.Slice((*byte)(cmem(p)), n), true
}

// cmem is the address p of SQLite's memory (libc's allocator, outside Go's
// heap: the collector neither moves nor frees it) as a pointer.
func cmem(p uintptr) unsafe.Pointer { return unsafe.Add(unsafe.Pointer(nil), p) }
