// Package ledger is Trail's one append pipeline. Every store (memory,
// sqlite, postgres) runs every batch through it, in the same order, and
// keeps only what is its own: locking (SQLite's single writer, PostgreSQL's
// head row FOR UPDATE, memory's mutex) and I/O (rows, statements).
//
// The path of a batch, in order:
//
//  1. Prepare, outside any lock, in the caller's goroutine: Pipeline.Append
//     for an outside caller, Pipeline.Own for Trail's own services. The
//     batch is fingerprinted as the caller sent it; validated and redacted
//     (trail.Validator.PrepareBatch); the server's client address filled in
//     (after the fingerprint, so a retry through another address is the
//     same batch); Trail's own records and api_key actors refused unless
//     the batch is Own; its times held to what the store can keep; its
//     personal data sealed. The result is a Batch.
//  2. Sequence, under the store's lock on the tenant: the store loads the
//     tenant's head and NewHead checks it against the latest checkpoint; a
//     key seen before is answered by Batch.Replay; a prune's rows are
//     checked by a PruneCheck; Head.Sequence gives each event its seq, a
//     recorded_at that never runs backwards, its canonical bytes, its tree
//     hashes and its index columns (trail.IndexOf), all in one place.
//  3. Checkpoint: the store writes the rows, then Pipeline.Sign signs the
//     tenant's new tree head, stored in the same transaction.
//
// Trail's own records (the actions whose catalog sources name Trail: a
// purge, a legal hold placed or released, an erasure; and its audited
// reads, whose actor is an API key) reach a store only through Writer,
// whose Own batches no package outside this module can make.
package ledger

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/tlog"
)

// Writer is the path of Trail's own records into a store. Every store
// implements it beside trail.Store; Trail's services (retention, legal
// holds, erasure, the server's audited reads) are handed it when the
// deployment is wired. Its argument is an Own, which only this module's
// packages can make: an outside caller has Append alone.
//
// Contract (on top of trail.Store's for Append):
//   - AppendOwn MUST run o through Pipeline.Own and then store it exactly
//     as Append stores a batch (same seqs, tree hashes and checkpoint).
//   - For a prune (o made by Prune), AppendOwn MUST, in the same
//     transaction as the record, remove the stored bytes of each of the
//     tenant's events at the seqs (and the copies of their fields in
//     indexed columns and target rows) while keeping their tree hashes, and
//     MUST refuse (EINVALID, storing nothing) a seq it does not hold, one
//     pruned already, and one of an audit_log_pruned record (PruneCheck).
//     Reads of a pruned event return ENOTFOUND (Get, GetSeq) or skip it
//     (Query, Scan); ScanLeaves returns its row with a nil Body.
type Writer interface {
	AppendOwn(ctx context.Context, tenant string, o Own) (*trail.AppendResult, error)
}

// Own is a batch of Trail's own records. Its fields are unexported, so
// only this module makes one (Records, Prune); the zero Own is refused.
type Own struct {
	events  []*trail.Event
	prune   []uint64
	pruning bool
}

// Records is an Own batch of Trail's own records: a legal hold placed or
// released, a subject erased, an audited read. A purge record goes with its
// prune (Prune), never here.
func Records(evs ...*trail.Event) Own { return Own{events: evs} }

// Prune is an Own batch that removes the payloads of the events at seqs and
// appends record, their audit_log_pruned event, whose seq_ranges must name
// exactly seqs (tlog.PruneSeqs).
func Prune(seqs []uint64, record *trail.Event) Own {
	return Own{events: []*trail.Event{record}, prune: slices.Clone(seqs), pruning: true}
}

// Config is what a store's pipeline needs, fixed when the store opens.
type Config struct {
	// Store names the store in errors ("sqlite").
	Store string
	// Validator validates and redacts every event, and seals its
	// personal data when it has a Sealer. Required.
	Validator *trail.Validator
	// Signer signs the checkpoint every commit ends with. Nil: the store
	// is read-only and every append fails.
	Signer *tlog.Signer
	// Now is the clock (default time.Now).
	Now func() time.Time
	// MinTime and MaxTime bound the times the store can hold (zero: no
	// bound): an event that happened outside is refused, naming the
	// field; a clock outside fails the append.
	MinTime, MaxTime time.Time
	// NoTree appends without a tree or checkpoints: benchmarks of the
	// storage alone, never a real store.
	NoTree bool
}

// Pipeline prepares batches for one store and sequences them. It is safe
// for concurrent use.
type Pipeline struct{ c Config }

