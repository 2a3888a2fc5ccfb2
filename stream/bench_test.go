package stream_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/sample"
	"github.com/trailaudit/trail/internal/streamtest"
	"github.com/trailaudit/trail/memory"
	"github.com/trailaudit/trail/storetest"
	"github.com/trailaudit/trail/stream"
	"github.com/trailaudit/trail/stream/natsjs"
)

// benchLog is a memory log of n realistic sample events for tenant acme,
// appended in batches of 1000 (one checkpoint each).
func benchLog(b *testing.B, n int) *memory.Store {
	b.Helper()
	s := memory.New(storetest.Validator(), storetest.Signer())
	gen := sample.New(1)
	for done := 0; done < n; done += 1000 {
		evs := make([]*trail.Event, min(1000, n-done))
		for i := range evs {
			evs[i] = gen.Event(time.Now())
		}
		if _, err := s.Append(context.Background(), "acme", evs, trail.AppendOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

// sinkNames numbers the benchmarks' sinks, so that each starts from the
// log's start however often a benchmark runs (-count).
var sinkNames atomic.Uint64

// deliverAll runs a new sink named name over s through tr until its
// receiver has acknowledged all n events, and returns how long it took.
func deliverAll(b *testing.B, s *memory.Store, tr stream.Transport, name string, n uint64) time.Duration {
	b.Helper()
	sk, err := stream.New(stream.Config{Name: name, Tenant: "acme", Log: s, Cursors: s, Transport: tr, Poll: time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	t0 := time.Now()
	go func() { done <- sk.Run(ctx) }()
	for sk.Status().Cursor < n {
		if st := sk.Status(); st.Stopped {
			b.Fatalf("the sink stopped: %s", st.LastError)
		}
		time.Sleep(time.Millisecond)
	}
	took := time.Since(t0)
	cancel()
	<-done
	return took
}

// BenchmarkDeliver measures a sink's delivery throughput per transport:
// a log of 20,000 sample events (about 650 bytes each) delivered from the
// start, in messages of 500 (the default), to a real receiver on
// 127.0.0.1 — a webhook receiver that checks every line against the
// signed checkpoints (stream.Checker, in the same process), rsyslogd over
// TCP and over TLS, and the NATS JetStream server at 127.0.0.1:4222 —
// beside appending the same events with no sink, in the same run.
func BenchmarkDeliver(b *testing.B) {
	const n = 20_000
	s := benchLog(b, n)
	transports := []struct {
		name string
		new  func(b *testing.B) stream.Transport
	}{
		{"webhook", func(b *testing.B) stream.Transport {
			srv := httptest.NewServer(streamtest.NewReceiver(b, secret, storetest.Signer().Verifier()))
			b.Cleanup(srv.Close)
			wh, err := stream.NewWebhook(srv.URL, stream.WebhookOptions{Secret: secret})
			if err != nil {
				b.Fatal(err)
			}
			return wh
		}},
		{"syslog-tcp", func(b *testing.B) stream.Transport {
			addr, _, _ := startRsyslog(b, false)
			sl, err := stream.NewSyslog(addr, stream.SyslogOptions{})
			if err != nil {
				b.Fatal(err)
			}
			return sl
		}},
		{"syslog-tls", func(b *testing.B) stream.Transport {
			addr, _, client := startRsyslog(b, true)
			sl, err := stream.NewSyslog(addr, stream.SyslogOptions{TLS: client})
			if err != nil {
				b.Fatal(err)
			}
			return sl
		}},
		{"nats", func(b *testing.B) stream.Transport {
			nc, _, prefix := streamtest.JetStream(b)
			tr, err := natsjs.New(nc, prefix, stream.Encoding{})
			if err != nil {
				b.Fatal(err)
			}
			return tr
		}},
	}
	// The baseline, in the same run: appending the same events with no
	// sink (validation, redaction, hashing and the tree, in memory).
	b.Run("ingest-no-sinks", func(b *testing.B) {
		var took time.Duration
		round := 0
		for b.Loop() {
			round++
			t0 := time.Now()
			benchLog(b, n)
			took += time.Since(t0)
		}
		b.ReportMetric(float64(n*round)/took.Seconds(), "events/s")
	})
	for _, tc := range transports {
		b.Run(tc.name, func(b *testing.B) {
			tr := tc.new(b)
			var took time.Duration
			round := 0
			for b.Loop() {
				round++
				// A sink of a new name starts at seq 1.
				took += deliverAll(b, s, tr, fmt.Sprintf("bench-%s-%d", tc.name, sinkNames.Add(1)), n)
			}
			b.ReportMetric(float64(n*round)/took.Seconds(), "events/s")
		})
	}
}

// BenchmarkLagUnderIngest appends sample events at a steady rate (batches
// of 100, 5,000 events/s) for 3 seconds while a webhook sink (polling
// every 100ms) delivers them to a checking receiver, and reports the
// sink's lag in events, sampled every 10ms: its median, 99th percentile
// and maximum.
func BenchmarkLagUnderIngest(b *testing.B) {
	const rate, batch, span = 5000, 100, 3 * time.Second
	for b.Loop() {
		s := memory.New(storetest.Validator(), storetest.Signer())
		srv := httptest.NewServer(streamtest.NewReceiver(b, secret, storetest.Signer().Verifier()))
		wh, err := stream.NewWebhook(srv.URL, stream.WebhookOptions{Secret: secret})
		if err != nil {
			b.Fatal(err)
		}
		sk, err := stream.New(stream.Config{Name: "lag", Tenant: "acme", Log: s, Cursors: s, Transport: wh, Poll: 100 * time.Millisecond})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- sk.Run(ctx) }()
		var appended atomic.Uint64
		ingested := make(chan struct{})
		go func() {
			defer close(ingested)
			gen := sample.New(2)
			tick := time.NewTicker(time.Second * batch / rate)
			defer tick.Stop()
			for end := time.Now().Add(span); time.Now().Before(end); <-tick.C {
				evs := make([]*trail.Event, batch)
				for i := range evs {
					evs[i] = gen.Event(time.Now())
				}
				res, err := s.Append(context.Background(), "acme", evs, trail.AppendOptions{})
				if err != nil {
					b.Error(err)
					return
				}
				appended.Store(res.Events[len(res.Events)-1].Seq)
			}
		}()
		var lags []uint64
		for sample := time.NewTicker(10 * time.Millisecond); ; <-sample.C {
			select {
			case <-ingested:
			default:
				lags = append(lags, appended.Load()-min(sk.Status().Cursor, appended.Load()))
				continue
			}
			break
		}
		cancel()
		<-done
		srv.Close()
		slices.Sort(lags)
		b.ReportMetric(float64(lags[len(lags)/2]), "p50-lag-events")
		b.ReportMetric(float64(lags[len(lags)*99/100]), "p99-lag-events")
		b.ReportMetric(float64(lags[len(lags)-1]), "max-lag-events")
	}
}
