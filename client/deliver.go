package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trailaudit/trail"
)

const (
	maxBatchBytes = 4 << 20                // the NDJSON a batch may hold
	retryBase     = 100 * time.Millisecond // the backoff's ceiling after the first failure
	maxRetryAfter = 10 * time.Minute       // the longest Retry-After obeyed
)

// deliverer is the part of a Remote that both engines use: the options,
// the background sender's context and signals, the batch limit, the
// counters Stats reports, and the HTTP POST of a batch.
type deliverer struct {
	o        RemoteOptions
	log      *slog.Logger
	hc       *http.Client
	endpoint string

	bg     context.Context // ends when the sender must stop
	stop   context.CancelFunc
	done   chan struct{} // closed when the sender has stopped
	wake   chan struct{}
	closed atomic.Bool // Close has begun

	maxEvents atomic.Int64 // BatchSize, halved on each 413

	statMu      sync.Mutex
	pending     atomic.Int64
	delivered   atomic.Int64
	replayed    atomic.Int64
	retries     atomic.Int64
	refused     atomic.Int64
	dead        atomic.Int64
	splits      atomic.Int64
	lastErr     error
	lastErrTime time.Time
}

// newDeliverer returns the deliverer for o, whose defaults are filled in.
func newDeliverer(o RemoteOptions) *deliverer {
	d := &deliverer{o: o, log: o.Logger, hc: o.HTTPClient, done: make(chan struct{}), wake: make(chan struct{}, 1),
		endpoint: strings.TrimSuffix(o.URL, "/") + "/v1/events:batch"}
	d.maxEvents.Store(int64(o.BatchSize))
	d.bg, d.stop = context.WithCancel(context.Background())
	return d
}

// stats returns the counters as Stats reports them (without Recovery).
func (d *deliverer) stats() RemoteStats {
	st := RemoteStats{Mode: d.o.Mode, Pending: d.pending.Load(), Delivered: d.delivered.Load(), Replayed: d.replayed.Load(),
		Retries: d.retries.Load(), Refused: d.refused.Load(), DeadLettered: d.dead.Load(), Splits: d.splits.Load()}
	d.statMu.Lock()
	st.LastError, st.LastErrorAt = d.lastErr, d.lastErrTime
	d.statMu.Unlock()
	return st
}

// deliveryFailed records and reports a failed attempt.
func (d *deliverer) deliveryFailed(err error) {
	d.statMu.Lock()
	d.lastErr, d.lastErrTime = err, time.Now()
	d.statMu.Unlock()
	if d.o.OnDeliveryError != nil {
		d.o.OnDeliveryError(err)
	}
}

// kick wakes the sender, if it waits.
func (d *deliverer) kick() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// admit says whether an event of length bytes may join a batch of n events
// and size bytes of NDJSON, and whether the batch is full with it (or,
// when it may not join, without it). A batch holds at most maxEvents
// events and maxBatchBytes, and an event over the server's event limit
// goes alone, so that its refusal touches no other event.
func (d *deliverer) admit(n, size, length int) (ok, full bool) {
	big := length > trail.MaxEventBytes
	if n > 0 && (big || size+length+1 > maxBatchBytes) {
		return false, true
	}
	return true, big || n+1 >= int(d.maxEvents.Load())
}

// acknowledged counts the n events of a batch the server acknowledged (a
// from posting it under key).
func (d *deliverer) acknowledged(a *attempt, key string, n int) {
	if a.conflict {
		d.log.Warn("trail client: the server already held a batch under this idempotency key (409); counted as delivered", "key", key, "events", n)
	}
	d.delivered.Add(int64(n))
	if a.replay || a.conflict {
		d.replayed.Add(int64(n))
	}
}

// tooLarge halves the events a batch may hold, after the server said a
// batch of n (more than one) was too large.
func (d *deliverer) tooLarge(n int) {
	m := int64(max(1, n/2))
	for {
		cur := d.maxEvents.Load()
		if cur <= m || d.maxEvents.CompareAndSwap(cur, m) {
			break
		}
	}
	d.log.Warn("trail client: the server found a batch too large; sending fewer events", "events", n, "now", d.maxEvents.Load())
}

// retrier counts the failed attempts at delivering one batch, to back off
// between them.
type retrier struct {
	d     *deliverer
	msg   string // what the log says of each failure
	fails int
}

// failed counts, reports and logs a failed attempt at a batch of n events
// under key, then waits out the backoff, or until ctx ends (false). a is
// the attempt, for the server's Retry-After; nil when nothing was sent.
func (t *retrier) failed(ctx context.Context, err error, a *attempt, n int, key string) bool {
	t.fails++
	t.d.retries.Add(1)
	t.d.deliveryFailed(err)
	t.d.log.Warn(t.msg, "events", n, "key", key, "attempt", t.fails, "err", err)
	return sleep(ctx, t.d.backoff(t.fails, a))
}

