package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/sqlite"
	"github.com/trailaudit/trail/storetest"
)

func open(t *testing.T, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path, sqlite.Options{Validator: storetest.Validator()})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) trail.Store {
		return open(t, filepath.Join(t.TempDir(), "trail.db"))
	})
}

func TestDurable(t *testing.T) {
	storetest.RunDurable(t, func(t *testing.T) storetest.Durable {
		path := filepath.Join(t.TempDir(), "trail.db")
		return storetest.Durable{
			Open: func(t *testing.T) trail.Store { return open(t, path) },
			Exec: func(ctx context.Context, stmt string) error { return rawExec(t, path, stmt) },
		}
	})
}

// rawExec runs stmt on the database file directly, bypassing the store.
func rawExec(t *testing.T, path, stmt string) error {
	t.Helper()
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_, err = raw.Exec(stmt)
	return err
}

func TestRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trail.db")
	open(t, path).Close()
	if err := rawExec(t, path, "PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	_, err := sqlite.Open(context.Background(), path, sqlite.Options{Validator: storetest.Validator()})
	if err == nil || !strings.Contains(err.Error(), "schema version 99 is newer") {
		t.Fatalf("Open of a newer database = %v, want a refusal naming the version", err)
	}
}

func TestOpenNeedsValidator(t *testing.T) {
	if _, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "x.db"), sqlite.Options{}); err == nil {
		t.Fatal("Open with no validator succeeded")
	}
}
