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
	"github.com/trailaudit/trail/sqlite"
	"github.com/trailaudit/trail/storetest"
)

// BenchmarkIngestNDJSON posts NDJSON batches of 1000 sample events to a
// server on a SQLite store (in process, over loopback) and appends the
// same batches directly to the same store, in turn, and reports each rate
// and their ratio: what the HTTP side costs against Append.
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
	key, k, err := trail.NewAPIKey("acme", "bench", []trail.KeyScope{trail.ScopeIngest}, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	if err := db.CreateKey(ctx, k); err != nil {
		b.Fatal(err)
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
	post := func(body []byte) error {
		req, err := http.NewRequest("POST", ts.URL+"/v1/events:batch", bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+key)
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
	run := [2]func(i int) error{
		func(i int) error { return post(bodies[i]) },
		func(i int) error {
			_, err := db.Append(ctx, "direct", batches[i], trail.AppendOptions{})
			return err
		},
	}
	for i := range 2 { // warm both paths
		if err := run[i](i); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	var took [2]time.Duration
	for i := 0; b.Loop(); i++ {
		for j := range 2 {
			k := (i + j) % 2
			t0 := time.Now()
			if err := run[k](i % len(batches)); err != nil {
				b.Fatal(err)
			}
			took[k] += time.Since(t0)
		}
	}
	n := float64(b.N * 1000)
	b.ReportMetric(n/took[0].Seconds(), "events/s-http")
	b.ReportMetric(n/took[1].Seconds(), "events/s-direct")
	b.ReportMetric(took[1].Seconds()/took[0].Seconds(), "http/direct")
}
