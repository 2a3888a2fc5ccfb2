package main

import (
	"bytes"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestVerifyFindsAnEdit: an administrator drops the trigger, edits one
// event in the SQLite file and puts the trigger back; trail verify exits 1
// and names the seq and the kind of damage.
func TestVerifyFindsAnEdit(t *testing.T) {
	dir := t.TempDir()
	var events bytes.Buffer
	for _, u := range []string{"u-1", "u-2", "u-3"} {
		events.WriteString(`{"action":"user_logout","actor":{"type":"user","id":"` + u + `"}}` + "\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "events.ndjson"), events.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	trail := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(args, &env{stdout: &out, stderr: &errb, dir: dir})
		return code, out.String() + errb.String()
	}
	if code, out := trail("ingest", "--tenant", "acme", "events.ndjson"); code != 0 {
		t.Fatalf("ingest: exit %d\n%s", code, out)
	}

	db, err := sql.Open("sqlite", filepath.Join(dir, "trail-data", "trail.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var trigger string
	if err := db.QueryRow("SELECT sql FROM sqlite_master WHERE name = 'events_no_update'").Scan(&trigger); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		"DROP TRIGGER events_no_update",
		"UPDATE events SET body = CAST(replace(CAST(body AS TEXT), '\"u-2\"', '\"u-9\"') AS BLOB) WHERE key & 1099511627775 = 2",
		trigger,
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}

	code, out := trail("verify", "--tenant", "acme")
	if code != 1 || !strings.Contains(out, "DAMAGE: first at seq 2 (changed)") {
		t.Fatalf("verify of an edited log: exit %d, want 1 naming seq 2 changed\n%s", code, out)
	}
}
