package http_test

import (
	"bytes"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	trailhttp "github.com/trailaudit/trail/http"
	"github.com/trailaudit/trail/storetest"
	"github.com/trailaudit/trail/tlog"
)

// TestExportBundle: GET /v1/export?verifiable=1 answers a bundle that
// verifies with the verifier key alone: a complete window with no filter
// but since and until, a selection otherwise; it is recorded as an export,
// and what it cannot be is refused naming the parameter.
func TestExportBundle(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			h := newHarness(t, b.open, trailhttp.Limits{})
			for i := range 4 {
				h.ok(201, "acme", "POST", "/v1/events", loginOf(fmt.Sprintf("u-%d", i)), nil)
			}
			since := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
			for _, tc := range []struct {
				name, query, window string
				complete            bool
				events              int // event lines
			}{
				{"the whole log", "verifiable=1", "complete", true, 4},
				{"a window", "verifiable=true&since=" + url.QueryEscape(since), "complete", true, 4 + 1}, // and the first export's records
				{"a selection", "verifiable=1&actor=u-1", "selection", false, 1},
			} {
				status, hdr, body := h.do("acme-export", "GET", "/v1/export?"+tc.query, "", "")
				if status != 200 || hdr.Get("Trail-Bundle-Window") != tc.window {
					t.Fatalf("%s: %d, window %q: %s", tc.name, status, hdr.Get("Trail-Bundle-Window"), body)
				}
				rep, err := tlog.VerifyBundle(bytes.NewReader(body), storetest.Signer().Verifier())
				if err != nil || !rep.OK() || rep.Tenant != "acme" {
					t.Fatalf("%s: %+v, %v", tc.name, rep, err)
				}
				if got := rep.Window != nil && rep.Window.Complete; got != tc.complete || rep.Events < tc.events {
					t.Errorf("%s: window %+v, %d event lines; want complete %v, at least %d lines", tc.name, rep.Window, rep.Events, tc.complete, tc.events)
				}
			}
			done := 0
			for _, ev := range h.events("acme") {
				if ev.Action == "data_exported" && ev.Context["export_format"] == "trail-bundle" {
					done++
				}
			}
			if done != 3 {
				t.Errorf("%d bundle exports on record, want 3", done)
			}
			for query, field := range map[string]string{
				"verifiable=0":            "verifiable",
				"verifiable=yes":          "verifiable",
				"verifiable=1&format=csv": "format",
				"verifiable=1&bogus=1":    "bogus",
			} {
				p := h.problem(400, trail.EINVALID, "acme-export", "GET", "/v1/export?"+query, "", "")
				if len(p.Errors) != 1 || p.Errors[0].Path != field {
					t.Errorf("%s: %+v, want the error to name %s", query, p, field)
				}
			}
			// The tenant is the key's: globex has no log to prove.
			if status, _, body := h.do("globex", "GET", "/v1/export?verifiable=1", "", ""); status == 200 || strings.Contains(string(body), "acme") {
				t.Errorf("globex's bundle: %d %s", status, body)
			}
		})
	}
}
