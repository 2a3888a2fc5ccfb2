package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	trailhttp "github.com/trailaudit/trail/http"
	"github.com/trailaudit/trail/internal/sample"
	"github.com/trailaudit/trail/internal/testenv"
	"github.com/trailaudit/trail/sqlite"
	"github.com/trailaudit/trail/storetest"
)

// BenchmarkIngestNDJSON posts NDJSON batches of 1000 sample events to a
// server on a SQLite store (in process, over loopback) and appends the
// same batches directly to the same store, in turn, and reports each rate,
// their ratio and each arm's CPU time per event: what the HTTP side costs
// against Append.
//
// The two arms take turns on two tenants: a tenant's rows sit at
// tid<<40|seq in the events table, so the newest tenant's appends go to
// the right edge of that B-tree and an older tenant's into its middle,
// where pages split (9–14% more CPU an event here: BenchmarkAppendOlderTenant in sqlite). With one tenant
// each, that difference was the direct arm's gain and counted as the HTTP
// side's cost. Each iteration posts to one tenant and appends to the
// other, then the other way round, each arm going first once.
func BenchmarkIngestNDJSON(b *testing.B) {
	ctx := context.Background()
	cat := catalog.Default()
	db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "trail.db"), sqlite.Options{Validator: validator(cat), Signer: storetest.Signer()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	srv, err := trailhttp.New(trailhttp.Config{Store: db, Writer: db, Keys: db, Catalog: cat, Actions: db,
		Verifier: storetest.Signer().Verifier(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	b.Cleanup(ts.Close)
	tenants := [2]string{"acme", "globex"}
	var keys [2]string
	for t, tenant := range tenants {
		key, k, err := trail.NewAPIKey(tenant, "bench", []trail.KeyScope{trail.ScopeIngest}, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		if err := db.CreateKey(ctx, k); err != nil {
			b.Fatal(err)
		}
		keys[t] = key
	}
	s := sample.New(41)
	batches := make([][]*trail.Event, 8)
	bodies := make([][]byte, len(batches))
	for i := range batches {
		batches[i] = s.Batch(1000, time.Now())
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		for _, ev := range batches[i] {
			if err := enc.Encode(ev); err != nil {
				b.Fatal(err)
			}
		}
		bodies[i] = buf.Bytes()
	}
	post := func(t int, body []byte) error {
		req, err := http.NewRequest("POST", ts.URL+"/v1/events:batch", bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+keys[t])
		req.Header.Set("Content-Type", "application/x-ndjson")
		res, err := ts.Client().Do(req)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		out, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusCreated {
			return fmt.Errorf("status %d: %s", res.StatusCode, out)
		}
		return nil
	}
	// run[arm](t, i) stores batch i for tenant t: arm 0 over HTTP, arm 1
	// directly.
	run := [2]func(t, i int) error{
		func(t, i int) error { return post(t, bodies[i]) },
		func(t, i int) error {
			_, err := db.Append(ctx, tenants[t], batches[i], trail.AppendOptions{})
			return err
		},
	}
	for t := range tenants { // make both tenants, and warm both paths
		for arm := range run {
			if err := run[arm](t, arm); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ResetTimer()
	var took, cpu [2]time.Duration
	for i := 0; b.Loop(); i++ {
		// (arm, tenant) in turn: HTTP on the first tenant, direct on the
		// second, then direct on the first, HTTP on the second.
		for _, turn := range [4][2]int{{0, 0}, {1, 1}, {1, 0}, {0, 1}} {
			arm, t := turn[0], turn[1]
			t0, c0 := time.Now(), testenv.CPUTime()
			if err := run[arm](t, i%len(batches)); err != nil {
				b.Fatal(err)
			}
			took[arm] += time.Since(t0)
			cpu[arm] += testenv.CPUTime() - c0
		}
	}
	n := float64(b.N * 2 * 1000) // events each arm stored
	b.ReportMetric(n/took[0].Seconds(), "events/s-http")
	b.ReportMetric(n/took[1].Seconds(), "events/s-direct")
	b.ReportMetric(took[1].Seconds()/took[0].Seconds(), "http/direct")
	// The CPU the process used while each arm ran (the store's background
	// work included, which falls on either arm alike): on a loaded machine
	// it moves much less than the wall time.
	b.ReportMetric(float64(cpu[0].Microseconds())/n, "cpu-µs/event-http")
	b.ReportMetric(float64(cpu[1].Microseconds())/n, "cpu-µs/event-direct")
}
