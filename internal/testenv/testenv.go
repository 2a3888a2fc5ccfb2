// Package testenv holds the project's one rule for a test that needs what a
// machine may lack (a database, a browser, seed documents, the time to run
// slow trials): elsewhere it skips, saying why; under CI=true it fails, for a
// missing dependency must not pass for a green run.
package testenv

import (
	"fmt"
	"os"
	"testing"
)

// CI reports whether the tests run under CI=true.
func CI() bool { return os.Getenv("CI") == "true" }

// Missing skips tb with the message format and args make, or fails it
// under CI=true, where every test must run.
func Missing(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := fmt.Sprintf(format, args...)
	if CI() {
		tb.Fatal(msg + " (CI=true, so this fails: CI must run it)")
	}
	tb.Skip(msg)
}

// Slow skips tb under -short, saying why it is slow, except under CI=true,
// where it always runs.
func Slow(tb testing.TB, why string) {
	tb.Helper()
	if testing.Short() && !CI() {
		tb.Skip(why + " (-short; never skipped under CI=true)")
	}
}
