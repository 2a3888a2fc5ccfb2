package witness

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/internal/ledger"
	"github.com/trailaudit/trail/tlog"
	"github.com/transparency-dev/formats/log"
)

// The root log (trail.RootTenant) is the one log Trail submits to
// witnesses. Its events, root_entry records of Trail's own, are the
// tenants' checkpoints: each names a tenant's log by OriginHash of its
// origin (its target, of type RootTargetType), and holds the checkpoint's
// size, root hash and signature lines, so that with the origin, which the
// tenant knows and the witnesses never see, the tenant's signed checkpoint
// is made again byte for byte. A tenant's checkpoint is witnessed by its
// entry's inclusion in a root checkpoint a quorum cosigned (Policy.Witnessed
// builds that chain, Policy.VerifyTenant checks it).

// RootActor is the actor of every root_entry record.
var RootActor = trail.Actor{Type: trail.ActorSystem, ID: "trail-root", Name: "Trail's root log"}

// RootTargetType is the type of a root_entry's target: the tenant's log,
// its ID the OriginHash of the log's origin.
const RootTargetType = "log"

// OriginHash names a log in the root log: the hex SHA-256 of its
// checkpoints' origin, which says nothing of the tenant to whoever reads
// the root log without knowing the tenant's name.
func OriginHash(origin string) string {
	h := sha256.Sum256([]byte(origin))
	return hex.EncodeToString(h[:])
}

// rootEntry returns the root_entry record of a tenant's signed checkpoint.
func rootEntry(note []byte) (*trail.Event, *tlog.Checkpoint, error) {
	cp, err := tlog.ParseUnverified(note)
	if err != nil {
		return nil, nil, err
	}
	_, sigs, ok := strings.Cut(string(note), "\n\n")
	if !ok || sigs == "" {
		return nil, nil, trail.Errorf(trail.EINVALID, "witness: root entry: the checkpoint is not a signed note")
	}
	return &trail.Event{Action: catalog.RootEntry, Actor: RootActor,
		Targets: []trail.Target{{Type: RootTargetType, ID: OriginHash(cp.Origin)}},
		Context: map[string]any{"size": int64(cp.Size), "root_hash": base64.StdEncoding.EncodeToString(cp.Root), "signatures": sigs}}, cp, nil
}

// entryOf is what a root entry's stored bytes say.
type entryOf struct {
	seq        uint64
	originHash string
	size       uint64
	root       []byte
	signatures string
}

// parseEntry decodes a root entry's stored bytes.
func parseEntry(body []byte) (*entryOf, error) {
	ev, err := trail.UnmarshalCanonical(body)
	if err != nil {
		return nil, fmt.Errorf("not an event: %w", err)
	}
	if ev.Action != catalog.RootEntry || len(ev.Targets) != 1 || ev.Targets[0].Type != RootTargetType {
		return nil, fmt.Errorf("not a root entry (action %q)", ev.Action)
	}
	e := &entryOf{seq: ev.Seq, originHash: ev.Targets[0].ID}
	e.size, err = strconv.ParseUint(fmt.Sprint(ev.Context["size"]), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("its size %v is not a whole number", ev.Context["size"])
	}
	root, _ := ev.Context["root_hash"].(string)
	if e.root, err = base64.StdEncoding.DecodeString(root); err != nil || len(e.root) != trail.HashSize {
		return nil, fmt.Errorf("its root hash %q is not %d bytes of base64", root, trail.HashSize)
	}
	e.signatures, _ = ev.Context["signatures"].(string)
	return e, nil
}

// note makes the tenant's signed checkpoint of origin again.
func (e *entryOf) note(origin string) []byte {
	text := log.Checkpoint{Origin: origin, Size: e.size, Hash: e.root}.Marshal()
	return append(append(text, '\n'), e.signatures...)
}

// maxEntries bounds the root entries appended in one batch (one commit of
// the root log, with its signed checkpoint), and so the tenants whose
// checkpoints one query reads.
const maxEntries = 2000

// inFlight bounds the chunks of a round read or appended at once: while
// one chunk's batch commits, the next is prepared by the pipeline and the
// one after read, so the round's reads and the pipeline's preparation run
// on the second core beside the store's commit.
const inFlight = 3

