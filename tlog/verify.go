package tlog

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/trailaudit/trail"
)

// Kind names what is wrong with a log or a bundle at one seq, so that a
// report can be read, filtered and alerted on without parsing prose.
type Kind string

// The kinds of damage Verify and VerifyBundle report.
const (
	// Changed: stored bytes or tree nodes are not what was signed.
	Changed Kind = "changed"
	// Missing: rows a signed checkpoint covers are absent.
	Missing Kind = "missing"
	// Extra: rows that no signed checkpoint covers (or a seq given twice).
	Extra Kind = "extra"
	// Reordered: a row holds the event of another seq, or rows or
	// checkpoints are out of order.
	Reordered Kind = "reordered"
	// BadSignature: a checkpoint does not verify under the verifier key.
	BadSignature Kind = "bad_signature"
	// Fork: the log does not extend a checkpoint an auditor saved: its
	// history was rewritten and re-signed since.
	Fork Kind = "fork"
	// Index: a column or targets row that reads select on is not what the
	// event's stored bytes give (trail.IndexOf), so searches miss the
	// event or find it under what it is not.
	Index Kind = "index"
	// Rollback: the log is shorter than a record of its size says it was
	// (the store's head, its idempotency keys, a saved checkpoint), or
	// such a record was set back.
	Rollback Kind = "rollback"
)

// MaxDamage bounds the damage a report lists (the lowest seqs are kept), so
// that a log damaged throughout gives a report of bounded size.
const MaxDamage = 100

// Damage is one finding of Verify or VerifyBundle: what is wrong, where
// (the first seq it concerns), and a sentence for a human.
type Damage struct {
	Kind   Kind   `json:"kind"`
	Seq    uint64 `json:"seq"`
	Detail string `json:"detail"`
}

// Report is the result of Verify: what was checked and the damage found.
// A log is intact when the report lists no damage (OK).
type Report struct {
	Tenant string `json:"tenant"`
	// Leaves is the number of rows read.
	Leaves uint64 `json:"leaves"`
	// Size and Root are those of the largest stored checkpoint that
	// verifies (in a sound log, the latest one); 0 and nil when none does.
	Size uint64 `json:"size"`
	Root []byte `json:"root"`
	// Checkpoints is the number of stored checkpoints checked.
	Checkpoints int `json:"checkpoints"`
	// Saved is the number of saved (external) checkpoints checked.
	Saved int `json:"saved"`
	// Keys is the log's key history when it rotated keys (Keys.Epochs):
	// which key signs which checkpoints.
	Keys []KeyEpoch `json:"keys,omitempty"`
	// Unverified counts rows appended while Verify ran, past the
	// checkpoints it read first: a later run checks them.
	Unverified uint64 `json:"unverified,omitempty"`
	// Damage lists what is wrong, sorted by Seq, at most MaxDamage items.
	Damage []Damage `json:"damage,omitempty"`
	// Pruned lists the pruned ranges of VerifyOptions.Pruned that Verify
	// accepted, by From: rows there whose payload is gone are retention's
	// doing, recorded in the log, not damage.
	Pruned []PrunedRange `json:"pruned,omitempty"`
	// Sizes are the records of the log's size the store keeps beside its
	// rows and checkpoints (Log.SizeRecords), which the rows were held to.
	Sizes []trail.SizeRecord `json:"sizes,omitempty"`
	// Vouched is the largest size of a saved checkpoint the log extends:
	// its rows up to there are what an outside copy saw. 0 without one.
	Vouched uint64 `json:"vouched"`
	// Unvouched, when set, says what nothing outside the database vouches
	// for: the rows past Vouched could have been rolled back, or
	// rewritten and re-signed with the signing key, with every record
	// inside the database changed to agree, and Verify would not know.
	Unvouched string `json:"unvouched,omitempty"`
}

// OK reports whether no damage was found.
func (r *Report) OK() bool { return len(r.Damage) == 0 }

// First returns the damage at the lowest seq, where an investigation
// starts, or nil when the log is intact.
func (r *Report) First() *Damage {
	if r.OK() {
		return nil
	}
	return &r.Damage[0]
}

