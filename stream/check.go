package stream

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/export"
	"github.com/trailaudit/trail/tlog"
)

// Checker is a receiver's check of a stream, trusting only Trail's
// verifier key: that the events of each tenant came with no gap and in
// order, that their bytes are the ones Trail recorded, and that every
// checkpoint the stream carried is signed and covers exactly what came
// before it. It rebuilds each tenant's Merkle tree from the events (a
// pruned event by its leaf hash) and holds the tree to each checkpoint
// once it has reached the checkpoint's size. A Checker follows streams
// from their start (seq 1), in Trail's JSON or in OCSF (Check reads a line
// of either). It is not safe for concurrent use.
type Checker struct {
	v       *tlog.Verifier
	tenants map[string]*tenantCheck
	remap   bool
	actions trail.ActionResolver
}

type tenantCheck struct {
	tree     *tlog.Tree
	pending  []*tlog.Checkpoint // signed, ahead of the tree, by size
	verified uint64
	skipped  []uint64 // seqs that came as skipped stand-ins
}

// NewChecker returns a checker trusting v.
func NewChecker(v *tlog.Verifier) *Checker {
	return &Checker{v: v, tenants: map[string]*tenantCheck{}}
}

// MapWith makes Check hold each OCSF event to the mapping of its checked
// bytes (export.MarshalOCSF with actions, which must resolve as the
// sink's did: the same catalog), so that not only the bytes carried but
// every OCSF attribute is what Trail recorded. It returns c.
func (c *Checker) MapWith(actions trail.ActionResolver) *Checker {
	c.remap, c.actions = true, actions
	return c
}

// ParseLine reads one line of a stream in either encoding: a Line, or an
// OCSF event (it has a class_uid), whose metadata.tenant_uid and
// metadata.sequence give its tenant and seq and whose
// unmapped.trail_event its stored bytes, which must name the same id
// (metadata.uid) and seq.
func ParseLine(b []byte) (*Line, error) {
	l, _, err := parseLine(b)
	return l, err
}

