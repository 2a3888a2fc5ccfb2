package main

import (
	"bufio"
	"encoding/json"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/trailaudit/trail/internal/pgtest"
	"github.com/trailaudit/trail/internal/testenv"
	"github.com/trailaudit/trail/internal/witnesstest"
)

// TestServeBlackBox builds the trail binary and uses it as a user would:
// serve on a free port, ingest, query, export and prove over HTTP, stop it
// with SIGTERM, start it again, and find everything there and verified.
func TestServeBlackBox(t *testing.T) {
	testenv.Slow(t, "builds the binary")
	dir := t.TempDir()
	bin := filepath.Join(dir, "trail")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data := filepath.Join(dir, "data")

	// A first start on a port that is taken makes nothing; the next start
	// makes and prints the credentials.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "serve", "--addr", taken.Addr().String(), "--data", data).CombinedOutput()
	taken.Close()
	if code := exitCode(err); code != 2 || !strings.Contains(string(out), "address already in use") {
		t.Fatalf("serve on a taken port: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Fatalf("serve on a taken port made %s (%v): a credential made there is never shown", data, err)
	}
	url, key, stop := startServe(t, bin, data)
	if key.admin == "" || key.operator == "" {
		t.Fatalf("first start printed no bootstrap admin key or no operator credential: %+v", key)
	}
	if !strings.HasPrefix(key.first, "Trail web UI: "+url+"/ui/") {
		t.Errorf("the first line printed is %q; want the web UI's address first", key.first)
	}
	as := key.admin
	ctype := "application/x-ndjson"
	api := func(method, path, body string, want int) []byte {
		t.Helper()
		req, _ := http.NewRequest(method, url+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+as)
		if body != "" {
			req.Header.Set("Content-Type", ctype)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != want {
			t.Fatalf("%s %s: %d, want %d\n%s", method, path, res.StatusCode, want, b)
		}
		return b
	}
	// A rule of the tenant's own, which serve runs over its log.
	ctype = "application/yaml"
	api("PUT", "/v1/rules/logouts", "title: Logout\nid: logout\ndetection:\n  sel:\n    action: user_logout\n  condition: sel\n", 201)
	ctype = "application/x-ndjson"
	var batch strings.Builder
	for _, u := range []string{"u-1", "u-2", "u-3"} {
		batch.WriteString(`{"action":"user_logout","actor":{"type":"user","id":"` + u + `"}}` + "\n")
	}
	api("POST", "/v1/events:batch", batch.String(), 201)
	if b := api("GET", "/v1/events?actor=u-2", "", 200); !strings.Contains(string(b), `"id":"u-2"`) {
		t.Fatalf("query: %s", b)
	}
	if b := api("GET", "/v1/export?format=csv", "", 200); strings.Count(string(b), "user_logout") != 3 {
		t.Fatalf("export: %s", b)
	}
	api("GET", "/v1/proofs/inclusion?seq=2", "", 200)
	for i := 0; ; i++ {
		var alerts struct{ Events []json.RawMessage }
		json.Unmarshal(api("GET", "/v1/alerts", "", 200), &alerts)
		if len(alerts.Events) == 3 {
			break
		}
		if i == 300 {
			t.Fatalf("serve raised %d alerts of the tenant's rule, want 3", len(alerts.Events))
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The web UI: signing in opens a session kept in the store.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	ui := func(method, path, form string, cookie *http.Cookie, want int) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, url+path, strings.NewReader(form))
		if method == "POST" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if cookie != nil {
			req.AddCookie(cookie)
		}
		res, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Fatalf("%s %s: %d, want %d", method, path, res.StatusCode, want)
		}
		return res
	}
	res := ui("POST", "/ui/signin", "key="+key.admin, nil, http.StatusSeeOther)
	if len(res.Cookies()) != 1 || strings.Contains(res.Cookies()[0].Value, key.admin) {
		t.Fatalf("sign-in cookies: %v", res.Cookies())
	}
	session := res.Cookies()[0]
	ui("GET", "/ui/", "", session, http.StatusOK)
	var cp struct{ Size uint64 }
	json.Unmarshal(api("GET", "/v1/checkpoint", "", 200), &cp)
	as = key.operator
	if b := api("GET", "/v1/keys?tenant=default", "", 200); !strings.Contains(string(b), "bootstrap admin") {
		t.Errorf("the operator's list of default's keys: %s", b)
	}
	if b := api("GET", "/v1/tenants", "", 200); !strings.Contains(string(b), `{"name":"default"}`) {
		t.Errorf("the operator's list of tenants: %s", b)
	}
	api("GET", "/v1/events", "", 403)
	as = key.admin
	stop()

	url, again, stop2 := startServe(t, bin, data)
	defer stop2()
	if again.admin != "" || again.operator != "" {
		t.Error("a second start printed another bootstrap credential")
	}
	if !strings.Contains(again.hint, "trail operator create --name NAME --data "+data) {
		t.Errorf("a second start does not say how to make another operator credential: %q", again.hint)
	}
	// The session outlives the restart, until it is signed out.
	ui("GET", "/ui/", "", session, http.StatusOK)
	ui("POST", "/ui/signout", "", session, http.StatusSeeOther)
	ui("GET", "/ui/", "", session, http.StatusSeeOther)
	var cp2 struct{ Size uint64 }
	json.Unmarshal(api("GET", "/v1/checkpoint", "", 200), &cp2)
	if cp2.Size < cp.Size {
		t.Errorf("after a restart the log has %d events, before %d", cp2.Size, cp.Size)
	}
	verify := exec.Command(bin, "verify", "--tenant", "default", "--data", data)
	verify.Env = append(os.Environ(), "TRAIL_CHECKPOINTS="+filepath.Join(t.TempDir(), "remembered"))
	out, err = verify.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "intact") {
		t.Fatalf("trail verify: %v\n%s", err, out)
	}
}