// VerifyOptions holds what Verify checks beyond the log itself.
type VerifyOptions struct {
	// Saved holds signed checkpoints that an auditor kept outside the
	// store. The log must extend each: a log rewritten and re-signed with
	// the store's own key verifies on its own, but not against a
	// checkpoint saved before the rewrite.
	Saved [][]byte
	// Pruned holds the ranges of seqs whose payloads retention removed, as
	// the log's audit_log_pruned events name them (PrunedRanges reads
	// them). A row with no payload is damage unless a range covers it.
	Pruned []PrunedRange
}

// Verify checks tenant's whole log against its signed checkpoints, reading
// every row once, in a stream (it never holds the log in memory): each
// stored body must hash to its stored leaf hash and claim its row's seq,
// the tree rebuilt from the bodies must reproduce every stored node and
// every checkpoint's root, seqs must run 1, 2, 3... up to the largest
// checkpoint's size and no further, every checkpoint must verify under
// the key the log's key history (v.Follow) gives its size, every index
// value reads select on (Log.ScanIndex) must be what the event's bytes
// give, and the log must be as long as every record of its size
// (Log.SizeRecords, saved checkpoints). The rules (a row gets at most one
// damage of the rules about its bytes, the first that applies in this
// order, and Index only when none applies):
//
//   - A gap before a row is Missing at the first absent seq; rows past
//     the last read that a checkpoint covers are Missing at last+1.
//   - Rows past the largest stored checkpoint get no other check. When,
//     after the scan, the latest checkpoint covers them, they were
//     appended while Verify ran (Report.Unverified); otherwise they are
//     Extra (reported once, at the first such row).
//   - A body that does not hash to its stored leaf hash is Changed; a
//     body that claims another top-level seq (or none) is Reordered; a
//     stored node that differs from the rebuilt one is Changed.
//   - A row with no body (nil or empty) was pruned: its leaf hash is the
//     first HashSize bytes of its stored hashes (Changed when they are too
//     short), which the tree and the checkpoints check as any other. It is
//     Changed ("payload missing with no purge record") unless a range of
//     opts.Pruned covers its seq; the tree still stands for the log.
//   - A range of opts.Pruned whose record (BySeq) does not come after it
//     is Reordered at BySeq (a purge cannot name events after it), an
//     empty one is Changed at BySeq; neither covers any row. The row at
//     BySeq must hold an audit_log_pruned event (Changed otherwise, or
//     Missing when the log ends before it).
//   - A row whose index values (its columns, its targets rows, its pruned
//     mark) differ from what trail.IndexOf gives for the event its bytes
//     hold (trail.CanonicalIndex) is Index, naming each column; a pruned
//     row must have its cleared columns empty and no targets rows. Index
//     values at a seq the log holds no row for (targets rows left or
//     planted) are Index at that seq. The tree still stands for the log.
//   - A stored checkpoint that does not verify is BadSignature at its
//     size (0 when unparseable) and is then ignored (but when none is
//     signed by a key v trusts, or the history reaches, Verify cannot
//     check the log, and returns an error holding an *UntrustedError); a checkpoint whose
//     size is not above the one before it is Reordered at its size.
//   - When the rebuilt tree reaches a stored checkpoint's size, a root
//     that differs is Changed at the first seq after the largest stored
//     checkpoint whose root matched (the damage lies between the two).
//   - When it reaches a saved checkpoint's size, a root that differs is
//     Fork at the first seq after the largest saved checkpoint whose root
//     matched, or 1: without the auditor's leaves Verify cannot tell where
//     the two histories part, only that they do after that point. A saved
//     checkpoint above the last row is Rollback at last+1. A saved
//     checkpoint of the tenant that the log's keys did not sign is Fork at
//     1: the log's history was re-signed since it was saved.
//   - A size record (read after the checkpoints, before the rows) above
//     the last row is Rollback at last+1; a head record below the largest
//     stored checkpoint is Rollback at its size+1 (it was set back).
//
// Report.Unvouched says what no saved checkpoint covers: a rollback (or a
// rewrite re-signed with the signing key) of everything the database
// holds, done consistently, looks intact without one.
//
// After the first damage to the rows (Changed, Missing, Reordered rows) or
// Fork, the rebuilt tree no longer stands for the log, so node and root
// comparisons stop there; the row-level rules still run to the end.
//
// Verify returns an error only when reading fails, when no stored
// checkpoint is signed by a trusted key (above), or when a saved
// checkpoint cannot be read (EINVALID): damage goes in the report.
// Each stored checkpoint costs a signature check, each row a SHA-256 of its
// body and a read of its index values (spread over GOMAXPROCS goroutines,
// each reading ScanIndex for its batch of rows, or read with the rows in
// one pass when l is a trail.LeafIndexScanner) and on average a SHA-256
// of a node.
func Verify(ctx context.Context, l trail.Log, tenant string, v *Verifier, opts VerifyOptions) (*Report, error) {
	if v == nil {
		return nil, trail.Errorf(trail.EINVALID, "tlog: verify: no verifier key")
	}
	rep := &Report{Tenant: tenant, Saved: len(opts.Saved)}
	w := &walk{next: 1, tree: &Tree{}} // the zero Tree is empty
	rep.Pruned = w.prunedRanges(opts.Pruned)
	keys, err := v.Follow(ctx, l, tenant)
	if err != nil {
		return nil, fmt.Errorf("tlog: verify: %w", err)
	}
	rep.Keys = keys.Epochs()
	if err := w.readCheckpoints(ctx, l, tenant, keys, rep); err != nil {
		return nil, err
	}
	for i, note := range opts.Saved {
		cp, err := keys.Open(note)
		if u, perr := ParseUnverified(note); foreign(err) && perr == nil && strings.HasSuffix(u.Origin, "/"+tenant) {
			w.d.add(Fork, 1, "saved checkpoint %d (size %d) is %s: the log was re-signed since it was saved", i+1, u.Size, trail.ErrorMessage(err))
			continue
		}
		if err != nil {
			return nil, trail.Errorf(trail.EINVALID, "tlog: verify: saved checkpoint %d: %w", i+1, err)
		}
		w.targets = append(w.targets, target{size: cp.Size, root: [trail.HashSize]byte(cp.Root), saved: true})
	}
	slices.SortStableFunc(w.targets, func(a, b target) int { return cmp.Compare(a.size, b.size) })
	w.reach()
	// Read after the checkpoints and before the rows: in a sound log a
	// head is then at least the checkpoints' size and at most the rows'.
	sizes, err := l.SizeRecords(ctx, tenant)
	if err != nil {
		return nil, fmt.Errorf("tlog: verify: size records: %w", err)
	}
	rep.Sizes = sizes
	if err := w.scan(ctx, l, tenant); err != nil {
		return nil, fmt.Errorf("tlog: verify: %w", err)
	}
	w.end()
	w.sizes(sizes)
	if w.beyond != 0 {
		// Rows past the checkpoints read at the start: appended while this
		// ran (their commit wrote a checkpoint covering them, which a
		// second look finds), or forged (nothing signed covers them).
		// Stores refuse to append after rows no checkpoint covers, so a
		// forged row cannot come to be covered later.
		note, err := l.Checkpoint(ctx, tenant)
		if err != nil && trail.ErrorCode(err) != trail.ENOTFOUND {
			return nil, fmt.Errorf("tlog: verify: %w", err)
		}
		if cp, oerr := keys.Open(note); err == nil && oerr == nil && cp.Size >= w.next-1 {
			rep.Unverified = w.next - w.beyond
		} else {
			w.d.add(Extra, w.beyond, "rows from seq %d on are covered by no signed checkpoint (the largest covers %d)", w.beyond, w.covered)
		}
	}
	rep.Leaves = w.rows
	rep.Damage = w.d.sorted()
	rep.Vouched, rep.Unvouched = w.agreeSaved, unvouched(w.agreeSaved, max(rep.Size, w.next-1), len(opts.Saved))
	return rep, nil
}

