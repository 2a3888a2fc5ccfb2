package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/pgtest"
	"github.com/trailaudit/trail/storetest"
)

// TestClassify: the failures of PostgreSQL's that pass, and are no fault
// of the caller's or Trail's, carry the codes that say so (the API answers
// them 503 and 507); any other is internal.
func TestClassify(t *testing.T) {
	ctx := context.Background()
	pgtest.Need(t)

	// Nothing listens on port 1: the server is unreachable.
	unreachable := func() error {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, "postgres://postgres@127.0.0.1:1/test?connect_timeout=5")
		if err == nil {
			c.Close(ctx)
		}
		return err
	}()

	// A connection the server ends (an administrator's pg_terminate_backend).
	victim, err := pgx.Connect(ctx, pgtest.ServerURL())
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close(ctx)
	killer, err := pgx.Connect(ctx, pgtest.ServerURL())
	if err != nil {
		t.Fatal(err)
	}
	defer killer.Close(ctx)
	if _, err := killer.Exec(ctx, "SELECT pg_terminate_backend($1)", victim.PgConn().PID()); err != nil {
		t.Fatal(err)
	}
	_, terminated := victim.Exec(ctx, "SELECT 1")

	_, broken := killer.Exec(ctx, "SELECT 1/0")

	db, err := Open(ctx, pgtest.ServerURL(), Options{Validator: storetest.Validator(), Signer: storetest.Signer(), Schema: pgtest.NewSchema(t)})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, closed := db.Append(ctx, "acme", []*trail.Event{storetest.Login("u-1")}, trail.AppendOptions{})

	for _, tc := range []struct {
		name string
		err  error
		code string
	}{
		{"server unreachable", unreachable, trail.EUNAVAILABLE},
		{"connection terminated", terminated, trail.EUNAVAILABLE},
		{"store closed", closed, trail.EUNAVAILABLE},
		{"disk full (SQLSTATE 53100)", &pgconn.PgError{Code: "53100", Message: "could not extend file"}, trail.ESTORAGEFULL},
		{"too many connections (SQLSTATE 53300)", &pgconn.PgError{Code: "53300"}, trail.EUNAVAILABLE},
		{"server starting up (SQLSTATE 57P03)", &pgconn.PgError{Code: "57P03"}, trail.EUNAVAILABLE},
		{"a broken rule (Trail's fault)", broken, trail.EINTERNAL},
	} {
		if tc.err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		if err := internal(tc.err, "write events"); trail.ErrorCode(err) != tc.code {
			t.Errorf("%s: %v is %s, want %s", tc.name, err, trail.ErrorCode(err), tc.code)
		}
	}
}