// TestServeWitnessed: trail serve with a witness policy in DATA/witnesses
// has its checkpoints cosigned by a real witness, serves the cosigned
// checkpoint and the metrics, and trail verify then holds the log to it.
func TestServeWitnessed(t *testing.T) {
	testenv.Slow(t, "builds the binary")
	lw := witnesstest.Start(t, "w1.trail.test")
	dir := t.TempDir()
	bin := filepath.Join(dir, "trail")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data := filepath.Join(dir, "data")
	if err := exec.Command(bin, "keygen", "--name", "audit.example.com", "--data", data).Run(); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "verifier", "--tenant", "_root", "--data", data).Output() // what witnesses are given
	if err != nil {
		t.Fatal(err)
	}
	log := strings.Fields(string(out)) // the origin, and the key named by it
	if len(log) != 2 || log[0] != "audit.example.com/trail/_root" {
		t.Fatalf("trail verifier --tenant _root printed %q", out)
	}
	lw.AddLog(log[0], log[1])
	if err := os.WriteFile(filepath.Join(data, "witnesses"), []byte(witnesstest.Policy(1, lw)), 0o600); err != nil {
		t.Fatal(err)
	}
	url, key, stop := startServe(t, bin, data, "--witness-interval", "100ms")
	defer stop()
	get := func(path string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest("POST", url+"/v1/events", strings.NewReader(`{"action":"user_logout","actor":{"type":"user","id":"u-1"}}`))
		if path != "" {
			req, _ = http.NewRequest("GET", url+path, nil)
		} else {
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("Authorization", "Bearer "+key.admin)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, b
	}
	if code, b := get(""); code != 201 {
		t.Fatalf("ingest: %d %s", code, b)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, b := get("/v1/checkpoint?cosigned=1")
		if code == 200 && strings.Contains(string(b), "w1.trail.test") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no cosigned checkpoint: %d %s", code, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, b := get("/metrics"); !strings.Contains(string(b), `trail_witness_cosignatures_total{witness="w1.trail.test"}`) {
		t.Errorf("/metrics has no trail_witness_cosignatures_total of the witness")
	}
	stop()
	verify := exec.Command(bin, "verify", "--tenant", "default", "--data", data)
	verify.Env = append(os.Environ(), "TRAIL_CHECKPOINTS="+filepath.Join(t.TempDir(), "remembered"))
	out, err = verify.CombinedOutput()
	if err != nil || !regexp.MustCompile(`witnessed: the log extends its checkpoint of size \d+, entry \d+ of the root log, whose checkpoint is cosigned by w1\.trail\.test`).Match(out) {
		t.Fatalf("trail verify: %v\n%s", err, out)
	}
}

// printed is what trail serve printed at start: its first line, the
// bootstrap admin key and operator credential ("" when none), and the hint
// on making another operator credential ("" when none).
type printed struct {
	first, admin, operator, hint string
}

// exitCode is the exit code of a command that ended with err.
func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// startServe starts trail serve on a free port, with flags, and returns
// its URL, what it printed, and a function that stops it with SIGTERM and checks it
// exited cleanly.
func startServe(t *testing.T, bin, data string, flags ...string) (url string, bootstrap printed, stop func()) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0", "--data", data}, flags...)...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	listen := regexp.MustCompile(`listening on (http://\S+)`)
	deadline := time.After(30 * time.Second)
	// The verifier key is the last line printed at start.
	for done := false; !done; {
		select {
		case l, ok := <-lines:
			if bootstrap.first == "" {
				bootstrap.first = l
			}
			switch m := listen.FindStringSubmatch(l); {
			case !ok:
				t.Fatal("trail serve exited before it was ready")
			case m != nil:
				url = m[1]
			case strings.HasPrefix(l, "trail_"):
				bootstrap.admin = l
			case strings.HasPrefix(l, "trailop_"):
				bootstrap.operator = l
			case strings.Contains(l, "trail operator create"):
				bootstrap.hint = l
			case strings.HasPrefix(l, "Verifier key"):
				done = true
			}
		case <-deadline:
			cmd.Process.Kill()
			t.Fatal("trail serve did not say where it listens")
		}
	}
	go func() {
		for range lines {
		}
	}()
	var once sync.Once
	return url, bootstrap, func() {
		once.Do(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			if err := cmd.Wait(); err != nil {
				t.Errorf("trail serve after SIGTERM: %v", err)
			}
		})
	}
}

