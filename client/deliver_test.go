package client

import (
	"context"
	"testing"
	"time"

	"github.com/trailaudit/trail"
)

// NewRemote picks the engine by Mode, and both send through the Remote's
// deliverer.
func TestNewRemoteEngine(t *testing.T) {
	fc := newRemote(t, RemoteOptions{URL: "http://127.0.0.1:1", Key: "k"})
	if e, ok := fc.eng.(*failClosed); !ok || e.d != fc.d || e.entering != &fc.entering {
		t.Errorf("FailClosed: engine %T, want a *failClosed over the Remote's deliverer and counter", fc.eng)
	}
	sp := newRemote(t, RemoteOptions{URL: "http://127.0.0.1:1", Key: "k", Mode: Spool, SpoolDir: t.TempDir()})
	if e, ok := sp.eng.(*spooler); !ok || e.d != sp.d {
		t.Errorf("Spool: engine %T, want a *spooler over the Remote's deliverer", sp.eng)
	}
	if fc.Stats().Recovery != nil || sp.Stats().Recovery == nil {
		t.Error("Recovery must be reported in Spool mode only")
	}
}

// admit keeps a batch within maxEvents events and maxBatchBytes, and an
// event over the server's limit alone.
func TestAdmit(t *testing.T) {
	d := newDeliverer(RemoteOptions{BatchSize: 3, Logger: quietLogger()})
	defer d.stop()
	big := trail.MaxEventBytes + 1
	for _, tc := range []struct {
		name            string
		n, size, length int
		ok, full        bool
	}{
		{"first event", 0, 0, 10, true, false},
		{"reaches BatchSize", 2, 22, 10, true, true},
		{"big event first goes alone", 0, 0, big, true, true},
		{"big event after others waits", 1, 11, big, false, true},
		{"over the bytes", 1, maxBatchBytes - 5, 10, false, true},
		{"exactly the bytes", 1, maxBatchBytes - 11, 10, true, false},
	} {
		ok, full := d.admit(tc.n, tc.size, tc.length)
		if ok != tc.ok || full != tc.full {
			t.Errorf("%s: admit(%d, %d, %d) = %v, %v, want %v, %v", tc.name, tc.n, tc.size, tc.length, ok, full, tc.ok, tc.full)
		}
	}
	d.tooLarge(3)
	if ok, full := d.admit(0, 0, 10); !ok || !full {
		t.Errorf("after a 413 for 3 events a batch holds 1: admit = %v, %v", ok, full)
	}
}

// tooLarge only ever lowers the limit, never below one event.
func TestTooLarge(t *testing.T) {
	d := newDeliverer(RemoteOptions{BatchSize: 100, Logger: quietLogger()})
	defer d.stop()
	for _, tc := range []struct{ n, want int64 }{{100, 50}, {150, 50}, {20, 10}, {3, 1}, {2, 1}} {
		d.tooLarge(int(tc.n))
		if got := d.maxEvents.Load(); got != tc.want {
			t.Errorf("after tooLarge(%d): %d events, want %d", tc.n, got, tc.want)
		}
	}
}

// The backoff obeys Retry-After (capped), and is otherwise full jitter
// under min(MaxRetryWait, 100ms·2ⁿ⁻¹), with or without an attempt.
func TestBackoff(t *testing.T) {
	d := newDeliverer(RemoteOptions{MaxRetryWait: time.Second})
	defer d.stop()
	if got := d.backoff(1, &attempt{retryAfter: 3 * time.Second}); got != 3*time.Second {
		t.Errorf("Retry-After 3s: %v", got)
	}
	if got := d.backoff(1, &attempt{retryAfter: time.Hour}); got != maxRetryAfter {
		t.Errorf("Retry-After 1h: %v, want %v", got, maxRetryAfter)
	}
	for range 100 {
		for n, ceil := range map[int]time.Duration{1: retryBase, 3: 4 * retryBase, 10: time.Second, 40: time.Second} {
			for _, a := range []*attempt{nil, {}} {
				if got := d.backoff(n, a); got <= 0 || got > ceil+time.Millisecond {
					t.Fatalf("backoff(%d, %v) = %v, want in (0, %v]", n, a, got, ceil+time.Millisecond)
				}
			}
		}
	}
}

// A retrier counts its failures until reset, and stops waiting when its
// ctx has ended.
func TestRetrier(t *testing.T) {
	d := newDeliverer(RemoteOptions{MaxRetryWait: time.Hour, Logger: quietLogger()})
	defer d.stop()
	var told int
	d.o.OnDeliveryError = func(error) { told++ }
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rt := &retrier{d: d, msg: "test"}
	for range 3 {
		if rt.failed(ctx, context.Canceled, nil, 1, "k") {
			t.Fatal("failed waited out a backoff on an ended ctx")
		}
	}
	if rt.fails != 3 || d.retries.Load() != 3 || told != 3 || d.stats().LastError == nil {
		t.Errorf("fails %d, retries %d, told %d, stats %+v", rt.fails, d.retries.Load(), told, d.stats())
	}
	rt.reset()
	if rt.fails != 0 {
		t.Errorf("reset left %d fails", rt.fails)
	}
}

// ndjson ends every line with a newline.
func TestNDJSON(t *testing.T) {
	lines := [][]byte{[]byte(`{"a":1}`), []byte(`{"b":2}`)}
	id := func(b []byte) []byte { return b }
	if got := string(ndjson(lines, 16, id)); got != "{\"a\":1}\n{\"b\":2}\n" {
		t.Errorf("ndjson: %q", got)
	}
	if got := ndjson([][]byte(nil), 0, id); len(got) != 0 {
		t.Errorf("ndjson of nothing: %q", got)
	}
}