// appendRoot appends a root entry for each log (but the root log) whose
// size is not the size of its last entry, in batches, and returns the
// root log's size. The checkpoints of the logs that may have changed (their
// size is not their last entry's, or their origin is not read yet) are
// read maxEntries at a time, with one query (Store.LatestCheckpoints), and
// each chunk's entries appended as one batch through the pipeline, like
// any log's, up to inFlight chunks at once: their order in the root log
// does not matter, as each entry stands alone and names its log. An
// entry's write error is returned, never dropped; the entries of a batch
// that failed are appended by a later round.
func (w *Witnesser) appendRoot(ctx context.Context, sizes map[string]uint64, tenants []string) (uint64, error) {
	if err := w.seedRoot(ctx); err != nil {
		return 0, err
	}
	var changed []string
	w.mu.Lock()
	for _, t := range tenants {
		if h, known := w.hashes[t]; t != trail.RootTenant && (!known || w.entered[h] != sizes[t]) {
			changed = append(changed, t)
		}
	}
	w.mu.Unlock()
	var (
		wg    sync.WaitGroup
		slots = make(chan struct{}, inFlight)
		mu    sync.Mutex // guards size and errs
		size  = sizes[trail.RootTenant]
		errs  []error
	)
	failed := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, err)
	}
	for chunk := range slices.Chunk(changed, maxEntries) {
		slots <- struct{}{}
		mu.Lock()
		stop := len(errs) > 0
		mu.Unlock()
		if stop {
			<-slots
			break
		}
		batch, hashes, entered, err := w.rootBatch(ctx, chunk, sizes)
		if err != nil || len(batch) == 0 {
			<-slots
			if err != nil {
				failed(err)
				break
			}
			continue
		}
		wg.Go(func() {
			defer func() { <-slots }()
			res, err := w.c.Writer.AppendOwn(ctx, trail.RootTenant, ledger.Records(batch...))
			if err != nil {
				failed(fmt.Errorf("witness: append %d entries to the root log: %w", len(batch), err))
				return
			}
			w.mu.Lock()
			for i, cp := range entered {
				w.entered[hashes[i]] = cp.Size
			}
			w.mu.Unlock()
			mu.Lock()
			size = max(size, res.Events[len(res.Events)-1].Seq)
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return 0, errors.Join(errs...)
	}
	return size, nil
}

// rootBatch reads the latest checkpoints of chunk's tenants, with one
// query, and returns the root entries of those not entered at that size,
// with their logs' OriginHashes and checkpoints, in order.
func (w *Witnesser) rootBatch(ctx context.Context, chunk []string, sizes map[string]uint64) ([]*trail.Event, []string, []*tlog.Checkpoint, error) {
	notes, err := w.c.Store.LatestCheckpoints(ctx, chunk)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("witness: read the checkpoints of %d tenants: %w", len(chunk), err)
	}
	var batch []*trail.Event
	var hashes []string
	var entered []*tlog.Checkpoint
	for _, t := range chunk {
		note, ok := notes[t]
		if !ok {
			return nil, nil, nil, trail.Errorf(trail.EINTERNAL, "witness: tenant %s has a log of size %d but no checkpoint", t, sizes[t])
		}
		ev, cp, err := rootEntry(note)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("witness: tenant %s's checkpoint: %w", t, err)
		}
		h := ev.Targets[0].ID
		w.mu.Lock()
		w.hashes[t] = h
		done := w.entered[h] == cp.Size
		w.mu.Unlock()
		if !done {
			batch, hashes, entered = append(batch, ev), append(hashes, h), append(entered, cp)
		}
	}
	return batch, hashes, entered, nil
}

