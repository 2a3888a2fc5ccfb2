package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/stream/sinks"
	"github.com/trailaudit/trail/tlog"
)

func newSinksCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sinks",
		Short: "Add, list and remove the sinks that stream a tenant's log",
		Long: `Sinks manages the sinks of the store: each streams one tenant's log to one
receiver (a webhook, a syslog collector, NATS JetStream) from a cursor kept
in the store, with the signed checkpoints, so the receiver can check it got
everything in order. trail serve runs them, and picks up a change made here
within 5 seconds.

Adding and removing a sink each append an event to the tenant's log
(admin_config_changed, never the secret) whose actor is the user running
the command, before the change is made; so they need the signing key, as
ingest does.

A sink that stopped for good (its receiver refused a message) is resumed
through the API (POST /v1/sinks/NAME/resume), or by removing it and adding
it again: its cursor stays, so it goes on from there.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError("unknown command %q for \"trail sinks\" (add, list or rm)", args[0])
			}
			return cmd.Help()
		},
	}
	cmd.AddCommand(newSinksAddCmd(e), newSinksListCmd(e), newSinksRmCmd(e))
	return cmd
}

// sinkFlags maps the fields of a refused sink to the flags that set them.
var sinkFlags = map[string]string{"tenant": "--tenant", "name": "--name", "kind": "--kind", "url": "--url", "address": "--address",
	"secret": "--secret-file", "format": "--format", "tls": "--tls", "subject": "--subject", "on_refusal": "--on-refusal"}

// flagUsageError turns a refusal naming fields into a usage error naming
// the flags (flags) that set them; any other error is exit 1.
func flagUsageError(err error, flags map[string]string) error {
	fields := trail.ErrorFields(err)
	if len(fields) == 0 {
		return &exitError{code: 1, err: err}
	}
	var msgs []string
	for _, f := range fields {
		field, _, _ := strings.Cut(f.Path, "[")
		flag := flags[field]
		if flag == "" {
			flag = f.Path
		}
		msgs = append(msgs, flag+": "+f.Message)
	}
	return usageError("%s", strings.Join(msgs, "; "))
}

func newSinksAddCmd(e *env) *cobra.Command {
	var (
		sf         storeFlags
		c          trail.SinkConfig
		kind       string
		secretFile string
	)
	cmd := &cobra.Command{
		Use:   "add --tenant T --name N --kind webhook|syslog|nats [flags]",
		Short: "Add a sink, recorded in the tenant's log",
		Long: `Add adds a sink to tenant T and records it in T's log (admin_config_changed,
without the secret) first. Which flags apply depends on --kind:

  webhook  --url (https://, or http:// to a loopback address), --format
           (ndjson, the default, or splunk: the HTTP Event Collector's
           envelope), --secret-file (the signing secret, whsec_ and base64)
  syslog   --address HOST:PORT, --tls (RFC 5425; plain TCP otherwise)
  nats     --url (nats:// or tls://), --subject (the prefix; the tenant
           is appended)

--on-refusal says what a message the receiver refuses for good does: stop
(the default) stops the sink with an alert (sink_stopped in the log);
skip records the event as skipped (sink_skipped) and sends its leaf hash,
marked skipped, in its place.

The secret is read from a file, or from standard input with --secret-file -,
never from the command line (where other users and the shell's history see
it). A webhook given none gets one made, printed on stdout this once.`,
		Example: `  trail sinks add --tenant acme --name siem --kind webhook --url https://siem.example.com/hook
  trail sinks add --tenant acme --name splunk --kind webhook --url https://splunk.example.com:8088/services/collector/event --format splunk --secret-file splunk.secret
  trail sinks add --tenant acme --name rsyslog --kind syslog --address logs.example.com:6514 --tls --on-refusal skip
  trail sinks add --tenant acme --name bus --kind nats --url nats://127.0.0.1:4222 --subject trail.events`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c.Kind = trail.SinkKind(kind)
			made := ""
			switch {
			case secretFile != "":
				in, done, err := e.input(secretFile)
				if err != nil {
					return err
				}
				b, err := io.ReadAll(io.LimitReader(in, 4096))
				done()
				if err != nil {
					return usageError("--secret-file: %v", err)
				}
				c.Secret = strings.TrimSpace(string(b))
			case c.Kind == trail.SinkWebhook:
				var err error
				if made, err = trail.NewWebhookSecret(); err != nil {
					return &exitError{code: 1, err: err}
				}
				c.Secret = made
			}
			now := time.Now()
			if _, err := trail.PrepareSink(&c, now); err != nil {
				return flagUsageError(err, sinkFlags)
			}
			d, err := sf.open(ctx, e, true)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			defer d.Close()
			p, seq, err := sinks.Add(ctx, d.Sinks, d.Writer, &c, cliActor(), now)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			if made != "" {
				fmt.Fprintln(e.stdout, made)
				fmt.Fprintln(e.stderr, "made the webhook's signing secret, printed above this once: give it to the receiver")
			}
			fmt.Fprintf(e.stderr, "added sink %s to tenant %s (%s to %s, on refusal %s), recorded at seq %d; trail serve runs it within 5s\n",
				p.Name, p.Tenant, p.Kind, p.Target(), p.OnRefusal, seq)
			return nil
		},
	}
	sf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&c.Tenant, "tenant", "", "tenant whose log the sink streams (required)")
	f.StringVar(&c.Name, "name", "", "the sink's name in its tenant (required)")
	f.StringVar(&kind, "kind", "", "webhook, syslog or nats (required)")
	f.StringVar(&c.URL, "url", "", "webhook: where to post; nats: the server")
	f.StringVar(&c.Address, "address", "", "syslog: the collector's HOST:PORT")
	f.StringVar(&c.Format, "format", "", "webhook: ndjson (default) or splunk")
	f.BoolVar(&c.TLS, "tls", false, "syslog: over TLS")
	f.StringVar(&c.Subject, "subject", "", "nats: the subject prefix")
	f.StringVar(&c.OnRefusal, "on-refusal", "", "stop (default) or skip")
	f.StringVar(&secretFile, "secret-file", "", "webhook: file of the signing secret, - for stdin (default: make one)")
	return cmd
}

