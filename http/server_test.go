package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/detect"
	trailhttp "github.com/trailaudit/trail/http"
	"github.com/trailaudit/trail/internal/ledger"
	"github.com/trailaudit/trail/internal/pgtest"
	"github.com/trailaudit/trail/memory"
	"github.com/trailaudit/trail/postgres"
	"github.com/trailaudit/trail/sqlite"
	"github.com/trailaudit/trail/storetest"
	"github.com/trailaudit/trail/tlog"
)

// backend is a store the API runs on in these tests.
type backend interface {
	trail.Store
	ledger.Writer
	trail.KeyStore
	trail.ActionStore
	trail.HoldStore
	trail.TenantLister
	trail.SessionStore
	trail.SinkStore
	trail.RuleStore
	trail.CursorStore
	trail.CosignatureStore
}

// backends open a fresh store of each kind, with cat as its catalog.
var backends = []struct {
	name string
	open func(t *testing.T, cat *catalog.Catalog) backend
}{
	{"memory", func(t *testing.T, cat *catalog.Catalog) backend {
		return memory.New(validator(cat), storetest.Signer())
	}},
	{"sqlite", func(t *testing.T, cat *catalog.Catalog) backend {
		db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "trail.db"), sqlite.Options{Validator: validator(cat), Signer: storetest.Signer()})
		if err != nil {
			t.Fatal(err)
		}
		return db
	}},
	{"postgres", func(t *testing.T, cat *catalog.Catalog) backend {
		db, err := postgres.Open(context.Background(), pgtest.ServerURL(), postgres.Options{Validator: validator(cat), Signer: storetest.Signer(), Schema: pgtest.NewSchema(t)})
		if err != nil {
			t.Fatal(err)
		}
		return db
	}},
}

func validator(cat *catalog.Catalog) *trail.Validator {
	v := storetest.Validator()
	v.Actions = cat
	return v
}

// harness is a server on a store, with keys of two tenants.
type harness struct {
	t     *testing.T
	url   string
	store backend
	srv   *trailhttp.Server
	keys  map[string]string // name → key text
	// detect runs the detection rules over the store once a test calls
	// runDetections; until then the rule sets have no status.
	detect *detect.Supervisor
}

// newHarness starts the API on a fresh store. Keys: "admin" (acme, every
// scope), "acme" (acme: ingest, read, export, verify), "globex" (globex:
// the same), "acme-<scope>" for each scope alone, and the operator
// credential "operator".
func newHarness(t *testing.T, open func(*testing.T, *catalog.Catalog) backend, limits trailhttp.Limits) *harness {
	t.Helper()
	return newHarnessWith(t, open, func(c *trailhttp.Config, _ backend) { c.Limits = limits })
}

