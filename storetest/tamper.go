package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
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
	// SetColumn sets one text column a read selects on (actor_id,
	// workspace, action, outcome, correlation_id) of the row at seq,
	// leaving its bytes and hashes as they are.
	SetColumn(ctx context.Context, tenant string, seq uint64, column, value string) error
	// SetTargets replaces the targets rows of the event at seq with
	// targets (none: they are deleted).
	SetTargets(ctx context.Context, tenant string, seq uint64, targets []trail.Target) error
	// Rollback takes the log back to size as someone would who wants it
	// to look as if it never grew: it deletes the rows past size with
	// their targets rows, and the checkpoints of larger sizes; with head,
	// it also sets the store's head back to size (PostgreSQL's heads row,
	// SQLite's tenants row), and with keys it deletes the idempotency keys
	// that name seqs past size.
	Rollback(ctx context.Context, tenant string, size uint64, head, keys bool) error
}

// RunTamper is the tamper matrix: for each way an administrator could
// change the log behind the store's back, tlog.VerifyStore (what trail
// verify runs) must find it and name the first damaged seq and the kind of
// damage, with and without a checkpoint an auditor saved; a search the
// change would mislead must fail, naming the seq, rather than answer. A
// change nothing inside the database can show (a history rewritten and
// re-signed, a consistent rollback) must look intact without the saved
// checkpoint, with the report saying nothing outside vouches for it, and
// be found with it. newDurable must return a fresh, empty database each
// call, with a Tamper.
func RunTamper(t *testing.T, newDurable func(t *testing.T) Durable) {
	// The log each case starts from: 12 events in three commits, so there
	// are checkpoints of sizes 4, 7 and 12; the last commit has an
	// idempotency key. Seqs 1-4 are the logins of u-a to u-d, 5-7 of u-a
	// to u-c, 8-12 of u-a to u-e, each with its session as target.
	setup := func(t *testing.T) (Durable, []byte) {
		d := newDurable(t)
		s := d.open(t)
		defer s.Close()
		for j, n := range []int{4, 3, 5} {
			batch := make([]*trail.Event, n)
			for i := range batch {
				batch[i] = Login("u-" + string(rune('a'+i)))
			}
			var opts trail.AppendOptions
			if j == 2 {
				opts.IdempotencyKey = "k-3"
			}
			if _, err := s.Append(context.Background(), "acme", batch, opts); err != nil {
				t.Fatal(err)
			}
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
	column := func(seq uint64, column, value string) func(t *testing.T, d Durable) error {
		return func(t *testing.T, d Durable) error { return d.Tamper.SetColumn(ctx, "acme", seq, column, value) }
	}
	targets := func(seq uint64, targets ...trail.Target) func(t *testing.T, d Durable) error {
		return func(t *testing.T, d Durable) error { return d.Tamper.SetTargets(ctx, "acme", seq, targets) }
	}
	session := func(actor string) trail.Target { return trail.Target{Type: "session", ID: "s-" + actor} }
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, d Durable) error
		hidden bool // only the saved checkpoint shows it
		kind   tlog.Kind
		seq    uint64
		refuse bool         // the store must refuse to append after it
		search *trail.Query // a search the change misleads, which must fail naming seq
	}{
		{"ChangeOneByteOfContext", func(t *testing.T, d Durable) error {
			l := leaves(t, d)[4]
			return d.Tamper.SetBody(ctx, "acme", 5, replaceAt(t, l.Body, `"context"`, `"password"`, `"passwore"`))
		}, false, tlog.Changed, 5, false, nil},
		{"ChangeTheActor", func(t *testing.T, d Durable) error {
			l := leaves(t, d)[5]
			return d.Tamper.SetBody(ctx, "acme", 6, replaceAt(t, l.Body, `"actor"`, `"u-`, `"x-`))
		}, false, tlog.Changed, 6, false, nil},
		{"ChangeAnEventAndItsLeafHash", func(t *testing.T, d Durable) error {
			l := leaves(t, d)[1]
			body := replaceAt(t, l.Body, `"actor"`, `"u-`, `"x-`)
			if err := d.Tamper.SetBody(ctx, "acme", 2, body); err != nil {
				return err
			}
			return d.Tamper.SetHashes(ctx, "acme", 2, append(tlog.LeafHash(body), l.Hashes[trail.HashSize:]...))
		}, false, tlog.Changed, 2, false, nil},
		{"DeleteARow", func(t *testing.T, d Durable) error {
			return d.Tamper.Delete(ctx, "acme", 3, 4)
		}, false, tlog.Missing, 3, false, nil},
		{"InsertAForgedRow", func(t *testing.T, d Durable) error {
			l := leaves(t, d)
			forged := replaceAt(t, l[11].Body, `"seq"`, `12`, `13`)
			forged = replaceAt(t, forged, `"id":"0`, `"0`, `"f`)
			tree := rebuild(t, l)
			return d.Tamper.Insert(ctx, "acme", 13, forged, tree.Append(forged))
		}, false, tlog.Extra, 13, true, nil},
		{"SwapTwoRows", func(t *testing.T, d Durable) error {
			return d.Tamper.Swap(ctx, "acme", 2, 9)
		}, false, tlog.Reordered, 2, false, nil},
		{"TruncateTheTail", func(t *testing.T, d Durable) error {
			return d.Tamper.Delete(ctx, "acme", 10, 0)
		}, false, tlog.Missing, 10, true, nil},
		{"CheckpointSignedByAnotherKey", func(t *testing.T, d Durable) error {
			tree := rebuild(t, leaves(t, d)[:7])
			note, err := OtherSigner().Sign("acme", 7, tree.Root())
			if err != nil {
				return err
			}
			return d.Tamper.SetCheckpoint(ctx, "acme", 7, note)
		}, false, tlog.BadSignature, 7, false, nil},
		{"RewriteHistoryAndResign", func(t *testing.T, d Durable) error {
			return rewrite(t, d, leaves(t, d), replaceAt)
		}, true, tlog.Fork, 0, false, nil},

		// Only what searches read, the bytes and the tree untouched.
		{"ChangeOnlyTheActorColumn", column(6, "actor_id", "u-z"), false, tlog.Index, 6, false, &trail.Query{ActorID: "u-z"}},
		{"ChangeOnlyTheWorkspaceColumn", column(3, "workspace", "ws-9"), false, tlog.Index, 3, false, &trail.Query{Workspace: "ws-9"}},
		{"ChangeOnlyTheActionColumn", column(4, "action", "user_login_failed"), false, tlog.Index, 4, false,
			&trail.Query{Actions: []string{"user_login_failed"}}},
		{"ChangeTheActionColumnToAPurgeRecord", column(8, "action", tlog.PrunedAction), false, tlog.Index, 8, false,
			&trail.Query{Actions: []string{tlog.PrunedAction}}},
		{"ChangeOnlyTheOutcomeColumn", column(9, "outcome", "failure"), false, tlog.Index, 9, false, &trail.Query{Outcome: trail.OutcomeFailure}},
		{"ChangeOnlyTheCorrelationColumn", column(10, "correlation_id", "c-planted"), false, tlog.Index, 10, false,
			&trail.Query{CorrelationID: "c-planted"}},
		{"ChangeATargetsRow", targets(5, trail.Target{Type: "session", ID: "s-x"}), false, tlog.Index, 5, false, &trail.Query{TargetID: "s-x"}},
		{"DeleteATargetsRow", targets(7), false, tlog.Index, 7, false, nil},
		{"PlantATargetsRow", targets(2, session("u-b"), trail.Target{Type: "doc", ID: "d-planted"}), false, tlog.Index, 2, false,
			&trail.Query{TargetType: "doc"}},

		// Rollbacks to the checkpoint of size 7 (or 4).
		{"RollBackRowsAndCheckpoints", func(t *testing.T, d Durable) error {
			return d.Tamper.Rollback(ctx, "acme", 7, false, false)
		}, false, tlog.Rollback, 8, true, nil},
		{"RollBackRowsCheckpointsAndHead", func(t *testing.T, d Durable) error {
			return d.Tamper.Rollback(ctx, "acme", 7, true, false) // the idempotency keys tell
		}, false, tlog.Rollback, 8, false, nil},
		{"RollBackEverything", func(t *testing.T, d Durable) error {
			return d.Tamper.Rollback(ctx, "acme", 4, true, true)
		}, true, tlog.Rollback, 5, false, nil},
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
			rep, err := tlog.VerifyStore(ctx, s, "acme", v, nil)
			switch {
			case err != nil:
				t.Fatalf("VerifyStore: %v", err)
			case tc.hidden && !rep.OK():
				t.Fatalf("the log alone: %+v; want it to look intact, as nothing inside the database can show it", rep.Damage)
			case tc.hidden && !strings.Contains(rep.Unvouched, "nothing outside the database vouches"):
				t.Errorf("the report does not say that nothing outside vouches for the log: %q", rep.Unvouched)
			case !tc.hidden:
				checkFirst(t, "VerifyStore", rep, tc.kind, tc.seq)
			}
			// An auditor's checkpoint of size 7 finds it too.
			if rep, err = tlog.VerifyStore(ctx, s, "acme", v, [][]byte{saved}); err != nil {
				t.Fatalf("VerifyStore with the saved checkpoint: %v", err)
			}
			checkFirst(t, "VerifyStore with the saved checkpoint", rep, tc.kind, tc.seq)
			samePasses(t, s, [][]byte{saved})
			if tc.search != nil {
				q := *tc.search
				q.Tenant = "acme"
				page, err := s.Query(ctx, q)
				if !errors.Is(err, trail.ErrIndex) || trail.ErrorCode(err) != trail.EINTERNAL ||
					!strings.Contains(err.Error(), fmt.Sprintf("seq %d ", tc.seq)) || !strings.Contains(err.Error(), "run trail verify") {
					t.Errorf("search %+v: %v, %v; want an EINTERNAL error naming seq %d and trail verify", q, page, err, tc.seq)
				}
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

// checkFirst fails t unless rep's first damage is kind at seq (0: any).
func checkFirst(t *testing.T, what string, rep *tlog.Report, kind tlog.Kind, seq uint64) {
	t.Helper()
	first := rep.First()
	if first == nil {
		t.Fatalf("%s found nothing: %+v", what, rep)
	}
	if first.Kind != kind || (seq != 0 && first.Seq != seq) {
		t.Errorf("%s: first damage = %s at seq %d (%s); want %s at seq %d\nall: %+v", what, first.Kind, first.Seq, first.Detail, kind, seq, rep.Damage)
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

// rewrite changes the actor of seq 2 (its email) and makes everything after
// it agree: every row's hashes recomputed, every checkpoint re-signed with
// the real key, as someone holding the key could.
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

// samePasses: when s reads rows and index values in one pass
// (trail.LeafIndexScanner), what tlog.Verify reports of acme's log, with
// and without saved, is exactly what it reports reading them in two
// (ScanLeaves, then ScanIndex): the one pass decides nothing differently.
func samePasses(t *testing.T, s trail.Store, saved [][]byte) {
	t.Helper()
	if _, ok := s.(trail.LeafIndexScanner); !ok {
		return
	}
	ctx := context.Background()
	pruned, err := tlog.PrunedRanges(ctx, s, "acme")
	if err != nil {
		t.Fatal(err)
	}
	v := Signer().Verifier()
	for _, saved := range [][][]byte{nil, saved} {
		opts := tlog.VerifyOptions{Saved: saved, Pruned: pruned}
		one, err := tlog.Verify(ctx, s, "acme", v, opts)
		if err != nil {
			t.Fatalf("Verify in one pass: %v", err)
		}
		two, err := tlog.Verify(ctx, twoPasses{s}, "acme", v, opts)
		if err != nil {
			t.Fatalf("Verify in two passes: %v", err)
		}
		if diff := gocmp.Diff(two, one); diff != "" {
			t.Errorf("Verify with %d saved checkpoints, in one pass (ScanLeavesIndexed) against two (-two +one):\n%s", len(saved), diff)
		}
	}
}

// twoPasses is a Log that offers no more than trail.Log: Verify reads it
// with ScanLeaves and ScanIndex.
type twoPasses struct{ trail.Log }
