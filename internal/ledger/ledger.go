// Package ledger is Trail's one append pipeline. Every store (memory,
// sqlite, postgres) embeds a Log, so its Append and AppendOwn are the
// pipeline's, and gives it a Backend: what is the store's own, its locking
// (SQLite's single writer with group commit, PostgreSQL's head row FOR
// UPDATE, memory's mutex) and its I/O (rows, statements). The pipeline
// calls the backend; the backend never calls the pipeline.
//
// The path of a batch, in order (Log.Append, Log.AppendOwn):
//
//  1. Prepare, outside any lock, in the caller's goroutine. The batch is
//     fingerprinted as the caller sent it; validated and redacted
//     (trail.Validator.PrepareBatch); the server's client address filled in
//     (after the fingerprint, so a retry through another address is the
//     same batch); Trail's own records and api_key actors refused unless
//     the batch is Own; its times held to what the store can keep; its
//     personal data sealed. The result is a Batch.
//  2. Sequence, under the store's lock on the tenant (Backend.Begin): the
//     tenant's head (Tx.Head) is checked against its latest checkpoint; a
//     key seen before (Tx.Earlier) is answered as the first append was; a
//     prune's rows (Tx.PruneRows) are checked; each event gets its seq, a
//     recorded_at that never runs backwards, its canonical bytes, its tree
//     hashes and its index columns (trail.IndexOf), all in one place.
//  3. Write and checkpoint: the rows go to the store (Tx.Write, Tx.Prune)
//     and the transaction commits with the tenant's new tree head, signed
//     (Tx.Commit with a Checkpoint).
//
// Trail's own records (the actions whose catalog sources name Trail: a
// purge, a legal hold placed or released, an erasure; and its audited
// reads, whose actor is an API key) reach a store only through Writer,
// whose Own batches no package outside this module can make.
package ledger

import (
	"context"
	"errors"
	"fmt"
	"github.com/trailaudit/trail/internal/par"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/tlog"
)

// Writer is the path of Trail's own records into a store. Every store
// implements it beside trail.Store (its Log does); Trail's services
// (retention, legal holds, erasure, the server's audited reads) are handed
// it when the deployment is wired. Its argument is an Own, which only this
// module's packages can make: an outside caller has Append alone.
//
// AppendOwn stores o as Append stores a batch (same seqs, tree hashes and
// checkpoint). A prune (o made by Prune) removes, in the same transaction
// as its record, the stored bytes of each of the tenant's events at the
// seqs (and the copies of their fields in indexed columns and target rows)
// while keeping their tree hashes; it refuses (EINVALID, storing nothing) a
// seq the tenant does not hold, one pruned already, and one of an
// audit_log_pruned record. Reads of a pruned event return ENOTFOUND (Get,
// GetSeq) or skip it (Query, Scan); ScanLeaves returns its row with a nil
// Body.
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

// Config is what a store's log needs, fixed when the store opens.
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
	// MaxBatch bounds how many events one outside Append may carry (0:
	// no bound); MaxSeq bounds a tenant's log (0: none).
	MaxBatch int
	MaxSeq   uint64
	// NoTree appends without a tree or checkpoints: benchmarks of the
	// storage alone, never a real store.
	NoTree bool
}

// Log is a store's append path: the pipeline, driving the store's Backend.
// A store embeds it, so its Append and AppendOwn are these. It is safe for
// concurrent use.
type Log struct {
	c  Config
	be Backend
}