// newHarnessWith is newHarness with the server's config changed by edit,
// given the store.
func newHarnessWith(t *testing.T, open func(*testing.T, *catalog.Catalog) backend, edit func(*trailhttp.Config, backend)) *harness {
	t.Helper()
	cat := catalog.Default()
	store := open(t, cat)
	t.Cleanup(func() { store.Close() })
	sv, err := detect.NewSupervisor(detect.SupervisorConfig{Log: store, Tenants: store, Rules: store, Cursors: store, Writer: store,
		Actions: cat, Reload: 20 * time.Millisecond, Poll: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c := trailhttp.Config{Store: store, Writer: store, Keys: store, Catalog: cat, Actions: store, Holds: store, Tenants: store, Sessions: store,
		Rules: store, Detections: sv,
		Verifier: storetest.Signer().Verifier(), Logger: slog.New(slog.DiscardHandler),
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	edit(&c, store)
	srv, err := trailhttp.New(c)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	h := &harness{t: t, url: ts.URL, store: store, srv: srv, keys: map[string]string{}, detect: sv}
	all := []trail.KeyScope{trail.ScopeIngest, trail.ScopeRead, trail.ScopeExport, trail.ScopeVerify}
	h.key("admin", "acme", trail.KeyScopes...)
	h.key("acme", "acme", all...)
	h.key("globex", "globex", all...)
	for _, s := range trail.KeyScopes {
		h.key("acme-"+string(s), "acme", s)
	}
	h.operator("operator")
	return h
}

// operator makes an operator credential named name.
func (h *harness) operator(name string) {
	text, k, err := trail.NewOperatorKey(name, time.Now())
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.store.CreateKey(context.Background(), k); err != nil {
		h.t.Fatal(err)
	}
	h.keys[name] = text
}

func (h *harness) key(name, tenant string, scopes ...trail.KeyScope) {
	text, k, err := trail.NewAPIKey(tenant, name, scopes, time.Now())
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.store.CreateKey(context.Background(), k); err != nil {
		h.t.Fatal(err)
	}
	h.keys[name] = text
}

// do sends a request with the named key ("" for none) and returns the
// status, headers and body.
func (h *harness) do(key, method, path, contentType, body string, hdr ...string) (int, http.Header, []byte) {
	h.t.Helper()
	return h.doAt(h.url, key, method, path, contentType, body, hdr...)
}

// doAt is do to the server at url (one of serveFailing's).
func (h *harness) doAt(url, key, method, path, contentType, body string, hdr ...string) (int, http.Header, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(method, url+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+h.keys[key])
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return res.StatusCode, res.Header, b
}

// ok sends a request that must answer want, and decodes its JSON into out.
func (h *harness) ok(want int, key, method, path, body string, out any) {
	h.t.Helper()
	ct := ""
	if body != "" {
		ct = "application/json"
	}
	status, _, b := h.do(key, method, path, ct, body)
	if status != want {
		h.t.Fatalf("%s %s: status %d, want %d\n%s", method, path, status, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			h.t.Fatalf("%s %s: %v\n%s", method, path, err, b)
		}
	}
}

// problem sends a request that must fail with status and code, and
// returns the problem.
func (h *harness) problem(status int, code, key, method, path, contentType, body string) trailhttp.Problem {
	h.t.Helper()
	got, hdr, b := h.do(key, method, path, contentType, body)
	var p trailhttp.Problem
	if err := json.Unmarshal(b, &p); err != nil || got != status || p.Code != code || hdr.Get("Content-Type") != "application/problem+json" {
		h.t.Fatalf("%s %s: status %d (%s), body %s; want %d problem with code %s", method, path, got, hdr.Get("Content-Type"), b, status, code)
	}
	return p
}

const login = `{"action":"user_login_success","actor":{"type":"user","id":"u-1","email":"u1@example.com"},"context":{"method":"password","mfa":true,"remember_me":false},"scope":{"organization":"org-1","workspace":"ws-1"}}`

func loginOf(actor string) string { return strings.Replace(login, `"u-1"`, `"`+actor+`"`, 1) }

// events returns the tenant's events straight from the store.
func (h *harness) events(tenant string) []*trail.Event {
	h.t.Helper()
	var out []*trail.Event
	err := h.store.Scan(context.Background(), tenant, 1, 0, func(ev *trail.Event) error {
		out = append(out, ev)
		return nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

func TestAPI(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Run("IngestSearchProve", func(t *testing.T) { testIngestSearchProve(t, newHarness(t, b.open, trailhttp.Limits{})) })
			t.Run("Batch", func(t *testing.T) { testBatch(t, newHarness(t, b.open, trailhttp.Limits{})) })
			t.Run("ScopesAndTenants", func(t *testing.T) { testScopesAndTenants(t, newHarness(t, b.open, trailhttp.Limits{})) })
			t.Run("ReadsAreRecorded", func(t *testing.T) { testReadsRecorded(t, newHarness(t, b.open, trailhttp.Limits{})) })
			t.Run("Export", func(t *testing.T) { testExport(t, newHarness(t, b.open, trailhttp.Limits{})) })
			t.Run("UnknownActionFilter", func(t *testing.T) { testUnknownActionFilter(t, newHarness(t, b.open, trailhttp.Limits{})) })
			t.Run("ActionsAndKeys", func(t *testing.T) { testActionsAndKeys(t, newHarness(t, b.open, trailhttp.Limits{})) })
			t.Run("ActionsPerTenant", func(t *testing.T) { testActionsPerTenant(t, newHarness(t, b.open, trailhttp.Limits{})) })
		})
	}
}

func testIngestSearchProve(t *testing.T, h *harness) {
	var one struct {
		Count int
		Event *trail.Event
	}
	h.ok(201, "acme", "POST", "/v1/events", login, &one)
	if one.Count != 1 || one.Event.Seq != 1 || one.Event.Tenant != "acme" || one.Event.Request.IP != "127.0.0.1" {
		t.Fatalf("appended %+v; want seq 1 of acme, stamped with the client IP", one.Event)
	}
	// The IP an event names is kept; a trusted proxy's X-Forwarded-For is
	// believed for one that names none.
	status, _, b := h.do("acme", "POST", "/v1/events", "application/json", loginOf("u-2"), "X-Forwarded-For", "198.51.100.9, 127.0.0.2")
	if status != 201 || !strings.Contains(string(b), `"ip":"198.51.100.9"`) {
		t.Fatalf("through a proxy: %d %s", status, b)
	}
	// Idempotency: the same key and body replays; another body conflicts.
	st1, _, b1 := h.do("acme", "POST", "/v1/events", "application/json", loginOf("u-3"), "Idempotency-Key", "k-1")
	st2, hdr, b2 := h.do("acme", "POST", "/v1/events", "application/json", loginOf("u-3"), "Idempotency-Key", "k-1")
	if st1 != 201 || st2 != 200 || hdr.Get("Idempotent-Replayed") != "true" || !bytes.Equal(bytes.Replace(b1, []byte(`"count"`), nil, 1), bytes.Replace(b2, []byte(`"count"`), nil, 1)) && !strings.Contains(string(b2), `"replay":true`) {
		t.Fatalf("idempotent replay: %d %s / %d %s", st1, b1, st2, b2)
	}
	if st, _, b := h.do("acme", "POST", "/v1/events", "application/json", loginOf("u-4"), "Idempotency-Key", "k-1"); st != 409 || !strings.Contains(string(b), `"code":"conflict"`) {
		t.Fatalf("the same idempotency key with another body: %d %s", st, b)
	}

	var p struct {
		Events []*trail.Event
		Next   string
	}
	h.ok(200, "acme", "GET", "/v1/events?actor=u-2", "", &p)
	if len(p.Events) != 1 || p.Events[0].Actor.ID != "u-2" {
		t.Fatalf("search by actor: %+v", p.Events)
	}
	h.ok(200, "acme", "GET", "/v1/events?action=user_login_success&limit=2&order=desc", "", &p)
	if len(p.Events) != 2 || p.Next == "" || p.Events[0].Seq < p.Events[1].Seq {
		t.Fatalf("newest first, two a page: %d events, next %q", len(p.Events), p.Next)
	}
	// Attempts with no outcome yet.
	h.ok(201, "acme", "POST", "/v1/events", `{"action":"user_login_attempted","actor":{"type":"user","id":"u-9"},"correlation_id":"c-9","context":{"email":"u9@example.com","method":"password"}}`, nil)
	h.ok(200, "acme", "GET", "/v1/events?open_attempts=true", "", &p)
	if len(p.Events) != 1 || p.Events[0].CorrelationID != "c-9" {
		t.Fatalf("open attempts: %+v", p.Events)
	}
	var ev trail.Event
	h.ok(200, "acme", "GET", "/v1/events/"+one.Event.ID, "", &ev)
	if ev.ID != one.Event.ID {
		t.Fatalf("get by id: %+v", ev)
	}

	// The latest checkpoint verifies, and proves events and older sizes.
	var cp struct {
		Checkpoint string
		Size       uint64
	}
	h.ok(200, "acme-verify", "GET", "/v1/checkpoint", "", &cp)
	v := storetest.Signer().Verifier()
	signed, err := v.Open("acme", []byte(cp.Checkpoint))
	if err != nil || signed.Size != cp.Size || cp.Size < 3 {
		t.Fatalf("checkpoint %+v: %v", cp, err)
	}
	var incl struct {
		LeafHash   []byte `json:"leaf_hash"`
		Proof      [][]byte
		Event      json.RawMessage
		Checkpoint string
	}
	h.ok(200, "acme", "GET", "/v1/proofs/inclusion?seq=2", "", &incl) // read and verify: the event comes with its proof
	if !bytes.Equal(tlog.LeafHash(incl.Event), incl.LeafHash) {
		t.Fatal("the proof's event bytes do not hash to its leaf hash")
	}
	latest, err := v.Open("acme", []byte(incl.Checkpoint))
	if err != nil {
		t.Fatal(err)
	}
	if err := tlog.VerifyInclusion(incl.LeafHash, 1, latest.Size, incl.Proof, latest.Root); err != nil {
		t.Fatal(err)
	}
	var cons struct {
		Proof      [][]byte
		Checkpoint string
	}
	h.ok(200, "acme-verify", "GET", "/v1/proofs/consistency?from=1", "", &cons)
	first := h.firstCheckpoint("acme")
	l2, _ := v.Open("acme", []byte(cons.Checkpoint))
	if err := tlog.VerifyConsistency(1, l2.Size, cons.Proof, first.Root, l2.Root); err != nil {
		t.Fatal(err)
	}
	h.problem(400, trail.EINVALID, "acme-verify", "GET", "/v1/proofs/inclusion?seq=999", "", "")
	h.problem(400, trail.EINVALID, "acme-verify", "GET", "/v1/proofs/inclusion", "", "")

	// Bad input is refused naming the field.
	pr := h.problem(400, trail.EINVALID, "acme", "POST", "/v1/events", "application/json", `{"action":"user_login_success","actor":{"type":"robot","id":"x"},"colour":1}`)
	if !hasPath(pr, "colour") {
		t.Errorf("unknown member not named: %+v", pr)
	}
	pr = h.problem(400, trail.EINVALID, "acme", "GET", "/v1/events?actr=u-1&limit=0", "", "")
	if !hasPath(pr, "actr") || !hasPath(pr, "limit") {
		t.Errorf("bad query parameters not named: %+v", pr)
	}
	h.problem(404, trail.ENOTFOUND, "acme", "GET", "/v1/events/nope", "", "")
}

// firstCheckpoint returns the tenant's first stored checkpoint.
func (h *harness) firstCheckpoint(tenant string) *tlog.Checkpoint {
	var first *tlog.Checkpoint
	h.store.Checkpoints(context.Background(), tenant, func(note []byte) error {
		if first == nil {
			first, _ = storetest.Signer().Verifier().Open(tenant, note)
		}
		return nil
	})
	return first
}

func hasPath(p trailhttp.Problem, path string) bool {
	return slices.ContainsFunc(p.Errors, func(f trail.FieldError) bool { return f.Path == path })
}

func testBatch(t *testing.T, h *harness) {
	nd := loginOf("u-1") + "\n\n" + loginOf("u-2") + "\n"
	var res struct {
		Count int
		IDs   []string
	}
	status, _, b := h.do("acme", "POST", "/v1/events:batch", "application/x-ndjson", nd)
	if status != 201 || json.Unmarshal(b, &res) != nil || res.Count != 2 || len(res.IDs) != 2 {
		t.Fatalf("NDJSON batch: %d %s", status, b)
	}
	status, _, b = h.do("acme", "POST", "/v1/events:batch", "application/json", "["+loginOf("u-3")+","+loginOf("u-4")+"]")
	if status != 201 || !strings.Contains(string(b), `"count":2`) {
		t.Fatalf("JSON array batch: %d %s", status, b)
	}
	// All or nothing: one bad line refuses the batch and names it, whether
	// it does not parse or breaks a rule.
	p := h.problem(400, trail.EINVALID, "acme", "POST", "/v1/events:batch", "application/x-ndjson", loginOf("u-5")+"\n{not json\n")
	if !hasPath(p, "[1]") {
		t.Errorf("a line that does not parse is not named: %+v", p.Errors)
	}
	p = h.problem(400, trail.EINVALID, "acme", "POST", "/v1/events:batch", "application/x-ndjson", loginOf("u-5")+"\n"+strings.Replace(login, `"user"`, `"robot"`, 1))
	if !hasPath(p, "[1].actor.type") {
		t.Errorf("an invalid line is not named: %+v", p.Errors)
	}
	// A batch large enough to be parsed on several cores names every bad
	// line, in order; a line over the event limit is refused as such.
	var big []string
	for i := range 100 {
		big = append(big, loginOf(fmt.Sprint("u-", i)))
	}
	big[3], big[40], big[99] = "{not json", `{"action":"user_login_success","colour":"red"}`, "[]"
	p = h.problem(400, trail.EINVALID, "acme", "POST", "/v1/events:batch", "application/x-ndjson", strings.Join(big, "\n"))
	var paths []string
	for _, e := range p.Errors {
		paths = append(paths, e.Path)
	}
	if len(paths) != 3 || !strings.HasPrefix(paths[0], "[3]") || !strings.HasPrefix(paths[1], "[40]") || !strings.HasPrefix(paths[2], "[99]") {
		t.Errorf("a batch of 100 with bad lines 3, 40 and 99 names %v", paths)
	}
	long := `{"action":"user_login_success","reason":"` + strings.Repeat("x", trail.MaxEventBytes) + `"}`
	if p := h.problem(400, trail.EINVALID, "acme", "POST", "/v1/events:batch", "application/x-ndjson", login+"\n"+long+"\n"); !strings.Contains(p.Detail, "a line is over") {
		t.Errorf("a line over the event limit: %+v", p)
	}
	// Trail's own records (a prune, a legal hold, an erasure) are never
	// ingested: a key allowed to ingest cannot forge one, nor a record of
	// another key's read (an api_key actor).
	forgeries := []struct{ json, path string }{
		{`{"action":"data_viewed","actor":{"type":"api_key","id":"key-of-the-admin"}}`, "actor.type"},
	}
	for _, ev := range storetest.TrailRecords() {
		forgeries = append(forgeries, struct{ json, path string }{`{"action":"` + ev.Action + `","actor":{"type":"user","id":"u-9"}}`, "action"})
	}
	for _, f := range forgeries {
		p = h.problem(400, trail.EINVALID, "acme", "POST", "/v1/events:batch", "application/x-ndjson", loginOf("u-5")+"\n"+f.json)
		if !hasPath(p, "[1]."+f.path) {
			t.Errorf("a forged %s is not refused by name: %+v", f.json, p.Errors)
		}
		if p := h.problem(400, trail.EINVALID, "acme", "POST", "/v1/events", "application/json", f.json); !hasPath(p, "[0]."+f.path) {
			t.Errorf("a forged %s is not refused by name: %+v", f.json, p.Errors)
		}
	}
	// What the log holds: the 4 events stored, and the one alert of the
	// key's forgeries (one per key per hour, however many).
	var actions []string
	for _, ev := range h.events("acme") {
		actions = append(actions, ev.Action)
	}
	if want := "user_login_success user_login_success user_login_success user_login_success alert_raised"; strings.Join(actions, " ") != want {
		t.Errorf("after refused batches the log holds %v, want %s", actions, want)
	}
}

// routes lists every /v1 route with a request that passes validation and
// the scope it needs.
var routes = []struct {
	method, path, body string
	scope              trail.KeyScope
}{
	{"POST", "/v1/events", login, trail.ScopeIngest},
	{"POST", "/v1/events:batch", login, trail.ScopeIngest},
	{"GET", "/v1/events", "", trail.ScopeRead},
	{"GET", "/v1/events/EVENT", "", trail.ScopeRead},
	{"GET", "/v1/export", "", trail.ScopeExport},
	{"GET", "/v1/checkpoint", "", trail.ScopeVerify},
	{"GET", "/v1/proofs/inclusion?seq=1", "", trail.ScopeVerify},
	{"GET", "/v1/proofs/consistency?from=1", "", trail.ScopeVerify},
	{"GET", "/v1/actions", "", trail.ScopeRead},
	{"POST", "/v1/actions", `{"name":"invoice_paid","category":"billing","outcome":"success"}`, trail.ScopeAdmin},
	{"GET", "/v1/keys", "", trail.ScopeAdmin},
	{"POST", "/v1/keys", `{"tenant":"acme","scopes":["read"]}`, trail.ScopeAdmin},
	{"DELETE", "/v1/keys/KEY", "", trail.ScopeAdmin},
	{"GET", "/v1/holds", "", trail.ScopeAdmin},
	{"POST", "/v1/holds", `{"reason":"case 1"}`, trail.ScopeAdmin},
	{"DELETE", "/v1/holds/h-1", "", trail.ScopeAdmin},
	{"POST", "/v1/subjects/u-1/erase", "", trail.ScopeAdmin},
}

func testScopesAndTenants(t *testing.T, h *harness) {
	var one struct{ Event *trail.Event }
	h.ok(201, "acme", "POST", "/v1/events", login, &one)
	// globex has no log yet (its reads below start one: reads are recorded).
	h.problem(404, trail.ENOTFOUND, "globex", "GET", "/v1/checkpoint", "", "")
	for _, r := range routes {
		path := strings.Replace(r.path, "EVENT", one.Event.ID, 1)
		t.Run(r.method+" "+r.path, func(t *testing.T) {
			h.problem(401, trail.EUNAUTHORIZED, "", r.method, path, "application/json", r.body)
			for _, s := range trail.KeyScopes {
				if s != r.scope {
					h.problem(403, trail.EFORBIDDEN, "acme-"+string(s), r.method, path, "application/json", r.body)
				}
			}
		})
	}
	// A key that is not one, or a wrong secret.
	st, _, _ := h.do("", "GET", "/v1/events", "", "", "Authorization", "Bearer trail_000000000000_"+strings.Repeat("A", 43))
	if st != 401 {
		t.Errorf("unknown key: %d", st)
	}
	// Another tenant's key sees none of acme's events, proofs or checkpoints.
	h.problem(404, trail.ENOTFOUND, "globex", "GET", "/v1/events/"+one.Event.ID, "", "")
	var p struct{ Events []*trail.Event }
	h.ok(200, "globex", "GET", "/v1/events?actor=u-1", "", &p)
	if len(p.Events) != 0 {
		t.Errorf("globex sees acme's events: %+v", p.Events)
	}
	var cp struct{ Origin string }
	h.ok(200, "globex", "GET", "/v1/checkpoint", "", &cp)
	if cp.Origin != "trail.test/trail/globex" {
		t.Errorf("globex's checkpoint: origin %q", cp.Origin)
	}
	status, _, b := h.do("globex", "GET", "/v1/export", "", "")
	if status != 200 || strings.Contains(string(b), one.Event.ID) {
		t.Errorf("globex export shows acme's event: %d %s", status, b)
	}
	// The tenant comes from the key, never from the request.
	h.problem(400, trail.EINVALID, "globex", "POST", "/v1/events", "application/json", strings.Replace(login, `{"action"`, `{"tenant":"acme","action"`, 1))
	if n := len(h.events("acme")); n != 1 {
		t.Errorf("acme's log has %d events after globex's attempts, want 1", n)
	}
}

func testReadsRecorded(t *testing.T, h *harness) {
	h.ok(201, "acme", "POST", "/v1/events", login, nil)
	h.ok(200, "acme-read", "GET", "/v1/events?actor=u-1", "", nil)
	h.ok(200, "acme-verify", "GET", "/v1/proofs/inclusion?seq=1", "", nil)
	evs := h.events("acme")
	var viewed []*trail.Event
	for _, ev := range evs {
		if ev.Action == "data_viewed" {
			viewed = append(viewed, ev)
		}
	}
	if len(viewed) != 2 {
		t.Fatalf("%d data_viewed events, want 2 (a query and a proof): %v", len(viewed), actions(evs))
	}
	q := viewed[0]
	if q.Actor.Type != trail.ActorAPIKey || q.Actor.Name != "acme-read" || q.Context["data_type"] != "audit_events" || len(q.Violations) != 0 {
		t.Errorf("the record of a query: %+v", q)
	}

	// A read whose record cannot be written is refused.
	f := &failing{backend: h.store}
	f.own.Store(true)
	ts := h.serveFailing(t, f)
	req, _ := http.NewRequest("GET", ts.URL+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+h.keys["acme"])
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 500 || strings.Contains(string(b), `"events"`) {
		t.Errorf("a read that could not be recorded: %d %s; want 500 and no events", res.StatusCode, b)
	}
}

func actions(evs []*trail.Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Action)
	}
	return out
}

// failing is h's store with some calls failing: its queries, its appends
// of callers' events, or of Trail's own records (the records of reads and
// exports), with err (default: an internal error). Each flag holds while
// it is set, so a test can mend the store.
type failing struct {
	backend
	queries, appends, own atomic.Bool
	err                   error
}

func (f *failing) fail() error {
	if f.err != nil {
		return f.err
	}
	return trail.Errorf(trail.EINTERNAL, "disk gone")
}

func (f *failing) Query(ctx context.Context, q trail.Query) (*trail.Page, error) {
	if f.queries.Load() {
		return nil, f.fail()
	}
	return f.backend.Query(ctx, q)
}

func (f *failing) Append(ctx context.Context, tenant string, evs []*trail.Event, o trail.AppendOptions) (*trail.AppendResult, error) {
	if f.appends.Load() {
		return nil, f.fail()
	}
	return f.backend.Append(ctx, tenant, evs, o)
}

func (f *failing) AppendOwn(ctx context.Context, tenant string, o ledger.Own) (*trail.AppendResult, error) {
	if f.own.Load() {
		return nil, f.fail()
	}
	return f.backend.AppendOwn(ctx, tenant, o)
}

// serveFailing serves the API over f, with h's keys, until t ends; edit,
// if given, changes its config first.
func (h *harness) serveFailing(t *testing.T, f *failing, edit ...func(*trailhttp.Config)) *httptest.Server {
	t.Helper()
	c := trailhttp.Config{Store: f, Writer: f, Keys: h.store, Catalog: catalog.Default(),
		Verifier: storetest.Signer().Verifier(), Logger: slog.New(slog.DiscardHandler)}
	for _, e := range edit {
		e(&c)
	}
	srv, err := trailhttp.New(c)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts
}

// A search or export filtering by an action no one has is refused, naming
// the filter and the nearest known names, before anything is read or
// recorded; a tenant with no log yet just gets no events.
func testUnknownActionFilter(t *testing.T, h *harness) {
	var p struct{ Events []*trail.Event }
	h.ok(200, "globex", "GET", "/v1/events", "", &p)
	if len(p.Events) != 0 {
		t.Fatalf("a new tenant's first read: %d events", len(p.Events))
	}
	h.ok(201, "acme", "POST", "/v1/events", login, nil)
	before := len(h.events("acme"))
	for _, tc := range []struct{ key, path string }{
		{"acme", "/v1/events?action=user_login_success&action=user_login_sucess"},
		{"acme-export", "/v1/export?action=user_login_sucess&format=csv"},
		{"globex", "/v1/events?action=user_login_sucess"},
	} {
		pr := h.problem(400, trail.EINVALID, tc.key, "GET", tc.path, "", "")
		if len(pr.Errors) != 1 || pr.Errors[0].Path != "action" || !strings.Contains(pr.Errors[0].Message, "nearest: user_login_success") {
			t.Errorf("GET %s: %+v, want the action filter named, with user_login_success nearest", tc.path, pr)
		}
	}
	if after := len(h.events("acme")); after != before {
		t.Errorf("the refused reads recorded %d events", after-before)
	}
	// An alias is searched by the name the log records the action by.
	h.ok(200, "acme", "GET", "/v1/events?action=LOGIN_SUCCESS", "", &p)
	if len(p.Events) != 1 || p.Events[0].Action != "user_login_success" {
		t.Errorf("search by the alias LOGIN_SUCCESS: %d events", len(p.Events))
	}
}

func testExport(t *testing.T, h *harness) {
	for i := range 3 {
		h.ok(201, "acme", "POST", "/v1/events", loginOf(fmt.Sprintf("u-%d", i)), nil)
	}
	for _, tc := range []struct{ format, ctype, want string }{
		{"", "application/x-ndjson", `"actor":{"email":"u0@example.com"`},
		{"csv", "text/csv", "seq,id,recorded_at"},
		{"ocsf", "application/x-ndjson", `"class_uid":3002`},
	} {
		status, hdr, b := h.do("acme-export", "GET", "/v1/export?actor=u-1&format="+tc.format, "", "")
		if status != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), tc.ctype) {
			t.Fatalf("export %q: %d %s %s", tc.format, status, hdr.Get("Content-Type"), b)
		}
		if tc.format == "csv" && !strings.HasPrefix(string(b), tc.want) || tc.format == "ocsf" && !strings.Contains(string(b), tc.want) {
			t.Errorf("export %q:\n%s", tc.format, b)
		}
		if n := bytes.Count(b, []byte("u-1")); n == 0 {
			t.Errorf("export %q holds no event of u-1:\n%s", tc.format, b)
		}
	}
	h.problem(400, trail.EINVALID, "acme-export", "GET", "/v1/export?format=xml", "", "")
	var done, attempted int
	for _, ev := range h.events("acme") {
		switch ev.Action {
		case "data_export_attempted":
			attempted++
		case "data_exported":
			done++
			if ev.CorrelationID == "" || ev.Context["record_count"] == nil {
				t.Errorf("data_exported: %+v", ev)
			}
		}
	}
	if attempted != 3 || done != 3 {
		t.Errorf("%d exports attempted and %d done on record, want 3 and 3", attempted, done)
	}
}

