package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/tlog"
)

// Backend is a store's side of an append: its lock and its transaction. A
// store implements it and hands it to New; only the pipeline calls it.
type Backend interface {
	// Begin waits for the store's lock on b.Tenant (ctx bounds the wait)
	// and opens the transaction b is written in. Until the Tx ends, no
	// other append to the tenant, in this process or any other, may move
	// its head.
	Begin(ctx context.Context, b *Batch) (Tx, error)
}

// Tx is one batch's part of a store transaction, holding the store's lock
// on its tenant. The pipeline calls its methods in this order, each at most
// once: Head; Earlier, when the batch has an idempotency key; PruneRows,
// when it is a prune; Write; Prune, when it is a prune; and last Commit. A
// replay (Earlier found the key) goes from Earlier to Commit with a nil
// Checkpoint. After an error from any step, the pipeline calls Rollback
// instead of the rest, and after Commit nothing.
//
// A Tx MUST NOT report a batch's own faults: the pipeline has checked the
// batch before it writes, so every error a Tx returns is the store's.
type Tx interface {
	// Head returns the tenant's head as the store holds it.
	Head(ctx context.Context) (Stored, error)
	// Earlier returns the fingerprint and the stored events of the batch
	// first appended with the batch's key, or a nil fingerprint when the
	// key is new.
	Earlier(ctx context.Context) (fingerprint []byte, events []*trail.Event, err error)
	// PruneRows returns the tenant's rows at seqs (sorted), in seq order,
	// without the seqs it does not hold.
	PruneRows(ctx context.Context, seqs []uint64) ([]PruneRow, error)
	// Write stores rows (the events and their targets rows), reading them
	// all (Rows.Next or Rows.All), records the batch's key with the seqs of
	// rows, and moves the tenant's head to rows.Head(). When reading rows
	// fails (an event that does not encode) it stops and returns that
	// error, leaving its transaction to be rolled back; see Rows for when
	// it may write before it has read them all. The store MUST NOT change
	// the rows, the head or its tree.
	Write(ctx context.Context, rows *Rows) error
	// Prune clears the payloads of the events at seqs (their bodies and
	// the copies of their fields in columns, keeping their tree hashes),
	// marks them pruned by the record at seq by, and deletes targets, their
	// targets rows.
	Prune(ctx context.Context, seqs []uint64, by uint64, targets []PrunedTarget) error
	// Commit stores cp (nil: nothing to sign, no tree or a replay), ends
	// the transaction, and returns once what the batch wrote, and what it
	// read, is durable. A store that commits many batches in one
	// transaction may store only the newest Checkpoint of each tenant.
	// Once it returns, the rows' events are the caller's answer, which
	// the caller may change (erasure opens sealed fields in it): a store
	// that keeps events after Commit keeps copies.
	Commit(ctx context.Context, cp *Checkpoint) error
	// Rollback ends the batch's part of the transaction, undoing what it
	// wrote; it releases the lock.
	Rollback()
}

// Stored is a tenant's head as a store holds it under its lock.
type Stored struct {
	// Kept is the head the store's last Write for the tenant gave it, when
	// it still holds that head (memory always; SQLite within one group
	// commit). The rest is then unused.
	Kept *Head
	// Seq is the tenant's last seq and RecordedAt that event's time (zero
	// for a new tenant); Edge the hashes of tlog.PeakNodes(Seq),
	// concatenated left to right (tlog.Tree.Edge).
	Seq        uint64
	RecordedAt time.Time
	Edge       []byte
	// LastRow is the highest seq the tenant's rows hold, and Latest its
	// newest checkpoint (nil when none): what the head is checked against.
	LastRow uint64
	Latest  []byte
}

// PruneRow is a stored row a prune clears, as the pipeline checks it.
type PruneRow struct {
	Seq    uint64
	Pruned bool   // pruned already
	Action string // its action column
	Body   []byte // its stored bytes
}

// PrunedTarget is a targets row of a pruned event.
type PrunedTarget struct {
	Seq      uint64
	Type, ID string
}

