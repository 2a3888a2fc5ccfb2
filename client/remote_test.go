package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	trailhttp "github.com/trailaudit/trail/http"
	"github.com/trailaudit/trail/internal/ledger"
	"github.com/trailaudit/trail/internal/testenv"
	"github.com/trailaudit/trail/memory"
	"github.com/trailaudit/trail/storetest"
)

const remoteTenant = "acme"

// testStore is what the test server runs on.
type testStore interface {
	trail.Store
	ledger.Writer
	trail.KeyStore
}

// testServer is trail serve on a store, on 127.0.0.1, that can be stopped
// and started again on the same address.
type testServer struct {
	t     *testing.T
	store testStore
	h     http.Handler
	key   string
	addr  string

	mu       sync.Mutex
	hs       *http.Server
	reserved io.Closer             // while stopped: holds the port (reservePort)
	conns    map[net.Conn]struct{} // hs's open connections
	ln       net.Listener          // hs's, closed by stop itself
}

// newTestServer starts the API over a fresh memory store with an ingest key
// for remoteTenant. wrap, if not nil, wraps its handler.
func newTestServer(t *testing.T, wrap func(http.Handler) http.Handler) *testServer {
	t.Helper()
	return newTestServerLimits(t, wrap, trailhttp.Limits{Rate: -1})
}

// newTestServerLimits is newTestServer with the server's limits.
func newTestServerLimits(t *testing.T, wrap func(http.Handler) http.Handler, limits trailhttp.Limits) *testServer {
	t.Helper()
	return newTestServerOn(t, func(v *trail.Validator) testStore { return memory.New(v, storetest.Signer()) }, wrap, limits)
}

// newTestServerOn is newTestServerLimits on the store open returns for a
// Validator with the server's catalog; it is closed when the test ends.
func newTestServerOn(t *testing.T, open func(*trail.Validator) testStore, wrap func(http.Handler) http.Handler, limits trailhttp.Limits) *testServer {
	t.Helper()
	cat := catalog.Default()
	v := storetest.Validator()
	v.Actions = cat
	store := open(v)
	t.Cleanup(func() { store.Close() })
	srv, err := trailhttp.New(trailhttp.Config{Store: store, Writer: store, Keys: store, Catalog: cat,
		Verifier: storetest.Signer().Verifier(), Logger: slog.New(slog.DiscardHandler),
		Limits: limits})
	if err != nil {
		t.Fatal(err)
	}
	text, k, err := trail.NewAPIKey(remoteTenant, "client test", []trail.KeyScope{trail.ScopeIngest}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := store.CreateKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	s := &testServer{t: t, store: store, h: srv.Handler(), key: text, addr: "127.0.0.1:0"}
	if wrap != nil {
		s.h = wrap(s.h)
	}
	s.start()
	t.Cleanup(func() { s.stop(); s.unreserve() })
	return s
}

func (s *testServer) url() string { return "http://" + s.addr }

// start serves on the server's address (a fresh port the first time).
func (s *testServer) start() {
	s.t.Helper()
	s.unreserve()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ { // the old socket may linger a moment
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatal(err)
	}
	s.mu.Lock()
	s.addr = ln.Addr().String()
	s.conns = map[net.Conn]struct{}{}
	s.hs, s.ln = &http.Server{Handler: s.h, ConnState: s.track}, ln
	hs := s.hs
	s.mu.Unlock()
	go hs.Serve(ln)
}

// stop closes the listener and every connection at once, and holds the
// port until start: other tests' servers, in this process or another,
// take ports freed a moment before, and a client's request reaching one
// of them while this server is "down" would have its body sent (so the
// client must answer "may be stored", and the tests that stop a server to
// see what a client does when nothing answers would fail at random).
func (s *testServer) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hs == nil {
		return
	}
	// Reset the connections rather than close them: the side that closes
	// first keeps its port in TIME_WAIT, which would keep reservePort
	// from binding it (and a server that goes down does not say goodbye).
	for c := range s.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
	}
	// http.Server.Close closes only the listeners Serve has begun to
	// track: until its goroutine runs, the socket would go on listening.
	s.ln.Close()
	s.hs.Close()
	s.hs, s.ln = nil, nil
	r, err := reservePort(s.addr)
	if err != nil { // a connection the server closed earlier is in TIME_WAIT
		s.t.Logf("test server stopped; its port is not held until it starts again: %v", err)
		return
	}
	s.reserved = r
}

// track keeps the set of open connections (http.Server.ConnState).
func (s *testServer) track(c net.Conn, st http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch st {
	case http.StateNew:
		s.conns[c] = struct{}{}
	case http.StateClosed, http.StateHijacked:
		delete(s.conns, c)
	}
}

