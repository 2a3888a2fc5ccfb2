package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/codenotary/immudb/embedded/store"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/sqlite"
)

// TestSystems runs every system on a few events, then opens what it wrote
// and checks every entry is there, so an adapter cannot rot unnoticed (a
// peer's API that changed, a run that stored nothing and reported a rate).
func TestSystems(t *testing.T) {
	ctx := context.Background()
	w, err := NewWorkload(ctx, 25, 10, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	n := w.Len()
	last := w.Entries[len(w.Entries)-1]
	tests := []struct {
		sys   System
		check func(t *testing.T, dir string)
	}{
		{trailSQLite{}, func(t *testing.T, dir string) {
			db, err := sqlite.Open(ctx, filepath.Join(dir, "trail.db"), sqlite.Options{ReadOnly: true, Validator: trailValidator()})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			got := 0
			if err := db.ScanLeaves(ctx, "acme", 1, 0, func(l trail.Leaf) error {
				if got++; l.Seq != uint64(got) || len(l.Body) == 0 {
					t.Errorf("leaf %d: seq %d, %d bytes", got, l.Seq, len(l.Body))
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if got != n {
				t.Fatalf("%d leaves stored, want %d", got, n)
			}
		}},
		{tesseraPOSIX{}, func(t *testing.T, dir string) {
			cp, err := os.ReadFile(filepath.Join(dir, "checkpoint"))
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(string(cp), "\n")
			if len(lines) < 2 || lines[1] != strconv.Itoa(n) {
				t.Fatalf("published checkpoint %q: want size %d", cp, n)
			}
		}},
		{immudbStore{syncFrequency: 20 * time.Millisecond}, func(t *testing.T, dir string) {
			st, err := store.Open(dir, store.DefaultOptions().WithLogger(immudbLogger()))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			ref, err := st.Get(ctx, immudbKey(uint64(n-1)))
			if err != nil {
				t.Fatal(err)
			}
			got, err := ref.Resolve()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, last[len(last)-1]) {
				t.Fatalf("last entry reads %q, want %q", got, last[len(last)-1])
			}
		}},
		{immudbStore{syncFrequency: 0}, func(t *testing.T, dir string) {
			st, err := store.Open(dir, store.DefaultOptions().WithLogger(immudbLogger()))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if got := st.LastCommittedTxID(); got != uint64(len(w.Entries)) {
				t.Fatalf("%d transactions, want %d", got, len(w.Entries))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.sys.Name(), func(t *testing.T) {
			dir := t.TempDir()
			took, err := tt.sys.Run(ctx, dir, w)
			if err != nil {
				t.Fatal(err)
			}
			if took <= 0 {
				t.Fatalf("took %v", took)
			}
			tt.check(t, dir)
		})
	}
}

// TestWorkload checks the peers are given Trail's leaves: each entry is
// the canonical form of its event as stored, in log order.
func TestWorkload(t *testing.T) {
	w, err := NewWorkload(context.Background(), 25, 10, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if got := []int{len(w.Events), len(w.Entries), w.Len()}; got[0] != 3 || got[1] != 3 || got[2] != 25 {
		t.Fatalf("batches, entry batches, entries = %v, want [3 3 25]", got)
	}
	seq := uint64(0)
	for i, b := range w.Entries {
		if len(b) != len(w.Events[i]) {
			t.Fatalf("batch %d: %d entries for %d events", i, len(b), len(w.Events[i]))
		}
		for j, e := range b {
			seq++
			ev, err := trail.UnmarshalCanonical(e)
			if err != nil {
				t.Fatalf("entry %d: %v", seq, err)
			}
			if ev.Seq != seq || ev.Action != w.Events[i][j].Action || ev.ID == "" {
				t.Fatalf("entry %d is event %d %q (id %q), want event %d %q", seq, ev.Seq, ev.Action, ev.ID, seq, w.Events[i][j].Action)
			}
		}
	}
}

func TestMeasureAndReport(t *testing.T) {
	w, err := NewWorkload(context.Background(), 10, 5, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	systems, err := pick(allSystems(), "immudb-0s,trail-sqlite")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names(systems), ","); got != "trail-sqlite,immudb-0s" {
		t.Fatalf("picked %s, want trail-sqlite,immudb-0s (in run order)", got)
	}
	parent := t.TempDir()
	calls := 0
	res, err := Measure(context.Background(), systems, w, 2, parent, func(int, System, float64) { calls++ })
	if err != nil {
		t.Fatal(err)
	}
	if calls != 4 || len(res["trail-sqlite"]) != 2 || len(res["immudb-0s"]) != 2 {
		t.Fatalf("%d runs reported, results %v; want 4 runs, 2 rounds each", calls, res)
	}
	if left, _ := os.ReadDir(parent); len(left) != 0 {
		t.Fatalf("runs left %d folders behind", len(left))
	}
	var out strings.Builder
	Report(&out, systems, res)
	if !strings.Contains(out.String(), "trail-sqlite / immudb-0s") {
		t.Fatalf("report has no ratio:\n%s", out.String())
	}
}

func TestPickUnknown(t *testing.T) {
	if _, err := pick(allSystems(), "trail-sqlite,nope"); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("pick of an unknown system: err %v, want one naming it", err)
	}
}

func TestRunFlags(t *testing.T) {
	for _, args := range [][]string{{"-events", "0"}, {"-batch", "-1"}, {"-rounds", "0"}, {"-systems", "x"}} {
		err := run(context.Background(), args, &strings.Builder{})
		if err == nil || !strings.Contains(err.Error(), args[0]) {
			t.Errorf("run %v: err %v, want one naming %s", args, err, args[0])
		}
	}
}

func TestCPUProfile(t *testing.T) {
	prefix := filepath.Join(t.TempDir(), "p")
	if err := run(context.Background(), []string{"-events", "4", "-batch", "2", "-rounds", "2", "-systems", "immudb-0s", "-dir", t.TempDir(), "-cpuprofile", prefix}, &strings.Builder{}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(prefix + "-immudb-0s.prof"); err != nil || fi.Size() == 0 {
		t.Fatalf("profile: %v, %v", fi, err)
	}
}
