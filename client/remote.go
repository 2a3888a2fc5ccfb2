package client

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trailaudit/trail"
)

// Mode says when Remote.Record returns.
type Mode int

const (
	// FailClosed (the default): Record returns only when the server
	// acknowledged the batch holding the event, or with an error: the
	// caller knows the event is not stored. (When the caller's ctx ends
	// while its batch may already have reached the server, the error wraps
	// ErrMaybeStored instead: neither answer can be promised.)
	FailClosed Mode = iota
	// Spool: Record returns once the event is fsync'd into the local
	// spool; delivery continues in the background, across restarts.
	Spool
)

// String returns "fail-closed" or "spool".
func (m Mode) String() string {
	switch m {
	case FailClosed:
		return "fail-closed"
	case Spool:
		return "spool"
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// RemoteOptions configure a Remote. URL and Key are required, and SpoolDir
// in Spool mode; zero fields take the defaults.
type RemoteOptions struct {
	// URL is the base URL of trail serve, like "https://trail.internal";
	// Key an API key with the ingest scope (trail_ID_SECRET).
	URL, Key string
	// Mode is FailClosed (the default) or Spool.
	Mode Mode
	// SpoolDir is the spool's directory: required in Spool mode, not used
	// in FailClosed. One Remote at a time may use a directory (a second
	// one in the same process is refused; in another process it is not
	// detected, and must not be done).
	SpoolDir string
	// BatchSize bounds the events in a batch (default 500). A batch is
	// also kept under 4 MiB of JSON, and an event over the server's event
	// limit goes alone, so that its refusal touches no other event.
	BatchSize int
	// BatchWait bounds how long a batch waits to fill (default 50ms). In
	// FailClosed a batch also goes as soon as no other Record is on its
	// way in: a caller waits for the server, not for company; batches form
	// from the callers that arrive while a batch is in flight.
	BatchWait time.Duration
	// MaxRetryWait caps the backoff between attempts (default 30s): the
	// wait after the n-th failure is uniformly random in [0, min(cap,
	// 100ms·2ⁿ)) ("full jitter"), or what the server's Retry-After says
	// (at most 10 minutes).
	MaxRetryWait time.Duration
	// HTTPClient sends the requests (default: a client with a 60s
	// timeout).
	HTTPClient *http.Client
	// Logger gets the recorder's logs (default slog.Default()).
	Logger *slog.Logger
	// OnDeliveryError, if set, is told of each failed delivery attempt
	// and of each event the server refuses (in Spool mode, after the event
	// is safe in the spool or in dead.ndjson). It is called from the
	// sending goroutine: it must not block for long.
	OnDeliveryError func(err error)
}

// Errors of Remote.
var (
	// ErrRemoteClosed is returned by Record after Close; an event still
	// waiting when Close ends gets it too.
	ErrRemoteClosed = errors.New("client: the remote recorder is closed")
	// ErrMaybeStored is wrapped by a FailClosed Record that gave up (its
	// ctx ended, or the recorder closed) while its batch may already have
	// reached the server: the event may or may not be stored.
	ErrMaybeStored = errors.New("client: the event may or may not be stored")
)

// RemoteStats is a snapshot of a Remote's counters, since NewRemote.
type RemoteStats struct {
	Mode      Mode
	Pending   int64 // events recorded and not yet resolved (FailClosed: callers waiting; Spool: events in the spool)
	Delivered int64 // events the server acknowledged
	Replayed  int64 // of those, events in batches the server answered as an idempotent replay
	Retries   int64 // failed delivery attempts that were retried
	Refused   int64 // events the server refused (FailClosed: returned to their caller; Spool: moved to dead.ndjson)
	// LastError is the last delivery error, and LastErrorAt its time.
	LastError   error
	LastErrorAt time.Time
	// Recovery is what opening the spool found (Spool mode; nil in
	// FailClosed), with any damage found later while delivering.
	Recovery *RecoveryReport
}

// Remote is a Recorder sending events to trail serve (POST
// /v1/events:batch) in batches, each with an Idempotency-Key, so that a
// retry is answered as a replay and nothing is stored twice. See Mode for
// when Record returns. Create it with NewRemote; it is safe for concurrent
// use.
type Remote struct {
	o        RemoteOptions
	log      *slog.Logger
	hc       *http.Client
	endpoint string

	bg     context.Context // ends when the sender must stop
	stop   context.CancelFunc
	done   chan struct{} // closed when the sender has stopped
	wake   chan struct{}
	closed atomic.Bool

	maxEvents atomic.Int64 // BatchSize, halved on each 413

	statMu      sync.Mutex
	pending     atomic.Int64
	delivered   atomic.Int64
	replayed    atomic.Int64
	retries     atomic.Int64
	refused     atomic.Int64
	lastErr     error
	lastErrTime time.Time

	// FailClosed
	mu       sync.Mutex
	queue    []*fcItem
	stopped  bool         // the sender has stopped: nothing queued will be sent
	entering atomic.Int64 // Records between entry and enqueue

	// Spool
	sp       *spool
	flushReq atomic.Int64
	carry    []spoolEntry
}

var _ Recorder = (*Remote)(nil)

const (
	maxBatchBytes = 4 << 20
	retryBase     = 100 * time.Millisecond
	maxRetryAfter = 10 * time.Minute
)

// NewRemote returns a Remote sending to o.URL. In Spool mode it opens and
// recovers the spool (see RecoveryReport) and starts delivering what it
// holds, resending first a batch sent before a restart but not known to be
// acknowledged, as it was. ctx is only checked before opening: the
// background sender runs until Close.
func NewRemote(ctx context.Context, o RemoteOptions) (*Remote, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var fe []trail.FieldError
	u, err := url.Parse(o.URL)
	if o.URL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		fe = append(fe, trail.FieldError{Path: "URL", Message: "required: the base URL of trail serve, like https://trail.example.com"})
	}
	if o.Key == "" {
		fe = append(fe, trail.FieldError{Path: "Key", Message: "required: an API key with the ingest scope"})
	}
	switch o.Mode {
	case FailClosed:
	case Spool:
		if o.SpoolDir == "" {
			fe = append(fe, trail.FieldError{Path: "SpoolDir", Message: "required in Spool mode"})
		}
	default:
		fe = append(fe, trail.FieldError{Path: "Mode", Message: "must be FailClosed or Spool"})
	}
	if len(fe) > 0 {
		return nil, fmt.Errorf("client: NewRemote: %w", trail.Invalid("bad RemoteOptions", fe...))
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 500
	}
	if o.BatchWait <= 0 {
		o.BatchWait = 50 * time.Millisecond
	}
	if o.MaxRetryWait <= 0 {
		o.MaxRetryWait = 30 * time.Second
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 60 * time.Second}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	r := &Remote{o: o, log: o.Logger, hc: o.HTTPClient, done: make(chan struct{}), wake: make(chan struct{}, 1),
		endpoint: strings.TrimSuffix(o.URL, "/") + "/v1/events:batch"}
	r.maxEvents.Store(int64(o.BatchSize))
	r.bg, r.stop = context.WithCancel(context.Background())
	if o.Mode == Spool {
		sp, err := openSpool(o.SpoolDir, spoolSegmentSize, r.log)
		if err != nil {
			r.stop()
			return nil, err
		}
		r.sp = sp
		r.pending.Store(int64(sp.report.Pending))
		go r.runSpool()
	} else {
		go r.runFailClosed()
	}
	return r, nil
}

// Record fills ev from ctx (see Fill), encodes it, and hands it to the
// server (FailClosed) or the spool (Spool). It validates nothing beyond
// the JSON encoding: the server does, and its refusal comes back to the
// caller (FailClosed) or goes to dead.ndjson (Spool).
func (r *Remote) Record(ctx context.Context, ev *trail.Event) error {
	if r.closed.Load() {
		return ErrRemoteClosed
	}
	if r.o.Mode == FailClosed {
		r.entering.Add(1)
	}
	Fill(ctx, ev)
	body, err := json.Marshal(ev)
	if err != nil {
		if r.o.Mode == FailClosed {
			r.entering.Add(-1)
		}
		return fmt.Errorf("client: encoding the event: %w", err)
	}
	if r.o.Mode == Spool {
		return r.recordSpool(ctx, body)
	}
	return r.recordFailClosed(ctx, body)
}

// Flush returns when everything recorded so far is acknowledged by the
// server, or with an error when ctx ends first. In Spool mode it also
// returns an error when events were moved to dead.ndjson meanwhile.
func (r *Remote) Flush(ctx context.Context) error {
	if r.o.Mode == Spool {
		return r.flushSpool(ctx)
	}
	return r.flushFailClosed(ctx)
}

// Close flushes (bounded by ctx), stops the sender and closes the spool.
// Events not yet delivered stay in the spool for the next NewRemote; in
// FailClosed, callers still waiting get an error. Close returns the
// flush's error, if any.
func (r *Remote) Close(ctx context.Context) error {
	if r.closed.Swap(true) {
		return nil
	}
	ferr := r.Flush(ctx)
	r.stop()
	<-r.done
	if r.sp != nil {
		if err := r.sp.close(); err != nil && ferr == nil {
			ferr = err
		}
		if n := r.pending.Load(); n > 0 {
			r.log.Info("trail client: events left in the spool for the next start", "dir", r.sp.dir, "pending", n)
			if ferr != nil {
				ferr = fmt.Errorf("client: %d events stay in the spool for the next start: %w", n, ferr)
			}
		}
	}
	return ferr
}

// Stats returns the recorder's counters.
func (r *Remote) Stats() RemoteStats {
	st := RemoteStats{Mode: r.o.Mode, Pending: r.pending.Load(), Delivered: r.delivered.Load(), Replayed: r.replayed.Load(),
		Retries: r.retries.Load(), Refused: r.refused.Load()}
	r.statMu.Lock()
	st.LastError, st.LastErrorAt = r.lastErr, r.lastErrTime
	r.statMu.Unlock()
	if r.sp != nil {
		st.Recovery = r.sp.recovery()
	}
	return st
}

// deliveryFailed records and reports a failed attempt.
func (r *Remote) deliveryFailed(err error) {
	r.statMu.Lock()
	r.lastErr, r.lastErrTime = err, time.Now()
	r.statMu.Unlock()
	if r.o.OnDeliveryError != nil {
		r.o.OnDeliveryError(err)
	}
}

func (r *Remote) kick() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// newKey returns a fresh idempotency key.
func newKey() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail
	}
	return "tc-" + hex.EncodeToString(b[:])
}

