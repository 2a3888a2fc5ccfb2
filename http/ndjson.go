package http

import (
	"bytes"
	"io"
	"net/http"
	"runtime"
	"sync"

	"github.com/trailaudit/trail"
)

// chunkLines is how many lines of an NDJSON batch are parsed as one piece
// of work (~32 KB of sample events, ~130 µs to parse): enough that handing
// one to another goroutine costs nothing beside it, few enough that the
// last piece, parsed after the body's end, is short.
const chunkLines = 64

// readNDJSON reads a batch of NDJSON (mt "" when it came with no
// Content-Type: then only an empty body is taken) and parses its lines
// while the rest of the body is still arriving, on every core: each run of
// chunkLines complete lines goes to a parser as soon as it is read, so
// what is left to do once the last byte is in is the last run, not the
// whole batch. The events are the body's lines (spaces trimmed, empty ones
// skipped, each a slice of the body read, never copied). It returns the
// events and each one's error (nil when it parsed), in order, or the error
// that refuses the whole body, in this order: the body over
// Limits.MaxBatchBody, a read error, a body with no Content-Type, a line
// over trail.MaxEventBytes (its newline not counted), more lines than
// Limits.MaxBatch. Lines are parsed only while none of those has been
// seen.
func (s *Server) readNDJSON(w http.ResponseWriter, r *http.Request, mt string) ([]*trail.Event, []error, error) {
	limit := s.c.Limits.MaxBatchBody
	body := http.MaxBytesReader(w, r.Body, limit)
	p := newLineParser(mt != "", s.c.Limits.MaxBatch)
	defer p.wait() // every parser is done before the request is
	buf := make([]byte, 0, bodyCap(r, limit))
	var start, total int // buf[start:] is a line not yet complete
	for {
		if len(buf) == cap(buf) {
			// A body longer than it said (or that said nothing: chunked).
			// Only the incomplete line moves: the lines before it are
			// slices of the old buffer, which keeps them.
			size := max(min(2*cap(buf), int(limit)+bytes.MinRead), 2*(len(buf)-start))
			next := make([]byte, len(buf)-start, size)
			copy(next, buf[start:])
			buf, start = next, 0
		}
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf, total = buf[:len(buf)+n], total+n
		// Only the bytes just read can hold a newline past start.
		if i := bytes.LastIndexByte(buf[len(buf)-n:], '\n'); i >= 0 {
			end := len(buf) - n + i + 1
			p.add(buf[start:end])
			start = end
		}
		if err == io.EOF {
			p.add(buf[start:]) // the last line, which has no newline
			break
		}
		if err := readError(err, limit); err != nil {
			p.parse = false
			return nil, nil, err
		}
	}
	err := untyped(mt, total, batchTypes)
	if err == nil && p.tooLong {
		err = trail.Errorf(trail.EINVALID, "reading the events: a line is over %d bytes", trail.MaxEventBytes)
	}
	if err == nil {
		err = s.batchSize(p.n)
	}
	if err != nil {
		p.parse = false // nor what is left
		return nil, nil, err
	}
	p.wait()
	evs := make([]*trail.Event, 0, p.n)
	errs := make([]error, 0, p.n)
	for _, c := range p.done {
		evs, errs = append(evs, c.evs...), append(errs, c.errs...)
	}
	return evs, errs, nil
}

// lineChunk is a run of a batch's lines and what parsing them gave.
type lineChunk struct {
	lines [][]byte
	evs   []*trail.Event
	errs  []error
}

func (c *lineChunk) parse() {
	c.evs, c.errs = make([]*trail.Event, len(c.lines)), make([]error, len(c.lines))
	for i, line := range c.lines {
		c.evs[i], c.errs[i] = trail.ParseEvent(line)
	}
}

// lineParser splits the lines of a batch as readNDJSON reads them and has
// them parsed, a chunk at a time, by up to one goroutine per core beside
// the reader (started with the first full chunk, so a small batch is
// parsed in the request's goroutine alone). A chunk the parsers have no
// room for is parsed by the reader at once: a reader ahead of its parsers
// helps them rather than queueing the whole batch.
type lineParser struct {
	parse   bool // false once the batch is refused, or when it will be (no Content-Type)
	max     int  // Limits.MaxBatch: lines past it are counted, not parsed
	n       int  // lines so far
	tooLong bool // a line over trail.MaxEventBytes was read
	cur     *lineChunk
	done    []*lineChunk // every chunk handed out, in order
	work    chan *lineChunk
	wg      sync.WaitGroup
	waited  bool
}

func newLineParser(parse bool, max int) *lineParser {
	return &lineParser{parse: parse, max: max, cur: &lineChunk{}}
}

// add takes complete lines (each ending in a newline but perhaps the last).
func (p *lineParser) add(text []byte) {
	for line := range bytes.Lines(text) {
		if len(bytes.TrimSuffix(line, []byte{'\n'})) > trail.MaxEventBytes {
			p.tooLong, p.parse = true, false
		}
		if line = bytes.TrimSpace(line); len(line) == 0 {
			continue
		}
		if p.n++; p.n > p.max {
			p.parse = false
		}
		if !p.parse {
			continue
		}
		p.cur.lines = append(p.cur.lines, line)
		if len(p.cur.lines) == chunkLines {
			p.handOut()
		}
	}
}

// handOut gives the current chunk to a parser.
func (p *lineParser) handOut() {
	c := p.cur
	p.done, p.cur = append(p.done, c), &lineChunk{}
	if p.work == nil {
		procs := runtime.GOMAXPROCS(0) - 1
		if procs < 1 {
			c.parse()
			return
		}
		p.work = make(chan *lineChunk, 2*procs)
		for range procs {
			p.wg.Go(func() {
				for c := range p.work {
					c.parse()
				}
			})
		}
	}
	select {
	case p.work <- c:
	default:
		c.parse()
	}
}

// wait parses what is left, in the caller's goroutine beside the parsers,
// and returns when every chunk is parsed (or, once the batch is refused,
// when the parsers have stopped). It may be called more than once.
func (p *lineParser) wait() {
	if p.waited {
		return
	}
	p.waited = true
	if p.parse && len(p.cur.lines) > 0 {
		c := p.cur
		p.done = append(p.done, c)
		c.parse()
	}
	if p.work != nil {
		close(p.work)
		for c := range p.work {
			if p.parse { // else the batch is refused: its events are not needed
				c.parse()
			}
		}
	}
	p.wg.Wait()
}
