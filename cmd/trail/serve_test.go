package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

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

	url, key, stop := startServe(t, bin, data)
	if key == "" {
		t.Fatal("first start printed no bootstrap admin key")
	}
	api := func(method, path, body string, want int) []byte {
		t.Helper()
		req, _ := http.NewRequest(method, url+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		if body != "" {
			req.Header.Set("Content-Type", "application/x-ndjson")
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
	var cp struct{ Size uint64 }
	json.Unmarshal(api("GET", "/v1/checkpoint", "", 200), &cp)
	stop()

	url, again, stop2 := startServe(t, bin, data)
	defer stop2()
	if again != "" {
		t.Error("a second start printed another bootstrap key")
	}
	var cp2 struct{ Size uint64 }
	json.Unmarshal(api("GET", "/v1/checkpoint", "", 200), &cp2)
	if cp2.Size < cp.Size {
		t.Errorf("after a restart the log has %d events, before %d", cp2.Size, cp.Size)
	}
	out, err := exec.Command(bin, "verify", "--tenant", "default", "--data", data).CombinedOutput()
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
	vkey, err := exec.Command(bin, "keygen", "--name", "audit.example.com", "--data", data).Output()
	if err != nil {
		t.Fatal(err)
	}
	lw.AddLog("audit.example.com/default", strings.TrimSpace(string(vkey)))
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
		req.Header.Set("Authorization", "Bearer "+key)
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
	out, err := exec.Command(bin, "verify", "--tenant", "default", "--data", data).CombinedOutput()
	if err != nil || !regexp.MustCompile(`witnessed: the log extends its checkpoint of size \d+, cosigned by w1\.trail\.test`).Match(out) {
		t.Fatalf("trail verify: %v\n%s", err, out)
	}
}

// startServe starts trail serve on a free port and returns its URL, the
// bootstrap key it printed ("" when none), and a function that stops it
// with SIGTERM and checks it exited cleanly.
func startServe(t *testing.T, bin, data string, flags ...string) (url, bootstrap string, stop func()) {
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
			switch m := listen.FindStringSubmatch(l); {
			case !ok:
				t.Fatal("trail serve exited before it was ready")
			case m != nil:
				url = m[1]
			case strings.HasPrefix(l, "trail_"):
				bootstrap = l
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
