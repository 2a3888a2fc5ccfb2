package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/erasure"
	"github.com/trailaudit/trail/export"
	"github.com/trailaudit/trail/tlog"
)

// The commands of the tamper-evident log: checkpoint, prove, verify and
// export. They open the store read-only.

func newCheckpointCmd(e *env) *cobra.Command {
	var (
		sf        storeFlags
		tf        trustFlags
		pf        policyFlag
		tenant    string
		witnessed bool
	)
	cmd := &cobra.Command{
		Use:   "checkpoint --tenant T [--witnessed]",
		Short: "Print a tenant's latest signed checkpoint",
		Long: `Checkpoint prints the tenant's latest signed checkpoint (a C2SP signed note:
origin, size, root hash, Ed25519 signature), after checking its signature.

Keep it somewhere the log's operators cannot write: 'trail verify --checkpoint
FILE' later proves that the log still extends it, which finds a history that
was rewritten and re-signed, even with the log's own key.

With --witnessed it prints, as JSON, the tenant's checkpoint witnessed
through the root log under the witness policy (--witness-policy, or
DATA/witnesses), with what proves it, checked first: the entry in the
root log, its inclusion proof, and the root checkpoint with the witnesses'
cosignatures (as GET /v1/checkpoint?cosigned=1 answers it).` + trustHelp + checkHelp,
		Example: `  trail checkpoint --tenant acme --key audit.pub > acme-2026-11-26.checkpoint`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			d, tr, err := openLog(cmd.Context(), e, &sf, tenant, &tf, e.stderr)
			if err != nil {
				return err
			}
			defer d.Close()
			if witnessed {
				return printWitnessed(cmd.Context(), e, &pf, &sf, d, tr.v, tenant)
			}
			cp, err := latestCheckpoint(cmd.Context(), d.Store, tr.v, tenant)
			if err != nil {
				return err
			}
			_, err = e.stdout.Write(cp.Note)
			return err
		},
	}
	sf.register(cmd)
	tf.register(cmd)
	pf.register(cmd)
	cmd.Flags().StringVar(&tenant, "tenant", "", "tenant (required)")
	cmd.Flags().BoolVar(&witnessed, "witnessed", false, "print the checkpoint witnessed through the root log, with its proof (JSON)")
	return cmd
}

func newProveCmd(e *env) *cobra.Command {
	var (
		sf     storeFlags
		tf     trustFlags
		tenant string
		seq    uint64
		id     string
		old    string
	)
	cmd := &cobra.Command{
		Use:   "prove --tenant T (--seq N | --id ID | --old CHECKPOINT)",
		Short: "Print an inclusion or consistency proof",
		Long: `Prove prints, as JSON, a proof against the tenant's latest signed checkpoint:

  --seq N or --id ID   that the event is in the log (inclusion proof), with
                       the event's stored bytes and leaf hash;
  --old FILE           that the log extends an older checkpoint (consistency
                       proof), e.g. one an auditor saved with trail checkpoint.

Every proof is checked before it is printed; one that fails is damage (exit 1).` + trustHelp + checkHelp,
		Example: `  trail prove --tenant acme --seq 42
  trail prove --tenant acme --old acme-2026-11-01.checkpoint`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if n := btoi(seq != 0) + btoi(id != "") + btoi(old != ""); n != 1 {
				return usageError("give one of --seq, --id or --old")
			}
			d, tr, err := openLog(ctx, e, &sf, tenant, &tf, e.stderr)
			if err != nil {
				return err
			}
			defer d.Close()
			store := d.Store
			cp, err := latestCheckpoint(ctx, store, tr.v, tenant)
			if err != nil {
				return err
			}
			var out any
			if old != "" {
				out, err = proveConsistency(ctx, e, store, tr.v, tenant, old, cp)
			} else {
				out, err = proveInclusion(ctx, store, tenant, seq, id, cp)
			}
			if err != nil {
				return err
			}
			// One line, not indented: the event must come out as the exact
			// bytes the leaf hash is of.
			return writeJSON(e.stdout, out)
		},
	}
	sf.register(cmd)
	tf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&tenant, "tenant", "", "tenant (required)")
	f.Uint64Var(&seq, "seq", 0, "seq of the event to prove")
	f.StringVar(&id, "id", "", "id of the event to prove")
	f.StringVar(&old, "old", "", "file of an older signed checkpoint to prove the log extends")
	return cmd
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// inclusionProof is what trail prove --seq prints.
type inclusionProof struct {
	Tenant     string          `json:"tenant"`
	Seq        uint64          `json:"seq"`
	LeafIndex  uint64          `json:"leaf_index"`
	Event      json.RawMessage `json:"event,omitempty"`  // the stored bytes, verbatim
	Pruned     bool            `json:"pruned,omitempty"` // retention removed the bytes; the stored leaf hash stands
	LeafHash   []byte          `json:"leaf_hash"`
	TreeSize   uint64          `json:"tree_size"`
	Root       []byte          `json:"root"`
	Proof      [][]byte        `json:"proof"`
	Checkpoint string          `json:"checkpoint"`
}

