package stream_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/export"
	"github.com/trailaudit/trail/internal/ledger"
	"github.com/trailaudit/trail/internal/ocsfschema"
	"github.com/trailaudit/trail/memory"
	"github.com/trailaudit/trail/storetest"
	"github.com/trailaudit/trail/stream"
)

// OCSFRules is the OCSF 1.3 schema's rules, as the export's tests hold the
// export to them.
func ocsfRules(t *testing.T) *ocsfschema.Rules {
	t.Helper()
	r, err := ocsfschema.Load("../export/testdata/ocsf-1.3.0.rules.json", export.OCSFVersion)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// appendMixed appends n events of each OCSF class the mapping has (a
// login, an account change, API activity, an entity managed), with a user
// agent holding the characters JSON encoders like to escape and a PATCH,
// which OCSF 1.3 does not list.
func appendMixed(t *testing.T, s trail.Store, n int) {
	t.Helper()
	var evs []*trail.Event
	for i := range n {
		for _, action := range []string{catalog.UserLoginSuccess, "user_password_changed", "data_viewed", "admin_config_changed"} {
			ev := storetest.Login(fmt.Sprintf("user-%d", i))
			ev.Action, ev.Context = action, nil
			ev.Request.UserAgent, ev.Request.Method = "curl/8 & <friends>", "PATCH"
			if action != catalog.UserLoginSuccess {
				ev.Targets = nil // no user target: OCSF's required user and entity come from elsewhere
			}
			evs = append(evs, ev)
		}
	}
	if _, err := s.Append(context.Background(), "acme", evs, trail.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
}

// checkOCSFLines validates every OCSF line against the schema's rules and
// returns how many there were and how many Trail lines (checkpoints,
// pruned events).
func checkOCSFLines(t *testing.T, lines [][]byte) (ocsf, trailLines int) {
	t.Helper()
	rules := ocsfRules(t)
	for i, b := range lines {
		if !bytes.Contains(b, []byte(`"class_uid"`)) {
			trailLines++
			continue
		}
		ocsf++
		if errs := rules.Validate(b); len(errs) > 0 {
			t.Errorf("line %d is not valid OCSF %s: %s\n%s", i+1, export.OCSFVersion, strings.Join(errs, "; "), b)
		}
	}
	return ocsf, trailLines
}

// An OCSF webhook stream reaches a real receiver (httptest), which finds
// every event valid OCSF 1.3 and checks the whole stream against the
// signed checkpoints, each OCSF event held to Trail's mapping of its
// bytes; a pruned event comes as its leaf hash, as in Trail's JSON.
func TestWebhookOCSF(t *testing.T) {
	s := newStore(t)
	appendMixed(t, s, 5) // 20 events
	if _, err := s.AppendOwn(context.Background(), "acme", ledger.Prune([]uint64{3}, storetest.PruneRecord("test", 3))); err != nil {
		t.Fatal(err)
	}
	rcv := newReceiver(t)
	rcv.MapWith(catalog.Default())
	rcv.Fail(1)
	wh, err := stream.NewWebhook(rcv.URL, stream.WebhookOptions{Secret: secret, Encoding: stream.Encoding{OCSF: true, Actions: catalog.Default()}})
	if err != nil {
		t.Fatal(err)
	}
	sk, err := stream.New(stream.Config{Name: "siem", Tenant: "acme", Log: s, Cursors: s, Transport: wh,
		Batch: 7, Poll: 5 * time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, sk)
	eventually(t, "21 events verified", func() bool { return rcv.Verified("acme") == 21 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	ocsf, other := checkOCSFLines(t, rcv.Raw())
	// 20 events less the pruned one, and the prune record, at least once
	// each (the failed request was redelivered); the pruned event and the
	// checkpoints as Trail lines.
	if ocsf < 20 || other < 2 {
		t.Errorf("%d OCSF lines and %d Trail lines, want at least 20 and 2", ocsf, other)
	}
}

// The Splunk envelope carries Trail's lines: with OCSF it is refused.
func TestWebhookSplunkIsNotOCSF(t *testing.T) {
	if _, err := stream.NewWebhook("http://127.0.0.1:1/", stream.WebhookOptions{Secret: secret, Splunk: true, Encoding: stream.Encoding{OCSF: true}}); err == nil {
		t.Fatal("a Splunk webhook writing OCSF")
	}
}

// An event whose stored bytes are not a canonical event cannot be mapped
// to OCSF: the sink stops, for good, rather than send something else or
// skip it.
func TestOCSFOfABrokenEventIsFinal(t *testing.T) {
	m := &stream.Message{Sink: "siem", Tenant: "acme", Records: []stream.Record{{Seq: 1, Body: []byte(`{"seq":1}`)}}}
	for _, enc := range []stream.Encoding{{OCSF: true}} {
		_, err := enc.NDJSON(m)
		if err == nil || !stream.Final(err) {
			t.Fatalf("NDJSON = %v (final %v), want a final error", err, stream.Final(err))
		}
	}
	rcv := newReceiver(t)
	wh, _ := stream.NewWebhook(rcv.URL, stream.WebhookOptions{Secret: secret, Encoding: stream.Encoding{OCSF: true}})
	if err := wh.Send(context.Background(), m); !stream.Final(err) {
		t.Fatalf("Send = %v, want final", err)
	}
	if n, _ := rcv.Lines(); n != 0 {
		t.Errorf("the receiver got %d lines", n)
	}
}

// ocsfStreamOf is streamOf in OCSF: the events as OCSF lines, the
// checkpoint a Trail line.
func ocsfStreamOf(t *testing.T, n int) [][]byte {
	t.Helper()
	enc := stream.Encoding{OCSF: true, Actions: catalog.Default()}
	var out [][]byte
	for _, l := range streamOf(t, n) {
		b, err := enc.Line(&l)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// A Checker checks an OCSF stream as it checks Trail's: gaps, changed
// bytes, and, mapping with the catalog, an OCSF attribute changed while
// the bytes carried are left alone.
func TestCheckerOCSF(t *testing.T) {
	edit := func(i int, old, new string) func(ls [][]byte) [][]byte {
		return func(ls [][]byte) [][]byte {
			ls[i] = bytes.Replace(ls[i], []byte(old), []byte(new), 1)
			return ls
		}
	}
	tests := []struct {
		name  string
		remap bool
		edit  func(ls [][]byte) [][]byte
		want  string
	}{
		{"as sent", true, func(ls [][]byte) [][]byte { return ls }, ""},
		{"as sent, not remapped", false, func(ls [][]byte) [][]byte { return ls }, ""},
		{"redelivered", true, func(ls [][]byte) [][]byte { return append(append(ls[:3:3], ls[1:3]...), ls[3:]...) }, ""},
		{"an event left out", true, func(ls [][]byte) [][]byte { return append(ls[:2:2], ls[3:]...) }, "gap"},
		{"a recorded byte changed", false, edit(1, `"id":"user-1"`, `"id":"user-X"`), "do not hash to the root"},
		{"a recorded byte changed, remapped", true, edit(1, `"id":"user-1"`, `"id":"user-X"`), "not the mapping"},
		{"an OCSF attribute changed", true, edit(1, `"uid":"user-1"`, `"uid":"user-X"`), "not the mapping"},
		{"an OCSF attribute changed, not remapped", false, edit(1, `"uid":"user-1"`, `"uid":"user-X"`), ""},
		{"another seq claimed", true, edit(1, `"sequence":2`, `"sequence":3`), "carries the bytes of"},
		{"no tenant", true, edit(1, `"tenant_uid":"acme"`, `"tenant_uid":""`), "cannot be checked"},
		{"not JSON", true, edit(1, `{`, `[`), "not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := stream.NewChecker(storetest.Signer().Verifier())
			if tt.remap {
				c.MapWith(catalog.Default())
			}
			ls := ocsfStreamOf(t, 5)
			orig := string(bytes.Join(ls, nil))
			ls = tt.edit(ls)
			if tt.want != "" && string(bytes.Join(ls, nil)) == orig {
				t.Fatal("the edit changes nothing")
			}
			var err error
			for _, b := range ls {
				if _, err = c.Check(b); err != nil {
					break
				}
			}
			got := ""
			switch {
			case err != nil:
				got = err.Error()
				if _, ok := err.(*stream.Gap); ok {
					got = "gap: " + got
				}
			case c.Verified("acme") < 5:
				got = fmt.Sprintf("pending: verified only %d", c.Verified("acme"))
			}
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// An event holding "<", ">" or "&" reaches the receiver with its bytes as
// recorded, in either encoding: a JSON encoder escaping them for HTML
// would change what the receiver hashes, and no stream of such an event
// would verify.
func TestHTMLCharactersStayVerbatim(t *testing.T) {
	for _, enc := range []stream.Encoding{{}, {OCSF: true}} {
		s := memory.New(storetest.Validator(), storetest.Signer())
		appendMixed(t, s, 1)
		m := &stream.Message{Sink: "siem", Tenant: "acme"}
		if err := s.ScanLeaves(context.Background(), "acme", 1, 0, func(l trail.Leaf) error {
			m.Records = append(m.Records, stream.Record{Seq: l.Seq, Body: append([]byte(nil), l.Body...)})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		note, _ := s.Checkpoint(context.Background(), "acme")
		m.Checkpoint = note
		body, err := enc.NDJSON(m)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(m.Records[0].Body, []byte("& <friends>")) {
			t.Fatalf("the stored event does not hold the characters: %s", m.Records[0].Body)
		}
		c := stream.NewChecker(storetest.Signer().Verifier())
		for _, b := range bytes.Split(bytes.TrimSpace(body), []byte("\n")) {
			if _, err := c.Check(b); err != nil {
				t.Fatalf("OCSF %v: %v", enc.OCSF, err)
			}
		}
		if c.Verified("acme") != 4 {
			t.Errorf("OCSF %v: verified %d of 4", enc.OCSF, c.Verified("acme"))
		}
	}
	// And Message.NDJSON, Trail's lines, the same.
	var l stream.Line
	m := &stream.Message{Tenant: "acme", Records: []stream.Record{{Seq: 1, Body: []byte(`{"a":"<&>"}`)}}}
	if err := json.Unmarshal(bytes.TrimSpace(m.NDJSON()), &l); err != nil || string(l.Event) != `{"a":"<&>"}` {
		t.Errorf("NDJSON carried %s, %v", l.Event, err)
	}
}

// FuzzParseLine: a receiver reads lines from outside; any bytes are parsed
// or refused, never a panic, and an OCSF line read is one whose carried
// bytes name its seq.
func FuzzParseLine(f *testing.F) {
	f.Add([]byte(`{"tenant":"acme","seq":1,"event":{"seq":1}}`))
	f.Add([]byte(`{"tenant":"acme","checkpoint":"note\n"}`))
	f.Add([]byte(`{"class_uid":3002,"metadata":{"uid":"e","sequence":1,"tenant_uid":"acme"},"unmapped":{"trail_event":{"id":"e","seq":1}}}`))
	f.Add([]byte(`{"class_uid":1,"metadata":{"sequence":-1}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := stream.ParseLine(b)
		if err != nil {
			return
		}
		if bytes.Contains(b, []byte("class_uid")) && l.Event != nil {
			var claim struct {
				Seq uint64 `json:"seq"`
			}
			if json.Unmarshal(l.Event, &claim) != nil {
				t.Fatalf("read an OCSF line whose bytes are not JSON: %s", b)
			}
		}
		c := stream.NewChecker(storetest.Signer().Verifier())
		c.Check(b) // must not panic
	})
}
