package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/retention"
	"github.com/trailaudit/trail/tlog"
)

func newRetentionCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "retention",
		Short: "Plan and apply retention: remove payloads past their retention, keeping the log verifiable",
		Long: `Retention removes the payloads of a tenant's events kept longer than their
retention, and never those a legal hold covers (trail holds). Each event
keeps its place in the log: its leaf hash stays, so trail verify still
checks the whole log, and each purge appends an audit_log_pruned event
naming the policy and the seqs pruned, which verify reports as pruning, not
damage. A pruned event is gone from queries and exports for good.

An event's retention is, first that applies: a rule on its action, a rule
on its category, a rule on one of its compliance tags (the longest), the
catalog's retention class of its action (short 90 days, standard 365, long
2555; custom actions standard). Its age counts from recorded_at. The
events that record purges, legal holds and erasures are never pruned.

Rules come from --rules FILE:

  {"rules": [
    {"name": "logins-30d", "action": "user_login_success", "days": 30},
    {"name": "notifications", "category": "notification", "days": 7},
    {"name": "pci", "compliance": "PCI-DSS", "days": 400}
  ]}

Without it the catalog's classes apply. 'plan' shows what 'apply' would
prune and changes nothing.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError("unknown command %q for \"trail retention\" (plan or apply)", args[0])
			}
			return cmd.Help()
		},
	}
	cmd.AddCommand(newRetentionPlanCmd(e), newRetentionApplyCmd(e))
	return cmd
}

// retentionFlags are the flags plan and apply share.
type retentionFlags struct {
	sf     storeFlags
	tenant string
	rules  string
	now    string
}

func (f *retentionFlags) register(cmd *cobra.Command) {
	f.sf.register(cmd)
	cmd.Flags().StringVar(&f.tenant, "tenant", "", "tenant whose log to prune (required)")
	cmd.Flags().StringVar(&f.rules, "rules", "", "JSON file of retention rules (default: the catalog's retention classes)")
	cmd.Flags().StringVar(&f.now, "now", "", "the time to judge ages at, RFC 3339 or a date (default: now)")
}

// plan checks the flags, opens the store (to write when writer) and makes
// the plan. The caller must close the store.
func (f *retentionFlags) plan(ctx context.Context, e *env, writer bool) (*deployment, *retention.Plan, error) {
	if m := trail.CheckTenant(f.tenant); m != "" {
		return nil, nil, usageError("--tenant: %s", m)
	}
	now := time.Now()
	if f.now != "" {
		t, err := time.Parse(time.RFC3339Nano, f.now)
		if err != nil {
			if t, err = time.Parse(time.DateOnly, f.now); err != nil {
				return nil, nil, usageError("--now: %q is not a time (2026-11-24T10:00:00Z) or a date (2026-11-24)", f.now)
			}
		}
		now = t
	}
	var rulesFile string
	if f.rules != "" {
		rulesFile = e.path(f.rules)
	}
	rules, err := retention.LoadRules(rulesFile)
	if err != nil {
		msg := trail.ErrorMessage(err)
		for _, fe := range trail.ErrorFields(err) {
			msg += "; " + fe.Path + ": " + fe.Message
		}
		return nil, nil, usageError("--rules: %s", msg)
	}
	d, err := f.sf.open(ctx, e, writer)
	if err != nil {
		return nil, nil, &exitError{code: 1, err: err}
	}
	holds, err := d.Holds.Holds(ctx, f.tenant)
	if err == nil {
		// Holds select by actor id, target id and recorded_at, which
		// sealing leaves in clear: the plan reads the store as it is.
		var p *retention.Plan
		if p, err = retention.NewPlan(ctx, d.Store, f.tenant, d.Catalog.For(f.tenant), rules, holds, now); err == nil {
			return d, p, nil
		}
	}
	d.Close()
	return nil, nil, &exitError{code: 1, err: err}
}

func newRetentionPlanCmd(e *env) *cobra.Command {
	var f retentionFlags
	cmd := &cobra.Command{
		Use:   "plan --tenant T [--rules FILE] [--now TIME]",
		Short: "Show what retention would prune (a dry run)",
		Long: `Plan reads the tenant's log and prints, for each rule, how many events are
past its retention, their seqs, and how many of them legal holds keep. It
changes nothing and needs no signing key.`,
		Example: `  trail retention plan --tenant acme
  trail retention plan --tenant acme --rules acme-retention.json --now 2027-01-01`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			d, p, err := f.plan(cmd.Context(), e, false)
			if err != nil {
				return err
			}
			defer d.Close()
			fmt.Fprintf(e.stdout, "%s: %d events read at %s; %d to prune, %d held by legal holds\n",
				p.Tenant, p.Scanned, p.Now.UTC().Format(time.RFC3339), p.Events(), p.Held)
			for _, g := range p.Groups {
				fmt.Fprintf(e.stdout, "  %s (%d days): %d events, seqs %s; %d held\n", g.Policy, g.Days, len(g.Seqs), rangesText(g.Ranges(), 10), g.Held)
			}
			return nil
		},
	}
	f.register(cmd)
	return cmd
}

func newRetentionApplyCmd(e *env) *cobra.Command {
	var (
		f   retentionFlags
		yes bool
	)
	cmd := &cobra.Command{
		Use:   "apply --tenant T [--rules FILE] [--now TIME] --yes",
		Short: "Prune what is past retention, for good",
		Long: `Apply makes the plan (as trail retention plan prints it) and prunes it: the
payloads of those events are removed for good, in chunks, each with an
audit_log_pruned event in the same transaction, signed into the log like
any append (so it needs the signing key, as ingest does). The actor of
those events is the user running the command. It refuses to go on when a
legal hold was placed since the plan was made.

--yes is required: there is no undo.`,
		Example: `  trail retention apply --tenant acme --yes`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !yes {
				return usageError("apply removes payloads for good: run trail retention plan first, then pass --yes")
			}
			ctx := cmd.Context()
			d, p, err := f.plan(ctx, e, true)
			if err != nil {
				return err
			}
			defer d.Close()
			res, err := p.Apply(ctx, d.Writer, d.Holds, f.tenant, cliActor())
			if res != nil {
				printPruned(e.stdout, p.Tenant, res)
			}
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&yes, "yes", false, "really prune (there is no undo)")
	return cmd
}

// printPruned says what Apply did, one line per record.
func printPruned(w io.Writer, tenant string, res *retention.Result) {
	fmt.Fprintf(w, "%s: pruned %d events (%d held by legal holds)\n", tenant, res.Pruned, res.Held)
	for _, r := range res.Records {
		ranges, _ := tlog.ParseSeqRanges(r.Context["seq_ranges"])
		fmt.Fprintf(w, "  %v: %v events, seqs %s; recorded at seq %d\n", r.Context["policy"], r.Context["pruned_count"], rangesText(ranges, 10), r.Seq)
	}
}

// rangesText writes seq ranges as "1–3, 5", at most max of them.
func rangesText(rs [][2]uint64, max int) string {
	if len(rs) == 0 {
		return "none"
	}
	var parts []string
	for i, r := range rs {
		if i == max {
			parts = append(parts, fmt.Sprintf("… (%d ranges in all)", len(rs)))
			break
		}
		if r[0] == r[1] {
			parts = append(parts, fmt.Sprint(r[0]))
		} else {
			parts = append(parts, fmt.Sprintf("%d–%d", r[0], r[1]))
		}
	}
	return strings.Join(parts, ", ")
}