// commit writes a prepared batch through the backend. The answer (the
// events stored) is made after the commit, not while the batch holds
// the store's lock: with one writer, what a batch does under the lock is
// paid by every batch queued behind it.
func (l *Log) commit(ctx context.Context, b *Batch) (*trail.AppendResult, error) {
	tx, err := l.be.Begin(ctx, b)
	if err != nil {
		return nil, err
	}
	rows, replay, cp, err := l.apply(ctx, tx, b)
	if err != nil {
		tx.Rollback()
		return nil, err
	}
	if err := tx.Commit(ctx, cp); err != nil {
		return nil, err
	}
	if replay != nil {
		return replay, nil
	}
	return result(rows), nil
}

// apply runs b's steps in tx: everything a batch can fail on by itself is
// checked before Write, but for an event that does not encode, which ends
// the Rows Write reads. It returns the rows written and the checkpoint to
// commit with, or the answer of a replay.
func (l *Log) apply(ctx context.Context, tx Tx, b *Batch) (rows []Row, replay *trail.AppendResult, cp *Checkpoint, err error) {
	st, err := tx.Head(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	h, err := l.head(b.Tenant, st)
	if err != nil {
		return nil, nil, nil, err
	}
	if b.Key != "" {
		fp, evs, err := tx.Earlier(ctx)
		if err != nil {
			return nil, nil, nil, err
		}
		if fp != nil {
			if !bytes.Equal(fp, b.Fingerprint[:]) {
				return nil, nil, nil, trail.Errorf(trail.ECONFLICT, "idempotency key was used before with a different batch")
			}
			return nil, &trail.AppendResult{Events: evs, Replay: true}, nil, nil
		}
	}
	r, err := h.sequence(b, l.c.MaxSeq)
	if err != nil {
		return nil, nil, nil, err
	}
	defer r.halt() // once Write is done, nothing encodes: a failure stops the workers
	var targets []PrunedTarget
	if b.Prune != nil {
		if targets, err = checkPrune(ctx, tx, b, r.next.Seq); err != nil {
			return nil, nil, nil, err
		}
	}
	err = tx.Write(ctx, r)
	switch {
	case r.err != nil && !errors.Is(r.err, errStopped):
		return nil, nil, nil, r.err // the batch's fault, whatever the store made of it
	case err != nil:
		return nil, nil, nil, err
	case r.Head() == nil:
		return nil, nil, nil, trail.Errorf(trail.EINTERNAL, "%s: Write returned before reading all %d rows", l.c.Store, r.Len())
	}
	if b.Prune != nil {
		if err := tx.Prune(ctx, b.Prune, r.next.Seq, targets); err != nil {
			return nil, nil, nil, err
		}
	}
	return r.rows, nil, l.checkpoint(r.next), nil
}

// Head is a tenant's position in its log: its last seq, that event's
// RecordedAt, its tree (nil without trees) and the origin its checkpoints
// have ("" before the first: the signer's tlog.Origin). A Head never
// changes once made; sequencing a batch makes the next one.
type Head struct {
	Tenant     string
	Seq        uint64
	RecordedAt time.Time
	Tree       *tlog.Tree
	Origin     string
}

// head returns the head st describes. A head loaded from storage is
// refused unless it matches the latest checkpoint (tlog.CheckHead): a row
// deleted or forged behind the store's back would otherwise be built into
// the tree and covered by the next checkpoint signed.
func (l *Log) head(tenant string, st Stored) (*Head, error) {
	if st.Kept != nil {
		return st.Kept, nil
	}
	h := &Head{Tenant: tenant, Seq: st.Seq, RecordedAt: st.RecordedAt}
	if l.c.NoTree {
		return h, nil
	}
	var peaks [][]byte
	for rest := st.Edge; len(rest) >= trail.HashSize; rest = rest[trail.HashSize:] {
		peaks = append(peaks, rest[:trail.HashSize])
	}
	tree, err := tlog.NewTree(st.Seq, peaks)
	if err == nil && len(st.Edge) != len(peaks)*trail.HashSize {
		err = fmt.Errorf("%d bytes are not whole hashes", len(st.Edge))
	}
	if err != nil {
		return nil, trail.Errorf(trail.EINTERNAL, "%s: tenant %s: the tree's right edge is damaged (run trail verify): %v", l.c.Store, tenant, err)
	}
	// A log keeps its origin ("" for a new one): witnesses know it by it.
	if h.Origin, err = tlog.CheckHead(tenant, st.LastRow, tree, st.Latest); err != nil {
		return nil, err
	}
	h.Tree = tree
	return h, nil
}

// Row is one event as a store writes it: every value of its row and its
// target rows, derived from the event in one place.
type Row struct {
	Event  *trail.Event // final: Seq and RecordedAt set
	ID     [16]byte     // Event.ID as bytes
	Body   []byte       // the canonical bytes: what the leaf hashes
	Hashes []byte       // the leaf hash, then each tree node it completed (empty without trees)
	Index  trail.Index  // the columns queries use, and the target rows
}

// Rows are a batch's rows as the pipeline sequences them, for the store's
// Write to read in seq order, a chunk at a time (Next) or all at once
// (All). Each event's own work (its canonical bytes, index columns and
// leaf hash) runs ahead of the reader on the other cores, chunk by chunk,
// and the leaves go into the tree in order as their chunk is read: a store
// that sends rows as it reads them (PostgreSQL's COPY) has the database
// insert the first chunks while the Go side still encodes the last, where
// encoding the whole batch first left the server idle meanwhile.
//
// An event that does not encode ends the rows with its error (Next, All);
// the store stops and returns it, and the pipeline rolls the batch back
// and reports it as the batch's fault. So a store whose transaction holds
// other batches too (SQLite's group) must read All before it writes
// anything; one whose transaction is the batch's own may write as it
// reads.
type Rows struct {
	rows   []Row
	chunks []rowChunk
	read   int    // chunks Next has returned
	leaves []byte // the leaf hashes, trail.HashSize bytes each (nil without trees)
	next   *Head  // the head after the rows: its Tree takes each chunk's leaves as it is read
	err    error  // the first chunk's error, in order: the rows end there

	claim atomic.Int64 // the next chunk nobody has taken
	stop  atomic.Bool  // the reader gave up: take no more chunks
	wg    sync.WaitGroup
}

// rowChunk is rows[lo:hi], encoded once done is closed (err set before).
type rowChunk struct {
	lo, hi int
	done   chan struct{}
	err    error
}

// rowChunkSize is how many events make a chunk of Rows: about 64 KB of
// COPY data, what pgx's COPY reads at a time, and 100–200 µs of encoding,
// so the first rows reach the store that soon and taking a chunk costs
// nothing beside its work.
const rowChunkSize = 64

// Len is how many rows there are.
func (r *Rows) Len() int { return len(r.rows) }

// First is the seq of the first row (the rows' seqs are contiguous and
// known before they are encoded).
func (r *Rows) First() uint64 { return r.next.Seq - uint64(len(r.rows)) + 1 }

// Next returns the next rows in seq order, waiting for them to be encoded,
// or nil once all were read. After an error it returns the same error.
func (r *Rows) Next() ([]Row, error) {
	if r.err != nil {
		return nil, r.err
	}
	if r.read == len(r.chunks) {
		return nil, nil
	}
	c := &r.chunks[r.read]
	// A chunk no worker has taken yet the reader encodes itself rather
	// than wait for one; it never takes a chunk ahead, so it goes back to
	// sending as soon as the chunk it needs is there.
	if k := int64(r.read); !r.stop.Load() && r.claim.CompareAndSwap(k, k+1) {
		r.encode(c)
	}
	<-c.done
	if c.err != nil {
		r.err = c.err
		r.halt()
		return nil, r.err
	}
	r.read++
	if r.next.Tree != nil { // in order, one goroutine: the tree's shape depends on it
		for i := c.lo; i < c.hi; i++ {
			r.rows[i].Hashes = r.next.Tree.AppendHash(r.leaves[i*trail.HashSize : (i+1)*trail.HashSize])
		}
	}
	return r.rows[c.lo:c.hi], nil
}

// All reads every row (Next until the end) and returns them.
func (r *Rows) All() ([]Row, error) {
	for {
		part, err := r.Next()
		if err != nil {
			return nil, err
		}
		if part == nil {
			return r.rows, nil
		}
	}
}

// Head is the tenant's head after the rows: Write moves the tenant's head
// to it once it has read them all. Before that it is nil.
func (r *Rows) Head() *Head {
	if r.read < len(r.chunks) {
		return nil
	}
	return r.next
}

// work is a worker: it encodes chunks, the lowest not yet taken first,
// until none is left or the reader gave up.
func (r *Rows) work() {
	for !r.stop.Load() {
		k := int(r.claim.Add(1) - 1)
		if k >= len(r.chunks) {
			return
		}
		r.encode(&r.chunks[k])
	}
}

// encode is each event's own work for chunk c: its canonical bytes, its
// index columns and its leaf hash. It stops at the chunk's first error.
func (r *Rows) encode(c *rowChunk) {
	defer close(c.done)
	var (
		scratch []byte // the chunk's one encoding buffer: each body is copied out at its size
		leaf    tlog.LeafHasher
	)
	for i := c.lo; i < c.hi; i++ {
		ev := r.rows[i].Event
		var err error
		if scratch, err = trail.AppendCanonical(scratch[:0], ev); err != nil {
			c.err = trail.Errorf(trail.EINVALID, "event %d cannot be encoded: %v", i, err)
			return
		}
		body := bytes.Clone(scratch)
		id, ok := trail.ParseID(ev.ID)
		if !ok {
			c.err = trail.Errorf(trail.EINTERNAL, "event id %q is not a UUID", ev.ID)
			return
		}
		r.rows[i] = Row{Event: ev, ID: id, Body: body, Hashes: []byte{}, Index: trail.IndexOf(ev)} // Hashes not nil: a SQL store would write NULL
		if r.leaves != nil {
			leaf.Sum((*[trail.HashSize]byte)(r.leaves[i*trail.HashSize:]), body)
		}
	}
}

// halt stops the workers and waits for them: after it, nothing writes to
// the rows. A chunk already taken is finished.
func (r *Rows) halt() {
	r.stop.Store(true)
	r.wg.Wait()
	// Chunks nobody took will never be done: mark them so a late reader
	// does not wait for them.
	for k := int(min(r.claim.Load(), int64(len(r.chunks)))); k < len(r.chunks); k++ {
		r.chunks[k].err = errStopped
		close(r.chunks[k].done)
	}
	r.claim.Store(int64(len(r.chunks)))
}

var errStopped = errors.New("ledger: rows not encoded: the batch stopped")

// sequence gives b's events the seqs after h and clamps their RecordedAt
// so it never runs behind the event before, in the batch's order, in one
// goroutine; it returns their Rows, whose encoding and tree hashes (on a
// copy of h's tree) follow as the store reads them (Rows.Next). It fails
// before anything is written when the tenant would overflow maxSeq (0: no
// bound).
func (h *Head) sequence(b *Batch, maxSeq uint64) (*Rows, error) {
	if maxSeq > 0 && h.Seq+uint64(len(b.Events)) > maxSeq {
		return nil, trail.Errorf(trail.EINTERNAL, "tenant %s is full (%d events)", h.Tenant, maxSeq)
	}
	r := &Rows{rows: make([]Row, len(b.Events))}
	next := &Head{Tenant: h.Tenant, Seq: h.Seq, RecordedAt: h.RecordedAt, Origin: h.Origin}
	for i, ev := range b.Events { // the order of the batch: one goroutine
		next.Seq++
		ev.Seq = next.Seq
		ev.RecordedAt = trail.NotBefore(ev.RecordedAt, next.RecordedAt)
		next.RecordedAt = ev.RecordedAt
		r.rows[i].Event = ev
	}
	if h.Tree != nil {
		next.Tree = h.Tree.Clone()
		r.leaves = make([]byte, len(r.rows)*trail.HashSize)
	}
	r.next = next
	n := max(1, (len(r.rows)+rowChunkSize-1)/rowChunkSize)
	r.chunks = make([]rowChunk, n)
	for k := range r.chunks {
		r.chunks[k] = rowChunk{lo: k * len(r.rows) / n, hi: (k + 1) * len(r.rows) / n, done: make(chan struct{})}
	}
	// A batch of one chunk is the reader's alone (a single-event append
	// starts no goroutine); a larger one has a worker per other core
	// running ahead of the reader.
	for range min(runtime.GOMAXPROCS(0), n) - 1 {
		r.wg.Go(r.work)
	}
	return r, nil
}

// Checkpoint is a tenant's tree head after a batch, to be signed and stored
// with the batch.
type Checkpoint struct {
	Tenant string
	Size   uint64
	tree   *tlog.Tree // the head's, which never changes: its root is computed when signed
	origin string     // the log's ("" for its first checkpoint)
	signer *tlog.Signer
}

// checkpoint returns h's checkpoint, nil without trees.
func (l *Log) checkpoint(h *Head) *Checkpoint {
	if h.Tree == nil || l.c.NoTree {
		return nil
	}
	return &Checkpoint{Tenant: h.Tenant, Size: h.Tree.Size(), tree: h.Tree, origin: h.Origin, signer: l.c.Signer}
}

// Note signs the checkpoint: the note the store writes in the
// transaction. The root is computed here, not when the batch is
// sequenced: a store that commits many batches at once signs only each
// tenant's newest checkpoint, and the others' roots are never needed.
func (c *Checkpoint) Note() ([]byte, error) {
	return c.signer.SignOrigin(c.Tenant, c.origin, c.Size, c.tree.Root())
}

// result returns the answer to an append of rows: the events as stored,
// which are the caller's from now on (a store that keeps events keeps
// copies: Tx.Commit). The Validator keeps prepared events in the form
// their canonical bytes decode to, so they are exactly what reads return,
// with no decoding of what was stored, and nothing else holds them: no
// copy is needed either (copying them was a tenth of an append's CPU).
func result(rows []Row) *trail.AppendResult {
	out := make([]*trail.Event, len(rows))
	for i := range rows {
		out[i] = rows[i].Event
	}
	return &trail.AppendResult{Events: out}
}

// checkPrune reads the rows prune batch b clears (its record sequenced at
// seq record) and checks each: there, not pruned already, and not
// itself a purge record. It returns their targets rows, derived from their
// stored bytes as sequence derived them.
func checkPrune(ctx context.Context, tx Tx, b *Batch, record uint64) ([]PrunedTarget, error) {
	missing := func(seq uint64) error {
		return trail.Errorf(trail.EINVALID, "tenant %s has no event at seq %d to prune", b.Tenant, seq)
	}
	for _, s := range b.Prune {
		if s >= record {
			return nil, missing(s)
		}
	}
	rows, err := tx.PruneRows(ctx, b.Prune)
	if err != nil {
		return nil, err
	}
	var targets []PrunedTarget
	for i, seq := range b.Prune {
		if i >= len(rows) || rows[i].Seq != seq {
			return nil, missing(seq)
		}
		r := rows[i]
		if r.Pruned {
			return nil, trail.Errorf(trail.EINVALID, "the event at seq %d is pruned already", seq)
		}
		if r.Action == tlog.PrunedAction {
			return nil, trail.Errorf(trail.EINVALID, "the event at seq %d is an %s record, the proof of a purge: it is never pruned", seq, tlog.PrunedAction)
		}
		ev, err := trail.UnmarshalCanonical(r.Body)
		if err != nil {
			return nil, trail.Errorf(trail.EINTERNAL, "the event at seq %d does not decode: %v", seq, err)
		}
		for _, t := range trail.IndexOf(ev).Targets {
			targets = append(targets, PrunedTarget{Seq: seq, Type: t.Type, ID: t.ID})
		}
	}
	return targets, nil
}
