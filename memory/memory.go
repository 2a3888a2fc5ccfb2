// Package memory is an in-memory trail.Store: everything the contract asks
// except durability. It backs tests, examples and tools such as
// `trail validate` that need a store for a moment and nothing on disk.
//
// Start with New. Its Append and AppendOwn are Trail's one pipeline
// (internal/ledger), writing under the store's mutex. Subject keys (package
// erasure) live apart from the Store, in a SubjectKeys from
// NewSubjectKeys.
package memory

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/ledger"
	"github.com/trailaudit/trail/tlog"
)

var (
	_ trail.Store    = (*Store)(nil)
	_ ledger.Writer  = (*Store)(nil)
	_ ledger.Backend = (*backend)(nil)
)

// Store keeps every tenant's events in memory. It is safe for concurrent use.
type Store struct {
	*appender // Append and AppendOwn: the pipeline, writing through backend
	signer    *tlog.Signer
	now       func() time.Time

	mu      sync.RWMutex
	closed  bool
	tenants map[string]*tenantLog
	kr      keyring                         // API keys and saved actions (keys.go)
	cursors map[cursorKey]uint64            // consumers' positions (cursors.go)
	holds   holds                           // legal holds (lifecycle.go)
	sinks   []*trail.SinkConfig             // sinks' configurations, in the order put (sinks.go)
	rules   map[ruleKey]*trail.RuleFile     // tenants' own detection rules (rules.go)
	ui      sessions                        // the web UI's sessions (sessions.go)
	cosigs  map[cosigKey]*trail.Cosignature // witnesses' cosignatures (cosignatures.go)
	leader  chan struct{}                   // holds one token while an Elector's lease is held (elector.go)
}

type appender = ledger.Log

type tenantLog struct {
	head   *ledger.Head
	events []*trail.Event // events[i].Seq == i+1; nil once pruned
	leaves []trail.Leaf   // leaves[i] is events[i] as the log holds it
	notes  [][]byte       // signed checkpoints, one per append
	byID   map[string]*trail.Event
	idem   map[string]idemEntry
}

type idemEntry struct {
	fingerprint [32]byte
	first, n    int // the events the original append stored
}

// New returns an empty store that prepares events with v and signs its
// checkpoints with signer; a nil signer means a fresh key that lives as long
// as the store (Signer returns it).
func New(v *trail.Validator, signer *tlog.Signer) *Store {
	if signer == nil {
		skey, _, err := tlog.GenerateKey("memory")
		if err == nil {
			signer, err = tlog.NewSigner(skey)
		}
		if err != nil {
			panic(err) // only a broken crypto/rand fails here
		}
	}
	s := &Store{signer: signer, now: time.Now, tenants: map[string]*tenantLog{}, leader: make(chan struct{}, 1)}
	l, err := ledger.New(ledger.Config{Store: "memory", Validator: v, Signer: signer, Now: func() time.Time { return s.now() }}, (*backend)(s))
	if err != nil {
		panic(err) // a nil Validator
	}
	s.appender = l
	return s
}

// Signer returns the key that signs the store's checkpoints.
func (s *Store) Signer() *tlog.Signer { return s.signer }

// SetClock replaces the store's clock, for tests that need fixed times.
func (s *Store) SetClock(now func() time.Time) { s.now = now }

// backend is the store as the pipeline writes to it: a batch holds the
// store's lock from Begin to Commit, and what it writes waits in the tx
// until Commit, so a batch that fails leaves nothing.
type backend Store

func (be *backend) Begin(ctx context.Context, b *ledger.Batch) (ledger.Tx, error) {
	s := (*Store)(be)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, trail.Errorf(trail.EINTERNAL, "store is closed")
	}
	return &tx{s: s, b: b, tl: s.tenants[b.Tenant]}, nil
}

// tx is one batch's write, under Store.mu.
type tx struct {
	s     *Store
	b     *ledger.Batch
	tl    *tenantLog // nil: a new tenant
	rows  []ledger.Row
	next  *ledger.Head
	prune []uint64
}

func (t *tx) Head(ctx context.Context) (ledger.Stored, error) {
	if t.tl == nil {
		return ledger.Stored{}, nil
	}
	return ledger.Stored{Kept: t.tl.head}, nil
}

func (t *tx) Earlier(ctx context.Context) ([]byte, []*trail.Event, error) {
	if t.tl == nil {
		return nil, nil, nil
	}
	e, ok := t.tl.idem[t.b.Key]
	if !ok {
		return nil, nil, nil
	}
	return e.fingerprint[:], cloneAll(t.tl.events[e.first : e.first+e.n]), nil
}

func (t *tx) PruneRows(ctx context.Context, seqs []uint64) ([]ledger.PruneRow, error) {
	var out []ledger.PruneRow
	for _, seq := range seqs {
		if t.tl == nil || seq < 1 || seq > uint64(len(t.tl.events)) {
			continue
		}
		r := ledger.PruneRow{Seq: seq, Pruned: t.tl.events[seq-1] == nil, Body: t.tl.leaves[seq-1].Body}
		if !r.Pruned {
			r.Action = t.tl.events[seq-1].Action
		}
		out = append(out, r)
	}
	return out, nil
}

