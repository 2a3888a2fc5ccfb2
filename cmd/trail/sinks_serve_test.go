package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/trailaudit/trail/internal/streamtest"
	"github.com/trailaudit/trail/storetest"
	"github.com/trailaudit/trail/tlog"
)

// TestServeRunsSinks runs trail serve in-process and configures a webhook
// sink through its API, pointing at a receiver on 127.0.0.1 that checks
// the Standard Webhooks signatures and every line with a stream.Checker
// trusting only the verifier key serve printed: the events ingested
// arrive in order and verify against the signed checkpoints, the sink's
// status says so, and a stop of serve stops the sink, its cursor kept.
// inProcess is trail serve run in this process (serve, with o and its
// data in a directory of its own), for the tests that configure it through
// its API.
type inProcess struct {
	t              *testing.T
	e              *env
	url, key, vkey string // where it listens, the bootstrap admin key, the verifier key
	stop           func() // stops serve (once) and checks it stopped cleanly
}

// serveInProcess starts serve with o (its address, tenant acme, no rate
// limit and default session timeouts unless o says otherwise) and waits
// for it to print what it listens on and its keys.
func serveInProcess(t *testing.T, o serveOptions) *inProcess {
	t.Helper()
	p := serveIn(t, t.TempDir(), storeFlags{data: "data"}, o)
	if p.key == "" {
		t.Fatal("serve printed no bootstrap admin key")
	}
	return p
}

// serveIn is serveInProcess in directory dir, on the store sf names: one
// of the processes of a deployment others share (then it prints no
// bootstrap admin key, the first one having made it).
func serveIn(t *testing.T, dir string, sf storeFlags, o serveOptions) *inProcess {
	t.Helper()
	o.addr, o.tenant, o.grace, o.rate = "127.0.0.1:0", "acme", 5*time.Second, -1
	if o.sessions.idle == 0 {
		o.sessions = sessionFlags{idle: 30 * time.Minute, max: 12 * time.Hour}
	}
	pr, pw := io.Pipe()
	e := &env{stdin: strings.NewReader(""), stdout: pw, stderr: io.Discard, dir: dir, vars: map[string]string{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, e, &sf, o)
		pw.Close()
	}()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		}
	}
	t.Cleanup(stop)
	p := &inProcess{t: t, e: e, stop: stop}
	sc := bufio.NewScanner(pr)
	for p.vkey == "" && sc.Scan() {
		l := sc.Text()
		switch {
		case strings.Contains(l, "listening on http://"):
			p.url = strings.Fields(l[strings.Index(l, "http://"):])[0]
		case strings.HasPrefix(l, "trail_"):
			p.key = l
		case strings.HasPrefix(l, "Verifier key (for auditors): "):
			p.vkey = strings.TrimPrefix(l, "Verifier key (for auditors): ")
		}
	}
	go io.Copy(io.Discard, pr)
	if p.url == "" || p.vkey == "" {
		t.Fatalf("serve printed url %q, verifier key %q", p.url, p.vkey)
	}
	return p
}

// api makes a request with the admin key and returns the body of an
// answer with status want.
func (p *inProcess) api(method, path, ct, body string, want int) []byte {
	p.t.Helper()
	req, _ := http.NewRequest(method, p.url+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+p.key)
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		p.t.Fatalf("%s %s: %d, want %d\n%s", method, path, res.StatusCode, want, b)
	}
	return b
}

func TestServeRunsSinks(t *testing.T) {
	p := serveInProcess(t, serveOptions{sinks: true})
	v, err := tlog.NewVerifier(p.vkey)
	if err != nil {
		t.Fatal(err)
	}
	api, stop, e := p.api, p.stop, p.e
	rcv := streamtest.NewReceiver(t, storetest.WebhookSecret, v)
	api("POST", "/v1/sinks", "application/json", `{"name":"siem","kind":"webhook","url":"`+rcv.URL+`","secret":"`+storetest.WebhookSecret+`"}`, 201)
	var batch strings.Builder
	for _, u := range []string{"u-1", "u-2", "u-3", "u-4", "u-5"} {
		batch.WriteString(`{"action":"user_logout","actor":{"type":"user","id":"` + u + `"}}` + "\n")
	}
	api("POST", "/v1/events:batch", "application/x-ndjson", batch.String(), 201)
	// The sink's own record (seq 1) and the 5 events.
	streamtest.Eventually(t, "the receiver verified 6 events", func() bool { return rcv.Verified("acme") == 6 })
	var sink struct {
		Status struct {
			Running      bool
			Cursor, Head uint64
			LagEvents    uint64 `json:"lag_events"`
			Stopped      bool
			LastError    string `json:"last_error"`
			Delivered    uint64
			Failures     uint64
		}
	}
	streamtest.Eventually(t, "the sink's status at 6", func() bool {
		json.Unmarshal(api("GET", "/v1/sinks/siem", "", "", 200), &sink)
		return sink.Status.Cursor == 6
	})
	if st := sink.Status; !st.Running || st.Head != 6 || st.LagEvents != 0 || st.Stopped || st.LastError != "" || st.Delivered == 0 {
		t.Errorf("status %+v, want running, caught up at 6", st)
	}
	if lines, _ := rcv.Lines(); lines < 7 {
		t.Errorf("the receiver read %d lines, want the 6 events and a checkpoint", lines)
	}
	m := string(api("GET", "/metrics", "", "", 200))
	if !strings.Contains(m, `trail_sink_lag_events{sink="siem",tenant="acme"} 0`) || !strings.Contains(m, `trail_sink_stopped{sink="siem",tenant="acme"} 0`) {
		t.Errorf("/metrics lacks the sink's series")
	}

	stop()
	d, err := (&storeFlags{data: "data"}).open(context.Background(), e, false)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if c, err := d.Cursors.Cursor(context.Background(), "sink.siem", "acme"); err != nil || c != 6 {
		t.Errorf("after serve stopped, the sink's cursor is %d, %v; want 6", c, err)
	}
}

// TestServeSinksOff: trail serve --sinks=false (the other processes on one
// PostgreSQL database) configures sinks but runs none: a configured sink
// delivers nothing, and its status says it is not running here.
func TestServeSinksOff(t *testing.T) {
	p := serveInProcess(t, serveOptions{sinks: false})
	v, err := tlog.NewVerifier(p.vkey)
	if err != nil {
		t.Fatal(err)
	}
	rcv := streamtest.NewReceiver(t, storetest.WebhookSecret, v)
	p.api("POST", "/v1/sinks", "application/json", `{"name":"siem","kind":"webhook","url":"`+rcv.URL+`","secret":"`+storetest.WebhookSecret+`"}`, 201)
	p.api("POST", "/v1/events", "application/json", `{"action":"user_logout","actor":{"type":"user","id":"u-1"}}`, 201)
	var sink struct{ Status struct{ Running bool } }
	json.Unmarshal(p.api("GET", "/v1/sinks/siem", "", "", 200), &sink)
	time.Sleep(200 * time.Millisecond) // a running sink polls every second; none should start at all
	if lines, _ := rcv.Lines(); sink.Status.Running || lines != 0 {
		t.Errorf("with --sinks=false: status running %v, the receiver read %d lines; want neither", sink.Status.Running, lines)
	}
}
