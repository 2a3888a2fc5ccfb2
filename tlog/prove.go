package tlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/trailaudit/trail"
	"github.com/transparency-dev/merkle/proof"
)

// Inclusion is an inclusion proof that ProveInclusion built from a log's
// stored hashes and checked: the leaf at Index is in the tree of Size
// whose root is Root.
type Inclusion struct {
	Seq   uint64
	Index uint64 // the leaf's index: Seq-1
	Size  uint64
	Root  []byte
	// Checkpoint is the signed checkpoint the proof was checked against.
	// When Size is its size, Root is its root; when Size is below it, Root
	// is the root of the tree of Size computed from the stored hashes, and
	// Consistency proves that tree extends to the checkpoint's.
	Checkpoint  *Checkpoint
	Consistency [][]byte // nil when Size is the checkpoint's size
	// Body is the stored bytes at Seq, verbatim (the leaf hash is of
	// them), or nil when Pruned: retention removed them, and the leaf hash
	// stored beside them stands for them.
	Body     []byte
	Pruned   bool
	LeafHash []byte
	Proof    [][]byte
}

// DamageError is the error of a proof the log cannot give although a
// signed checkpoint says it should: the row at Seq is missing, its bytes
// disagree with their stored leaf hash, a tree node the proof needs is
// not stored, or the proof built from the stored hashes does not lead to
// the signed root. It is damage to the log, not a failed read: `trail
// verify` (Verify) finds where it lies. ErrorCode reports EINTERNAL for it.
type DamageError struct {
	Damage
	// InTree is false when the row at Seq itself is what is wrong (it is
	// missing, its bytes do not hash to its stored leaf hash, or they hold
	// another seq's event), true when the row is sound as far as it shows
	// on its own but the proof from its leaf hash through the stored
	// nodes does not lead to the signed root (or a node is not stored).
	InTree bool
	// Found is what was read before the check failed (the row, and with
	// InTree the proof that does not verify), to show and to investigate.
	// It is not a proof.
	Found *Inclusion
}

func (e *DamageError) Error() string {
	return fmt.Sprintf("tlog: inclusion proof: damage (%s) at seq %d: %s", e.Kind, e.Seq, e.Detail)
}

