// Package witnesstest runs real witnesses for tests: litewitness from
// filippo.io/torchwood (c2sp.org/tlog-witness), built with go install
// once per test binary into the user's cache directory, its key in an
// ssh-agent the test starts. Where a part is missing (the build fails, no
// ssh-agent or ssh-keygen) the test skips saying why, and fails under
// CI=true (internal/testenv).
package witnesstest

import (
	"bytes"
	"context"
	"fmt"
	"net"
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
)

// Version is the torchwood release the witnesses are built from.
const Version = "v0.6.1"

var (
	installOnce sync.Once
	binDir      string
	installErr  error
)

// install builds litewitness and witnessctl into the cache, once.
func install() (string, error) {
	installOnce.Do(func() {
		cache, err := os.UserCacheDir()
		if err != nil {
			cache = os.TempDir()
		}
		binDir = filepath.Join(cache, "trail-test", "torchwood-"+Version)
		if have(filepath.Join(binDir, "litewitness")) && have(filepath.Join(binDir, "witnessctl")) {
			return
		}
		if err := os.MkdirAll(binDir, 0o755); err != nil {
			installErr = err
			return
		}
		goBin, err := exec.LookPath("go")
		if err != nil {
			installErr = fmt.Errorf("no go command to build litewitness with: %v", err)
			return
		}
		cmd := exec.Command(goBin, "install", "filippo.io/torchwood/cmd/litewitness@"+Version, "filippo.io/torchwood/cmd/witnessctl@"+Version)
		cmd.Dir = binDir // outside any module
		cmd.Env = append(os.Environ(), "GOBIN="+binDir, "GOTOOLCHAIN=local", "GOFLAGS=")
		if out, err := cmd.CombinedOutput(); err != nil {
			installErr = fmt.Errorf("go install litewitness@%s: %v\n%s", Version, err, out)
		}
	})
	return binDir, installErr
}

func have(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

// Witness is a running litewitness.
type Witness struct {
	Name string // its name, which its cosignatures carry
	VKey string // its verifier key, as it printed it
	URL  string // http://127.0.0.1:PORT

	t       testing.TB
	bin     string
	db      string
	sock    string
	fpr     string
	addr    string
	cmd     *exec.Cmd
	stderr  *lockedWriter
	stopped chan struct{}
}

// Start starts a litewitness named name on a free port of 127.0.0.1 with
// a new Ed25519 key in an ssh-agent of its own; both stop, and their files
// are removed, when t ends.
func Start(t testing.TB, name string) *Witness {
	t.Helper()
	bin, err := install()
	if err != nil {
		testenv.Missing(t, "the witness tests need litewitness: %v", err)
	}
	for _, tool := range []string{"ssh-agent", "ssh-keygen", "ssh-add"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Missing(t, "the witness tests need %s (Debian: openssh-client): %v", tool, err)
		}
	}
	// A short directory: a unix socket's path is limited to 108 bytes.
	dir, err := os.MkdirTemp("", "lw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	w := &Witness{Name: name, t: t, bin: bin, db: filepath.Join(dir, "witness.db"), sock: filepath.Join(dir, "agent.sock")}
	keyFile := filepath.Join(dir, "key")
	run(t, "", "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", keyFile)
	agent := exec.Command("ssh-agent", "-D", "-a", w.sock)
	if err := agent.Start(); err != nil {
		testenv.Missing(t, "start ssh-agent: %v", err)
	}
	t.Cleanup(func() { agent.Process.Kill(); agent.Wait() })
	waitFor(t, "ssh-agent to take the key", func() bool {
		if !isSocket(w.sock) {
			return false
		}
		cmd := exec.Command("ssh-add", "-q", keyFile)
		cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK="+w.sock)
		return cmd.Run() == nil
	})
	fp := run(t, "", "ssh-keygen", "-l", "-E", "sha256", "-f", keyFile+".pub")
	f := strings.Fields(fp)
	if len(f) < 2 || !strings.HasPrefix(f[1], "SHA256:") {
		t.Fatalf("ssh-keygen -l: %q", fp)
	}
	w.fpr = f[1]
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w.addr = ln.Addr().String()
	ln.Close()
	w.URL = "http://" + w.addr
	w.Restart()
	t.Cleanup(w.Stop)
	m := regexp.MustCompile(`vkey=(\S+)`).FindStringSubmatch(w.stderr.String())
	if m == nil {
		t.Fatalf("litewitness printed no verifier key:\n%s", w.stderr)
	}
	w.VKey = m[1]
	return w
}

func isSocket(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode()&os.ModeSocket != 0
}

// run runs a command, with SSH_AUTH_SOCK set to sock when given, and
// returns its output; a failure fails t.
func run(t testing.TB, sock, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	if sock != "" {
		cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// AddLog lets the witness cosign the log of origin signed by vkey
// (witnessctl add-log and add-key).
func (w *Witness) AddLog(origin, vkey string) {
	w.t.Helper()
	ctl := filepath.Join(w.bin, "witnessctl")
	run(w.t, "", ctl, "add-log", "-db", w.db, "-origin", origin)
	run(w.t, "", ctl, "add-key", "-db", w.db, "-origin", origin, "-key", vkey)
}

// Stop stops the witness (its database stays, for Restart).
func (w *Witness) Stop() {
	if w.cmd == nil {
		return
	}
	w.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-w.stopped:
	case <-time.After(10 * time.Second):
		w.cmd.Process.Kill()
		<-w.stopped
	}
	w.cmd = nil
}

// Restart starts the witness again on its address, with its database and
// key, and waits until it answers.
func (w *Witness) Restart() {
	w.t.Helper()
	w.stderr = &lockedWriter{}
	cmd := exec.Command(filepath.Join(w.bin, "litewitness"), "-name", w.Name, "-db", w.db, "-ssh-agent", w.sock, "-key", w.fpr, "-listen", w.addr)
	cmd.Stderr = w.stderr
	if err := cmd.Start(); err != nil {
		testenv.Missing(w.t, "start litewitness: %v", err)
	}
	w.cmd, w.stopped = cmd, make(chan struct{})
	stopped := w.stopped
	go func() { cmd.Wait(); close(stopped) }()
	waitFor(w.t, "litewitness to answer on "+w.addr, func() bool {
		select {
		case <-stopped:
			w.t.Fatalf("litewitness exited:\n%s", w.stderr)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, w.URL+"/", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	})
}

// lockedWriter is a process's stderr, read while it writes.
type lockedWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// Policy returns the text of a witness policy naming ws, with quorum k.
func Policy(k int, ws ...*Witness) string {
	var b strings.Builder
	for _, w := range ws {
		fmt.Fprintf(&b, "witness %s %s %s\n", w.Name, w.VKey, w.URL)
	}
	fmt.Fprintf(&b, "quorum %d\n", k)
	return b.String()
}

func waitFor(t testing.TB, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