// unvouched says what no saved checkpoint vouches for in a log of size
// rows whose saved checkpoints (n of them) it extends up to vouched, or ""
// when they cover it all.
func unvouched(vouched, size uint64, n int) string {
	const why = "a rollback, or a rewrite re-signed with the signing key, of everything the database holds would verify as intact; " +
		"keep checkpoints outside it (trail checkpoint, then verify --checkpoint) or have a witness cosign them"
	switch {
	case n > 0 && vouched >= size:
		return ""
	case vouched == 0:
		return "nothing outside the database vouches for this log: " + why
	}
	return fmt.Sprintf("nothing outside the database vouches for seqs %d to %d, past the saved checkpoint of size %d: %s", vouched+1, size, vouched, why)
}

// target is a root the rebuilt tree must have when it reaches size.
type target struct {
	size  uint64
	root  [trail.HashSize]byte
	saved bool // an auditor's checkpoint, not a stored one
}

// walk is Verify's state. Its row method sees the rows in seq order, after
// the hashing goroutines are done with them, and alone changes the state.
type walk struct {
	d       damages
	tree    *Tree
	targets []target // not reached yet, by size
	covered uint64   // size of the largest stored checkpoint that verifies
	next    uint64   // seq expected next
	rows    uint64   // rows read
	broken  bool     // damage found: the rebuilt tree no longer stands for the log
	beyond  uint64   // first row past the checkpoints read first, or 0
	buf     []byte   // the hashes of the row appended last
	cover   []span   // seqs pruning records cover, disjoint, by from
	records []uint64 // seqs of the pruning records, ascending
	// Sizes of the largest stored and saved checkpoints whose root the
	// rebuilt tree matched.
	agreeStored, agreeSaved uint64
	// The latest recorded_at of the rows read, and its seq.
	lastAt    time.Time
	lastAtSeq uint64
}

