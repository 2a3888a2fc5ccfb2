package storetest

import (
	"context"
	"sync"
	"testing"

	"github.com/trailaudit/trail"
)

// RunCursors runs the conformance suite of trail.CursorStore. open must
// return a new, empty store each time it is called; the suite closes it
// when it has a Close method.
func RunCursors(t *testing.T, open func(t *testing.T) trail.CursorStore) {
	runEach(t, open, []storeCase[trail.CursorStore]{
		{"StartsAtZero", testCursorZero},
		{"MovesForward", testCursorForward},
		{"NeverMovesBack", testCursorBack},
		{"ApartByNameAndTenant", testCursorApart},
		{"Concurrent", testCursorConcurrent},
		{"BadName", testCursorBadName},
	})
}

func cursorIs(t *testing.T, s trail.CursorStore, name, tenant string, want uint64) {
	t.Helper()
	got, err := s.Cursor(context.Background(), name, tenant)
	if err != nil || got != want {
		t.Fatalf("Cursor(%s, %s) = %d, %v; want %d", name, tenant, got, err, want)
	}
}

func setCursor(t *testing.T, s trail.CursorStore, name, tenant string, seq uint64) {
	t.Helper()
	if err := s.SetCursor(context.Background(), name, tenant, seq); err != nil {
		t.Fatalf("SetCursor(%s, %s, %d): %v", name, tenant, seq, err)
	}
}

func testCursorZero(t *testing.T, s trail.CursorStore) { cursorIs(t, s, "sink.siem", "acme", 0) }

func testCursorForward(t *testing.T, s trail.CursorStore) {
	setCursor(t, s, "sink.siem", "acme", 5)
	cursorIs(t, s, "sink.siem", "acme", 5)
	setCursor(t, s, "sink.siem", "acme", 5) // the same position: a no-op
	setCursor(t, s, "sink.siem", "acme", 1<<40)
	cursorIs(t, s, "sink.siem", "acme", 1<<40)
}

func testCursorBack(t *testing.T, s trail.CursorStore) {
	setCursor(t, s, "sink.siem", "acme", 9)
	err := s.SetCursor(context.Background(), "sink.siem", "acme", 8)
	if trail.ErrorCode(err) != trail.ECONFLICT {
		t.Fatalf("moving back: err = %v, want ECONFLICT", err)
	}
	cursorIs(t, s, "sink.siem", "acme", 9)
}

func testCursorApart(t *testing.T, s trail.CursorStore) {
	setCursor(t, s, "sink.a", "acme", 3)
	setCursor(t, s, "sink.b", "acme", 7)
	setCursor(t, s, "sink.a", "globex", 11)
	cursorIs(t, s, "sink.a", "acme", 3)
	cursorIs(t, s, "sink.b", "acme", 7)
	cursorIs(t, s, "sink.a", "globex", 11)
	cursorIs(t, s, "sink.b", "globex", 0)
}

// Runners racing to move one cursor end at the furthest position, and each
// is either done or told it was behind.
func testCursorConcurrent(t *testing.T, s trail.CursorStore) {
	var wg sync.WaitGroup
	for i := 1; i <= 20; i++ {
		wg.Add(1)
		go func(seq uint64) {
			defer wg.Done()
			if err := s.SetCursor(context.Background(), "sink.race", "acme", seq); err != nil && trail.ErrorCode(err) != trail.ECONFLICT {
				t.Errorf("SetCursor(%d): %v", seq, err)
			}
		}(uint64(i))
	}
	wg.Wait()
	cursorIs(t, s, "sink.race", "acme", 20)
}

func testCursorBadName(t *testing.T, s trail.CursorStore) {
	for _, name := range []string{"", "has space", "nul\x00"} {
		if err := s.SetCursor(context.Background(), name, "acme", 1); trail.ErrorCode(err) != trail.EINVALID {
			t.Errorf("SetCursor(%q): err = %v, want EINVALID", name, err)
		}
	}
}
