package client

// The spool is Remote's durable queue in Spool mode: a directory holding
//
//	000001.seg, 000002.seg, …  append-only segment files of records
//	ack                         the ack pointer: {"acked":N}
//	dead.ndjson                 events the server refused, one JSON line each
//
// A record is a frame:
//
//	magic   4 bytes  0xFE 'T' 'S' 'P'
//	length  4 bytes  little-endian length of the body
//	crc     4 bytes  little-endian CRC-32C (Castagnoli) of length and body
//	body    kind (1 byte: 'E' event, 'B' batch), seq (8 bytes little-endian),
//	        then the payload: the event's JSON, or the batch's JSON
//	        {"first":F,"last":L,"key":K,"skip":[…]}
//
// Every record has a seq, one counter for both kinds, increasing and never
// reused. A batch record says that the events with first <= seq <= last,
// less those in skip, were sent as one batch with the idempotency key K; it
// is written (and fsync'd) before the batch is sent. The sender is
// sequential, so a batch record is written only once every event before
// first is resolved (acknowledged or dead-lettered), and a later batch
// record supersedes an earlier one: only the last batch record in the spool
// can be unacknowledged. The ack pointer names the last seq such that every
// event up to it is resolved; it may lag (it is a file written by rename
// after each batch), which is harmless: on open the last batch record, if
// not covered by the ack pointer, is resent with its key and body as they
// were, and the server answers with a replay.
//
// Segments are rotated near segmentSize; a segment whose every record is at
// or below the ack pointer is deleted. A new process always starts a new
// segment, so segments it did not write are never appended to.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/trailaudit/trail"
)

const (
	spoolSegmentSize = 8 << 20  // a segment is rotated once it holds this many bytes
	spoolMaxBody     = 64 << 20 // the largest record body the spool writes or believes
	frameHeader      = 12       // magic, length, crc
	frameMinBody     = 9        // kind and seq
	recEvent         = 'E'
	recBatch         = 'B'
	ackName          = "ack"
	deadName         = "dead.ndjson"
	segSuffix        = ".seg"
)

var (
	frameMagic = []byte{0xFE, 'T', 'S', 'P'}
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
)

// appendFrame appends the frame of one record to dst.
func appendFrame(dst []byte, kind byte, seq uint64, payload []byte) []byte {
	start := len(dst)
	dst = append(dst, frameMagic...)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(frameMinBody+len(payload)))
	dst = append(dst, 0, 0, 0, 0)
	dst = append(dst, kind)
	dst = binary.LittleEndian.AppendUint64(dst, seq)
	dst = append(dst, payload...)
	crc := crc32.Update(0, castagnoli, dst[start+4:start+8])
	crc = crc32.Update(crc, castagnoli, dst[start+frameHeader:])
	binary.LittleEndian.PutUint32(dst[start+8:], crc)
	return dst
}

type frameStatus int

const (
	frameOK    frameStatus = iota
	frameShort             // b ends inside what may be a frame
	frameBad               // b does not begin with a frame
)

// spoolRecord is one record read back from the spool.
type spoolRecord struct {
	kind    byte
	seq     uint64
	payload []byte
}

// parseFrame reads the frame at the start of b, returning it and its size.
func parseFrame(b []byte) (spoolRecord, int, frameStatus) {
	if len(b) < frameHeader {
		if bytes.HasPrefix(frameMagic, b[:min(len(b), len(frameMagic))]) {
			return spoolRecord{}, 0, frameShort
		}
		return spoolRecord{}, 0, frameBad
	}
	if !bytes.Equal(b[:4], frameMagic) {
		return spoolRecord{}, 0, frameBad
	}
	n := binary.LittleEndian.Uint32(b[4:])
	if n < frameMinBody || n > spoolMaxBody {
		return spoolRecord{}, 0, frameBad
	}
	size := frameHeader + int(n)
	if len(b) < size {
		return spoolRecord{}, 0, frameShort
	}
	crc := crc32.Update(0, castagnoli, b[4:8])
	crc = crc32.Update(crc, castagnoli, b[frameHeader:size])
	if crc != binary.LittleEndian.Uint32(b[8:]) {
		return spoolRecord{}, 0, frameBad
	}
	body := b[frameHeader:size]
	return spoolRecord{kind: body[0], seq: binary.LittleEndian.Uint64(body[1:]), payload: body[frameMinBody:]}, size, frameOK
}

