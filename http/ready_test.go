package http_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	trailhttp "github.com/trailaudit/trail/http"
	"github.com/trailaudit/trail/internal/pgtest"
	"github.com/trailaudit/trail/internal/testenv"
	"github.com/trailaudit/trail/postgres"
	"github.com/trailaudit/trail/sqlite"
	"github.com/trailaudit/trail/storetest"
)

// TestStoreDown: a store that is down or full is no fault of the caller's,
// and the API says so (503, 507, with what failed and a Retry-After)
// wherever it meets it: an append, the record of a read. /readyz fails
// from then until an append succeeds, or for 15 s with no such failure.
func TestStoreDown(t *testing.T) {
	h := newHarness(t, backends[0].open, trailhttp.Limits{})
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	full := &trail.Error{Code: trail.ESTORAGEFULL, Message: "sqlite: commit: the database or the disk is full"}
	f := &failing{backend: h.store, err: full}
	ts := h.serveFailing(t, f, func(c *trailhttp.Config) { c.Now = func() time.Time { return time.Unix(0, now.Load()) } })
	call := func(key, method, path, body string, want int, detail string) {
		t.Helper()
		ctype := ""
		if body != "" {
			ctype = "application/json"
		}
		status, hdr, b := h.doAt(ts.URL, key, method, path, ctype, body)
		if status != want || !strings.Contains(string(b), detail) {
			t.Fatalf("%s %s: %d %s; want %d saying %q", method, path, status, b, want, detail)
		}
		if want >= 500 && hdr.Get("Retry-After") != "5" {
			t.Errorf("%s %s: %d with Retry-After %q, want 5", method, path, status, hdr.Get("Retry-After"))
		}
	}
	ready := func(want int, detail string) {
		t.Helper()
		call("", "GET", "/readyz", "", want, detail)
	}

	ready(200, "ready")
	f.appends.Store(true)
	call("acme", "POST", "/v1/events", login, 507, `"code":"storage_full"`)
	call("acme", "POST", "/v1/events:batch", "["+login+"]", 507, "the database or the disk is full")
	ready(503, "the store cannot be written: sqlite: commit: the database or the disk is full")
	ready(503, "full")
	f.own.Store(true)
	call("acme", "GET", "/v1/events", "", 507, "the read could not be recorded in the audit log, so it is refused: sqlite: commit: the database or the disk is full")

	// Room again: the next append succeeds, and the server is ready.
	f.appends.Store(false)
	f.own.Store(false)
	call("acme", "POST", "/v1/events", login, 201, `"count":1`)
	ready(200, "ready")

	// A database that is unreachable is 503; once no request has met the
	// failure for 15 s, the server is tried again (readyz's own answers do
	// not keep it failing).
	f.err = &trail.Error{Code: trail.EUNAVAILABLE, Message: "postgres: connect: the database is unreachable"}
	f.appends.Store(true)
	call("acme", "POST", "/v1/events", login, 503, `"code":"unavailable"`)
	ready(503, "the database is unreachable")
	now.Add(int64(14 * time.Second))
	ready(503, "the database is unreachable")
	now.Add(int64(time.Second))
	ready(200, "ready")

	// The problem says what failed, as the store said it.
	var p trailhttp.Problem
	status, _, b := h.doAt(ts.URL, "acme", "POST", "/v1/events", "application/json", login)
	if status != 503 || json.Unmarshal(b, &p) != nil || p.Code != trail.EUNAVAILABLE || p.Detail != "postgres: connect: the database is unreachable" {
		t.Errorf("the problem of an unreachable store: %d %s", status, b)
	}
}