// unreserve frees the port stop held.
func (s *testServer) unreserve() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reserved != nil {
		s.reserved.Close()
		s.reserved = nil
	}
}

// While a test server is stopped its port refuses connections, and no
// other listener can take it.
func TestTestServerStopHoldsPort(t *testing.T) {
	srv := newTestServer(t, nil)
	srv.stop()
	if c, err := net.DialTimeout("tcp", srv.addr, time.Second); err == nil {
		c.Close()
		t.Fatal("a connection to the stopped server was accepted")
	}
	if ln, err := net.Listen("tcp", srv.addr); err == nil {
		ln.Close()
		t.Fatal("another listener took the stopped server's port")
	}
	srv.start()
	c, err := net.DialTimeout("tcp", srv.addr, time.Second)
	if err != nil {
		t.Fatalf("the server started again, but: %v", err)
	}
	c.Close()
}

// counts returns how many times each context "n" is stored.
func (s *testServer) counts() map[string]int {
	s.t.Helper()
	out := map[string]int{}
	err := s.store.Scan(context.Background(), remoteTenant, 1, 0, func(ev *trail.Event) error {
		if ev.Action == catalog.AlertRaised {
			return nil // the server's own alert of a refused forgery, not an event of the client's
		}
		out[fmt.Sprint(ev.Context["n"])]++
		return nil
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return out
}

// wantExactlyOnce checks that each of ns is stored once and nothing else is.
func (s *testServer) wantExactlyOnce(ns []int) {
	s.t.Helper()
	got := s.counts()
	for _, n := range ns {
		if c := got[strconv.Itoa(n)]; c != 1 {
			s.t.Errorf("event n=%d stored %d times, want once", n, c)
		}
	}
	if len(got) != len(ns) {
		s.t.Errorf("%d distinct events stored, want %d", len(got), len(ns))
	}
}

// event returns a valid event carrying n.
func testEvent(n int) *trail.Event {
	return &trail.Event{Action: catalog.UserLoginSuccess,
		Actor:   trail.Actor{Type: trail.ActorUser, ID: "u-" + strconv.Itoa(n%7)},
		Targets: []trail.Target{{Type: "session", ID: "s-" + strconv.Itoa(n)}},
		Context: map[string]any{"n": strconv.Itoa(n), "method": "password", "mfa": true, "remember_me": false}}
}

func intRange(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func quietLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return slog.New(slog.DiscardHandler)
}

func newRemote(t *testing.T, o RemoteOptions) *Remote {
	t.Helper()
	if o.Logger == nil {
		o.Logger = quietLogger()
	}
	if o.MaxRetryWait == 0 {
		o.MaxRetryWait = 200 * time.Millisecond
	}
	r, err := NewRemote(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		r.Close(ctx)
	})
	return r
}

// waitFor polls cond until it holds, failing the test after 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestNewRemoteOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    RemoteOptions
		want string // a field the error names
	}{
		{"no URL", RemoteOptions{Key: "k"}, "URL"},
		{"bad URL", RemoteOptions{URL: "ftp://x", Key: "k"}, "URL"},
		{"no key", RemoteOptions{URL: "http://x"}, "Key"},
		{"spool without dir", RemoteOptions{URL: "http://x", Key: "k", Mode: Spool}, "SpoolDir"},
		{"bad mode", RemoteOptions{URL: "http://x", Key: "k", Mode: 7}, "Mode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewRemote(context.Background(), tc.o)
			if trail.ErrorCode(err) != trail.EINVALID || !slices.ContainsFunc(trail.ErrorFields(err), func(f trail.FieldError) bool { return f.Path == tc.want }) {
				t.Fatalf("err = %v, want EINVALID naming %s", err, tc.want)
			}
		})
	}
	dir := t.TempDir()
	r := newRemote(t, RemoteOptions{URL: "http://127.0.0.1:1", Key: "k", Mode: Spool, SpoolDir: dir})
	if _, err := NewRemote(context.Background(), RemoteOptions{URL: "http://127.0.0.1:1", Key: "k", Mode: Spool, SpoolDir: dir}); err == nil {
		t.Fatal("a second Remote on the same spool directory was allowed")
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := r.Record(context.Background(), testEvent(1)); !errors.Is(err, ErrRemoteClosed) {
		t.Fatalf("Record after Close: %v, want ErrRemoteClosed", err)
	}
}

// Test 1: FailClosed, many concurrent callers: each Record returns once its
// event is stored, and each is stored once.
func TestFailClosedConcurrent(t *testing.T) {
	srv := newTestServer(t, nil)
	r := newRemote(t, RemoteOptions{URL: srv.url(), Key: srv.key})
	const n = 200
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = r.Record(ctxTimeout(t, 10*time.Second), testEvent(i)) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Record %d: %v", i, err)
		}
	}
	if err := r.Flush(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	srv.wantExactlyOnce(intRange(0, n))
	if st := r.Stats(); st.Delivered != n || st.Pending != 0 {
		t.Errorf("stats: %+v, want %d delivered, none pending", st, n)
	}
}