func (t *tx) Write(ctx context.Context, rows *ledger.Rows) error {
	all, err := rows.All()
	if err != nil {
		return err
	}
	t.rows, t.next = all, rows.Head()
	return nil
}

func (t *tx) Prune(ctx context.Context, seqs []uint64, by uint64, targets []ledger.PrunedTarget) error {
	t.prune = seqs // memory keeps no targets rows: Query matches the events
	return nil
}

// Commit applies what the batch wrote.
func (t *tx) Commit(ctx context.Context, cp *ledger.Checkpoint) error {
	defer t.s.mu.Unlock()
	if t.next == nil { // a replay
		return nil
	}
	var note []byte
	if cp != nil {
		var err error
		if note, err = cp.Note(); err != nil {
			return err
		}
	}
	tl := t.tl
	if tl == nil {
		tl = &tenantLog{byID: map[string]*trail.Event{}, idem: map[string]idemEntry{}}
		t.s.tenants[t.b.Tenant] = tl
	}
	first := len(tl.events)
	for _, r := range t.rows {
		ev := r.Event.Clone() // r.Event is the caller's answer (Tx.Commit)
		tl.events = append(tl.events, ev)
		tl.leaves = append(tl.leaves, trail.Leaf{Seq: r.Event.Seq, Body: r.Body, Hashes: r.Hashes})
		tl.byID[ev.ID] = ev
	}
	tl.head = t.next
	tl.notes = append(tl.notes, note)
	if t.b.Key != "" {
		tl.idem[t.b.Key] = idemEntry{fingerprint: t.b.Fingerprint, first: first, n: len(t.rows)}
	}
	tl.prune(t.prune)
	return nil
}

func (t *tx) Rollback() { t.s.mu.Unlock() }

// Get returns one event by id.
func (s *Store) Get(ctx context.Context, tenant, id string) (*trail.Event, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if tl := s.tenants[tenant]; tl != nil {
		if ev, ok := tl.byID[id]; ok {
			return ev.Clone(), nil
		}
	}
	return nil, trail.Errorf(trail.ENOTFOUND, "no event %q", id)
}

// GetSeq returns the event at seq.
func (s *Store) GetSeq(ctx context.Context, tenant string, seq uint64) (*trail.Event, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if tl := s.tenants[tenant]; tl != nil && seq >= 1 && seq <= uint64(len(tl.events)) && tl.events[seq-1] != nil {
		return tl.events[seq-1].Clone(), nil
	}
	return nil, trail.Errorf(trail.ENOTFOUND, "no event at seq %d", seq)
}

// Count returns how many events match q.
func (s *Store) Count(ctx context.Context, q trail.Query) (int64, error) {
	if err := q.Check(); err != nil {
		return 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var n int64
	if tl := s.tenants[q.Tenant]; tl != nil {
		match := tl.matcher(&q)
		for _, ev := range tl.events {
			if ev != nil && match(ev) { // nil: pruned
				n++
			}
		}
	}
	return n, nil
}

// matcher returns q's filter over tl, OpenAttempts included.
func (tl *tenantLog) matcher(q *trail.Query) func(*trail.Event) bool {
	if !q.OpenAttempts {
		return q.Matches
	}
	closed := map[string]bool{}
	for _, ev := range tl.events {
		if ev != nil && ev.CorrelationID != "" && ev.Outcome != trail.OutcomeAttempted {
			closed[ev.CorrelationID] = true
		}
	}
	return func(ev *trail.Event) bool { return q.Matches(ev) && trail.OpenAttempt(ev, closed) }
}

// Scan calls fn for each event with from <= seq < to. The lock is not held
// while fn runs, so fn may append.
func (s *Store) Scan(ctx context.Context, tenant string, from, to uint64, fn func(*trail.Event) error) error {
	s.mu.RLock()
	var evs []*trail.Event
	if tl := s.tenants[tenant]; tl != nil {
		evs = tl.events // events are never changed once appended
	}
	s.mu.RUnlock()
	from, to = seqRange(from, to, len(evs))
	for seq := from; seq < to; seq++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if evs[seq-1] == nil { // pruned
			continue
		}
		if err := fn(evs[seq-1].Clone()); err != nil {
			return err
		}
	}
	return nil
}

