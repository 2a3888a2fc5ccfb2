package tlog

import (
	"context"
	"fmt"

	"github.com/trailaudit/trail"
	"github.com/transparency-dev/merkle/proof"
)

// InclusionProof returns the proof that the leaf at index (seq-1) is in
// tenant's tree of the given size, from the node hashes the log stores.
func InclusionProof(ctx context.Context, l trail.Log, tenant string, index, size uint64) ([][]byte, error) {
	if index >= size {
		return nil, trail.Errorf(trail.EINVALID, "tlog: inclusion proof: index %d is not below size %d", index, size)
	}
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, trail.Errorf(trail.EINVALID, "tlog: inclusion proof: %w", err)
	}
	return fetch(ctx, l, tenant, nodes)
}

// ConsistencyProof returns the proof that tenant's tree of size2 extends
// its tree of size1.
func ConsistencyProof(ctx context.Context, l trail.Log, tenant string, size1, size2 uint64) ([][]byte, error) {
	if size1 > size2 {
		return nil, trail.Errorf(trail.EINVALID, "tlog: consistency proof: size %d is above size %d", size1, size2)
	}
	nodes, err := proof.Consistency(size1, size2)
	if err != nil {
		return nil, trail.Errorf(trail.EINVALID, "tlog: consistency proof: %w", err)
	}
	return fetch(ctx, l, tenant, nodes)
}

// fetch reads the nodes a proof needs and folds the ephemeral ones.
func fetch(ctx context.Context, l trail.Log, tenant string, nodes proof.Nodes) ([][]byte, error) {
	want := make([]trail.TreeNode, len(nodes.IDs))
	for i, id := range nodes.IDs {
		want[i] = trail.TreeNode{Level: id.Level, Index: id.Index}
	}
	hashes, err := l.TreeHashes(ctx, tenant, want)
	if err != nil {
		return nil, fmt.Errorf("tlog: proof: %w", err)
	}
	p, err := nodes.Rehash(hashes, hashChildren)
	if err != nil {
		return nil, fmt.Errorf("tlog: proof: %w", err)
	}
	return p, nil
}

// VerifyInclusion checks that leafHash is at index in the tree of size with
// root.
func VerifyInclusion(leafHash []byte, index, size uint64, p [][]byte, root []byte) error {
	if err := proof.VerifyInclusion(hasher, index, size, leafHash, p, root); err != nil {
		return trail.Errorf(trail.EINVALID, "tlog: inclusion proof of leaf %d in tree of size %d does not verify: %w", index, size, err)
	}
	return nil
}

// VerifyConsistency checks that the tree of size2 with root2 extends the
// tree of size1 with root1.
func VerifyConsistency(size1, size2 uint64, p [][]byte, root1, root2 []byte) error {
	if err := proof.VerifyConsistency(hasher, size1, size2, p, root1, root2); err != nil {
		return trail.Errorf(trail.EINVALID, "tlog: consistency proof from size %d to %d does not verify: %w", size1, size2, err)
	}
	return nil
}

// ReadTreeHashes answers trail.Log.TreeHashes for a store: it groups the
// nodes by the leaf that holds each (TreeNode.Seq) and calls read once
// with those seqs; read returns each leaf's Hashes (nil when the row is
// missing).
func ReadTreeHashes(nodes []trail.TreeNode, read func(seqs []uint64) ([][]byte, error)) ([][]byte, error) {
	seqs := make([]uint64, len(nodes))
	for i, n := range nodes {
		seqs[i] = n.Seq()
	}
	rows, err := read(seqs)
	if err != nil {
		return nil, fmt.Errorf("tlog: tree hashes: %w", err)
	}
	if len(rows) != len(nodes) {
		return nil, trail.Errorf(trail.EINTERNAL, "tlog: tree hashes: read returned %d rows for %d seqs", len(rows), len(nodes))
	}
	out := make([][]byte, len(nodes))
	for i, n := range nodes {
		h, ok := NodeHash(rows[i], n)
		if !ok {
			return nil, trail.Errorf(trail.ENOTFOUND, "tlog: tree node (level %d, index %d) is not stored", n.Level, n.Index)
		}
		out[i] = h
	}
	return out, nil
}
