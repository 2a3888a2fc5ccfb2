package oidctest

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/trailaudit/trail/internal/testenv"
)

// OAuth2ProxyVersion is the oauth2-proxy the tests run.
const OAuth2ProxyVersion = "v7.15.6"

// oauth2Proxy returns the oauth2-proxy binary, built once into the user's
// cache with go install (from the Go module proxy). A machine that cannot
// build it skips the test, or fails it under CI=true.
func oauth2Proxy(t testing.TB) string {
	t.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "trail-test", "oauth2-proxy-"+OAuth2ProxyVersion)
	bin := filepath.Join(dir, "oauth2-proxy")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		testenv.Missing(t, "no go command to build oauth2-proxy %s with", OAuth2ProxyVersion)
	}
	cmd := exec.Command(gobin, "install", "github.com/oauth2-proxy/oauth2-proxy/v7@"+OAuth2ProxyVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=-mod=mod", "CGO_ENABLED=0")
	cmd.Dir = os.TempDir() // outside this module: its own go.mod decides
	if out, err := cmd.CombinedOutput(); err != nil {
		testenv.Missing(t, "building oauth2-proxy %s: %v\n%s", OAuth2ProxyVersion, err, out)
	}
	return bin
}

// StartOAuth2Proxy runs a real oauth2-proxy until the test ends, on
// 127.0.0.1:port (FreePort), signing people in with p (as client
// ClientID; p must allow the redirect http://127.0.0.1:PORT/oauth2/callback)
// and passing what they ask to upstream with their identity in
// X-Forwarded-User, -Email and -Groups. It returns the proxy's URL.
func (p *Provider) StartOAuth2Proxy(t testing.TB, port int, upstream string) string {
	t.Helper()
	bin := oauth2Proxy(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	url := "http://" + addr
	var out bytes.Buffer
	cmd := exec.Command(bin,
		"--provider=oidc", "--oidc-issuer-url="+p.Issuer, "--client-id="+ClientID, "--client-secret="+ClientSecret,
		"--redirect-url="+url+"/oauth2/callback", "--upstream="+upstream, "--http-address="+addr,
		"--cookie-secret=0123456789abcdef0123456789abcdef", "--cookie-secure=false", "--email-domain=*",
		"--skip-provider-button=true", "--pass-user-headers=true", "--code-challenge-method=S256",
		"--scope=openid email profile", "--reverse-proxy=false")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting oauth2-proxy: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("oauth2-proxy's output:\n%s", out.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := http.Get(url + "/ping")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return url
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("oauth2-proxy did not answer /ping within 20s (%v):\n%s", err, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// FreePort returns a port on 127.0.0.1 free just now, for a server that
// must be told its address before it starts.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
