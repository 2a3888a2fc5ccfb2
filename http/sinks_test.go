package http_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	trailhttp "github.com/trailaudit/trail/http"
	"github.com/trailaudit/trail/internal/streamtest"
	"github.com/trailaudit/trail/sqlite"
	"github.com/trailaudit/trail/storetest"
	"github.com/trailaudit/trail/stream"
	"github.com/trailaudit/trail/stream/sinks"
)

// sinkServer is the API over a real SQLite store with, when run, a real
// sink supervisor beside it, as trail serve wires them. Keys: "admin"
// (acme, every scope), "reader" (acme, read), "globex" (globex, every
// scope).
type sinkServer struct {
	t    *testing.T
	url  string
	db   *sqlite.DB
	sv   *sinks.Supervisor // nil when not run
	keys map[string]string
}

func newSinkServer(t *testing.T, run bool) *sinkServer {
	t.Helper()
	cat := catalog.Default()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "trail.db"), sqlite.Options{Validator: validator(cat), Signer: storetest.Signer()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s := &sinkServer{t: t, db: db, keys: map[string]string{}}
	cfg := trailhttp.Config{Store: db, Writer: db, Keys: db, Catalog: cat, Sinks: db, Sessions: db,
		Verifier: storetest.Signer().Verifier(), Logger: slog.New(slog.DiscardHandler)}
	if run {
		s.sv, err = sinks.New(sinks.Config{Configs: db, Log: db, Cursors: db, Writer: db, Reload: time.Hour, MinBackoff: 5 * time.Millisecond,
			Sink: stream.Config{Poll: 5 * time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.sv.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		cfg.SinkRunner = s.sv
	}
	srv, err := trailhttp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	s.url = ts.URL
	for _, k := range []struct {
		name, tenant string
		scopes       []trail.KeyScope
	}{{"admin", "acme", trail.KeyScopes}, {"reader", "acme", []trail.KeyScope{trail.ScopeRead}}, {"globex", "globex", trail.KeyScopes}} {
		text, key, err := trail.NewAPIKey(k.tenant, k.name, k.scopes, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := db.CreateKey(context.Background(), key); err != nil {
			t.Fatal(err)
		}
		s.keys[k.name] = text
	}
	return s
}

// call sends a request as key that must answer want, and returns the body.
func (s *sinkServer) call(key, method, path, body string, want int) []byte {
	s.t.Helper()
	req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.keys[key])
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		s.t.Fatalf("%s %s: %d, want %d\n%s", method, path, res.StatusCode, want, b)
	}
	return b
}

// sinkJSON is a sink as the API shows it.
type sinkJSON struct {
	Name      string `json:"name"`
	Tenant    string `json:"tenant"`
	Kind      string `json:"kind"`
	URL       string `json:"url"`
	OnRefusal string `json:"on_refusal"`
	CreatedBy string `json:"created_by"`
	Status    struct {
		Running    bool    `json:"running"`
		Cursor     uint64  `json:"cursor"`
		Head       uint64  `json:"head"`
		LagEvents  uint64  `json:"lag_events"`
		LagSeconds float64 `json:"lag_seconds"`
		Delivered  uint64  `json:"delivered"`
		Stopped    bool    `json:"stopped"`
		LastError  string  `json:"last_error"`
	} `json:"status"`
}

func (s *sinkServer) sink(key, name string) sinkJSON {
	s.t.Helper()
	var v sinkJSON
	if err := json.Unmarshal(s.call(key, "GET", "/v1/sinks/"+name, "", 200), &v); err != nil {
		s.t.Fatal(err)
	}
	return v
}

func (s *sinkServer) appendN(tenant string, n int) {
	s.t.Helper()
	evs := make([]*trail.Event, n)
	for i := range evs {
		evs[i] = storetest.Login(fmt.Sprintf("user-%d", i))
	}
	if _, err := s.db.Append(context.Background(), tenant, evs, trail.AppendOptions{}); err != nil {
		s.t.Fatal(err)
	}
}

// A tenant's admin configures a sink through the API; the server's
// supervisor runs it at once and its status shows the delivery; every
// change is in the tenant's log, by the key, without the secret; a read
// of any sink never shows the secret; another tenant's sink is not found,
// as an unknown one is not.
func TestSinksAPI(t *testing.T) {
	s := newSinkServer(t, true)
	s.appendN("acme", 5)
	rcv := streamtest.NewReceiver(t, storetest.WebhookSecret, storetest.Signer().Verifier())
	b := s.call("admin", "POST", "/v1/sinks", `{"name":"siem","kind":"webhook","url":"`+rcv.URL+`","secret":"`+storetest.WebhookSecret+`"}`, 201)
	var created struct {
		Sink        sinkJSON `json:"sink"`
		RecordedSeq uint64   `json:"recorded_seq"`
		Secret      string   `json:"secret"`
	}
	if err := json.Unmarshal(b, &created); err != nil {
		t.Fatal(err)
	}
	if created.Sink.Name != "siem" || created.Sink.Tenant != "acme" || created.Sink.OnRefusal != "stop" || created.RecordedSeq != 6 || created.Secret != "" || strings.Contains(string(b), "whsec_") {
		t.Errorf("created %s: want acme's siem, on_refusal stop, recorded at 6, no secret shown", b)
	}
	ev, err := s.db.GetSeq(context.Background(), "acme", 6)
	if err != nil || ev.Action != catalog.AdminConfigChanged || ev.Actor.Type != trail.ActorAPIKey || ev.Context["config_key"] != "sink:siem" {
		t.Errorf("seq 6: %+v, %v; want admin_config_changed of sink:siem by the key", ev, err)
	}
	streamtest.Eventually(t, "the 6 events verified by the receiver", func() bool { return rcv.Verified("acme") == 6 })
	streamtest.Eventually(t, "the status caught up", func() bool { st := s.sink("admin", "siem").Status; return st.Cursor == 6 && st.LagEvents == 0 })
	if st := s.sink("admin", "siem").Status; !st.Running || st.Head != 6 || st.Delivered == 0 || st.Stopped || st.LastError != "" || st.LagSeconds != 0 {
		t.Errorf("status %+v, want running at head 6, delivered, no lag", st)
	}

	// A webhook given no secret gets one, shown this once.
	b = s.call("admin", "POST", "/v1/sinks", `{"name":"second","kind":"webhook","url":"https://siem.example.com/in","on_refusal":"skip"}`, 201)
	if err := json.Unmarshal(b, &created); err != nil || !strings.HasPrefix(created.Secret, "whsec_") || created.Sink.OnRefusal != "skip" {
		t.Errorf("created %s: want a secret made, on_refusal skip", b)
	}
	got, err := s.db.GetSink(context.Background(), "acme", "second")
	if err != nil || got.Secret != created.Secret {
		t.Errorf("stored %+v, %v; want the secret shown", got, err)
	}
	var list struct {
		Sinks []sinkJSON `json:"sinks"`
	}
	lb := s.call("admin", "GET", "/v1/sinks", "", 200)
	if err := json.Unmarshal(lb, &list); err != nil || len(list.Sinks) != 2 || list.Sinks[0].Name != "siem" || list.Sinks[1].Name != "second" {
		t.Errorf("list %s: want siem and second", lb)
	}
	if strings.Contains(string(lb), "whsec_") || strings.Contains(string(lb), `"secret"`) {
		t.Errorf("the list shows a secret: %s", lb)
	}

	// Another tenant sees none of acme's: its sink names are unknown.
	if err := json.Unmarshal(s.call("globex", "GET", "/v1/sinks", "", 200), &list); err != nil || len(list.Sinks) != 0 {
		t.Errorf("globex lists %+v", list.Sinks)
	}
	for _, req := range [][2]string{{"GET", "/v1/sinks/siem"}, {"DELETE", "/v1/sinks/siem"}, {"POST", "/v1/sinks/siem/resume"}} {
		var other, unknown trailhttp.Problem
		json.Unmarshal(s.call("globex", req[0], req[1], "", 404), &other)
		json.Unmarshal(s.call("globex", req[0], strings.Replace(req[1], "siem", "nope", 1), "", 404), &unknown)
		if other.Code != unknown.Code || strings.Replace(other.Detail, "siem", "nope", 1) != unknown.Detail {
			t.Errorf("%s by globex: %+v; an unknown sink: %+v; want the same answer", req, other, unknown)
		}
	}
	s.call("reader", "GET", "/v1/sinks", "", 403)
	s.call("reader", "POST", "/v1/sinks", `{"name":"x","kind":"syslog","address":"a:1"}`, 403)

	// Removed: recorded, stopped, gone.
	b = s.call("admin", "DELETE", "/v1/sinks/second", "", 200)
	var removed struct {
		RecordedSeq uint64 `json:"recorded_seq"`
	}
	json.Unmarshal(b, &removed)
	if ev, err := s.db.GetSeq(context.Background(), "acme", removed.RecordedSeq); err != nil || ev.Context["new_value"] != nil || strings.Contains(fmt.Sprint(ev.Context), "whsec_") {
		t.Errorf("the removal's record %+v, %v", ev, err)
	}
	s.call("admin", "GET", "/v1/sinks/second", "", 404)
	s.call("admin", "DELETE", "/v1/sinks/second", "", 404)
}

// The body of POST /v1/sinks is read strictly, and every bad field is
// named; a taken name is a conflict.
func TestSinksAPIRefuses(t *testing.T) {
	s := newSinkServer(t, false)
	s.call("admin", "POST", "/v1/sinks", `{"name":"logs","kind":"syslog","address":"logs.example.com:6514","tls":true}`, 201)
	for _, tt := range []struct {
		name, body string
		status     int
		fields     []string
	}{
		{"a taken name", `{"name":"logs","kind":"syslog","address":"other.example.com:514"}`, 409, nil},
		{"an unknown member", `{"name":"x","kind":"syslog","address":"a:1","tenant":"globex"}`, 400, []string{"tenant"}},
		{"a member in another case", `{"Name":"x","kind":"syslog","address":"a:1"}`, 400, []string{"Name"}},
		{"a member given twice", `{"name":"x","kind":"syslog","address":"a:1","name":"y"}`, 400, []string{"name"}},
		{"no kind", `{"name":"x"}`, 400, []string{"kind"}},
		{"bad fields", `{"name":"x","kind":"webhook","url":"ftp://x/","on_refusal":"retry","address":"a:1"}`, 400, []string{"on_refusal", "url", "address"}},
		{"a bad secret", `{"name":"x","kind":"webhook","url":"https://x.example.com/","secret":"nope"}`, 400, []string{"secret"}},
		{"a bad name", `{"name":"Has Space","kind":"syslog","address":"a:1"}`, 400, []string{"name"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var p trailhttp.Problem
			if err := json.Unmarshal(s.call("admin", "POST", "/v1/sinks", tt.body, tt.status), &p); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range p.Errors {
				got = append(got, f.Path)
			}
			slices.Sort(got)
			want := slices.Clone(tt.fields)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("problem %+v names %v, want %v", p, got, want)
			}
		})
	}
	var list struct {
		Sinks []sinkJSON `json:"sinks"`
	}
	json.Unmarshal(s.call("admin", "GET", "/v1/sinks", "", 200), &list)
	if len(list.Sinks) != 1 {
		t.Errorf("stored %+v, want the first alone", list.Sinks)
	}
}

// A server that does not run the sinks still configures them; their
// status says they are not running here, and none can be resumed.
func TestSinksAPINotRunHere(t *testing.T) {
	s := newSinkServer(t, false)
	s.call("admin", "POST", "/v1/sinks", `{"name":"logs","kind":"syslog","address":"logs.example.com:6514"}`, 201)
	if st := s.sink("admin", "logs").Status; st.Running || st.Stopped {
		t.Errorf("status %+v, want not running", st)
	}
	s.call("admin", "POST", "/v1/sinks/logs/resume", "", 409)
}

// A sink stopped by a refusal shows it (status, metric trail_sink_stopped
// 1); resumed through the API, recorded, it delivers again. Resuming one
// that runs is a conflict. /metrics has each configured sink's series.
func TestSinksAPIResumeAndMetrics(t *testing.T) {
	s := newSinkServer(t, true)
	s.appendN("acme", 3)
	rcv := streamtest.NewReceiver(t, storetest.WebhookSecret, storetest.Signer().Verifier())
	rcv.Refuse(true)
	s.call("admin", "POST", "/v1/sinks", `{"name":"siem","kind":"webhook","url":"`+rcv.URL+`","secret":"`+storetest.WebhookSecret+`"}`, 201)
	streamtest.Eventually(t, "the sink stopped", func() bool { return s.sink("admin", "siem").Status.Stopped })
	if st := s.sink("admin", "siem").Status; !strings.Contains(st.LastError, "schema says no") || st.LagEvents != 4 || st.LagSeconds <= 0 {
		t.Errorf("status %+v, want the receiver's answer, 4 events behind", st)
	}
	metrics := func() string {
		res, err := http.Get(s.url + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	streamtest.Eventually(t, "the stop recorded", func() bool { _, err := s.db.GetSeq(context.Background(), "acme", 5); return err == nil })
	m := metrics()
	for _, want := range []string{`trail_sink_stopped{sink="siem",tenant="acme"} 1`, `trail_sink_lag_events{sink="siem",tenant="acme"} 4`,
		`trail_sink_failures_total{sink="siem",tenant="acme"} 1`, `trail_sink_delivered_total{sink="siem",tenant="acme"} 0`,
		`trail_sink_skipped_total{sink="siem",tenant="acme"} 0`, `trail_sink_lag_seconds{sink="siem",tenant="acme"}`} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	rcv.Refuse(false)
	b := s.call("admin", "POST", "/v1/sinks/siem/resume", "", 200)
	var resumed struct {
		RecordedSeq uint64 `json:"recorded_seq"`
	}
	json.Unmarshal(b, &resumed)
	ev, err := s.db.GetSeq(context.Background(), "acme", resumed.RecordedSeq)
	if err != nil || ev.Action != catalog.SinkResumed || ev.Context["sink"] != "siem" || !strings.Contains(fmt.Sprint(ev.Context["stopped_by"]), "schema says no") {
		t.Errorf("the resume's record %+v, %v", ev, err)
	}
	// 3 events, the creation's record, the stop's and the resume's.
	streamtest.Eventually(t, "the resumed sink delivered all 6", func() bool { return rcv.Verified("acme") == 6 })
	streamtest.Eventually(t, "the status caught up", func() bool { st := s.sink("admin", "siem").Status; return st.Cursor == 6 && !st.Stopped })
	s.call("admin", "POST", "/v1/sinks/siem/resume", "", 409)
	if m := metrics(); !strings.Contains(m, `trail_sink_stopped{sink="siem",tenant="acme"} 0`) || !strings.Contains(m, `trail_sink_lag_events{sink="siem",tenant="acme"} 0`) {
		t.Errorf("/metrics after the resume:\n%s", m)
	}
	s.call("admin", "DELETE", "/v1/sinks/siem", "", 200)
	streamtest.Eventually(t, "the removed sink's series gone", func() bool { return !strings.Contains(metrics(), "trail_sink_stopped{") })
}

// ui signs in with key and fetches a UI page in that session; it returns
// the page's status and body.
func (s *sinkServer) ui(key, path string) (int, string) {
	s.t.Helper()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	signin, err := noRedirect.PostForm(s.url+"/ui/signin", url.Values{"key": {s.keys[key]}})
	if err != nil {
		s.t.Fatal(err)
	}
	signin.Body.Close()
	req, _ := http.NewRequest("GET", s.url+path, nil)
	for _, c := range signin.Cookies() {
		req.AddCookie(c)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// The UI's sinks page shows the tenant's sinks with their status, a
// receiver's answer escaped (it is the receiver's text); an admin key's
// navigation links it; a key without admin gets 403 and no link; another
// tenant sees none of them.
func TestUISinksPage(t *testing.T) {
	s := newSinkServer(t, true)
	s.appendN("acme", 2)
	hostileReceiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `<script>alert(1)</script>`, http.StatusBadRequest)
	}))
	defer hostileReceiver.Close()
	s.call("admin", "POST", "/v1/sinks", `{"name":"siem","kind":"webhook","url":"`+hostileReceiver.URL+`","secret":"`+storetest.WebhookSecret+`"}`, 201)
	s.call("admin", "POST", "/v1/sinks", `{"name":"rsyslog","kind":"syslog","address":"logs.example.com:6514","tls":true,"on_refusal":"skip"}`, 201)
	streamtest.Eventually(t, "the webhook sink stopped", func() bool { return s.sink("admin", "siem").Status.Stopped })
	status, page := s.ui("admin", "/ui/sinks")
	if status != 200 {
		t.Fatalf("/ui/sinks: %d\n%s", status, page)
	}
	for _, want := range []string{`id="sink-siem"`, `id="sink-rsyslog"`, `>stopped<`, "logs.example.com:6514", ">skip<", "&lt;script&gt;alert(1)&lt;/script&gt;",
		`href="/ui/sinks" aria-current="page"`, `of 3</span>`} {
		if !strings.Contains(page, want) {
			t.Errorf("/ui/sinks lacks %s", want)
		}
	}
	if strings.Contains(page, "<script>alert") || strings.Contains(page, "whsec_") {
		t.Error("/ui/sinks shows the receiver's markup unescaped, or a secret")
	}
	if status, page := s.ui("reader", "/ui/sinks"); status != 403 || strings.Contains(page, `href="/ui/sinks"`) {
		t.Errorf("a read key: /ui/sinks %d, links it %v; want 403 and no link", status, strings.Contains(page, `href="/ui/sinks"`))
	}
	if status, page := s.ui("globex", "/ui/sinks"); status != 200 || strings.Contains(page, "sink-siem") || !strings.Contains(page, "No sinks") {
		t.Errorf("globex: /ui/sinks %d shows acme's sinks", status)
	}
}