// TestServePortTaken: a server that cannot bind its address says so and
// makes nothing, so no credential is made that could never be shown.
func TestServePortTaken(t *testing.T) {
	dir := t.TempDir()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	code, out := runIn(dir, nil, "serve", "--addr", taken.Addr().String(), "--data", "data")
	if code != exitUsage || !strings.Contains(out, "--addr "+taken.Addr().String()+": ") || !strings.Contains(out, "address already in use") {
		t.Errorf("serve on a taken port: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); !os.IsNotExist(err) {
		t.Errorf("serve on a taken port made its data directory (%v)", err)
	}
}

// A people file serve cannot use stops it before it binds, saying which
// line and field.
func TestServePeopleFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "people"), []byte("# people\nmap email=ann@example.com tenant=acme scopes=read,root\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, file, want string }{
		{"a bad scope", filepath.Join(dir, "people"), `people: people file: line 2: scopes: "root" is not a scope`},
		{"no file", filepath.Join(dir, "nowhere"), "nowhere: no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := runIn(dir, nil, "serve", "--addr", "127.0.0.1:0", "--data", "data", "--people", tc.file)
			if code != exitUsage || !strings.Contains(out, tc.want) {
				t.Errorf("serve --people %s: exit %d, want %d saying %q:\n%s", tc.file, code, exitUsage, tc.want, out)
			}
		})
	}
}

// serve's memory limit: the flag's (or TRAIL_MEMORY_LIMIT's) MiB, none at
// 0, and GOMEMLIMIT left to the runtime when neither is given.
func TestLimitMemory(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(old) })
	const unset = 12345 << 20 // what the runtime had before
	tests := []struct {
		name  string
		vars  map[string]string
		mib   int64
		given bool
		want  int64 // the limit after; -1 for a usage error
	}{
		{"default", map[string]string{}, defaultMemoryLimit, false, defaultMemoryLimit << 20},
		{"given", map[string]string{}, 64, true, 64 << 20},
		{"none", map[string]string{}, 0, true, math.MaxInt64},
		{"GOMEMLIMIT kept", map[string]string{"GOMEMLIMIT": "1GiB"}, defaultMemoryLimit, false, unset},
		{"flag over GOMEMLIMIT", map[string]string{"GOMEMLIMIT": "1GiB"}, 80, true, 80 << 20},
		{"negative", map[string]string{}, -1, true, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			debug.SetMemoryLimit(unset)
			err := limitMemory(&env{vars: tt.vars}, tt.mib, tt.given)
			if tt.want == -1 {
				if err == nil {
					t.Fatal("a negative limit is accepted")
				}
				return
			}
			if got := debug.SetMemoryLimit(-1); err != nil || got != tt.want {
				t.Errorf("err %v, limit %d, want %d", err, got, tt.want)
			}
		})
	}
}

// TestServeWALMetrics: serve on SQLite exports the checkpointer's counts
// (sqlite.DB.WALStats) on /metrics, read from the store at each scrape
// (the largest log it found grows from 0 once events are in); on
// PostgreSQL, which has no such log, it exports none of them.
func TestServeWALMetrics(t *testing.T) {
	series := []string{"trail_sqlite_wal_resets_total", "trail_sqlite_wal_resets_busy_total",
		"trail_sqlite_wal_reset_held_seconds_total", "trail_sqlite_wal_reset_waited_seconds_total", "trail_sqlite_wal_largest_bytes"}
	for _, tc := range []struct {
		name   string
		sf     func(t *testing.T) storeFlags
		sqlite bool
	}{
		{"sqlite", func(*testing.T) storeFlags { return storeFlags{data: "data"} }, true},
		{"postgres", func(t *testing.T) storeFlags { return storeFlags{data: "data", postgres: pgtest.SchemaURL(t)} }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := serveIn(t, t.TempDir(), tc.sf(t), serveOptions{})
			p.api("POST", "/v1/events:batch", "application/x-ndjson", strings.Repeat(`{"action":"user_logout","actor":{"type":"user","id":"u-1"}}`+"\n", 100), 201)
			largest := regexp.MustCompile(`(?m)^trail_sqlite_wal_largest_bytes (\S+)$`)
			var m string
			// The checkpointer runs 300 ms after a commit.
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				m = string(p.api("GET", "/metrics", "", "", 200))
				if v := largest.FindStringSubmatch(m); !tc.sqlite || v != nil && v[1] != "0" {
					break
				}
			}
			for _, s := range series {
				if got := strings.Contains(m, "\n"+s+" "); got != tc.sqlite {
					t.Errorf("/metrics has %s: %v, want %v", s, got, tc.sqlite)
				}
			}
			if v := largest.FindStringSubmatch(m); tc.sqlite && (v == nil || v[1] == "0") {
				t.Errorf("trail_sqlite_wal_largest_bytes = %v after 100 events were appended and checkpointed; want more than 0", v)
			}
		})
	}
}