func testActionsAndKeys(t *testing.T, h *harness) {
	var def trail.Action
	h.ok(201, "admin", "POST", "/v1/actions", `{"name":"invoice_paid","category":"billing","outcome":"success","context":[{"key":"amount","type":"number","required":true}]}`, &def)
	if !def.Custom {
		t.Errorf("registered action: %+v", def)
	}
	h.problem(409, trail.ECONFLICT, "admin", "POST", "/v1/actions", "application/json", `{"name":"invoice_paid","category":"billing","outcome":"success"}`)
	p := h.problem(400, trail.EINVALID, "admin", "POST", "/v1/actions", "application/json", `{"name":"x_y","category":"billing","outcome":"success","colour":"red"}`)
	if !hasPath(p, "colour") {
		t.Errorf("unknown member not named: %+v", p)
	}
	var one struct{ Event *trail.Event }
	h.ok(201, "acme", "POST", "/v1/events", `{"action":"invoice_paid","actor":{"type":"user","id":"u-1"},"context":{"amount":12.5}}`, &one)
	if one.Event.Category != "billing" || len(one.Event.Violations) != 0 {
		t.Errorf("event of a registered action: %+v", one.Event)
	}
	saved, err := h.store.SavedActions(context.Background())
	if err != nil || len(saved) != 1 || saved[0].Action.Name != "invoice_paid" || saved[0].Tenant != "acme" {
		t.Errorf("saved actions: %v %v", saved, err)
	}
	var acts struct{ Actions []*trail.Action }
	h.ok(200, "acme", "GET", "/v1/actions?category=billing", "", &acts)
	if len(acts.Actions) != 1 {
		t.Errorf("catalog by category: %+v", acts.Actions)
	}

	var created struct {
		Key    string
		Record trail.APIKey
	}
	h.ok(201, "operator", "POST", "/v1/keys", `{"tenant":"initech","name":"ingest","scopes":["ingest","read"]}`, &created)
	h.keys["initech"] = created.Key
	h.ok(201, "initech", "POST", "/v1/events", login, nil)
	h.problem(400, trail.EINVALID, "operator", "POST", "/v1/keys", "application/json", `{"tenant":"initech","scopes":["root"]}`)
	h.ok(200, "operator", "DELETE", "/v1/keys/"+created.Record.ID, "", nil)
	h.problem(401, trail.EUNAUTHORIZED, "initech", "GET", "/v1/events", "", "")
	var granted, revoked int
	for _, ev := range h.events("initech") {
		switch ev.Action {
		case "permission_granted":
			granted++
		case "permission_revoked":
			revoked++
		}
	}
	if granted != 1 || revoked != 1 {
		t.Errorf("initech's log records %d grants and %d revocations of keys, want 1 and 1", granted, revoked)
	}
}

