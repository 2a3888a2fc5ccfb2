package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/tlog"
)

// Transport delivers a sink's messages to one receiver. Send returns nil
// once the receiver has acknowledged m; a *Refused when the receiver
// refused it for good; the error of Encoding.Line when m holds an event
// the log has broken; any other error is worth a retry (the receiver is
// down, slow or overloaded). It may be called again with the same message
// after an error: receivers deduplicate by Message.ID.
type Transport interface {
	Send(ctx context.Context, m *Message) error
}

// Config configures a Sink.
type Config struct {
	// Name names the sink; its cursor is "sink." + Name. Required.
	Name string
	// Tenant is the log the sink delivers. Required.
	Tenant string
	// Log is where the events and checkpoints are read; Cursors where
	// the sink's position is kept. Required.
	Log     trail.Log
	Cursors trail.CursorStore
	// Transport delivers. Required.
	Transport Transport
	// Batch is how many records a message carries at most (default 500).
	Batch int
	// Poll is how often a sink that has caught up looks for new events
	// (default 1s).
	Poll time.Duration
	// CheckpointEvery is how often a sink that is catching up sends the
	// latest checkpoint with a message (default 10s). A sink that has
	// caught up always sends it.
	CheckpointEvery time.Duration
	// MinBackoff and MaxBackoff bound the wait between retries, which
	// doubles from MinBackoff (default 100ms) up to MaxBackoff (default
	// 1m), with full jitter.
	MinBackoff, MaxBackoff time.Duration
	// Skip, when set, is called with each event the receiver refused for
	// good (a refused message is sent in halves to find it) and records
	// the skip (the supervisor appends sink_skipped to the log); then the
	// sink sends in the event's place a stand-in, its seq and leaf hash
	// marked skipped, which keeps the receiver's tree checkable, and goes
	// on. An error from Skip ends Run with it (a refusal among its causes
	// stops the sink for good), as does a stand-in refused too. Nil: a
	// refusal stops the sink.
	Skip func(ctx context.Context, r Record, reason string) error
	// Logger gets one line per retry and one when the sink stops.
	Logger *slog.Logger
}

// Status is what a sink is doing.
type Status struct {
	Name, Tenant string
	// Cursor is the last seq the receiver acknowledged; Head the size of
	// the latest checkpoint the sink has seen; Lag is Head - Cursor.
	Cursor, Head, Lag uint64
	// LagSince is when the oldest undelivered event was first seen
	// undelivered (zero when caught up).
	LagSince time.Time
	// Delivered counts messages acknowledged, Failures failed attempts,
	// Skipped events the receiver refused and the sink skipped.
	Delivered, Failures, Skipped uint64
	// LastError is the last failure ("" after a success); Stopped is set
	// when the sink stopped for good (a refusal, a log that went back).
	LastError string
	Stopped   bool
}

// Sink delivers one tenant's log to one receiver.
type Sink struct {
	c  Config
	mu sync.Mutex
	st Status
}

