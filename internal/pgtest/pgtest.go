// Package pgtest gives tests a PostgreSQL schema of their own on a real
// server: TRAIL_POSTGRES_URL, or the local one every development machine and
// CI runs (postgres@127.0.0.1:5432/test, trust auth). Each schema is dropped,
// with everything in it, when its test ends.
//
// With no server, a test skips with a message saying so, except under
// CI=true, where it fails (testenv.Missing): a missing database must not pass
// for a green run.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/trailaudit/trail/internal/testenv"
)

// DefaultURL is the server tests use when TRAIL_POSTGRES_URL is not set.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// ServerURL returns the connection URL of the test server.
func ServerURL() string {
	if u := os.Getenv("TRAIL_POSTGRES_URL"); u != "" {
		return u
	}
	return DefaultURL
}

var (
	reachOnce sync.Once
	reachErr  error
)

// Need skips the test when no server answers, or fails it under CI.
func Need(tb testing.TB) {
	tb.Helper()
	reachOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, ServerURL())
		if err != nil {
			reachErr = err
			return
		}
		reachErr = conn.Ping(ctx)
		conn.Close(ctx)
	})
	if reachErr == nil {
		return
	}
	testenv.Missing(tb, "no PostgreSQL server at %s (set TRAIL_POSTGRES_URL): %v", RedactURL(ServerURL()), reachErr)
}

// RedactURL hides a password in a connection URL.
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// NewSchema names a fresh schema (created by whoever opens it first) and
// drops it when the test ends, after the stores opened on it are closed
// (cleanups run last-registered first).
func NewSchema(tb testing.TB) string {
	tb.Helper()
	Need(tb)
	var b [6]byte
	rand.Read(b[:])
	schema := "trail_test_" + hex.EncodeToString(b[:])
	tb.Cleanup(func() {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, ServerURL())
		if err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return schema
}

// SchemaURL returns the server URL with search_path set to a fresh schema
// (see NewSchema): what a test hands to `trail --postgres`.
func SchemaURL(tb testing.TB) string {
	tb.Helper()
	schema := NewSchema(tb)
	u, err := url.Parse(ServerURL())
	if err != nil {
		tb.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
