package redact

import (
	"strings"
	"testing"
)

// TestSecretSuffixes: a name is secret when it ends with a secret suffix
// after at least one byte of its own, whichever of its underscores the
// suffix starts at, as the comparison with every suffix had it.
func TestSecretSuffixes(t *testing.T) {
	var r *Redactor
	for _, suf := range secretSuffixes {
		for _, tc := range []struct {
			name string
			want nameKind
		}{
			{"x" + suf, nameSecret},
			{"new_x" + suf, nameSecret},
			{"a_b_c" + suf, nameSecret},
			{"x" + suf + "_at", nameUnknown},
			{"x" + strings.TrimPrefix(suf, "_"), nameUnknown},
			{suf, nameUnknown}, // nothing before it (normalizeKey never leaves a leading '_')
		} {
			if _, ok := secretNames[tc.name]; ok {
				continue
			}
			if _, ok := publicNames[tc.name]; ok {
				continue
			}
			if got := r.classify([]byte(tc.name)); got != tc.want {
				t.Errorf("classify(%q) = %d, want %d", tc.name, got, tc.want)
			}
		}
	}
}

// BenchmarkSecretKey classifies the context keys of the sample events
// (internal/sample), none of them secret: what redaction does for every
// context member of every event.
func BenchmarkSecretKey(b *testing.B) {
	r := New(Options{})
	names := []string{"method", "mfa", "remember_me", "reason", "attempts", "email", "resource", "fields",
		"amount_cents", "currency", "role", "format", "row_count", "provider_id", "transaction_id"}
	for b.Loop() {
		for _, n := range names {
			r.SecretKey(n)
		}
	}
}
