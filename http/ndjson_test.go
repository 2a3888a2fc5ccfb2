package http

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/par"
	"github.com/trailaudit/trail/internal/sample"
)

// TestReadNDJSON: the lines of a batch parsed while it is read, whatever
// the reads' sizes and whether the body's length is known, are exactly the
// lines of the whole body parsed one by one in order (each event, each
// error at its index); and the body is refused as a whole first (over the
// limit, no Content-Type, a line too long, too many lines), in that order.
func TestReadNDJSON(t *testing.T) {
	var lines []string
	for _, ev := range sample.New(7).Batch(300, time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)) {
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, string(b))
	}
	body := func(edit func(ls []string)) string {
		ls := append([]string(nil), lines...)
		if edit != nil {
			edit(ls)
		}
		return strings.Join(ls, "\n")
	}
	long := `{"action":"user_login_success","reason":"` + strings.Repeat("x", trail.MaxEventBytes) + `"}`
	for _, c := range []struct {
		name, body, mt string
		limits         Limits
		refused        string // the refusal of the whole body; "" for none
	}{
		{name: "one line", body: lines[0], mt: "application/x-ndjson"},
		{name: "300 lines, the last with a newline", body: body(nil) + "\n", mt: "application/x-ndjson"},
		{name: "blank lines, spaces and CRLF", body: "\n  \n" + strings.Join(lines[:150], "\r\n") + "\n\n \t" + lines[150] + " \n", mt: "application/x-ndjson"},
		{name: "bad lines in several chunks", mt: "application/x-ndjson", body: body(func(ls []string) {
			ls[3], ls[64], ls[130], ls[299] = "{not json", `{"action":1}`, strings.Replace(ls[130], `"type":"user"`, `"type":"robot"`, 1), "[]"
		})},
		{name: "empty, no Content-Type", body: ""},
		{name: "no Content-Type", body: lines[0], refused: "no Content-Type"},
		{name: "a line too long", body: body(func(ls []string) { ls[200] = long }), mt: "application/x-ndjson", refused: "a line is over"},
		{name: "too many lines", body: body(nil), mt: "application/x-ndjson", limits: Limits{MaxBatch: 100}, refused: "300 events: a batch may hold 100"},
		{name: "a line too long before too many lines", body: body(func(ls []string) { ls[250] = long }), mt: "application/x-ndjson", limits: Limits{MaxBatch: 100}, refused: "a line is over"},
		{name: "over the limit", body: body(nil), mt: "application/x-ndjson", limits: Limits{MaxBatchBody: 10000, MaxBatch: 100}, refused: "over the limit of 10000 bytes"},
	} {
		for _, read := range []struct {
			name string
			r    func(string) io.Reader
		}{
			{"whole, length known", func(s string) io.Reader { return strings.NewReader(s) }},
			{"byte by byte, length unknown", func(s string) io.Reader { return iotest.OneByteReader(strings.NewReader(s)) }},
			{"halves, length unknown", func(s string) io.Reader { return iotest.HalfReader(strings.NewReader(s)) }},
		} {
			t.Run(c.name+"/"+read.name, func(t *testing.T) {
				s := &Server{c: Config{Limits: c.limits}}
				s.c.Limits.defaults()
				r := httptest.NewRequest("POST", "/v1/events:batch", read.r(c.body))
				evs, errs, err := s.readNDJSON(httptest.NewRecorder(), r, c.mt)
				if c.refused != "" {
					if err == nil || !strings.Contains(err.Error(), c.refused) {
						t.Fatalf("err %v, want one saying %q", err, c.refused)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				wantEvs, wantErrs := parseEach(c.body)
				if len(evs) != len(wantEvs) || len(errs) != len(wantErrs) {
					t.Fatalf("%d events, %d errors; want %d, %d", len(evs), len(errs), len(wantEvs), len(wantErrs))
				}
				for i := range wantEvs {
					if !reflect.DeepEqual(evs[i], wantEvs[i]) || fmt.Sprint(errs[i]) != fmt.Sprint(wantErrs[i]) {
						t.Fatalf("line %d: %+v, %v; want %+v, %v", i+1, evs[i], errs[i], wantEvs[i], wantErrs[i])
					}
				}
			})
		}
	}
}

// parseEach parses the non-blank lines of body one after the other: what
// readNDJSON must agree with.
func parseEach(body string) ([]*trail.Event, []error) {
	var evs []*trail.Event
	var errs []error
	for line := range bytes.Lines([]byte(body)) {
		if line = bytes.TrimSpace(line); len(line) > 0 {
			ev, err := trail.ParseEvent(line)
			evs, errs = append(evs, ev), append(errs, err)
		}
	}
	return evs, errs
}

// BenchmarkReadNDJSON reads and parses a batch of 1000 sample events
// arriving at a network's pace (or at once), two ways in turn: readNDJSON,
// which parses lines as they arrive, and the whole body read first, then
// its lines parsed on every core (what the handler did before). It reports
// each one's milliseconds a batch: at a network's pace, the difference is
// the parse taken off the request's critical path.
func BenchmarkReadNDJSON(b *testing.B) {
	var body []byte
	for _, ev := range sample.New(41).Batch(1000, time.Now()) {
		line, err := json.Marshal(ev)
		if err != nil {
			b.Fatal(err)
		}
		body = append(append(body, line...), '\n')
	}
	s := &Server{}
	s.c.Limits.defaults()
	whole := func(r io.Reader) error { // read, then parse: the handler before
		all, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		var lines [][]byte
		for line := range bytes.Lines(all) {
			if line = bytes.TrimSpace(line); len(line) > 0 {
				lines = append(lines, line)
			}
		}
		return par.Spread(len(lines), func(lo, hi int) error {
			for _, line := range lines[lo:hi] {
				if _, err := trail.ParseEvent(line); err != nil {
					return err
				}
			}
			return nil
		})
	}
	streamed := func(r io.Reader) error {
		_, errs, err := s.readNDJSON(httptest.NewRecorder(), httptest.NewRequest("POST", "/v1/events:batch", r), "application/x-ndjson")
		return cmp.Or(err, errors.Join(errs...))
	}
	for _, pace := range []struct {
		name string
		bps  float64 // bytes a second; 0: at once
	}{{"at-once", 0}, {"1Gbps", 125e6}, {"100Mbps", 12.5e6}} {
		b.Run(pace.name, func(b *testing.B) {
			var took [2]time.Duration
			for i := 0; b.Loop(); i++ {
				for j := range 2 {
					k := (i + j) % 2
					t0 := time.Now()
					if err := [2]func(io.Reader) error{whole, streamed}[k](&paced{r: bytes.NewReader(body), bps: pace.bps, start: t0}); err != nil {
						b.Fatal(err)
					}
					took[k] += time.Since(t0)
				}
			}
			b.ReportMetric(float64(took[0].Microseconds())/1000/float64(b.N), "ms/batch-whole")
			b.ReportMetric(float64(took[1].Microseconds())/1000/float64(b.N), "ms/batch-streamed")
		})
	}
}

// paced is a body arriving at bps bytes a second from start, in reads of at
// most 64 KiB (bps 0: as fast as it is read, the reads just as short).
type paced struct {
	r     io.Reader
	bps   float64
	start time.Time
	n     int
}

func (p *paced) Read(b []byte) (int, error) {
	if len(b) > 64<<10 {
		b = b[:64<<10]
	}
	n, err := p.r.Read(b)
	p.n += n
	if p.bps > 0 {
		time.Sleep(time.Until(p.start.Add(time.Duration(float64(p.n) / p.bps * float64(time.Second)))))
	}
	return n, err
}