// fail records damage that leaves the rebuilt tree meaningless.
func (w *walk) fail(k Kind, seq uint64, format string, args ...any) {
	w.d.add(k, seq, format, args...)
	w.broken = true
}

// readCheckpoints checks the stored checkpoints and keeps, of each that
// verifies, what the scan needs: its size and root.
func (w *walk) readCheckpoints(ctx context.Context, l trail.Log, tenant string, keys *Keys, rep *Report) error {
	var prev uint64 // size of the last checkpoint that verified
	seen := false
	var untrusted error // while no checkpoint verifies: the last one's error, if it is signed by no trusted key
	err := l.Checkpoints(ctx, tenant, func(note []byte) error {
		rep.Checkpoints++
		n := rep.Checkpoints
		cp, err := keys.Open(note)
		if err != nil {
			if errors.As(err, new(*UntrustedError)) && (untrusted != nil || n == 1) {
				untrusted = err
			} else {
				untrusted = nil
			}
			var size uint64
			if u, perr := ParseUnverified(note); perr == nil {
				size = u.Size
			}
			w.d.add(BadSignature, size, "stored checkpoint %d (size %d) does not verify: %s", n, size, trail.ErrorMessage(err))
			return nil
		}
		if seen && cp.Size <= prev {
			w.d.add(Reordered, cp.Size, "stored checkpoint %d has size %d, not above the size %d of the one before it", n, cp.Size, prev)
		}
		seen, prev = true, cp.Size
		if rep.Root == nil || cp.Size > rep.Size {
			rep.Size, rep.Root = cp.Size, cp.Root
		}
		w.targets = append(w.targets, target{size: cp.Size, root: [trail.HashSize]byte(cp.Root)})
		return nil
	})
	if err != nil {
		return fmt.Errorf("tlog: verify: checkpoints: %w", err)
	}
	if !seen && untrusted != nil {
		return trail.Errorf(trail.EINVALID, "tlog: verify: no checkpoint of tenant %s is signed by a trusted key: %w", tenant, untrusted)
	}
	w.covered = rep.Size
	return nil
}

