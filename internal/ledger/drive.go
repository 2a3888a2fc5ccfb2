package ledger

import (
	"bytes"
	"context"
	"fmt"
	"github.com/trailaudit/trail/internal/par"
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
	// Write stores rows (the events and their targets rows), records the
	// batch's key with the seqs of rows, and moves the tenant's head to
	// next. The store MUST NOT change next or its tree.
	Write(ctx context.Context, rows []Row, next *Head) error
	// Prune clears the payloads of the events at seqs (their bodies and
	// the copies of their fields in columns, keeping their tree hashes),
	// marks them pruned by the record at seq by, and deletes targets, their
	// targets rows.
	Prune(ctx context.Context, seqs []uint64, by uint64, targets []PrunedTarget) error
	// Commit stores cp (nil: nothing to sign, no tree or a replay), ends
	// the transaction, and returns once what the batch wrote, and what it
	// read, is durable. A store that commits many batches in one
	// transaction may store only the newest Checkpoint of each tenant.
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

// commit writes a prepared batch through the backend. The answer (copies
// of the events stored) is made after the commit, not while the batch holds
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
// checked before Write, so a batch refused has written nothing. It returns
// the rows written, or the answer of the first append of b's key (a
// replay: nothing written, no checkpoint).
func (l *Log) apply(ctx context.Context, tx Tx, b *Batch) ([]Row, *trail.AppendResult, *Checkpoint, error) {
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
	next, rows, err := h.sequence(b, l.c.MaxSeq)
	if err != nil {
		return nil, nil, nil, err
	}
	var targets []PrunedTarget
	if b.Prune != nil {
		if targets, err = checkPrune(ctx, tx, b, next); err != nil {
			return nil, nil, nil, err
		}
	}
	if err := tx.Write(ctx, rows, next); err != nil {
		return nil, nil, nil, err
	}
	if b.Prune != nil {
		if err := tx.Prune(ctx, b.Prune, next.Seq, targets); err != nil {
			return nil, nil, nil, err
		}
	}
	return rows, nil, l.checkpoint(next), nil
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

// sequence gives b's events the seqs after h, clamps their RecordedAt so it
// never runs behind the event before, encodes them and appends them to a
// copy of h's tree: it returns the head after them, and their rows. It
// fails (EINVALID for an event that does not encode) before anything is
// written. maxSeq bounds the tenant's log (0: none).
func (h *Head) sequence(b *Batch, maxSeq uint64) (*Head, []Row, error) {
	if maxSeq > 0 && h.Seq+uint64(len(b.Events)) > maxSeq {
		return nil, nil, trail.Errorf(trail.EINTERNAL, "tenant %s is full (%d events)", h.Tenant, maxSeq)
	}
	rows := make([]Row, len(b.Events))
	next := &Head{Tenant: h.Tenant, Seq: h.Seq, RecordedAt: h.RecordedAt, Origin: h.Origin}
	for _, ev := range b.Events { // the order of the batch: one goroutine
		next.Seq++
		ev.Seq = next.Seq
		ev.RecordedAt = trail.NotBefore(ev.RecordedAt, next.RecordedAt)
		next.RecordedAt = ev.RecordedAt
	}
	// Each event's own work, spread over the cores: its canonical bytes,
	// its index columns and its leaf hash. The first event (by index) that
	// fails is the one named, as in one loop.
	var leaves []byte // the leaf hashes, HashSize bytes each
	if h.Tree != nil {
		leaves = make([]byte, len(rows)*trail.HashSize)
	}
	err := par.Spread(len(rows), func(lo, hi int) error {
		for i := lo; i < hi; i++ {
			ev := b.Events[i]
			body, err := trail.MarshalCanonical(ev)
			if err != nil {
				return trail.Errorf(trail.EINVALID, "event %d cannot be encoded: %v", i, err)
			}
			id, ok := trail.ParseID(ev.ID)
			if !ok {
				return trail.Errorf(trail.EINTERNAL, "event id %q is not a UUID", ev.ID)
			}
			rows[i] = Row{Event: ev, ID: id, Body: body, Hashes: []byte{}, Index: trail.IndexOf(ev)} // Hashes not nil: a SQL store would write NULL
			if leaves != nil {
				copy(leaves[i*trail.HashSize:], tlog.LeafHash(body))
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if h.Tree != nil {
		next.Tree = h.Tree.Clone()
		for i := range rows {
			rows[i].Hashes = next.Tree.AppendHash(leaves[i*trail.HashSize : (i+1)*trail.HashSize])
		}
	}
	return next, rows, nil
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
// copies the caller may keep. (The Validator keeps prepared events in the
// form their canonical bytes decode to, so they are exactly what reads
// return, with no decoding of what was stored.)
func result(rows []Row) *trail.AppendResult {
	out := make([]*trail.Event, len(rows))
	par.Spread(len(rows), func(lo, hi int) error {
		for i := lo; i < hi; i++ {
			out[i] = rows[i].Event.Clone()
		}
		return nil
	})
	return &trail.AppendResult{Events: out}
}

// checkPrune reads the rows prune batch b clears (b sequenced to next, its
// record at next.Seq) and checks each: there, not pruned already, and not
// itself a purge record. It returns their targets rows, derived from their
// stored bytes as sequence derived them.
func checkPrune(ctx context.Context, tx Tx, b *Batch, next *Head) ([]PrunedTarget, error) {
	missing := func(seq uint64) error {
		return trail.Errorf(trail.EINVALID, "tenant %s has no event at seq %d to prune", b.Tenant, seq)
	}
	for _, s := range b.Prune {
		if s >= next.Seq {
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