// sleep waits d, or until ctx ends (false).
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// backoff returns the wait after the n-th failed attempt (n from 1).
func (r *Remote) backoff(n int, a *attempt) time.Duration {
	if a.retryAfter > 0 {
		return min(a.retryAfter, maxRetryAfter)
	}
	ceil := r.o.MaxRetryWait
	if n < 30 {
		ceil = min(ceil, retryBase<<(n-1))
	}
	return mrand.N(ceil) + time.Millisecond
}

// lowerMax halves the events a batch may hold, after the server said a
// batch of n was too large.
func (r *Remote) lowerMax(n int) {
	m := int64(max(1, n/2))
	for {
		cur := r.maxEvents.Load()
		if cur <= m || r.maxEvents.CompareAndSwap(cur, m) {
			return
		}
	}
}

// ---- HTTP ----

type outcome int

const (
	outOK       outcome = iota // stored, or stored before (a replay, or a 409 for the key)
	outRetry                   // transient: send the same batch again
	outTooLarge                // 413: send fewer events
	outRefused                 // the server refused the batch (or events of it)
	outAuth                    // 401, 403, 404: the key or the URL is wrong
)

// attempt is the result of one POST of a batch.
type attempt struct {
	out        outcome
	status     int // 0 when no response came
	replay     bool
	conflict   bool
	maybeSent  bool // the batch may have reached the server and been stored
	retryAfter time.Duration
	prob       *problemDoc
	err        error // what went wrong; nil for outOK
}

