package main

import (
	"context"

	"github.com/trailaudit/trail"
)

// openPostgres opens a PostgreSQL store.
func openPostgres(ctx context.Context, url string, v *trail.Validator) (trail.Store, error) {
	return nil, usageError("--postgres: not built in yet")
}