// New returns the pipeline c describes.
func New(c Config) (*Pipeline, error) {
	if c.Validator == nil {
		return nil, fmt.Errorf("%s: Options.Validator is required", c.Store)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return &Pipeline{c: c}, nil
}

// Now reads the pipeline's clock.
func (p *Pipeline) Now() time.Time { return p.c.Now() }

// Tree reports whether the store keeps the tenants' trees (false only in
// storage benchmarks).
func (p *Pipeline) Tree() bool { return !p.c.NoTree }

// Batch is a prepared append: what a store writes under its lock.
type Batch struct {
	Tenant string
	// Events are prepared: validated, redacted, sealed, with ID,
	// RecordedAt and OccurredAt; Head.Sequence gives them their Seq.
	Events []*trail.Event
	// Key is the idempotency key ("" for none) and Fingerprint the digest
	// of the batch as the caller sent it.
	Key         string
	Fingerprint [32]byte
	// Prune holds the seqs this batch prunes, sorted, when it is a prune:
	// its one event is their audit_log_pruned record. Nil otherwise.
	Prune []uint64
}

// Append prepares an outside caller's batch: Trail's own records and
// api_key actors in it are refused.
func (p *Pipeline) Append(ctx context.Context, tenant string, events []*trail.Event, opts trail.AppendOptions) (*Batch, error) {
	return p.prepare(ctx, tenant, events, opts, false)
}

// Own prepares a batch of Trail's own records, or a prune with its record.
func (p *Pipeline) Own(ctx context.Context, tenant string, o Own) (*Batch, error) {
	if len(o.events) == 0 {
		return nil, trail.Invalid("empty batch: nothing to append")
	}
	if o.pruning {
		if _, err := tlog.PruneSeqs(o.events[0], o.prune); err != nil { // before the work of preparing
			return nil, err
		}
	}
	b, err := p.prepare(ctx, tenant, o.events, trail.AppendOptions{}, true)
	if err != nil {
		return nil, err
	}
	if o.pruning {
		// The record as validated is what is stored: check it again.
		if b.Prune, err = tlog.PruneSeqs(b.Events[0], o.prune); err != nil {
			return nil, err
		}
		return b, nil
	}
	var fe []trail.FieldError
	for i, ev := range b.Events {
		if ev.Action == tlog.PrunedAction {
			fe = append(fe, trail.FieldError{Path: trail.PathIndex("", i) + ".action",
				Message: tlog.PrunedAction + " is appended only with the prune it records"})
		}
	}
	if len(fe) > 0 {
		return nil, trail.Invalid("event refused", fe...)
	}
	return b, nil
}

func (p *Pipeline) prepare(ctx context.Context, tenant string, events []*trail.Event, opts trail.AppendOptions, own bool) (*Batch, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if p.c.Signer == nil && !p.c.NoTree {
		return nil, trail.Errorf(trail.EINTERNAL, "%s: opened without a signer, read-only", p.c.Store)
	}
	b := &Batch{Tenant: tenant, Key: opts.IdempotencyKey}
	if b.Key != "" {
		var err error
		if b.Fingerprint, err = trail.BatchFingerprint(events); err != nil {
			return nil, trail.Errorf(trail.EINVALID, "batch cannot be fingerprinted: %v", err)
		}
	}
	var clientIP string
	if opts.ClientIP != "" {
		addr, err := netip.ParseAddr(opts.ClientIP)
		if err != nil {
			return nil, trail.Invalid("bad append options", trail.FieldError{Path: "client_ip", Message: "not an IP address"})
		}
		clientIP = addr.Unmap().String()
	}
	prepared, err := p.c.Validator.PrepareBatch(tenant, events, opts.Policy, p.c.Now())
	if err != nil {
		return nil, err
	}
	var fe []trail.FieldError
	for i, ev := range prepared {
		if !own {
			fe = append(fe, p.refuse(i, ev)...)
		}
		if ev.Request.IP == "" {
			ev.Request.IP = clientIP
		}
		if f := p.outside(i, ev); f != nil {
			fe = append(fe, *f)
		}
		if !p.within(ev.RecordedAt) {
			return nil, trail.Errorf(trail.EINTERNAL, "%s: the clock reads %v, outside the years the store holds", p.c.Store, ev.RecordedAt)
		}
	}
	if len(fe) > 0 {
		return nil, trail.Invalid("event refused", fe...)
	}
	if err := p.c.Validator.Seal(ctx, tenant, prepared); err != nil {
		return nil, err
	}
	b.Events = prepared
	return b, nil
}

// Refuse returns the field errors of an outside caller's event i that
// only Trail may write: one of Trail's own records (its action's catalog
// sources name Trail), or an actor of type api_key (Trail's credential,
// set by the server for its audited reads). trail validate reports them
// with it.
func Refuse(actions trail.ActionResolver, i int, ev *trail.Event) []trail.FieldError {
	var fe []trail.FieldError
	if def, ok := actions.Resolve(ev.Action); ok && def.TrailRecord() {
		fe = append(fe, trail.FieldError{Path: trail.PathIndex("", i) + ".action",
			Message: def.Name + " is recorded by Trail itself (retention, legal holds, erasure), never appended by a caller"})
	}
	if ev.Actor.Type == trail.ActorAPIKey {
		fe = append(fe, trail.FieldError{Path: trail.PathIndex("", i) + ".actor.type",
			Message: "api_key actors are Trail's own (the records of its API keys' reads); record an app's callers as service or user"})
	}
	return fe
}

func (p *Pipeline) refuse(i int, ev *trail.Event) []trail.FieldError {
	if p.c.Validator.Actions == nil {
		return Refuse(noActions{}, i, ev)
	}
	return Refuse(p.c.Validator.Actions, i, ev)
}

type noActions struct{}

func (noActions) Resolve(string) (*trail.Action, bool) { return nil, false }

// outside returns the field error of an event that happened at a time the
// store cannot hold, or nil.
func (p *Pipeline) outside(i int, ev *trail.Event) *trail.FieldError {
	if p.within(ev.OccurredAt) {
		return nil
	}
	return &trail.FieldError{Path: trail.PathIndex("", i) + ".occurred_at",
		Message: fmt.Sprintf("outside the times the store holds (%s to %s)", p.c.MinTime.Format(time.DateOnly), p.c.MaxTime.Format(time.DateOnly))}
}

func (p *Pipeline) within(t time.Time) bool {
	return (p.c.MinTime.IsZero() || !t.Before(p.c.MinTime)) && (p.c.MaxTime.IsZero() || t.Before(p.c.MaxTime))
}

// Replay answers a batch whose key the store found with fingerprint: nil
// when it is the same batch (the store returns the first append's events),
// ECONFLICT when the key came with another batch.
func (b *Batch) Replay(fingerprint []byte) error {
	if !bytes.Equal(fingerprint, b.Fingerprint[:]) {
		return trail.Errorf(trail.ECONFLICT, "idempotency key was used before with a different batch")
	}
	return nil
}

// Head is a tenant's position in its log during one commit: its last seq,
// that event's RecordedAt, and its tree (nil without trees).
type Head struct {
	Tenant     string
	Seq        uint64
	RecordedAt time.Time
	Tree       *tlog.Tree
	start      uint64 // Seq when the head was loaded
}

// NewHead returns tenant's head as a store loaded it under its lock: seq
// and recordedAt from the head it keeps, tree continued from the peaks it
// stored (nil without trees), lastRow the highest seq of its rows and
// latest its newest checkpoint (nil when none). It refuses a head that does
// not match the latest checkpoint (tlog.CheckHead): a row deleted or forged
// behind the store's back would otherwise be built into the tree and
// covered by the next checkpoint signed.
func NewHead(tenant string, seq uint64, recordedAt time.Time, tree *tlog.Tree, lastRow uint64, latest []byte) (*Head, error) {
	if tree != nil {
		if err := tlog.CheckHead(tenant, lastRow, tree, latest); err != nil {
			return nil, err
		}
	}
	return &Head{Tenant: tenant, Seq: seq, RecordedAt: recordedAt, Tree: tree, start: seq}, nil
}

// Clone returns a copy of h that moves on its own, for a store that may
// have to undo a sequenced batch.
func (h *Head) Clone() *Head {
	c := *h
	if h.Tree != nil {
		c.Tree = h.Tree.Clone()
	}
	return &c
}

// Moved reports whether batches were sequenced since the head was loaded:
// a checkpoint is due.
func (h *Head) Moved() bool { return h.Seq != h.start }

// Row is one event as a store writes it: every value of its row and its
// target rows, derived from the event in one place.
type Row struct {
	Event  *trail.Event // final: Seq and RecordedAt set
	ID     [16]byte     // Event.ID as bytes
	Body   []byte       // the canonical bytes: what the leaf hashes
	Hashes []byte       // the leaf hash, then each tree node it completed (empty without trees)
	Index  trail.Index  // the columns queries use, and the target rows
}

// Sequence gives b's events the seqs after h, clamps their RecordedAt so it
// never runs behind the event before, encodes them, appends them to h's
// tree and moves h past them. It fails (EINVALID for an event that does
// not encode) before h moves: a batch that fails leaves nothing to undo.
// maxSeq bounds the tenant's log (0: none).
func (h *Head) Sequence(b *Batch, maxSeq uint64) ([]Row, error) {
	if maxSeq > 0 && h.Seq+uint64(len(b.Events)) > maxSeq {
		return nil, trail.Errorf(trail.EINTERNAL, "tenant %s is full (%d events)", h.Tenant, maxSeq)
	}
	rows := make([]Row, len(b.Events))
	seq, recorded := h.Seq, h.RecordedAt
	for i, ev := range b.Events {
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
			return nil, trail.Errorf(trail.EINTERNAL, "event id %q is not a UUID", ev.ID)
		}
		rows[i] = Row{Event: ev, ID: id, Body: body, Index: trail.IndexOf(ev)}
	}
	for i := range rows {
		if h.Tree != nil {
			rows[i].Hashes = h.Tree.Append(rows[i].Body)
		} else {
			rows[i].Hashes = []byte{} // not nil: a SQL store would write NULL
		}
	}
	h.Seq, h.RecordedAt = seq, recorded
	return rows, nil
}

