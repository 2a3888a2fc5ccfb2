package main

import (
	"context"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/redact"
	"github.com/trailaudit/trail/sqlite"
)

// storeFlags choose where events live: the embedded SQLite database in a
// data directory (the default), or PostgreSQL.
type storeFlags struct {
	data     string
	postgres string
}

func (f *storeFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.data, "data", "trail-data", "data directory of the embedded SQLite database")
	cmd.Flags().StringVar(&f.postgres, "postgres", "", "PostgreSQL connection URL (instead of --data)")
}

// newValidator is the validator every store of the CLI uses: the built-in
// catalog and the default redactor.
func newValidator() *trail.Validator {
	return &trail.Validator{Actions: catalog.Default(), Redactor: redact.New(redact.Options{}), Limits: trail.DefaultLimits()}
}

// open opens the chosen store.
func (f *storeFlags) open(ctx context.Context, e *env) (trail.Store, error) {
	if f.postgres != "" {
		return openPostgres(ctx, f.postgres, newValidator())
	}
	return sqlite.Open(ctx, filepath.Join(e.path(f.data), "trail.db"), sqlite.Options{Validator: newValidator()})
}
