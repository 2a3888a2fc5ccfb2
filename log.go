package trail

import "context"

// HashSize is the size of every hash in a tenant's Merkle tree (SHA-256).
const HashSize = 32

// Leaf is one row of a tenant's log exactly as the database holds it, for
// proofs and verification: nothing in it has been checked or decoded.
type Leaf struct {
	// Seq is the row's position as the database orders it (1 is first).
	Seq uint64
	// Body is the event's canonical bytes as stored. The Merkle leaf is the
	// hash of these bytes, never of a re-encoding. It is empty for an event
	// retention has purged (see internal/ledger.Prune): its leaf hash is then only in
	// Hashes.
	Body []byte
	// Hashes is what the store wrote beside the event when it appended it:
	// the leaf hash, then the hash of each tree node the leaf completed,
	// level by level (HashSize bytes each). See TreeNode.Seq.
	Hashes []byte
}

// TreeNode names a complete node of a tenant's Merkle tree: Level 0 holds
// the leaves, and Index counts nodes of a level from 0 at the left.
type TreeNode struct {
	Level uint
	Index uint64
}

// Seq returns the seq of the leaf whose Hashes hold n's hash, at offset
// n.Level*HashSize: a node is stored with the last leaf it covers, the one
// whose append completed it.
func (n TreeNode) Seq() uint64 { return (n.Index + 1) << n.Level }

// Log is the tamper-evident side of a Store: each tenant's events form an
// RFC 6962 Merkle tree whose nodes are written in the same transaction as
// the events, and each commit ends with a signed checkpoint of the tree.
// Package tlog builds proofs and verifies a log through this interface.
//
// Contract:
//   - Append MUST write each event's Leaf.Hashes (computed by tlog.Tree from
//     the stored bytes) and a checkpoint signed by the store's signer for
//     every tenant it appended to, in the same transaction as the events.
//   - A store MUST refuse to open when a tenant's latest checkpoint does not
//     verify under its signer's key.
//   - ScanLeaves, ScanIndex, Checkpoints and SizeRecords MUST return what is
//     stored, with no check of their own, so that verification sees what an
//     intruder left.
//   - Every column and row a read selects on MUST be in ScanIndex, and
//     every record of the log's size the store keeps beside its rows and
//     checkpoints in SizeRecords: verification holds the rows to them.
type Log interface {
	// Checkpoint returns tenant's latest signed checkpoint (a C2SP signed
	// note), or ENOTFOUND when tenant has no events.
	Checkpoint(ctx context.Context, tenant string) ([]byte, error)
	// Checkpoints calls fn with each of tenant's stored checkpoints in the
	// order they were written, stopping at fn's first error.
	Checkpoints(ctx context.Context, tenant string, fn func(note []byte) error) error
	// TreeHashes returns the stored hash of each node, in order, or
	// ENOTFOUND when one is not stored.
	TreeHashes(ctx context.Context, tenant string, nodes []TreeNode) ([][]byte, error)
	// ScanLeaves calls fn for each of tenant's rows with from <= seq < to in
	// seq order (to == 0: through the last), stopping at fn's first error.
	// The Leaf and its slices are only valid during the call.
	ScanLeaves(ctx context.Context, tenant string, from, to uint64, fn func(Leaf) error) error
	// ScanIndex calls fn, in seq order, for each seq with from <= seq < to
	// (to == 0: through the last) at which the store keeps index values
	// (an event row's columns, targets rows), stopping at fn's first
	// error. fn may keep the row.
	ScanIndex(ctx context.Context, tenant string, from, to uint64, fn func(IndexRow) error) error
	// SizeRecords returns each record the store keeps of the size of
	// tenant's log apart from its rows and checkpoints (none for a tenant
	// it knows nothing of).
	SizeRecords(ctx context.Context, tenant string) ([]SizeRecord, error)
}

// LeafIndexScanner is a Log that reads its rows and the index values at
// their seqs in one pass. Verification uses it when a store offers it:
// reading each row once, with its columns, costs the database about half
// of reading it twice (ScanLeaves, then ScanIndex).
type LeafIndexScanner interface {
	Log
	// ScanLeavesIndexed calls fn, in seq order, once for each seq with
	// from <= seq < to (to == 0: through the last) at which tenant's log
	// holds a row or index values, stopping at fn's first error: leaf is
	// the row as ScanLeaves gives it (nil when there is none), ix the
	// index values as ScanIndex gives them (nil when there are none), and
	// exactly what the two would call their fn with. The Leaf and its
	// slices are only valid during the call; fn may keep *ix.
	ScanLeavesIndexed(ctx context.Context, tenant string, from, to uint64, fn func(leaf *Leaf, ix *IndexRow) error) error
}

// SizeRecord is one place a store records how large a tenant's log is,
// beside the rows themselves: a log shorter than it has lost its tail.
type SizeRecord struct {
	// Where names the record for a report ("the heads row").
	Where string `json:"where"`
	// Size is the size it records.
	Size uint64 `json:"size"`
	// Head reports a record the store moves to the log's size in the
	// transaction of every append, with its checkpoint (a head): the log
	// then held exactly Size rows, and its latest checkpoint was of that
	// size. Otherwise the log held at least Size rows (an idempotency key
	// naming its seqs).
	Head bool `json:"head"`
}

// HeadSizes returns the size records of a store that keeps its head's size
// in the record where names, and whose idempotency keys name seqs up to
// keys (0: none do).
func HeadSizes(where string, size, keys uint64) []SizeRecord {
	out := []SizeRecord{{Where: where, Size: size, Head: true}}
	if keys > 0 {
		out = append(out, SizeRecord{Where: "the idempotency keys", Size: keys})
	}
	return out
}

// TenantLister lists the logs a store holds: how an operator finds the
// tenants (GET /v1/tenants), and how what runs over every tenant's log
// (the detection rules) finds them. A tenant is known by having a log.
//
// Contract: Tenants returns the name of every log holding at least one
// event (the operators' log, OperatorTenant, included), in byte order.
type TenantLister interface {
	Tenants(ctx context.Context) ([]string, error)
}
