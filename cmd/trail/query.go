package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
)

func newQueryCmd(e *env) *cobra.Command {
	var (
		sf     storeFlags
		ff     filterFlags
		limit  int
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "query --tenant T [filters]",
		Short: "Search a tenant's events",
		Long: `Query prints a tenant's events that pass every filter given, oldest first
(--newest-first to reverse), as a table or, with --json, one stored event per
line (NDJSON, the wire form).

--since and --until bound recorded_at, Trail's own clock: an RFC 3339 time
(2026-11-24T10:00:00Z), a date (2026-11-24) or a duration back from now (90m,
24h, 7d). --since is inclusive, --until exclusive.` + queryHelp,
		Example: `  trail query --tenant acme --actor u-123 --since 24h
  trail query --tenant acme --action user_login_failed --action access_denied --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			q, err := ff.query(time.Now())
			if err != nil {
				return err
			}
			if limit < 1 {
				return usageError("--limit: must be at least 1")
			}
			d, err := sf.open(cmd.Context(), e, false)
			if err != nil {
				return openError(err)
			}
			defer d.Close()
			if q, err = checkQuery(cmd.Context(), d, q); err != nil {
				return err
			}
			store := d.Reader
			var tw *tabwriter.Writer
			if !asJSON {
				tw = tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "SEQ\tRECORDED\tACTION\tOUTCOME\tACTOR\tTARGETS\tSCOPE")
			}
			shown := 0
			for shown < limit {
				q.Limit = min(limit-shown, trail.MaxPageSize)
				page, err := store.Query(cmd.Context(), q)
				if err != nil {
					if trail.ErrorCode(err) == trail.EINVALID {
						return usageError("%v", err)
					}
					return &exitError{code: 1, err: err}
				}
				for _, ev := range page.Events {
					if asJSON {
						b, err := json.Marshal(ev)
						if err != nil {
							return &exitError{code: 1, err: err}
						}
						fmt.Fprintf(e.stdout, "%s\n", b)
					} else {
						fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", ev.Seq, ev.RecordedAt.Format(time.RFC3339), ev.Action, ev.Outcome,
							actorText(ev.Actor), targetsText(ev.Targets), scopeText(ev.Scope))
					}
				}
				shown += len(page.Events)
				if page.Next == "" {
					break
				}
				q.Cursor = page.Next
			}
			if tw != nil {
				tw.Flush()
				fmt.Fprintf(e.stderr, "%d events\n", shown)
			}
			return nil
		},
	}
	sf.register(cmd)
	ff.register(cmd, "tenant to search (required)")
	f := cmd.Flags()
	f.IntVar(&limit, "limit", 100, "print at most this many events")
	f.BoolVar(&ff.q.Descending, "newest-first", false, "newest events first")
	f.BoolVar(&asJSON, "json", false, "print one JSON event per line")
	return cmd
}

// queryHelp ends the help of the commands that search a tenant's events.
const queryHelp = `

A query that can only find nothing is a mistake, and says so: an --action
that neither the catalog nor the tenant's log knows exits 2 (printing the
nearest known names); a tenant with no log, or --data holding no Trail data,
exits 3. A read creates nothing: no database where there was none.`

// openError is the error of a search whose store did not open: exit 3
// when --data holds no Trail data (nothing to read), else 1.
func openError(err error) error {
	var nd *noDataError
	if errors.As(err, &nd) {
		return &exitError{code: exitUnchecked, err: err}
	}
	return &exitError{code: 1, err: err}
}

// checkQuery returns q with its actions resolved (an alias searched by
// the action's name), or the error of a query of d that can only match
// nothing: a tenant with no log (exit 3), or an action filter naming an
// action that neither the catalog nor the tenant's log knows (a usage
// error naming the nearest known names).
func checkQuery(ctx context.Context, d *deployment, q trail.Query) (trail.Query, error) {
	if _, err := d.Store.Checkpoint(ctx, q.Tenant); trail.ErrorCode(err) == trail.ENOTFOUND {
		return q, &exitError{code: exitUnchecked, err: fmt.Errorf("tenant %s has no log: no events, no checkpoint (is --tenant right?)", q.Tenant)}
	} else if err != nil {
		return q, &exitError{code: 1, err: err}
	}
	q, err := catalog.ResolveQueryActions(ctx, d.Catalog, d.Store, q)
	if fe := trail.ErrorFields(err); trail.ErrorCode(err) == trail.EINVALID && len(fe) == 1 {
		return q, usageError("--action: %s", fe[0].Message)
	}
	if err != nil {
		return q, &exitError{code: 1, err: err}
	}
	return q, nil
}

// filterFlags are the query filters of the commands that select events.
type filterFlags struct {
	q            trail.Query
	since, until string
	outcome      string
}

func (ff *filterFlags) register(cmd *cobra.Command, tenantUsage string) {
	f := cmd.Flags()
	q := &ff.q
	f.StringVar(&q.Tenant, "tenant", "", tenantUsage)
	f.StringSliceVar(&q.Actions, "action", nil, "action name (repeatable: any of them)")
	f.StringVar(&q.ActorID, "actor", "", "actor id")
	f.StringVar(&q.Category, "category", "", "action category")
	f.StringVar(&ff.outcome, "outcome", "", "outcome: attempted, success, failure, denied or info")
	f.StringVar(&q.TargetID, "target", "", "target id")
	f.StringVar(&q.Organization, "organization", "", "scope organization")
	f.StringVar(&q.Workspace, "workspace", "", "scope workspace")
	f.StringVar(&q.Team, "team", "", "scope team")
	f.StringVar(&q.CorrelationID, "correlation", "", "correlation id")
	f.StringVar(&ff.since, "since", "", "recorded at or after: RFC 3339 time, date, or duration ago (24h, 7d)")
	f.StringVar(&ff.until, "until", "", "recorded before: RFC 3339 time, date, or duration ago")
	f.BoolVar(&q.OpenAttempts, "open-attempts", false, "only attempts with no outcome yet (with --until 5m: begun over 5 minutes ago)")
}

// query checks the flags and returns the query they make, or a usage error
// naming the flag.
func (ff *filterFlags) query(now time.Time) (trail.Query, error) {
	q := ff.q
	if m := trail.CheckLog(q.Tenant); m != "" {
		return q, usageError("--tenant: %s", m)
	}
	var err error
	if q.RecordedAfter, err = parseWhen(ff.since, now); err != nil {
		return q, usageError("--since: %v", err)
	}
	if q.RecordedBefore, err = parseWhen(ff.until, now); err != nil {
		return q, usageError("--until: %v", err)
	}
	q.Outcome = trail.Outcome(ff.outcome)
	if ff.outcome != "" && !q.Outcome.Valid() {
		return q, usageError("--outcome: must be one of attempted, success, failure, denied, info")
	}
	return q, nil
}

// parseWhen reads a point in time: RFC 3339, a date, or a duration before
// now ("90m", "24h", "7d"). The empty string is the zero time.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if _, err := fmt.Sscanf(days, "%d", &n); err == nil && n >= 0 && fmt.Sprint(n) == days {
			return now.AddDate(0, 0, -n), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time (2026-11-24T10:00:00Z), a date (2026-11-24) or a duration (24h, 7d)", s)
}

func actorText(a trail.Actor) string {
	if a.Type == "" {
		return a.ID
	}
	return string(a.Type) + ":" + a.ID
}

func targetsText(ts []trail.Target) string {
	var parts []string
	for _, t := range ts {
		parts = append(parts, t.Type+":"+t.ID)
	}
	return strings.Join(parts, ",")
}

func scopeText(s trail.Scope) string {
	var parts []string
	for _, p := range []struct{ k, v string }{{"org", s.Organization}, {"ws", s.Workspace}, {"team", s.Team}} {
		if p.v != "" {
			parts = append(parts, p.k+"="+p.v)
		}
	}
	return strings.Join(parts, " ")
}
