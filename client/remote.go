package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/tlog"
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
	// Verifier, if set, lets LatestCheckpoint check the server's
	// checkpoints: it holds the log's verifier keys, taken from outside the
	// server (as trail verifier prints them, or tlog.ParseVerifiers of a
	// trusted-keys file). Key then needs the verify scope too.
	Verifier *tlog.Verifier
	// Tenant is Key's tenant: required with Verifier, as the checkpoints
	// must be its own (a server cannot pass another tenant's off as it).
	Tenant string
	// Remembered keeps the latest checkpoint LatestCheckpoint saw of the
	// tenant (default with Verifier: a tlog.RememberDir at
	// tlog.DefaultRememberDir()).
	Remembered tlog.Remembered
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
	// DeadLettered counts the events moved to dead.ndjson (Spool mode;
	// 0 in FailClosed, where a refusal is its caller's error).
	DeadLettered int64
	// Splits counts the batches the server refused as a whole, naming no
	// event, and that were sent again in halves to find the events it
	// refuses.
	Splits int64
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
	d   *deliverer // what the engines share: options, sender, counters, HTTP
	eng engine     // failClosed or spooler, by Mode

	// entering counts Records on their way into the FailClosed engine
	// (see failClosed.entering; unused in Spool mode). It is kept here so
	// that it is reachable from the Remote in either Mode.
	entering atomic.Int64
}

var _ Recorder = (*Remote)(nil)

// engine is how a Remote delivers, by Mode: failClosed or spooler. Both
// send through the Remote's deliverer; the engine holds what only its Mode
// needs.
type engine interface {
	// record encodes ev (see encode) and hands it over, returning as its
	// Mode says.
	record(ctx context.Context, ev *trail.Event) error
	// flush returns when everything recorded before it is acknowledged,
	// or with an error.
	flush(ctx context.Context) error
	// run is the background sender; it returns once deliverer.bg ends.
	run()
	// close releases what the engine holds, once the sender has stopped.
	// flushErr is the error of Close's flush; close returns Close's.
	close(flushErr error) error
	// recovery is RemoteStats.Recovery.
	recovery() *RecoveryReport
}

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
	if o.Verifier != nil {
		if m := trail.CheckTenant(o.Tenant); m != "" {
			fe = append(fe, trail.FieldError{Path: "Tenant", Message: "Key's tenant, needed with Verifier: " + m})
		}
		if o.Remembered == nil {
			dir, err := tlog.DefaultRememberDir()
			if err != nil {
				fe = append(fe, trail.FieldError{Path: "Remembered", Message: "required: no default directory (" + err.Error() + ")"})
			}
			o.Remembered = tlog.RememberDir(dir)
		}
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
	r := &Remote{d: newDeliverer(o)}
	if o.Mode == Spool {
		sp, err := openSpool(o.SpoolDir, spoolSegmentSize, r.d.log)
		if err != nil {
			r.d.stop()
			return nil, err
		}
		r.eng = newSpooler(r.d, sp)
	} else {
		r.eng = newFailClosed(r.d, &r.entering)
	}
	go r.run()
	return r, nil
}

// run runs the engine's sender, and closes deliverer.done when it stops.
func (r *Remote) run() {
	defer close(r.d.done)
	r.eng.run()
}

// Record fills ev from ctx (see Fill), encodes it, and hands it to the
// server (FailClosed) or the spool (Spool). It validates nothing beyond
// the JSON encoding: the server does, and its refusal comes back to the
// caller (FailClosed) or goes to dead.ndjson (Spool).
func (r *Remote) Record(ctx context.Context, ev *trail.Event) error {
	if r.d.closed.Load() {
		return ErrRemoteClosed
	}
	return r.eng.record(ctx, ev)
}

// encode fills ev from ctx (see Fill) and encodes it: what an engine's
// record hands over.
func encode(ctx context.Context, ev *trail.Event) ([]byte, error) {
	Fill(ctx, ev)
	body, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("client: encoding the event: %w", err)
	}
	return body, nil
}

// Flush returns when everything recorded so far is acknowledged by the
// server, or with an error when ctx ends first. In Spool mode it also
// returns an error when events were moved to dead.ndjson meanwhile.
func (r *Remote) Flush(ctx context.Context) error {
	return r.eng.flush(ctx)
}

// Close flushes (bounded by ctx), stops the sender and closes the spool.
// Events not yet delivered stay in the spool for the next NewRemote; in
// FailClosed, callers still waiting get an error. Close returns the
// flush's error, if any.
func (r *Remote) Close(ctx context.Context) error {
	if r.d.closed.Swap(true) {
		return nil
	}
	ferr := r.Flush(ctx)
	r.d.stop()
	<-r.d.done
	return r.eng.close(ferr)
}

// Stats returns the recorder's counters.
func (r *Remote) Stats() RemoteStats {
	st := r.d.stats()
	st.Recovery = r.eng.recovery()
	return st
}