// problemDoc is an RFC 9457 problem document as trail serve writes it.
type problemDoc struct {
	Title  string             `json:"title"`
	Status int                `json:"status"`
	Detail string             `json:"detail"`
	Code   string             `json:"code"`
	Errors []trail.FieldError `json:"errors"`
}

// coded returns the problem as Trail's coded error, with fields.
func (p *problemDoc) coded(fields []trail.FieldError) *trail.Error {
	code := p.Code
	if code == "" {
		switch p.Status {
		case http.StatusBadRequest:
			code = trail.EINVALID
		case http.StatusUnauthorized:
			code = trail.EUNAUTHORIZED
		case http.StatusForbidden:
			code = trail.EFORBIDDEN
		case http.StatusNotFound:
			code = trail.ENOTFOUND
		case http.StatusConflict:
			code = trail.ECONFLICT
		default:
			code = trail.EINTERNAL
		}
	}
	msg := p.Detail
	if msg == "" {
		msg = p.Title
	}
	return &trail.Error{Code: code, Message: msg, Fields: fields}
}

// eventRefused is the error of one event of a refused batch: the problem's
// code with the event's own fields (paths without the "[i]." prefix).
func eventRefused(p *problemDoc, fields []trail.FieldError) *trail.Error {
	e := p.coded(fields)
	if e.Code == trail.EINVALID && len(fields) > 0 {
		e.Message = "event refused"
	}
	return e
}

// errBatchChanged stops a request whose batch lost an event (its caller
// gave up) before the body went out.
var errBatchChanged = errors.New("client: the batch changed before it was sent")

// gatedBody is a request body that asks open, on its first Read, whether
// it may go. Until the body flows the server cannot store the batch, so a
// caller who leaves before that can be told its event was not stored.
type gatedBody struct {
	r       *bytes.Reader
	open    func() bool  // nil: always
	started *atomic.Bool // shared by the copies GetBody makes
	asked   bool
	ok      bool
}

// Read reads the body, once open allows it.
func (g *gatedBody) Read(p []byte) (int, error) {
	if !g.asked {
		g.asked = true
		g.ok = g.open == nil || g.open()
		if g.ok {
			g.started.Store(true)
		}
	}
	if !g.ok {
		return 0, errBatchChanged
	}
	return g.r.Read(p)
}

// Close does nothing.
func (g *gatedBody) Close() error { return nil }

// post sends one batch. open, if not nil, is asked just before the body
// goes out whether it may (see gatedBody).
func (r *Remote) post(ctx context.Context, key string, body []byte, n int, open func() bool) *attempt {
	started := new(atomic.Bool)
	newBody := func() *gatedBody { return &gatedBody{r: bytes.NewReader(body), open: open, started: started} }
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.endpoint, newBody())
	if err != nil {
		return &attempt{out: outAuth, err: fmt.Errorf("client: building the request: %w", err)}
	}
	req.ContentLength = int64(len(body))
	// The transport may resend on a fresh connection (an idle one the
	// server had closed); each copy asks the gate again.
	req.GetBody = func() (io.ReadCloser, error) { return newBody(), nil }
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Authorization", "Bearer "+r.o.Key)
	req.Header.Set("Idempotency-Key", key)
	req.Header.Set("User-Agent", "trail-client-go")
	res, err := r.hc.Do(req)
	if err != nil {
		// Until the body began the server could not store the batch.
		return &attempt{out: outRetry, maybeSent: started.Load(),
			err: fmt.Errorf("client: sending a batch of %d events to %s: %w", n, r.endpoint, err)}
	}
	defer res.Body.Close()
	a := &attempt{status: res.StatusCode}
	if res.StatusCode == http.StatusOK || res.StatusCode == http.StatusCreated {
		var out struct {
			Count int `json:"count"`
		}
		if err := json.NewDecoder(io.LimitReader(res.Body, 64<<20)).Decode(&out); err == nil && out.Count != n {
			r.log.Warn("trail client: the server acknowledged a different number of events", "sent", n, "acknowledged", out.Count, "key", key)
		}
		io.Copy(io.Discard, io.LimitReader(res.Body, 1<<20))
		a.replay = res.Header.Get("Idempotent-Replayed") == "true"
		return a
	}
	p := readProblem(res)
	a.prob = p
	a.err = fmt.Errorf("client: trail serve answered %d %s to a batch of %d events: %w", res.StatusCode, http.StatusText(res.StatusCode), n, p.coded(p.Errors))
	switch s := res.StatusCode; {
	case s == http.StatusConflict:
		// The key was used before with another body. Every batch has a
		// fresh random key and a resend repeats its body byte for byte,
		// so the server holds this batch already (as it first read it:
		// what it fills from the request, the client address, differed).
		a.out, a.conflict, a.maybeSent, a.err = outOK, true, true, nil
	case s == http.StatusTooManyRequests || s == http.StatusRequestTimeout:
		a.out, a.retryAfter = outRetry, retryAfter(res.Header.Get("Retry-After"))
	case s >= 500:
		a.out, a.maybeSent, a.retryAfter = outRetry, true, retryAfter(res.Header.Get("Retry-After"))
	case s == http.StatusRequestEntityTooLarge:
		a.out = outTooLarge
	case s == http.StatusUnauthorized || s == http.StatusForbidden || s == http.StatusNotFound:
		a.out = outAuth
	case s >= 400:
		a.out = outRefused
	default:
		a.out, a.maybeSent = outRetry, true
	}
	return a
}

