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
)

func newKeysCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Create, list and revoke API keys",
		Long: `Keys manages the API keys the HTTP API authenticates: each belongs to one
tenant, which every request made with it acts for, and carries scopes that
say what it may do: ingest (append events), read (query events and the
catalog), export, verify (checkpoints, proofs and verification) and
admin (manage the key's own tenant: its keys, holds, erasures and custom
actions). Managing every tenant takes an operator credential (trail
operator create), which these commands list and revoke too.

A key's text (trail_ID_SECRET) is printed once, when it is created: the
store keeps only a hash of its secret. A key is never deleted, only revoked.

The keys live in the store beside the events (--data DIR or --postgres URL);
managing them needs no signing key.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError("unknown command %q for \"trail keys\" (create, list or revoke)", args[0])
			}
			return cmd.Help()
		},
	}
	cmd.AddCommand(newKeysCreateCmd(e), newKeysListCmd(e), newKeysRevokeCmd(e))
	return cmd
}

// registerKeyStore registers the flags choosing the store (no signing key:
// keys are not events).
func registerKeyStore(cmd *cobra.Command, sf *storeFlags) {
	cmd.Flags().StringVar(&sf.data, "data", "trail-data", "data directory of the embedded SQLite database")
	cmd.Flags().StringVar(&sf.postgres, "postgres", "", "PostgreSQL connection URL (instead of --data)")
}

// openKeyStore opens the chosen store read-only for events (no signing
// key), as the keeper of API keys. The caller must call done.
func openKeyStore(ctx context.Context, e *env, sf *storeFlags) (ks trail.KeyStore, done func(), err error) {
	d, err := sf.openFor(ctx, e, manageKeys)
	if err != nil {
		return nil, nil, &exitError{code: 1, err: err}
	}
	return d.Keys, func() { d.Close() }, nil
}

// keyFlags maps the fields of a refused API key to the flags that set them.
var keyFlags = map[string]string{"tenant": "--tenant", "name": "--name", "scopes": "--scope"}

func newKeysCreateCmd(e *env) *cobra.Command {
	var (
		sf     storeFlags
		tenant string
		name   string
		scopes []string
	)
	cmd := &cobra.Command{
		Use:   "create --tenant T --scope S [--scope S...] [--name N]",
		Short: "Create an API key and print it, once",
		Long: `Create makes an API key for tenant T with the scopes given (ingest, read,
export, verify, admin; repeat --scope or separate them with commas) and
prints its text on stdout. That is the only time it is shown: the store
keeps only a hash of its secret. Put it where the app that uses it reads its
secrets; lose it and create another (and revoke this one).

--name says, for people, what the key is for.`,
		Example: `  trail keys create --tenant acme --scope ingest --name checkout-service
  trail keys create --tenant acme --scope read,export --name auditors --postgres postgres://trail@db/trail`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ks := make([]trail.KeyScope, 0, len(scopes))
			for _, s := range scopes {
				ks = append(ks, trail.KeyScope(strings.TrimSpace(s)))
			}
			text, k, err := trail.NewAPIKey(tenant, name, ks, time.Now())
			if err != nil {
				return keyUsageError(err)
			}
			store, done, err := openKeyStore(cmd.Context(), e, &sf)
			if err != nil {
				return err
			}
			defer done()
			if err := store.CreateKey(cmd.Context(), k); err != nil {
				return &exitError{code: 1, err: err}
			}
			fmt.Fprintln(e.stdout, text)
			fmt.Fprintf(e.stderr, "created API key %s for tenant %s (scopes %s). Its text is shown this once: Trail stores only a hash of it.\n",
				k.ID, k.Tenant, scopesText(k.Scopes))
			return nil
		},
	}
	registerKeyStore(cmd, &sf)
	cmd.Flags().StringVar(&tenant, "tenant", "", "tenant the key acts for (required)")
	cmd.Flags().StringSliceVar(&scopes, "scope", nil, "what the key may do: ingest, read, export, verify, admin (repeatable; required)")
	cmd.Flags().StringVar(&name, "name", "", "what the key is for, for people")
	return cmd
}

