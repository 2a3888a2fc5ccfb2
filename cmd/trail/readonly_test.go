package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trailaudit/trail/internal/testenv"
)

// TestReadOnlyCopy: the commands that only read (verify, query,
// checkpoint, prove, export) work on a read-only copy of the data
// directory, as an auditor has one (a mounted backup): they open nothing
// for writing, the subject-key file included. A copy made without the key
// file reads personal data as erased, and says so.
func TestReadOnlyCopy(t *testing.T) {
	events := `{"action":"user_logout","actor":{"type":"user","id":"u-1","email":"u1@example.com"}}` + "\n" +
		`{"action":"user_logout","actor":{"type":"user","id":"u-2"}}` + "\n"
	reads := []struct {
		args []string
		want string
	}{
		{[]string{"verify", "--tenant", "acme"}, "intact"},
		{[]string{"query", "--tenant", "acme", "--json"}, `"id":"u-2"`},
		{[]string{"checkpoint", "--tenant", "acme"}, "/acme\n2\n"},
		{[]string{"prove", "--tenant", "acme", "--seq", "2"}, `"seq":2`},
		{[]string{"export", "--tenant", "acme"}, `"id":"u-1"`},
	}
	for _, tc := range []struct {
		name   string
		keys   bool   // the copy holds subject-keys.db
		email  string // what u-1's email reads as
		stderr string
	}{
		{"whole", true, "u1@example.com", ""},
		{"without the subject keys", false, "[erased]", "subject-keys.db: personal data reads as [erased]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "events.ndjson"), []byte(events), 0o644); err != nil {
				t.Fatal(err)
			}
			trail := func(args ...string) (int, string, string) {
				var out, errb bytes.Buffer
				code := run(args, &env{stdout: &out, stderr: &errb, dir: dir, vars: map[string]string{"TRAIL_CHECKPOINTS": filepath.Join(dir, "remembered")}})
				return code, out.String(), errb.String()
			}
			if code, out, errs := trail("ingest", "--tenant", "acme", "events.ndjson"); code != 0 {
				t.Fatalf("ingest: exit %d\n%s%s", code, out, errs)
			}
			data := filepath.Join(dir, "trail-data")
			if !tc.keys {
				if err := os.Remove(filepath.Join(data, "subject-keys.db")); err != nil {
					t.Fatal(err)
				}
			}
			testenv.ReadOnly(t, data)
			for _, r := range reads {
				code, out, errs := trail(r.args...)
				if code != 0 || !strings.Contains(out, r.want) {
					t.Errorf("trail %s on a read-only copy: exit %d, want 0 printing %q\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), code, r.want, out, errs)
				}
			}
			_, out, errs := trail("query", "--tenant", "acme", "--actor", "u-1", "--json")
			if !strings.Contains(out, `"email":"`+tc.email+`"`) {
				t.Errorf("u-1's email on the copy, want %s:\n%s", tc.email, out)
			}
			if !strings.Contains(errs, tc.stderr) {
				t.Errorf("stderr does not say the keys are missing:\n%s", errs)
			}
		})
	}
}

// A read never creates a database where there was none: a --data that
// names no Trail data (a typo) is said, exit 3, and left as it was.
func TestReadCreatesNothing(t *testing.T) {
	dir := t.TempDir()
	var pub, says bytes.Buffer
	if code := run([]string{"keygen", "--name", "audit.example.com", "--out", "audit.key"}, &env{stdout: &pub, stderr: &says, dir: dir, vars: map[string]string{}}); code != 0 {
		t.Fatalf("keygen: exit %d: %s", code, says.String())
	}
	for _, args := range [][]string{
		{"query", "--tenant", "acme", "--data", "typo"},
		{"export", "--tenant", "acme", "--data", "typo", "--format", "csv"},
		{"verify", "--tenant", "acme", "--data", "typo", "--key", strings.Fields(pub.String())[0]},
	} {
		var out, errb bytes.Buffer
		code := run(args, &env{stdout: &out, stderr: &errb, dir: dir, vars: map[string]string{}})
		if code != 3 || !strings.Contains(errb.String(), "no Trail data in typo") {
			t.Errorf("trail %s: exit %d, want 3 saying there is no Trail data\n%s%s", strings.Join(args, " "), code, out.String(), errb.String())
		}
		if _, err := os.Stat(filepath.Join(dir, "typo")); !os.IsNotExist(err) {
			t.Fatalf("trail %s made %s: %v", strings.Join(args, " "), filepath.Join(dir, "typo"), err)
		}
	}
}
