package trail_test

import (
	"strings"
	"testing"
	"time"

	"github.com/trailaudit/trail"
)

func TestAPIKeys(t *testing.T) {
	text, k, err := trail.NewAPIKey("acme", "ingest", []trail.KeyScope{trail.ScopeRead, trail.ScopeIngest, trail.ScopeRead}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(text, "trail_"+k.ID+"_") || len(k.Hash) != 32 || strings.Contains(string(k.Hash), text) {
		t.Fatalf("key %q, record %+v", text, k)
	}
	if len(k.Scopes) != 2 || k.Scopes[0] != trail.ScopeIngest || !k.Has(trail.ScopeRead) || k.Has(trail.ScopeAdmin) {
		t.Errorf("scopes %v: want ingest, read (canonical order, no repeats)", k.Scopes)
	}
	id, hash, err := trail.ParseAPIKey(text)
	if err != nil || id != k.ID || !k.Matches(hash) {
		t.Fatalf("ParseAPIKey: %q %v", id, err)
	}
	wrong := text[:len(text)-1] + "A"
	if wrong == text {
		wrong = text[:len(text)-1] + "B"
	}
	if _, hash, _ := trail.ParseAPIKey(wrong); k.Matches(hash) {
		t.Error("a changed secret matches")
	}
	for _, bad := range []string{"", "trail_", "Bearer x", "trail_abc_def", text + "x", strings.Replace(text, "trail_", "trial_", 1)} {
		if _, _, err := trail.ParseAPIKey(bad); trail.ErrorCode(err) != trail.EUNAUTHORIZED {
			t.Errorf("ParseAPIKey(%q) = %v, want EUNAUTHORIZED", bad, err)
		}
	}
	_, _, err = trail.NewAPIKey("", "", []trail.KeyScope{"root"}, time.Now())
	for _, path := range []string{"tenant", "scopes[0]"} {
		if !strings.Contains(err.Error(), path) {
			t.Errorf("NewAPIKey error %q does not name %s", err, path)
		}
	}
}

// FuzzParseAPIKey: any Authorization value parses or is refused, never
// panics, and only well-shaped keys parse.
func FuzzParseAPIKey(f *testing.F) {
	text, _, _ := trail.NewAPIKey("acme", "", trail.KeyScopes, time.Now())
	f.Add(text)
	f.Add("trail__")
	f.Add("trail_000000000000_" + strings.Repeat("A", 43))
	f.Fuzz(func(t *testing.T, s string) {
		id, hash, err := trail.ParseAPIKey(s)
		if err == nil && (len(id) != 12 || len(hash) != 32 || !strings.HasPrefix(s, "trail_"+id+"_")) {
			t.Fatalf("ParseAPIKey(%q) = %q, %x", s, id, hash)
		}
	})
}