func readProblem(res *http.Response) *problemDoc {
	b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	p := &problemDoc{}
	mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
	if mt != "application/problem+json" && mt != "application/json" || json.Unmarshal(b, p) != nil {
		p = &problemDoc{Detail: strings.TrimSpace(string(b[:min(len(b), 200)]))}
	}
	p.Status = res.StatusCode
	if p.Title == "" {
		p.Title = http.StatusText(res.StatusCode)
	}
	return p
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(h string) time.Duration {
	if h == "" {
		return 0
	}
	if s, err := strconv.Atoi(h); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(0, time.Until(t))
	}
	return 0
}

// eventErrors splits a refusal's field errors by the event they name
// ("[3].actor.type": the event at index 3, field actor.type). It returns
// nil when any error names no event of the batch: then the refusal is of
// the batch as a whole.
func eventErrors(p *problemDoc, n int) map[int][]trail.FieldError {
	if p == nil || len(p.Errors) == 0 {
		return nil
	}
	out := map[int][]trail.FieldError{}
	for _, f := range p.Errors {
		rest, ok := strings.CutPrefix(f.Path, "[")
		if !ok {
			return nil
		}
		num, rest, ok := strings.Cut(rest, "]")
		i, err := strconv.Atoi(num)
		if !ok || err != nil || i < 0 || i >= n {
			return nil
		}
		if rest != "" && rest[0] != '.' && rest[0] != '[' {
			return nil
		}
		out[i] = append(out[i], trail.FieldError{Path: strings.TrimPrefix(rest, "."), Message: f.Message})
	}
	return out
}

// ---- FailClosed ----

const (
	fcQueued int32 = iota
	fcTaken
	fcCancelled
)

// fcItem is an event waiting in FailClosed, or a Flush marker.
type fcItem struct {
	body  []byte
	at    time.Time
	flush chan struct{} // non-nil: a Flush marker
	state atomic.Int32
	res   chan error // buffered: the outcome, sent once
	batch *fcBatch   // set under Remote.mu when taken
	gone  bool       // (batch.mu) the caller stopped waiting
}

// fcBatch is a batch in FailClosed.
type fcBatch struct {
	ctx    context.Context // ends when no caller waits any more, or the sender stops
	cancel context.CancelFunc

	mu         sync.Mutex
	items      []*fcItem
	waiting    int  // callers still waiting
	attempting bool // a request's body is going out: it may store the batch
	sent       bool // a request may have stored the batch under its key
}

func (r *Remote) recordFailClosed(ctx context.Context, body []byte) error {
	it := &fcItem{body: body, at: time.Now(), res: make(chan error, 1)}
	r.mu.Lock()
	if r.stopped || r.closed.Load() {
		r.mu.Unlock()
		r.entering.Add(-1)
		return ErrRemoteClosed
	}
	r.queue = append(r.queue, it)
	r.mu.Unlock()
	r.pending.Add(1)
	defer r.pending.Add(-1)
	r.entering.Add(-1)
	r.kick()
	select {
	case err := <-it.res:
		return err
	case <-ctx.Done():
	}
	if it.state.CompareAndSwap(fcQueued, fcCancelled) {
		return fmt.Errorf("client: event not recorded (it was never sent): %w", context.Cause(ctx))
	}
	if it.state.Load() == fcCancelled {
		return <-it.res // cancelled by fcShutdown, which answers at once
	}
	r.mu.Lock()
	b := it.batch
	r.mu.Unlock()
	return b.leave(it, context.Cause(ctx))
}

// leave is a caller giving up on its event.
func (b *fcBatch) leave(it *fcItem, cause error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case err := <-it.res:
		return err
	default:
	}
	it.gone = true
	b.waiting--
	if b.waiting == 0 {
		b.cancel()
	}
	if b.attempting || b.sent {
		return fmt.Errorf("%w: gave up waiting for the server: %w", ErrMaybeStored, cause)
	}
	return fmt.Errorf("client: event not recorded (the server never received it): %w", cause)
}