// Test 2: FailClosed with the server down: the caller is told, and knows
// whether the event can have been stored.
func TestFailClosedServerDown(t *testing.T) {
	for _, tc := range []struct {
		name      string
		url       func(t *testing.T) string
		maybe     bool // the error wraps ErrMaybeStored
		retryWait time.Duration
	}{
		{"connection refused", func(t *testing.T) string {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			ln.Close()
			return "http://" + addr
		}, false, 50 * time.Millisecond},
		{"server hangs", func(t *testing.T) string {
			release := make(chan struct{})
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-release:
				case <-r.Context().Done():
				}
			}))
			t.Cleanup(ts.Close)
			t.Cleanup(func() { close(release) })
			return ts.URL
		}, true, 50 * time.Millisecond},
		{"server answers 503", func(t *testing.T) string {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/problem+json")
				w.WriteHeader(http.StatusServiceUnavailable)
				io.WriteString(w, `{"type":"about:blank","title":"Service Unavailable","status":503,"code":"unavailable"}`)
			}))
			t.Cleanup(ts.Close)
			return ts.URL
		}, true, 50 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var reported atomic.Int64
			r := newRemote(t, RemoteOptions{URL: tc.url(t), Key: "trail_000000000000_" + strings.Repeat("x", 43),
				MaxRetryWait: tc.retryWait, OnDeliveryError: func(error) { reported.Add(1) }})
			ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
			defer cancel()
			t0 := time.Now()
			err := r.Record(ctx, testEvent(1))
			if err == nil {
				t.Fatal("Record returned nil with the server down")
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("err = %v, want it to wrap context.DeadlineExceeded", err)
			}
			if got := errors.Is(err, ErrMaybeStored); got != tc.maybe {
				t.Errorf("errors.Is(err, ErrMaybeStored) = %v, want %v (err: %v)", got, tc.maybe, err)
			}
			if d := time.Since(t0); d > 2*time.Second {
				t.Errorf("Record took %v past its deadline", d)
			}
			if tc.name != "server hangs" && reported.Load() == 0 {
				t.Error("OnDeliveryError was not told of the failed attempts")
			}
			if st := r.Stats(); st.Pending != 0 || st.LastError == nil && tc.name != "server hangs" {
				t.Errorf("stats: %+v", st)
			}
		})
	}
}

// A FailClosed caller told that its event was not recorded can rely on
// it: the event leaves its batch, which is delivered for the others.
func TestFailClosedGiveUpNeverStored(t *testing.T) {
	srv := newTestServer(t, nil)
	srv.stop()
	r := newRemote(t, RemoteOptions{URL: srv.url(), Key: srv.key, BatchSize: 2, BatchWait: 10 * time.Second, MaxRetryWait: 30 * time.Millisecond})
	r.entering.Add(1) // the batch waits until full: both events share it
	var errA, errB error
	var wg sync.WaitGroup
	wg.Go(func() { errB = r.Record(ctxTimeout(t, 20*time.Second), testEvent(2)) })
	waitFor(t, "B to be queued", func() bool { return r.Stats().Pending == 1 })
	wg.Go(func() { errA = r.Record(ctxTimeout(t, 300*time.Millisecond), testEvent(1)) })
	waitFor(t, "the batch to fail", func() bool { return r.Stats().Retries > 0 })
	r.entering.Add(-1)
	time.Sleep(400 * time.Millisecond) // A gives up while the server is down
	srv.start()
	wg.Wait()
	// The server was never reached while A waited: A is told its event is
	// not stored, and it is not, though its batch went on for B.
	if errA == nil || errors.Is(errA, ErrMaybeStored) || !errors.Is(errA, context.DeadlineExceeded) {
		t.Errorf("A: %v, want a deadline error saying it was not recorded", errA)
	}
	if errB != nil {
		t.Errorf("B: %v", errB)
	}
	srv.wantExactlyOnce([]int{2})
}