// sinkRow is a sink as trail sinks list --json prints it: its
// configuration as shown (no secret) and where its cursor is in the log.
type sinkRow struct {
	*trail.SinkConfig
	Cursor    uint64 `json:"cursor"`
	LagEvents uint64 `json:"lag_events"`
}

func newSinksListCmd(e *env) *cobra.Command {
	var (
		sf     storeFlags
		tenant string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list [--tenant T] [--json]",
		Short: "List the sinks, with their cursors",
		Long: `List prints the sinks of tenant T (of every tenant without --tenant), in
the order they were added: tenant, name, kind, where it delivers, what a
refusal does, its cursor (the last seq its receiver acknowledged) and its
lag (events of the log's latest checkpoint past the cursor). With --json it
prints them as a JSON array. Neither shows a secret, nor a URL's password.
What a running sink is doing (its last error, whether it stopped) is in
trail serve's API: GET /v1/sinks.`,
		Example: `  trail sinks list --tenant acme
  trail sinks list --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if tenant != "" {
				if m := trail.CheckTenant(tenant); m != "" {
					return usageError("--tenant: %s", m)
				}
			}
			d, err := sf.open(ctx, e, false)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			defer d.Close()
			cs, err := d.Sinks.Sinks(ctx, tenant)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			rows := make([]sinkRow, len(cs))
			heads := map[string]uint64{}
			for i, c := range cs {
				p := c.Public()
				rows[i].SinkConfig = &p
				if rows[i].Cursor, err = d.Cursors.Cursor(ctx, "sink."+c.Name, c.Tenant); err != nil {
					return &exitError{code: 1, err: err}
				}
				head, ok := heads[c.Tenant]
				if !ok {
					if head, err = logSize(ctx, d, c.Tenant); err != nil {
						return &exitError{code: 1, err: err}
					}
					heads[c.Tenant] = head
				}
				rows[i].LagEvents = head - min(head, rows[i].Cursor)
			}
			if asJSON {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(rows)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TENANT\tNAME\tKIND\tTO\tON REFUSAL\tCURSOR\tLAG\tCREATED\tBY")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", r.Tenant, r.Name, r.Kind, tabSafe(r.Target()), r.OnRefusal,
					r.Cursor, r.LagEvents, r.CreatedAt.UTC().Format(time.RFC3339), dash(tabSafe(r.CreatedBy)))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "%d sinks\n", len(rows))
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&tenant, "tenant", "", "only this tenant's sinks")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the sinks as JSON")
	return cmd
}

// logSize returns the size of tenant's latest checkpoint: 0 before it has
// one. A checkpoint that does not parse is an error (run trail verify).
func logSize(ctx context.Context, d *deployment, tenant string) (uint64, error) {
	note, err := d.Store.Checkpoint(ctx, tenant)
	if trail.ErrorCode(err) == trail.ENOTFOUND {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	cp, err := tlog.ParseUnverified(note)
	if err != nil {
		return 0, fmt.Errorf("tenant %s: the latest checkpoint does not parse (run trail verify): %w", tenant, err)
	}
	return cp.Size, nil
}

func newSinksRmCmd(e *env) *cobra.Command {
	var (
		sf           storeFlags
		tenant, name string
	)
	cmd := &cobra.Command{
		Use:   "rm --tenant T --name N",
		Short: "Remove a sink, recorded in the tenant's log",
		Long: `Rm records the removal of tenant T's sink N in T's log (admin_config_changed),
then removes it; trail serve stops it within 5 seconds. Its cursor stays: a
sink added again under the name goes on from there.`,
		Example: `  trail sinks rm --tenant acme --name siem`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if m := trail.CheckTenant(tenant); m != "" {
				return usageError("--tenant: %s", m)
			}
			if m := trail.CheckTenant(name); m != "" {
				return usageError("--name: %s", m)
			}
			d, err := sf.open(ctx, e, true)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			defer d.Close()
			seq, err := sinks.Remove(ctx, d.Sinks, d.Writer, tenant, name, cliActor())
			if err != nil {
				return storeError(err)
			}
			fmt.Fprintf(e.stderr, "removed sink %s of tenant %s, recorded at seq %d; its cursor stays\n", name, tenant, seq)
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&tenant, "tenant", "", "tenant of the sink (required)")
	cmd.Flags().StringVar(&name, "name", "", "the sink's name (required)")
	return cmd
}