// scanned is what scanFrames found in a stretch of a segment.
type scanned struct {
	recs []spoolRecord
	offs []int64    // offset of each record
	bad  [][2]int64 // corrupt stretches followed by a good record: offset, length
	end  int64      // offset after the last record; what follows is a tail no frame could be read from
}

// scanFrames reads the frames of data, which begins at offset base of a
// segment. A frame that does not check is skipped: the scan looks for the
// next good frame after it (by its magic and checksum) and reports the bytes
// in between. Bytes after which no good frame follows are the tail.
func scanFrames(data []byte, base int64) scanned {
	var s scanned
	p := 0
	for p < len(data) {
		rec, n, st := parseFrame(data[p:])
		if st == frameOK {
			s.recs = append(s.recs, rec)
			s.offs = append(s.offs, base+int64(p))
			p += n
			continue
		}
		q := resync(data, p+1)
		if q < 0 {
			break
		}
		s.bad = append(s.bad, [2]int64{base + int64(p), int64(q - p)})
		p = q
	}
	s.end = base + int64(p)
	return s
}

// resync returns the index of the first good frame of data at or after
// from, or -1.
func resync(data []byte, from int) int {
	for from < len(data) {
		j := bytes.Index(data[from:], frameMagic)
		if j < 0 {
			return -1
		}
		q := from + j
		if _, _, st := parseFrame(data[q:]); st == frameOK {
			return q
		}
		from = q + 1
	}
	return -1
}

// batchRecord is the payload of a batch record.
type batchRecord struct {
	First uint64   `json:"first"`
	Last  uint64   `json:"last"`
	Key   string   `json:"key"`
	Skip  []uint64 `json:"skip,omitempty"`
}

// RecoveryReport says what opening a spool found: what was left to deliver
// and any damage. Torn tails are expected after a crash (the records in them
// were never acknowledged to a caller); corrupt records are not, and each
// is also logged at error level.
type RecoveryReport struct {
	Dir       string        // the spool directory
	Segments  int           // segment files found
	Acked     uint64        // the ack pointer: every event up to this seq was resolved
	Pending   int           // events found that were not yet delivered
	OpenBatch string        // the idempotency key of a batch sent before the restart and not known to be acknowledged, resent as it was; "" if none
	Truncated []SpoolDamage // torn tails cut off the last segment
	Corrupt   []SpoolDamage // stretches of records that failed their checksum, skipped (also those found later, while delivering)
}

// SpoolDamage is a stretch of a segment file that held no readable record.
type SpoolDamage struct {
	Segment string // the file's name, like "000003.seg"
	Offset  int64  // where the stretch begins in the file
	Length  int64  // its length in bytes
	// FirstSeq and LastSeq bound the seqs of the records lost, inferred
	// from the good records around the damage (0: unknown). A stretch
	// between two consecutive seqs lost no record.
	FirstSeq, LastSeq uint64
	// Delivered is true when every record lost had been delivered
	// before (its seq is at or below the ack pointer).
	Delivered bool
}

// String describes the damage for a log line: file, offset, length and
// the seqs lost.
func (d SpoolDamage) String() string {
	seqs := "seqs unknown"
	switch {
	case d.FirstSeq > 0 && d.LastSeq >= d.FirstSeq:
		seqs = fmt.Sprintf("seq %d..%d", d.FirstSeq, d.LastSeq)
	case d.FirstSeq > 0 && d.LastSeq == 0:
		seqs = fmt.Sprintf("seq %d and after", d.FirstSeq)
	case d.FirstSeq > 0:
		seqs = "no record lost"
	}
	return fmt.Sprintf("%s: %d bytes at offset %d (%s)", d.Segment, d.Length, d.Offset, seqs)
}

func (r *RecoveryReport) clone() *RecoveryReport {
	if r == nil {
		return nil
	}
	c := *r
	c.Truncated = slices.Clone(r.Truncated)
	c.Corrupt = slices.Clone(r.Corrupt)
	return &c
}

// segInfo is what the spool knows of one segment file.
type segInfo struct {
	idx     int
	size    int64  // bytes durably written (final for all but the active segment)
	lastSeq uint64 // every record in it has a seq at most this
}