// New returns the sink c describes.
func New(c Config) (*Sink, error) {
	switch {
	case c.Name == "":
		return nil, trail.Invalid("bad sink", trail.FieldError{Path: "name", Message: "required"})
	case c.Tenant == "":
		return nil, trail.Invalid("bad sink", trail.FieldError{Path: "tenant", Message: "required"})
	case c.Log == nil || c.Cursors == nil || c.Transport == nil:
		return nil, fmt.Errorf("stream: sink %s: Log, Cursors and Transport are required", c.Name)
	}
	if err := trail.CheckCursorName("sink." + c.Name); err != nil {
		return nil, err
	}
	if c.Batch <= 0 {
		c.Batch = 500
	}
	if c.Poll <= 0 {
		c.Poll = time.Second
	}
	if c.CheckpointEvery <= 0 {
		c.CheckpointEvery = 10 * time.Second
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = 100 * time.Millisecond
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = max(time.Minute, c.MinBackoff)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return &Sink{c: c, st: Status{Name: c.Name, Tenant: c.Tenant}}, nil
}

// Status returns what the sink is doing.
func (s *Sink) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

func (s *Sink) update(fn func(*Status)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(&s.st)
	s.st.Lag = s.st.Head - min(s.st.Cursor, s.st.Head)
	if s.st.Lag == 0 {
		s.st.LagSince = time.Time{}
	} else if s.st.LagSince.IsZero() {
		s.st.LagSince = time.Now()
	}
}

// Run delivers until ctx is done (it returns nil) or the sink stops for
// good: the receiver refused a message (a *Refused), or the log is behind
// the sink's cursor (the log was rolled back, or the cursor belongs to
// another log).
func (s *Sink) Run(ctx context.Context) error {
	err := s.run(ctx)
	if ctx.Err() != nil && !IsRefused(err) {
		return nil
	}
	// A refusal is the receiver's answer, which the sink's owner needs to
	// see; any other error shows only its caller-safe message.
	msg := trail.ErrorMessage(err)
	if IsRefused(err) {
		msg = err.Error()
	}
	s.update(func(st *Status) { st.Stopped, st.LastError = true, msg })
	s.c.Logger.ErrorContext(ctx, "stream: sink stopped", "sink", s.c.Name, "tenant", s.c.Tenant, "err", err)
	return err
}

// Final reports whether err, returned by Run, stopped the sink for good:
// the receiver refused a message, or the log is not one the sink can go
// on streaming (it went back behind the cursor, lacks an event its
// checkpoint covers, or has a checkpoint that does not parse). Running the
// sink again would fail the same way until someone looks. Any other error
// (the store failing, another runner of the sink moving its cursor) is
// worth running it again.
func Final(err error) bool {
	var b *broken
	return IsRefused(err) || errors.As(err, &b)
}

// broken is the error of a log the sink cannot go on streaming.
type broken struct{ err *trail.Error }

func (b *broken) Error() string { return b.err.Error() }
func (b *broken) Unwrap() error { return b.err }

// brokenLog returns a broken log's error, EINTERNAL with the message.
func brokenLog(format string, args ...any) error {
	return &broken{trail.Errorf(trail.EINTERNAL, format, args...)}
}

func (s *Sink) run(ctx context.Context) error {
	cursorName := "sink." + s.c.Name
	cursor, err := s.c.Cursors.Cursor(ctx, cursorName, s.c.Tenant)
	if err != nil {
		return err
	}
	s.update(func(st *Status) { st.Cursor = cursor })
	var sentCP uint64 // the size of the last checkpoint delivered
	var lastCP time.Time
	for {
		note, size, err := s.latest(ctx)
		if err != nil {
			return err
		}
		s.update(func(st *Status) { st.Head = size })
		if cursor > size {
			return brokenLog("stream: sink %s: its cursor is at %d but the log's latest checkpoint is of size %d: the log went back (run trail verify)", s.c.Name, cursor, size)
		}
		m := &Message{Sink: s.c.Name, Tenant: s.c.Tenant}
		if cursor < size {
			to := min(size, cursor+uint64(s.c.Batch))
			if m.Records, err = s.read(ctx, cursor+1, to); err != nil {
				return err
			}
			if to == size || time.Since(lastCP) >= s.c.CheckpointEvery {
				m.Checkpoint, m.Size = note, size
			}
		} else if sentCP != size {
			m.Checkpoint, m.Size = note, size // caught up: the checkpoint says so
		} else {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(s.c.Poll):
			}
			continue
		}
		if err := s.send(ctx, m); err != nil {
			return err
		}
		if n := len(m.Records); n > 0 {
			cursor = m.Records[n-1].Seq
			if err := s.c.Cursors.SetCursor(ctx, cursorName, s.c.Tenant, cursor); err != nil {
				return err
			}
		}
		if m.Checkpoint != nil {
			sentCP, lastCP = size, time.Now()
		}
		s.update(func(st *Status) { st.Cursor = cursor; st.Delivered++; st.LastError = "" })
	}
}

