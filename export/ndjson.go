package export

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"

	"github.com/trailaudit/trail"
)

// bufSize is the output buffer of the JSON writers.
const bufSize = 32 << 10

// jsonLines writes one JSON value a line through a buffer. It is the common
// part of the NDJSON and OCSF writers.
type jsonLines struct {
	buf    *bufio.Writer
	line   *bytes.Buffer // the line being encoded
	enc    *json.Encoder // encodes into line
	err    error         // sticky: the first error from the underlying writer
	closed bool
}

func newJSONLines(w io.Writer) jsonLines {
	line := new(bytes.Buffer)
	enc := json.NewEncoder(line)
	// The output is data, not HTML: "<script>" stays "<script>", and
	// escaping for a web page is the page's job.
	enc.SetEscapeHTML(false)
	return jsonLines{buf: bufio.NewWriterSize(w, bufSize), line: line, enc: enc}
}

// check returns the error a Write must fail with before it writes anything.
func (j *jsonLines) check(ev *trail.Event) error {
	switch {
	case j.closed:
		return errClosed
	case j.err != nil:
		return j.err
	case ev == nil:
		return errNilEvent
	}
	return nil
}

// encode writes v and a newline. A value JSON cannot hold (a NaN in the
// context) is an EINVALID error and writes nothing, so the output stays
// whole; an error from the underlying writer sticks.
func (j *jsonLines) encode(v any) error {
	j.line.Reset()
	if err := j.enc.Encode(v); err != nil {
		return trail.Errorf(trail.EINVALID, "export: event cannot be written as JSON: %w", err)
	}
	if _, err := j.buf.Write(j.line.Bytes()); err != nil {
		j.err = err
		return err
	}
	return nil
}

// Close flushes the buffer.
func (j *jsonLines) Close() error {
	if j.closed {
		return nil
	}
	j.closed = true
	if j.err != nil {
		return j.err
	}
	if err := j.buf.Flush(); err != nil {
		j.err = err
		return err
	}
	return nil
}

// ndjsonWriter writes the wire form of each event, one a line.
type ndjsonWriter struct {
	jsonLines
}

func newNDJSONWriter(w io.Writer) *ndjsonWriter {
	return &ndjsonWriter{jsonLines: newJSONLines(w)}
}

// Write writes ev as one line of JSON: encoding/json of trail.Event, the
// form the HTTP API and trail.ParseEvent read.
func (n *ndjsonWriter) Write(ev *trail.Event) error {
	if err := n.check(ev); err != nil {
		return err
	}
	return n.encode(ev)
}