// resolve gives the callers of items their outcome; errOf returns the error
// of the i-th.
func (b *fcBatch) resolve(items []*fcItem, errOf func(i int) error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, it := range items {
		if it.gone {
			continue
		}
		it.gone = true
		b.waiting--
		it.res <- errOf(i)
	}
	done := make(map[*fcItem]bool, len(items))
	for _, it := range items {
		done[it] = true
	}
	b.items = slices.DeleteFunc(b.items, func(it *fcItem) bool { return done[it] })
}

func (r *Remote) flushFailClosed(ctx context.Context) error {
	m := &fcItem{flush: make(chan struct{})}
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return ErrRemoteClosed
	}
	r.queue = append(r.queue, m)
	r.mu.Unlock()
	r.kick()
	select {
	case <-m.flush:
		return nil
	case <-r.done:
		select {
		case <-m.flush:
			return nil
		default:
		}
		return ErrRemoteClosed
	case <-ctx.Done():
		return fmt.Errorf("client: flush: %w", context.Cause(ctx))
	}
}

// runFailClosed is the FailClosed sender: one batch at a time, in order.
func (r *Remote) runFailClosed() {
	defer close(r.done)
	for {
		b, markers := r.fcCollect()
		if b != nil {
			r.fcDeliver(b)
		}
		if r.bg.Err() != nil && b != nil {
			// The batch may have been abandoned: its Flush callers get
			// ErrRemoteClosed (they see r.done), not a false success.
			markers = nil
		}
		for _, m := range markers {
			close(m)
		}
		if b == nil && markers == nil {
			r.fcShutdown()
			return
		}
	}
}

// fcShutdown fails what is still queued when the sender stops.
func (r *Remote) fcShutdown() {
	r.mu.Lock()
	q := r.queue
	r.queue, r.stopped = nil, true
	r.mu.Unlock()
	for _, it := range q {
		if it.flush == nil && it.state.CompareAndSwap(fcQueued, fcCancelled) {
			it.res <- fmt.Errorf("client: event not recorded (it was never sent): %w", ErrRemoteClosed)
		}
	}
}

// fcCollect waits for the next batch. It returns nil, nil when the sender
// must stop.
func (r *Remote) fcCollect() (*fcBatch, []chan struct{}) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		if r.bg.Err() != nil {
			return nil, nil
		}
		r.mu.Lock()
		// Drop what callers gave up on, and markers at the head (every
		// event before them is resolved: batches go one at a time).
		var markers []chan struct{}
		live := r.queue[:0]
		for _, it := range r.queue {
			if it.flush == nil && it.state.Load() == fcCancelled {
				continue
			}
			if it.flush != nil && len(live) == 0 {
				markers = append(markers, it.flush)
				continue
			}
			live = append(live, it)
		}
		clear(r.queue[len(live):])
		r.queue = live
		if len(markers) > 0 {
			r.mu.Unlock()
			return nil, markers
		}
		// What the next batch would take.
		maxEv := int(r.maxEvents.Load())
		n, size, take, flush, alone := 0, 0, 0, false, false
		for _, it := range r.queue {
			if it.flush != nil {
				flush = true
				take++
				break
			}
			big := len(it.body) > trail.MaxEventBytes
			if n > 0 && (big || size+len(it.body)+1 > maxBatchBytes) {
				break
			}
			n, size, take = n+1, size+len(it.body)+1, take+1
			if big {
				alone = true
				break
			}
			if n >= maxEv {
				break
			}
		}
		var wait time.Duration
		ready := false
		if n > 0 {
			wait = r.o.BatchWait - time.Since(r.queue[0].at)
			ready = n >= maxEv || alone || take < len(r.queue) || flush || wait <= 0 || r.entering.Load() == 0
		}
		if ready {
			b := &fcBatch{}
			b.ctx, b.cancel = context.WithCancel(r.bg)
			var ms []chan struct{}
			for _, it := range r.queue[:take] {
				if it.flush != nil {
					ms = append(ms, it.flush)
					continue
				}
				if it.state.CompareAndSwap(fcQueued, fcTaken) {
					it.batch = b
					b.items = append(b.items, it)
					b.waiting++
				}
			}
			r.queue = slices.Delete(r.queue, 0, take)
			r.mu.Unlock()
			if len(b.items) == 0 {
				b.cancel()
				if ms == nil {
					continue
				}
				return nil, ms
			}
			// markers ride with the batch: closed after it resolves.
			return b, ms
		}
		r.mu.Unlock()
		var tc <-chan time.Time
		if n > 0 {
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			tc = timer.C
		}
		select {
		case <-r.wake:
		case <-tc:
		case <-r.bg.Done():
		}
	}
}

