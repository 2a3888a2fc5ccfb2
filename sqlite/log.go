package sqlite

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/tlog"
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
// connections, while each works through the chunks before them. A chunk's
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
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	const chunk = 2048
	n := db.scanAhead
	if n == 0 {
		n = db.o.Readers // reading waits on the disk too: more than one per core pays
	}
	free := make(chan *leafChunk, n+1) // chunks each is done with
	for range n + 1 {
		free <- &leafChunk{}
	}
	ahead := make(chan chan *leafChunk, n)
	go func() {
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
			go func() {
				c.err = db.readChunk(ctx, tid, lo, hi, ixHi, indexed, c)
				res <- c
			}()
		}
	}()
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

// leavesQuery reads rows as ScanLeaves gives them; leavesIndexQuery reads
// them with their index columns, one packed value a row (packedRow), and
// leavesIndexExact one row as ScanLeaves and ScanIndex read it.
const (
	leavesQuery       = "SELECT key, body, hashes FROM events WHERE key >= ? AND key < ? ORDER BY key"
	leavesIndexQuery  = "SELECT " + packedRow + " FROM events WHERE key >= ? AND key < ? ORDER BY key"
	leavesIndexExact  = "SELECT key, body, hashes, " + indexColumns + " FROM events WHERE key = ?"
	packedRowSepCount = 15 // NUL bytes between packedRow's 16 values
)

// packedRow is an events row as one text: its key, id in hex, the other
// index columns as SQLite writes them as text, the hashes in hex and the
// body, each value after a NUL byte; a NULL is a NUL byte of its own.
// Verification reads every row, and each value the driver returns costs
// it three calls into SQLite (each taking the connection's mutex) and an
// allocation: one value a row instead of sixteen was a third of a
// verify's CPU. unpackRow reads it back, exactly or not at all: a NULL, or
// a NUL byte inside a value, adds a NUL byte to the separators and never
// takes one away (concat_ws leaves a NULL out, hence the ifnull), so a row
// with exactly packedRowSepCount of them splits back into exactly its
// values.
const packedRow = `concat_ws(char(0), key, hex(id), ifnull(recorded_at, char(0)), ifnull(occurred_at, char(0)),
	ifnull(action, char(0)), ifnull(category, char(0)), ifnull(outcome, char(0)), ifnull(actor_id, char(0)),
	ifnull(actor_type, char(0)), ifnull(organization, char(0)), ifnull(workspace, char(0)), ifnull(team, char(0)),
	ifnull(correlation_id, char(0)), pruned IS NOT NULL, hex(hashes), ifnull(body, char(0)))`

