package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
)

func newActionsCmd(e *env) *cobra.Command {
	var f catalog.Filter
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "actions",
		Short: "List the action catalog",
		Long: `List the actions Trail knows: name, category, outcome, severity, compliance
tags, default retention and the context keys their events should carry.`,
		Example: `  trail actions --category authentication
  trail actions --compliance pci-dss --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cat := catalog.Default()
			if f.Category != "" && !slices.ContainsFunc(cat.Categories(), func(c catalog.Category) bool { return c.Name == f.Category }) {
				var names []string
				for _, c := range cat.Categories() {
					names = append(names, c.Name)
				}
				return usageError("--category: no category %q; the categories are %s", f.Category, strings.Join(names, ", "))
			}
			if f.Outcome != "" && !f.Outcome.Valid() {
				return usageError("--outcome: must be one of attempted, success, failure, denied, info")
			}
			acts := cat.Actions(f)
			if asJSON {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				if acts == nil {
					acts = []*trail.Action{}
				}
				return enc.Encode(acts)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ACTION\tCATEGORY\tOUTCOME\tSEVERITY\tCOMPLIANCE\tRETENTION\tCONTEXT KEYS\tALIASES")
			for _, a := range acts {
				var keys []string
				for _, k := range a.Context {
					s := k.Key
					if !k.Required {
						s += "?"
					}
					keys = append(keys, s)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Name, a.Category, a.Outcome, a.Severity,
					dash(strings.Join(a.Compliance, ",")), a.Retention, dash(strings.Join(keys, ",")), dash(strings.Join(a.Aliases, ",")))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "%d actions (a key ending in ? is optional)\n", len(acts))
			return nil
		},
	}
	cmd.Flags().StringVar(&f.Category, "category", "", "only actions of this category")
	cmd.Flags().StringVar(&f.Compliance, "compliance", "", "only actions with this compliance tag (PCI-DSS, SOC2, GDPR)")
	cmd.Flags().StringVar((*string)(&f.Outcome), "outcome", "", "only actions with this outcome")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the actions as JSON")
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