// fcDeliver sends b until every caller in it has its answer, or none is
// waiting any more, or the sender stops.
func (r *Remote) fcDeliver(b *fcBatch) {
	defer b.cancel()
	var (
		key   string
		body  []byte
		items []*fcItem
		fails int
	)
	for {
		b.mu.Lock()
		if !b.sent {
			// Callers told "never received" must stay that way: their
			// events leave the batch before it is sent again.
			n := len(b.items)
			b.items = slices.DeleteFunc(b.items, func(it *fcItem) bool { return it.gone })
			if len(b.items) != n {
				key = ""
			}
		}
		if b.waiting == 0 || len(b.items) == 0 || b.ctx.Err() != nil {
			b.mu.Unlock()
			r.fcAbandon(b)
			return
		}
		if key == "" {
			items = slices.Clone(b.items[:min(len(b.items), int(r.maxEvents.Load()))])
			key = newKey()
			var buf bytes.Buffer
			for _, it := range items {
				buf.Write(it.body)
				buf.WriteByte('\n')
			}
			body = buf.Bytes()
		}
		b.mu.Unlock()

		window := items
		a := r.post(b.ctx, key, body, len(items), func() bool {
			b.mu.Lock()
			defer b.mu.Unlock()
			if !b.sent && slices.ContainsFunc(window, func(it *fcItem) bool { return it.gone }) {
				return false
			}
			b.attempting = true
			return true
		})

		b.mu.Lock()
		b.attempting = false
		if a.maybeSent || a.out == outOK {
			b.sent = true
		}
		b.mu.Unlock()
		if b.ctx.Err() != nil && a.out != outOK {
			r.fcAbandon(b)
			return
		}
		if errors.Is(a.err, errBatchChanged) {
			continue // a caller left just before the body went: send without its event
		}
		switch a.out {
		case outOK:
			r.delivered.Add(int64(len(items)))
			if a.replay || a.conflict {
				r.replayed.Add(int64(len(items)))
			}
			if a.conflict {
				r.log.Warn("trail client: the server already held a batch under this idempotency key (409); counted as delivered", "key", key, "events", len(items))
			}
			b.resolve(items, func(int) error { return nil })
			b.mu.Lock()
			b.sent = false
			b.mu.Unlock()
			key, fails = "", 0
		case outRetry:
			fails++
			r.retries.Add(1)
			r.deliveryFailed(a.err)
			r.log.Warn("trail client: delivery failed; retrying", "events", len(items), "key", key, "attempt", fails, "err", a.err)
			sleep(b.ctx, r.backoff(fails, a))
		case outTooLarge:
			if len(items) > 1 {
				r.lowerMax(len(items))
				r.log.Warn("trail client: the server found a batch too large; sending fewer events", "events", len(items), "now", r.maxEvents.Load())
				key = ""
				b.mu.Lock()
				b.sent = false
				b.mu.Unlock()
				continue
			}
			fallthrough
		case outRefused, outAuth:
			r.deliveryFailed(a.err)
			perEvent := eventErrors(a.prob, len(items))
			if a.out != outRefused || perEvent == nil {
				r.refused.Add(int64(len(items)))
				r.log.Warn("trail client: the server refused a batch", "events", len(items), "err", a.err)
				err := fmt.Errorf("client: event not recorded: %w", a.err)
				b.resolve(items, func(int) error { return err })
			} else {
				var bad []*fcItem
				var errs []error
				for i, it := range items {
					if fe, ok := perEvent[i]; ok {
						bad = append(bad, it)
						errs = append(errs, fmt.Errorf("client: trail serve refused the event (HTTP %d): %w", a.status, eventRefused(a.prob, fe)))
					}
				}
				r.refused.Add(int64(len(bad)))
				r.log.Warn("trail client: the server refused events of a batch; sending the others again", "refused", len(bad), "events", len(items))
				b.resolve(bad, func(i int) error { return errs[i] })
			}
			b.mu.Lock()
			b.sent = false
			b.mu.Unlock()
			key, fails = "", 0
		}
	}
}

// fcAbandon answers whoever still waits in b when the sender stops.
func (r *Remote) fcAbandon(b *fcBatch) {
	b.mu.Lock()
	maybe := b.sent
	b.mu.Unlock()
	err := fmt.Errorf("client: event not recorded (it was never sent): %w", ErrRemoteClosed)
	if maybe {
		err = fmt.Errorf("%w: the recorder closed before the server answered: %w", ErrMaybeStored, ErrRemoteClosed)
	}
	b.resolve(slices.Clone(b.items), func(int) error { return err })
}

// ---- Spool ----

// spoolEntry is an event read from the spool and not yet in a batch that
// resolved it; dead entries were refused already (and dead-lettered).
type spoolEntry struct {
	seq  uint64
	data []byte
	dead bool
}

// spoolBatch is a batch in Spool mode: the events first..last, less skip.
type spoolBatch struct {
	key         string // "" until its batch record is written
	first, last uint64
	skip        []uint64
	recs        []spoolEntry
	size        int
}

func (r *Remote) recordSpool(ctx context.Context, body []byte) error {
	_, g, err := r.sp.append(recEvent, body)
	if err != nil {
		if errors.Is(err, errSpoolClosed) {
			return ErrRemoteClosed
		}
		return fmt.Errorf("client: event not recorded: %w", err)
	}
	r.pending.Add(1)
	select {
	case <-g.done:
	case <-ctx.Done():
		return fmt.Errorf("%w: gave up waiting for the spool's fsync: %w", ErrMaybeStored, context.Cause(ctx))
	}
	if g.err != nil {
		return fmt.Errorf("client: event not recorded: the spool failed: %w", g.err)
	}
	return nil
}

func (r *Remote) flushSpool(ctx context.Context) error {
	target := r.sp.lastEventSeq()
	refused := r.refused.Load()
	r.flushReq.Add(1)
	defer r.flushReq.Add(-1)
	r.kick()
	for {
		ack, ch := r.sp.acked()
		if ack >= target {
			break
		}
		select {
		case <-ch:
		case <-r.done:
			if ack, _ := r.sp.acked(); ack >= target {
				continue
			}
			return ErrRemoteClosed
		case <-ctx.Done():
			return fmt.Errorf("client: flush: %d events not yet delivered: %w", r.pending.Load(), context.Cause(ctx))
		}
	}
	if n := r.refused.Load() - refused; n > 0 {
		return fmt.Errorf("client: flush: the server refused %d events; they are in %s", n, r.sp.dir+"/"+deadName)
	}
	return nil
}