// row checks one row (body and hashes are its stored bytes).
func (w *walk) row(r *row, body, hashes []byte) {
	w.rows++
	switch {
	case r.seq < w.next:
		w.fail(Reordered, r.seq, "a row of seq %d comes where seq %d was expected", r.seq, w.next)
		return
	case r.seq > w.next:
		if n := r.seq - w.next; n == 1 {
			w.fail(Missing, w.next, "seq %d is missing (1 row)", w.next)
		} else {
			w.fail(Missing, w.next, "seqs %d to %d are missing (%d rows)", w.next, r.seq-1, n)
		}
	}
	w.next = r.seq + 1
	inside := r.seq <= w.covered
	if len(w.records) > 0 && inside {
		w.record(r, body)
	}
	sound := false // the row is inside and nothing above is wrong with it
	switch {
	case !inside:
		if w.beyond == 0 {
			w.beyond = r.seq
		}
	case r.pruned && !r.leafOK:
		w.fail(Changed, r.seq, "payload missing, and its stored hashes hold no leaf hash")
	case r.pruned:
		if sound = w.prunedOK(r.seq); !sound {
			w.d.add(Changed, r.seq, "payload missing with no purge record")
		}
	case !r.leafOK:
		w.fail(Changed, r.seq, "stored bytes do not match their leaf hash")
	case !r.claimOK:
		w.fail(Reordered, r.seq, "row %d holds an event with no top-level seq", r.seq)
	case r.claim != r.seq:
		w.fail(Reordered, r.seq, "row %d holds the event of seq %d", r.seq, r.claim)
	default:
		sound = true
	}
	if sound && r.index != "" {
		// The tree still stands for the log: only reads are misled.
		w.d.add(Index, r.seq, "%s", r.index)
	}
	if sound && !r.recorded.IsZero() {
		// Stores clamp a clock that steps back (trail.Store), so that a
		// window of recorded_at is a range of seqs, as window bundles
		// prove completeness by.
		if r.recorded.Before(w.lastAt) {
			w.d.add(Reordered, r.seq, "recorded_at %s is before seq %d's %s: recorded_at never decreases along seq",
				r.recorded.UTC().Format(time.RFC3339Nano), w.lastAtSeq, w.lastAt.UTC().Format(time.RFC3339Nano))
		} else {
			w.lastAt, w.lastAtSeq = r.recorded, r.seq
		}
	}
	if w.broken {
		return
	}
	w.buf = w.tree.appendTo(w.buf[:0], &r.leaf)
	if inside && !bytes.Equal(w.buf, hashes) {
		w.fail(Changed, r.seq, "stored tree node differs")
		return
	}
	w.reach()
}

// reach compares the rebuilt tree's root with every checkpoint of its
// size.
func (w *walk) reach() {
	size := w.tree.Size()
	var root []byte
	for len(w.targets) > 0 && w.targets[0].size == size {
		t := w.targets[0]
		w.targets = w.targets[1:]
		if w.broken {
			continue
		}
		if root == nil {
			root = w.tree.Root()
		}
		match := bytes.Equal(root, t.root[:])
		switch {
		case match && t.saved:
			w.agreeSaved = size
		case match:
			w.agreeStored = size
		case t.saved:
			w.fail(Fork, w.agreeSaved+1, "the log does not extend the saved checkpoint of size %d: its tree of that size has another root", size)
		default:
			w.fail(Changed, w.agreeStored+1, "log no longer matches the signed checkpoint of size %d", size)
		}
	}
}

// end reports the rows that checkpoints cover beyond the last row read.
func (w *walk) end() {
	last := w.next - 1
	for _, s := range w.records {
		if s > last {
			w.d.add(Missing, s, "the pruning record at seq %d is not in the log (it ends at seq %d)", s, last)
		}
	}
	if w.covered > last {
		w.d.add(Missing, last+1, "the log ends at seq %d but its signed checkpoint covers %d", last, w.covered)
	}
	for _, t := range w.targets {
		if t.saved && t.size > last {
			w.d.add(Rollback, last+1, "the log ends at seq %d, below the saved checkpoint of size %d: it was rolled back or its tail deleted", last, t.size)
		}
	}
}

// sizes holds the log to the records of its size the store keeps.
func (w *walk) sizes(recs []trail.SizeRecord) {
	last := w.next - 1
	for _, r := range recs {
		switch {
		case r.Size > last:
			w.d.add(Rollback, last+1, "the log ends at seq %d, short of the size %d recorded by %s: its last %d rows are gone", last, r.Size, r.Where, r.Size-last)
		case r.Head && r.Size < w.covered:
			w.d.add(Rollback, r.Size+1, "the size %d recorded by %s is below the signed checkpoint of size %d: it was set back", r.Size, r.Where, w.covered)
		}
	}
}

// Batching of the scan: rows are copied into batches (the Leaf slices are
// only valid during the scan's callback), hashed by GOMAXPROCS goroutines,
// and walked in order by one more.
const (
	batchRows  = 256
	batchBytes = 1 << 20
)

// row is one scanned row in a batch and what the hashing found.
type row struct {
	seq             uint64
	start, mid, end int // body is data[start:mid], hashes data[mid:end]
	leaf            [trail.HashSize]byte
	claim           uint64
	leafOK, claimOK bool
	pruned          bool      // no body: leaf is the stored leaf hash
	index           string    // what is wrong with its index values (indexDamage), or ""
	recorded        time.Time // the recorded_at its bytes hold (zero: pruned, or they do not decode)
}