// New returns the log c describes, writing through be.
func New(c Config, be Backend) (*Log, error) {
	if c.Validator == nil {
		return nil, fmt.Errorf("%s: Options.Validator is required", c.Store)
	}
	if be == nil {
		return nil, fmt.Errorf("%s: no backend", c.Store)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return &Log{c: c, be: be}, nil
}

// Batch is a prepared append: what the pipeline writes under the store's
// lock.
type Batch struct {
	Tenant string
	// Events are prepared: validated, redacted, sealed, with ID,
	// RecordedAt and OccurredAt; sequencing gives them their Seq.
	Events []*trail.Event
	// Key is the idempotency key ("" for none) and Fingerprint the digest
	// of the batch as the caller sent it.
	Key         string
	Fingerprint [32]byte
	// Prune holds the seqs this batch prunes, sorted, when it is a prune:
	// its one event is their audit_log_pruned record. Nil otherwise.
	Prune []uint64
}

// Append stores an outside caller's batch (trail.Store): Trail's own
// records and api_key actors in it are refused.
func (l *Log) Append(ctx context.Context, tenant string, events []*trail.Event, opts trail.AppendOptions) (*trail.AppendResult, error) {
	if l.c.MaxBatch > 0 && len(events) > l.c.MaxBatch {
		return nil, trail.Invalid(fmt.Sprintf("batch of %d events is larger than the store takes at once (%d)", len(events), l.c.MaxBatch))
	}
	b, err := l.prepare(ctx, tenant, events, opts, false)
	if err != nil {
		return nil, err
	}
	return l.commit(ctx, b)
}

// AppendOwn stores a batch of Trail's own records, or a prune with its
// record (Writer).
func (l *Log) AppendOwn(ctx context.Context, tenant string, o Own) (*trail.AppendResult, error) {
	b, err := l.own(ctx, tenant, o)
	if err != nil {
		return nil, err
	}
	return l.commit(ctx, b)
}

func (l *Log) own(ctx context.Context, tenant string, o Own) (*Batch, error) {
	if len(o.events) == 0 {
		return nil, trail.Invalid("empty batch: nothing to append")
	}
	if o.pruning {
		if _, err := tlog.PruneSeqs(o.events[0], o.prune); err != nil { // before the work of preparing
			return nil, err
		}
	}
	b, err := l.prepare(ctx, tenant, o.events, trail.AppendOptions{}, true)
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

func (p *Log) prepare(ctx context.Context, tenant string, events []*trail.Event, opts trail.AppendOptions, own bool) (*Batch, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if p.c.Signer == nil && !p.c.NoTree {
		return nil, trail.Errorf(trail.EINTERNAL, "%s: opened without a signer, read-only", p.c.Store)
	}
	if f := keyError(opts.IdempotencyKey); f != nil {
		return nil, trail.Invalid("bad append options", *f)
	}
	if !own && tenant == trail.OperatorTenant {
		return nil, trail.Invalid("event refused", trail.FieldError{Path: "tenant",
			Message: "the operators' log holds only Trail's own records of what operators do"})
	}
	if !own && tenant == trail.RootTenant {
		return nil, trail.Invalid("event refused", trail.FieldError{Path: "tenant",
			Message: "the root log holds only Trail's own entries of the tenants' checkpoints"})
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
	prepared, err := p.validate(tenant, events, opts.Policy, p.c.Now())
	if err != nil {
		return nil, err
	}
	var fe []trail.FieldError
	forged := false
	for i, ev := range prepared {
		if !own {
			refused := p.refuse(i, ev)
			fe, forged = append(fe, refused...), forged || len(refused) > 0
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
		err := trail.Invalid("event refused", fe...)
		if forged {
			err.Err = ErrForgery
		}
		return nil, err
	}
	if err := p.c.Validator.Seal(ctx, tenant, prepared); err != nil {
		return nil, err
	}
	b.Events = prepared
	return b, nil
}

// validate is Validator.PrepareBatch with the batch spread over the cores
// (par.Spread), every chunk prepared at the same now. A batch with an event
// refused is prepared again whole, in one call: its refusal is exactly
// PrepareBatch's (every field error, indexed in the batch, worded for a
// batch or a single event), and a refused batch costs the caller, not the
// store.
func (p *Log) validate(tenant string, events []*trail.Event, pol trail.Policy, now time.Time) ([]*trail.Event, error) {
	out := make([]*trail.Event, len(events))
	err := par.Spread(len(events), func(lo, hi int) error {
		part, err := p.c.Validator.PrepareBatch(tenant, events[lo:hi], pol, now)
		copy(out[lo:hi], part)
		return err
	})
	if err != nil {
		return p.c.Validator.PrepareBatch(tenant, events, pol, now)
	}
	return out, nil
}

// MaxIdempotencyKey is the longest idempotency key a store takes, in
// bytes. Keys are visible ASCII (0x21 to 0x7E): a client's random token,
// never a payload.
const MaxIdempotencyKey = 255

// keyError returns the field error of an idempotency key that is longer
// than MaxIdempotencyKey or holds a byte other than visible ASCII, or nil.
func keyError(key string) *trail.FieldError {
	if len(key) > MaxIdempotencyKey {
		return &trail.FieldError{Path: "idempotency_key", Message: fmt.Sprintf("%d bytes: at most %d", len(key), MaxIdempotencyKey)}
	}
	for i := range len(key) {
		if c := key[i]; c < 0x21 || c > 0x7e {
			return &trail.FieldError{Path: "idempotency_key", Message: fmt.Sprintf("byte %d is not visible ASCII (0x21 to 0x7E)", i)}
		}
	}
	return nil
}

// ErrForgery is wrapped by the error of an append refused because an
// outside caller's batch held what only Trail may write (Refuse): the
// server counts these as refused forgeries (detect.Forgeries).
var ErrForgery = errors.New("ledger: the batch holds records only Trail writes")

// Refuse returns the field errors of an outside caller's event i that
// only Trail may write: one of Trail's own records (its action's catalog
// sources name Trail), or an actor of type api_key or operator (Trail's
// credentials, set by the server for what they do). trail validate
// reports them with it.
func Refuse(actions trail.ActionResolver, i int, ev *trail.Event) []trail.FieldError {
	var fe []trail.FieldError
	for _, f := range Forged(actions, ev) {
		if typ, ok := strings.CutPrefix(f, forgedActorPrefix); ok {
			fe = append(fe, trail.FieldError{Path: trail.PathIndex("", i) + ".actor.type",
				Message: typ + " actors are Trail's own (the records of what its API keys and operators do); record an app's callers as service or user"})
			continue
		}
		fe = append(fe, trail.FieldError{Path: trail.PathIndex("", i) + ".action",
			Message: f + " is recorded by Trail itself (retention, legal holds, erasure), never appended by a caller"})
	}
	return fe
}

// forgedActorPrefix begins what Forged names for an actor only Trail
// writes: ForgedActor, or "actor.type:operator".
const forgedActorPrefix = "actor.type:"

// ForgedActor is what Forged names for an api_key actor.
const ForgedActor = forgedActorPrefix + string(trail.ActorAPIKey)

// Forged names what of ev only Trail may write: its action when that is
// one of Trail's own records, and "actor.type:" and the type for an
// api_key (ForgedActor) or operator actor.
func Forged(actions trail.ActionResolver, ev *trail.Event) []string {
	var out []string
	if def, ok := actions.Resolve(ev.Action); ok && def.TrailRecord() {
		out = append(out, def.Name)
	}
	if ev.Actor.Type == trail.ActorAPIKey || ev.Actor.Type == trail.ActorOperator {
		out = append(out, forgedActorPrefix+string(ev.Actor.Type))
	}
	return out
}

// refuse is Refuse under the store's catalog. A Validator without one
// still knows Trail's own actions: they are refused by the built-in
// catalog's names, so a bare Validator is no way around the refusal.
func (p *Log) refuse(i int, ev *trail.Event) []trail.FieldError {
	if p.c.Validator.Actions == nil {
		return Refuse(catalog.Default(), i, ev)
	}
	return Refuse(p.c.Validator.Actions, i, ev)
}

// outside returns the field error of an event that happened at a time the
// store cannot hold, or nil.
func (p *Log) outside(i int, ev *trail.Event) *trail.FieldError {
	if p.within(ev.OccurredAt) {
		return nil
	}
	return &trail.FieldError{Path: trail.PathIndex("", i) + ".occurred_at",
		Message: fmt.Sprintf("outside the times the store holds (%s to %s)", p.c.MinTime.Format(time.DateOnly), p.c.MaxTime.Format(time.DateOnly))}
}

func (p *Log) within(t time.Time) bool {
	return (p.c.MinTime.IsZero() || !t.Before(p.c.MinTime)) && (p.c.MaxTime.IsZero() || t.Before(p.c.MaxTime))
}