// reset starts the count again, for the next batch.
func (t *retrier) reset() { t.fails = 0 }

// backoff returns the wait after the n-th failed attempt (n from 1); a,
// if not nil, may carry the server's Retry-After.
func (d *deliverer) backoff(n int, a *attempt) time.Duration {
	if a != nil && a.retryAfter > 0 {
		return min(a.retryAfter, maxRetryAfter)
	}
	ceil := d.o.MaxRetryWait
	if n < 30 {
		ceil = min(ceil, retryBase<<(n-1))
	}
	return mrand.N(ceil) + time.Millisecond
}

// newKey returns a fresh idempotency key.
func newKey() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail
	}
	return "tc-" + hex.EncodeToString(b[:])
}

// subKey returns the idempotency key of a batch of events cut from the
// refused batch sent under from: items, each numbered by seq. The same
// events cut from the same batch always get the same key (a resend is a
// replay), other events or another batch another key. It has the shape of
// newKey's.
func subKey[T any](from string, items []T, seq func(T) uint64) string {
	h := sha256.New()
	h.Write([]byte(from))
	for _, it := range items {
		h.Write(binary.BigEndian.AppendUint64(nil, seq(it)))
	}
	return "tc-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// part is a stretch of a refused batch still to be sent: its next n
// events, cut from the batch sent under the key from.
type part struct {
	n    int
	from string
}

// settle takes the k events of a request sent under key off the front of
// parts (what is left of refused requests, next first; empty when the
// request was not cut from one) and puts before the rest the pieces of the
// request still to send, of the sizes pieces says, each cut from key.
func settle(parts []part, k int, key string, pieces ...int) []part {
	var out []part
	for _, n := range pieces {
		if n > 0 {
			out = append(out, part{n: n, from: key})
		}
	}
	if len(parts) > 0 {
		if left := parts[0].n - k; left > 0 {
			out = append(out, part{n: left, from: parts[0].from})
		}
		parts = parts[1:]
	}
	return append(out, parts...)
}

// split is what a sender does with a batch of n events (more than one)
// that the server refused as a whole, naming no event: it sends the two
// halves apart, to find the events refused and deliver the others. It
// returns the size of the first half.
func (d *deliverer) split(n int, key string, a *attempt) int {
	d.splits.Add(1)
	d.deliveryFailed(a.err)
	d.log.Warn("trail client: the server refused a batch as a whole; sending it in halves to find the events refused",
		"events", n, "key", key, "err", a.err)
	return (n + 1) / 2
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

// ndjson is the body of a batch: the line of each item, each ended by a
// newline. size, if known, is the body's length.
func ndjson[T any](items []T, size int, line func(T) []byte) []byte {
	var buf bytes.Buffer
	buf.Grow(size)
	for _, it := range items {
		buf.Write(line(it))
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

// outcome is what an attempt means for its batch.
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
func (d *deliverer) post(ctx context.Context, key string, body []byte, n int, open func() bool) *attempt {
	started := new(atomic.Bool)
	newBody := func() *gatedBody { return &gatedBody{r: bytes.NewReader(body), open: open, started: started} }
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.endpoint, newBody())
	if err != nil {
		return &attempt{out: outAuth, err: fmt.Errorf("client: building the request: %w", err)}
	}
	req.ContentLength = int64(len(body))
	// The transport may resend on a fresh connection (an idle one the
	// server had closed); each copy asks the gate again.
	req.GetBody = func() (io.ReadCloser, error) { return newBody(), nil }
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Authorization", "Bearer "+d.o.Key)
	req.Header.Set("Idempotency-Key", key)
	req.Header.Set("User-Agent", "trail-client-go")
	res, err := d.hc.Do(req)
	if err != nil {
		// Until the body began the server could not store the batch.
		return &attempt{out: outRetry, maybeSent: started.Load(),
			err: fmt.Errorf("client: sending a batch of %d events to %s: %w", n, d.endpoint, err)}
	}
	defer res.Body.Close()
	a := &attempt{status: res.StatusCode}
	if res.StatusCode == http.StatusOK || res.StatusCode == http.StatusCreated {
		var out struct {
			Count int `json:"count"`
		}
		if err := json.NewDecoder(io.LimitReader(res.Body, 64<<20)).Decode(&out); err == nil && out.Count != n {
			d.log.Warn("trail client: the server acknowledged a different number of events", "sent", n, "acknowledged", out.Count, "key", key)
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
		// fresh random key, or one derived from the events it holds (see
		// subKey), and a resend repeats its body byte for byte, so the
		// server holds this batch already (as it first read it: what it
		// fills from the request, the client address, differed).
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

// readProblem reads the problem document of a failed response; a body
// that is not one becomes its detail (the first 200 bytes).
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