// batch is a run of rows, their bytes back to back in data, and the index
// values the store keeps for the seqs from lo to hi (exclusive; 0: through
// the last), which the batches of a scan tile. Unless indexed (read with
// the rows, trail.LeafIndexScanner), the hashing goroutine reads the index
// values. done is closed when they are hashed and compared.
type batch struct {
	rows    []row
	data    []byte
	lo, hi  uint64
	indexed bool
	ix      []trail.IndexRow
	orphans []Damage // index values at seqs of no row
	err     error    // reading the index values failed
	done    chan struct{}
}

// reset empties b for the rows from seq lo on.
func (b *batch) reset(lo uint64, indexed bool) {
	b.rows, b.data, b.ix, b.orphans, b.err = b.rows[:0], b.data[:0], b.ix[:0], b.orphans[:0], nil
	b.lo, b.hi, b.indexed, b.done = lo, 0, indexed, make(chan struct{})
}

func (b *batch) add(l trail.Leaf) {
	start := len(b.data)
	b.data = append(b.data, l.Body...)
	mid := len(b.data)
	b.data = append(b.data, l.Hashes...)
	b.rows = append(b.rows, row{seq: l.Seq, start: start, mid: mid, end: len(b.data)})
}

func (b *batch) full() bool { return len(b.rows) >= batchRows || len(b.data) >= batchBytes }

// scan streams the rows through the hashing goroutines into w.row.
func (w *walk) scan(ctx context.Context, l trail.Log, tenant string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers := runtime.GOMAXPROCS(0)
	n := 2*workers + 2
	free := make(chan *batch, n)
	for range n {
		free <- &batch{}
	}
	work := make(chan *batch, n)
	order := make(chan *batch, n)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() { hashRows(ctx, l, tenant, work) })
	}
	var indexErr error // the first failed read of index values; the walker's
	wg.Go(func() {
		for b := range order {
			<-b.done
			if b.err != nil && indexErr == nil {
				indexErr = b.err
				cancel()
			}
			for i := range b.rows {
				r := &b.rows[i]
				w.row(r, b.data[r.start:r.mid], b.data[r.mid:r.end])
			}
			for _, o := range b.orphans {
				if o.Seq <= w.covered { // past it: appended while this ran
					w.d.add(o.Kind, o.Seq, "%s", o.Detail)
				}
			}
			free <- b
		}
	})
	var cur *batch
	lo := uint64(1) // where the next batch's index values start
	li, indexed := l.(trail.LeafIndexScanner)
	take := func() {
		if cur == nil {
			cur = <-free
			cur.reset(lo, indexed)
		}
	}
	send := func(hi uint64) {
		cur.hi, lo = hi, hi
		work <- cur
		order <- cur
		cur = nil
	}
	add := func(leaf trail.Leaf) error {
		take()
		cur.add(leaf)
		if cur.full() {
			send(leaf.Seq + 1)
			return ctx.Err()
		}
		return nil
	}
	var err error
	if indexed {
		err = li.ScanLeavesIndexed(ctx, tenant, 1, 0, func(leaf *trail.Leaf, ix *trail.IndexRow) error {
			take()
			if ix != nil {
				cur.ix = append(cur.ix, *ix)
			}
			if leaf == nil {
				return nil
			}
			return add(*leaf)
		})
	} else {
		err = l.ScanLeaves(ctx, tenant, 1, 0, add)
	}
	if err == nil {
		// The last batch reads the index values to the end: those past
		// the last row have no row.
		take()
		send(0)
	}
	close(work)
	close(order)
	wg.Wait()
	if indexErr != nil && (err == nil || errors.Is(err, context.Canceled)) {
		return fmt.Errorf("index values: %w", indexErr) // err is the cancel it caused
	}
	return err
}

