package export

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
)

// formulaStart reports whether a spreadsheet may take a cell beginning like
// s as a formula. It is written apart from needsGuard, as the test's own
// statement of the rule.
func formulaStart(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return s != "" && strings.ContainsRune("=+-@\t\r＝＋－＠", r)
}

func TestCSVCell(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"alice", "alice"},
		{"=1+1", "'=1+1"},
		{`=HYPERLINK("http://x")`, `'=HYPERLINK("http://x")`},
		{"+1", "'+1"},
		{"-1", "'-1"},
		{"-", "'-"},
		{"@SUM(A1:A2)", "'@SUM(A1:A2)"},
		{"\t=1", "'\t=1"},
		{"\r=1", "'\r=1"},
		{"＝1+1", "'＝1+1"}, // full-width equals sign
		{"＠x", "'＠x"},
		{"a=b", "a=b"},
		{" =1", " =1"},   // not a formula start: the cell begins with a space
		{"'=1", "'=1"},   // already quoted: left alone
		{"\n=1", "\n=1"}, // a line feed is not on the list; encoding/csv quotes it
		{"1-2", "1-2"},
		{"é", "é"},
		{"\xef", "\xef"}, // a lone byte of a full-width prefix
		{"\xef\xbc", "\xef\xbc"},
	} {
		if got := csvCell(tc.in); got != tc.want {
			t.Errorf("csvCell(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestCSVInjection: hostile values in every kind of text column come out
// guarded; seq, a number column, does not.
func TestCSVInjection(t *testing.T) {
	for _, payload := range []string{`=HYPERLINK("http://x")`, "+cmd|' /C calc'!A0", "-2+3", "@SUM(1,2)", "\t=1", "\r=1", "＝1"} {
		ev := hostileEvent(payload)
		ev.Seq = 42
		out := writeAll(t, CSV, []*trail.Event{ev})
		recs, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
		if err != nil {
			t.Fatalf("%q: %v", payload, err)
		}
		row := recs[1]
		if row[0] != "42" {
			t.Errorf("%q: seq = %q, want 42", payload, row[0])
		}
		for i, cell := range row {
			if formulaStart(cell) {
				t.Errorf("%q: column %s = %q begins with a formula character", payload, csvColumns[i], cell)
			}
		}
		want := strings.ReplaceAll("'"+payload, "\r\n", "\n")
		for _, c := range []int{1, 4, 9, 10, 20} { // id, action, actor_name, actor_email, reason
			if row[c] != want {
				t.Errorf("%q: column %s = %q, want %q", payload, csvColumns[c], row[c], want)
			}
		}
	}
}

// hostileEvent puts s in every text field of an event.
func hostileEvent(s string) *trail.Event {
	return &trail.Event{
		ID: s, Tenant: s, Action: s, Category: s, Outcome: trail.Outcome(s),
		Actor:   trail.Actor{ID: s, Type: trail.ActorType(s), Name: s, Email: s, Roles: []string{s}},
		Targets: []trail.Target{{Type: s, ID: s, Name: s}},
		Request: trail.Request{IP: s, UserAgent: s, SessionID: s, RequestID: s, Method: s, Path: s, TraceID: s},
		Scope:   trail.Scope{Organization: s, Workspace: s, Team: s},
		// A context key sorts first in the JSON, but the cell begins with '{'.
		Context:       map[string]any{s: s},
		CorrelationID: s, Reason: s,
		Violations: []trail.Violation{{Path: s, Rule: s, Message: s}},
		Redacted:   []string{s},
	}
}

// FuzzCSVCell: whatever a text field holds, no cell of the CSV output but
// seq begins with a formula character, and the guard only ever adds one
// leading quote.
func FuzzCSVCell(f *testing.F) {
	for _, s := range []string{"", "x", "=1+1", `=HYPERLINK("http://x")`, "+1", "-1", "@a", "\t", "\r", "\r\n=1", "＝", "\xef\xbc\x9d", "'=1", " =1", `"=1"`, "a,b", "\n"} {
		f.Add(s)
	}
	cat := catalog.Default()
	f.Fuzz(func(t *testing.T, s string) {
		got := csvCell(s)
		if formulaStart(got) {
			t.Fatalf("csvCell(%q) = %q begins with a formula character", s, got)
		}
		if got != s && got != "'"+s {
			t.Fatalf("csvCell(%q) = %q: want the input, or the input after one quote", s, got)
		}
		if got != s && !formulaStart(s) {
			t.Fatalf("csvCell(%q) = %q guards a cell that needs no guard", s, got)
		}

		ev := hostileEvent(s)
		ev.Seq = 7
		var buf bytes.Buffer
		w, err := NewWriter(&buf, CSV, cat)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(ev); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		r := csv.NewReader(&buf)
		r.FieldsPerRecord = len(csvColumns)
		recs, err := r.ReadAll()
		if err != nil {
			t.Fatalf("output does not read back: %v\n%q", err, buf.String())
		}
		if len(recs) != 2 {
			t.Fatalf("%d records, want a header and one row", len(recs))
		}
		for i, cell := range recs[1] {
			if csvNumeric[csvColumns[i]] {
				continue
			}
			if formulaStart(cell) {
				t.Fatalf("column %s = %q begins with a formula character", csvColumns[i], cell)
			}
		}
		// encoding/csv reads \r\n in a quoted cell as \n.
		if name, want := recs[1][9], strings.ReplaceAll(got, "\r\n", "\n"); name != want {
			t.Fatalf("actor_name = %q, want %q", name, want)
		}
	})
}