// runSpool is the Spool sender: it reads the spool in order and delivers one
// batch at a time, recording each batch before sending it.
func (r *Remote) runSpool() {
	defer close(r.done)
	rd := r.sp.newReader()
	if ob := r.sp.openBatch; ob != nil {
		b := r.spRebuild(rd, ob)
		r.log.Info("trail client: resending the batch sent before the restart", "key", b.key, "events", len(b.recs))
		if !r.spDeliver(b) {
			return
		}
	}
	for {
		b := r.spCollect(rd)
		if b == nil {
			return
		}
		if !r.spDeliver(b) {
			return
		}
	}
}

// next returns the next spool event to batch: from the carry, then the
// reader.
func (r *Remote) spNext(rd *spoolReader) (spoolEntry, bool) {
	if len(r.carry) > 0 {
		e := r.carry[0]
		r.carry = r.carry[1:]
		return e, true
	}
	for {
		rec, ok, err := rd.next()
		if err != nil {
			r.log.Error("trail client: reading the spool", "err", err)
			r.deliveryFailed(err)
			return spoolEntry{}, false
		}
		if !ok {
			return spoolEntry{}, false
		}
		if rec.kind != recEvent || rec.seq <= r.sp.recAck {
			continue
		}
		return spoolEntry{seq: rec.seq, data: rec.payload}, true
	}
}

func (r *Remote) spPushBack(e spoolEntry) { r.carry = append([]spoolEntry{e}, r.carry...) }

// spRebuild reads back the batch that was open at the restart, exactly as
// it was sent.
func (r *Remote) spRebuild(rd *spoolReader, ob *batchRecord) *spoolBatch {
	b := &spoolBatch{key: ob.Key, first: ob.First, last: ob.Last, skip: ob.Skip}
	for {
		e, ok := r.spNext(rd)
		if !ok {
			break
		}
		if e.seq > ob.Last {
			r.spPushBack(e)
			break
		}
		if e.seq < ob.First || slices.Contains(ob.Skip, e.seq) {
			continue
		}
		b.recs = append(b.recs, e)
		b.size += len(e.data) + 1
	}
	return b
}

// spCollect waits for the next batch; nil when the sender must stop.
func (r *Remote) spCollect(rd *spoolReader) *spoolBatch {
	b := &spoolBatch{}
	var deadline time.Time
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		ch := r.sp.watch()
		full := false
		for !full {
			e, ok := r.spNext(rd)
			if !ok {
				break
			}
			if e.dead {
				if len(b.recs) > 0 {
					b.skip = append(b.skip, e.seq)
					b.last = e.seq
				} else {
					// Resolved already, and so is everything before it.
					if err := r.sp.setAck(e.seq); err != nil {
						r.log.Error("trail client: writing the spool's ack pointer", "err", err)
					}
				}
				continue
			}
			big := len(e.data) > trail.MaxEventBytes
			if len(b.recs) > 0 && (big || b.size+len(e.data)+1 > maxBatchBytes) {
				r.spPushBack(e)
				full = true
				break
			}
			if len(b.recs) == 0 {
				b.first = e.seq
			}
			b.recs = append(b.recs, e)
			b.last = e.seq
			b.size += len(e.data) + 1
			full = big || len(b.recs) >= int(r.maxEvents.Load())
		}
		if r.bg.Err() != nil {
			return nil
		}
		if full {
			return b
		}
		if len(b.recs) > 0 {
			now := time.Now()
			if deadline.IsZero() {
				deadline = now.Add(r.o.BatchWait)
			}
			if !now.Before(deadline) || r.flushReq.Load() > 0 {
				return b
			}
		}
		var tc <-chan time.Time
		if !deadline.IsZero() {
			if timer == nil {
				timer = time.NewTimer(time.Until(deadline))
			} else {
				timer.Reset(time.Until(deadline))
			}
			tc = timer.C
		}
		select {
		case <-ch:
		case <-r.wake:
		case <-tc:
		case <-r.bg.Done():
		}
	}
}

// spRecordBatch gives b a fresh key and writes its batch record.
func (r *Remote) spRecordBatch(b *spoolBatch) error {
	key := newKey()
	payload, err := json.Marshal(batchRecord{First: b.first, Last: b.last, Key: key, Skip: b.skip})
	if err != nil {
		return fmt.Errorf("client: encoding a batch record: %w", err)
	}
	if _, err := r.sp.appendSync(recBatch, payload); err != nil {
		return fmt.Errorf("client: recording a batch in the spool: %w", err)
	}
	b.key = key
	return nil
}

