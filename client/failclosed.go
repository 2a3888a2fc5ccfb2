package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trailaudit/trail"
)

// failClosed is the FailClosed engine: Record queues its event and waits
// for the server's answer to the batch holding it. The sender takes the
// queue in order, one batch at a time.
type failClosed struct {
	d *deliverer
	// entering counts Records between entry and enqueue: a batch goes as
	// soon as none is on its way in. The counter is the Remote's.
	entering *atomic.Int64

	mu      sync.Mutex
	queue   []*fcItem
	stopped bool   // the sender has stopped: nothing queued will be sent
	seq     uint64 // the last event's number (fcItem.seq)
}

var _ engine = (*failClosed)(nil)

// newFailClosed returns the FailClosed engine over d, counting the Records
// on their way in in entering.
func newFailClosed(d *deliverer, entering *atomic.Int64) *failClosed {
	return &failClosed{d: d, entering: entering}
}

const (
	fcQueued int32 = iota
	fcTaken
	fcCancelled
)

// fcItem is an event waiting in FailClosed, or a Flush marker.
type fcItem struct {
	seq   uint64 // numbers the events in the order queued, from 1
	body  []byte
	at    time.Time
	flush chan struct{} // non-nil: a Flush marker
	state atomic.Int32
	res   chan error // buffered: the outcome, sent once
	batch *fcBatch   // set under failClosed.mu when taken
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

// record encodes ev, queues it and waits for the server's answer, or
// until ctx ends.
func (f *failClosed) record(ctx context.Context, ev *trail.Event) error {
	f.entering.Add(1)
	body, err := encode(ctx, ev)
	if err != nil {
		f.entering.Add(-1)
		return err
	}
	it := &fcItem{body: body, at: time.Now(), res: make(chan error, 1)}
	f.mu.Lock()
	if f.stopped || f.d.closed.Load() {
		f.mu.Unlock()
		f.entering.Add(-1)
		return ErrRemoteClosed
	}
	f.seq++
	it.seq = f.seq
	f.queue = append(f.queue, it)
	f.mu.Unlock()
	f.d.pending.Add(1)
	defer f.d.pending.Add(-1)
	f.entering.Add(-1)
	f.d.kick()
	select {
	case err := <-it.res:
		return err
	case <-ctx.Done():
	}
	if it.state.CompareAndSwap(fcQueued, fcCancelled) {
		return fmt.Errorf("client: event not recorded (it was never sent): %w", context.Cause(ctx))
	}
	if it.state.Load() == fcCancelled {
		return <-it.res // cancelled by failQueued, which answers at once
	}
	f.mu.Lock()
	b := it.batch
	f.mu.Unlock()
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

// flush queues a marker and waits until every event before it is
// resolved.
func (f *failClosed) flush(ctx context.Context) error {
	m := &fcItem{flush: make(chan struct{})}
	f.mu.Lock()
	if f.stopped {
		f.mu.Unlock()
		return ErrRemoteClosed
	}
	f.queue = append(f.queue, m)
	f.mu.Unlock()
	f.d.kick()
	select {
	case <-m.flush:
		return nil
	case <-f.d.done:
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

// run is the FailClosed sender: one batch at a time, in order.
func (f *failClosed) run() {
	for {
		b, markers := f.collect()
		if b != nil {
			f.deliver(b)
		}
		if f.d.bg.Err() != nil && b != nil {
			// The batch may have been abandoned: its Flush callers get
			// ErrRemoteClosed (they see d.done), not a false success.
			markers = nil
		}
		for _, m := range markers {
			close(m)
		}
		if b == nil && markers == nil {
			f.failQueued()
			return
		}
	}
}

// close has nothing to release: the callers still waiting were answered
// when the sender stopped. It returns flushErr.
func (f *failClosed) close(flushErr error) error { return flushErr }

// recovery is nil: there is no spool.
func (f *failClosed) recovery() *RecoveryReport { return nil }

// failQueued fails what is still queued when the sender stops.
func (f *failClosed) failQueued() {
	f.mu.Lock()
	q := f.queue
	f.queue, f.stopped = nil, true
	f.mu.Unlock()
	for _, it := range q {
		if it.flush == nil && it.state.CompareAndSwap(fcQueued, fcCancelled) {
			it.res <- fmt.Errorf("client: event not recorded (it was never sent): %w", ErrRemoteClosed)
		}
	}
}

// collect waits for the next batch. It returns nil, nil when the sender
// must stop.
func (f *failClosed) collect() (*fcBatch, []chan struct{}) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		if f.d.bg.Err() != nil {
			return nil, nil
		}
		f.mu.Lock()
		// Drop what callers gave up on, and markers at the head (every
		// event before them is resolved: batches go one at a time).
		var markers []chan struct{}
		live := f.queue[:0]
		for _, it := range f.queue {
			if it.flush == nil && it.state.Load() == fcCancelled {
				continue
			}
			if it.flush != nil && len(live) == 0 {
				markers = append(markers, it.flush)
				continue
			}
			live = append(live, it)
		}
		clear(f.queue[len(live):])
		f.queue = live
		if len(markers) > 0 {
			f.mu.Unlock()
			return nil, markers
		}
		// What the next batch would take.
		n, size, take, flush, full := 0, 0, 0, false, false
		for _, it := range f.queue {
			if it.flush != nil {
				flush = true
				take++
				break
			}
			ok, last := f.d.admit(n, size, len(it.body))
			if !ok {
				break
			}
			n, size, take = n+1, size+len(it.body)+1, take+1
			if last {
				full = true
				break
			}
		}
		var wait time.Duration
		ready := false
		if n > 0 {
			wait = f.d.o.BatchWait - time.Since(f.queue[0].at)
			ready = full || take < len(f.queue) || flush || wait <= 0 || f.entering.Load() == 0
		}
		if ready {
			b := &fcBatch{}
			b.ctx, b.cancel = context.WithCancel(f.d.bg)
			var ms []chan struct{}
			for _, it := range f.queue[:take] {
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
			f.queue = slices.Delete(f.queue, 0, take)
			f.mu.Unlock()
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
		f.mu.Unlock()
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
		case <-f.d.wake:
		case <-tc:
		case <-f.d.bg.Done():
		}
	}
}

// deliver sends b until every caller in it has its answer, or none is
// waiting any more, or the sender stops. A refused request's events that
// were not refused are sent again, in parts cut from it (see split).
func (f *failClosed) deliver(b *fcBatch) {
	defer b.cancel()
	var (
		key   string
		body  []byte
		items []*fcItem
		parts []part // what is left of refused requests, sent first, in order
	)
	retry := &retrier{d: f.d, msg: "trail client: delivery failed; retrying"}
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
			f.abandon(b)
			return
		}
		if key == "" {
			n, from := min(len(b.items), int(f.d.maxEvents.Load())), ""
			if len(parts) > 0 {
				n, from = min(n, parts[0].n), parts[0].from
			}
			items = slices.Clone(b.items[:n])
			body = ndjson(items, 0, func(it *fcItem) []byte { return it.body })
			key = newKey()
			if from != "" {
				key = subKey(from, items, func(it *fcItem) uint64 { return it.seq })
			}
		}
		b.mu.Unlock()

		window := items
		a := f.d.post(b.ctx, key, body, len(items), func() bool {
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
			f.abandon(b)
			return
		}
		if errors.Is(a.err, errBatchChanged) {
			continue // a caller left just before the body went: send without its event
		}
		switch a.out {
		case outOK:
			f.d.acknowledged(a, key, len(items))
			b.resolve(items, func(int) error { return nil })
			parts = settle(parts, len(items), key)
			b.mu.Lock()
			b.sent = false
			b.mu.Unlock()
			key = ""
			retry.reset()
		case outRetry:
			retry.failed(b.ctx, a.err, a, len(items), key)
		case outTooLarge:
			if len(items) > 1 {
				f.d.tooLarge(len(items))
				key = ""
				b.mu.Lock()
				b.sent = false
				b.mu.Unlock()
				continue
			}
			fallthrough
		case outRefused, outAuth:
			if a.out == outRefused && len(items) > 1 && eventErrors(a.prob, len(items)) == nil {
				h := f.d.split(len(items), key, a)
				parts = settle(parts, len(items), key, h, len(items)-h)
			} else {
				parts = settle(parts, len(items), key, len(items)-f.refuse(b, items, a))
			}
			b.mu.Lock()
			b.sent = false
			b.mu.Unlock()
			key = ""
			retry.reset()
		}
	}
}

// refuse answers the callers of items the server refused (a): every one
// of them when the refusal is of the batch as a whole, else those of the
// events it names; the others stay in b, to be sent again. It returns how
// many it answered.
func (f *failClosed) refuse(b *fcBatch, items []*fcItem, a *attempt) int {
	f.d.deliveryFailed(a.err)
	perEvent := eventErrors(a.prob, len(items))
	if a.out != outRefused || perEvent == nil {
		f.d.refused.Add(int64(len(items)))
		f.d.log.Warn("trail client: the server refused a batch", "events", len(items), "err", a.err)
		err := fmt.Errorf("client: event not recorded: %w", a.err)
		b.resolve(items, func(int) error { return err })
		return len(items)
	}
	var bad []*fcItem
	var errs []error
	for i, it := range items {
		if fe, ok := perEvent[i]; ok {
			bad = append(bad, it)
			errs = append(errs, fmt.Errorf("client: trail serve refused the event (HTTP %d): %w", a.status, eventRefused(a.prob, fe)))
		}
	}
	f.d.refused.Add(int64(len(bad)))
	f.d.log.Warn("trail client: the server refused events of a batch; sending the others again", "refused", len(bad), "events", len(items))
	b.resolve(bad, func(i int) error { return errs[i] })
	return len(bad)
}

// abandon answers whoever still waits in b when the sender stops.
func (f *failClosed) abandon(b *fcBatch) {
	b.mu.Lock()
	maybe := b.sent
	b.mu.Unlock()
	err := fmt.Errorf("client: event not recorded (it was never sent): %w", ErrRemoteClosed)
	if maybe {
		err = fmt.Errorf("%w: the recorder closed before the server answered: %w", ErrMaybeStored, ErrRemoteClosed)
	}
	b.resolve(slices.Clone(b.items), func(int) error { return err })
}
