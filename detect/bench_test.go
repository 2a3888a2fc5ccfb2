package detect

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/sample"
)

// BenchmarkBuiltinRules measures, in one run, the cost per event of the
// built-in rules against that of ingest with no rules: each op is one
// event (docs/benchmarks.md has the figures).
//
//   - ingest: appending sample events to SQLite in batches of 1000,
//     durable, with no rules;
//   - rules: the built-in rules over events already read (no I/O);
//   - read: reading a SQLite log in seq order (Scan), what an engine
//     reads, with no rules;
//   - engine: an Engine catching up over a SQLite log: reading it in seq
//     order, the rules, storing the alerts and the cursor.
func BenchmarkBuiltinRules(b *testing.B) {
	ctx := context.Background()
	const batch = 1000
	fill := func(b *testing.B, s trail.Store, n int) {
		b.Helper()
		gen := sample.New(1)
		for done := 0; done < n; done += batch {
			evs := gen.Batch(min(batch, n-done), t0.Add(-24*60*60e9))
			if _, err := s.Append(ctx, "acme", evs, trail.AppendOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("ingest", func(b *testing.B) {
		s := openSQLite(b, filepath.Join(b.TempDir(), "trail.db"), nil)
		defer s.Close()
		b.ResetTimer()
		fill(b, s, b.N)
	})
	b.Run("rules", func(b *testing.B) {
		const n = 20000
		s := newMemory(b)
		fill(b, s, n)
		var evs []*trail.Event
		if err := s.Scan(ctx, "acme", 1, 0, func(ev *trail.Event) error { evs = append(evs, ev); return nil }); err != nil {
			b.Fatal(err)
		}
		e := engine(b, s, Builtin(), Config{})
		if err := e.start(ctx); err != nil {
			b.Fatal(err)
		}
		alerts := 0
		b.ResetTimer()
		for i := range b.N {
			found, err := e.event(ctx, evs[i%n], true)
			if err != nil {
				b.Fatal(err)
			}
			alerts += len(found)
		}
		b.ReportMetric(float64(alerts)/float64(b.N)*1000, "alerts/1k-events")
	})
	b.Run("read", func(b *testing.B) {
		s := openSQLite(b, filepath.Join(b.TempDir(), "trail.db"), nil)
		defer s.Close()
		fill(b, s, b.N)
		b.ResetTimer()
		if err := s.Scan(ctx, "acme", 1, 0, func(*trail.Event) error { return nil }); err != nil {
			b.Fatal(err)
		}
	})
	b.Run("engine", func(b *testing.B) {
		s := openSQLite(b, filepath.Join(b.TempDir(), "trail.db"), nil)
		defer s.Close()
		fill(b, s, b.N)
		e := engine(b, s, Builtin(), Config{Batch: batch})
		b.ResetTimer()
		catchUp(b, e)
		b.StopTimer()
		if st := e.Status(); st.Cursor < uint64(b.N) {
			b.Fatalf("the engine is at %d of %d", st.Cursor, b.N)
		}
	})
}