// spDeliver delivers b: every event in it ends acknowledged or in
// dead.ndjson. It returns false when the sender must stop (b stays in the
// spool).
func (r *Remote) spDeliver(b *spoolBatch) bool {
	fails := 0
	var body []byte
	bodyKey := ""
	retry := func(err error) bool {
		fails++
		r.retries.Add(1)
		r.deliveryFailed(err)
		r.log.Warn("trail client: delivery failed; the events wait in the spool", "events", len(b.recs), "key", b.key, "attempt", fails, "err", err)
		return sleep(r.bg, r.backoff(fails, &attempt{}))
	}
	for {
		if r.bg.Err() != nil {
			return false
		}
		if len(b.recs) == 0 {
			r.spAck(b.last)
			return true
		}
		if b.key == "" {
			if err := r.spRecordBatch(b); err != nil {
				if !retry(err) {
					return false
				}
				continue
			}
		}
		if bodyKey != b.key {
			var buf bytes.Buffer
			buf.Grow(b.size)
			for _, e := range b.recs {
				buf.Write(e.data)
				buf.WriteByte('\n')
			}
			body, bodyKey = buf.Bytes(), b.key
		}
		a := r.post(r.bg, b.key, body, len(b.recs), nil)
		if r.bg.Err() != nil && a.out != outOK {
			return false
		}
		switch a.out {
		case outOK:
			if a.conflict {
				r.log.Warn("trail client: the server already held a batch under this idempotency key (409); counted as delivered", "key", b.key, "events", len(b.recs))
			}
			r.delivered.Add(int64(len(b.recs)))
			r.pending.Add(-int64(len(b.recs)))
			if a.replay || a.conflict {
				r.replayed.Add(int64(len(b.recs)))
			}
			r.spAck(b.last)
			return true
		case outRetry, outAuth:
			// A wrong key or URL is not the events' fault: they wait in
			// the spool until it is fixed.
			fails++
			r.retries.Add(1)
			r.deliveryFailed(a.err)
			r.log.Warn("trail client: delivery failed; the events wait in the spool", "events", len(b.recs), "key", b.key, "attempt", fails, "err", a.err)
			if !sleep(r.bg, r.backoff(fails, a)) {
				return false
			}
		case outTooLarge:
			if len(b.recs) > 1 {
				r.lowerMax(len(b.recs))
				h := len(b.recs) / 2
				keepLast := b.recs[h-1].seq
				var rest []spoolEntry
				rest = append(rest, b.recs[h:]...)
				var skip []uint64
				for _, q := range b.skip {
					if q <= keepLast {
						skip = append(skip, q)
					} else {
						rest = append(rest, spoolEntry{seq: q, dead: true})
					}
				}
				slices.SortFunc(rest, func(x, y spoolEntry) int { return cmp.Compare(x.seq, y.seq) })
				r.carry = append(rest, r.carry...)
				b.recs, b.skip, b.last, b.key = b.recs[:h], skip, keepLast, ""
				b.size = 0
				for _, e := range b.recs {
					b.size += len(e.data) + 1
				}
				r.log.Warn("trail client: the server found a batch too large; sending fewer events", "events", len(b.recs)+len(rest), "now", r.maxEvents.Load())
				continue
			}
			fallthrough
		case outRefused:
			perEvent := eventErrors(a.prob, len(b.recs))
			if perEvent == nil {
				perEvent = map[int][]trail.FieldError{}
				for i := range b.recs {
					perEvent[i] = a.prob.Errors
				}
			}
			if err := r.spDead(b, a, perEvent); err != nil {
				if !retry(err) {
					return false
				}
				continue
			}
			fails = 0
		}
	}
}

// spDead moves the refused events of b to dead.ndjson (durably), reports
// them, and takes them out of b, which then needs a new batch record.
func (r *Remote) spDead(b *spoolBatch, a *attempt, perEvent map[int][]trail.FieldError) error {
	var lines []byte
	now := time.Now().UTC()
	for i, e := range b.recs {
		fe, ok := perEvent[i]
		if !ok {
			continue
		}
		line, err := json.Marshal(deadLine{Seq: e.seq, Key: b.key, FailedAt: now, Status: a.status, Code: a.prob.coded(nil).Code,
			Detail: a.prob.coded(nil).Message, Errors: fe, Event: json.RawMessage(e.data)})
		if err != nil {
			// Not JSON after all (the spool holds what json.Marshal made,
			// so this is damage): keep it as a string.
			line, _ = json.Marshal(deadLine{Seq: e.seq, Key: b.key, FailedAt: now, Status: a.status, Code: a.prob.coded(nil).Code,
				Detail: a.prob.coded(nil).Message, Errors: fe, Event: mustJSON(string(e.data))})
		}
		lines = append(append(lines, line...), '\n')
	}
	if err := r.sp.deadLetter(lines); err != nil {
		return err
	}
	var kept []spoolEntry
	size := 0
	for i, e := range b.recs {
		fe, bad := perEvent[i]
		if !bad {
			kept = append(kept, e)
			size += len(e.data) + 1
			continue
		}
		b.skip = append(b.skip, e.seq)
		err := fmt.Errorf("client: trail serve refused spooled event seq %d (HTTP %d); moved to %s: %w", e.seq, a.status, deadName, eventRefused(a.prob, fe))
		r.log.Error("trail client: the server refused an event; moved to the dead-letter file", "seq", e.seq, "file", r.sp.dir+"/"+deadName, "err", err)
		r.deliveryFailed(err)
	}
	n := int64(len(b.recs) - len(kept))
	r.refused.Add(n)
	r.pending.Add(-n)
	slices.Sort(b.skip)
	b.recs, b.size, b.key = kept, size, ""
	return nil
}

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

// spAck moves the ack pointer after a resolved batch.
func (r *Remote) spAck(last uint64) {
	if err := r.sp.setAck(last); err != nil {
		r.log.Error("trail client: writing the spool's ack pointer (a restart resends the last batch, as a replay)", "err", err)
		r.deliveryFailed(err)
	}
}
