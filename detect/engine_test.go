package detect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/sqlite"
	"github.com/trailaudit/trail/storetest"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// openSQLite opens the SQLite store at path; now, if set, is its clock.
func openSQLite(t testing.TB, path string, now func() time.Time) store {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path, sqlite.Options{Validator: storetest.Validator(), Signer: storetest.Signer(), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func failures(email string, n int, from time.Duration) []*trail.Event {
	return times(n, func(i int) *trail.Event {
		return failedLogin(email, fmt.Sprintf("192.0.2.%d", i), from+time.Duration(i)*time.Minute)
	})
}

func intsOf(v any) []uint64 {
	var out []uint64
	for _, x := range v.([]any) {
		n, _ := uintOf(x)
		out = append(out, n)
	}
	return out
}

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

// TestResume: an engine stopped and started again (the store closed and
// reopened between) goes on from its cursor. The brute force window is
// rebuilt from the log, so failures before and after a restart count
// together; the evidence of an alert raised before the restart is not
// counted again, so no alert is raised twice.
func TestResume(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trail.db")
	set := Builtin()
	run := func(evs ...*trail.Event) []*trail.Event {
		t.Helper()
		s := openSQLite(t, path, nil)
		defer s.Close()
		appendAll(t, s, evs...)
		catchUp(t, engine(t, s, set, Config{}))
		return alerts(t, s)
	}
	// Six failures, a restart, four more: ten within 15 minutes.
	if got := run(failures("ann@example.com", 6, 0)...); len(got) != 0 {
		t.Fatalf("after 6 failures: %d alerts, want none", len(got))
	}
	got := run(failures("ann@example.com", 4, 6*time.Minute)...)
	if len(got) != 1 {
		t.Fatalf("after 10 failures across a restart: %d alerts, want 1", len(got))
	}
	if seqs := intsOf(got[0].Context["evidence_seqs"]); !slices.Equal(seqs, seqRange(1, 10)) {
		t.Errorf("evidence %v, want seqs 1 to 10, from both sides of the restart", seqs)
	}
	// Nine more after another restart: the ten already alerted on are
	// spent, so nine is not ten.
	if got := run(failures("ann@example.com", 9, 10*time.Minute)...); len(got) != 1 {
		t.Fatalf("after 9 more failures: %d alerts, want still 1 (the first ten are spent)", len(got))
	}
	got = run(failures("ann@example.com", 1, 19*time.Minute)...)
	if len(got) != 2 {
		t.Fatalf("after the 10th new failure: %d alerts, want 2", len(got))
	}
	if seqs := intsOf(got[1].Context["evidence_seqs"]); !slices.Equal(seqs, seqRange(12, 21)) {
		t.Errorf("second alert's evidence %v, want seqs 12 to 21 (11 is the first alert)", seqs)
	}
}

// failingCursors is a CursorStore whose SetCursor fails while fail is set:
// an engine that stored its alerts and then could not move its cursor, as
// when the process dies between the two.
type failingCursors struct {
	trail.CursorStore
	fail bool
}

var errCursorStore = errors.New("the cursor store is down")

func (f *failingCursors) SetCursor(ctx context.Context, name, tenant string, seq uint64) error {
	if f.fail {
		return errCursorStore
	}
	return f.CursorStore.SetCursor(ctx, name, tenant, seq)
}

// TestAlertsNotRaisedTwice: alerts stored by a step whose cursor never
// moved are found by the next step, which finishes the step without
// raising them again, and by a new engine likewise.
func TestAlertsNotRaisedTwice(t *testing.T) {
	for _, restart := range []bool{false, true} {
		t.Run(fmt.Sprintf("new engine %v", restart), func(t *testing.T) {
			s := openSQLite(t, filepath.Join(t.TempDir(), "trail.db"), nil)
			defer s.Close()
			appendAll(t, s, failures("ann@example.com", 10, 0)...)
			cursors := &failingCursors{CursorStore: s, fail: true}
			e := engine(t, s, Builtin(), Config{})
			e.c.Cursors = cursors
			if _, err := e.Step(context.Background()); !errors.Is(err, errCursorStore) {
				t.Fatalf("step = %v, want the cursor store's error", err)
			}
			if st := e.Status(); st.LastError == "" || st.Alerts != 1 {
				t.Errorf("status %+v, want the error and 1 alert", st)
			}
			cursors.fail = false
			if restart {
				e = engine(t, s, Builtin(), Config{})
			}
			catchUp(t, e)
			if got := alerts(t, s); len(got) != 1 {
				t.Errorf("%d alerts, want 1", len(got))
			}
			if at, err := s.Cursor(context.Background(), CursorPrefix+BuiltinSet, "acme"); err != nil || at != 11 {
				t.Errorf("cursor %d (%v), want 11: the ten failures and the alert", at, err)
			}
		})
	}
}

// TestSince: a set run under a new name with Since reads the log from that
// time: a rule added today runs over last month, and not over what came
// before.
func TestSince(t *testing.T) {
	clock := t0.Add(-40 * 24 * time.Hour)
	s := openSQLite(t, filepath.Join(t.TempDir(), "trail.db"), func() time.Time { return clock })
	defer s.Close()
	appendAll(t, s, failures("old@example.com", 10, -40*24*time.Hour)...)
	clock = t0.Add(-20 * 24 * time.Hour)
	appendAll(t, s, failures("new@example.com", 10, -20*24*time.Hour)...)
	clock = t0

	rules, err := NewSet("last-month", Builtin().Rules()...)
	if err != nil {
		t.Fatal(err)
	}
	catchUp(t, engine(t, s, rules, Config{Since: t0.Add(-30 * 24 * time.Hour)}))
	catchUp(t, engine(t, s, Builtin(), Config{}))
	sets := map[string][]any{}
	for _, a := range alerts(t, s) {
		set := a.Context["rule_set"].(string)
		sets[set] = append(sets[set], a.Context["group"].(map[string]any)["context.email"])
	}
	want := map[string][]any{"last-month": {"new@example.com"}, BuiltinSet: {"old@example.com", "new@example.com"}}
	if fmt.Sprint(sets) != fmt.Sprint(want) {
		t.Errorf("alerts by set %v, want %v", sets, want)
	}
}

// TestAlertEvent: what an alert records (testdata/alert.golden), and that
// no caller can append one: it is one of Trail's own records.
func TestAlertEvent(t *testing.T) {
	s := newMemory(t)
	appendAll(t, s, failures("ann@example.com", 10, 0)...)
	catchUp(t, engine(t, s, Builtin(), Config{}))
	got := alerts(t, s)
	if len(got) != 1 {
		t.Fatalf("%d alerts, want 1", len(got))
	}
	a := got[0].Clone()
	a.ID, a.RecordedAt, a.OccurredAt = "", time.Time{}, time.Time{}
	b, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "alert.golden")
	if *update {
		if err := os.WriteFile(golden, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(append(b, '\n'), want) {
		t.Errorf("alert:\n%s\nwant (%s):\n%s", b, golden, want)
	}

	forged := got[0].Clone()
	forged.ID, forged.Seq, forged.Tenant, forged.RecordedAt = "", 0, "", time.Time{}
	_, err = s.Append(context.Background(), "acme", []*trail.Event{forged}, trail.AppendOptions{})
	if trail.ErrorCode(err) != trail.EINVALID || !slices.ContainsFunc(trail.ErrorFields(err), func(f trail.FieldError) bool { return f.Path == "[0].action" }) {
		t.Errorf("a caller's append of an alert = %v, want EINVALID at [0].action", err)
	}
}

// TestOwnAlertsAreNotRuleInput: a set's rules never see the set's own
// alerts (a rule matching alerts would feed on itself), but other sets'
// alerts are events like any other.
func TestOwnAlertsAreNotRuleInput(t *testing.T) {
	rules, err := ParseRules([]byte(`
title: Any alert
id: any-alert
detection:
  selection:
    action: alert_raised
  condition: selection
`))
	if err != nil {
		t.Fatal(err)
	}
	watch, err := NewSet("watch", rules...)
	if err != nil {
		t.Fatal(err)
	}
	s := newMemory(t)
	appendAll(t, s, failures("ann@example.com", 10, 0)...)
	w := engine(t, s, watch, Config{})
	for range 3 {
		catchUp(t, engine(t, s, Builtin(), Config{}))
		catchUp(t, w)
	}
	if got := byRule(watch, alerts(t, s)); got["any-alert"] != 1 || len(got) != 2 {
		t.Errorf("alerts %v, want one brute force and one any-alert (of it), no more", got)
	}
	if st := w.Status(); st.Cursor != 12 || st.Lag != 0 || st.Alerts != 1 {
		t.Errorf("status %+v", st)
	}
}

func TestNewEngineRefuses(t *testing.T) {
	s := newMemory(t)
	for _, c := range []Config{
		{Tenant: "acme", Log: s, Cursors: s, Writer: s},
		{Set: Builtin(), Log: s, Cursors: s, Writer: s},
		{Set: Builtin(), Tenant: "acme", Cursors: s, Writer: s},
		{Set: Builtin(), Tenant: "acme", Log: s, Writer: s},
		{Set: Builtin(), Tenant: "acme", Log: s, Cursors: s},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
}
