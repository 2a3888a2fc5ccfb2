package main

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/detect"
)

func newRulesCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rules",
		Short: "List, add, remove and test detection rules",
		Long: `Rules manages a tenant's own detection rules: files of Sigma rules (the
subset docs/design.md describes) that trail serve runs over the tenant's
log, beside the built-in rules, recording each match as an alert_raised
event. A file may hold several rules (YAML documents separated by ---),
such as a correlation and the rules it counts.

Adding and removing a file each append an admin_config_changed event to
the tenant's log (the file's digest and rules, not its text), so they need
the signing key, as ingest does. A running trail serve picks the change up
within seconds and runs the tenant's rules from where its set had got to:
new rules see the events recorded from then on.

trail rules test checks files without a store, as the API and add would.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError("unknown command %q for \"trail rules\" (list, add, rm or test)", args[0])
			}
			return cmd.Help()
		},
	}
	cmd.AddCommand(newRulesListCmd(e), newRulesAddCmd(e), newRulesRmCmd(e), newRulesTestCmd(e))
	return cmd
}

func newRulesListCmd(e *env) *cobra.Command {
	var (
		sf     storeFlags
		tenant string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list --tenant T [--json]",
		Short: "List the built-in rules and a tenant's rule files",
		Long: `List prints the built-in rules (set builtin, read-only) and then the rules
of each of the tenant's files (set tenant): the set, the file, the rule's
id, level, kind and title. With --json it prints the built-in rules and
the files (their text included) as JSON. It needs no signing key.`,
		Example: `  trail rules list --tenant acme`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := openTenant(cmd.Context(), e, &sf, tenant, false)
			if err != nil {
				return err
			}
			defer d.Close()
			files, err := d.Rules.Rules(cmd.Context(), tenant)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			builtin := detect.Builtin().Rules()
			if asJSON {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]any{"builtin": detect.Infos(builtin), "files": files})
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SET\tFILE\tID\tLEVEL\tKIND\tTITLE")
			row := func(set, file string, r *detect.Rule) {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", set, file, r.Ref(), r.Level, r.Kind(), tabSafe(r.Title))
			}
			for _, r := range builtin {
				row(detect.BuiltinSet, "-", r)
			}
			for _, f := range files {
				rs, err := detect.ParseRules([]byte(f.YAML))
				if err != nil {
					fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t(refused: %s)\n", detect.TenantSet, f.Name, tabSafe(trail.ErrorMessage(err)))
				}
				for _, r := range rs {
					row(detect.TenantSet, f.Name, r)
				}
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "%d built-in rules; tenant %s has %d rule files\n", len(builtin), tenant, len(files))
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&tenant, "tenant", "", "tenant (required)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the rules as JSON")
	return cmd
}

func newRulesAddCmd(e *env) *cobra.Command {
	var (
		sf           storeFlags
		tenant, name string
	)
	cmd := &cobra.Command{
		Use:   "add --tenant T FILE [--name NAME]",
		Short: "Add (or replace) one of a tenant's rule files",
		Long: `Add checks the Sigma rules in FILE (- for standard input), records the change
