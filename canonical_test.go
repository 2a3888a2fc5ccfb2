package trail_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/trailaudit/trail"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// TestCanonicalGolden pins the canonical bytes of events: the log hashes these
// bytes, so any change to them is a format change and must come with a new
// CanonicalVersion. Run with -update only when that is what you mean.
func TestCanonicalGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/canonical/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, in := range files {
		t.Run(filepath.Base(in), func(t *testing.T) {
			ev := readEvent(t, in)
			got, err := trail.MarshalCanonical(ev)
			if err != nil {
				t.Fatal(err)
			}
			golden := strings.TrimSuffix(in, ".json") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("canonical bytes changed\n got: %s\nwant: %s", got, want)
			}

			// The hand-ordered event encoder is plain RFC 8785: the generic
			// canonicalizer, given the parsed bytes, reproduces them exactly.
			var generic any
			dec := json.NewDecoder(bytes.NewReader(got))
			dec.UseNumber()
			if err := dec.Decode(&generic); err != nil {
				t.Fatal(err)
			}
			again, err := trail.Canonicalize(generic)
			if err != nil {
				t.Fatal(err)
			}
			// AppendCanonical appends the same bytes, into a buffer reused
			// with something already in it.
			appended, err := trail.AppendCanonical([]byte("prefix"), ev)
			if err != nil || string(appended) != "prefix"+string(got) {
				t.Errorf("AppendCanonical = %q, %v; want the prefix and the canonical bytes", appended, err)
			}
			if !bytes.Equal(again, got) {
				t.Errorf("not in RFC 8785 form\nevent encoder: %s\n     generic: %s", got, again)
			}

			// And the bytes read back to the same event.
			back, err := trail.UnmarshalCanonical(got)
			if err != nil {
				t.Fatal(err)
			}
			rt, err := trail.MarshalCanonical(back)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(rt, got) {
				t.Errorf("round trip changed the bytes\n got: %s\nwant: %s", rt, got)
			}
		})
	}
}

