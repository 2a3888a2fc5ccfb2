// Package tlog is Trail's tamper evidence: each tenant's events form an RFC
// 6962 Merkle tree, every commit ends with a signed checkpoint of it, and
// anyone holding the verifier key can check inclusion and consistency
// proofs, the whole log, or an offline export of some of its events.
//
// Stores call NewTree and Tree.Append while they append, and Signer.Sign to
// write a checkpoint in the same transaction. Readers call ProveInclusion
// for a checked proof of one event, InclusionProof and ConsistencyProof
// for bare proofs (checked with VerifyInclusion and VerifyConsistency),
// Verify to check a whole log, and NewBundleWriter and VerifyBundle to
// export events with their proofs and check them offline. Keys come from
// GenerateKey.
//
// The hashing, the compact range a Tree is, and the proof shapes and checks
// are github.com/transparency-dev/merkle's (tested here against RFC 6962's
// definition, written out independently). Checkpoints are C2SP signed notes
// (golang.org/x/mod/sumdb/note, github.com/transparency-dev/formats/log).
package tlog

import (
	"crypto/sha256"
	"fmt"
	"hash"
	"slices"

	"github.com/trailaudit/trail"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
)

// hasher is RFC 6962's SHA-256 hasher.
var hasher = rfc6962.DefaultHasher

// factory makes the compact ranges a Tree is.
var factory = &compact.RangeFactory{Hash: hashChildren}

// hashChildren is RFC 6962's hash of an interior node, SHA-256 of 0x01 ||
// left || right: the one way this package hashes two children (the tree,
// and the proofs it folds). It hashes from one array on the stack where
// hasher.HashChildren allocates a state, a buffer and a sum per node (an
// append computes about one node per event); hashes of other sizes than
// trail.HashSize, never a tree's own, grow the buffer.
func hashChildren(l, r []byte) []byte {
	var a [1 + 2*trail.HashSize]byte
	b := append(append(append(a[:0], rfc6962.RFC6962NodeHashPrefix), l...), r...)
	sum := sha256.Sum256(b)
	return sum[:]
}

// LeafHash returns the RFC 6962 hash of a leaf: SHA-256 of 0x00 || body.
func LeafHash(body []byte) []byte { return hasher.HashLeaf(body) }

// LeafHasher computes LeafHash into a caller's array with one SHA-256
// state reused: verification hashes every row of a log, and an append
// every event it writes, and LeafHash allocates a state and a sum for
// each. The zero LeafHasher is ready; it is not safe for concurrent use.
type LeafHasher struct{ h hash.Hash }

// Sum sets leaf to LeafHash(body).
func (l *LeafHasher) Sum(leaf *[trail.HashSize]byte, body []byte) {
	if l.h == nil {
		l.h = sha256.New()
	}
	l.h.Reset()
	l.h.Write([]byte{rfc6962.RFC6962LeafHashPrefix})
	l.h.Write(body)
	l.h.Sum(leaf[:0])
}

// EmptyRoot is the root hash of a tree with no leaves.
func EmptyRoot() []byte { return hasher.EmptyRoot() }

// Tree is the right edge of a tenant's Merkle tree: a compact range over all
// its leaves (the roots of its perfect subtrees), enough to append leaves
// and compute the root without reading anything else. The zero Tree is
// empty.
type Tree struct {
	r *compact.Range // nil: empty
}

// PeakNodes returns the nodes whose hashes NewTree needs to continue a tree
// of size leaves: the roots of its perfect subtrees, left to right.
func PeakNodes(size uint64) []trail.TreeNode {
	ids := compact.RangeNodes(0, size, nil)
	out := make([]trail.TreeNode, len(ids))
	for i, id := range ids {
		out[i] = trail.TreeNode{Level: id.Level, Index: id.Index}
	}
	return out
}

// NewTree continues a tree of size leaves from the hashes of its
// PeakNodes, in the same order. It keeps no reference to peaks.
func NewTree(size uint64, peaks [][]byte) (*Tree, error) {
	for i, p := range peaks {
		if len(p) != trail.HashSize {
			return nil, fmt.Errorf("tlog: tree of size %d: peak hash %d is %d bytes, want %d", size, i, len(p), trail.HashSize)
		}
	}
	r, err := factory.NewRange(0, size, slices.Clone(peaks))
	if err != nil {
		return nil, fmt.Errorf("tlog: tree of size %d: %w", size, err)
	}
	return &Tree{r: r}, nil
}

func (t *Tree) rng() *compact.Range {
	if t.r == nil {
		t.r = factory.NewEmptyRange(0)
	}
	return t.r
}

// Size returns the number of leaves.
func (t *Tree) Size() uint64 { return t.rng().End() }

// Root returns the tree's root hash, or EmptyRoot when it has no leaves.
func (t *Tree) Root() []byte {
	if t.Size() == 0 {
		return EmptyRoot()
	}
	root, err := t.r.GetRootHash(nil)
	if err != nil {
		panic(err) // a range from 0 with leaves always has a root
	}
	return root
}

// Append adds the leaf whose stored bytes are body, and returns what the
// store keeps beside it (trail.Leaf.Hashes): the leaf hash, then the hash of
// each node the leaf completed, from level 1 up.
func (t *Tree) Append(body []byte) []byte {
	return t.AppendHash(LeafHash(body))
}

// AppendHash is Append for a leaf hash computed already. It panics when
// leaf is not trail.HashSize bytes: only a bug passes another size.
func (t *Tree) AppendHash(leaf []byte) []byte {
	if len(leaf) != trail.HashSize {
		panic(fmt.Sprintf("tlog: leaf hash of %d bytes, want %d", len(leaf), trail.HashSize))
	}
	return t.appendTo(make([]byte, 0, 2*trail.HashSize), (*[trail.HashSize]byte)(leaf))
}

// appendTo is AppendHash appending to dst: Verify reuses one buffer. The
// range reports the leaf, then each node it completes, level by level.
func (t *Tree) appendTo(dst []byte, leaf *[trail.HashSize]byte) []byte {
	err := t.rng().Append(slices.Clone(leaf[:]), func(_ compact.NodeID, h []byte) {
		dst = append(dst, h...)
	})
	if err != nil {
		panic(err) // Append fails only for a hash of the wrong size
	}
	return dst
}

// Edge returns the hashes of t's PeakNodes, concatenated left to right: what
// NewTree needs (split in HashSize pieces) to continue t later, for a store
// that keeps its tree's right edge in one place.
func (t *Tree) Edge() []byte {
	hs := t.rng().Hashes()
	out := make([]byte, 0, len(hs)*trail.HashSize)
	for _, h := range hs {
		out = append(out, h...)
	}
	return out
}

// Clone returns an independent copy of t, so a store can roll back a
// request that failed.
func (t *Tree) Clone() *Tree {
	r, err := factory.NewRange(0, t.Size(), slices.Clone(t.rng().Hashes()))
	if err != nil {
		panic(err)
	}
	return &Tree{r: r}
}

// NodeHash returns node n's hash from the Hashes of the leaf that stores it
// (the leaf at n.Seq()), or false when they are too short to hold it.
func NodeHash(hashes []byte, n trail.TreeNode) ([]byte, bool) {
	if n.Level >= uint(len(hashes)/trail.HashSize) { // also keeps off from overflowing
		return nil, false
	}
	off := int(n.Level) * trail.HashSize
	return hashes[off : off+trail.HashSize], true
}