// readChunk reads into c the rows with from <= seq < to and, when
// indexed, their index values and the targets rows of the seqs from from
// to ixTo (past to only in the last chunk), in one read transaction.
func (db *DB) readChunk(ctx context.Context, tid int64, from, to, ixTo uint64, indexed bool, c *leafChunk) error {
	c.leaves, c.buf, c.ends, c.ix = c.leaves[:0], c.buf[:0], c.ends[:0], c.ix[:0]
	if !indexed {
		if err := c.read(ctx, db.r, tid, from, to); err != nil {
			return err
		}
		c.slice()
		return nil
	}
	return db.readTx(ctx, func(tx *sql.Tx) error {
		if err := c.readPacked(ctx, tx, tid, from, to); err != nil {
			return err
		}
		c.slice()
		targets, err := readTargetsPacked(ctx, tx, rowKey(tid, from), rowKey(tid, 0)+int64(ixTo))
		c.ix = trail.WithTargets(c.ix, targets)
		return err
	})
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

// readPacked reads the rows with from <= seq < to into c, with their index
// columns, packed (packedRow); a row that does not unpack exactly is read
// again, as ScanLeaves and ScanIndex read it (a value or the error they
// give), in the same transaction.
func (c *leafChunk) readPacked(ctx context.Context, tx *sql.Tx, tid int64, from, to uint64) error {
	var packed sql.RawBytes // valid until Next: unpacked
	rows, err := tx.QueryContext(ctx, leavesIndexQuery, rowKey(tid, from), rowKey(tid, to))
	if err != nil {
		return internal(err, "read leaves")
	}
	defer rows.Close()
	for rows.Next() {
		if err := rows.Scan(&packed); err != nil {
			return internal(err, "read leaves")
		}
		key, ok := c.unpackRow(packed)
		if key < 0 {
			return internal(fmt.Errorf("a packed row's key does not read: %.40q", packed), "read leaves")
		}
		if !ok {
			if err := c.readExact(ctx, tx, key); err != nil {
				return err
			}
		}
	}
	return internal(rows.Err(), "read leaves")
}

// readExact appends the row of key to c as ScanLeaves and ScanIndex read
// it.
func (c *leafChunk) readExact(ctx context.Context, tx *sql.Tx, key int64) error {
	var (
		k            int64
		body, hashes sql.RawBytes
		ix           indexScan
	)
	rows, err := tx.QueryContext(ctx, leavesIndexExact, key)
	if err != nil {
		return internal(err, "read leaves")
	}
	defer rows.Close()
	if !rows.Next() {
		return internal(cmp.Or(rows.Err(), fmt.Errorf("the row of key %d is gone within its read transaction", key)), "read leaves")
	}
	if err := rows.Scan(append([]any{&k, &body, &hashes}, ix.dest()...)...); err != nil {
		return internal(err, "read leaves")
	}
	c.add(k, body, hashes)
	c.ix = append(c.ix, ix.row(k))
	return nil
}

// unpackRow appends the row packed (packedRow) to c and returns its key,
// or returns its key and false, appending nothing, when packed may not be
// exactly its values (packedRow): not exactly packedRowSepCount NUL
// bytes, or a time that is not the integer indexScan reads. The key is -1
// when even it does not read.
func (c *leafChunk) unpackRow(packed []byte) (int64, bool) {
	k, _, _ := bytes.Cut(packed, []byte{0})
	key, err := strconv.ParseInt(string(k), 10, 64)
	if err != nil {
		return -1, false
	}
	if bytes.Count(packed, []byte{0}) != packedRowSepCount {
		return key, false
	}
	var at [packedRowSepCount + 1]int // where each value starts; value i is packed[at[i]:at[i+1]-1]
	for i, j := 1, 0; i < len(at); i++ {
		j += bytes.IndexByte(packed[j:], 0) + 1
		at[i] = j
	}
	val := func(i int) []byte { return packed[at[i] : at[i+1]-1] }
	rec, err1 := strconv.ParseInt(string(val(2)), 10, 64)
	occ, err2 := strconv.ParseInt(string(val(3)), 10, 64)
	id, ok := unhexID(val(1))
	pruned := string(val(13))
	hashes := val(14)
	if err1 != nil || err2 != nil || !ok || (pruned != "0" && pruned != "1") || len(hashes)%2 != 0 {
		return key, false
	}
	// The index values are slices of one string of theirs.
	s := string(packed[at[4]:at[13]])
	f := func(i int) string { return s[at[i]-at[4] : at[i+1]-1-at[4]] }
	r := trail.IndexRow{Seq: keySeq(key), Pruned: pruned == "1"}
	ix := &r.Index
	ix.ID = id
	ix.RecordedAt, ix.OccurredAt = time.Unix(0, rec).UTC(), time.Unix(0, occ).UTC()
	ix.Action, ix.Category, ix.Outcome, ix.ActorID, ix.ActorType = f(4), f(5), trail.Outcome(f(6)), f(7), trail.ActorType(f(8))
	ix.Organization, ix.Workspace, ix.Team, ix.CorrelationID = f(9), f(10), f(11), f(12)
	start := len(c.buf)
	c.buf = append(c.buf, packed[at[15]:]...)
	mid := len(c.buf)
	c.buf = append(c.buf, make([]byte, len(hashes)/2)...)
	if _, err := hex.Decode(c.buf[mid:], hashes); err != nil {
		c.buf = c.buf[:start]
		return key, false
	}
	c.ends = append(c.ends, [2]int{mid, len(c.buf)})
	c.leaves = append(c.leaves, trail.Leaf{Seq: keySeq(key)})
	c.ix = append(c.ix, r)
	return key, true
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

// readTargets reads the targets rows of the keys from lo to hi (exclusive)
// in key order.
func readTargets(ctx context.Context, tx *sql.Tx, lo, hi int64) ([]trail.SeqTarget, error) {
	rows, err := tx.QueryContext(ctx, "SELECT key, type, id FROM targets WHERE key >= ? AND key < ? ORDER BY key", lo, hi)
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

// readTargetsPacked is readTargets in one row: the count of the rows and
// their values joined, each row its key, type and id after NUL bytes (a
// NULL a NUL byte of its own), rows after a 0x01 byte. Each value the
// driver returns costs three calls into SQLite; a chunk of keys has
// thousands of targets rows. A NULL, or a separator inside a value, only
// adds separators: when there are more than n rows have, it reads the
// rows as readTargets does.
func readTargetsPacked(ctx context.Context, tx *sql.Tx, lo, hi int64) ([]trail.SeqTarget, error) {
	var n int64
	var packed sql.RawBytes
	rows, err := tx.QueryContext(ctx, `SELECT count(*), group_concat(v, char(1)) FROM
		(SELECT concat(ifnull(key, char(0)), char(0), ifnull(type, char(0)), char(0), ifnull(id, char(0))) AS v
			FROM targets WHERE key >= ? AND key < ? ORDER BY key)`, lo, hi)
	if err != nil {
		return nil, internal(err, "read index")
	}
	defer rows.Close()
	if rows.Next() {
		err = rows.Scan(&n, &packed)
	}
	if err == nil {
		err = rows.Err()
	}
	if err != nil {
		return nil, internal(err, "read index")
	}
	if targets, ok := unpackTargets(n, packed); ok {
		return targets, nil
	}
	rows.Close()
	return readTargets(ctx, tx, lo, hi)
}

// unpackTargets splits the n targets rows readTargetsPacked packed, or
// reports false when they may not split back exactly.
func unpackTargets(n int64, packed []byte) ([]trail.SeqTarget, bool) {
	if n == 0 {
		return nil, len(packed) == 0
	}
	if int64(bytes.Count(packed, []byte{1})) != n-1 || int64(bytes.Count(packed, []byte{0})) != 2*n {
		return nil, false
	}
	targets := make([]trail.SeqTarget, 0, n)
	s := string(packed) // one allocation: the values are slices of it
	for rec := range strings.SplitSeq(s, "\x01") {
		k, rest, _ := strings.Cut(rec, "\x00")
		typ, id, _ := strings.Cut(rest, "\x00")
		key, err := strconv.ParseInt(k, 10, 64)
		if err != nil {
			return nil, false
		}
		targets = append(targets, trail.SeqTarget{Seq: keySeq(key), Target: trail.Target{Type: typ, ID: id}})
	}
	// In key order, as readTargets gives them (the subquery's order, kept
	// by group_concat in SQLite, but not promised by it).
	if bySeq := func(a, b trail.SeqTarget) int { return cmp.Compare(a.Seq, b.Seq) }; !slices.IsSortedFunc(targets, bySeq) {
		slices.SortStableFunc(targets, bySeq)
	}
	return targets, true
}

// unhexID is formatID of the bytes whose hex is h.
func unhexID(h []byte) (string, bool) {
	var id [16]byte
	if len(h) == 2*len(id) {
		_, err := hex.Decode(id[:], h)
		return trail.FormatID(id), err == nil
	}
	b := make([]byte, len(h)/2)
	_, err := hex.Decode(b, h)
	return formatID(b), err == nil && len(h)%2 == 0
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
