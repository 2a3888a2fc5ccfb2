package client

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/trailaudit/trail"
)

// spooler is the Spool engine: Record returns once its event is fsync'd
// into the spool, and the sender reads the spool in order and delivers one
// batch at a time, recording each batch in the spool before sending it,
// so that a restart resends it as it was.
type spooler struct {
	d        *deliverer
	sp       *spool
	flushReq atomic.Int64 // Flush calls waiting: a batch goes without waiting to fill
	carry    []spoolEntry // read from the spool, not yet batched (the sender's alone)
	parts    []part       // what the carry begins with: the rest of batches cut short, each to go as a batch (the sender's)
}

var _ engine = (*spooler)(nil)

// newSpooler returns the Spool engine over d and the opened spool sp,
// whose events count as pending.
func newSpooler(d *deliverer, sp *spool) *spooler {
	d.pending.Store(int64(sp.report.Pending))
	return &spooler{d: d, sp: sp}
}

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
	from        string // the key of the refused batch it was cut from; "" for a new batch
	first, last uint64
	skip        []uint64
	recs        []spoolEntry
	size        int
}

// add appends e to the batch's events.
func (b *spoolBatch) add(e spoolEntry) {
	b.recs = append(b.recs, e)
	b.size += len(e.data) + 1
}

// record encodes ev and appends it to the spool, returning once it is
// fsync'd (or ctx ends first).
func (s *spooler) record(ctx context.Context, ev *trail.Event) error {
	body, err := encode(ctx, ev)
	if err != nil {
		return err
	}
	_, g, err := s.sp.append(recEvent, body)
	if err != nil {
		if errors.Is(err, errSpoolClosed) {
			return ErrRemoteClosed
		}
		return fmt.Errorf("client: event not recorded: %w", err)
	}
	s.d.pending.Add(1)
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

// flush waits until the spool is acknowledged up to its last event at the
// call, and reports the events refused meanwhile.
func (s *spooler) flush(ctx context.Context) error {
	target := s.sp.lastEventSeq()
	refused := s.d.refused.Load()
	s.flushReq.Add(1)
	defer s.flushReq.Add(-1)
	s.d.kick()
	for {
		ack, ch := s.sp.acked()
		if ack >= target {
			break
		}
		select {
		case <-ch:
		case <-s.d.done:
			if ack, _ := s.sp.acked(); ack >= target {
				continue
			}
			return ErrRemoteClosed
		case <-ctx.Done():
			return fmt.Errorf("client: flush: %d events not yet delivered: %w", s.d.pending.Load(), context.Cause(ctx))
		}
	}
	if n := s.d.refused.Load() - refused; n > 0 {
		return fmt.Errorf("client: flush: the server refused %d events; they are in %s", n, s.sp.dir+"/"+deadName)
	}
	return nil
}

// run is the Spool sender: it resends first the batch open at the
// restart, if any, then reads the spool in order and delivers one batch at
// a time.
func (s *spooler) run() {
	rd := s.sp.newReader()
	if ob := s.sp.openBatch; ob != nil {
		b := s.rebuild(rd, ob)
		s.d.log.Info("trail client: resending the batch sent before the restart", "key", b.key, "events", len(b.recs))
		if !s.deliver(b) {
			return
		}
	}
	for {
		b := s.collect(rd)
		if b == nil {
			return
		}
		if !s.deliver(b) {
			return
		}
	}
}

// close closes the spool once the sender has stopped. What it still holds
// stays for the next start: Close's error (flushErr, else the spool's)
// says how many events.
func (s *spooler) close(flushErr error) error {
	err := flushErr
	if cerr := s.sp.close(); cerr != nil && err == nil {
		err = cerr
	}
	if n := s.d.pending.Load(); n > 0 {
		s.d.log.Info("trail client: events left in the spool for the next start", "dir", s.sp.dir, "pending", n)
		if err != nil {
			err = fmt.Errorf("client: %d events stay in the spool for the next start: %w", n, err)
		}
	}
	return err
}

// recovery returns what opening the spool found, with any damage found
// since.
func (s *spooler) recovery() *RecoveryReport { return s.sp.recovery() }

// next returns the next spool event to batch: from the carry, then the
// reader.
func (s *spooler) next(rd *spoolReader) (spoolEntry, bool) {
	if len(s.carry) > 0 {
		e := s.carry[0]
		s.carry = s.carry[1:]
		return e, true
	}
	for {
		rec, ok, err := rd.next()
		if err != nil {
			s.d.log.Error("trail client: reading the spool", "err", err)
			s.d.deliveryFailed(err)
			return spoolEntry{}, false
		}
		if !ok {
			return spoolEntry{}, false
		}
		if rec.kind != recEvent || rec.seq <= s.sp.recAck {
			continue
		}
		return spoolEntry{seq: rec.seq, data: rec.payload}, true
	}
}

// pushBack puts e back, to come first from next.
func (s *spooler) pushBack(e spoolEntry) { s.carry = append([]spoolEntry{e}, s.carry...) }

// rebuild reads back the batch that was open at the restart, exactly as
// it was sent.
func (s *spooler) rebuild(rd *spoolReader, ob *batchRecord) *spoolBatch {
	b := &spoolBatch{key: ob.Key, first: ob.First, last: ob.Last, skip: ob.Skip}
	for {
		e, ok := s.next(rd)
		if !ok {
			break
		}
		if e.seq > ob.Last {
			s.pushBack(e)
			break
		}
		if e.seq < ob.First || slices.Contains(ob.Skip, e.seq) {
			continue
		}
		b.add(e)
	}
	return b
}

// collect waits for the next batch; nil when the sender must stop.
func (s *spooler) collect(rd *spoolReader) *spoolBatch {
	b := &spoolBatch{}
	limit := 0
	if len(s.parts) > 0 {
		limit, b.from = s.parts[0].n, s.parts[0].from
	}
	taken := func() *spoolBatch {
		s.parts = settle(s.parts, len(b.recs), "")
		return b
	}
	var deadline time.Time
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		ch := s.sp.watch()
		full := false
		for !full {
			e, ok := s.next(rd)
			if !ok {
				break
			}
			if e.dead {
				if len(b.recs) > 0 {
					b.skip = append(b.skip, e.seq)
					b.last = e.seq
				} else {
					// Resolved already, and so is everything before it.
					if err := s.sp.setAck(e.seq); err != nil {
						s.d.log.Error("trail client: writing the spool's ack pointer", "err", err)
					}
				}
				continue
			}
			fits, last := s.d.admit(len(b.recs), b.size, len(e.data))
			if !fits {
				s.pushBack(e)
				full = true
				break
			}
			if len(b.recs) == 0 {
				b.first = e.seq
			}
			b.add(e)
			b.last = e.seq
			full = last || len(b.recs) == limit
		}
		if s.d.bg.Err() != nil {
			return nil
		}
		if full {
			return taken()
		}
		if len(b.recs) > 0 {
			now := time.Now()
			if deadline.IsZero() {
				deadline = now.Add(s.d.o.BatchWait)
			}
			if !now.Before(deadline) || s.flushReq.Load() > 0 {
				return taken()
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
		case <-s.d.wake:
		case <-tc:
		case <-s.d.bg.Done():
		}
	}
}

// recordBatch gives b its key (fresh, or derived from the batch it was
// cut from) and writes its batch record.
func (s *spooler) recordBatch(b *spoolBatch) error {
	key := newKey()
	if b.from != "" {
		key = subKey(b.from, b.recs, func(e spoolEntry) uint64 { return e.seq })
	}
	payload, err := json.Marshal(batchRecord{First: b.first, Last: b.last, Key: key, Skip: b.skip})
	if err != nil {
		return fmt.Errorf("client: encoding a batch record: %w", err)
	}
	if _, err := s.sp.appendSync(recBatch, payload); err != nil {
		return fmt.Errorf("client: recording a batch in the spool: %w", err)
	}
	b.key = key
	return nil
}

// deliver delivers b: every event in it ends acknowledged or in
// dead.ndjson. It returns false when the sender must stop (b stays in the
// spool).
func (s *spooler) deliver(b *spoolBatch) bool {
	var body []byte
	bodyKey := ""
	retry := &retrier{d: s.d, msg: "trail client: delivery failed; the events wait in the spool"}
	for {
		if s.d.bg.Err() != nil {
			return false
		}
		if len(b.recs) == 0 {
			s.ack(b.last)
			return true
		}
		if b.key == "" {
			if err := s.recordBatch(b); err != nil {
				if !retry.failed(s.d.bg, err, nil, len(b.recs), b.key) {
					return false
				}
				continue
			}
		}
		if bodyKey != b.key {
			body, bodyKey = ndjson(b.recs, b.size, func(e spoolEntry) []byte { return e.data }), b.key
		}
		a := s.d.post(s.d.bg, b.key, body, len(b.recs), nil)
		if s.d.bg.Err() != nil && a.out != outOK {
			return false
		}
		switch a.out {
		case outOK:
			s.d.acknowledged(a, b.key, len(b.recs))
			s.d.pending.Add(-int64(len(b.recs)))
			s.ack(b.last)
			return true
		case outRetry, outAuth:
			// A wrong key or URL is not the events' fault: they wait in
			// the spool until it is fixed.
			if !retry.failed(s.d.bg, a.err, a, len(b.recs), b.key) {
				return false
			}
		case outTooLarge:
			if len(b.recs) > 1 {
				s.d.tooLarge(len(b.recs))
				s.cut(b, len(b.recs)/2)
				continue
			}
			fallthrough
		case outRefused:
			perEvent := eventErrors(a.prob, len(b.recs))
			if perEvent == nil && len(b.recs) > 1 {
				s.cut(b, s.d.split(len(b.recs), b.key, a))
				retry.reset()
				continue
			}
			if perEvent == nil {
				perEvent = map[int][]trail.FieldError{}
				for i := range b.recs {
					perEvent[i] = a.prob.Errors
				}
			}
			if err := s.dead(b, a, perEvent); err != nil {
				if !retry.failed(s.d.bg, err, nil, len(b.recs), b.key) {
					return false
				}
				continue
			}
			retry.reset()
		}
	}
}

// cut keeps the first h of b's events (b, cut from the batch it was,
// then needs a new batch record) and carries the rest, with the skipped
// events among them, to the next batch, which they make up alone.
func (s *spooler) cut(b *spoolBatch, h int) {
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
	s.carry = append(rest, s.carry...)
	s.parts = slices.Insert(s.parts, 0, part{n: len(b.recs) - h, from: b.key})
	b.recs, b.skip, b.last, b.from, b.key = b.recs[:h], skip, keepLast, b.key, ""
	b.size = 0
	for _, e := range b.recs {
		b.size += len(e.data) + 1
	}
}

// dead moves the refused events of b to dead.ndjson (durably), reports
// them, and takes them out of b, which, cut from the batch it was, then
// needs a new batch record.
func (s *spooler) dead(b *spoolBatch, a *attempt, perEvent map[int][]trail.FieldError) error {
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
	if err := s.sp.deadLetter(lines); err != nil {
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
		s.d.log.Error("trail client: the server refused an event; moved to the dead-letter file", "seq", e.seq, "file", s.sp.dir+"/"+deadName, "err", err)
		s.d.deliveryFailed(err)
	}
	n := int64(len(b.recs) - len(kept))
	s.d.refused.Add(n)
	s.d.dead.Add(n)
	s.d.pending.Add(-n)
	slices.Sort(b.skip)
	b.recs, b.size, b.from, b.key = kept, size, b.key, ""
	return nil
}

// mustJSON encodes v, a value that always encodes.
func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

// ack moves the ack pointer after a resolved batch.
func (s *spooler) ack(last uint64) {
	if err := s.sp.setAck(last); err != nil {
		s.d.log.Error("trail client: writing the spool's ack pointer (a restart resends the last batch, as a replay)", "err", err)
		s.d.deliveryFailed(err)
	}
}