// proveInclusion proves the event at seq (or of id) against the latest
// checkpoint with tlog.ProveInclusion, which checks the proof before it
// is printed: damage is exit 1.
func proveInclusion(ctx context.Context, store trail.Store, tenant string, seq uint64, id string, cp *tlog.Checkpoint) (*inclusionProof, error) {
	if id != "" {
		ev, err := store.Get(ctx, tenant, id)
		if err != nil {
			return nil, checkError(err)
		}
		seq = ev.Seq
	}
	in, err := tlog.ProveInclusion(ctx, store, tenant, cp, seq, cp.Size)
	var damage *tlog.DamageError
	switch {
	case errors.As(err, &damage):
		return nil, damageError("damage: %s at seq %d: %s (run trail verify)", damage.Kind, damage.Seq, damage.Detail)
	case trail.ErrorCode(err) == trail.EINVALID && len(trail.ErrorFields(err)) > 0:
		f := trail.ErrorFields(err)[0]
		return nil, usageError("--%s: %s", f.Path, f.Message)
	case err != nil:
		return nil, checkError(err)
	}
	return &inclusionProof{Tenant: tenant, Seq: in.Seq, LeafIndex: in.Index, Event: in.Body, Pruned: in.Pruned, LeafHash: in.LeafHash,
		TreeSize: in.Size, Root: in.Root, Proof: in.Proof, Checkpoint: string(cp.Note)}, nil
}

// consistencyProof is what trail prove --old prints.
type consistencyProof struct {
	Tenant     string   `json:"tenant"`
	OldSize    uint64   `json:"old_size"`
	OldRoot    []byte   `json:"old_root"`
	TreeSize   uint64   `json:"tree_size"`
	Root       []byte   `json:"root"`
	Proof      [][]byte `json:"proof"`
	Checkpoint string   `json:"checkpoint"`
}

func proveConsistency(ctx context.Context, e *env, store trail.Store, v *tlog.Verifier, tenant, file string, cp *tlog.Checkpoint) (*consistencyProof, error) {
	b, err := os.ReadFile(e.path(file))
	if err != nil {
		return nil, usageError("--old: %v", err)
	}
	u, err := tlog.ParseUnverified(b)
	if err != nil {
		return nil, usageError("--old: %s", trail.ErrorMessage(err))
	}
	if !strings.HasSuffix(u.Origin, "/"+tenant) {
		return nil, usageError("--old: a checkpoint of %s, not of tenant %s", u.Origin, tenant)
	}
	// Signed by a key the log does not have, the old checkpoint is one the
	// log no longer extends: its history was re-signed since.
	oc, err := v.OpenIn(ctx, store, tenant, b)
	switch {
	case trail.ErrorCode(err) == trail.EINVALID:
		return nil, damageError("damage: the log does not extend the old checkpoint (fork): %s", trail.ErrorMessage(err))
	case err != nil:
		return nil, checkError(err)
	case oc.Size > cp.Size:
		return nil, damageError("damage: the log (size %d) is shorter than the old checkpoint (size %d)", cp.Size, oc.Size)
	}
	p, err := tlog.ConsistencyProof(ctx, store, tenant, oc.Size, cp.Size)
	if err != nil {
		return nil, checkError(err)
	}
	if err := tlog.VerifyConsistency(oc.Size, cp.Size, p, oc.Root, cp.Root); err != nil {
		return nil, damageError("damage: the log does not extend the old checkpoint (fork): %w", err)
	}
	return &consistencyProof{Tenant: tenant, OldSize: oc.Size, OldRoot: oc.Root, TreeSize: cp.Size, Root: cp.Root,
		Proof: p, Checkpoint: string(cp.Note)}, nil
}