// testActionsPerTenant: a custom action is its tenant's alone: no other
// tenant sees it or can ingest it, another may register the same name with
// its own definition, and each tenant's events take its own definition.
func testActionsPerTenant(t *testing.T, h *harness) {
	h.key("globex-admin", "globex", trail.KeyScopes...)
	h.ok(201, "admin", "POST", "/v1/actions", `{"name":"invoice_paid","category":"billing","outcome":"success","description":"acme's invoices","context":[{"key":"amount","type":"number","required":true}]}`, nil)
	var acts struct{ Actions []*trail.Action }
	h.ok(200, "globex", "GET", "/v1/actions?category=billing", "", &acts)
	if len(acts.Actions) != 0 {
		t.Errorf("globex sees acme's custom action: %+v", acts.Actions[0])
	}
	p := h.problem(400, trail.EINVALID, "globex", "POST", "/v1/events", "application/json", `{"action":"invoice_paid","actor":{"type":"user","id":"u-1"}}`)
	if !hasPath(p, "[0].action") {
		t.Errorf("globex ingesting acme's custom action: %+v", p)
	}
	var theirs trail.Action
	h.ok(201, "globex-admin", "POST", "/v1/actions", `{"name":"invoice_paid","category":"payments","outcome":"failure","description":"globex's"}`, &theirs)
	h.problem(409, trail.ECONFLICT, "globex-admin", "POST", "/v1/actions", "application/json", `{"name":"invoice_paid","category":"payments","outcome":"failure"}`)
	h.problem(409, trail.ECONFLICT, "globex-admin", "POST", "/v1/actions", "application/json", `{"name":"user_logout","category":"payments","outcome":"failure"}`)
	for key, want := range map[string]string{"acme": "billing", "globex": "payments"} {
		var one struct{ Event *trail.Event }
		h.ok(201, key, "POST", "/v1/events", `{"action":"invoice_paid","actor":{"type":"user","id":"u-1"},"context":{"amount":1}}`, &one)
		if one.Event.Category != want || len(one.Event.Violations) != 0 {
			t.Errorf("%s's invoice_paid: %+v, want category %s", key, one.Event, want)
		}
		h.ok(200, key, "GET", "/v1/actions?outcome=failure&category=payments", "", &acts)
		if got := len(acts.Actions); got != map[string]int{"acme": 0, "globex": 1}[key] {
			t.Errorf("%s lists %d of globex's actions", key, got)
		}
	}
	saved, err := h.store.SavedActions(context.Background())
	if err != nil || len(saved) != 2 || saved[0].Tenant != "acme" || saved[1].Tenant != "globex" || saved[1].Action.Description != "globex's" {
		t.Errorf("saved actions: %+v, %v", saved, err)
	}
	// The UI's catalog is the tenant's too.
	body := signIn(h, "globex").get(200, "/ui/actions?q=invoice")
	if strings.Contains(body, "acme&#39;s invoices") || !strings.Contains(body, "globex&#39;s") {
		t.Errorf("globex's UI catalog:\n%s", body)
	}
}

