package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/retention"
)

func newHoldsCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "holds",
		Short: "Place, list and release legal holds",
		Long: `Holds manages a tenant's legal holds. While a hold stands, retention never
prunes the events it covers: those of one actor (--actor), of one target
(--target), recorded in a time window (--from, --until), or all the
tenant's when no filter is given.

A hold is never deleted, only released, once. Placing and releasing a hold
each append an event to the tenant's log (legal_hold_placed,
legal_hold_released) whose actor is the user running the command, so they
need the signing key, as ingest does.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError("unknown command %q for \"trail holds\" (place, list or release)", args[0])
			}
			return cmd.Help()
		},
	}
	cmd.AddCommand(newHoldsPlaceCmd(e), newHoldsListCmd(e), newHoldsReleaseCmd(e))
	return cmd
}

// openTenant checks the tenant flag and opens the store (to write when
// writer) for a command on that tenant (legal holds, rule files). The
// caller must close it.
func openTenant(ctx context.Context, e *env, sf *storeFlags, tenant string, writer bool) (*deployment, error) {
	if m := trail.CheckTenant(tenant); m != "" {
		return nil, usageError("--tenant: %s", m)
	}
	d, err := sf.open(ctx, e, writer)
	if err != nil {
		return nil, &exitError{code: 1, err: err}
	}
	return d, nil
}

func newHoldsPlaceCmd(e *env) *cobra.Command {
	var (
		sf                           storeFlags
		tenant, id, reason           string
		actor, target, fromS, untilS string
	)
	cmd := &cobra.Command{
		Use:   "place --tenant T [--actor ID] [--target ID] [--from TIME] [--until TIME] --reason R",
		Short: "Place a legal hold",
		Long: `Place places a legal hold on the tenant's events that match every filter
given (all of them when none is), prints its id and records it in the log
(legal_hold_placed). The hold stands before the event is appended: if the
append fails, the hold still protects the events, and the command says so.

--from and --until bound the time the events were recorded (from
inclusive, until exclusive): RFC 3339, a date, or a duration before now
(30d).`,
		Example: `  trail holds place --tenant acme --actor u-123 --reason 'Case 2026-17 (Smith v. Acme)'
  trail holds place --tenant acme --from 2026-01-01 --until 2026-07-01 --reason 'SEC inquiry'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if strings.TrimSpace(reason) == "" {
				return usageError("--reason is required: say why (the matter, the case)")
			}
			now := time.Now()
			from, err := parseWhen(fromS, now)
			if err != nil {
				return usageError("--from: %v", err)
			}
			until, err := parseWhen(untilS, now)
			if err != nil {
				return usageError("--until: %v", err)
			}
			d, err := openTenant(ctx, e, &sf, tenant, true)
			if err != nil {
				return err
			}
			defer d.Close()
			h, seq, err := retention.PlaceHold(ctx, d.Holds, d.Writer, &trail.Hold{ID: id, Tenant: tenant,
				Filter: trail.HoldFilter{ActorID: actor, TargetID: target, From: from, Until: until}, Reason: reason, CreatedAt: now}, cliActor())
			if h == nil && err != nil {
				return storeError(err)
			}
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			fmt.Fprintln(e.stdout, h.ID)
			fmt.Fprintf(e.stderr, "placed legal hold %s on tenant %s (%s), recorded at seq %d\n", h.ID, tenant, filterText(h.Filter), seq)
			return nil
		},
	}
	sf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&tenant, "tenant", "", "tenant whose events to hold (required)")
	f.StringVar(&reason, "reason", "", "why: the matter or case (required)")
	f.StringVar(&actor, "actor", "", "hold only the events of this actor id")
	f.StringVar(&target, "target", "", "hold only the events with a target of this id")
	f.StringVar(&fromS, "from", "", "hold only the events recorded at or after this time")
	f.StringVar(&untilS, "until", "", "hold only the events recorded before this time")
	f.StringVar(&id, "id", "", "the hold's id (default: a random one)")
	return cmd
}

// filterText writes a hold's filter for people.
func filterText(f trail.HoldFilter) string {
	var parts []string
	if f.ActorID != "" {
		parts = append(parts, "actor="+f.ActorID)
	}
	if f.TargetID != "" {
		parts = append(parts, "target="+f.TargetID)
	}
	if !f.From.IsZero() {
		parts = append(parts, "from="+f.From.UTC().Format(time.RFC3339))
	}
	if !f.Until.IsZero() {
		parts = append(parts, "until="+f.Until.UTC().Format(time.RFC3339))
	}
	if len(parts) == 0 {
		return "all events"
	}
	return strings.Join(parts, " ")
}

func newHoldsListCmd(e *env) *cobra.Command {
	var (
		sf     storeFlags
		tenant string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list --tenant T [--json]",
		Short: "List a tenant's legal holds",
		Long: `List prints the tenant's legal holds in the order they were placed, released
ones included: id, status (standing, or when released), when placed and by
whom, the filter and the reason. With --json it prints them as a JSON
array. It needs no signing key.`,
		Example: `  trail holds list --tenant acme`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := openTenant(cmd.Context(), e, &sf, tenant, false)
			if err != nil {
				return err
			}
			defer d.Close()
			holds, err := d.Holds.Holds(cmd.Context(), tenant)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			if asJSON {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(holds)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATUS\tPLACED\tBY\tFILTER\tREASON")
			standing := 0
			for _, h := range holds {
				status := "standing"
				if h.Active() {
					standing++
				} else {
					status = "released " + h.ReleasedAt.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", h.ID, status, h.CreatedAt.UTC().Format(time.RFC3339), dash(tabSafe(h.CreatedBy)),
					filterText(h.Filter), tabSafe(h.Reason))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "%d legal holds (%d standing)\n", len(holds), standing)
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&tenant, "tenant", "", "tenant (required)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the holds as JSON")
	return cmd
}

func newHoldsReleaseCmd(e *env) *cobra.Command {
	var (
		sf             storeFlags
		tenant, reason string
	)
	cmd := &cobra.Command{
		Use:   "release --tenant T ID [--reason R]",
		Short: "Release a legal hold",
		Long: `Release releases the legal hold ID of the tenant, for good: retention may
prune the events it covered again (unless another hold covers them). The
release is recorded in the log (legal_hold_released) before the hold is
released, so that no hold ends unrecorded. A hold is released once.`,
		Example: `  trail holds release --tenant acme hold-1a2b3c4d5e6f --reason 'Case closed'`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			id := args[0]
			d, err := openTenant(ctx, e, &sf, tenant, true)
			if err != nil {
				return err
			}
			defer d.Close()
			seq, err := retention.ReleaseHold(ctx, d.Holds, d.Writer, tenant, id, reason, cliActor(), time.Now())
			if trail.ErrorCode(err) == trail.ECONFLICT {
				return usageError("%v", err) // released already
			}
			if err != nil {
				return storeError(err)
			}
			fmt.Fprintf(e.stdout, "released legal hold %s of tenant %s, recorded at seq %d\n", id, tenant, seq)
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&tenant, "tenant", "", "tenant (required)")
	cmd.Flags().StringVar(&reason, "reason", "", "why it ends")
	return cmd
}
