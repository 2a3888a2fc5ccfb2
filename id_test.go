package trail_test

import (
	"regexp"
	"testing"
	"time"

	"github.com/trailaudit/trail"
)

func TestNewIDIsUUIDv7(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	seen := map[string]bool{}
	prev := ""
	for i := range 1000 {
		id := trail.NewID(t0.Add(time.Duration(i) * time.Millisecond))
		if !re.MatchString(id) {
			t.Fatalf("%q is not a UUIDv7", id)
		}
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
		if id <= prev {
			t.Fatalf("ids of later milliseconds must sort later: %q after %q", id, prev)
		}
		prev = id
	}
	// The timestamp is the first 48 bits: 2026-11-24T10:00:00Z in Unix ms.
	if got := trail.NewID(t0)[:13]; got != "01a20cff-7d00" {
		t.Errorf("time prefix = %s", got)
	}
}

func TestParseID(t *testing.T) {
	id := trail.NewID(time.Now())
	u, ok := trail.ParseID(id)
	if !ok || trail.FormatID(u) != id {
		t.Fatalf("ParseID(%q) = %x, %v", id, u, ok)
	}
	if u2, ok := trail.ParseID("01A20CFF-7D00-7ABC-8DEF-0123456789AB"); !ok || trail.FormatID(u2) != "01a20cff-7d00-7abc-8def-0123456789ab" {
		t.Errorf("upper case: %x, %v", u2, ok)
	}
	for _, bad := range []string{"", "no-such-id", id[:35], id + "0", "01a20cff-7d00-7abc-8def-0123456789ag", "01a20cff7d00-7abc-8def-0123456789abc", "01a20cff-7d00-7abc-8def+0123456789ab"} {
		if _, ok := trail.ParseID(bad); ok {
			t.Errorf("ParseID(%q) accepted", bad)
		}
	}
}