// Query returns one page of events matching q, in seq order.
func (s *Store) Query(ctx context.Context, q trail.Query) (*trail.Page, error) {
	limit, after, err := q.Paging()
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	tl := s.tenants[q.Tenant]
	page := &trail.Page{}
	if tl == nil {
		return page, nil
	}
	n := uint64(len(tl.events))
	var seq, step uint64 = 1, 1
	if q.Descending {
		seq, step = n, ^uint64(0) // step -1
		if after != 0 && after-1 < seq {
			seq = after - 1
		}
	} else if after != 0 {
		seq = after + 1
	}
	match := tl.matcher(&q)
	for ; seq >= 1 && seq <= n; seq += step {
		ev := tl.events[seq-1]
		if ev == nil || !match(ev) { // nil: pruned
			continue
		}
		if len(page.Events) == limit {
			page.Next = trail.EncodeCursor(page.Events[limit-1].Seq, q.Descending)
			break
		}
		page.Events = append(page.Events, ev.Clone())
	}
	return page, nil
}

// Close marks the store closed; later appends fail.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

func cloneAll(evs []*trail.Event) []*trail.Event {
	out := make([]*trail.Event, 0, len(evs))
	for _, ev := range evs {
		if ev != nil { // pruned
			out = append(out, ev.Clone())
		}
	}
	return out
}

// Checkpoint returns tenant's latest checkpoint.
func (s *Store) Checkpoint(ctx context.Context, tenant string) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if tl := s.tenants[tenant]; tl != nil && len(tl.notes) > 0 {
		return tl.notes[len(tl.notes)-1], nil
	}
	return nil, trail.Errorf(trail.ENOTFOUND, "tenant %s has no checkpoint", tenant)
}

var _ trail.TenantLister = (*Store)(nil)

// Tenants returns the name of every log that holds an event, in byte
// order.
func (s *Store) Tenants(ctx context.Context) ([]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []string{}
	for name, tl := range s.tenants {
		if len(tl.notes) > 0 {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Checkpoints calls fn with each of tenant's checkpoints in order.
func (s *Store) Checkpoints(ctx context.Context, tenant string, fn func(note []byte) error) error {
	s.mu.RLock()
	var notes [][]byte
	if tl := s.tenants[tenant]; tl != nil {
		notes = tl.notes
	}
	s.mu.RUnlock()
	for _, n := range notes {
		if err := fn(n); err != nil {
			return err
		}
	}
	return nil
}

// TreeHashes returns the hashes of tree nodes.
func (s *Store) TreeHashes(ctx context.Context, tenant string, nodes []trail.TreeNode) ([][]byte, error) {
	s.mu.RLock()
	var leaves []trail.Leaf
	if tl := s.tenants[tenant]; tl != nil {
		leaves = tl.leaves
	}
	s.mu.RUnlock()
	return tlog.ReadTreeHashes(nodes, func(seqs []uint64) ([][]byte, error) {
		out := make([][]byte, len(seqs))
		for i, seq := range seqs {
			if seq >= 1 && seq <= uint64(len(leaves)) {
				out[i] = leaves[seq-1].Hashes
			}
		}
		return out, nil
	})
}

// ScanLeaves calls fn for each leaf with from <= seq < to.
func (s *Store) ScanLeaves(ctx context.Context, tenant string, from, to uint64, fn func(trail.Leaf) error) error {
	s.mu.RLock()
	var leaves []trail.Leaf
	if tl := s.tenants[tenant]; tl != nil {
		leaves = tl.leaves // leaves are never changed once appended
	}
	s.mu.RUnlock()
	from, to = seqRange(from, to, len(leaves))
	for seq := from; seq < to; seq++ {
		if err := fn(leaves[seq-1]); err != nil {
			return err
		}
	}
	return nil
}

// seqRange clamps a scan's [from, to) to a log of n events (to == 0: all).
func seqRange(from, to uint64, n int) (uint64, uint64) {
	if to == 0 || to > uint64(n)+1 {
		to = uint64(n) + 1
	}
	return max(from, 1), to
}

// ScanIndex calls fn with the index values of each event with from <= seq
// < to: memory keeps none apart from the events, so they are what the
// events give (a pruned event's are empty).
func (s *Store) ScanIndex(ctx context.Context, tenant string, from, to uint64, fn func(trail.IndexRow) error) error {
	s.mu.RLock()
	var evs []*trail.Event
	if tl := s.tenants[tenant]; tl != nil {
		evs = tl.events // never changed once appended (prune copies it)
	}
	s.mu.RUnlock()
	from, to = seqRange(from, to, len(evs))
	for seq := from; seq < to; seq++ {
		r := trail.IndexRow{Seq: seq, Pruned: evs[seq-1] == nil}
		if !r.Pruned {
			r.Index = trail.IndexOf(evs[seq-1])
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// SizeRecords returns the size of tenant's head and the last seq its
// idempotency keys name.
func (s *Store) SizeRecords(ctx context.Context, tenant string) ([]trail.SizeRecord, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	tl := s.tenants[tenant]
	if tl == nil {
		return nil, nil
	}
	var keys uint64
	for _, e := range tl.idem {
		keys = max(keys, uint64(e.first+e.n))
	}
	return trail.HeadSizes("the head", tl.head.Seq, keys), nil
}