func segName(idx int) string { return fmt.Sprintf("%06d%s", idx, segSuffix) }

// syncGen is one group of appends made durable by one fsync.
type syncGen struct {
	done chan struct{}
	err  error // set before done is closed
}

// spool is the on-disk queue. Appends are grouped: each fsync covers every
// record appended while the previous one ran.
type spool struct {
	dir     string
	segSize int64
	log     *slog.Logger

	// Fixed at open.
	recAck    uint64       // resolved at open: records at or below it are not delivered again
	openBatch *batchRecord // the batch to resend first, or nil

	mu         sync.Mutex
	closed     bool
	err        error // sticky: a failed write or fsync breaks the spool
	nextSeq    uint64
	lastEvent  uint64 // seq of the last event record appended (or recovered)
	pend       []byte // frames appended, not yet written
	spare      []byte
	gen        *syncGen
	segs       []segInfo // oldest first; the last is the active one
	notify     chan struct{}
	ack        uint64
	ackNotify  chan struct{}
	report     RecoveryReport
	damageSeen map[string]bool

	f    *os.File // the active segment; the syncer's alone
	kick chan struct{}
	stop chan struct{}
	done chan struct{}

	deadMu sync.Mutex
	dead   *os.File
}

var (
	spoolDirsMu sync.Mutex
	spoolDirs   = map[string]bool{}
)

// openSpool opens the spool in dir, creating it if need be, and recovers
// it: torn tails are cut, corrupt records reported, and the position to
// resume delivery from worked out.
func openSpool(dir string, segSize int64, log *slog.Logger) (*spool, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("client: spool directory: %w", err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("client: creating the spool directory: %w", err)
	}
	spoolDirsMu.Lock()
	if spoolDirs[abs] {
		spoolDirsMu.Unlock()
		return nil, fmt.Errorf("client: spool %s is already open in this process", abs)
	}
	spoolDirs[abs] = true
	spoolDirsMu.Unlock()
	s := &spool{dir: abs, segSize: segSize, log: log, gen: &syncGen{done: make(chan struct{})},
		notify: make(chan struct{}), ackNotify: make(chan struct{}), damageSeen: map[string]bool{},
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	if err := s.recover(); err != nil {
		s.release()
		return nil, err
	}
	go s.syncLoop()
	return s, nil
}

func (s *spool) release() {
	spoolDirsMu.Lock()
	delete(spoolDirs, s.dir)
	spoolDirsMu.Unlock()
}

// readAck reads the ack pointer; a missing file is 0.
func (s *spool) readAck() (uint64, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, ackName))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("client: reading the spool's ack pointer: %w", err)
	}
	var a struct {
		Acked *uint64 `json:"acked"`
	}
	if err := json.Unmarshal(b, &a); err != nil || a.Acked == nil {
		// Written by rename, so this is damage, not a torn write. Starting
		// from 0 resends what the spool still holds; the batch records
		// make those resends replays.
		s.log.Error("trail client: the spool's ack pointer is unreadable; resending what the spool holds", "dir", s.dir, "content", string(b))
		return 0, nil
	}
	return *a.Acked, nil
}

