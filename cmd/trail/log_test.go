package main

import (
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
