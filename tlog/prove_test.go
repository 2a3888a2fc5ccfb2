package tlog_test

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/ledger"
	"github.com/trailaudit/trail/memory"
	"github.com/trailaudit/trail/storetest"
	"github.com/trailaudit/trail/tlog"
)

// proveTenant's log in these tests: seqs 1-3 in one commit, 4-5 in one,
// 6-8 one each, then the record of a prune of seq 2 at seq 9.
const proveTenant = "acme"

// provedStore returns a memory store holding proveTenant's log, the
// checkpoints its commits signed (opened, by size), and the leaf hash of
// every seq as appended (index seq-1).
func provedStore(t *testing.T) (*memory.Store, map[uint64]*tlog.Checkpoint, [][]byte) {
	t.Helper()
	ctx := context.Background()
	s := memory.New(storetest.Validator(), storetest.Signer())
	t.Cleanup(func() { s.Close() })
	for i, n := range []int{3, 2, 1, 1, 1} {
		var evs []*trail.Event
		for j := range n {
			evs = append(evs, storetest.Login(fmt.Sprintf("u-%d-%d", i, j)))
		}
		if _, err := s.Append(ctx, proveTenant, evs, trail.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	leaves := make([][]byte, 9)
	hashBodies := func() {
		if err := s.ScanLeaves(ctx, proveTenant, 1, 0, func(l trail.Leaf) error {
			if len(l.Body) > 0 {
				leaves[l.Seq-1] = tlog.LeafHash(l.Body)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	hashBodies()
	if _, err := s.AppendOwn(ctx, proveTenant, ledger.Prune([]uint64{2}, storetest.PruneRecord("test", 2))); err != nil {
		t.Fatal(err)
	}
	hashBodies()
	cps := map[uint64]*tlog.Checkpoint{}
	if err := s.Checkpoints(ctx, proveTenant, func(note []byte) error {
		cp, err := storetest.Signer().Verifier().Open(proveTenant, note)
		cps[cp.Size] = cp
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if cps[9] == nil || cps[3] == nil {
		t.Fatalf("checkpoints of sizes %v; want 3, 5, 6, 7, 8 and 9", slices.Sorted(maps.Keys(cps)))
	}
	return s, cps, leaves
}

// tampered is a log as an intruder left it: edit changes each row
// ScanLeaves yields (returning false drops it), nodes changes what
// TreeHashes returns.
type tampered struct {
	trail.Log
	edit  func(l trail.Leaf) (trail.Leaf, bool)
	nodes func(nodes []trail.TreeNode, hashes [][]byte, err error) ([][]byte, error)
}

func (t *tampered) ScanLeaves(ctx context.Context, tenant string, from, to uint64, fn func(trail.Leaf) error) error {
	return t.Log.ScanLeaves(ctx, tenant, from, to, func(l trail.Leaf) error {
		if t.edit != nil {
			l.Body, l.Hashes = slices.Clone(l.Body), slices.Clone(l.Hashes)
			var keep bool
			if l, keep = t.edit(l); !keep {
				return nil
			}
		}
		return fn(l)
	})
}

func (t *tampered) TreeHashes(ctx context.Context, tenant string, nodes []trail.TreeNode) ([][]byte, error) {
	hashes, err := t.Log.TreeHashes(ctx, tenant, nodes)
	if t.nodes != nil {
		for i := range hashes {
			hashes[i] = slices.Clone(hashes[i])
		}
		return t.nodes(nodes, hashes, err)
	}
	return hashes, err
}

// atSeq edits the row of seq only.
func atSeq(seq uint64, edit func(l *trail.Leaf) bool) func(trail.Leaf) (trail.Leaf, bool) {
	return func(l trail.Leaf) (trail.Leaf, bool) {
		if l.Seq != seq {
			return l, true
		}
		keep := edit(&l)
		return l, keep
	}
}

// nodeOfSeq edits the stored hash of any node a proof reads from the row
// of seq.
func nodeOfSeq(seq uint64) func([]trail.TreeNode, [][]byte, error) ([][]byte, error) {
	return func(nodes []trail.TreeNode, hashes [][]byte, err error) ([][]byte, error) {
		for i, n := range nodes {
			if err == nil && n.Seq() == seq {
				hashes[i][0] ^= 1
			}
		}
		return hashes, err
	}
}

var errDisk = errors.New("disk on fire")

func TestProveInclusion(t *testing.T) {
	ctx := context.Background()
	s, cps, leaves := provedStore(t)
	latest := cps[9]
	tests := []struct {
		name      string
		log       func(l trail.Log) trail.Log // nil: the store as it is
		cp        *tlog.Checkpoint            // nil: latest
		seq, size uint64                      // size 0: the checkpoint's
		zeroSize  bool                        // ask for size 0 itself
		pruned    bool
		fields    []string // EINVALID naming these fields
		damage    tlog.Kind
		inTree    bool
		readErr   bool // the store's error, passed through
	}{
		{name: "event", seq: 3},
		{name: "first", seq: 1},
		{name: "last", seq: 9},
		{name: "pruned event", seq: 2, pruned: true},
		{name: "older size", seq: 4, size: 5},
		{name: "older size, first seq", seq: 1, size: 3},
		{name: "older size, its last seq", seq: 7, size: 7},
		{name: "older size, not a checkpoint's", seq: 2, size: 4, pruned: true},
		{name: "against an older checkpoint", cp: cps[5], seq: 5},
		{name: "against an older checkpoint, older size", cp: cps[5], seq: 1, size: 1},

		{name: "seq past size", seq: 6, size: 5, fields: []string{"seq"}},
		{name: "seq past the checkpoint", cp: cps[5], seq: 6, fields: []string{"seq"}},
		{name: "seq 0", seq: 0, fields: []string{"seq"}},
		{name: "size 0", seq: 1, zeroSize: true, fields: []string{"size"}},
		{name: "size past the checkpoint", seq: 1, size: 10, fields: []string{"size"}},
		{name: "seq and size past", seq: 12, size: 11, fields: []string{"size", "seq"}},
		{name: "no checkpoint", cp: &tlog.Checkpoint{}, seq: 1, fields: []string{}},

		{name: "tampered leaf hash", seq: 3, damage: tlog.Changed, log: func(l trail.Log) trail.Log {
			return &tampered{Log: l, edit: atSeq(3, func(l *trail.Leaf) bool { l.Hashes[0] ^= 1; return true })}
		}},
		{name: "changed body, leaf hash recomputed", seq: 3, damage: tlog.Changed, inTree: true, log: func(l trail.Log) trail.Log {
			return &tampered{Log: l, edit: atSeq(3, func(l *trail.Leaf) bool {
				l.Body = bytes.Replace(l.Body, []byte("u-0-2"), []byte("u-0-X"), 1)
				copy(l.Hashes, tlog.LeafHash(l.Body))
				return true
			})}
		}},
		{name: "changed body, older size", seq: 3, size: 5, damage: tlog.Changed, inTree: true, log: func(l trail.Log) trail.Log {
			return &tampered{Log: l, edit: atSeq(3, func(l *trail.Leaf) bool {
				l.Body = bytes.Replace(l.Body, []byte("u-0-2"), []byte("u-0-X"), 1)
				copy(l.Hashes, tlog.LeafHash(l.Body))
				return true
			})}
		}},
		{name: "row missing", seq: 4, damage: tlog.Missing, log: func(l trail.Log) trail.Log {
			return &tampered{Log: l, edit: atSeq(4, func(*trail.Leaf) bool { return false })}
		}},
		{name: "row of another seq", seq: 4, damage: tlog.Reordered, log: func(l trail.Log) trail.Log {
			return &tampered{Log: l, edit: atSeq(4, func(l *trail.Leaf) bool { l.Seq = 5; return true })}
		}},
		{name: "the event of another seq", seq: 4, damage: tlog.Reordered, log: func(l trail.Log) trail.Log {
			return &tampered{Log: l, edit: atSeq(4, func(l *trail.Leaf) bool {
				l.Body = bytes.Replace(l.Body, []byte(`"seq":4,`), []byte(`"seq":40,`), 1)
				copy(l.Hashes, tlog.LeafHash(l.Body))
				return true
			})}
		}},
		{name: "pruned, no leaf hash left", seq: 2, damage: tlog.Changed, log: func(l trail.Log) trail.Log {
			return &tampered{Log: l, edit: atSeq(2, func(l *trail.Leaf) bool { l.Hashes = l.Hashes[:5]; return true })}
		}},
		{name: "payload cleared, leaf hash changed", seq: 3, damage: tlog.Changed, inTree: true, log: func(l trail.Log) trail.Log {
			return &tampered{Log: l, edit: atSeq(3, func(l *trail.Leaf) bool { l.Body, l.Hashes[1] = nil, l.Hashes[1]^1; return true })}
		}},
		{name: "tampered node", seq: 1, damage: tlog.Changed, inTree: true, log: func(l trail.Log) trail.Log {
			return &tampered{Log: l, nodes: nodeOfSeq(4)}
		}},
		{name: "tampered peak of an older size", seq: 6, size: 6, damage: tlog.Changed, inTree: true, log: func(l trail.Log) trail.Log {
			return &tampered{Log: l, nodes: nodeOfSeq(4)}
		}},
		{name: "node missing", seq: 1, damage: tlog.Missing, inTree: true, log: func(l trail.Log) trail.Log {
			return &tampered{Log: l, nodes: func([]trail.TreeNode, [][]byte, error) ([][]byte, error) {
				return nil, trail.Errorf(trail.ENOTFOUND, "tlog: tree node (level 2, index 0) is not stored")
			}}
		}},

		{name: "scan fails", seq: 1, readErr: true, log: func(l trail.Log) trail.Log { return failingScan{l} }},
		{name: "tree read fails", seq: 1, readErr: true, log: func(l trail.Log) trail.Log {
			return &tampered{Log: l, nodes: func([]trail.TreeNode, [][]byte, error) ([][]byte, error) { return nil, errDisk }}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var l trail.Log = s
			if tc.log != nil {
				l = tc.log(s)
			}
			cp := cmp.Or(tc.cp, latest)
			size := tc.size
			if size == 0 && !tc.zeroSize {
				size = cp.Size
			}
			in, err := tlog.ProveInclusion(ctx, l, proveTenant, cp, tc.seq, size)
			var de *tlog.DamageError
			switch {
			case tc.fields != nil:
				var got []string
				for _, f := range trail.ErrorFields(err) {
					got = append(got, f.Path)
				}
				if trail.ErrorCode(err) != trail.EINVALID || !slices.Equal(got, tc.fields) || errors.As(err, &de) {
					t.Fatalf("err = %v (fields %v); want EINVALID naming %v", err, got, tc.fields)
				}
				return
			case tc.damage != "":
				if !errors.As(err, &de) || de.Kind != tc.damage || de.Seq != tc.seq || de.InTree != tc.inTree || in != nil {
					t.Fatalf("err = %#v; want damage %s at seq %d (in tree %v)", err, tc.damage, tc.seq, tc.inTree)
				}
				if trail.ErrorCode(err) != trail.EINTERNAL || de.Found == nil || de.Found.Seq != tc.seq {
					t.Errorf("damage: code %s, found %+v; want EINTERNAL and what was read", trail.ErrorCode(err), de.Found)
				}
				return
			case tc.readErr:
				if !errors.Is(err, errDisk) || errors.As(err, &de) || in != nil {
					t.Fatalf("err = %v; want the store's error, not damage", err)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if in.Seq != tc.seq || in.Index != tc.seq-1 || in.Size != size || in.Checkpoint != cp || in.Pruned != tc.pruned {
				t.Errorf("proof %+v; want seq %d, size %d, pruned %v", in, tc.seq, size, tc.pruned)
			}
			if !bytes.Equal(in.LeafHash, leaves[tc.seq-1]) {
				t.Errorf("leaf hash %x; want %x, the appended one", in.LeafHash, leaves[tc.seq-1])
			}
			if tc.pruned != (in.Body == nil) || in.Body != nil && !bytes.Equal(tlog.LeafHash(in.Body), in.LeafHash) {
				t.Errorf("body %q; want the stored bytes (none when pruned)", in.Body)
			}
			// The root of an older size is the one signed then, when a
			// checkpoint was; every proof leads to cp's signed root.
			if old := cps[size]; old != nil && !bytes.Equal(in.Root, old.Root) {
				t.Errorf("root of size %d: %x; the checkpoint of that size signed %x", size, in.Root, old.Root)
			}
			if err := tlog.VerifyInclusion(in.LeafHash, in.Index, in.Size, in.Proof, in.Root); err != nil {
				t.Error(err)
			}
			if size == cp.Size {
				if in.Consistency != nil || !bytes.Equal(in.Root, cp.Root) {
					t.Errorf("at the checkpoint's size: root %x, consistency %x", in.Root, in.Consistency)
				}
			} else if err := tlog.VerifyConsistency(size, cp.Size, in.Consistency, in.Root, cp.Root); err != nil {
				t.Error(err)
			}
		})
	}
}

// failingScan is a log whose rows cannot be read.
type failingScan struct{ trail.Log }

func (failingScan) ScanLeaves(context.Context, string, uint64, uint64, func(trail.Leaf) error) error {
	return fmt.Errorf("scan: %w", errDisk)
}

// TestProveInclusionOfAnotherTenant: a checkpoint of another tenant is
// refused, not checked against the wrong tree.
func TestProveInclusionOfAnotherTenant(t *testing.T) {
	s, cps, _ := provedStore(t)
	if _, err := tlog.ProveInclusion(context.Background(), s, "globex", cps[9], 1, 9); trail.ErrorCode(err) != trail.EINVALID {
		t.Fatalf("err = %v; want EINVALID", err)
	}
}