// recover scans the segments and sets the spool up to append and deliver.
func (s *spool) recover() error {
	os.Remove(filepath.Join(s.dir, ackName+".tmp"))
	ack, err := s.readAck()
	if err != nil {
		return err
	}
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("client: reading the spool directory: %w", err)
	}
	var idxs []int
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), segSuffix)
		if !ok || e.IsDir() {
			continue
		}
		if n, err := strconv.Atoi(name); err == nil && n > 0 {
			idxs = append(idxs, n)
		}
	}
	slices.Sort(idxs)
	rep := RecoveryReport{Dir: s.dir, Segments: len(idxs)}
	var (
		maxSeq, lastEvent uint64
		prevGood          uint64
		events            [][2]uint64 // runs of consecutive event seqs above the ack pointer
		lastBatch         *batchRecord
		// damage waiting for the next good seq to bound it
		openDamage []int
		// segments whose trailing damage waits for the next good seq
		openSegs []int
	)
	good := func(seq uint64) {
		for _, i := range openDamage {
			rep.Corrupt[i].LastSeq = seq - 1
		}
		for _, i := range openSegs {
			s.segs[i].lastSeq = seq - 1
		}
		openDamage, openSegs = nil, nil
		prevGood = seq
	}
	for n, idx := range idxs {
		name := segName(idx)
		path := filepath.Join(s.dir, name)
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("client: reading spool segment: %w", err)
		}
		sc := scanFrames(data, 0)
		ri, bi := 0, 0
		info := segInfo{idx: idx, size: int64(len(data))}
		// Walk records and damage in file order.
		for ri < len(sc.recs) || bi < len(sc.bad) {
			if bi < len(sc.bad) && (ri == len(sc.recs) || sc.bad[bi][0] < sc.offs[ri]) {
				rep.Corrupt = append(rep.Corrupt, SpoolDamage{Segment: name, Offset: sc.bad[bi][0], Length: sc.bad[bi][1], FirstSeq: prevGood + 1})
				openDamage = append(openDamage, len(rep.Corrupt)-1)
				bi++
				continue
			}
			rec := sc.recs[ri]
			ri++
			good(rec.seq)
			maxSeq = max(maxSeq, rec.seq)
			info.lastSeq = max(info.lastSeq, rec.seq)
			switch rec.kind {
			case recEvent:
				lastEvent = max(lastEvent, rec.seq)
				if rec.seq > ack {
					if k := len(events) - 1; k >= 0 && events[k][1]+1 == rec.seq {
						events[k][1] = rec.seq
					} else {
						events = append(events, [2]uint64{rec.seq, rec.seq})
					}
				}
			case recBatch:
				var b batchRecord
				if err := json.Unmarshal(rec.payload, &b); err != nil {
					s.log.Error("trail client: unreadable batch record in the spool", "segment", name, "seq", rec.seq, "err", err)
					continue
				}
				lastBatch = &b
			}
		}
		if sc.end < int64(len(data)) {
			d := SpoolDamage{Segment: name, Offset: sc.end, Length: int64(len(data)) - sc.end, FirstSeq: prevGood + 1}
			if n == len(idxs)-1 {
				// The tail of the last segment: a write torn by a crash.
				// Nothing in it was acknowledged to a caller.
				if err := truncateSync(path, sc.end); err != nil {
					return err
				}
				info.size = sc.end
				rep.Truncated = append(rep.Truncated, d)
			} else {
				rep.Corrupt = append(rep.Corrupt, d)
				openDamage = append(openDamage, len(rep.Corrupt)-1)
				openSegs = append(openSegs, len(s.segs))
			}
		}
		s.segs = append(s.segs, info)
	}
	for _, i := range openSegs {
		s.segs[i].lastSeq = maxSeq
	}
	s.recAck = ack
	if lastBatch != nil && lastBatch.Last > ack {
		s.openBatch = lastBatch
		s.recAck = max(ack, lastBatch.First-1)
		rep.OpenBatch = lastBatch.Key
	}
	for _, run := range events {
		if run[1] > s.recAck {
			rep.Pending += int(run[1] - max(run[0], s.recAck+1) + 1)
		}
	}
	if s.openBatch != nil {
		for _, q := range s.openBatch.Skip { // refused before the restart
			if q > s.recAck && slices.ContainsFunc(events, func(run [2]uint64) bool { return run[0] <= q && q <= run[1] }) {
				rep.Pending--
			}
		}
	}
	rep.Acked = s.recAck
	for i := range rep.Corrupt {
		d := &rep.Corrupt[i]
		d.Delivered = d.LastSeq != 0 && d.LastSeq <= s.recAck
		s.damageSeen[d.Segment+"@"+strconv.FormatInt(d.Offset, 10)] = true
		s.log.Error("trail client: corrupt records in the spool were skipped", "dir", s.dir, "damage", d.String(), "delivered_before", d.Delivered)
	}
	for _, d := range rep.Truncated {
		s.log.Warn("trail client: cut a torn tail off the spool", "dir", s.dir, "damage", d.String())
	}
	s.ack, s.lastEvent, s.nextSeq = s.recAck, lastEvent, max(maxSeq, ack)+1
	s.report = rep

	// Drop what is wholly delivered, then start a fresh segment.
	next := 1
	if len(idxs) > 0 {
		next = idxs[len(idxs)-1] + 1
	}
	var keep []segInfo
	for _, g := range s.segs {
		if g.lastSeq <= s.recAck || g.size == 0 {
			if err := os.Remove(filepath.Join(s.dir, segName(g.idx))); err != nil {
				s.log.Warn("trail client: removing a delivered spool segment", "segment", segName(g.idx), "err", err)
			}
			continue
		}
		keep = append(keep, g)
	}
	s.segs = keep
	f, err := os.OpenFile(filepath.Join(s.dir, segName(next)), os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("client: creating a spool segment: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		f.Close()
		return err
	}
	s.f = f
	s.segs = append(s.segs, segInfo{idx: next, lastSeq: 0})
	if rep.Pending > 0 || len(rep.Corrupt) > 0 || len(rep.Truncated) > 0 {
		s.log.Info("trail client: spool recovered", "dir", s.dir, "pending", rep.Pending, "acked", rep.Acked,
			"open_batch", rep.OpenBatch, "corrupt", len(rep.Corrupt), "truncated", len(rep.Truncated))
	}
	return nil
}

