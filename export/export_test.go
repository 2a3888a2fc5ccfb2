package export

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// hostileName is an actor name a spreadsheet would run as a formula.
const hostileName = `=HYPERLINK("http://x")`

// sampleEvents are representative events, as the store returns them:
// numbers in the context are json.Number, arrays []any.
func sampleEvents() []*trail.Event {
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	rec := func(d time.Duration) time.Time { return t0.Add(d + 120*time.Millisecond) }
	alice := trail.Actor{ID: "u-1", Type: trail.ActorUser, Name: "Alice Admin", Email: "alice@example.com", Roles: []string{"admin"}}
	req := trail.Request{IP: "203.0.113.7", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0",
		SessionID: "s-1", RequestID: "r-0001", Method: "post", Path: "/api/v1/login", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736"}
	scope := trail.Scope{Organization: "org-1", Workspace: "ws-7"}
	return []*trail.Event{
		{
			ID: "evt_01", Tenant: "acme", Seq: 1, RecordedAt: rec(0), OccurredAt: t0,
			Action: catalog.UserLoginSuccess, Category: "authentication", Outcome: trail.OutcomeSuccess,
			Actor: alice, Request: req,
			Context: map[string]any{"method": "password", "mfa": true, "login_method": "email"},
		},
		{
			ID: "evt_02", Tenant: "acme", Seq: 2, RecordedAt: rec(time.Second), OccurredAt: t0.Add(time.Second + 500*time.Microsecond),
			Action: catalog.UserLoginFailed, Category: "authentication", Outcome: trail.OutcomeFailure,
			Actor:         trail.Actor{ID: "anonymous", Type: trail.ActorUser},
			Targets:       []trail.Target{{Type: "user", ID: "u-2", Name: "Bob"}},
			Request:       trail.Request{IP: "198.51.100.23", UserAgent: "curl/8.5.0", RequestID: "r-0002"},
			Context:       map[string]any{"reason": "invalid_password", "attempts": json.Number("3"), "email": "bob@example.com"},
			CorrelationID: "c-login-2",
		},
		{
			ID: "evt_03", Tenant: "acme", Seq: 3, RecordedAt: rec(2 * time.Second), OccurredAt: t0.Add(2 * time.Second),
			Action: catalog.PermissionGranted, Category: "authorization", Outcome: trail.OutcomeSuccess,
			Actor:   alice,
			Targets: []trail.Target{{Type: "user", ID: "u-2", Name: "Bob"}, {Type: "workspace", ID: "ws-7", Name: "Kathmandu office"}},
			Request: trail.Request{IP: "203.0.113.7", SessionID: "s-1", RequestID: "r-0003"},
			Scope:   scope,
			Context: map[string]any{"permission": "entries:approve", "granted_by": "u-1"},
			Reason:  "quarterly access review",
		},
		{
			ID: "evt_04", Tenant: "acme", Seq: 4, RecordedAt: rec(3 * time.Second), OccurredAt: t0.Add(3 * time.Second),
			Action: catalog.DataExported, Category: "data", Outcome: trail.OutcomeSuccess,
			Actor:         trail.Actor{ID: "u-3", Type: trail.ActorUser, Email: "carol@example.com"},
			Targets:       []trail.Target{{Type: "export", ID: "exp-19"}},
			Request:       trail.Request{IP: "2001:db8::1", SessionID: "s-3", RequestID: "r-0004"},
			Scope:         scope,
			Context:       map[string]any{"export_format": "csv", "data_scope": "entries", "result_count": json.Number("1200"), "fields": []any{"amount", "payee"}, "email": "[REDACTED]"},
			CorrelationID: "c-export-19",
			Redacted:      []string{"context.email"},
		},
		{
			ID: "evt_05", Tenant: "acme", Seq: 5, RecordedAt: rec(4 * time.Second), OccurredAt: t0.Add(4 * time.Second),
			Action: catalog.EntryApproved, Category: "entry", Outcome: trail.OutcomeSuccess,
			Actor:   trail.Actor{ID: "u-4", Type: trail.ActorUser, Name: "Dev Reviewer", Roles: []string{"reviewer"}},
			Targets: []trail.Target{{Type: "entry", ID: "e-42", Name: "Invoice 42"}, {Type: "entry", ID: "e-43"}},
			Request: trail.Request{IP: "203.0.113.9", SessionID: "s-4", RequestID: "r-0005", Method: "PUT", Path: "/entries/e-42/approve"},
			Scope:   trail.Scope{Organization: "org-1", Workspace: "ws-7", Team: "team-finance"},
			Context: map[string]any{"notes": "Entry meets all requirements", "amount_cents": json.Number("125000"), "currency": "NPR"},
			Violations: []trail.Violation{
				{Path: "context.level", Rule: trail.RuleMissingKey, Message: "required key is missing"},
			},
		},
		{
			ID: "evt_06", Tenant: "acme", Seq: 6, RecordedAt: rec(5 * time.Second), OccurredAt: t0.Add(5 * time.Second),
			Action: catalog.UserProfileUpdated, Category: "user_management", Outcome: trail.OutcomeSuccess,
			Actor:   trail.Actor{ID: "u-5", Type: trail.ActorUser, Name: hostileName, Email: "@evil.example"},
			Targets: []trail.Target{{Type: "user", ID: "-1+1"}},
			Request: trail.Request{IP: "192.0.2.1", UserAgent: "+cmd|' /C calc'!A0"},
			Context: map[string]any{"bio": "<script>alert(1)</script>", "display_name": hostileName},
			Reason:  "\tleading tab",
		},
		{
			ID: "evt_07", Tenant: "acme", Seq: 7, RecordedAt: rec(6 * time.Second), OccurredAt: t0.Add(6 * time.Second),
			Action: catalog.AccessDenied, Category: "authorization", Outcome: trail.OutcomeDenied,
			Actor:   trail.Actor{ID: "key-9", Type: trail.ActorAPIKey},
			Targets: []trail.Target{{Type: "workspace", ID: "ws-8"}},
			Request: trail.Request{IP: "198.51.100.77", RequestID: "r-0007", Method: "DELETE", Path: "/workspaces/ws-8"},
			Context: map[string]any{"resource": "/workspaces/ws-8", "reason": "no_permission", "action": "delete"},
		},
		{
			// A custom action the catalog does not know, recorded by the app
			// itself with no request and no occurred_at.
			ID: "evt_08", Tenant: "acme", Seq: 8, RecordedAt: rec(7 * time.Second),
			Action: "billing_invoice_sent", Category: "billing", Outcome: trail.OutcomeInfo,
			Actor:   trail.Actor{ID: "scheduler", Type: trail.ActorSystem},
			Targets: []trail.Target{{Type: "invoice", ID: "inv-2026-11"}},
			Violations: []trail.Violation{
				{Path: "action", Rule: trail.RuleUnknownAction, Message: `"billing_invoice_sent" is not in the catalog`},
			},
		},
		{
			ID: "evt_09", Tenant: "acme", Seq: 9, RecordedAt: rec(8 * time.Second), OccurredAt: t0.Add(8 * time.Second),
			Action: catalog.RoleAssignmentAttempted, Category: "authorization", Outcome: trail.OutcomeAttempted,
			Actor:         alice,
			Targets:       []trail.Target{{Type: "user", ID: "u-2"}},
			CorrelationID: "c-role-9",
			Context:       map[string]any{"role_name": "reviewer"},
		},
	}
}

// writeAll writes events in format f and returns the output.
func writeAll(t testing.TB, f Format, events []*trail.Event) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, f, catalog.Default())
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range events {
		if err := w.Write(ev); err != nil {
			t.Fatalf("Write(%s): %v", ev.Action, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestGolden pins the output of every format for the sample events.
func TestGolden(t *testing.T) {
	for _, tc := range []struct {
		format Format
		file   string
	}{
		{NDJSON, "ndjson.golden"},
		{CSV, "csv.golden"},
		{OCSF, "ocsf.golden"},
	} {
		t.Run(string(tc.format), func(t *testing.T) {
			got := writeAll(t, tc.format, sampleEvents())
			golden := filepath.Join("testdata", tc.file)
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s output differs from %s (run go test -update if the change is intended)\n got:\n%s\nwant:\n%s", tc.format, golden, got, want)
			}
		})
	}
}

// TestNDJSONRoundTrip: every NDJSON line is the wire form trail.ParseEvent
// reads back to the same event, and HTML is not escaped.
func TestNDJSONRoundTrip(t *testing.T) {
	events := sampleEvents()
	out := writeAll(t, NDJSON, events)
	if !bytes.Contains(out, []byte("<script>")) || bytes.Contains(out, []byte(`\u003c`)) {
		t.Errorf("NDJSON escapes HTML; want <script> written as is")
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(events) {
		t.Fatalf("%d lines for %d events", len(lines), len(events))
	}
	for i, line := range lines {
		ev, err := trail.ParseEvent([]byte(line))
		if err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		want, _ := json.Marshal(events[i])
		got, _ := json.Marshal(ev)
		if !bytes.Equal(got, want) {
			t.Errorf("line %d reads back as\n%s\nwant\n%s", i+1, got, want)
		}
	}
}

// TestCSVShape: the header and the cells of the sample events, read back
// with encoding/csv.
func TestCSVShape(t *testing.T) {
	events := sampleEvents()
	recs, err := csv.NewReader(bytes.NewReader(writeAll(t, CSV, events))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(events)+1 {
		t.Fatalf("%d records for %d events", len(recs), len(events))
	}
	if got, want := strings.Join(recs[0], ","), strings.Join(csvColumns, ","); got != want {
		t.Fatalf("header %s, want %s", got, want)
	}
	col := map[string]int{}
	for i, c := range recs[0] {
		col[c] = i
	}
	cell := func(row int, name string) string { return recs[row][col[name]] }
	for _, tc := range []struct {
		row       int
		col, want string
	}{
		{1, "seq", "1"},
		{1, "recorded_at", "2026-11-24T10:00:00.12Z"},
		{1, "occurred_at", "2026-11-24T10:00:00Z"},
		{1, "context", `{"login_method":"email","method":"password","mfa":true}`},
		{2, "occurred_at", "2026-11-24T10:00:01.0005Z"},
		{3, "targets", "user:u-2;workspace:ws-7"},
		{3, "reason", "quarterly access review"},
		{4, "redacted", "context.email"},
		{4, "ip", "2001:db8::1"},
		{5, "violations", "missing_key:context.level"},
		{5, "team", "team-finance"},
		{6, "actor_name", `'` + hostileName},
		{6, "actor_email", "'@evil.example"},
		{6, "targets", "user:-1+1"},
		{6, "user_agent", "'+cmd|' /C calc'!A0"},
		{6, "reason", "'\tleading tab"},
		{6, "context", `{"bio":"<script>alert(1)</script>","display_name":"=HYPERLINK(\"http://x\")"}`},
		{8, "occurred_at", ""},
		{8, "category", "billing"},
		{8, "outcome", "info"},
		{9, "outcome", "attempted"},
	} {
		if got := cell(tc.row, tc.col); got != tc.want {
			t.Errorf("row %d %s = %q, want %q", tc.row, tc.col, got, tc.want)
		}
	}
}

// TestCSVFillsFromCatalog: an event without category and outcome (one not
// yet validated) gets them from the catalog.
func TestCSVFillsFromCatalog(t *testing.T) {
	ev := &trail.Event{Action: catalog.UserLoginFailed, Actor: trail.Actor{ID: "u", Type: trail.ActorUser}}
	recs, err := csv.NewReader(bytes.NewReader(writeAll(t, CSV, []*trail.Event{ev}))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := recs[1][5] + "/" + recs[1][6]; got != "authentication/failure" {
		t.Errorf("category/outcome = %s, want authentication/failure", got)
	}
}

// TestCSVEmpty: an export of no events is the header row alone.
func TestCSVEmpty(t *testing.T) {
	got := string(writeAll(t, CSV, nil))
	if want := strings.Join(csvColumns, ",") + "\n"; got != want {
		t.Errorf("empty CSV export = %q, want %q", got, want)
	}
	for _, f := range []Format{NDJSON, OCSF} {
		if got := writeAll(t, f, nil); len(got) != 0 {
			t.Errorf("empty %s export = %q, want nothing", f, got)
		}
	}
}

func TestParseFormat(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Format
	}{
		{"ndjson", NDJSON}, {"csv", CSV}, {"ocsf", OCSF}, {" CSV ", CSV}, {"OCSF", OCSF},
	} {
		got, err := ParseFormat(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseFormat(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "json", "xml", "nd json", "csv;drop", "ocsf1.3", "\x00"} {
		got, err := ParseFormat(in)
		if err == nil {
			t.Errorf("ParseFormat(%q) = %q, want an error", in, got)
			continue
		}
		if code := trail.ErrorCode(err); code != trail.EINVALID {
			t.Errorf("ParseFormat(%q): code %s, want %s", in, code, trail.EINVALID)
		}
		if msg := err.Error(); !strings.Contains(msg, "ndjson, csv, ocsf") {
			t.Errorf("ParseFormat(%q) error %q does not name the allowed formats", in, msg)
		}
	}
	if _, err := ParseFormat("hunter2"); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("ParseFormat error %v: want one that does not echo the input", err)
	}
	if _, err := NewWriter(io.Discard, "xml", nil); trail.ErrorCode(err) != trail.EINVALID {
		t.Errorf("NewWriter with an unknown format: %v, want EINVALID", err)
	}
	if _, err := NewWriter(nil, CSV, nil); trail.ErrorCode(err) != trail.EINVALID {
		t.Errorf("NewWriter with no output: %v, want EINVALID", err)
	}
}

func TestContentType(t *testing.T) {
	for f, want := range map[Format]string{
		NDJSON: "application/x-ndjson",
		CSV:    "text/csv; charset=utf-8",
		OCSF:   "application/x-ndjson",
		"xml":  "",
	} {
		if got := f.ContentType(); got != want {
			t.Errorf("%q.ContentType() = %q, want %q", f, got, want)
		}
	}
}

// failWriter fails every write after the first n bytes.
type failWriter struct{ n int }

var errDisk = errors.New("disk full")

func (f *failWriter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		n := f.n
		f.n = 0
		return n, errDisk
	}
	f.n -= len(p)
	return len(p), nil
}

// TestWriterErrors: Write refuses a nil event and writes after Close; an
// output error reaches the caller and sticks; a context JSON cannot hold is
// EINVALID and leaves the output whole.
func TestWriterErrors(t *testing.T) {
	for _, f := range []Format{NDJSON, CSV, OCSF} {
		t.Run(string(f), func(t *testing.T) {
			w, err := NewWriter(io.Discard, f, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Write(nil); trail.ErrorCode(err) != trail.EINVALID {
				t.Errorf("Write(nil) = %v, want EINVALID", err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Errorf("second Close = %v, want nil", err)
			}
			if err := w.Write(sampleEvents()[0]); err == nil {
				t.Errorf("Write after Close succeeded")
			}

			// A func cannot be written as JSON: refused, nothing written.
			var buf bytes.Buffer
			w, _ = NewWriter(&buf, f, catalog.Default())
			bad := sampleEvents()[0]
			bad.Context = map[string]any{"x": func() {}}
			if err := w.Write(bad); trail.ErrorCode(err) != trail.EINVALID {
				t.Errorf("Write of an unencodable context = %v, want EINVALID", err)
			}
			if err := w.Write(sampleEvents()[1]); err != nil {
				t.Errorf("Write after a refused event: %v", err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			lines := strings.Count(buf.String(), "\n")
			if want := map[Format]int{CSV: 2}[f]; lines != max(want, 1) {
				t.Errorf("%d lines after a refused and a written event:\n%s", lines, buf.String())
			}

			// The output fails part way: the error surfaces (from Write
			// or Close) and sticks.
			w, _ = NewWriter(&failWriter{n: 100}, f, catalog.Default())
			var werr error
			for _, ev := range sampleEvents() {
				for range 1000 {
					if werr = w.Write(ev); werr != nil {
						break
					}
				}
				if werr != nil {
					break
				}
			}
			cerr := w.Close()
			if !errors.Is(werr, errDisk) && !errors.Is(cerr, errDisk) {
				t.Errorf("Write = %v, Close = %v; want %v from one of them", werr, cerr, errDisk)
			}
			if werr != nil {
				if err := w.Write(sampleEvents()[0]); err == nil {
					t.Errorf("Write after an output error succeeded")
				}
			}
		})
	}
}

// TestStreaming: the writers pass output on as their buffer fills, rather
// than holding the export until Close.
func TestStreaming(t *testing.T) {
	ev := sampleEvents()[4]
	for _, f := range []Format{NDJSON, CSV, OCSF} {
		var buf bytes.Buffer
		w, _ := NewWriter(&buf, f, catalog.Default())
		for range 500 {
			if err := w.Write(ev); err != nil {
				t.Fatal(err)
			}
		}
		before := buf.Len()
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if before == 0 || buf.Len()-before > 64<<10 {
			t.Errorf("%s: %d bytes written before Close, %d at Close; want output streamed", f, before, buf.Len()-before)
		}
		sc := bufio.NewScanner(&buf)
		n := 0
		for sc.Scan() {
			n++
		}
		if want := map[Format]int{CSV: 501}[f]; n != max(want, 500) {
			t.Errorf("%s: %d lines, want %d", f, n, max(want, 500))
		}
	}
}
