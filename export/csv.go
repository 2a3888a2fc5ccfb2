package export

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/trailaudit/trail"
)

// csvColumns are the columns of a CSV export, in order; the first row of
// the output names them. Lists are joined with ';': targets as type:id,
// violations as rule:path, redacted as paths. context is the event's context
// as compact JSON. Timestamps are RFC 3339 in UTC; an absent value is an
// empty cell.
//
// CSV is for reading, not for round trips: a list item holding ';' or ':'
// cannot be told apart, and target names, actor roles, request method, path
// and trace id, and violation messages are left out. NDJSON keeps everything.
var csvColumns = []string{
	"seq", "id", "recorded_at", "occurred_at",
	"action", "category", "outcome",
	"actor_type", "actor_id", "actor_name", "actor_email",
	"targets",
	"ip", "user_agent", "session_id", "request_id",
	"organization", "workspace", "team",
	"correlation_id", "reason", "context",
	"violations", "redacted",
}

// csvNumeric marks the columns that hold numbers. Their cells are written by
// strconv and are never guarded, so a spreadsheet still reads them as
// numbers.
var csvNumeric = map[string]bool{"seq": true}

// csvWriter writes a header row, then one row per event.
type csvWriter struct {
	w       *csv.Writer
	actions trail.ActionResolver
	row     []string
	ctxJSON bytes.Buffer  // the context being encoded
	enc     *json.Encoder // encodes into ctxJSON
	header  bool          // the header row has been written
	err     error         // sticky: the first error from the underlying writer
	closed  bool
}

func newCSVWriter(w io.Writer, actions trail.ActionResolver) *csvWriter {
	c := &csvWriter{w: csv.NewWriter(w), actions: actions, row: make([]string, len(csvColumns))}
	c.enc = json.NewEncoder(&c.ctxJSON)
	c.enc.SetEscapeHTML(false)
	return c
}

// Write writes ev as one row. Every text cell goes through csvCell.
func (c *csvWriter) Write(ev *trail.Event) error {
	switch {
	case c.closed:
		return errClosed
	case c.err != nil:
		return c.err
	case ev == nil:
		return errNilEvent
	}
	if err := c.writeHeader(); err != nil {
		return err
	}
	var ctx string
	if len(ev.Context) > 0 {
		c.ctxJSON.Reset()
		if err := c.enc.Encode(ev.Context); err != nil {
			return trail.Errorf(trail.EINVALID, "export: event context cannot be written as JSON: %w", err)
		}
		ctx = strings.TrimSuffix(c.ctxJSON.String(), "\n")
	}
	category, outcome := categoryOutcome(ev, resolve(c.actions, ev))
	r := c.row[:0]
	if ev.Seq != 0 {
		r = append(r, strconv.FormatUint(ev.Seq, 10)) // numeric: not guarded
	} else {
		r = append(r, "")
	}
	r = append(r,
		csvCell(ev.ID),
		formatTime(ev.RecordedAt),
		formatTime(ev.OccurredAt),
		csvCell(ev.Action),
		csvCell(category),
		csvCell(string(outcome)),
		csvCell(string(ev.Actor.Type)),
		csvCell(ev.Actor.ID),
		csvCell(ev.Actor.Name),
		csvCell(ev.Actor.Email),
		csvCell(joinTargets(ev.Targets)),
		csvCell(ev.Request.IP),
		csvCell(ev.Request.UserAgent),
		csvCell(ev.Request.SessionID),
		csvCell(ev.Request.RequestID),
		csvCell(ev.Scope.Organization),
		csvCell(ev.Scope.Workspace),
		csvCell(ev.Scope.Team),
		csvCell(ev.CorrelationID),
		csvCell(ev.Reason),
		csvCell(ctx),
		csvCell(joinViolations(ev.Violations)),
		csvCell(strings.Join(ev.Redacted, ";")),
	)
	return c.writeRow(r)
}

func (c *csvWriter) writeHeader() error {
	if c.header {
		return nil
	}
	c.header = true
	return c.writeRow(csvColumns)
}

func (c *csvWriter) writeRow(r []string) error {
	// csv.Writer buffers; an error from the underlying writer surfaces
	// either here or from a later Flush.
	if err := c.w.Write(r); err != nil {
		c.err = err
		return err
	}
	return nil
}

// Close writes the header row if no event was written, then flushes.
func (c *csvWriter) Close() error {
	if c.closed {
		return nil
	}
	if c.err == nil {
		c.err = c.writeHeader()
	}
	c.closed = true
	if c.err != nil {
		return c.err
	}
	c.w.Flush()
	if err := c.w.Error(); err != nil {
		c.err = err
		return err
	}
	return nil
}

// formatTime formats t as Trail writes timestamps, or "" when it is zero.
// The result starts with a digit, so it needs no guard.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return trail.FormatTime(t)
}

// joinTargets returns the targets as type:id joined with ';'.
func joinTargets(ts []trail.Target) string {
	switch len(ts) {
	case 0:
		return ""
	case 1:
		return ts[0].Type + ":" + ts[0].ID
	}
	var b strings.Builder
	for i, t := range ts {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString(t.Type)
		b.WriteByte(':')
		b.WriteString(t.ID)
	}
	return b.String()
}

// joinViolations returns the violations as rule:path joined with ';'.
func joinViolations(vs []trail.Violation) string {
	if len(vs) == 0 {
		return ""
	}
	var b strings.Builder
	for i, v := range vs {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString(v.Rule)
		b.WriteByte(':')
		b.WriteString(v.Path)
	}
	return b.String()
}

// csvCell guards a text cell against CSV (formula) injection, as OWASP
// recommends (https://owasp.org/www-community/attacks/CSV_Injection): a cell
// that begins with '=', '+', '-', '@', a tab or a carriage return, which a
// spreadsheet may run as a formula, gets a leading single quote, which makes
// the spreadsheet take the cell as text. The full-width forms of = + - @
// (U+FF1D, U+FF0B, U+FF0D, U+FF20), which some spreadsheets also accept as
// formula starters, are guarded too. Quoting of commas, quotes and line
// breaks is encoding/csv's job.
//
// The guard changes the value: a reader that wants the exact text back
// removes a leading quote from a cell whose next character is one of these.
// Numeric columns (seq) are not guarded; they cannot begin with these.
func csvCell(s string) string {
	if needsGuard(s) {
		return "'" + s
	}
	return s
}

// needsGuard reports whether s begins with a character a spreadsheet may
// take as the start of a formula.
func needsGuard(s string) bool {
	if s == "" {
		return false
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return true
	case 0xEF: // the full-width forms are EF BC 8B, EF BC 8D, EF BC 9D, EF BC A0
		r, _ := utf8.DecodeRuneInString(s)
		return r == '\uFF1D' || r == '\uFF0B' || r == '\uFF0D' || r == '\uFF20'
	}
	return false
}