func truncateSync(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("client: cutting a torn spool tail: %w", err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("client: cutting a torn spool tail: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("client: cutting a torn spool tail: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("client: opening the spool directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("client: syncing the spool directory: %w", err)
	}
	return nil
}

// append adds a record. It is durable once the returned generation is done
// with no error.
func (s *spool) append(kind byte, payload []byte) (uint64, *syncGen, error) {
	if len(payload) > spoolMaxBody-frameMinBody {
		return 0, nil, fmt.Errorf("client: a record of %d bytes is over the spool's limit of %d", len(payload), spoolMaxBody-frameMinBody)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, nil, errSpoolClosed
	}
	if s.err != nil {
		s.mu.Unlock()
		return 0, nil, s.err
	}
	seq := s.nextSeq
	s.nextSeq++
	if kind == recEvent {
		s.lastEvent = seq
	}
	s.pend = appendFrame(s.pend, kind, seq, payload)
	g := s.gen
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
	return seq, g, nil
}

var errSpoolClosed = errors.New("client: the spool is closed")

// appendSync appends a record and waits until it is durable.
func (s *spool) appendSync(kind byte, payload []byte) (uint64, error) {
	seq, g, err := s.append(kind, payload)
	if err != nil {
		return 0, err
	}
	<-g.done
	return seq, g.err
}

// syncLoop writes and fsyncs what is appended, one group at a time.
func (s *spool) syncLoop() {
	defer close(s.done)
	for {
		select {
		case <-s.kick:
			s.writeGroup()
		case <-s.stop:
			s.writeGroup()
			return
		}
	}
}

func (s *spool) writeGroup() {
	s.mu.Lock()
	if len(s.pend) == 0 {
		s.mu.Unlock()
		return
	}
	buf, g, last := s.pend, s.gen, s.nextSeq-1
	s.pend, s.spare = s.spare[:0], nil
	s.gen = &syncGen{done: make(chan struct{})}
	broken := s.err
	s.mu.Unlock()

	err := broken
	if err == nil {
		err = s.write(buf, last)
	}

	s.mu.Lock()
	if cap(buf) <= 4<<20 {
		s.spare = buf[:0]
	}
	if err != nil && s.err == nil {
		s.err = err
		s.log.Error("trail client: the spool cannot be written; Record fails from now on", "dir", s.dir, "err", err)
	}
	if err == nil {
		close(s.notify)
		s.notify = make(chan struct{})
	}
	s.mu.Unlock()
	g.err = err
	close(g.done)
}

// write writes one group of frames to the active segment, rotating first if
// it is full, and fsyncs.
func (s *spool) write(buf []byte, last uint64) error {
	s.mu.Lock()
	active := s.segs[len(s.segs)-1]
	s.mu.Unlock()
	if active.size > 0 && active.size+int64(len(buf)) > s.segSize {
		if err := s.f.Close(); err != nil {
			return fmt.Errorf("client: closing a spool segment: %w", err)
		}
		idx := active.idx + 1
		f, err := os.OpenFile(filepath.Join(s.dir, segName(idx)), os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("client: creating a spool segment: %w", err)
		}
		s.f = f
		if err := syncDir(s.dir); err != nil {
			return err
		}
		active = segInfo{idx: idx}
		s.mu.Lock()
		s.segs = append(s.segs, active)
		s.mu.Unlock()
	}
	if _, err := s.f.Write(buf); err != nil {
		return fmt.Errorf("client: writing the spool: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("client: syncing the spool: %w", err)
	}
	s.mu.Lock()
	a := &s.segs[len(s.segs)-1]
	a.size += int64(len(buf))
	a.lastSeq = last
	s.mu.Unlock()
	return nil
}

// watch returns a channel closed when more records are durable.
func (s *spool) watch() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.notify
}

// lastEventSeq returns the seq of the last event appended or recovered.
func (s *spool) lastEventSeq() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastEvent
}

// acked returns the ack pointer and a channel closed when it moves.
func (s *spool) acked() (uint64, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ack, s.ackNotify
}

// setAck moves the ack pointer to seq: every event up to it is resolved. It
// writes the pointer durably (by rename) and deletes the segments it covers.
// The pointer moves in memory even when the file cannot be written: the
// batch records keep a resend after a restart from storing twice.
func (s *spool) setAck(seq uint64) error {
	s.mu.Lock()
	if seq <= s.ack {
		s.mu.Unlock()
		return nil
	}
	s.ack = seq
	close(s.ackNotify)
	s.ackNotify = make(chan struct{})
	s.mu.Unlock()
	if err := writeFileAtomic(s.dir, ackName, fmt.Appendf(nil, "{\"acked\":%d}\n", seq)); err != nil {
		return err
	}
	s.mu.Lock()
	var drop []int
	keep := s.segs[:0]
	for i, g := range s.segs {
		if i < len(s.segs)-1 && g.lastSeq <= seq {
			drop = append(drop, g.idx)
			continue
		}
		keep = append(keep, g)
	}
	s.segs = keep
	s.mu.Unlock()
	for _, idx := range drop {
		if err := os.Remove(filepath.Join(s.dir, segName(idx))); err != nil {
			s.log.Warn("trail client: removing a delivered spool segment", "segment", segName(idx), "err", err)
		}
	}
	return nil
}

// writeFileAtomic replaces dir/name with data: a temporary file, fsync'd,
// renamed over it, and the directory fsync'd.
func writeFileAtomic(dir, name string, data []byte) error {
	tmp := filepath.Join(dir, name+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("client: writing %s: %w", name, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		return fmt.Errorf("client: writing %s: %w", name, err)
	}
	return syncDir(dir)
}

// deadLetter appends lines to dead.ndjson and fsyncs it.
func (s *spool) deadLetter(lines []byte) error {
	s.deadMu.Lock()
	defer s.deadMu.Unlock()
	if s.dead == nil {
		f, err := os.OpenFile(filepath.Join(s.dir, deadName), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("client: opening %s: %w", deadName, err)
		}
		if err := syncDir(s.dir); err != nil {
			f.Close()
			return err
		}
		s.dead = f
	}
	if _, err := s.dead.Write(lines); err != nil {
		return fmt.Errorf("client: writing %s: %w", deadName, err)
	}
	if err := s.dead.Sync(); err != nil {
		return fmt.Errorf("client: syncing %s: %w", deadName, err)
	}
	return nil
}

// noteDamage records damage found while reading, once.
func (s *spool) noteDamage(d SpoolDamage) {
	s.mu.Lock()
	k := d.Segment + "@" + strconv.FormatInt(d.Offset, 10)
	if s.damageSeen[k] {
		s.mu.Unlock()
		return
	}
	s.damageSeen[k] = true
	d.Delivered = d.LastSeq != 0 && d.LastSeq <= s.ack
	s.report.Corrupt = append(s.report.Corrupt, d)
	s.mu.Unlock()
	s.log.Error("trail client: corrupt records in the spool were skipped", "dir", s.dir, "damage", d.String())
}

func (s *spool) recovery() *RecoveryReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.report.clone()
}

// segLimit says how far segment idx can be read: its durable size, whether
// it is closed (will not grow), and whether it still exists.
func (s *spool) segLimit(idx int) (size int64, closed, exists bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, g := range s.segs {
		if g.idx == idx {
			return g.size, i < len(s.segs)-1, true
		}
	}
	return 0, true, false
}

func (s *spool) activeIdx() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.segs[len(s.segs)-1].idx
}