// Close in Spool mode keeps what it could not deliver; the next Remote on
// the spool delivers it, once.
func TestSpoolCloseKeepsEvents(t *testing.T) {
	srv := newTestServer(t, nil)
	srv.stop()
	dir := t.TempDir()
	r := newRemote(t, RemoteOptions{URL: srv.url(), Key: srv.key, Mode: Spool, SpoolDir: dir, BatchWait: time.Millisecond})
	for i := range 30 {
		if err := r.Record(ctxTimeout(t, 5*time.Second), testEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := r.Close(ctx); err == nil || !strings.Contains(err.Error(), "30 events stay in the spool") {
		t.Fatalf("Close: %v, want it to say 30 events stay in the spool", err)
	}
	srv.start()
	r = newRemote(t, RemoteOptions{URL: srv.url(), Key: srv.key, Mode: Spool, SpoolDir: dir, BatchWait: time.Millisecond})
	if rep := r.Stats().Recovery; rep.Pending != 30 || rep.OpenBatch == "" {
		t.Errorf("recovery: %+v, want 30 pending behind an open batch", rep)
	}
	if err := r.Close(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	srv.wantExactlyOnce(intRange(0, 30))
}

// A batch over the server's limit (413) is split, not refused.
func TestBatchTooLarge(t *testing.T) {
	for _, mode := range []Mode{FailClosed, Spool} {
		t.Run(mode.String(), func(t *testing.T) {
			g := newGate()
			close(g.release)
			srv := newTestServerLimits(t, func(h http.Handler) http.Handler { g.h = h; return g }, trailhttp.Limits{Rate: -1, MaxBatch: 7})
			// The first batch goes when full: all 20 events.
			r := newRemote(t, RemoteOptions{URL: srv.url(), Key: srv.key, Mode: mode, SpoolDir: t.TempDir(), BatchSize: 20, BatchWait: 10 * time.Second})
			r.entering.Add(1) // FailClosed: do not send before the batch is full
			defer r.entering.Add(-1)
			var wg sync.WaitGroup
			for i := range 20 {
				wg.Go(func() {
					if err := r.Record(ctxTimeout(t, 20*time.Second), testEvent(i)); err != nil {
						t.Errorf("Record %d: %v", i, err)
					}
				})
			}
			wg.Wait()
			if err := r.Flush(ctxTimeout(t, 10*time.Second)); err != nil {
				t.Fatal(err)
			}
			srv.wantExactlyOnce(intRange(0, 20))
			// 20 and 10 are over the limit of 7; halving again fits.
			if got := g.requests(); !slices.Equal(got, []int{20, 10, 5, 5, 5, 5}) {
				t.Errorf("requests carried %v events, want [20 10 5 5 5 5]", got)
			}
			if st := r.Stats(); st.Refused != 0 || st.Delivered != 20 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// 429 with Retry-After: the client waits as told, then delivers.
func TestRetryAfter(t *testing.T) {
	var calls atomic.Int64
	srv := newTestServer(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if calls.Add(1) == 1 {
				w.Header().Set("Retry-After", "1")
				w.Header().Set("Content-Type", "application/problem+json")
				w.WriteHeader(http.StatusTooManyRequests)
				io.WriteString(w, `{"type":"about:blank","title":"Too Many Requests","status":429,"code":"rate_limited"}`)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	r := newRemote(t, RemoteOptions{URL: srv.url(), Key: srv.key, MaxRetryWait: 10 * time.Millisecond})
	t0 := time.Now()
	if err := r.Record(ctxTimeout(t, 10*time.Second), testEvent(1)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d < time.Second {
		t.Errorf("delivered after %v: Retry-After: 1 was not honoured", d)
	}
	if st := r.Stats(); st.Retries != 1 || trail.ErrorCode(st.LastError) != "rate_limited" {
		t.Errorf("stats %+v", st)
	}
	srv.wantExactlyOnce([]int{1})
}

// Test 3: Spool mode, the server stopped mid-stream and started again on
// the same address and store: every event arrives exactly once.
func TestSpoolServerRestart(t *testing.T) {
	srv := newTestServer(t, nil)
	r := newRemote(t, RemoteOptions{URL: srv.url(), Key: srv.key, Mode: Spool, SpoolDir: t.TempDir(),
		BatchSize: 25, BatchWait: 5 * time.Millisecond, MaxRetryWait: 100 * time.Millisecond})
	const n = 300
	ctx := ctxTimeout(t, 30*time.Second)
	for i := range n {
		switch i {
		case 100:
			srv.stop()
		case 200:
			if st := r.Stats(); st.Pending == 0 || st.Retries == 0 {
				t.Errorf("with the server down: %+v, want events pending and retries", st)
			}
			srv.start()
		}
		if err := r.Record(ctx, testEvent(i)); err != nil {
			t.Fatalf("Record %d: %v", i, err)
		}
		if i%10 == 0 {
			time.Sleep(2 * time.Millisecond)
		}
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	srv.wantExactlyOnce(intRange(0, n))
	if st := r.Stats(); st.Delivered != n || st.Pending != 0 {
		t.Errorf("stats: %+v", st)
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// dropFirstResponse wraps h: the first request with each idempotency key
// is handled (and committed) but its response is lost: the connection is
// closed instead.
type dropFirstResponse struct {
	h       http.Handler
	mu      sync.Mutex
	seen    map[string]bool
	dropped atomic.Int64
	replays atomic.Int64
}

func (d *dropFirstResponse) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Idempotency-Key")
	d.mu.Lock()
	first := key != "" && !d.seen[key]
	d.seen[key] = true
	d.mu.Unlock()
	if !first {
		rec := httptest.NewRecorder()
		d.h.ServeHTTP(rec, r)
		if rec.Header().Get("Idempotent-Replayed") == "true" {
			d.replays.Add(1)
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
		return
	}
	rec := httptest.NewRecorder()
	d.h.ServeHTTP(rec, r)
	if rec.Code != http.StatusCreated {
		panic(fmt.Sprintf("the first send of a batch was answered %d: %s", rec.Code, rec.Body))
	}
	d.dropped.Add(1)
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	conn.Close()
}

// Test 4: the server commits a batch and its answer is lost: the resend,
// with the same key and body, is a replay; nothing is stored twice.
func TestLostResponseIsReplayed(t *testing.T) {
	for _, mode := range []Mode{FailClosed, Spool} {
		t.Run(mode.String(), func(t *testing.T) {
			d := &dropFirstResponse{seen: map[string]bool{}}
			srv := newTestServer(t, func(h http.Handler) http.Handler { d.h = h; return d })
			r := newRemote(t, RemoteOptions{URL: srv.url(), Key: srv.key, Mode: mode, SpoolDir: t.TempDir(),
				BatchSize: 10, BatchWait: 5 * time.Millisecond, MaxRetryWait: 50 * time.Millisecond})
			const n = 40
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					if err := r.Record(ctxTimeout(t, 10*time.Second), testEvent(i)); err != nil {
						t.Errorf("Record %d: %v", i, err)
					}
				})
			}
			wg.Wait()
			if err := r.Flush(ctxTimeout(t, 10*time.Second)); err != nil {
				t.Fatal(err)
			}
			srv.wantExactlyOnce(intRange(0, n))
			st := r.Stats()
			if d.dropped.Load() == 0 || d.replays.Load() != d.dropped.Load() {
				t.Errorf("%d responses dropped, %d replays: want a replay for each", d.dropped.Load(), d.replays.Load())
			}
			if st.Replayed == 0 || st.Delivered != n || st.Retries == 0 {
				t.Errorf("stats: %+v", st)
			}
		})
	}
}

// Test 5: a process recording in Spool mode is killed with SIGKILL at a
// random moment, several times; a last one drains the spool. Every event
// whose Record returned is stored exactly once, and none is stored twice.
func TestSIGKILL(t *testing.T) {
	testenv.Slow(t, "runs child processes")
	// A server that takes a little time, so that kills land mid-batch.
	var replays atomic.Int64
	srv := newTestServer(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(time.Duration(rand.IntN(15)) * time.Millisecond)
			h.ServeHTTP(w, r)
			if w.Header().Get("Idempotent-Replayed") == "true" {
				replays.Add(1)
			}
		})
	})
	dir := t.TempDir()
	const rounds, perRound = 4, 400
	acked := map[int]bool{}
	env := func(mode string, from int) []string {
		return append(os.Environ(), "TRAIL_CLIENT_HELPER="+mode, "TRAIL_URL="+srv.url(), "TRAIL_KEY="+srv.key,
			"TRAIL_SPOOL="+dir, "TRAIL_FROM="+strconv.Itoa(from), "TRAIL_N="+strconv.Itoa(perRound))
	}
	for round := range rounds {
		cmd := exec.Command(os.Args[0]) // TestMain runs the child
		cmd.Env = env("record", round*perRound)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killAt := 20 + rand.IntN(perRound-40)
		sc := bufio.NewScanner(out)
		got, killed := 0, false
		for sc.Scan() {
			line := sc.Text()
			if rest, ok := strings.CutPrefix(line, "ack "); ok {
				n, err := strconv.Atoi(rest)
				if err != nil {
					t.Fatalf("child said %q", line)
				}
				acked[n] = true
				got++
			}
			if !killed && (got >= killAt || line == "recorded all") {
				if err := cmd.Process.Signal(os.Kill); err != nil {
					t.Fatal(err)
				}
				killed = true
			}
		}
		err = cmd.Wait()
		if !killed || err == nil {
			t.Fatalf("round %d: child ended by itself (%v)", round, err)
		}
		t.Logf("round %d: killed after %d acknowledged Records", round, got)
	}
	cmd := exec.Command(os.Args[0]) // TestMain runs the child
	cmd.Env = env("drain", 0)
	b, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(b), "drained") {
		t.Fatalf("drain: %v\n%s", err, b)
	}
	got := srv.counts()
	for n := range acked {
		if got[strconv.Itoa(n)] != 1 {
			t.Errorf("acknowledged event n=%d stored %d times, want once", n, got[strconv.Itoa(n)])
		}
	}
	for n, c := range got {
		if c != 1 {
			t.Errorf("event n=%s stored %d times", n, c)
		}
	}
	t.Logf("%d events acknowledged to callers, %d stored, each once; %d batches resent after a kill were replays", len(acked), len(got), replays.Load())
	t.Logf("drain: %s", strings.TrimSpace(string(b)))
	if len(got) < len(acked) {
		t.Errorf("%d stored < %d acknowledged", len(got), len(acked))
	}
}

// TestMain runs the child process of TestSIGKILL when TRAIL_CLIENT_HELPER
// says which, and the tests otherwise.
func TestMain(m *testing.M) {
	if mode := os.Getenv("TRAIL_CLIENT_HELPER"); mode != "" {
		helperProcess(mode)
		return
	}
	os.Exit(m.Run())
}

// helperProcess is the child of TestSIGKILL: it records (mode "record")
// or drains the spool (mode "drain").
func helperProcess(mode string) {
	r, err := NewRemote(context.Background(), RemoteOptions{URL: os.Getenv("TRAIL_URL"), Key: os.Getenv("TRAIL_KEY"),
		Mode: Spool, SpoolDir: os.Getenv("TRAIL_SPOOL"), BatchSize: 20, BatchWait: 2 * time.Millisecond,
		MaxRetryWait: 100 * time.Millisecond,
		Logger:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	switch mode {
	case "record":
		from, _ := strconv.Atoi(os.Getenv("TRAIL_FROM"))
		n, _ := strconv.Atoi(os.Getenv("TRAIL_N"))
		var mu sync.Mutex
		var wg sync.WaitGroup
		next := atomic.Int64{}
		for range 4 {
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= n {
						return
					}
					if err := r.Record(context.Background(), testEvent(from+i)); err != nil {
						fmt.Fprintln(os.Stderr, "Record:", err)
						os.Exit(2)
					}
					mu.Lock()
					fmt.Printf("ack %d\n", from+i)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		fmt.Println("recorded all")
		select {} // wait for the kill
	case "drain":
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := r.Flush(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "Flush:", err)
			os.Exit(2)
		}
		if err := r.Close(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "Close:", err)
			os.Exit(2)
		}
		st := r.Stats()
		fmt.Printf("drained: %d delivered, %d replayed, recovery %+v\n", st.Delivered, st.Replayed, *st.Recovery)
		os.Exit(0)
	}
}

// Test 6: a record in a closed segment is corrupted: reopening reports it,
// and the records before and after it are delivered.
func TestCorruptSpool(t *testing.T) {
	for _, tc := range []struct {
		name string
		at   func(frameOff, frameLen int) int // the byte to flip
	}{
		{"payload byte", func(off, n int) int { return off + n - 5 }},
		{"length field", func(off, n int) int { return off + 6 }},
		{"magic", func(off, n int) int { return off }},
		{"checksum", func(off, n int) int { return off + 9 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			sp, err := openSpool(dir, 2<<10, quietLogger()) // small segments
			if err != nil {
				t.Fatal(err)
			}
			const n = 40
			for i := range n {
				b, _ := json.Marshal(testEvent(i))
				if _, err := sp.appendSync(recEvent, b); err != nil {
					t.Fatal(err)
				}
			}
			if err := sp.close(); err != nil {
				t.Fatal(err)
			}
			// Corrupt the third record of the second segment.
			segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
			if len(segs) < 3 {
				t.Fatalf("%d segments, want several", len(segs))
			}
			path := segs[1]
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			sc := scanFrames(data, 0)
			victim := sc.recs[2].seq
			off := int(sc.offs[2])
			flen := int(sc.offs[3] - sc.offs[2])
			var victimEv trail.Event
			if err := json.Unmarshal(sc.recs[2].payload, &victimEv); err != nil {
				t.Fatal(err)
			}
			lost, _ := strconv.Atoi(victimEv.Context["n"].(string))
			data[tc.at(off, flen)] ^= 0x5A
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}

			srv := newTestServer(t, nil)
			r := newRemote(t, RemoteOptions{URL: srv.url(), Key: srv.key, Mode: Spool, SpoolDir: dir, BatchWait: time.Millisecond})
			rep := r.Stats().Recovery
			if rep == nil || len(rep.Corrupt) != 1 {
				t.Fatalf("recovery report: %+v, want one corrupt stretch", rep)
			}
			d := rep.Corrupt[0]
			if d.Segment != filepath.Base(path) || d.Offset != int64(off) || d.FirstSeq != victim || d.LastSeq != victim || d.Delivered {
				t.Errorf("damage %+v (%s), want %s at %d, seq %d", d, d, filepath.Base(path), off, victim)
			}
			if rep.Pending != n-1 {
				t.Errorf("pending %d, want %d", rep.Pending, n-1)
			}
			if err := r.Flush(ctxTimeout(t, 10*time.Second)); err != nil {
				t.Fatal(err)
			}
			srv.wantExactlyOnce(slices.DeleteFunc(intRange(0, n), func(i int) bool { return i == lost }))
			if st := r.Stats(); len(st.Recovery.Corrupt) != 1 {
				t.Errorf("damage reported again while delivering: %+v", st.Recovery.Corrupt)
			}
			// Delivered segments are gone once acknowledged.
			if err := r.Close(ctxTimeout(t, 5*time.Second)); err != nil {
				t.Fatal(err)
			}
			left, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
			if len(left) > 1 {
				t.Errorf("segments left after delivering everything: %v", left)
			}
		})
	}
}

// gate wraps a handler: it notes the events and the key of each request,
// and holds the first request until released. Set block, and it refuses
// with a plain 400 naming no event any request whose body holds it, as a
// web application firewall in front of the server would; set lose, and
// the answer to that request (counting from 1) is lost once the server
// has handled it: the connection is closed instead.
type gate struct {
	h       http.Handler
	arrived chan struct{}
	release chan struct{}
	block   string
	lose    int
	mu      sync.Mutex
	sizes   []int
	keys    []string
	bodies  map[string]string // key → the body sent under it first
	reused  []string          // keys sent again with another body
}

func newGate() *gate {
	return &gate{arrived: make(chan struct{}), release: make(chan struct{}), bodies: map[string]string{}}
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(strings.NewReader(string(body)))
	key := r.Header.Get("Idempotency-Key")
	g.mu.Lock()
	g.sizes = append(g.sizes, strings.Count(string(body), "\n"))
	g.keys = append(g.keys, key)
	if b, ok := g.bodies[key]; ok && b != string(body) {
		g.reused = append(g.reused, key)
	}
	g.bodies[key] = string(body)
	nth := len(g.sizes)
	g.mu.Unlock()
	if nth == 1 {
		close(g.arrived)
		<-g.release
	}
	switch {
	case g.block != "" && strings.Contains(string(body), g.block):
		http.Error(w, "Request blocked by the firewall's policy", http.StatusBadRequest)
	case nth == g.lose:
		g.h.ServeHTTP(httptest.NewRecorder(), r)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			panic(err)
		}
		conn.Close()
	default:
		g.h.ServeHTTP(w, r)
	}
}

func (g *gate) requests() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.sizes)
}

// requestKeys returns the idempotency key of each request.
func (g *gate) requestKeys() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.keys)
}

// wantKeysOwnBodies checks that no key was sent with two bodies: a key
// names one batch, so that a resend under it is a replay.
func (g *gate) wantKeysOwnBodies(t *testing.T) {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.reused) > 0 {
		t.Errorf("idempotency keys sent with two different bodies: %v", g.reused)
	}
}

