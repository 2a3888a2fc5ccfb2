package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/storetest"
)

// onWriter runs a statement on the writer's connection, holding the
// writer as a batch does.
func onWriter(t *testing.T, db *DB, query string) {
	t.Helper()
	db.turn <- struct{}{}
	defer func() { <-db.turn }()
	db.settle()
	if _, err := db.w.ExecContext(context.Background(), query); err != nil {
		t.Fatal(err)
	}
}

// TestStorageFull: a commit SQLite has no room for fails as ESTORAGEFULL,
// saying so, and stores nothing of the group; once there is room again the
// store appends where it left off. A full disk is a database that may not
// grow here (PRAGMA max_page_count on the writer): SQLite reports both as
// SQLITE_FULL.
func TestStorageFull(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "trail.db"), Options{Validator: storetest.Validator(), Signer: storetest.Signer()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Append(ctx, "acme", []*trail.Event{storetest.Login("u-0")}, trail.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	var pages int
	if err := db.r.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	onWriter(t, db, fmt.Sprintf("PRAGMA max_page_count = %d", pages))
	batch := make([]*trail.Event, 500)
	for i := range batch {
		batch[i] = storetest.Login(fmt.Sprintf("u-%d", i+1))
	}
	_, err = db.Append(ctx, "acme", batch, trail.AppendOptions{})
	if trail.ErrorCode(err) != trail.ESTORAGEFULL || !strings.Contains(trail.ErrorMessage(err), "full") {
		t.Fatalf("appending to a full database: %v (code %s); want %s saying it is full", err, trail.ErrorCode(err), trail.ESTORAGEFULL)
	}
	if n, err := db.Count(ctx, trail.Query{Tenant: "acme"}); err != nil || n != 1 {
		t.Fatalf("after the failed commit the log holds %d events (%v), want 1", n, err)
	}
	onWriter(t, db, "PRAGMA max_page_count = 1073741823")
	res, err := db.Append(ctx, "acme", batch, trail.AppendOptions{})
	if err != nil || res.Events[0].Seq != 2 {
		t.Fatalf("appending once there is room: %v", err)
	}
}

// TestClassify: the failures of SQLite's that pass, and are no fault of
// the caller's or Trail's, carry the codes that say so; any other is
// internal.
func TestClassify(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "t.db")
	run := func(dsn string, queries ...string) error {
		db, err := sql.Open("sqlite", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		for _, q := range queries {
			if _, err := db.Exec(q); err != nil {
				return err
			}
		}
		return nil
	}
	if err := run("file:"+path, "CREATE TABLE t (k INTEGER PRIMARY KEY, b BLOB)", "INSERT INTO t VALUES (1, x'00')"); err != nil {
		t.Fatal(err)
	}
	closed, err := Open(context.Background(), filepath.Join(dir, "trail.db"), Options{Validator: storetest.Validator(), Signer: storetest.Signer()})
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	_, closedErr := closed.Append(context.Background(), "acme", []*trail.Event{storetest.Login("u-1")}, trail.AppendOptions{})
	for _, tc := range []struct {
		name string
		err  error
		code string
	}{
		{"full", run("file:"+path, "PRAGMA max_page_count = 2", "INSERT INTO t VALUES (2, zeroblob(100000))"), trail.ESTORAGEFULL},
		{"read-only", run("file:"+path+"?mode=ro", "INSERT INTO t VALUES (3, x'00')"), trail.EUNAVAILABLE},
		{"cannot open", run("file:"+filepath.Join(dir, "missing", "t.db"), "SELECT 1"), trail.EUNAVAILABLE},
		{"closed store", closedErr, trail.EUNAVAILABLE},
		{"a broken rule (Trail's fault)", run("file:"+path, "INSERT INTO t VALUES (1, x'00')"), trail.EINTERNAL},
	} {
		if tc.err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		if err := internal(tc.err, "write"); trail.ErrorCode(err) != tc.code {
			t.Errorf("%s: %v is %s, want %s", tc.name, err, trail.ErrorCode(err), tc.code)
		}
	}
}