// parseLine is ParseLine, also saying whether b is an OCSF event.
func parseLine(b []byte) (l *Line, ocsf bool, err error) {
	var probe struct {
		ClassUID json.RawMessage `json:"class_uid"`
		Metadata struct {
			UID       string `json:"uid"`
			Sequence  uint64 `json:"sequence"`
			TenantUID string `json:"tenant_uid"`
		} `json:"metadata"`
		Unmapped struct {
			TrailEvent json.RawMessage `json:"trail_event"`
		} `json:"unmapped"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, false, fmt.Errorf("stream: a line that is not a JSON object: %w", err)
	}
	if probe.ClassUID == nil {
		l = new(Line)
		if err := json.Unmarshal(b, l); err != nil {
			return nil, false, fmt.Errorf("stream: a line that is not a stream line: %w", err)
		}
		return l, false, nil
	}
	md := probe.Metadata
	if md.TenantUID == "" || md.Sequence == 0 || len(probe.Unmapped.TrailEvent) == 0 {
		return nil, true, fmt.Errorf("stream: an OCSF event without metadata.tenant_uid, metadata.sequence or unmapped.trail_event: it cannot be checked")
	}
	var claim struct {
		ID  string `json:"id"`
		Seq uint64 `json:"seq"`
	}
	if err := json.Unmarshal(probe.Unmapped.TrailEvent, &claim); err != nil || claim.ID != md.UID || claim.Seq != md.Sequence {
		return nil, true, fmt.Errorf("stream: tenant %s: the OCSF event sent as %s seq %d carries the bytes of %s seq %d", md.TenantUID, md.UID, md.Sequence, claim.ID, claim.Seq)
	}
	return &Line{Tenant: md.TenantUID, Seq: md.Sequence, Event: probe.Unmapped.TrailEvent}, true, nil
}

// Check checks the next line of a stream, as sent (a Line or an OCSF
// event, see ParseLine), as Line does.
func (c *Checker) Check(b []byte) (dup bool, err error) {
	l, ocsf, err := parseLine(b)
	if err != nil {
		return false, err
	}
	if dup, err = c.Line(l); err != nil || dup || !c.remap || !ocsf {
		return dup, err
	}
	ev, err := trail.UnmarshalCanonical(l.Event)
	if err != nil {
		return false, fmt.Errorf("stream: tenant %s seq %d: %w", l.Tenant, l.Seq, err)
	}
	ev.Tenant = l.Tenant
	want, err := export.MarshalOCSF(ev, c.actions, l.Event)
	if err != nil {
		return false, err
	}
	if !bytes.Equal(bytes.TrimSpace(b), want) {
		return false, fmt.Errorf("stream: tenant %s seq %d: the OCSF event is not the mapping of the bytes Trail recorded", l.Tenant, l.Seq)
	}
	return false, nil
}

// Gap is the error of a stream that skipped or reordered events.
type Gap struct {
	Tenant    string
	Want, Got uint64
}

func (g *Gap) Error() string {
	return fmt.Sprintf("stream: tenant %s: want seq %d next, got %d: the stream has a gap or is out of order", g.Tenant, g.Want, g.Got)
}

// Line checks the next line of a stream. A line of an event already
// checked (a redelivery: at-least-once) returns dup true and is not checked
// again. A checkpoint that does not verify, an event that does not come
// next, an event whose bytes claim another seq, and a tree that disagrees
// with a signed checkpoint are errors; the stream cannot be trusted past
// one.
func (c *Checker) Line(l *Line) (dup bool, err error) {
	t := c.tenants[l.Tenant]
	if t == nil {
		tree, _ := tlog.NewTree(0, nil)
		t = &tenantCheck{tree: tree}
		c.tenants[l.Tenant] = t
	}
	if l.Checkpoint != "" {
		return false, c.checkpoint(l.Tenant, t, []byte(l.Checkpoint))
	}
	next := t.tree.Size() + 1
	switch {
	case l.Seq < next:
		return true, nil
	case l.Seq > next:
		return false, &Gap{Tenant: l.Tenant, Want: next, Got: l.Seq}
	}
	if l.Pruned || l.Skipped {
		if len(l.LeafHash) != trail.HashSize || l.Pruned && l.Skipped || l.Event != nil {
			return false, fmt.Errorf("stream: tenant %s seq %d: a pruned or skipped event has a leaf hash of %d bytes alone", l.Tenant, l.Seq, len(l.LeafHash))
		}
		t.tree.AppendHash(l.LeafHash)
		if l.Skipped {
			t.skipped = append(t.skipped, l.Seq)
		}
	} else {
		var claim struct {
			Seq uint64 `json:"seq"`
		}
		if err := json.Unmarshal(l.Event, &claim); err != nil || claim.Seq != l.Seq {
			return false, fmt.Errorf("stream: tenant %s: the event sent as seq %d says it is seq %d", l.Tenant, l.Seq, claim.Seq)
		}
		t.tree.Append(l.Event)
	}
	return false, c.settle(l.Tenant, t)
}

func (c *Checker) checkpoint(tenant string, t *tenantCheck, note []byte) error {
	cp, err := c.v.Open(tenant, note)
	if err != nil {
		return fmt.Errorf("stream: tenant %s: a checkpoint that does not verify under the trusted key: %w", tenant, err)
	}
	if cp.Size < t.tree.Size() {
		if cp.Size < t.verified {
			return nil // older than one verified: a redelivery
		}
		return fmt.Errorf("stream: tenant %s: a checkpoint of size %d arrived after %d events: it cannot be checked", tenant, cp.Size, t.tree.Size())
	}
	t.pending = append(t.pending, cp)
	return c.settle(tenant, t)
}

// settle holds the tree to every pending checkpoint it has reached.
func (c *Checker) settle(tenant string, t *tenantCheck) error {
	for len(t.pending) > 0 && t.pending[0].Size <= t.tree.Size() {
		cp := t.pending[0]
		t.pending = t.pending[1:]
		if cp.Size < t.tree.Size() {
			return fmt.Errorf("stream: tenant %s: a checkpoint of size %d was passed by the events before its turn", tenant, cp.Size)
		}
		if !bytes.Equal(cp.Root, t.tree.Root()) {
			return fmt.Errorf("stream: tenant %s: the %d events received do not hash to the root Trail signed: they are not what was recorded", tenant, cp.Size)
		}
		t.verified = cp.Size
	}
	return nil
}

// Verified returns how many of tenant's events have been checked against a
// signed checkpoint: everything up to that seq is exactly what Trail
// recorded, with nothing left out.
func (c *Checker) Verified(tenant string) uint64 {
	if t := c.tenants[tenant]; t != nil {
		return t.verified
	}
	return 0
}

// Skipped returns the seqs of tenant's events that came as skipped
// stand-ins (their leaf hash alone, the receiver having refused them): the
// tree checks, but their bytes did not arrive. The log records each skip
// (sink_skipped).
func (c *Checker) Skipped(tenant string) []uint64 {
	if t := c.tenants[tenant]; t != nil {
		return append([]uint64(nil), t.skipped...)
	}
	return nil
}

// Received returns how many of tenant's events have arrived in order.
func (c *Checker) Received(tenant string) uint64 {
	if t := c.tenants[tenant]; t != nil {
		return t.tree.Size()
	}
	return 0
}