// hashRows computes the leaf hash and claimed seq of each row of the
// batches it receives, and compares the index values the store keeps for
// its seqs with what its bytes give.
func hashRows(ctx context.Context, l trail.Log, tenant string, work <-chan *batch) {
	for b := range work {
		hashBatch(b)
		if !b.indexed {
			b.err = l.ScanIndex(ctx, tenant, b.lo, b.hi, func(ix trail.IndexRow) error {
				b.ix = append(b.ix, ix)
				return nil
			})
		}
		if b.err == nil {
			b.compare()
		}
		close(b.done)
	}
}

// compare sets each row's index damage from the index values of the
// batch's seqs, and lists those of seqs it holds no row of.
func (b *batch) compare() {
	ix := b.ix
	// The strings the index is derived into are slices of the batch's
	// bytes, viewed as a string: they are not written while it is
	// compared, and indexDamage keeps none of those strings (what it
	// reports it formats anew, and the walk copies it into the report
	// before the batch is reused: TestVerifyDamageOutlivesBatch).
	text := unsafe.String(unsafe.SliceData(b.data), len(b.data))
	orphan := func(x *trail.IndexRow) {
		b.orphans = append(b.orphans, Damage{Kind: Index, Seq: x.Seq, Detail: orphanDamage(x)})
	}
	for i := range b.rows {
		r := &b.rows[i]
		for len(ix) > 0 && ix[0].Seq < r.seq {
			orphan(&ix[0])
			ix = ix[1:]
		}
		var mine *trail.IndexRow
		if len(ix) > 0 && ix[0].Seq == r.seq {
			mine, ix = &ix[0], ix[1:]
		}
		r.index, r.recorded = indexDamage(b.data[r.start:r.mid], text[r.start:r.mid], mine)
	}
	for i := range ix {
		orphan(&ix[i])
	}
}

// hashBatch computes the leaf hash and claimed seq of each row of b.
func hashBatch(b *batch) {
	var h LeafHasher
	for i := range b.rows {
		r := &b.rows[i]
		body, hashes := b.data[r.start:r.mid], b.data[r.mid:r.end]
		if r.pruned = len(body) == 0; r.pruned {
			// Retention removed the payload and kept the leaf hash (an
			// event's canonical bytes are never empty).
			r.leafOK = len(hashes) >= trail.HashSize
			if r.leafOK {
				copy(r.leaf[:], hashes[:trail.HashSize])
			}
			continue
		}
		h.Sum(&r.leaf, body)
		r.leafOK = len(hashes) >= trail.HashSize && bytes.Equal(hashes[:trail.HashSize], r.leaf[:])
		r.claim, r.claimOK = claimedSeq(body)
	}
}

// seqMember precedes the top-level seq in an event's canonical bytes.
const seqMember = `"seq":`

