package storetest

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/tlog"
)

// Tamperer does to a store's database what an administrator with the
// owner's rights could: each method disables the append-only triggers,
// changes rows behind the store's back, and restores the triggers. The
// tamper matrix (RunTamper) uses it to show that every such change is found.
type Tamperer interface {
	// SetBody replaces the stored bytes of the row at seq; its hashes and
	// other columns stay.
	SetBody(ctx context.Context, tenant string, seq uint64, body []byte) error
	// SetHashes replaces the stored tree hashes of the row at seq.
	SetHashes(ctx context.Context, tenant string, seq uint64, hashes []byte) error
	// Delete removes the rows with from <= seq < to (to 0: through the
	// last), with their targets.
	Delete(ctx context.Context, tenant string, from, to uint64) error
	// Insert adds a row at seq holding body and hashes, its other columns
	// filled from the decoded body as the store would.
	Insert(ctx context.Context, tenant string, seq uint64, body, hashes []byte) error
	// Swap exchanges the seqs of the rows at a and b.
	Swap(ctx context.Context, tenant string, a, b uint64) error
	// SetCheckpoint replaces the stored checkpoint of size.
	SetCheckpoint(ctx context.Context, tenant string, size uint64, note []byte) error
}

// RunTamper is the tamper matrix: for each way an administrator could
// change the log behind the store's back, tlog.Verify must find it and name
// the first damaged seq and the kind of damage. newDurable must return a
// fresh, empty database each call, with a Tamper.
func RunTamper(t *testing.T, newDurable func(t *testing.T) Durable) {
	// The log each case starts from: 12 events in three commits, so there
	// are checkpoints of sizes 4, 7 and 12.
	setup := func(t *testing.T) (Durable, []byte) {
		d := newDurable(t)
		s := d.open(t)
		defer s.Close()
		for _, n := range []int{4, 3, 5} {
			batch := make([]*trail.Event, n)
			for i := range batch {
				batch[i] = Login("u-" + string(rune('a'+i)))
			}
			appendOK(t, s, "acme", batch...)
		}
		// An auditor keeps the checkpoint of size 7 somewhere else.
		var saved []byte
		err := s.Checkpoints(context.Background(), "acme", func(note []byte) error {
			if cp, _ := tlog.ParseUnverified(note); cp != nil && cp.Size == 7 {
				saved = bytes.Clone(note)
			}
			return nil
		})
		if err != nil || saved == nil {
			t.Fatalf("no checkpoint of size 7: %v", err)
		}
		return d, saved
	}
	leaves := func(t *testing.T, d Durable) []trail.Leaf {
		s, err := d.Open(t, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var out []trail.Leaf
		err = s.ScanLeaves(context.Background(), "acme", 1, 0, func(l trail.Leaf) error {
			out = append(out, trail.Leaf{Seq: l.Seq, Body: bytes.Clone(l.Body), Hashes: bytes.Clone(l.Hashes)})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	// replaceAt returns body with the first old replaced by new, at or after
	// the member name key.
	replaceAt := func(t *testing.T, body []byte, key, old, new string) []byte {
		i := bytes.Index(body, []byte(key))
		j := bytes.Index(body[i:], []byte(old))
		if i < 0 || j < 0 {
			t.Fatalf("%q after %q not in %s", old, key, body)
		}
		return append(append(bytes.Clone(body[:i+j]), new...), body[i+j+len(old):]...)
	}

	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, d Durable) error
		saved  bool // verify against the auditor's checkpoint too
		kind   tlog.Kind
		seq    uint64
		refuse bool // the store must refuse to append after it
	}{
		{"ChangeOneByteOfContext", func(t *testing.T, d Durable) error {
			l := leaves(t, d)[4]
			return d.Tamper.SetBody(ctx, "acme", 5, replaceAt(t, l.Body, `"context"`, `"password"`, `"passwore"`))
		}, false, tlog.Changed, 5, false},
		{"ChangeTheActor", func(t *testing.T, d Durable) error {
			l := leaves(t, d)[5]
			return d.Tamper.SetBody(ctx, "acme", 6, replaceAt(t, l.Body, `"actor"`, `"u-`, `"x-`))
		}, false, tlog.Changed, 6, false},
		{"ChangeAnEventAndItsLeafHash", func(t *testing.T, d Durable) error {
			l := leaves(t, d)[1]
			body := replaceAt(t, l.Body, `"actor"`, `"u-`, `"x-`)
			if err := d.Tamper.SetBody(ctx, "acme", 2, body); err != nil {
				return err
			}
			return d.Tamper.SetHashes(ctx, "acme", 2, append(tlog.LeafHash(body), l.Hashes[trail.HashSize:]...))
		}, false, tlog.Changed, 2, false},
		{"DeleteARow", func(t *testing.T, d Durable) error {
			return d.Tamper.Delete(ctx, "acme", 3, 4)
		}, false, tlog.Missing, 3, false},
		{"InsertAForgedRow", func(t *testing.T, d Durable) error {
			l := leaves(t, d)
			forged := replaceAt(t, l[11].Body, `"seq"`, `12`, `13`)
			forged = replaceAt(t, forged, `"id":"0`, `"0`, `"f`)
			tree := rebuild(t, l)
			return d.Tamper.Insert(ctx, "acme", 13, forged, tree.Append(forged))
		}, false, tlog.Extra, 13, true},
		{"SwapTwoRows", func(t *testing.T, d Durable) error {
			return d.Tamper.Swap(ctx, "acme", 2, 9)
		}, false, tlog.Reordered, 2, false},
		{"TruncateTheTail", func(t *testing.T, d Durable) error {
			return d.Tamper.Delete(ctx, "acme", 10, 0)
		}, false, tlog.Missing, 10, true},
		{"CheckpointSignedByAnotherKey", func(t *testing.T, d Durable) error {
			tree := rebuild(t, leaves(t, d)[:7])
			note, err := OtherSigner().Sign("acme", 7, tree.Root())
			if err != nil {
				return err
			}
			return d.Tamper.SetCheckpoint(ctx, "acme", 7, note)
		}, false, tlog.BadSignature, 7, false},
		{"RewriteHistoryAndResign", func(t *testing.T, d Durable) error {
			return rewrite(t, d, leaves(t, d), replaceAt)
		}, true, tlog.Fork, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, saved := setup(t)
			if err := tc.tamper(t, d); err != nil {
				t.Fatalf("tamper: %v", err)
			}
			s, err := d.Open(t, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			v := Signer().Verifier()
			var opts tlog.VerifyOptions
			if tc.saved {
				// Without the saved checkpoint, a rewrite re-signed with the
				// real key is consistent: only an outside copy shows it.
				if rep, err := tlog.Verify(ctx, s, "acme", v, opts); err != nil || !rep.OK() {
					t.Fatalf("the rewritten log alone: %v %+v; want it to look intact", err, rep)
				}
				opts.Saved = [][]byte{saved}
			}
			rep, err := tlog.Verify(ctx, s, "acme", v, opts)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			first := rep.First()
			if first == nil {
				t.Fatalf("Verify found nothing: %+v", rep)
			}
			if first.Kind != tc.kind || (tc.seq != 0 && first.Seq != tc.seq) {
				t.Errorf("first damage = %s at seq %d (%s); want %s at seq %d\nall: %+v", first.Kind, first.Seq, first.Detail, tc.kind, tc.seq, rep.Damage)
			}
			if !tc.refuse {
				return
			}
			// Appending would build the forged or missing rows into the tree
			// and sign over them: the store must refuse instead.
			s.Close()
			w, err := d.Open(t, Signer())
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if _, err := w.Append(ctx, "acme", []*trail.Event{Login("u-z")}, trail.AppendOptions{}); err == nil {
				t.Error("the store appended to a log whose rows no longer match its latest checkpoint")
			} else if !strings.Contains(err.Error(), "refusing to append") {
				t.Errorf("refusal does not say so: %v", err)
			}
		})
	}
}

// rebuild returns the tree of leaves' stored bytes.
func rebuild(t *testing.T, leaves []trail.Leaf) *tlog.Tree {
	tree, err := tlog.NewTree(0, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range leaves {
		tree.Append(l.Body)
	}
	return tree
}

// rewrite changes the actor of seq 2 and makes everything after it agree:
// every row's hashes recomputed, every checkpoint re-signed with the real
// key, as someone holding the key could.
func rewrite(t *testing.T, d Durable, leaves []trail.Leaf, replaceAt func(*testing.T, []byte, string, string, string) []byte) error {
	ctx := context.Background()
	leaves[1].Body = replaceAt(t, leaves[1].Body, `"actor"`, `"u-`, `"x-`)
	if err := d.Tamper.SetBody(ctx, "acme", 2, leaves[1].Body); err != nil {
		return err
	}
	tree, _ := tlog.NewTree(0, nil)
	for _, l := range leaves {
		if err := d.Tamper.SetHashes(ctx, "acme", l.Seq, tree.Append(l.Body)); err != nil {
			return err
		}
		if l.Seq == 4 || l.Seq == 7 || l.Seq == 12 {
			note, err := Signer().Sign("acme", l.Seq, tree.Root())
			if err == nil {
				err = d.Tamper.SetCheckpoint(ctx, "acme", l.Seq, note)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}
