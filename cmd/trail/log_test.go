package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEnvironment: the store's environment variables reach every command,
// and a value a flag refuses is a usage error naming the variable.
func TestEnvironment(t *testing.T) {
	dir := t.TempDir()
	if code, out := runIn(dir, map[string]string{"TRAIL_SIGNING_KEY": "keys/audit.key"}, "keygen", "--name", "audit.example.com"); code != 0 || !strings.Contains(out, "keys/audit.key") {
		t.Fatalf("keygen with TRAIL_SIGNING_KEY: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "keys", "audit.key")); err != nil {
		t.Errorf("the key is not where TRAIL_SIGNING_KEY says: %v", err)
	}
	if code, out := runIn(dir, map[string]string{"TRAIL_RATE_LIMIT": "abc"}, "serve", "--addr", "127.0.0.1:0"); code != 2 || !strings.Contains(out, "TRAIL_RATE_LIMIT") {
		t.Errorf("serve with TRAIL_RATE_LIMIT=abc: exit %d, want 2 naming the variable\n%s", code, out)
	}
}

// TestVerifyRemembers: trail verify remembers the latest checkpoint of the
// log it verified, follows the log as it grows, and finds the log rolled
// back to an earlier copy of its data directory, and another history
// signed with the same key, naming both sizes (exit 1); --no-remember
// checks neither.
func TestVerifyRemembers(t *testing.T) {
	dir := t.TempDir()
	vars := map[string]string{"TRAIL_CHECKPOINTS": "remembered"}
	write := func(name string, n int) {
		t.Helper()
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, `{"action":"user_logout","actor":{"type":"user","id":"u-%d"}}`+"\n", i)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	trail := func(want int, args ...string) string {
		t.Helper()
		code, out := runIn(dir, vars, args...)
		if code != want {
			t.Fatalf("trail %s: exit %d, want %d\n%s", strings.Join(args, " "), code, want, out)
		}
		return out
	}
	write("two.ndjson", 2)
	write("five.ndjson", 5)
	trail(0, "ingest", "--tenant", "acme", "two.ndjson")
	if out := trail(0, "verify", "--tenant", "acme"); !strings.Contains(out, "latest checkpoint (size 2) consistent with the one remembered in "+filepath.Join(dir, "remembered")) {
		t.Fatalf("the first verify does not say it remembers:\n%s", out)
	}
	if err := os.CopyFS(filepath.Join(dir, "earlier"), os.DirFS(filepath.Join(dir, "trail-data"))); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "earlier", "log.key"), 0o600); err != nil {
		t.Fatal(err)
	}
	trail(0, "ingest", "--tenant", "acme", "two.ndjson")
	if out := trail(0, "verify", "--tenant", "acme"); !strings.Contains(out, "latest checkpoint (size 4) consistent") {
		t.Fatalf("the grown log:\n%s", out)
	}
	key, err := os.ReadFile(filepath.Join(dir, "trail-data", "log.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "fork"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "fork", "log.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	trail(0, "ingest", "--tenant", "acme", "--data", "fork", "five.ndjson")
	for _, tc := range []struct {
		data string
		want []string
	}{
		{"earlier", []string{"DAMAGE: first at seq 3 (rollback)", "size 2, root", "smaller than the one remembered (a rollback), of size 4, root"}},
		{"fork", []string{"DAMAGE: first at seq 5 (fork)", "size 5, root", "not consistent with the one remembered (a fork: the log was rewritten), of size 4, root"}},
	} {
		out := trail(1, "verify", "--tenant", "acme", "--data", tc.data)
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("verify of %s does not say %q:\n%s", tc.data, w, out)
			}
		}
		trail(0, "verify", "--tenant", "acme", "--data", tc.data, "--no-remember")
	}
	if out := trail(0, "verify", "--tenant", "acme"); !strings.Contains(out, "latest checkpoint (size 4) consistent") {
		t.Fatalf("the real log after the refusals:\n%s", out)
	}
}

// TestVerifyWindowBundle: trail verify --bundle finds a window bundle that
// leaves an event out, or whose boundary is inside the window (exit 1),
// and says it is not complete.
func TestVerifyWindowBundle(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	for i := range 6 {
		fmt.Fprintf(&b, `{"action":"user_logout","actor":{"type":"user","id":"u-%d"}}`+"\n", i)
	}
	if err := os.WriteFile(filepath.Join(dir, "six.ndjson"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out := runIn(dir, nil, "ingest", "--tenant", "acme", "six.ndjson"); code != 0 {
		t.Fatalf("ingest: exit %d\n%s", code, out)
	}
	code, vkey := runIn(dir, nil, "verifier")
	if code != 0 {
		t.Fatalf("verifier: exit %d\n%s", code, vkey)
	}
	if err := os.WriteFile(filepath.Join(dir, "audit.pub"), []byte(vkey), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out := runIn(dir, nil, "export", "--tenant", "acme", "--verifiable", "--out", "all.bundle"); code != 0 {
		t.Fatalf("export: exit %d\n%s", code, out)
	}
	bundle, err := os.ReadFile(filepath.Join(dir, "all.bundle"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(bundle), "\n")
	for _, tc := range []struct {
		name, bundle, want string
	}{
		{"an event dropped", strings.Join(append(lines[:3:3], lines[4:]...), ""), "missing"},
		{"the window cut short", strings.Join(lines[:6], ""), "no event after the window"},
	} {
		if err := os.WriteFile(filepath.Join(dir, "bad.bundle"), []byte(tc.bundle), 0o644); err != nil {
			t.Fatal(err)
		}
		code, out := runIn(dir, nil, "verify", "--bundle", "bad.bundle", "--key", "audit.pub")
		if code != 1 || !strings.Contains(out, tc.want) || !strings.Contains(out, "NOT complete") || strings.Contains(out, "complete: every") {
			t.Errorf("%s: exit %d, want 1 saying %q and NOT complete\n%s", tc.name, code, tc.want, out)
		}
	}
}
