package http_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/trailaudit/trail"
	trailhttp "github.com/trailaudit/trail/http"
)

// TestContentType: a body is read as what its Content-Type says, and only
// as a type its route reads, in UTF-8: anything else is 415 naming the
// header, and nothing is stored.
func TestContentType(t *testing.T) {
	h := newHarness(t, backends[0].open, trailhttp.Limits{})
	const (
		event = "/v1/events"
		batch = "/v1/events:batch"
	)
	for _, tc := range []struct {
		path, ctype, body string
		want              int
	}{
		{event, "application/json", login, 201},
		{event, "application/json; charset=utf-8", login, 201},
		{event, "Application/JSON; charset=UTF-8", login, 201},
		{event, "", login, 415},
		{event, "text/xml", login, 415},
		{event, "image/png", login, 415},
		{event, "application/x-www-form-urlencoded", login, 415}, // curl -d without -H
		{event, "application/x-ndjson", login, 415},
		{event, "application/json; charset=utf-16", login, 415},
		{event, "application/json; charset=iso-8859-1", login, 415},
		{event, "application/json; charset", login, 415}, // does not parse
		{batch, "application/x-ndjson", login + "\n" + login, 201},
		{batch, "application/x-ndjson; charset=utf-8", login, 201},
		{batch, "application/json", "[" + login + "]", 201},
		{batch, "application/x-ndjson; charset=utf-16", login, 415},
		{batch, "application/json; charset=utf-16le", "[" + login + "]", 415},
		{batch, "", login, 415},
		{batch, "text/plain", login, 415},
		{batch, "text/xml", "<a/>", 415},
		{"/v1/actions", "text/plain", `{"name":"invoice_paid","category":"billing","outcome":"success"}`, 415},
		{"/v1/actions", "", `{"name":"invoice_paid","category":"billing","outcome":"success"}`, 415},
		{"/v1/keys", "application/json; charset=utf-16", `{"tenant":"acme","scopes":["read"]}`, 415},
	} {
		before := len(h.events("acme"))
		status, _, b := h.do("admin", "POST", tc.path, tc.ctype, tc.body)
		if status != tc.want {
			t.Errorf("POST %s with Content-Type %q: status %d, want %d: %s", tc.path, tc.ctype, status, tc.want, b)
			continue
		}
		if tc.want != 415 {
			continue
		}
		var p trailhttp.Problem
		if err := json.Unmarshal(b, &p); err != nil || p.Code != "unsupported_media_type" || !hasPath(p, "Content-Type") {
			t.Errorf("POST %s with Content-Type %q: the problem does not name the header: %s", tc.path, tc.ctype, b)
		}
		if n := len(h.events("acme")); n != before {
			t.Errorf("POST %s with Content-Type %q: a refused body changed the log: %d events, then %d", tc.path, tc.ctype, before, n)
		}
	}
}

// TestIdempotencyKeyHeader: an Idempotency-Key is a client's token, at
// most 255 bytes of visible ASCII; another is 400 naming the header, and
// nothing is stored (it was once kept whole, 60 KB of it).
func TestIdempotencyKeyHeader(t *testing.T) {
	for _, route := range []struct{ path, body string }{{"/v1/events", login}, {"/v1/events:batch", "[" + login + "]"}} {
		h := newHarness(t, backends[0].open, trailhttp.Limits{})
		for _, tc := range []struct {
			key  string
			want int
		}{
			{"tc-0123456789abcdef0123456789abcdef", 201},
			{strings.Repeat("k", 255), 201},
			{strings.Repeat("k", 256), 400},
			{strings.Repeat("k", 60<<10), 400},
			{"key with spaces", 400},
			{"clé", 400},
		} {
			before := len(h.events("acme"))
			status, _, b := h.do("acme", "POST", route.path, "application/json", route.body, "Idempotency-Key", tc.key)
			if status != tc.want {
				t.Errorf("POST %s with a %d-byte Idempotency-Key %.20q: %d, want %d: %s", route.path, len(tc.key), tc.key, status, tc.want, b)
				continue
			}
			if tc.want != 400 {
				continue
			}
			var p trailhttp.Problem
			if json.Unmarshal(b, &p) != nil || p.Code != trail.EINVALID || !hasPath(p, "Idempotency-Key") {
				t.Errorf("POST %s with a %d-byte Idempotency-Key: the problem does not name the header: %s", route.path, len(tc.key), b)
			}
			if n := len(h.events("acme")); n != before {
				t.Errorf("POST %s: a refused Idempotency-Key stored events: %d, then %d", route.path, before, n)
			}
		}
	}
}
