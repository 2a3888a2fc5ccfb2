package main

import (
	"context"
	"fmt"
	"os/user"

	"github.com/spf13/cobra"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/retention"
)

func newEraseCmd(e *env) *cobra.Command {
	var (
		sf      storeFlags
		tenant  string
		subject string
		reason  string
	)
	cmd := &cobra.Command{
		Use:   "erase --tenant T --subject ID [--reason R]",
		Short: "Erase a data subject's personal data (GDPR), keeping the log verifiable",
		Long: `Erase deletes the encryption keys of a data subject (a user id): the personal
data of every event of that subject (actor name and email, IP address,
personal context keys) then reads as [erased] everywhere — queries, exports,
the API and the raw database — while the stored bytes, and so the Merkle log
and its proofs, stay as they were: trail verify still passes.

It refuses while a legal hold covers the subject, and records the erasure in
the tenant's log (subject_erased).`,
		Example: `  trail erase --tenant acme --subject u-123 --reason "GDPR request #4411"`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if m := trail.CheckTenant(tenant); m != "" {
				return usageError("--tenant: %s", m)
			}
			if subject == "" {
				return usageError("--subject: required: the data subject's id (the actor id of their events)")
			}
			ctx := cmd.Context()
			d, err := sf.open(ctx, e, true)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			defer d.Close()
			n, err := d.Sealer.EraseSubject(ctx, d.Writer, d.heldBy, tenant, subject, reason, cliActor())
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			fmt.Fprintf(e.stdout, "erased subject %s of tenant %s (%d keys deleted); the erasure is recorded in the log\n", subject, tenant, n)
			return nil
		},
	}
	sf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&tenant, "tenant", "", "tenant (required)")
	f.StringVar(&subject, "subject", "", "the data subject's id (required)")
	f.StringVar(&reason, "reason", "", "the request (a ticket, an article), recorded")
	return cmd
}

// heldBy is the legal-hold check of an erasure: a standing hold covering
// subject's events, or nil.
func (d *deployment) heldBy(ctx context.Context, tenant, subject string) (*trail.Hold, error) {
	return retention.SubjectHeld(ctx, d.Holds, d.Store, tenant, subject)
}

// cliActor is who runs a CLI command that changes the log: the OS user.
func cliActor() trail.Actor {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return trail.Actor{Type: trail.ActorSystem, ID: "cli:" + name, Name: "trail CLI run by " + name}
}