// keyUsageError turns trail.NewAPIKey's refusal into a usage error naming
// the flags at fault.
func keyUsageError(err error) error { return flagUsageError(err, keyFlags) }

func scopesText(s []trail.KeyScope) string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = string(x)
	}
	return strings.Join(out, ",")
}

func newKeysListCmd(e *env) *cobra.Command {
	var (
		sf     storeFlags
		tenant string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list [--tenant T] [--json]",
		Short: "List API keys",
		Long: `List prints the API keys of tenant T (of every tenant without --tenant), in
the order they were created, revoked ones included: id, tenant, name,
scopes, when created and when revoked ("-" while live). With --json it
prints them as a JSON array. Neither shows a key's secret, which Trail does
not have.`,
		Example: `  trail keys list --tenant acme
  trail keys list --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if tenant != "" {
				if m := trail.CheckTenant(tenant); m != "" {
					return usageError("--tenant: %s", m)
				}
			}
			store, done, err := openKeyStore(cmd.Context(), e, &sf)
			if err != nil {
				return err
			}
			defer done()
			keys, err := store.Keys(cmd.Context(), tenant)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			if asJSON {
				if keys == nil {
					keys = []*trail.APIKey{}
				}
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(keys)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTENANT\tNAME\tSCOPES\tCREATED\tREVOKED")
			revoked := 0
			for _, k := range keys {
				rev := "-"
				if k.Revoked() {
					rev = k.RevokedAt.UTC().Format(time.RFC3339)
					revoked++
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Tenant, dash(tabSafe(k.Name)), scopesText(k.Scopes),
					k.CreatedAt.UTC().Format(time.RFC3339), rev)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "%d keys (%d revoked)\n", len(keys), revoked)
			return nil
		},
	}
	registerKeyStore(cmd, &sf)
	cmd.Flags().StringVar(&tenant, "tenant", "", "only this tenant's keys")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the keys as JSON")
	return cmd
}

// tabSafe keeps a free-text name on one cell of the table.
func tabSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

func newKeysRevokeCmd(e *env) *cobra.Command {
	var sf storeFlags
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an API key",
		Long: `Revoke revokes the API key ID for good: requests made with it are refused.
The key stays listed, with the time it was revoked; revoking it again
changes nothing.

Instead of the ID, the key's text (trail_ID_SECRET) may be given, as
found where it leaked, or "-" to read the ID or the text from standard
input, which keeps the text out of the shell's history.`,
		Example: `  trail keys revoke 3f9c2a7b1e04
  trail keys revoke - < leaked-key.txt`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if id == "-" {
				b, err := io.ReadAll(io.LimitReader(e.stdin, 4096))
				if err != nil {
					return &exitError{code: 1, err: err}
				}
				id = strings.TrimSpace(string(b))
			}
			if strings.HasPrefix(id, "trail_") || strings.HasPrefix(id, trail.OperatorKeyPrefix) {
				kid, _, err := trail.ParseAPIKey(id)
				if err != nil {
					return usageError("%s", trail.ErrorMessage(err))
				}
				id = kid
			}
			if id == "" {
				return usageError("no key ID given")
			}
			store, done, err := openKeyStore(cmd.Context(), e, &sf)
			if err != nil {
				return err
			}
			defer done()
			k, err := store.Key(cmd.Context(), id)
			if err == nil && k.Revoked() {
				fmt.Fprintf(e.stderr, "API key %s of tenant %s was revoked already, at %s\n", k.ID, k.Tenant, k.RevokedAt.UTC().Format(time.RFC3339))
				return nil
			}
			if err == nil {
				err = store.RevokeKey(cmd.Context(), id, time.Now())
			}
			if err == nil {
				k, err = store.Key(cmd.Context(), id)
			}
			if trail.ErrorCode(err) == trail.ENOTFOUND {
				return &exitError{code: 1, err: fmt.Errorf("no API key %q", id)}
			}
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			fmt.Fprintf(e.stderr, "revoked API key %s of tenant %s at %s\n", k.ID, k.Tenant, k.RevokedAt.UTC().Format(time.RFC3339))
			return nil
		},
	}
	registerKeyStore(cmd, &sf)
	return cmd
}