func badTestEvent(n int) *trail.Event {
	ev := testEvent(n)
	ev.Actor.Type = "robot"
	return ev
}

// Test 7: one invalid event in a batch: its caller (FailClosed) or the
// dead-letter file (Spool) gets the refusal, naming the field; the other
// events of the batch are stored.
func TestInvalidEventInBatch(t *testing.T) {
	t.Run("FailClosed", func(t *testing.T) {
		g := newGate()
		srv := newTestServer(t, func(h http.Handler) http.Handler { g.h = h; return g })
		r := newRemote(t, RemoteOptions{URL: srv.url(), Key: srv.key, BatchWait: time.Second})
		errs := make([]error, 6)
		var wg sync.WaitGroup
		wg.Go(func() { errs[0] = r.Record(ctxTimeout(t, 10*time.Second), testEvent(0)) })
		<-g.arrived // event 0 is in flight, held: the next five batch up behind it
		for i := 1; i < 6; i++ {
			wg.Go(func() {
				ev := testEvent(i)
				if i == 3 {
					ev = badTestEvent(i)
				}
				errs[i] = r.Record(ctxTimeout(t, 10*time.Second), ev)
			})
		}
		waitFor(t, "five events queued behind the first", func() bool { return r.Stats().Pending == 6 })
		close(g.release)
		wg.Wait()
		for i, err := range errs {
			if i == 3 {
				if trail.ErrorCode(err) != trail.EINVALID || len(trail.ErrorFields(err)) != 1 || trail.ErrorFields(err)[0].Path != "actor.type" {
					t.Errorf("bad event: err = %v (fields %v), want EINVALID naming actor.type", err, trail.ErrorFields(err))
				}
				continue
			}
			if err != nil {
				t.Errorf("Record %d: %v", i, err)
			}
		}
		if got := g.requests(); !slices.Equal(got, []int{1, 5, 4}) {
			t.Errorf("requests carried %v events, want [1 5 4] (the batch of five refused, resent without the bad event)", got)
		}
		srv.wantExactlyOnce([]int{0, 1, 2, 4, 5})
		if st := r.Stats(); st.Refused != 1 || st.Delivered != 5 {
			t.Errorf("stats: %+v", st)
		}
	})
	t.Run("Spool", func(t *testing.T) {
		g := newGate()
		close(g.release)
		srv := newTestServer(t, func(h http.Handler) http.Handler { g.h = h; return g })
		dir := t.TempDir()
		var mu sync.Mutex
		var reported []error
		r := newRemote(t, RemoteOptions{URL: srv.url(), Key: srv.key, Mode: Spool, SpoolDir: dir, BatchSize: 5, BatchWait: 10 * time.Second,
			OnDeliveryError: func(err error) { mu.Lock(); reported = append(reported, err); mu.Unlock() }})
		ctx := ctxTimeout(t, 10*time.Second)
		for i := range 5 {
			ev := testEvent(i)
			if i == 2 {
				ev = badTestEvent(i)
			}
			if err := r.Record(ctx, ev); err != nil {
				t.Fatalf("Record %d: %v", i, err)
			}
		}
		err := r.Flush(ctx)
		if err == nil || !strings.Contains(err.Error(), "refused 1 events") {
			t.Errorf("Flush: %v, want it to say one event was refused", err)
		}
		srv.wantExactlyOnce([]int{0, 1, 3, 4})
		if got := g.requests(); !slices.Equal(got, []int{5, 4}) {
			t.Errorf("requests carried %v events, want [5 4]", got)
		}
		b, err := os.ReadFile(filepath.Join(dir, "dead.ndjson"))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) != 1 {
			t.Fatalf("dead.ndjson:\n%s\nwant one line", b)
		}
		var dl deadLine
		if err := json.Unmarshal([]byte(lines[0]), &dl); err != nil {
			t.Fatal(err)
		}
		ev, err := trail.ParseEvent(dl.Event)
		if err != nil {
			t.Fatal(err)
		}
		if dl.Status != 400 || dl.Code != trail.EINVALID || len(dl.Errors) != 1 || dl.Errors[0].Path != "actor.type" || ev.Context["n"] != "2" {
			t.Errorf("dead letter: %s", lines[0])
		}
		mu.Lock()
		defer mu.Unlock()
		if len(reported) != 1 || trail.ErrorCode(reported[0]) != trail.EINVALID || !strings.Contains(reported[0].Error(), "actor.type") {
			t.Errorf("OnDeliveryError was told %v, want the refusal naming actor.type", reported)
		}
		if st := r.Stats(); st.Refused != 1 || st.Delivered != 4 || st.Pending != 0 {
			t.Errorf("stats: %+v", st)
		}
	})
}

