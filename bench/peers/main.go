// Command peers appends the same events to Trail's SQLite store and to
// other verifiable logs — transparency-dev/tessera's POSIX driver and
// codenotary/immudb's embedded store — interleaved, several rounds, each
// run in a fresh folder, and prints events/s per system per round, the
// medians and ranges, and Trail's ratio to each peer.
//
// It is a module of its own so the main module gains none of the peers'
// dependencies. Run it from this folder:
//
//	go run . -events 100000 -rounds 5
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/bench/sample"
	"k8s.io/klog/v2"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "peers:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("peers", flag.ContinueOnError)
	events := fs.Int("events", 100000, "events each system appends per round")
	batch := fs.Int("batch", 1000, "events per batch (Trail's Append, immudb's transaction, Tessera's batch)")
	rounds := fs.Int("rounds", 5, "rounds; each runs every system once, in a fresh folder")
	dir := fs.String("dir", "", "where the logs are made (default the system's temporary folder)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of each system's first-round run to `PREFIX`-SYSTEM.prof")
	only := fs.String("systems", "", "comma-separated systems to run (default all: "+strings.Join(names(allSystems()), ",")+")")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *events <= 0 {
		return fmt.Errorf("-events: want a positive number, got %d", *events)
	}
	if *batch <= 0 {
		return fmt.Errorf("-batch: want a positive number, got %d", *batch)
	}
	if *rounds <= 0 {
		return fmt.Errorf("-rounds: want a positive number, got %d", *rounds)
	}
	systems, err := pick(allSystems(), *only)
	if err != nil {
		return fmt.Errorf("-systems: %w", err)
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	quietKlog() // Tessera logs through klog: keep its info lines off the report

	w, err := NewWorkload(ctx, *events, *batch, *dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%d events per round in batches of %d, %d rounds; entries %d bytes on average (Trail's leaves)\n",
		w.Len(), *batch, *rounds, w.Bytes()/w.Len())
	if *cpuprofile != "" {
		systems = profiled(systems, *cpuprofile)
	}
	res, err := Measure(ctx, systems, w, *rounds, *dir, func(round int, s System, perSec float64) {
		fmt.Fprintf(out, "round %d  %-16s %10.0f events/s\n", round, s.Name(), perSec)
	})
	if err != nil {
		return err
	}
	Report(out, systems, res)
	return nil
}

// profiler wraps a System to write a CPU profile of its first run to path.
type profiler struct {
	System
	path string
	done bool
}

func profiled(systems []System, prefix string) []System {
	out := make([]System, len(systems))
	for i, s := range systems {
		out[i] = &profiler{System: s, path: prefix + "-" + s.Name() + ".prof"}
	}
	return out
}

func (p *profiler) Run(ctx context.Context, dir string, w Workload) (time.Duration, error) {
	if p.done {
		return p.System.Run(ctx, dir, w)
	}
	p.done = true
	f, err := os.Create(p.path)
	if err != nil {
		return 0, fmt.Errorf("-cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return 0, fmt.Errorf("-cpuprofile: %w", err)
	}
	took, err := p.System.Run(ctx, dir, w)
	pprof.StopCPUProfile()
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("-cpuprofile: %w", cerr)
	}
	return took, err
}

// allSystems returns every system the benchmark knows, in the order each
// round runs them.
func allSystems() []System {
	return []System{trailSQLite{}, tesseraPOSIX{}, immudbStore{syncFrequency: 20 * time.Millisecond}, immudbStore{syncFrequency: 0}}
}

func names(ss []System) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.Name()
	}
	return out
}

// pick returns the systems named in list (comma-separated), in all's order;
// an empty list picks all.
func pick(all []System, list string) ([]System, error) {
	if list == "" {
		return all, nil
	}
	want := strings.Split(list, ",")
	var out []System
	for _, s := range all {
		if i := slices.Index(want, s.Name()); i >= 0 {
			out = append(out, s)
			want = slices.Delete(want, i, i+1)
		}
	}
	if len(want) > 0 {
		return nil, fmt.Errorf("unknown system %q (known: %s)", want[0], strings.Join(names(all), ","))
	}
	return out, nil
}