// Sign returns the signed checkpoint of h's tree: the note a store writes
// at the end of the commit, in its transaction. It returns nil without
// trees.
func (p *Pipeline) Sign(h *Head) ([]byte, error) {
	if h.Tree == nil || p.c.NoTree {
		return nil, nil
	}
	return p.c.Signer.Sign(h.Tenant, h.Tree.Size(), h.Tree.Root())
}

// Result returns the answer to an append of rows: the events as stored,
// copies the caller may keep. (The Validator keeps prepared events in the
// form their canonical bytes decode to, so they are exactly what reads
// return, with no decoding of what was stored.)
func Result(rows []Row) *trail.AppendResult {
	out := make([]*trail.Event, len(rows))
	for i, r := range rows {
		out[i] = r.Event.Clone()
	}
	return &trail.AppendResult{Events: out}
}

// PruneCheck checks the rows a prune clears, which the store reads under
// its lock and hands over in seq order: each seq must be there, not pruned
// already, and not itself a purge record.
type PruneCheck struct {
	tenant string
	seqs   []uint64
	next   int
}

// CheckPrune starts the check of b's prune, b being sequenced after h (its
// record has h's last seq). It refuses at once a seq at or past the
// record.
func (b *Batch) CheckPrune(h *Head) (*PruneCheck, error) {
	for _, s := range b.Prune {
		if s >= h.Seq {
			return nil, trail.Errorf(trail.EINVALID, "tenant %s has no event at seq %d to prune", b.Tenant, s)
		}
	}
	return &PruneCheck{tenant: b.Tenant, seqs: b.Prune}, nil
}