// ProveInclusion returns the proof that the event at seq is in tenant's
// tree of size, read from l and checked before it is returned: it never
// hands out a proof that does not verify. cp is the tenant's signed
// checkpoint the proof is checked against (typically its latest, opened
// with the tenant's Verifier); size is usually cp.Size.
//
// A size below cp.Size (a client proving an event against an older
// checkpoint it saved) is checked too, not handed out on trust: the root
// of the tree of that size is computed from the stored hashes of its
// PeakNodes, the inclusion proof is verified against that root, and a
// consistency proof (also from stored hashes) is verified from it to
// cp's signed root. So every proof returned leads to a root signed by
// cp, directly or through the consistency proof in
// Inclusion.Consistency.
//
// An event retention pruned (its row holds no bytes) is proven by the
// leaf hash stored beside it, and Inclusion.Pruned says so. Whether a
// purge record covers it is not checked here: Verify does that.
//
// Errors:
//   - EINVALID naming the field ("seq" or "size", in trail.ErrorFields):
//     a seq of 0 or past size, a size of 0 or past cp.Size. EINVALID
//     with no field: a nil cp, or one of another tenant.
//   - *DamageError: a missing row, a row that disagrees with its stored
//     leaf hash or holds another seq's event (Damage.Kind Missing,
//     Changed or Reordered, InTree false), a missing tree node, or a
//     proof that does not verify (InTree true). Find it with errors.As.
//   - Anything else is a failed read of the store, wrapped with %w (its
//     code passes through).
func ProveInclusion(ctx context.Context, l trail.Log, tenant string, cp *Checkpoint, seq, size uint64) (*Inclusion, error) {
	if cp == nil || !strings.HasSuffix(cp.Origin, "/"+tenant) {
		return nil, trail.Errorf(trail.EINVALID, "tlog: inclusion proof: want a signed checkpoint of tenant %s", tenant)
	}
	if err := checkProofArgs(cp, seq, size); err != nil {
		return nil, err
	}
	in := &Inclusion{Seq: seq, Index: seq - 1, Size: size, Checkpoint: cp}
	if size == cp.Size {
		in.Root = bytes.Clone(cp.Root)
	}
	damage := func(k Kind, at uint64, inTree bool, format string, args ...any) error {
		return &DamageError{Damage: Damage{Kind: k, Seq: at, Detail: fmt.Sprintf(format, args...)}, InTree: inTree, Found: in}
	}

	// The row.
	var hashes []byte
	found := false
	err := l.ScanLeaves(ctx, tenant, seq, seq+1, func(leaf trail.Leaf) error {
		if leaf.Seq != seq {
			return damage(Reordered, seq, false, "the store answered the row of seq %d for seq %d", leaf.Seq, seq)
		}
		found = true
		if len(leaf.Body) > 0 {
			in.Body = bytes.Clone(leaf.Body)
		}
		hashes = bytes.Clone(leaf.Hashes)
		return nil
	})
	var de *DamageError
	switch {
	case errors.As(err, &de):
		return nil, de
	case err != nil:
		return nil, fmt.Errorf("tlog: inclusion proof of seq %d: %w", seq, err)
	case !found:
		return nil, damage(Missing, seq, false, "the log holds no row at seq %d, which the signed checkpoint of size %d covers", seq, cp.Size)
	}
	switch {
	case in.Body == nil && len(hashes) < trail.HashSize:
		return nil, damage(Changed, seq, false, "payload missing, and its stored hashes hold no leaf hash")
	case in.Body == nil:
		// Retention removed the payload and kept the leaf hash (an event's
		// canonical bytes are never empty).
		in.Pruned, in.LeafHash = true, hashes[:trail.HashSize:trail.HashSize]
	default:
		in.LeafHash = LeafHash(in.Body)
		if len(hashes) < trail.HashSize || !bytes.Equal(hashes[:trail.HashSize], in.LeafHash) {
			return nil, damage(Changed, seq, false, "the bytes stored at seq %d do not match their stored leaf hash", seq)
		}
		if claim, ok := claimedSeq(in.Body); !ok || claim != seq {
			return nil, damage(Reordered, seq, false, "the bytes stored at seq %d are not the event of seq %d", seq, seq)
		}
	}

	// The tree: the proof, and for an older size its root and the
	// consistency proof to the signed one.
	missing := func(err error) error {
		if trail.ErrorCode(err) == trail.ENOTFOUND {
			return damage(Missing, seq, true, "a tree node the signed checkpoint of size %d covers is not stored: %s", cp.Size, trail.ErrorMessage(err))
		}
		return fmt.Errorf("tlog: inclusion proof of seq %d in the tree of size %d: %w", seq, size, err)
	}
	if in.Proof, err = InclusionProof(ctx, l, tenant, in.Index, size); err != nil {
		return nil, missing(err)
	}
	if size < cp.Size {
		peaks, err := l.TreeHashes(ctx, tenant, PeakNodes(size))
		if err != nil {
			return nil, missing(err)
		}
		t, err := NewTree(size, peaks)
		if err != nil {
			return nil, damage(Changed, seq, true, "the stored tree of size %d cannot be read: %v", size, err)
		}
		in.Root = t.Root()
		if in.Consistency, err = ConsistencyProof(ctx, l, tenant, size, cp.Size); err != nil {
			return nil, missing(err)
		}
		if err := proof.VerifyConsistency(hasher, size, cp.Size, in.Consistency, in.Root, cp.Root); err != nil {
			return nil, damage(Changed, seq, true, "the stored tree of size %d does not extend to the signed checkpoint of size %d", size, cp.Size)
		}
	}
	if err := proof.VerifyInclusion(hasher, in.Index, size, in.LeafHash, in.Proof, in.Root); err != nil {
		if size == cp.Size {
			return nil, damage(Changed, seq, true, "the inclusion proof of seq %d does not lead to the root of the signed checkpoint of size %d", seq, size)
		}
		return nil, damage(Changed, seq, true, "the inclusion proof of seq %d does not lead to the root of the stored tree of size %d", seq, size)
	}
	return in, nil
}

// checkProofArgs checks ProveInclusion's seq and size against the
// checkpoint, naming each offending field.
func checkProofArgs(cp *Checkpoint, seq, size uint64) error {
	var fe []trail.FieldError
	switch {
	case size == 0:
		fe = append(fe, trail.FieldError{Path: "size", Message: "want a tree size of 1 or more"})
	case size > cp.Size:
		fe = append(fe, trail.FieldError{Path: "size", Message: fmt.Sprintf("%d is past the signed checkpoint (size %d)", size, cp.Size)})
	}
	switch {
	case seq == 0:
		fe = append(fe, trail.FieldError{Path: "seq", Message: "want the seq of an event (1 or more)"})
	case size == cp.Size && seq > size:
		fe = append(fe, trail.FieldError{Path: "seq", Message: fmt.Sprintf("%d is past the signed checkpoint (size %d)", seq, size)})
	case size != 0 && seq > size:
		fe = append(fe, trail.FieldError{Path: "seq", Message: fmt.Sprintf("%d is past the tree's size %d", seq, size)})
	}
	if len(fe) > 0 {
		return trail.Invalid("tlog: inclusion proof", fe...)
	}
	return nil
}
