package storetest

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/tlog"
)

// Test keys, fixed so that a database a test leaves behind can be checked
// by hand. Both are named trail.test: the other key is what an intruder
// holding a key of the same name would sign with.
const (
	testKey  = "PRIVATE+KEY+trail.test+fa5f69eb+AUfJx+r8iW/R/VUbMoRWEvToQh4cobkDMThMSk/QCAlC"
	otherKey = "PRIVATE+KEY+trail.test+81effc5d+AbpeTrGDHUlKePpKQXQs1GktIwCdzZJBeMiuYet+L2Aj"
)

// Signer returns the key stores under test sign checkpoints with.
func Signer() *tlog.Signer { return mustSigner(testKey) }

// OtherSigner returns a second key with the same name as Signer's.
func OtherSigner() *tlog.Signer { return mustSigner(otherKey) }

func mustSigner(skey string) *tlog.Signer {
	s, err := tlog.NewSigner(skey)
	if err != nil {
		panic(err)
	}
	return s
}

// testLog appends from several goroutines, in batches of several sizes and
// to two tenants, then checks the log the store kept: every leaf hashes its
// stored bytes, which decode to the event Append returned; the tree a
// reader rebuilds from those bytes has the hashes the store wrote and the
// root of its latest checkpoint; every checkpoint is signed and extends the
// one before; every event has an inclusion proof against the latest
// checkpoint and an earlier one.
func testLog(t *testing.T, s trail.Store) {
	ctx := context.Background()
	v := Signer().Verifier()
	if _, err := s.Checkpoint(ctx, "acme"); trail.ErrorCode(err) != trail.ENOTFOUND {
		t.Errorf("Checkpoint of an empty log: %v, want ENOTFOUND", err)
	}
	byID := map[string]*trail.Event{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 4 {
				batch := make([]*trail.Event, 1+(g+i)%5)
				for j := range batch {
					batch[j] = Login(fmt.Sprintf("u-%d-%d-%d", g, i, j))
				}
				res, err := s.Append(ctx, "acme", batch, trail.AppendOptions{})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, ev := range res.Events {
					byID[ev.ID] = ev
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	appendOK(t, s, "globex", Login("g-1"), Login("g-2"))
	if t.Failed() {
		return
	}

	// Checkpoints: each signed for acme, sizes increasing.
	var cps []*tlog.Checkpoint
	err := s.Checkpoints(ctx, "acme", func(note []byte) error {
		cp, err := v.Open("acme", note)
		if err != nil {
			return err
		}
		if len(cps) > 0 && cp.Size <= cps[len(cps)-1].Size {
			return fmt.Errorf("checkpoint of size %d follows one of size %d", cp.Size, cps[len(cps)-1].Size)
		}
		cps = append(cps, cp)
		return nil
	})
	if err != nil {
		t.Fatalf("Checkpoints: %v", err)
	}
	note, err := s.Checkpoint(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	latest, err := v.Open("acme", note)
	if err != nil {
		t.Fatalf("latest checkpoint: %v", err)
	}
	if len(cps) == 0 || !bytes.Equal(cps[len(cps)-1].Note, note) || latest.Size != uint64(len(byID)) {
		t.Fatalf("latest checkpoint has size %d (of %d checkpoints); want the last of Checkpoints, of size %d", latest.Size, len(cps), len(byID))
	}
	if _, err := v.Open("globex", note); err == nil {
		t.Error("acme's checkpoint verifies as globex's: origins must name the tenant")
	}

	// Leaves: contiguous, each the stored bytes of the event Append
	// returned, with the hashes a reader computes from them.
	tree, _ := tlog.NewTree(0, nil)
	roots := map[uint64][]byte{}
	var leafHashes [][]byte
	err = s.ScanLeaves(ctx, "acme", 1, 0, func(l trail.Leaf) error {
		if l.Seq != tree.Size()+1 {
			return fmt.Errorf("leaf seq %d follows %d", l.Seq, tree.Size())
		}
		ev, err := trail.UnmarshalCanonical(l.Body)
		if err != nil {
			return fmt.Errorf("seq %d: stored bytes do not decode: %v", l.Seq, err)
		}
		if diff := cmp.Diff(byID[ev.ID], ev); diff != "" {
			return fmt.Errorf("seq %d: stored bytes differ from the event Append returned (-returned +stored):\n%s", l.Seq, diff)
		}
		if want := tree.Append(l.Body); !bytes.Equal(l.Hashes, want) {
			return fmt.Errorf("seq %d: stored hashes %x, want %x", l.Seq, l.Hashes, want)
		}
		leafHashes = append(leafHashes, tlog.LeafHash(l.Body))
		roots[tree.Size()] = tree.Root()
		return nil
	})
	if err != nil {
		t.Fatalf("ScanLeaves: %v", err)
	}
	for _, cp := range cps {
		if !bytes.Equal(roots[cp.Size], cp.Root) {
			t.Errorf("checkpoint of size %d has root %x; the stored bytes give %x", cp.Size, cp.Root, roots[cp.Size])
		}
	}

	// Proofs: every leaf in the latest tree and in the first checkpoint's;
	// every checkpoint consistent with the latest.
	for _, cp := range []*tlog.Checkpoint{cps[0], latest} {
		for i := range cp.Size {
			p, err := tlog.InclusionProof(ctx, s, "acme", i, cp.Size)
			if err == nil {
				err = tlog.VerifyInclusion(leafHashes[i], i, cp.Size, p, cp.Root)
			}
			if err != nil {
				t.Fatalf("inclusion of leaf %d in size %d: %v", i, cp.Size, err)
			}
		}
	}
	for _, cp := range cps {
		p, err := tlog.ConsistencyProof(ctx, s, "acme", cp.Size, latest.Size)
		if err == nil {
			err = tlog.VerifyConsistency(cp.Size, latest.Size, p, cp.Root, latest.Root)
		}
		if err != nil {
			t.Fatalf("consistency of size %d with %d: %v", cp.Size, latest.Size, err)
		}
	}
	if _, err := tlog.InclusionProof(ctx, s, "acme", latest.Size, latest.Size+2); trail.ErrorCode(err) != trail.ENOTFOUND {
		t.Errorf("inclusion proof of a leaf not stored: %v, want ENOTFOUND", err)
	}

	// The other tenant has a tree of its own.
	gnote, err := s.Checkpoint(ctx, "globex")
	if err != nil {
		t.Fatal(err)
	}
	if g, err := v.Open("globex", gnote); err != nil || g.Size != 2 {
		t.Errorf("globex checkpoint: %v, size %v; want size 2", err, g)
	}
}
