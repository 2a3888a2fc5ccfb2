package main

import (
	"context"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/postgres"
	"github.com/trailaudit/trail/tlog"
)

// openPostgres opens the PostgreSQL store at url (a search_path parameter
// in it names Trail's schema; the default is public).
func openPostgres(ctx context.Context, url string, v *trail.Validator, s *tlog.Signer) (trail.Store, error) {
	return postgres.Open(ctx, url, postgres.Options{Validator: v, Signer: s})
}