in the tenant's log and stores the file as NAME (default: FILE's base name
without its extension), replacing the tenant's file of that name. A rule
refused is a usage error (exit 2) naming the field, and nothing is stored.`,
		Example: `  trail rules add --tenant acme payroll-exports.yml`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if name == "" {
				if args[0] == "-" {
					return usageError("--name is required when the rules come from standard input")
				}
				name = strings.TrimSuffix(filepath.Base(args[0]), filepath.Ext(args[0]))
			}
			if m := trail.CheckTenant(name); m != "" {
				return usageError("rule file name %q: %s (give --name)", name, m)
			}
			text, err := readRules(e, args[0])
			if err != nil {
				return err
			}
			d, err := openTenant(ctx, e, &sf, tenant, true)
			if err != nil {
				return err
			}
			defer d.Close()
			f, replaced, seq, err := detect.PutRules(ctx, d.Rules, d.Writer, &trail.RuleFile{Tenant: tenant, Name: name, YAML: string(text)}, cliActor(), time.Now())
			if err != nil {
				return storeError(err)
			}
			rs, _ := detect.ParseRules([]byte(f.YAML))
			what := "added"
			if replaced {
				what = "replaced"
			}
			fmt.Fprintf(e.stdout, "%s rule file %s of tenant %s (%d rules), recorded at seq %d\n", what, name, tenant, len(rs), seq)
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&tenant, "tenant", "", "tenant (required)")
	cmd.Flags().StringVar(&name, "name", "", "the file's name in the tenant (default: FILE's base name)")
	return cmd
}

func newRulesRmCmd(e *env) *cobra.Command {
	var (
		sf     storeFlags
		tenant string
	)
	cmd := &cobra.Command{
		Use:     "rm --tenant T NAME",
		Short:   "Remove one of a tenant's rule files",
		Long:    `Rm records the removal in the tenant's log and removes the tenant's rule file NAME.`,
		Example: `  trail rules rm --tenant acme payroll-exports`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			d, err := openTenant(ctx, e, &sf, tenant, true)
			if err != nil {
				return err
			}
			defer d.Close()
			seq, err := detect.RemoveRules(ctx, d.Rules, d.Writer, tenant, args[0], cliActor())
			if err != nil {
				return storeError(err)
			}
			fmt.Fprintf(e.stdout, "removed rule file %s of tenant %s, recorded at seq %d\n", args[0], tenant, seq)
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&tenant, "tenant", "", "tenant (required)")
	return cmd
}

func newRulesTestCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "test FILE...",
		Short: "Check Sigma rule files as Trail reads them",
		Long: `Test parses each FILE (- for standard input) as Trail would (the Sigma subset
docs/design.md describes, and the files together as one tenant's set) and
prints each rule it holds, or each refusal with the field it names. It
exits 0 when every rule is accepted, 2 when any is refused.`,
		Example: `  trail rules test payroll-exports.yml`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var files []*trail.RuleFile
			refused := 0
			for _, a := range args {
				text, err := readRules(e, a)
				if err != nil {
					return err
				}
				rs, err := detect.ParseRules(text)
				if err != nil {
					refused++
					printRefusal(e.stdout, a, err)
					continue
				}
				fmt.Fprintf(e.stdout, "%s: %d rules\n", a, len(rs))
				for _, r := range rs {
					fmt.Fprintf(e.stdout, "  %-13s %-8s %s  %s\n", r.Kind(), r.Level, r.Ref(), r.Title)
				}
				files = append(files, &trail.RuleFile{Tenant: "test", Name: fmt.Sprint(len(files)), YAML: string(text)})
			}
			if refused == 0 {
				if _, err := detect.TenantRules(files); err != nil {
					refused++
					printRefusal(e.stdout, "together", err)
				}
			}
			if refused > 0 {
				return usageError("%d of %d rule files refused", refused, len(args))
			}
			fmt.Fprintf(e.stderr, "%d rule files: accepted\n", len(args))
			return nil
		},
	}
}

// printRefusal writes what refused the rules of file.
func printRefusal(w io.Writer, file string, err error) {
	fmt.Fprintf(w, "%s: refused: %s\n", file, trail.ErrorMessage(err))
	for _, f := range trail.ErrorFields(err) {
		fmt.Fprintf(w, "  %s: %s\n", f.Path, f.Message)
	}
}

// readRules reads a rule file given on the command line (- for standard
// input), up to the largest a tenant may keep.
func readRules(e *env, name string) ([]byte, error) {
	r, done, err := e.input(name)
	if err != nil {
		return nil, err
	}
	defer done()
	b, err := io.ReadAll(io.LimitReader(r, trail.MaxRuleFileSize+1))
	if err != nil {
		return nil, usageError("%s: %v", name, err)
	}
	if len(b) > trail.MaxRuleFileSize {
		return nil, usageError("%s: larger than %d bytes", name, trail.MaxRuleFileSize)
	}
	return b, nil
}