func readEvent(t *testing.T, path string) *trail.Event {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := trail.ParseEvent(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return ev
}

func TestUnmarshalCanonicalRefusesUnknownVersion(t *testing.T) {
	for _, in := range []string{
		`{"action":"x","v":2}`,
		`{"action":"x"}`,
		`{"action":"x","v":1,"surprise":true}`,
		`not json`,
	} {
		if _, err := trail.UnmarshalCanonical([]byte(in)); err == nil {
			t.Errorf("UnmarshalCanonical(%s) succeeded; want an error", in)
		}
	}
}

// TestCanonicalNumbers checks number serialization against RFC 8785's rules
// (ECMAScript Number.prototype.toString), including the vectors of its
// Appendix B.
func TestCanonicalNumbers(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"0", "0"},
		{"-0", "0"},
		{"1", "1"},
		{"1.0", "1"},
		{"2.50", "2.5"},
		{"-1.5e3", "-1500"},
		{"1e21", "1e+21"},
		{"1e20", "100000000000000000000"},
		{"0.000001", "0.000001"},
		{"0.0000001", "1e-7"},
		{"5e-324", "5e-324"},
		{"1.7976931348623157e308", "1.7976931348623157e+308"},
		{"9007199254740992", "9007199254740992"},
		{"9007199254740993", "9007199254740992"},
		{"295147905179352830000", "295147905179352830000"},
		{"333333333.3333333", "333333333.3333333"},
		{"1e23", "1e+23"},
		{"4.50", "4.5"},
		{"2e-3", "0.002"},
		{"0.000001000001", "0.000001000001"},
	} {
		got, err := trail.CanonicalNumber(tc.in)
		if err != nil {
			t.Errorf("CanonicalNumber(%s): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("CanonicalNumber(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestNumberExact(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"42", true},
		{"-7", true},
		{"0.1", true},
		{"1.10", true},
		{"9007199254740992", true},
		{"9007199254740993", false},
		{"12345678901234567890", false},
		{"0.30000000000000000001", false},
		{"1e400", false},
		{"1e21", true},
	} {
		if got := trail.NumberExact(tc.in); got != tc.want {
			t.Errorf("NumberExact(%s) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestCanonicalKeyOrder uses RFC 8785's example of sorting by UTF-16 code
// units, where a character beyond the BMP sorts before U+FB33.
func TestCanonicalKeyOrder(t *testing.T) {
	in := map[string]any{"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh",
		"1": "One", "\U0001F600": "Emoji: Grinning Face", "\u0080": "Control", "\u00f6": "Latin Small Letter O With Diaeresis"}
	got, err := trail.Canonicalize(in)
	if err != nil {
		t.Fatal(err)
	}
	want := "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\",\"\u00f6\":\"Latin Small Letter O With Diaeresis\"," +
		"\"\u20ac\":\"Euro Sign\",\"\U0001F600\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}"
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("key order (-want +got):\n%s", diff)
	}
}

func TestCanonicalStrings(t *testing.T) {
	got, err := trail.Canonicalize([]any{"a\"b\\c", "\u0000\u001f\b\f\n\r\t", "<&>\u2028", "bad\xffutf8"})
	if err != nil {
		t.Fatal(err)
	}
	want := `["a\"b\\c","\u0000\u001f\b\f\n\r\t","<&>` + "\u2028" + `","bad` + "\uFFFD" + `utf8"]`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestCanonicalGoValues(t *testing.T) {
	type point struct {
		X int `json:"x"`
		Y int `json:"y"`
	}
	got, err := trail.Canonicalize(map[string]any{"p": point{2, 1}, "n": int64(3), "f": float32(0.5), "s": []string{"b", "a"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"f":0.5,"n":3,"p":{"x":2,"y":1},"s":["b","a"]}`; string(got) != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// FuzzCanonical checks that canonicalization is a fixed point: the canonical
// form of any JSON value, parsed again, canonicalizes to the same bytes.
func FuzzCanonical(f *testing.F) {
	for _, s := range []string{`{"b":1,"a":[true,null,"x"]}`, `[1e21,0.1,-0]`, `{"\u20ac":1,"\r":2}`, `"\u0000"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var v any
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			return
		}
		c1, err := trail.Canonicalize(v)
		if err != nil {
			return // numbers out of range, too deep
		}
		var v2 any
		dec = json.NewDecoder(bytes.NewReader(c1))
		dec.UseNumber()
		if err := dec.Decode(&v2); err != nil {
			t.Fatalf("canonical form %q does not parse: %v", c1, err)
		}
		c2, err := trail.Canonicalize(v2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(c1, c2) {
			t.Fatalf("not a fixed point:\n%s\n%s", c1, c2)
		}
	})
}

// BenchmarkUnmarshalCanonical decodes stored events: what the PostgreSQL
// store does for every event it appends and every store for every read.
func BenchmarkUnmarshalCanonical(b *testing.B) {
	ev := &trail.Event{ID: trail.NewID(time.Now()), Tenant: "acme", Seq: 42, RecordedAt: time.Now(), OccurredAt: time.Now(),
		Action: "user_login_failed", Category: "authentication", Outcome: trail.OutcomeFailure,
		Actor:   trail.Actor{ID: "u-1", Type: trail.ActorUser, Email: "u1@example.com"},
		Request: trail.Request{IP: "203.0.113.7", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0", SessionID: "s-1", RequestID: "r-1"},
		Scope:   trail.Scope{Organization: "org-1", Workspace: "ws-1"},
		Context: map[string]any{"reason": "invalid_password", "attempts": json.Number("3"), "email": "u1@example.com", "client": "web"}}
	body, err := trail.MarshalCanonical(ev)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := trail.UnmarshalCanonical(body); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCanonicalNumberFastPath: the integers CanonicalNumber returns as
// they are (canonical already) are what parsing and formatting them gives,
// and every other literal still takes the long way.
func TestCanonicalNumberFastPath(t *testing.T) {
	for _, lit := range []string{"0", "-0", "7", "-7", "007", "-007", "10", "123456789012345", "-123456789012345",
		"1234567890123456", "9007199254740993", "1e2", "1.0", "1.5", "-", "", "+1", "0x1", "1_000", " 1", "12a"} {
		got, gotErr := trail.CanonicalNumber(lit)
		want, wantErr := trail.ParseCanonicalNumber(lit)
		if got != want || (gotErr == nil) != (wantErr == nil) {
			t.Errorf("CanonicalNumber(%q) = %q, %v; the long way %q, %v", lit, got, gotErr, want, wantErr)
		}
	}
}
