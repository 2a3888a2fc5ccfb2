package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
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

// openHolds opens the store (to write when writer) as the keeper of legal
// holds. The caller must close the store, then sf.closeKeys.
func openHolds(ctx context.Context, e *env, sf *storeFlags, tenant string, writer bool) (trail.Store, trail.HoldStore, error) {
	if m := trail.CheckTenant(tenant); m != "" {
		return nil, nil, usageError("--tenant: %s", m)
	}
	open := sf.open
	if writer {
		open = sf.openWriter
	}
	store, err := open(ctx, e)
	if err != nil {
		return nil, nil, &exitError{code: 1, err: err}
	}
	hs, ok := store.(trail.HoldStore)
	if !ok {
		store.Close()
		sf.closeKeys()
		return nil, nil, &exitError{code: 1, err: fmt.Errorf("the store (%T) does not keep legal holds", store)}
	}
	return store, hs, nil
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
			if id == "" {
				var b [6]byte
				rand.Read(b[:])
				id = "hold-" + hex.EncodeToString(b[:])
			}
			store, hs, err := openHolds(ctx, e, &sf, tenant, true)
			if err != nil {
				return err
			}
			defer sf.closeKeys()
			defer store.Close()
			who := cliActor()
			h := &trail.Hold{ID: id, Tenant: tenant, Filter: trail.HoldFilter{ActorID: actor, TargetID: target, From: from, Until: until},
				Reason: reason, CreatedBy: who.ID, CreatedAt: now}
			if err := hs.PlaceHold(ctx, h); err != nil {
				return storeError(err)
			}
			filter, err := filterContext(h.Filter)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			res, err := store.Append(ctx, tenant, []*trail.Event{{Action: catalog.LegalHoldPlaced, Actor: who,
				Context: map[string]any{"hold_id": h.ID, "filter": filter, "reason": reason}}}, trail.AppendOptions{})
			if err != nil {
				return &exitError{code: 1, err: fmt.Errorf("legal hold %s stands, but its legal_hold_placed event was not recorded: %w", h.ID, err)}
			}
			fmt.Fprintln(e.stdout, h.ID)
			fmt.Fprintf(e.stderr, "placed legal hold %s on tenant %s (%s), recorded at seq %d\n", h.ID, tenant, filterText(h.Filter), res.Events[0].Seq)
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

// filterContext is a hold's filter as the context of its events hold it.
func filterContext(f trail.HoldFilter) (map[string]any, error) {
	b, err := json.Marshal(f)
	if err != nil {
		return nil, err
	}
	m := map[string]any{}
	return m, json.Unmarshal(b, &m)
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
			store, hs, err := openHolds(cmd.Context(), e, &sf, tenant, false)
			if err != nil {
				return err
			}
			defer sf.closeKeys()
			defer store.Close()
			holds, err := hs.Holds(cmd.Context(), tenant)
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
			store, hs, err := openHolds(ctx, e, &sf, tenant, true)
			if err != nil {
				return err
			}
			defer sf.closeKeys()
			defer store.Close()
			holds, err := hs.Holds(ctx, tenant)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			var h *trail.Hold
			for _, x := range holds {
				if x.ID == id {
					h = x
				}
			}
			switch {
			case h == nil:
				return usageError("tenant %s has no legal hold %q", tenant, id)
			case !h.Active():
				return usageError("legal hold %s was released at %s", id, h.ReleasedAt.UTC().Format(time.RFC3339))
			}
			ctxMap := map[string]any{"hold_id": id}
			if reason != "" {
				ctxMap["reason"] = reason
			}
			res, err := store.Append(ctx, tenant, []*trail.Event{{Action: catalog.LegalHoldReleased, Actor: cliActor(), Context: ctxMap}}, trail.AppendOptions{})
			if err != nil {
				return &exitError{code: 1, err: fmt.Errorf("legal hold %s still stands: its release could not be recorded: %w", id, err)}
			}
			if err := hs.ReleaseHold(ctx, tenant, id, time.Now()); err != nil {
				return &exitError{code: 1, err: fmt.Errorf("the release of legal hold %s is recorded at seq %d, but: %w", id, res.Events[0].Seq, err)}
			}
			fmt.Fprintf(e.stdout, "released legal hold %s of tenant %s, recorded at seq %d\n", id, tenant, res.Events[0].Seq)
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&tenant, "tenant", "", "tenant (required)")
	cmd.Flags().StringVar(&reason, "reason", "", "why it ends")
	return cmd
}