func TestLimits(t *testing.T) {
	h := newHarness(t, backends[0].open, trailhttp.Limits{MaxBody: 2048, MaxBatch: 2, Rate: 1, Burst: 3})
	h.problem(413, "too_large", "acme", "POST", "/v1/events", "application/json", strings.Repeat(" ", 4096)+login)
	h.problem(413, "too_large", "globex", "POST", "/v1/events:batch", "application/x-ndjson", login+"\n"+login+"\n"+login+"\n")
	deep := strings.Repeat(`{"a":`, 40) + "1" + strings.Repeat("}", 40)
	h.problem(400, trail.EINVALID, "admin", "POST", "/v1/actions", "application/json", deep)
	// Three at once, then the fourth waits.
	for range 2 {
		h.do("acme-read", "GET", "/v1/actions", "", "")
	}
	if status, _, _ := h.do("acme-read", "GET", "/v1/actions", "", ""); status != 200 {
		t.Fatalf("third request within the burst: %d", status)
	}
	status, hdr, _ := h.do("acme-read", "GET", "/v1/actions", "", "")
	if status != 429 || hdr.Get("Retry-After") == "" {
		t.Fatalf("over the rate: %d, Retry-After %q", status, hdr.Get("Retry-After"))
	}
	// Another key has its own bucket.
	if status, _, _ := h.do("acme-verify", "GET", "/v1/checkpoint", "", ""); status == 429 {
		t.Error("one key's rate limit applied to another")
	}
}

