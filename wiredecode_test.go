package trail_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/trailaudit/trail"
)

// sameSeeds are documents on both sides of every rule of the one-pass
// decoder: each strict refusal, each form it leaves to the strict reader,
// and each it decodes itself.
var sameSeeds = []string{
	goodLogin,
	`{"action":"a","occurred_at":"2026-11-24T10:00:00.5+02:00","context":{"n":[1e21,-0,"\u0000"]}}`,
	`{"action":"a","targets":[{"type":"t","id":"1"}],"scope":{"team":"x"}}`,
	`{"action":"a","context":{"a":{"b":[{"c":1,"d":"\ud83d\ude00"}]},"A":"\u00e9"}}`,
	`{"action":"a","colour":"red"}`,
	`{"action":"a","actor":{"id":7}}`,
	`{"action":"a","request":[]}`,
	`{"action":"a","occurred_at":"yesterday"}`,
	`["a"]`, `{"action":"a"} {"action":"b"}`, `{"action":"a"`, `{"action":'a'}`, ``, ` `, `null`,
	strings.Repeat(`{"a":`, 40) + `1` + strings.Repeat(`}`, 40),
	`{"context":` + strings.Repeat(`[`, 31) + strings.Repeat(`]`, 31) + `}`,
	`{"context":` + strings.Repeat(`[`, 32) + strings.Repeat(`]`, 32) + `}`,
	`{"action":"a","action":"b"}`, `{"Action":"a"}`, `{"\u0061ction":"a"}`,
	`{"action":"a","context":{"k":1,"k":2}}`, `{"actor":{"id":"u","id":"v"}}`,
	`{"action":"\ud800"}`, `{"action":"\udc00\ud800"}`, `{"action":"\ud800\u0041"}`, "{\"action\":\"\xff\"}",
	"{\"action\":\"\xed\xa0\x80\"}", "{\"action\":\"a\tb\"}", `{"action":"\uFFFD\/\b\f\n\r\t\"\\"}`,
	`{"seq":18446744073709551615}`, `{"seq":18446744073709551616}`, `{"seq":-1}`, `{"seq":1.0}`, `{"seq":1e3}`, `{"seq":"1"}`, `{"seq":01}`,
	`{"seq":null,"actor":null,"targets":null,"context":null,"recorded_at":null}`,
	`{"targets":[],"redacted":[],"violations":[],"actor":{"roles":[]},"context":{"e":[],"o":{}}}`,
	`{"violations":[{"path":"p","rule":"r","message":"m"}],"redacted":["a","b"],"request":{"ip":"1","user_agent":"x","session_id":"s","request_id":"r","method":"GET","path":"/","trace_id":"t"}}`,
	`{"context":{"t":true,"f":false,"n":null,"x":-1.5e+10,"y":0.0,"z":1E-2}}`,
	`{"context":{"x":1.},"action":"a"}`, `{"context":{"x":-},"action":"a"}`, `{"context":{"x":tru}}`, `{"context":{"x":truex}}`,
	"\t\n\r {\"action\":\"a\"} \n", `{"action":"a",}`, `{,}`, `{"targets":[{"type":"t"},]}`,
	`{"scope":{"team":"a","team":"b"}}`, `{"scope":{"Team":"a"}}`, `{"request":{"ip":"1","ip":"2"}}`, `{"request":{"ip":1}}`,
	`{"targets":[{"id":"1","id":"2"}]}`, `{"violations":[{"rule":1}]}`, `{"violations":[{"Rule":"r"}]}`, `{"targets":{}}`,
	`{"action":"\u00E9\u00e9\uD83D\uDE00"}`, `{"action":"\x"}`, `{"action":"\u12"}`, `{"action":"\u12G4"}`, "{\"action\":\"\\n\x01\"}",
	`{"action":"\"`, `{"action":"\u`, `{"context":{"x":[1,2`, `{"context":{"x":1e}}`, `{"context":{"x":1e+}}`, `{"context":{"x":.5}}`,
	`{"recorded_at":"2026-11-24T10:00:00Z","occurred_at":"2026-11-24T10:00:00.123456789-07:00"}`,
}

// FuzzParseEventSame: ParseEvent (one pass, the strict reader for what it
// does not accept whole) gives exactly what the strict reader gives: the
// same Event, or the same error.
func FuzzParseEventSame(f *testing.F) {
	for _, s := range sameSeeds {
		f.Add([]byte(s))
	}
	files, err := filepath.Glob(filepath.Join("testdata", "canonical", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, gotErr := trail.ParseEvent(data)
		want, wantErr := trail.ParseEventStrict(data)
		if (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
			t.Fatalf("ParseEvent(%q) error %v, strict reader %v", data, gotErr, wantErr)
		}
		if gotErr != nil && trail.ErrorCode(gotErr) != trail.ErrorCode(wantErr) {
			t.Fatalf("ParseEvent(%q) code %s, strict reader %s", data, trail.ErrorCode(gotErr), trail.ErrorCode(wantErr))
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("ParseEvent(%q) differs from the strict reader (-strict +one pass):\n%s", data, diff)
		}
	})
}

// TestParseEventOnePass: the events clients send are decoded in one pass,
// not left to the strict reader.
func TestParseEventOnePass(t *testing.T) {
	for _, s := range []string{goodLogin, sameSeeds[1], sameSeeds[3], sameSeeds[len(sameSeeds)-1],
		`{"targets":[],"redacted":[],"violations":[],"actor":{"roles":[]},"context":{"e":[],"o":{}}}`} {
		if !trail.DecodeEventOnePass([]byte(s)) {
			t.Errorf("%s: left to the strict reader", s)
		}
	}
}