// close writes what is appended, and closes the files.
func (s *spool) close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	err := s.f.Close()
	s.deadMu.Lock()
	if s.dead != nil {
		if cerr := s.dead.Close(); err == nil {
			err = cerr
		}
	}
	s.deadMu.Unlock()
	s.release()
	s.mu.Lock()
	if err == nil {
		err = s.err
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("client: closing the spool: %w", err)
	}
	return nil
}

// spoolReader reads the durable records of a spool in order, from the
// oldest segment on, skipping damage (and reporting damage not seen at open).
type spoolReader struct {
	s    *spool
	seg  int   // segment being read
	off  int64 // next offset to read in it
	recs []spoolRecord
	// prevSeq is the last good seq read, to bound damage.
	prevSeq uint64
}

func (s *spool) newReader() *spoolReader {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &spoolReader{s: s, seg: s.segs[0].idx}
}

// next returns the next durable record, or false when there is none yet.
func (rd *spoolReader) next() (spoolRecord, bool, error) {
	for len(rd.recs) == 0 {
		size, closed, exists := rd.s.segLimit(rd.seg)
		if !exists {
			// Deleted once delivered: only possible when read to its end.
			if rd.seg >= rd.s.activeIdx() {
				return spoolRecord{}, false, nil
			}
			rd.seg, rd.off = rd.seg+1, 0
			continue
		}
		if rd.off >= size {
			if !closed {
				return spoolRecord{}, false, nil
			}
			rd.seg, rd.off = rd.seg+1, 0
			continue
		}
		data, err := readRange(filepath.Join(rd.s.dir, segName(rd.seg)), rd.off, size)
		if err != nil {
			return spoolRecord{}, false, err
		}
		sc := scanFrames(data, rd.off)
		name := segName(rd.seg)
		ri, bi := 0, 0
		for ri < len(sc.recs) || bi < len(sc.bad) {
			if bi < len(sc.bad) && (ri == len(sc.recs) || sc.bad[bi][0] < sc.offs[ri]) {
				var lastSeq uint64
				if ri < len(sc.recs) {
					lastSeq = sc.recs[ri].seq - 1
				}
				rd.s.noteDamage(SpoolDamage{Segment: name, Offset: sc.bad[bi][0], Length: sc.bad[bi][1], FirstSeq: rd.prevSeq + 1, LastSeq: lastSeq})
				bi++
				continue
			}
			rd.prevSeq = sc.recs[ri].seq
			ri++
		}
		rd.recs = sc.recs
		rd.off = sc.end
		if sc.end < size {
			if closed {
				rd.s.noteDamage(SpoolDamage{Segment: name, Offset: sc.end, Length: size - sc.end, FirstSeq: rd.prevSeq + 1})
				rd.off = size
			} else if len(sc.recs) == 0 {
				// The active segment's durable size always ends a frame;
				// an unreadable stretch in it is damage too.
				rd.s.noteDamage(SpoolDamage{Segment: name, Offset: sc.end, Length: size - sc.end, FirstSeq: rd.prevSeq + 1})
				rd.off = size
			}
		}
	}
	rec := rd.recs[0]
	rd.recs = rd.recs[1:]
	return rec, true, nil
}

func readRange(path string, from, to int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("client: reading the spool: %w", err)
	}
	defer f.Close()
	buf := make([]byte, to-from)
	if _, err := f.ReadAt(buf, from); err != nil && !(errors.Is(err, io.EOF)) {
		return nil, fmt.Errorf("client: reading the spool: %w", err)
	}
	return buf, nil
}

// deadLine is one line of dead.ndjson.
type deadLine struct {
	Seq      uint64             `json:"seq"`
	Key      string             `json:"key"` // the idempotency key of the refused batch
	FailedAt time.Time          `json:"failed_at"`
	Status   int                `json:"status"`
	Code     string             `json:"code,omitempty"`
	Detail   string             `json:"detail,omitempty"`
	Errors   []trail.FieldError `json:"errors,omitempty"`
	Event    json.RawMessage    `json:"event"`
}
