package main

import (
	"database/sql"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/trailaudit/trail/internal/sqlitetest"
)

// TestKeyRotateResumes: trail key rotate interrupted after each of its
// steps (the old key saved beside the key file; the new key written; some
// logs rotated, here by an ingest that signed with both keys meanwhile)
// is finished by running it again, and the logs verify from the old key.
func TestKeyRotateResumes(t *testing.T) {
	tests := []struct {
		name    string
		stopped func(t *testing.T, dir string) // the state the interrupted rotation left
		rotated string                         // the logs the second run rotates
		acmeAt  string                         // the size of acme's rotation checkpoint
	}{
		{"nothing done yet", func(*testing.T, string) {}, "acme at size 6, globex at size 6", "6"},
		{"the old key saved", func(t *testing.T, dir string) {
			write(t, dir, "trail-data/log.key.previous", read(t, dir, "trail-data/log.key"))
		}, "acme at size 6, globex at size 6", "6"},
		{"the new key written, acme rotated by an ingest meanwhile", func(t *testing.T, dir string) {
			write(t, dir, "trail-data/log.key.previous", read(t, dir, "trail-data/log.key"))
			if err := replaceKey(filepath.Join(dir, "trail-data", "log.key"), "audit.example.com"); err != nil {
				t.Fatal(err)
			}
			if code, out := runIn(dir, nil, "ingest", "--tenant", "acme", "events.ndjson"); code != 0 {
				t.Fatalf("ingest while rotating: exit %d\n%s", code, out)
			}
		}, "globex at size 6", "10"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := fixture(t)
			if code, out := runIn(dir, nil, "ingest", "--tenant", "globex", "events.ndjson"); code != 0 {
				t.Fatalf("ingest: exit %d\n%s", code, out)
			}
			tc.stopped(t, dir)
			code, out := runIn(dir, nil, "key", "rotate")
			if code != 0 || !strings.Contains(out, "("+tc.rotated+")") {
				t.Fatalf("key rotate: exit %d, want 0 rotating %s\n%s", code, tc.rotated, out)
			}
			if _, err := os.Stat(filepath.Join(dir, "trail-data", "log.key.previous")); !os.IsNotExist(err) {
				t.Errorf("the previous key is still there: %v", err)
			}
			for tenant, at := range map[string]string{"acme": tc.acmeAt, "globex": "6"} {
				code, out := runIn(dir, nil, "verify", "--tenant", tenant, "--key", "audit.pub")
				chain := regexp.MustCompile(`key audit\.example\.com\+\w+ from the start, trusted\nkey audit\.example\.com\+\w+ from the rotation at size ` + at + ` \(signed by both\)\n(.|\n)*intact`)
				if code != 0 || !chain.MatchString(out) {
					t.Errorf("verify %s from the old key: exit %d\n%s", tenant, code, out)
				}
			}
		})
	}
}

// TestKeyRotateRetiresTheOldKey: once the logs are rotated, a writer still
// given the old key (a server nobody told) is refused: it would sign
// checkpoints with a retired key. One given no key at all is told to give
// one rather than trail making a new one.
func TestKeyRotateRetiresTheOldKey(t *testing.T) {
	dir := fixture(t)
	write(t, dir, "old.key", read(t, dir, "trail-data/log.key"))
	if code, out := runIn(dir, nil, "key", "rotate"); code != 0 {
		t.Fatalf("key rotate: exit %d\n%s", code, out)
	}
	code, out := runIn(dir, nil, "ingest", "--tenant", "acme", "--signing-key", "old.key", "events.ndjson")
	if code != 1 || !strings.Contains(out, "its log was rotated from the signing key audit.example.com+") || !strings.Contains(out, "refusing to sign with the retired key") {
		t.Errorf("ingest with the old key: exit %d, want 1 refusing the retired key\n%s", code, out)
	}
	if code, out := runIn(dir, nil, "key", "rotate", "--signing-key", "none.key"); code != 2 || !strings.Contains(out, "none.key") {
		t.Errorf("key rotate with no key: exit %d, want 2 naming the file\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "none.key")); !os.IsNotExist(err) {
		t.Errorf("key rotate made a key: %v", err)
	}
}

// TestActionMigrationSaid: the first command to open a store saved before
// custom actions were per tenant says what the migration did with them.
func TestActionMigrationSaid(t *testing.T) {
	dir := fixture(t) // acme's log
	tamper(t, dir, "custom_actions", func(db *sql.DB) {
		for _, stmt := range append(slices.Clone(sqlitetest.UndoToVersion5),
			`INSERT INTO custom_actions (name, definition, saved_at) VALUES ('badge_scanned', '{"name":"badge_scanned","category":"physical","outcome":"info","custom":true}', 1)`) {
			if _, err := db.Exec(stmt); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
	})
	code, out := runIn(dir, nil, "keys", "list")
	if code != 0 || !strings.Contains(out, "trail: migration: custom action badge_scanned, saved when custom actions were shared by every tenant, is in no tenant's log") {
		t.Errorf("the first open after the migration: exit %d\n%s", code, out)
	}
	if _, out := runIn(dir, nil, "keys", "list"); strings.Contains(out, "migration") {
		t.Errorf("the second open says the migration again:\n%s", out)
	}
}