// NewWorkload makes n sample events (the events of Trail's own
// benchmarks, seed 1) in batches of batch. The peers' entries are the
// bytes Trail stores for them, its leaves (the canonical form of each
// event as stored, with its id, sequence number and time recorded): to get
// them the events are appended once, untimed, to a scratch Trail store in
// a folder made under parent and removed after.
func NewWorkload(ctx context.Context, n, batch int, parent string) (Workload, error) {
	s := sample.New(1)
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var w Workload
	for done := 0; done < n; done += batch {
		w.Events = append(w.Events, s.Batch(min(batch, n-done), t0.Add(time.Duration(done)*time.Millisecond)))
	}
	dir, err := os.MkdirTemp(parent, "workload-")
	if err != nil {
		return Workload{}, err
	}
	defer os.RemoveAll(dir)
	_, err = appendTrail(ctx, dir, w.Events, func(stored []*trail.Event) error {
		entries := make([][]byte, len(stored))
		for i, ev := range stored {
			b, err := trail.MarshalCanonical(ev)
			if err != nil {
				return fmt.Errorf("event %d: %w", ev.Seq, err)
			}
			entries[i] = b
		}
		w.Entries = append(w.Entries, entries)
		return nil
	})
	if err != nil {
		return Workload{}, fmt.Errorf("workload: %w", err)
	}
	return w, nil
}

// Bytes returns the size of all the workload's entries.
func (w Workload) Bytes() int {
	n := 0
	for _, b := range w.Entries {
		for _, e := range b {
			n += len(e)
		}
	}
	return n
}

// Results holds each system's events/s, one figure per round.
type Results map[string][]float64

// Measure runs every system on w, rounds times, interleaved (each round
// runs them all in order), each run in a fresh folder under parent that is
// removed after it. each is called after every run.
func Measure(ctx context.Context, systems []System, w Workload, rounds int, parent string, each func(round int, s System, perSec float64)) (Results, error) {
	res := Results{}
	for r := 1; r <= rounds; r++ {
		for _, s := range systems {
			dir, err := os.MkdirTemp(parent, s.Name()+"-")
			if err != nil {
				return nil, err
			}
			took, err := s.Run(ctx, dir, w)
			if rmErr := os.RemoveAll(dir); err == nil && rmErr != nil {
				err = rmErr
			}
			if err != nil {
				return nil, fmt.Errorf("round %d, %s: %w", r, s.Name(), err)
			}
			perSec := float64(w.Len()) / took.Seconds()
			res[s.Name()] = append(res[s.Name()], perSec)
			if each != nil {
				each(r, s, perSec)
			}
		}
	}
	return res, nil
}

// Report prints each system's median and range, and Trail's ratio (of
// medians, and the range of the per-round ratios) to each peer.
func Report(out io.Writer, systems []System, res Results) {
	fmt.Fprintf(out, "\n%-16s %10s %23s\n", "system", "median", "range (events/s)")
	for _, s := range systems {
		v := res[s.Name()]
		fmt.Fprintf(out, "%-16s %10.0f %11.0f–%-11.0f\n", s.Name(), median(v), slices.Min(v), slices.Max(v))
	}
	base := systems[0].Name()
	if _, ok := res[base]; !ok || len(systems) < 2 {
		return
	}
	fmt.Fprintln(out)
	for _, s := range systems[1:] {
		ratios := make([]float64, len(res[base]))
		for i := range ratios {
			ratios[i] = res[base][i] / res[s.Name()][i]
		}
		fmt.Fprintf(out, "%s / %-16s %5.2f  (per round %.2f–%.2f)\n", base, s.Name(), median(res[base])/median(res[s.Name()]), slices.Min(ratios), slices.Max(ratios))
	}
}

func median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// quietKlog sends klog's output (Tessera's log) nowhere but errors to
// standard error.
func quietKlog() {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	_ = fs.Set("logtostderr", "false")
	_ = fs.Set("stderrthreshold", "ERROR")
	klog.SetOutput(io.Discard)
}