// Row checks the next row read: the event at seq, pruned already or not,
// of action.
func (c *PruneCheck) Row(seq uint64, pruned bool, action string) error {
	switch {
	case c.next >= len(c.seqs) || seq != c.seqs[c.next]:
		return c.missing()
	case pruned:
		return trail.Errorf(trail.EINVALID, "the event at seq %d is pruned already", seq)
	case action == tlog.PrunedAction:
		return trail.Errorf(trail.EINVALID, "the event at seq %d is an %s record, the proof of a purge: it is never pruned", seq, tlog.PrunedAction)
	}
	c.next++
	return nil
}

// Done returns an error unless every seq was read.
func (c *PruneCheck) Done() error {
	if c.next < len(c.seqs) {
		return c.missing()
	}
	return nil
}

func (c *PruneCheck) missing() error {
	return trail.Errorf(trail.EINVALID, "tenant %s has no event at seq %d to prune", c.tenant, c.seqs[c.next])
}

// PrunedTargets returns the target rows of a pruned event, from its stored
// bytes: the rows to delete with its payload, derived as Sequence derived
// them.
func PrunedTargets(seq uint64, body []byte) ([]trail.Target, error) {
	ev, err := trail.UnmarshalCanonical(body)
	if err != nil {
		return nil, trail.Errorf(trail.EINTERNAL, "the event at seq %d does not decode: %v", seq, err)
	}
	return trail.IndexOf(ev).Targets, nil
}