// BenchmarkRecordSpool measures Record in Spool mode (fsync included)
// against a server that answers at once.
func BenchmarkRecordSpool(b *testing.B) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"count":%d}`, strings.Count(string(body), "\n"))
	}))
	defer ts.Close()
	for _, callers := range []int{1, 64} {
		b.Run("callers="+strconv.Itoa(callers), func(b *testing.B) {
			r, err := NewRemote(context.Background(), RemoteOptions{URL: ts.URL, Key: "k", Mode: Spool, SpoolDir: b.TempDir(),
				Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			runRecords(b, r, callers)
			b.StopTimer()
			if err := r.Close(context.Background()); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkRecordFailClosed measures Record in FailClosed mode with 64
// concurrent callers against trail serve on a memory store, in process.
func BenchmarkRecordFailClosed(b *testing.B) {
	cat := catalog.Default()
	v := storetest.Validator()
	v.Actions = cat
	store := memory.New(v, storetest.Signer())
	defer store.Close()
	srv, err := trailhttp.New(trailhttp.Config{Store: store, Writer: store, Keys: store, Catalog: cat,
		Verifier: storetest.Signer().Verifier(), Logger: slog.New(slog.DiscardHandler), Limits: trailhttp.Limits{Rate: -1}})
	if err != nil {
		b.Fatal(err)
	}
	text, k, _ := trail.NewAPIKey(remoteTenant, "bench", []trail.KeyScope{trail.ScopeIngest}, time.Now())
	if err := store.CreateKey(context.Background(), k); err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	r, err := NewRemote(context.Background(), RemoteOptions{URL: ts.URL, Key: text, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	runRecords(b, r, 64)
	b.StopTimer()
	if err := r.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
}

// runRecords calls Record b.N times from callers goroutines and reports
// events/s.
func runRecords(b *testing.B, r *Remote, callers int) {
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	t0 := time.Now()
	for range callers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				if err := r.Record(ctx, testEvent(i)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "events/s")
}
