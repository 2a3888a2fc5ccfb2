package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/trailaudit/trail/internal/baseline"
	"github.com/trailaudit/trail/internal/sample"
)

func newBenchCmd(e *env) *cobra.Command {
	var o benchOptions
	cmd := &cobra.Command{
		Use:   "bench --url URL --key KEY",
		Short: "Measure a running Trail server",
		Long: `Bench drives a running trail serve with sample events (about 650 bytes, 4 to 6
context keys) and prints what it measured, each scenario bounded by a count
of events and a duration:

  batch    NDJSON batches (--batch events each) from --clients clients
  single   one event per request from --single-clients clients (group commit),
           with p50 and p99 latency; and, in the same run, the seeds' way on
           this machine: one INSERT and one COMMIT per event into SQLite
           (WAL, synchronous=FULL) from as many goroutines, in a temporary
           directory
  export   GET /v1/export of everything the run appended, as NDJSON

While it runs it samples the server's resident memory from /metrics
(process_resident_memory_bytes) and prints the largest; with --rss-every,
also the curve (the largest resident memory and Go heap of each period). The key needs the
ingest and export scopes; the server's rate limit must allow the load
(trail serve --rate-limit -1).`,
		Example: `  trail bench --url http://127.0.0.1:8080 --key "$TRAIL_KEY"
  trail bench --url http://127.0.0.1:8080 --key "$TRAIL_KEY" --scenario single --single-events 50000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.url == "" || o.key == "" {
				return usageError("--url and --key are required")
			}
			if o.batch < 1 || o.batch > 10000 || o.clients < 1 || o.single < 1 || o.events < 1 || o.singleEvents < 1 {
				return usageError("--batch must be 1 to 10000, and --clients, --single-clients, --events, --single-events at least 1")
			}
			for _, s := range o.scenarios {
				if !slices.Contains([]string{"batch", "single", "export"}, s) {
					return usageError("--scenario %q: want batch, single or export", s)
				}
			}
			o.url = strings.TrimSuffix(o.url, "/")
			return runBench(cmd.Context(), e, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.url, "url", "", "the server's URL (required)")
	f.StringVar(&o.key, "key", "", "an API key with the ingest and export scopes (required)")
	f.StringSliceVar(&o.scenarios, "scenario", []string{"batch", "single", "export"}, "scenarios to run: batch, single, export")
	f.IntVar(&o.events, "events", 200_000, "events the batch scenario sends at most")
	f.IntVar(&o.batch, "batch", 1000, "events per batch")
	f.IntVar(&o.clients, "clients", 4, "concurrent clients of the batch scenario")
	f.IntVar(&o.singleEvents, "single-events", 20_000, "events the single scenario (and its baseline) send at most")
	f.IntVar(&o.single, "single-clients", 64, "concurrent clients of the single scenario")
	f.DurationVar(&o.duration, "duration", time.Minute, "longest time a scenario runs")
	f.DurationVar(&o.rssEvery, "rss-every", 0, "print the server's memory over the run: the largest sample in each period of this length (0: only the largest of the run)")
	return cmd
}

type benchOptions struct {
	url, key               string
	scenarios              []string
	events, batch, clients int
	singleEvents, single   int
	duration, rssEvery     time.Duration
}

// benchResult is one line of the report.
type benchResult struct {
	name     string
	events   int64
	bytes    int64
	took     time.Duration
	lat      []time.Duration // per request, when measured
	failures int64
}

func runBench(ctx context.Context, e *env, o benchOptions) error {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: 2 * time.Minute}
	rss := &rssSampler{url: o.url + "/metrics", client: client, every: o.rssEvery}
	stop := rss.start()
	defer stop()
	var results []benchResult
	for _, s := range o.scenarios {
		var r []benchResult
		var err error
		switch s {
		case "batch":
			r, err = benchBatch(ctx, client, o)
		case "single":
			r, err = benchSingle(ctx, client, o)
		case "export":
			r, err = benchExport(ctx, client, o)
		}
		if err != nil {
			return &exitError{code: 1, err: fmt.Errorf("%s: %w", s, err)}
		}
		results = append(results, r...)
	}
	stop()
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tevents\tseconds\tevents/s\tMB/s\tp50 ms\tp99 ms\tfailed\t")
	for _, r := range results {
		p50, p99 := "-", "-"
		if len(r.lat) > 0 {
			slices.Sort(r.lat)
			p50 = fmt.Sprintf("%.2f", float64(r.lat[len(r.lat)/2].Microseconds())/1000)
			p99 = fmt.Sprintf("%.2f", float64(r.lat[len(r.lat)*99/100].Microseconds())/1000)
		}
		mbs := "-"
		if r.bytes > 0 {
			mbs = fmt.Sprintf("%.1f", float64(r.bytes)/r.took.Seconds()/1e6)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.0f\t%s\t%s\t%s\t%d\t\n", r.name, r.events, r.took.Seconds(), float64(r.events)/r.took.Seconds(), mbs, p50, p99, r.failures)
	}
	tw.Flush()
	if rss.max > 0 {
		fmt.Fprintf(e.stdout, "server resident memory, largest sample: %.1f MB\n", float64(rss.max)/1e6)
	} else {
		fmt.Fprintln(e.stdout, "server resident memory: not reported by /metrics")
	}
	if len(rss.curve) > 0 {
		fmt.Fprintf(e.stdout, "server memory, largest sample every %s (seconds, resident MB, Go heap in use MB):\n", o.rssEvery)
		for _, p := range rss.curve {
			fmt.Fprintf(e.stdout, "%.0f\t%.1f\t%.1f\n", p.At.Seconds(), float64(p.RSS)/1e6, float64(p.Heap)/1e6)
		}
	}
	return nil
}

// post sends body to path and returns an error for any status but 2xx.
func post(ctx context.Context, c *http.Client, o benchOptions, path, ctype string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, "POST", o.url+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+o.key)
	req.Header.Set("Content-Type", ctype)
	res, err := c.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s: %s", path, res.Status, bytes.TrimSpace(b))
	}
	return nil
}

// drive runs clients goroutines, each calling one until n calls in all
// are made or d passes, and returns the calls made, the time taken and
// each call's latency.
func drive(ctx context.Context, clients, n int, d time.Duration, one func(i int) error) (int64, time.Duration, []time.Duration, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var next, failed atomic.Int64
	lat := make([][]time.Duration, clients)
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	t0 := time.Now()
	for c := range clients {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				s := time.Now()
				if err := one(int(i)); err != nil {
					if ctx.Err() != nil {
						return
					}
					failed.Add(1)
					once.Do(func() { firstErr = err })
					continue
				}
				lat[c] = append(lat[c], time.Since(s))
			}
		})
	}
	wg.Wait()
	took := time.Since(t0)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	if len(all) == 0 && firstErr != nil {
		return 0, took, nil, failed.Load(), firstErr
	}
	return int64(len(all)), took, all, failed.Load(), nil
}

// ndjsonBatches prepares n events as NDJSON bodies of size events each.
func ndjsonBatches(seed uint64, n, size int) [][]byte {
	s := sample.New(seed)
	var out [][]byte
	for done := 0; done < n; done += size {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		for _, ev := range s.Batch(min(size, n-done), time.Now()) {
			enc.Encode(ev)
		}
		out = append(out, b.Bytes())
	}
	return out
}

func benchBatch(ctx context.Context, c *http.Client, o benchOptions) ([]benchResult, error) {
	// At most maxBodies distinct bodies, sent in turn: a sustained run
	// (--events large, --duration minutes) holds no more in memory than a
	// short one. The server gives every event its own id either way.
	calls := (o.events + o.batch - 1) / o.batch
	bodies := ndjsonBatches(11, min(o.events, maxBodies*o.batch), o.batch)
	calls64, took, lat, failed, err := drive(ctx, o.clients, calls, o.duration, func(i int) error {
		return post(ctx, c, o, "/v1/events:batch", "application/x-ndjson", bodies[i%len(bodies)])
	})
	if err != nil {
		return nil, err
	}
	return []benchResult{{name: fmt.Sprintf("batch: NDJSON %d events x %d clients", o.batch, o.clients),
		events: calls64 * int64(o.batch), took: took, lat: lat, failures: failed}}, nil
}

// maxBodies bounds the distinct batch bodies benchBatch prepares.
const maxBodies = 64

func benchSingle(ctx context.Context, c *http.Client, o benchOptions) ([]benchResult, error) {
	s := sample.New(12)
	evs := s.Batch(o.singleEvents, time.Now())
	bodies := make([][]byte, len(evs))
	for i, ev := range evs {
		bodies[i], _ = json.Marshal(ev)
	}
	calls, took, lat, failed, err := drive(ctx, o.single, len(bodies), o.duration, func(i int) error {
		return post(ctx, c, o, "/v1/events", "application/json", bodies[i])
	})
	if err != nil {
		return nil, err
	}
	out := []benchResult{{name: fmt.Sprintf("single: one event per request x %d clients", o.single), events: calls, took: took, lat: lat, failures: failed}}

	// The baseline, in the same run: the seeds' INSERT + COMMIT per event.
	dir, err := os.MkdirTemp("", "trail-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	db, err := baseline.Open(filepath.Join(dir, "baseline.db"))
	if err != nil {
		return nil, err
	}
	defer db.Close()
	calls, took, lat, failed, err = drive(ctx, o.single, len(evs), o.duration, func(i int) error { return baseline.Insert(db, evs[i]) })
	if err != nil {
		return nil, err
	}
	return append(out, benchResult{name: fmt.Sprintf("baseline: INSERT+COMMIT per event x %d (local SQLite)", o.single), events: calls, took: took, lat: lat, failures: failed}), nil
}

func benchExport(ctx context.Context, c *http.Client, o benchOptions) ([]benchResult, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", o.url+"/v1/export?format=ndjson&reason=benchmark", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+o.key)
	t0 := time.Now()
	res, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		b, _ := io.ReadAll(res.Body)
		return nil, fmt.Errorf("export: %s: %s", res.Status, bytes.TrimSpace(b))
	}
	cr := &countReader{r: res.Body}
	sc := bufio.NewScanner(cr)
	sc.Buffer(nil, 1<<20)
	var n int64
	for sc.Scan() {
		n++
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return []benchResult{{name: "export: NDJSON, everything", events: n, bytes: cr.n, took: time.Since(t0)}}, nil
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// rssSampler polls the server's /metrics for its resident memory
// (process_resident_memory_bytes) and its Go heap in use
// (go_memstats_heap_inuse_bytes). With every set, it also keeps the curve:
// the largest of each in each period of every.
type rssSampler struct {
	url    string
	client *http.Client
	every  time.Duration
	t0     time.Time
	mu     sync.Mutex
	max    int64
	curve  []memPoint
}

// memPoint is the largest resident memory and Go heap sampled in the
// period ending At after the start.
type memPoint struct {
	At        time.Duration
	RSS, Heap int64
}

func (s *rssSampler) start() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.t0 = time.Now()
	go func() {
		defer close(done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			s.sample(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { cancel(); <-done }) }
}

func (s *rssSampler) sample(ctx context.Context) {
	req, _ := http.NewRequestWithContext(ctx, "GET", s.url, nil)
	res, err := s.client.Do(req)
	if err != nil {
		return
	}
	defer res.Body.Close()
	var rss, heap int64
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		line := sc.Text()
		for _, m := range [...]struct {
			name string
			to   *int64
		}{{"process_resident_memory_bytes ", &rss}, {"go_memstats_heap_inuse_bytes ", &heap}} {
			if v, ok := strings.CutPrefix(line, m.name); ok {
				if f, err := strconv.ParseFloat(v, 64); err == nil {
					*m.to = int64(f)
				}
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.max = max(s.max, rss)
	if s.every <= 0 || rss == 0 {
		return
	}
	at := (time.Since(s.t0)/s.every + 1) * s.every // the end of this period
	if n := len(s.curve); n == 0 || s.curve[n-1].At != at {
		s.curve = append(s.curve, memPoint{At: at})
	}
	p := &s.curve[len(s.curve)-1]
	p.RSS, p.Heap = max(p.RSS, rss), max(p.Heap, heap)
}