func TestHealthAndMetrics(t *testing.T) {
	h := newHarness(t, backends[0].open, trailhttp.Limits{})
	h.ok(201, "acme", "POST", "/v1/events", login, nil)
	h.do("acme", "POST", "/v1/events", "application/json", `{}`)
	for _, path := range []string{"/healthz", "/readyz"} {
		if status, _, _ := h.do("", "GET", path, "", ""); status != 200 {
			t.Errorf("%s: %d", path, status)
		}
	}
	_, _, b := h.do("", "GET", "/metrics", "", "")
	for _, want := range []string{"trail_events_appended_total 1", `trail_requests_refused_total{code="invalid"} 1`, "trail_append_seconds_bucket", "trail_append_batch_events_bucket"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestOpenAPI holds the OpenAPI document to the server: every route it
// answers is described, and every path described is answered.
func TestOpenAPI(t *testing.T) {
	h := newHarness(t, backends[0].open, trailhttp.Limits{})
	status, _, b := h.do("", "GET", "/v1/openapi.json", "", "")
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if status != 200 || json.Unmarshal(b, &doc) != nil || doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi.json: %d", status)
	}
	var described []string
	for path, ops := range doc.Paths {
		for method := range ops {
			described = append(described, strings.ToUpper(method)+" "+path)
		}
	}
	served := h.srv.Routes()
	slices.Sort(described)
	slices.Sort(served)
	for _, r := range served {
		if !slices.Contains(described, r) {
			t.Errorf("route %s is missing from openapi.json", r)
		}
	}
	for _, d := range described {
		if !slices.Contains(served, d) {
			t.Errorf("openapi.json describes %s, which the server does not answer", d)
		}
	}
}