// TestPostgresDown: on PostgreSQL, a database that becomes unreachable (its
// connections cut, nothing listening any more) and a store that is closed
// are 503 with a Retry-After, never an opaque 500, and /readyz says so.
func TestPostgresDown(t *testing.T) {
	pgtest.Need(t)
	pgURL, err := url.Parse(pgtest.ServerURL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := newProxy(t, pgURL.Host)
	pgURL.Host = proxy.addr()
	h := newHarness(t, func(t *testing.T, cat *catalog.Catalog) backend {
		db, err := postgres.Open(context.Background(), pgURL.String(), postgres.Options{Validator: validator(cat), Signer: storetest.Signer(), Schema: pgtest.NewSchema(t)})
		if err != nil {
			t.Fatal(err)
		}
		return db
	}, trailhttp.Limits{})
	h.ok(201, "acme", "POST", "/v1/events", login, nil)
	proxy.cut()
	for _, path := range []string{"/v1/events", "/readyz"} {
		method, body := "POST", login
		if path == "/readyz" {
			method, body = "GET", ""
		}
		status, hdr, b := h.do("acme", method, path, "application/json", body)
		if status != 503 || hdr.Get("Retry-After") == "" || !strings.Contains(string(b), "unreachable") {
			t.Errorf("%s %s with the database unreachable: %d (Retry-After %q) %s; want 503 saying it is unreachable", method, path, status, hdr.Get("Retry-After"), b)
		}
	}
	h.store.Close()
	if status, _, b := h.do("acme", "POST", "/v1/events", "application/json", login); status != 503 || !strings.Contains(string(b), "closed") {
		t.Errorf("appending to a closed store: %d %s; want 503 saying it is closed", status, b)
	}
}

// TestSQLiteDiskFull: on SQLite, a disk that fills up is 507 saying so
// (not an opaque 500 "sqlite: commit"), /readyz fails while it is full,
// and once room is made the next append succeeds and the server is ready.
func TestSQLiteDiskFull(t *testing.T) {
	disk := t.TempDir()
	testenv.Tmpfs(t, disk, 4<<20)
	// The filler is the room an operator frees.
	if err := os.WriteFile(filepath.Join(disk, "filler"), make([]byte, 2<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(t *testing.T, cat *catalog.Catalog) backend {
		db, err := sqlite.Open(context.Background(), filepath.Join(disk, "trail.db"), sqlite.Options{Validator: validator(cat), Signer: storetest.Signer()})
		if err != nil {
			t.Fatal(err)
		}
		return db
	}, trailhttp.Limits{})
	batch := "[" + strings.TrimSuffix(strings.Repeat(strings.Replace(login, `"mfa":true`, `"mfa":true,"note":"`+strings.Repeat("x", 4000)+`"`, 1)+",", 64), ",") + "]"
	var status int
	var b []byte
	for range 100 {
		if status, _, b = h.do("acme", "POST", "/v1/events:batch", "application/json", batch); status != 201 {
			break
		}
	}
	if status != 507 || !strings.Contains(string(b), "the database or the disk is full") {
		t.Fatalf("appending to a full disk: %d %s; want 507 saying the disk is full", status, b)
	}
	if status, _, b := h.do("", "GET", "/readyz", "", ""); status != 503 || !strings.Contains(string(b), "full") {
		t.Errorf("/readyz with the disk full: %d %s", status, b)
	}
	if err := os.Remove(filepath.Join(disk, "filler")); err != nil {
		t.Fatal(err)
	}
	h.ok(201, "acme", "POST", "/v1/events", login, nil)
	h.ok(200, "", "GET", "/readyz", "", nil)
}

// proxy forwards TCP connections to a server until cut, which closes them
// all and stops listening: the server becomes unreachable.
type proxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln}
	t.Cleanup(p.cut)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go func() { io.Copy(c, s); c.Close() }()
		}
	}()
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) cut() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// leading is a trailhttp.Leadership that says what it is told.
type leading bool

func (l leading) Leading() bool { return bool(l) }

// TestReadyLeadership: /readyz and the health page say whether this
// process runs the background work, and a follower is as ready as the
// leader.
func TestReadyLeadership(t *testing.T) {
	for _, c := range []struct {
		name string
		l    trailhttp.Leadership
		want string
	}{
		{"none run here", nil, "ready\n"},
		{"leader", leading(true), "ready\nleader: this process runs the background work"},
		{"follower", leading(false), "ready\nfollower: another process runs the background work"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarnessWith(t, backends[0].open, func(cf *trailhttp.Config, _ backend) { cf.Leadership = c.l })
			status, _, b := h.do("", "GET", "/readyz", "", "")
			if status != 200 || !strings.HasPrefix(string(b), c.want) || (c.l == nil && string(b) != c.want) {
				t.Errorf("/readyz: %d %q; want 200 %q", status, b, c.want)
			}
			page := signIn(h, "acme").get(200, "/ui/health")
			line := strings.TrimPrefix(c.want, "ready\n")
			if shown := strings.Contains(page, `id="leadership"`); shown != (c.l != nil) || !strings.Contains(page, line) {
				t.Errorf("the health page shows the leadership: %v; want %v, saying %q", shown, c.l != nil, line)
			}
		})
	}
}
