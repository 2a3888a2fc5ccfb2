package stream_test

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trailaudit/trail/internal/testenv"
	"github.com/trailaudit/trail/storetest"
	"github.com/trailaudit/trail/stream"
)

// startRsyslog starts Debian's rsyslogd with a config of its own: a TCP
// input on a free port of 127.0.0.1, and every message written to a file,
// field by field, which the test reads back.
func startRsyslog(t testing.TB, withTLS bool) (addr, out string, client *tls.Config) {
	t.Helper()
	bin, err := exec.LookPath("rsyslogd")
	if err != nil {
		testenv.Missing(t, "rsyslogd (Debian's rsyslog; make test installs it): %v", err)
	}
	dir := t.TempDir()
	out = filepath.Join(dir, "out.log")
	global, module := "", `module(load="imtcp")`
	if withTLS {
		client = writeCert(t, dir)
		global = fmt.Sprintf(`global(DefaultNetstreamDriver="ossl" DefaultNetstreamDriverCAFile="%[1]s/ca.pem"
	DefaultNetstreamDriverCertFile="%[1]s/cert.pem" DefaultNetstreamDriverKeyFile="%[1]s/key.pem")`, dir)
		module = `module(load="imtcp" StreamDriver.Name="ossl" StreamDriver.Mode="1" StreamDriver.AuthMode="anon")`
	}
	conf := fmt.Sprintf(`
global(workDirectory="%[1]s" maxMessageSize="256k")
%[3]s
%[4]s
input(type="imtcp" address="127.0.0.1" port="0" listenPortFileName="%[1]s/port" ruleset="trail")
template(name="fields" type="string"
	string="%%pri%%|%%protocol-version%%|%%timereported:::date-rfc3339%%|%%hostname%%|%%app-name%%|%%procid%%|%%msgid%%|%%structured-data%%|%%msg%%\n")
ruleset(name="trail") { action(type="omfile" file="%[2]s" template="fields") }
`, dir, out, global, module)
	cf := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-n", "-f", cf, "-i", filepath.Join(dir, "pid"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if b, err := os.ReadFile(filepath.Join(dir, "port")); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			return "127.0.0.1:" + strings.TrimSpace(string(b)), out, client
		}
	}
	t.Fatal("rsyslogd did not write its port")
	return "", "", nil
}

// writeCert writes a CA and a server certificate for 127.0.0.1 into dir
// (ca.pem, cert.pem, key.pem) and returns a client config trusting the CA.
func writeCert(t testing.TB, dir string) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "trail test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	for name, b := range map[string][]byte{"ca.pem": certPEM, "cert.pem": certPEM,
		"key.pem": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// The events reach real rsyslog, over TCP (RFC 6587 octet counting) and
// over TLS (RFC 5425), as RFC 5424 messages it parses field by field, and
// what it wrote out is checkable against the signed checkpoint.
func TestSyslogToRsyslog(t *testing.T) {
	for _, withTLS := range []bool{false, true} {
		t.Run(map[bool]string{false: "tcp", true: "tls"}[withTLS], func(t *testing.T) { testSyslog(t, withTLS) })
	}
}

func testSyslog(t *testing.T, withTLS bool) {
	addr, out, tlsConf := startRsyslog(t, withTLS)
	s := newStore(t)
	appendN(t, s, 12)
	tr, err := stream.NewSyslog(addr, stream.SyslogOptions{Hostname: "trail-host", TLS: tlsConf})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	sk, err := stream.New(stream.Config{Name: "syslog", Tenant: "acme", Log: s, Cursors: s, Transport: tr, Batch: 5, Poll: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, sk)
	check := stream.NewChecker(storetest.Signer().Verifier())
	read := 0
	eventually(t, "rsyslog to write all 12 events and the checkpoint", func() bool {
		f, err := os.Open(out)
		if err != nil {
			return false
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for n := 0; sc.Scan(); n++ {
			if n < read {
				continue
			}
			read++
			fields := strings.SplitN(sc.Text(), "|", 9)
			if len(fields) != 9 {
				t.Fatalf("rsyslog wrote %q", sc.Text())
			}
			pri, ver, ts, host, app, procid, msgid, sd, msg := fields[0], fields[1], fields[2], fields[3], fields[4], fields[5], fields[6], fields[7], fields[8]
			var l stream.Line
			if err := json.Unmarshal([]byte(msg), &l); err != nil {
				t.Fatalf("MSG %q: %v", msg, err)
			}
			if pri != "110" || ver != "1" || host != "trail-host" || app != "trail" || procid != "-" {
				t.Errorf("header: pri %s version %s host %s app %s procid %s", pri, ver, host, app, procid)
			}
			if _, err := time.Parse(time.RFC3339, ts); err != nil {
				t.Errorf("timestamp %q: %v", ts, err)
			}
			wantSD := `[trail@32473 tenant="acme"]`
			wantID := "checkpoint"
			if l.Seq != 0 {
				wantSD, wantID = `[trail@32473 tenant="acme" seq="`+strconv.FormatUint(l.Seq, 10)+`"]`, "event"
			}
			if sd != wantSD || msgid != wantID {
				t.Errorf("msgid %q sd %q, want %q %q", msgid, sd, wantID, wantSD)
			}
			if _, err := check.Line(&l); err != nil {
				t.Fatal(err)
			}
		}
		return check.Verified("acme") == 12
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
