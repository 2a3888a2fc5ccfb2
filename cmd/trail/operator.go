package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/trailaudit/trail"
)

func newOperatorCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "operator",
		Short: "Create and list operator credentials",
		Long: `Operator manages operator credentials: the credentials that manage tenants
(create, list and revoke the keys of any tenant through the API) rather
than act on one tenant's data. An operator credential is not a key of a
tenant and carries no scopes; no tenant's key, not even an admin one, can
make one, and the API cannot either: only this command, and trail serve
at first start, make them.

Its text (trailop_ID_SECRET) is printed once; the store keeps only a hash.
Revoke one with trail keys revoke ID. What operators do to a tenant is
recorded in that tenant's log and in the operators' own (trail query
--tenant _operators).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError("unknown command %q for \"trail operator\" (create or list)", args[0])
			}
			return cmd.Help()
		},
	}
	cmd.AddCommand(newOperatorCreateCmd(e), newOperatorListCmd(e))
	return cmd
}

func newOperatorCreateCmd(e *env) *cobra.Command {
	var (
		sf   storeFlags
		name string
	)
	cmd := &cobra.Command{
		Use:   "create [--name N]",
		Short: "Create an operator credential and print it, once",
		Long: `Create makes an operator credential and prints its text on stdout, the only
time it is shown. --name says, for people, who or what it is for.`,
		Example: `  trail operator create --name alice`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			text, k, err := trail.NewOperatorKey(name, time.Now())
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
			fmt.Fprintf(e.stderr, "created operator credential %s. Its text is shown this once: Trail stores only a hash of it.\n", k.ID)
			return nil
		},
	}
	registerKeyStore(cmd, &sf)
	cmd.Flags().StringVar(&name, "name", "", "who or what the credential is for, for people")
	return cmd
}

func newOperatorListCmd(e *env) *cobra.Command {
	var sf storeFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List operator credentials",
		Long:  `List prints the operator credentials, revoked ones included: id, name, when created and when revoked ("-" while live).`,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			store, done, err := openKeyStore(cmd.Context(), e, &sf)
			if err != nil {
				return err
			}
			defer done()
			keys, err := store.Keys(cmd.Context(), trail.OperatorTenant)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tCREATED\tREVOKED")
			for _, k := range keys {
				rev := "-"
				if k.Revoked() {
					rev = k.RevokedAt.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.ID, dash(tabSafe(k.Name)), k.CreatedAt.UTC().Format(time.RFC3339), rev)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "%d operator credentials\n", len(keys))
			return nil
		},
	}
	registerKeyStore(cmd, &sf)
	return cmd
}