// claimedSeq returns the top-level seq an event's canonical bytes hold: the
// digits after the last `"seq":`. Members sort before "seq" only when they
// cannot hold it at top level; those after it ("targets", "tenant", "v",
// "violations") have no member named seq, and a string cannot hold the
// bytes unescaped.
func claimedSeq(body []byte) (uint64, bool) {
	i := lastSeqMember(body)
	if i < 0 {
		return 0, false
	}
	digits := body[i+len(seqMember):]
	var n uint64
	k := 0
	for ; k < len(digits) && '0' <= digits[k] && digits[k] <= '9'; k++ {
		d := uint64(digits[k] - '0')
		if n > (math.MaxUint64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	if k == 0 || (k > 1 && digits[0] == '0') {
		return 0, false
	}
	return n, true
}

// lastSeqMember is bytes.LastIndex(body, []byte(seqMember)), found from
// the colons at the end of body back: the top-level seq is near the end of
// an event's bytes (only targets, tenant, v and violations follow it), and
// an occurrence of seqMember ends at a colon.
func lastSeqMember(body []byte) int {
	for end := len(body); ; {
		c := bytes.LastIndexByte(body[:end], ':')
		if c < len(seqMember)-1 {
			return -1
		}
		if start := c + 1 - len(seqMember); string(body[start:c+1]) == seqMember {
			return start
		}
		end = c
	}
}

// damages collects the damage of one report, keeping the MaxDamage of
// lowest seq however many are added.
type damages struct{ list []Damage }

func (d *damages) add(k Kind, seq uint64, format string, args ...any) {
	d.list = append(d.list, Damage{Kind: k, Seq: seq, Detail: fmt.Sprintf(format, args...)})
	if len(d.list) >= 4*MaxDamage {
		d.sorted()
	}
}

// sorted sorts the damage by seq (then kind), drops repeats of a kind at
// one seq, and keeps at most MaxDamage; nil when there is none.
func (d *damages) sorted() []Damage {
	slices.SortStableFunc(d.list, func(a, b Damage) int {
		return cmp.Or(cmp.Compare(a.Seq, b.Seq), cmp.Compare(a.Kind, b.Kind))
	})
	d.list = slices.CompactFunc(d.list, func(a, b Damage) bool { return a.Seq == b.Seq && a.Kind == b.Kind })
	if len(d.list) > MaxDamage {
		d.list = d.list[:MaxDamage]
	}
	if len(d.list) == 0 {
		return nil
	}
	return d.list
}

// PrunedRange is a run of seqs, From to To inclusive, whose payloads
// retention removed, as the audit_log_pruned event at BySeq records it.
type PrunedRange struct {
	From   uint64    `json:"from"`
	To     uint64    `json:"to"`
	Policy string    `json:"policy"`
	At     time.Time `json:"at"`
	BySeq  uint64    `json:"by_seq"`
}

// span is a run of seqs, from to to inclusive.
type span struct{ from, to uint64 }

// prunedRanges checks the ranges a caller gives Verify, keeps the seqs
// the valid ones cover and their records' seqs for the walk, and returns
// the valid ones sorted.
func (w *walk) prunedRanges(in []PrunedRange) []PrunedRange {
	var ok []PrunedRange
	for _, r := range in {
		switch {
		case r.From == 0 || r.From > r.To:
			w.d.add(Changed, r.BySeq, "the pruning record at seq %d names an empty range of seqs (%d to %d)", r.BySeq, r.From, r.To)
		case r.BySeq <= r.To:
			w.d.add(Reordered, r.BySeq, "the pruning record at seq %d names seqs up to %d: a purge cannot name events after it", r.BySeq, r.To)
		default:
			ok = append(ok, r)
		}
	}
	if len(ok) == 0 {
		return nil
	}
	slices.SortFunc(ok, func(a, b PrunedRange) int { return cmp.Or(cmp.Compare(a.From, b.From), cmp.Compare(a.BySeq, b.BySeq)) })
	for _, r := range ok {
		if n := len(w.cover); n > 0 && r.From <= w.cover[n-1].to+1 {
			w.cover[n-1].to = max(w.cover[n-1].to, r.To)
		} else {
			w.cover = append(w.cover, span{r.From, r.To})
		}
		w.records = append(w.records, r.BySeq)
	}
	slices.Sort(w.records)
	w.records = slices.Compact(w.records)
	return ok
}

// prunedOK reports whether a pruning range covers seq. Rows come in
// ascending seq order, so the ranges passed are dropped as it goes.
func (w *walk) prunedOK(seq uint64) bool {
	for len(w.cover) > 0 && w.cover[0].to < seq {
		w.cover = w.cover[1:]
	}
	return len(w.cover) > 0 && w.cover[0].from <= seq
}

// prunedPrefix starts the canonical bytes of every audit_log_pruned event:
// "action" is the first member in canonical order.
var prunedPrefix = []byte(`{"action":"` + PrunedAction + `"`)

// record checks that the row at the seq of a pruning record holds one.
func (w *walk) record(r *row, body []byte) {
	for len(w.records) > 0 && w.records[0] < r.seq {
		w.records = w.records[1:]
	}
	if len(w.records) == 0 || w.records[0] != r.seq {
		return
	}
	w.records = w.records[1:]
	if r.pruned || !bytes.HasPrefix(body, prunedPrefix) {
		w.d.add(Changed, r.seq, "the pruning record at seq %d is not an %s event", r.seq, PrunedAction)
	}
}

// VerifyStore is Verify of a store's whole log as an operator runs it:
// with the purge records the log holds (PrunedRanges), so that what
// retention removed is reported as pruned, not as damage, and with the
// checkpoints saved elsewhere, if any.
func VerifyStore(ctx context.Context, s trail.Store, tenant string, v *Verifier, saved [][]byte) (*Report, error) {
	pruned, err := PrunedRanges(ctx, s, tenant)
	if err != nil {
		return nil, err
	}
	return Verify(ctx, s, tenant, v, VerifyOptions{Saved: saved, Pruned: pruned})
}
