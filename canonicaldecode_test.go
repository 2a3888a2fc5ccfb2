package trail_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/sample"
	"github.com/trailaudit/trail/storetest"
)

// storedEvents returns events as stores hold them (id, tenant, sequence
// number and recording time set): sample events and storetest's.
func storedEvents(tb testing.TB) []*trail.Event {
	tb.Helper()
	at := time.Date(2026, 11, 24, 10, 0, 0, 123456789, time.UTC)
	evs := sample.New(43).Batch(50, at)
	evs = append(evs, storetest.Login("u-1"), storetest.RootEntry("h", 42))
	evs = append(evs, storetest.TrailRecords()...)
	for i, ev := range evs {
		if ev.ID == "" {
			ev.ID = trail.NewID(at)
		}
		if ev.Tenant == "" {
			ev.Tenant = "acme"
		}
		ev.Seq = uint64(i + 1)
		ev.RecordedAt = at.Add(time.Duration(i) * time.Millisecond)
		if ev.OccurredAt.IsZero() && i%2 == 0 {
			ev.OccurredAt = at.Add(-time.Second)
		}
	}
	return evs
}

// canonicalBodies returns the canonical bytes of storedEvents and of the
// golden files.
func canonicalBodies(tb testing.TB) [][]byte {
	tb.Helper()
	var out [][]byte
	for _, ev := range storedEvents(tb) {
		body, err := trail.MarshalCanonical(ev)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, body)
	}
	golden, err := filepath.Glob(filepath.Join("testdata", "canonical", "*.golden"))
	if err != nil {
		tb.Fatal(err)
	}
	for _, name := range golden {
		b, err := os.ReadFile(name)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// canonicalSeeds are documents on both sides of each rule the canonical
// form adds to the wire form's (sameSeeds, which are also used with a
// version member added).
var canonicalSeeds = []string{
	`{"action":"a","v":1}`, `{"v":1}`, `{}`, `{"action":"a"}`, `{"action":"a","v":2}`, `{"action":"a","v":0}`,
	`{"action":"a","v":-1}`, `{"action":"a","v":1.0}`, `{"action":"a","v":1e0}`, `{"action":"a","v":01}`,
	`{"action":"a","v":"1"}`, `{"action":"a","v":null}`, `{"action":"a","v":true}`, `{"action":"a","v":1,"v":1}`,
	`{"action":"a","v":2,"v":1}`, `{"action":"a","V":1}`, `{"action":"a","\u0076":1}`, `{"action":"a","v":18446744073709551617}`,
	`{"action":"a","v":1,"surprise":true}`, `{"action":"a","v":2,"surprise":true}`, `{"surprise":true}`,
	`{"action":"a","v":1} trailing`, `{"action":"a","v":1}{}`, " \n{\"action\":\"a\",\"v\":1}\t",
	`{"Action":"a","v":1}`, `{"action":"a","ACTION":"b","v":1}`, `{"action":"a","action":"b","v":1}`,
	`{"action":null,"seq":null,"recorded_at":null,"context":null,"actor":null,"v":1}`,
	`{"recorded_at":"2026-11-24T10:00:00Z","v":1}`, `{"recorded_at":"2026-11-24T10:00:00.5+02:00","v":1}`,
	`{"recorded_at":"2026-11-24T10:00:00.123456789-07:30","occurred_at":"2026-11-24T10:00:00+00:00","v":1}`,
	`{"recorded_at":"2026-11-24T10:00:00\u005a","v":1}`, `{"recorded_at":"2026-11-24t10:00:00z","v":1}`,
	`{"recorded_at":"2026-11-24T24:00:00Z","v":1}`, `{"recorded_at":"2026-11-24T10:00:00+24:00","v":1}`,
	`{"recorded_at":"2026-11-24T10:00Z","v":1}`, `{"recorded_at":"2026-11-24 10:00:00Z","v":1}`,
	`{"recorded_at":"0001-01-01T00:00:00Z","v":1}`, `{"recorded_at":"","v":1}`, `{"recorded_at":1,"v":1}`,
	`{"action":"\u00e9\ud83d\ude00\n\"\\\/","v":1}`, `{"action":"\ud800","v":1}`, "{\"action\":\"\xff\",\"v\":1}",
	`{"context":{"a":{"b":[{"c":1.50,"d":-0,"e":1e400}]},"k":"\u0000"},"v":1}`,
	`{"context":{"k":1,"k":2},"v":1}`, `{"context":{},"targets":[],"redacted":[],"violations":[],"actor":{"roles":[]},"v":1}`,
	`{"context":` + strings.Repeat(`[`, 31) + strings.Repeat(`]`, 31) + `,"v":1}`,
	`{"context":` + strings.Repeat(`[`, 32) + strings.Repeat(`]`, 32) + `,"v":1}`,
	`{"context":` + strings.Repeat(`{"a":`, 200) + `1` + strings.Repeat(`}`, 200) + `,"v":1}`,
	`{"seq":0,"v":1}`, `{"seq":18446744073709551615,"v":1}`, `{"seq":-1,"v":1}`, `{"seq":1.5,"v":1}`,
	`{"actor":{"id":"u","id":"w"},"v":1}`, `{"actor":{"Id":"u"},"v":1}`, `{"scope":{"team":"t"},"request":{"ip":"1"},"v":1}`,
}

// FuzzUnmarshalCanonicalSame: UnmarshalCanonical (one pass, encoding/json
// for what it does not accept whole) gives exactly what the encoding/json
// reader gives: the same Event, down to the Go types in Context, nil or
// empty slices and maps and the locations of times, or the same error. So
// the one pass never accepts what the strict reader refuses.
func FuzzUnmarshalCanonicalSame(f *testing.F) {
	for _, b := range canonicalBodies(f) {
		f.Add(b)
	}
	for _, s := range canonicalSeeds {
		f.Add([]byte(s))
	}
	for _, s := range sameSeeds {
		f.Add([]byte(s))
		if rest, ok := strings.CutPrefix(s, "{"); ok {
			f.Add([]byte(`{"v":1,` + rest))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, gotErr := trail.UnmarshalCanonical(data)
		want, wantErr := trail.UnmarshalCanonicalStrict(data)
		if wantErr != nil && trail.DecodeCanonicalOnePass(data) {
			t.Fatalf("%q: read in one pass, but the strict reader refuses it: %v", data, wantErr)
		}
		if (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
			t.Fatalf("UnmarshalCanonical(%q) error %v, strict reader %v", data, gotErr, wantErr)
		}
		if diff := cmp.Diff(want, got, cmp.Comparer(sameTime)); diff != "" {
			t.Fatalf("UnmarshalCanonical(%q) differs from the strict reader (-strict +one pass):\n%s", data, diff)
		}
	})
}

// sameTime reports whether a and b are the same instant in the same
// location, as far as anyone can tell: cmp would otherwise use Equal,
// which ignores the location.
func sameTime(a, b time.Time) bool {
	an, ao := a.Zone()
	bn, bo := b.Zone()
	return a.Equal(b) && an == bn && ao == bo && a.Location().String() == b.Location().String() &&
		(a.Location() == time.UTC) == (b.Location() == time.UTC) && a.String() == b.String()
}

// TestUnmarshalCanonicalOnePass: what stores hold, the bytes of
// MarshalCanonical, is decoded in one pass, not left to encoding/json.
func TestUnmarshalCanonicalOnePass(t *testing.T) {
	for _, body := range canonicalBodies(t) {
		if !trail.DecodeCanonicalOnePass(body) {
			t.Errorf("%s: left to the strict reader", body)
		}
	}
}

// TestUnmarshalCanonicalErrors: refusals keep the strict reader's words.
func TestUnmarshalCanonicalErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"action":"x"}`, "canonical event: no format version"},
		{`{"action":"x","v":2}`, "canonical event: format version 2 is not supported (this build reads 1)"},
		{`{"action":"x","v":2,"new":1}`, "canonical event: format version 2 is not supported (this build reads 1)"},
		{`{"action":"x","v":1,"surprise":true}`, `canonical event: json: unknown field "surprise"`},
	} {
		_, err := trail.UnmarshalCanonical([]byte(tc.in))
		if err == nil || err.Error() != tc.want {
			t.Errorf("UnmarshalCanonical(%s) = %v, want %s", tc.in, err, tc.want)
		}
	}
}