// seedRoot reads the size of each log's last entry from the root log: the
// whole root log the first time this Witnesser runs, and at each later Run
// (another process may have led in between) only the entries after those it
// read before. The root log is append-only, so what was read stays true; a
// later entry of a log supersedes an earlier one.
func (w *Witnesser) seedRoot(ctx context.Context) error {
	w.mu.Lock()
	done, read := w.rootSeeded, w.rootRead
	last := maps.Clone(w.entered)
	w.mu.Unlock()
	if done {
		return nil
	}
	err := w.c.Store.ScanLeaves(ctx, trail.RootTenant, read+1, 0, func(l trail.Leaf) error {
		read = l.Seq
		if len(l.Body) == 0 {
			return nil // pruned: a later entry of the log follows
		}
		e, err := parseEntry(l.Body)
		if err != nil {
			return fmt.Errorf("witness: the root log's seq %d: %w", l.Seq, err)
		}
		last[e.originHash] = max(last[e.originHash], e.size)
		return nil
	})
	if err != nil {
		return fmt.Errorf("witness: read the root log: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for h, n := range w.entered { // entered by this process's rounds meanwhile
		last[h] = max(last[h], n)
	}
	w.entered, w.rootRead, w.rootSeeded = last, read, true
	return nil
}

// RootProof is what proves a tenant's checkpoint witnessed: its entry in
// the root log and the entry's inclusion in a root checkpoint a quorum
// cosigned.
type RootProof struct {
	// Note is the root checkpoint with the witnesses' lines: a signed note
	// of the log's key under the root log's origin.
	Note []byte
	// Seq is the entry's seq in the root log, Entry its stored bytes (the
	// leaf hash is of them), Proof their inclusion in Note's tree.
	Seq   uint64
	Entry []byte
	Proof [][]byte
}

// rootProofJSON is RootProof's JSON form: the notes as text, the entry
// as the JSON it is.
type rootProofJSON struct {
	Checkpoint string          `json:"checkpoint"`
	Seq        uint64          `json:"seq"`
	Entry      json.RawMessage `json:"entry"`
	Proof      [][]byte        `json:"proof"`
}

// MarshalJSON writes r as the API answers it (GET /v1/checkpoint?cosigned=1)
// and trail checkpoint --witnessed prints it: checkpoint (the root note),
// seq, entry (the stored bytes) and proof (base64 hashes).
func (r *RootProof) MarshalJSON() ([]byte, error) {
	return json.Marshal(rootProofJSON{Checkpoint: string(r.Note), Seq: r.Seq, Entry: r.Entry, Proof: r.Proof})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (r *RootProof) UnmarshalJSON(b []byte) error {
	var j rootProofJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*r = RootProof{Note: []byte(j.Checkpoint), Seq: j.Seq, Entry: j.Entry, Proof: j.Proof}
	return nil
}

// tenantWitnessed returns tenant's checkpoint proven by the root log: the
// tenant's last entry in the largest root checkpoint a quorum cosigned,
// with that entry's inclusion proof (tlog.ProveInclusion, checked against
// the root checkpoint's root). ENOTFOUND when no root checkpoint with a
// quorum holds an entry of tenant.
func (p *Policy) tenantWitnessed(ctx context.Context, s Store, tenant string) (*Cosigned, error) {
	root, err := p.logWitnessed(ctx, s, trail.RootTenant)
	if trail.ErrorCode(err) == trail.ENOTFOUND {
		return nil, trail.Errorf(trail.ENOTFOUND, "tenant %s: no checkpoint is cosigned by a quorum of the witnesses (%s) yet: the root log has none", tenant, p)
	}
	if err != nil {
		return nil, err
	}
	rcp, err := tlog.ParseUnverified(root.Note)
	if err != nil {
		return nil, err
	}
	// The tenant's log is named in the root log by its origin, which its
	// checkpoints carry (a log keeps its origin for life, whatever form it
	// was started under). Nothing here is trusted: VerifyTenant checks the
	// chain, the origin included, under the verifier key.
	latest, err := s.Checkpoint(ctx, tenant)
	if err != nil {
		return nil, err
	}
	tcp, err := tlog.ParseUnverified(latest)
	if err != nil {
		return nil, err
	}
	origin := tcp.Origin
	q := trail.Query{Tenant: trail.RootTenant, TargetType: RootTargetType, TargetID: OriginHash(origin), Descending: true, Limit: 100}
	var seq uint64
	for seq == 0 {
		page, err := s.Query(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("witness: find tenant %s's entries in the root log: %w", tenant, err)
		}
		for _, ev := range page.Events {
			if ev.Seq <= root.Size {
				seq = ev.Seq
				break
			}
		}
		if seq == 0 && page.Next == "" {
			return nil, trail.Errorf(trail.ENOTFOUND, "tenant %s: no root checkpoint cosigned by a quorum of the witnesses (%s) holds its log's checkpoint yet", tenant, p)
		}
		q.Cursor = page.Next
	}
	in, err := tlog.ProveInclusion(ctx, s, trail.RootTenant, rcp, seq, rcp.Size)
	if err != nil {
		return nil, fmt.Errorf("witness: tenant %s's entry in the root log: %w", tenant, err)
	}
	e, err := parseEntry(in.Body)
	if err != nil {
		return nil, trail.Errorf(trail.EINTERNAL, "witness: the root log's seq %d: %v", seq, err)
	}
	return &Cosigned{Tenant: tenant, Size: e.size, Note: e.note(origin), Cosignatures: root.Cosignatures,
		Root: &RootProof{Note: root.Note, Seq: seq, Entry: in.Body, Proof: in.Proof}}, nil
}

// BrokenChainError reports a tenant's checkpoint that its root proof does
// not prove witnessed: the entry is not in the root checkpoint, says
// another checkpoint, or the root checkpoint is not cosigned by a quorum.
type BrokenChainError struct {
	Tenant string
	Detail string
}

func (e *BrokenChainError) Error() string {
	return fmt.Sprintf("tenant %s: the checkpoint is not proven witnessed by the root log: %s", e.Tenant, e.Detail)
}

// VerifyTenant checks the chain that makes c, tenant's checkpoint, a
// witnessed one, and returns the tenant's checkpoint: c.Note is signed by
// a key v trusts under tenant's origin; c.Root.Note is signed by it under
// the root log's origin and validly cosigned by a quorum of p's witnesses;
// c.Root.Entry is at c.Root.Seq in that root checkpoint's tree (the
// inclusion proof leads to its root); and the entry names tenant's origin
// (by its OriginHash) and c.Note's size and root hash. It trusts nothing
// else of c: a failure is an error holding a *BrokenChainError, or the
// EINVALID of a checkpoint v does not open.
func (p *Policy) VerifyTenant(v *tlog.Verifier, tenant string, c *Cosigned) (*tlog.Checkpoint, error) {
	broken := func(format string, args ...any) error {
		return &BrokenChainError{Tenant: tenant, Detail: fmt.Sprintf(format, args...)}
	}
	if c == nil || c.Root == nil {
		return nil, broken("no root proof")
	}
	cp, err := v.Open(tenant, c.Note)
	if err != nil {
		return nil, err
	}
	rcp, err := v.Open(trail.RootTenant, c.Root.Note)
	if err != nil {
		return nil, fmt.Errorf("the root checkpoint: %w", err)
	}
	if n, err := p.cosigners(c.Root.Note); err != nil {
		return nil, broken("the root checkpoint: %v", err)
	} else if n < p.Quorum {
		return nil, broken("the root checkpoint is cosigned by %d of the witnesses, the policy wants %d", n, p.Quorum)
	}
	if c.Root.Seq == 0 || c.Root.Seq > rcp.Size {
		return nil, broken("the entry's seq %d is not in the root checkpoint of size %d", c.Root.Seq, rcp.Size)
	}
	if err := tlog.VerifyInclusion(tlog.LeafHash(c.Root.Entry), c.Root.Seq-1, rcp.Size, c.Root.Proof, rcp.Root); err != nil {
		return nil, broken("the entry at seq %d is not in the root checkpoint of size %d: %v", c.Root.Seq, rcp.Size, err)
	}
	e, err := parseEntry(c.Root.Entry)
	switch {
	case err != nil:
		return nil, broken("the entry at seq %d: %v", c.Root.Seq, err)
	case e.seq != c.Root.Seq:
		return nil, broken("the entry at seq %d holds seq %d", c.Root.Seq, e.seq)
	case e.originHash != OriginHash(cp.Origin):
		return nil, broken("the entry at seq %d is of another log than %s", c.Root.Seq, cp.Origin)
	case e.size != cp.Size || !bytes.Equal(e.root, cp.Root):
		return nil, broken("the entry at seq %d is the checkpoint of size %d, not this one of size %d (or another root hash)", c.Root.Seq, e.size, cp.Size)
	}
	return cp, nil
}

// cosigners counts the policy's witnesses that validly cosigned note.
func (p *Policy) cosigners(note []byte) (int, error) {
	text, sigs, err := noteText(note)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, w := range p.Witnesses {
		for _, line := range sigs {
			_, ok, err := w.cosignature(text, line)
			if err != nil {
				return 0, err
			}
			if ok {
				n++
				break
			}
		}
	}
	return n, nil
}
