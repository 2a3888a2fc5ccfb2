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
// and names the seq and the kind of damage, and trail prove of that event
// exits 1.
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
	// Its proof is refused, as damage; the events beside it are proven.
	if code, out := trail("prove", "--tenant", "acme", "--seq", "2"); code != 1 || !strings.Contains(out, "damage: changed at seq 2") {
		t.Errorf("prove of the edited event: exit %d, want 1 naming seq 2 changed\n%s", code, out)
	}
	if code, out := trail("prove", "--tenant", "acme", "--seq", "3"); code != 0 || !strings.Contains(out, `"seq":3`) {
		t.Errorf("prove of an event beside it: exit %d\n%s", code, out)
	}
}

// TestEnvironment: the store's environment variables reach every command,
// and a value a flag refuses is a usage error naming the variable.
func TestEnvironment(t *testing.T) {
	dir := t.TempDir()
	run1 := func(vars map[string]string, args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(args, &env{stdout: &out, stderr: &errb, dir: dir, vars: vars})
		return code, out.String() + errb.String()
	}
	if code, out := run1(map[string]string{"TRAIL_SIGNING_KEY": "keys/audit.key"}, "keygen", "--name", "audit.example.com"); code != 0 || !strings.Contains(out, "keys/audit.key") {
		t.Fatalf("keygen with TRAIL_SIGNING_KEY: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "keys", "audit.key")); err != nil {
		t.Errorf("the key is not where TRAIL_SIGNING_KEY says: %v", err)
	}
	if code, out := run1(map[string]string{"TRAIL_RATE_LIMIT": "abc"}, "serve", "--addr", "127.0.0.1:0"); code != 2 || !strings.Contains(out, "TRAIL_RATE_LIMIT") {
		t.Errorf("serve with TRAIL_RATE_LIMIT=abc: exit %d, want 2 naming the variable\n%s", code, out)
	}
}