// latest returns the tenant's latest checkpoint and its size (0 and nil
// before the tenant has one).
func (s *Sink) latest(ctx context.Context) ([]byte, uint64, error) {
	note, err := s.c.Log.Checkpoint(ctx, s.c.Tenant)
	if trail.ErrorCode(err) == trail.ENOTFOUND {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	cp, err := tlog.ParseUnverified(note)
	if err != nil {
		return nil, 0, brokenLog("stream: the latest checkpoint does not parse (run trail verify): %v", err)
	}
	return note, cp.Size, nil
}

// read returns the records from through to, which the log must hold, all.
func (s *Sink) read(ctx context.Context, from, to uint64) ([]Record, error) {
	recs := make([]Record, 0, to-from+1)
	err := s.c.Log.ScanLeaves(ctx, s.c.Tenant, from, to+1, func(l trail.Leaf) error {
		if want := from + uint64(len(recs)); l.Seq != want {
			return brokenLog("stream: the log has no event at seq %d (run trail verify)", want)
		}
		r := Record{Seq: l.Seq}
		if len(l.Body) > 0 {
			r.Body = append([]byte(nil), l.Body...)
		} else if len(l.Hashes) >= trail.HashSize {
			r.LeafHash = append([]byte(nil), l.Hashes[:trail.HashSize]...)
		} else {
			return brokenLog("stream: the pruned event at seq %d has no leaf hash (run trail verify)", l.Seq)
		}
		recs = append(recs, r)
		return nil
	})
	if err == nil && uint64(len(recs)) != to-from+1 {
		err = brokenLog("stream: the log has no event at seq %d (run trail verify)", from+uint64(len(recs)))
	}
	return recs, err
}

// send delivers m. A refusal stops the sink, unless it skips
// (Config.Skip): then the refused message is sent in halves until the
// refusal is narrowed down to one event, which is skipped and sent as a
// stand-in.
func (s *Sink) send(ctx context.Context, m *Message) error {
	err := s.deliver(ctx, m)
	var ref *Refused
	if s.c.Skip == nil || !errors.As(err, &ref) || len(m.Records) == 0 {
		return err
	}
	if len(m.Records) > 1 {
		h := len(m.Records) / 2
		first := &Message{Sink: m.Sink, Tenant: m.Tenant, Records: m.Records[:h]}
		rest := *m
		rest.Records = m.Records[h:]
		if err := s.send(ctx, first); err != nil {
			return err
		}
		return s.send(ctx, &rest)
	}
	r := m.Records[0]
	if r.Body == nil {
		return err // a leaf hash alone refused: a stand-in would be too
	}
	if err := s.c.Skip(ctx, r, ref.Reason); err != nil {
		return fmt.Errorf("stream: sink %s: skipping seq %d: %w", s.c.Name, r.Seq, err)
	}
	stand := *m
	stand.Records = []Record{{Seq: r.Seq, LeafHash: tlog.LeafHash(r.Body), Skipped: true}}
	if err := s.deliver(ctx, &stand); err != nil {
		return err
	}
	s.update(func(st *Status) { st.Skipped++ })
	s.c.Logger.WarnContext(ctx, "stream: the receiver refused an event; the sink skipped it, as configured, and sent its leaf hash",
		"sink", s.c.Name, "tenant", s.c.Tenant, "seq", r.Seq, "reason", ref.Reason)
	return nil
}

// deliver sends m until the receiver acknowledges it, waiting between
// attempts with exponential backoff and full jitter. It gives up only
// when ctx is done, the receiver refuses m, or the transport finds the
// log broken (an event it cannot encode).
func (s *Sink) deliver(ctx context.Context, m *Message) error {
	wait := s.c.MinBackoff
	for {
		err := s.c.Transport.Send(ctx, m)
		if err == nil {
			return nil
		}
		if Final(err) { // refused, or a log the transport cannot encode
			return fmt.Errorf("stream: sink %s, message %s: %w", s.c.Name, m.ID(), err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.update(func(st *Status) { st.Failures++; st.LastError = err.Error() })
		s.c.Logger.WarnContext(ctx, "stream: delivery failed, retrying", "sink", s.c.Name, "tenant", s.c.Tenant, "message", m.ID(), "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(rand.N(wait) + 1):
		}
		wait = min(2*wait, s.c.MaxBackoff)
	}
}