func newVerifyCmd(e *env) *cobra.Command {
	var (
		sf       storeFlags
		tf       trustFlags
		pf       policyFlag
		tenant   string
		saved    []string
		bundle   string
		asJSON   bool
		remember string
		forget   bool
	)
	cmd := &cobra.Command{
		Use:   "verify --tenant T [--checkpoint FILE]... | --bundle FILE --key VERIFIER",
		Short: "Check that a log (or an exported bundle) is intact",
		Long: `Verify reads the tenant's whole log and checks it: every stored event hashes to
its leaf, seqs run 1, 2, 3... with no gap, the Merkle tree rebuilt from the
stored bytes has every stored node and every signed checkpoint's root,
every checkpoint is signed by the key its place in the log's key history
gives it (below), every column and targets row that searches read says what
the stored bytes say, and the log is as long as every record the store
keeps of its size. A note says what nothing outside the database vouches
for: only a saved checkpoint shows a rollback of everything in it.

With --checkpoint FILE (repeatable; a checkpoint saved earlier with trail
checkpoint), it also proves the log extends it: this finds a history that was
rewritten and re-signed, even with the log's own key.

It remembers the latest checkpoint of each log it verified intact, as Go's
checksum-database client does, in a file per origin (KEYNAME/trail/TENANT) in
--remember DIR, else $TRAIL_CHECKPOINTS, else trail/checkpoints in the
user's configuration directory (~/.config on Linux); --no-remember turns
this off. A later run holds the log's latest checkpoint to it: a smaller one
is a rollback, one the log's tree does not extend is a fork (exit 1, naming
both sizes and roots); a larger one that extends it is remembered instead.

With a witness policy (--witness-policy FILE, TRAIL_WITNESS_POLICY, or
DATA/witnesses when it exists) it requires the tenant's checkpoint witnessed
through the root log: its entry in the largest root checkpoint a quorum of
the witnesses cosigned, each cosignature verified under the witness's key,
the entry's inclusion proof checked; and it proves the log extends that
checkpoint, as it does a saved one: a rollback or a rewrite below it is
damage. A forged cosignature, or an entry the root checkpoint does not hold,
is damage (exit 1); a log no witnessed root checkpoint holds cannot be
checked against its witnesses (exit 3).

With --bundle FILE it checks a bundle written by trail export --verifiable,
with no database: each event's inclusion proof against the bundle's signed
checkpoint; of a window bundle, also that it is complete: seqs with no gap
from the event just before the window to the event just after it (or the
log's first seq, or the checkpoint's size), recorded_at never decreasing,
those two outside the window and every other inside. It then says
"complete: every event recorded in [T1, T2) is here"; a selection of
events says "not a complete window" and is not damage. An event whose
personal data is sealed carries its openings (its own keys) and the event in
clear: verify opens the leaf's sealed bytes with them and holds the
cleartext to them (a difference is damage); an erased subject's values
read [erased].

It names the first damaged seq and the kind of damage: changed, missing,
extra, reordered, bad_signature, fork, index or rollback. Events whose payload retention
removed (trail retention) are listed as pruned, with the policy and time of
the audit_log_pruned event that records them: they are not damage; a
payload missing with no such record is.` + trustHelp + `

It prints first which keys it trusts and where they came from, and, for a
log whose key was rotated, the chain of its keys.` + checkHelp,
		Example: `  trail verify --tenant acme --key audit.pub
  trail verify --tenant acme --trusted-keys /etc/trail/trusted-keys --checkpoint acme-2026-11-01.checkpoint
  trail verify --bundle acme.bundle --key 'audit.example.com+1a2b3c4d+AW...'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if bundle != "" {
				if tenant != "" || len(saved) > 0 {
					return usageError("--bundle is checked on its own: drop --tenant and --checkpoint")
				}
				return verifyBundle(e, bundle, &tf, asJSON)
			}
			says := e.stdout // which keys are trusted: part of the report
			if asJSON {
				says = e.stderr
			}
			d, tr, err := openLog(ctx, e, &sf, tenant, &tf, says)
			if err != nil {
				return err
			}
			defer d.Close()
			store := d.Store
			var savedNotes [][]byte
			for _, f := range saved {
				b, err := os.ReadFile(e.path(f))
				if err != nil {
					return usageError("--checkpoint: %v", err)
				}
				savedNotes = append(savedNotes, b)
			}
			cosigned, err := witnessed(ctx, e, &pf, &sf, d, tr.v, tenant, says)
			if err != nil {
				return err
			}
			if cosigned != nil {
				// The log must extend what the witnesses cosigned, as it
				// must a checkpoint an auditor saved.
				savedNotes = append(savedNotes, cosigned.Note)
			}
			t0 := time.Now()
			rep, err := tlog.VerifyStore(ctx, store, tenant, tr.v, savedNotes)
			var untrusted *tlog.UntrustedError
			switch {
			case errors.As(err, &untrusted):
				return uncheckedError("no checkpoint of tenant %s is signed by the trusted key %s; the log is signed by %s",
					tenant, strings.Join(untrusted.Want, ", "), strings.Join(untrusted.SignedBy, ", "))
			case trail.ErrorCode(err) == trail.EINVALID:
				return usageError("%v", err)
			case err != nil:
				return uncheckedError("reading the log of tenant %s: %v", tenant, err)
			case rep.Leaves == 0 && rep.Checkpoints == 0:
				return noLog(tenant)
			}
			if rep.OK() && !forget {
				if err := checkRemembered(ctx, e, remember, store, tr.v, tenant, rep, says); err != nil {
					return err
				}
			}
			if asJSON {
				if err := writeJSON(e.stdout, rep); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(e.stdout, "%s: %d events, %d checkpoints (latest size %d), %d saved checkpoints checked in %v\n",
					tenant, rep.Leaves, rep.Checkpoints, rep.Size, rep.Saved, time.Since(t0).Round(time.Millisecond))
				printKeys(e.stdout, rep.Keys)
				printPrunedRanges(e.stdout, rep.Pruned)
				printDamage(e.stdout, rep.Damage)
				if rep.Unvouched != "" {
					fmt.Fprintln(e.stdout, "note:", rep.Unvouched)
				}
			}
			if !rep.OK() {
				return errFound
			}
			if pf.policy != nil {
				if cosigned == nil {
					return uncheckedError("tenant %s: no checkpoint is cosigned by a quorum of the %s: "+
						"the log cannot be checked against its witnesses (is trail serve witnessing with this policy, and are they up?)",
						tenant, describePolicy(pf.policy, pf.path))
				}
				var by []string
				for _, c := range cosigned.Cosignatures {
					by = append(by, c.Witness+" at "+c.Time.Format(time.RFC3339))
				}
				fmt.Fprintf(says, "witnessed: the log extends its checkpoint of size %d, entry %d of the root log, whose checkpoint is cosigned by %s\n",
					cosigned.Size, cosigned.Root.Seq, strings.Join(by, ", "))
			}
			return nil
		},
	}
	sf.register(cmd)
	tf.register(cmd)
	pf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&remember, "remember", "", "directory of the checkpoints remembered (default $TRAIL_CHECKPOINTS, else the user's config dir)")
	f.BoolVar(&forget, "no-remember", false, "neither check against nor remember the latest checkpoint")
	f.StringVar(&tenant, "tenant", "", "tenant whose log to verify")
	f.StringArrayVar(&saved, "checkpoint", nil, "file of a saved checkpoint the log must extend (repeatable)")
	f.StringVar(&bundle, "bundle", "", "verify this bundle (trail export --verifiable) instead of a store")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

// checkRemembered holds the latest checkpoint of a log that verified to
// the one remembered of it (tlog.CheckRemembered, with proofs from the
// store, checked against the remembered root): a rollback or fork is added
// to rep's damage. With no directory to remember in, it says so on says
// and checks nothing.
func checkRemembered(ctx context.Context, e *env, flag string, store trail.Store, v *tlog.Verifier, tenant string, rep *tlog.Report, says io.Writer) error {
	dir, err := e.rememberDir(flag)
	if err != nil {
		fmt.Fprintf(says, "note: no checkpoint is remembered (%v): give --remember DIR\n", err)
		return nil
	}
	cp, err := latestCheckpoint(ctx, store, v, tenant)
	if err != nil {
		return err
	}
	prove := func(ctx context.Context, from, to uint64) ([][]byte, error) {
		return tlog.ConsistencyProof(ctx, store, tenant, from, to)
	}
	err = tlog.CheckRemembered(ctx, tlog.RememberDir(dir), cp, true, prove)
	var ie *tlog.InconsistentError
	switch {
	case errors.As(err, &ie):
		kind, seq := tlog.Fork, min(ie.Got.Size, ie.Remembered.Size)+1
		if ie.Rollback {
			kind = tlog.Rollback
		}
		rep.Damage = append(rep.Damage, tlog.Damage{Kind: kind, Seq: seq, Detail: "the log's latest checkpoint is not consistent with the one remembered in " + dir + ": " + ie.Error()})
	case err != nil:
		return uncheckedError("the checkpoint remembered in %s: %v", dir, err)
	default:
		fmt.Fprintf(says, "latest checkpoint (size %d) consistent with the one remembered in %s\n", cp.Size, dir)
	}
	return nil
}

// rememberDir is where trail verify remembers checkpoints: flag, else
// $TRAIL_CHECKPOINTS, else tlog.DefaultRememberDir (of the process's
// environment: a test's own environment (env.vars) has no default).
func (e *env) rememberDir(flag string) (string, error) {
	if flag != "" {
		return e.path(flag), nil
	}
	if d, ok := e.lookupEnv("TRAIL_CHECKPOINTS"); ok && d != "" {
		return e.path(d), nil
	}
	if e.vars != nil {
		return "", errors.New("$TRAIL_CHECKPOINTS is not set")
	}
	return tlog.DefaultRememberDir()
}

func verifyBundle(e *env, file string, tf *trustFlags, asJSON bool) error {
	tr, err := tf.resolve(e, nil)
	if err != nil {
		return err
	}
	in, closeIn, err := e.input(file)
	if err != nil {
		return err
	}
	defer closeIn()
	if asJSON {
		fmt.Fprintln(e.stderr, tr)
	} else {
		fmt.Fprintln(e.stdout, tr)
	}
	rep, err := tlog.VerifyBundleOpen(in, tr.v, erasure.OpenLeaf)
	var untrusted *tlog.UntrustedError
	switch {
	case errors.As(err, &untrusted):
		return uncheckedError("the bundle's checkpoint is %v", untrusted)
	case err != nil:
		return damageError("%v", err)
	}
	if asJSON {
		if err := writeJSON(e.stdout, rep); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(e.stdout, "bundle of %s: %d events proven against the checkpoint of size %d\n", rep.Tenant, rep.Events, rep.Size)
		if rep.Opened > 0 {
			fmt.Fprintf(e.stdout, "cleartext: %d events' personal data in clear is what their leaves' sealed bytes open to (%q where a subject was erased)\n",
				rep.Opened, erasure.Erased)
		}
		if rep.Unopened > 0 {
			fmt.Fprintf(e.stdout, "sealed: %d events hold personal data sealed before per-event keys (enc1:), which cannot be opened here: no opening can be handed out for it, so it is shown sealed (seqs %s)\n",
				rep.Unopened, seqList(rep.Unopenable, rep.Unopened))
		}
		printDamage(e.stdout, rep.Damage)
		switch w := rep.Window; {
		case w == nil:
			fmt.Fprintln(e.stdout, "not a complete window: a selection of events; events it does not hold may exist")
		case w.Complete:
			seqs := fmt.Sprintf("seqs %d to %d", w.First, w.Last)
			if w.Last < w.First {
				seqs = "none"
			}
			fmt.Fprintf(e.stdout, "complete: every event recorded in [%s, %s) is here (%s, of the checkpoint's %d)\n",
				windowStart(w.Since), w.Until.UTC().Format(time.RFC3339Nano), seqs, rep.Size)
		default:
			fmt.Fprintf(e.stdout, "NOT complete: the window [%s, %s) may leave events out\n", windowStart(w.Since), w.Until.UTC().Format(time.RFC3339Nano))
		}
	}
	if !rep.OK() {
		return errFound
	}
	return nil
}

// printPrunedRanges lists what retention pruned, one line per
// audit_log_pruned record, at most 20 lines.
func printPrunedRanges(w io.Writer, pruned []tlog.PrunedRange) {
	type record struct {
		r      tlog.PrunedRange
		ranges [][2]uint64
	}
	var recs []*record
	by := map[uint64]*record{}
	for _, r := range pruned {
		rec := by[r.BySeq]
		if rec == nil {
			rec = &record{r: r}
			by[r.BySeq] = rec
			recs = append(recs, rec)
		}
		rec.ranges = append(rec.ranges, [2]uint64{r.From, r.To})
	}
	for i, rec := range recs {
		if i == 20 {
			fmt.Fprintf(w, "(and %d more pruning records)\n", len(recs)-i)
			break
		}
		fmt.Fprintf(w, "pruned by policy %s at %s: seqs %s (recorded at seq %d)\n",
			rec.r.Policy, rec.r.At.UTC().Format(time.RFC3339), rangesText(rec.ranges, 10), rec.r.BySeq)
	}
}

// printKeys lists the keys of a log that rotated its key, and where each
// took over.
func printKeys(w io.Writer, keys []tlog.KeyEpoch) {
	for i, k := range keys {
		from := "from the start"
		if i > 0 {
			from = fmt.Sprintf("from the rotation at size %d (signed by both)", k.From)
		}
		trusted := ""
		if k.Trusted {
			trusted = ", trusted"
		}
		fmt.Fprintf(w, "key %s %s%s\n", tlog.KeyID(k.Key), from, trusted)
	}
}

// printDamage ends a verification report: intact, or each finding.
func printDamage(w io.Writer, d []tlog.Damage) {
	if len(d) == 0 {
		fmt.Fprintln(w, "intact")
		return
	}
	fmt.Fprintf(w, "DAMAGE: first at seq %d (%s)\n", d[0].Seq, d[0].Kind)
	for _, x := range d {
		fmt.Fprintf(w, "  %-13s seq %-8d %s\n", x.Kind, x.Seq, x.Detail)
	}
	if len(d) == tlog.MaxDamage {
		fmt.Fprintf(w, "  (only the first %d findings are listed)\n", tlog.MaxDamage)
	}
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func newExportCmd(e *env) *cobra.Command {
	var (
		sf         storeFlags
		ff         filterFlags
		tf         trustFlags
		verifiable bool
		out        string
		format     string
	)
	cmd := &cobra.Command{
		Use:   "export --tenant T [filters] [--format ndjson|csv|ocsf | --verifiable] [--out FILE|-]",
		Short: "Write a tenant's events as NDJSON, CSV or OCSF, or as a verifiable bundle",
		Long: `Export writes every event of the tenant that passes the filters (the same as
trail query's), oldest first, in --format: ndjson (the default: one JSON
event per line, as the API takes and returns them), csv (a header row, then
a row per event, guarded against formula injection) or ocsf (one OCSF 1.3
event per line). It writes to standard output, or to --out FILE (--out -
is standard output too).

With --verifiable it writes a bundle instead: the latest signed checkpoint,
then each event's stored bytes with its inclusion proof. Anyone holding the
verifier key can check the bundle with no database (trail verify --bundle).
With no filter but --since and --until, the bundle is a complete window: it
also holds the events just before and after the window, which proves that
no event recorded in it is left out. Other filters make a selection, which
proves only the events it holds.
The checkpoint is checked first, as trail checkpoint checks it. A bundle
has its own format: --verifiable takes no other --format.` + queryHelp + trustHelp + checkHelp,
		Example: `  trail export --tenant acme --since 30d --out acme.ndjson
  trail export --tenant acme --format csv --out - | head
  trail export --tenant acme --format ocsf --action user_login_failed > logins.ocsf.ndjson
  trail export --tenant acme --actor u-123 --verifiable --out u-123.bundle`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			q, err := ff.query(time.Now())
			if err != nil {
				return err
			}
			f, err := export.ParseFormat(format)
			if err != nil {
				return usageError("--format: %s", trail.ErrorMessage(err))
			}
			if verifiable && f != export.NDJSON {
				return usageError("--verifiable writes a bundle, whose format is its own: it takes no --format %s", f)
			}
			w := e.stdout
			if out != "" && out != "-" {
				file, err := os.Create(e.path(out))
				if err != nil {
					return usageError("--out: %v", err)
				}
				defer file.Close()
				w = file
			}
			var n int
			if verifiable {
				n, err = exportBundle(ctx, e, &sf, q, &tf, w)
			} else {
				n, err = exportEvents(ctx, e, &sf, q, f, w)
			}
			if err != nil {
				return err
			}
			if file, ok := w.(*os.File); ok && out != "" && out != "-" {
				if err := file.Sync(); err != nil {
					return &exitError{code: 1, err: err}
				}
			}
			fmt.Fprintf(e.stderr, "%d events exported\n", n)
			return nil
		},
	}
	sf.register(cmd)
	ff.register(cmd, "tenant to export (required)")
	tf.register(cmd)
	fl := cmd.Flags()
	fl.BoolVar(&verifiable, "verifiable", false, "write a bundle with the signed checkpoint and inclusion proofs")
	fl.StringVar(&format, "format", string(export.NDJSON), "ndjson, csv or ocsf")
	fl.StringVar(&out, "out", "", "file to write; - or none: standard output")
	return cmd
}

// eachEvent calls fn for each event matching q and recorded before it
// starts, oldest first, page by page.
func eachEvent(ctx context.Context, store trail.Store, q trail.Query, fn func(*trail.Event) error) error {
	q.Limit, q.Descending = trail.MaxPageSize, false
	// Of the log as it stands now: under steady ingest the export ends.
	if now := time.Now(); q.RecordedBefore.IsZero() || q.RecordedBefore.After(now) {
		q.RecordedBefore = now
	}
	for {
		page, err := store.Query(ctx, q)
		if err != nil {
			return storeError(err)
		}
		for _, ev := range page.Events {
			if err := fn(ev); err != nil {
				return err
			}
		}
		if page.Next == "" {
			return nil
		}
		q.Cursor = page.Next
	}
}

// exportEvents writes the events q matches to w in format f, and returns
// how many it wrote.
func exportEvents(ctx context.Context, e *env, sf *storeFlags, q trail.Query, f export.Format, w io.Writer) (int, error) {
	d, err := sf.open(ctx, e, false)
	if err != nil {
		return 0, openError(err)
	}
	defer d.Close()
	if q, err = checkQuery(ctx, d, q); err != nil {
		return 0, err
	}
	ew, err := export.NewWriter(w, f, d.Catalog)
	if err != nil {
		return 0, usageError("--format: %s", trail.ErrorMessage(err))
	}
	n := 0
	err = eachEvent(ctx, d.Reader, q, func(ev *trail.Event) error {
		n++
		return ew.Write(ev)
	})
	if cerr := ew.Close(); err == nil && cerr != nil {
		err = &exitError{code: 1, err: cerr}
	}
	return n, err
}

func exportBundle(ctx context.Context, e *env, sf *storeFlags, q trail.Query, tf *trustFlags, w io.Writer) (int, error) {
	d, tr, err := openLog(ctx, e, sf, q.Tenant, tf, e.stderr)
	if err != nil {
		return 0, err
	}
	defer d.Close()
	store := d.Store
	cp, err := latestCheckpoint(ctx, store, tr.v, q.Tenant)
	if err != nil {
		return 0, err
	}
	if q, err = checkQuery(ctx, d, q); err != nil {
		return 0, err
	}
	// Of the log as it stands now.
	if now := time.Now(); q.RecordedBefore.IsZero() || q.RecordedBefore.After(now) {
		q.RecordedBefore = now
	}
	var opener tlog.BundleOpener // the openings of events' sealed data
	if d.Sealer != nil {
		opener = d.Sealer
	}
	n, window, err := tlog.WriteBundle(ctx, w, store, cp, q, opener)
	if err != nil {
		return n, &exitError{code: 1, err: err}
	}
	if window {
		fmt.Fprintf(e.stderr, "a complete window: every event recorded in [%s, %s) of the checkpoint's %d, with the events just outside it\n",
			windowStart(q.RecordedAfter), q.RecordedBefore.UTC().Format(time.RFC3339Nano), cp.Size)
	} else {
		fmt.Fprintln(e.stderr, "not a complete window: filters other than --since and --until select the events; the bundle proves each event it holds, not that none is left out")
	}
	return n, nil
}

// windowStart prints the start of a window: its time, or the log's start.
func windowStart(t time.Time) string {
	if t.IsZero() {
		return "the log's start"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// openLog checks the tenant flag, says on says which keys it trusts (tf)
// and opens the store read-only.
func openLog(ctx context.Context, e *env, sf *storeFlags, tenant string, tf *trustFlags, says io.Writer) (*deployment, *trust, error) {
	if m := trail.CheckLog(tenant); m != "" {
		return nil, nil, usageError("--tenant: %s", m)
	}
	tr, err := tf.resolve(e, sf)
	if err != nil {
		return nil, nil, err
	}
	fmt.Fprintln(says, tr)
	d, err := sf.open(ctx, e, false)
	if err != nil {
		return nil, nil, uncheckedError("the store cannot be read: %v", err)
	}
	return d, tr, nil
}

// latestCheckpoint reads and verifies the tenant's latest checkpoint,
// following the log's key history from v (tlog.OpenLatest). One that no
// trusted key signed cannot be checked (exit 3); one that does not verify
// is damage.
func latestCheckpoint(ctx context.Context, store trail.Store, v *tlog.Verifier, tenant string) (*tlog.Checkpoint, error) {
	cp, err := tlog.OpenLatest(ctx, store, tenant, v)
	var untrusted *tlog.UntrustedError
	switch {
	case err == nil:
		return cp, nil
	case trail.ErrorCode(err) == trail.ENOTFOUND:
		n, cerr := store.Count(ctx, trail.Query{Tenant: tenant})
		if cerr != nil || n == 0 {
			return nil, noLog(tenant)
		}
		return nil, damageError("damage: tenant %s holds %d events and no checkpoint (run trail verify)", tenant, n)
	case errors.As(err, &untrusted):
		return nil, uncheckedError("the latest checkpoint of tenant %s is %v", tenant, untrusted)
	case trail.ErrorCode(err) == trail.EINVALID:
		return nil, damageError("damage: the latest checkpoint: %s (run trail verify)", trail.ErrorMessage(err))
	}
	return nil, checkError(err)
}

// noLog reports a tenant with nothing to check.
func noLog(tenant string) error {
	return uncheckedError("tenant %s has no log: no events, no checkpoint", tenant)
}

// storeError turns a store's error into the command's: a usage error for
// bad input or a thing not found, else a failure.
func storeError(err error) error {
	switch trail.ErrorCode(err) {
	case trail.EINVALID, trail.ENOTFOUND:
		return usageError("%v", err)
	}
	return &exitError{code: exitFound, err: err}
}

// checkError is storeError in a check: a failure to read is a check that
// could not be made.
func checkError(err error) error {
	switch trail.ErrorCode(err) {
	case trail.EINVALID, trail.ENOTFOUND:
		return storeError(err)
	}
	return uncheckedError("%v", err)
}

// seqList prints seqs, of n in all, "1, 4, 9" (and "and N more" past them).
func seqList(seqs []uint64, n int) string {
	parts := make([]string, len(seqs))
	for i, q := range seqs {
		parts[i] = strconv.FormatUint(q, 10)
	}
	out := strings.Join(parts, ", ")
	if n > len(seqs) {
		out += fmt.Sprintf(" and %d more", n-len(seqs))
	}
	return out
}
