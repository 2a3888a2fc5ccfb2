// Package streamtest helps the tests of streams: a webhook receiver as a
// SIEM's would be, which checks every signature by the Standard Webhooks
// spec and every line with a stream.Checker.
package streamtest

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/stream"
	"github.com/trailaudit/trail/tlog"
)

// Receiver is a webhook receiver on 127.0.0.1. It checks the Standard
// Webhooks signature by hand from the spec, then every line with a
// stream.Checker. Fail makes it answer 503 to that many requests (after
// reading them: a receiver that stored a batch and then failed to
// answer); Refuse makes it answer 400 to all, RefuseSeq to a message
// carrying the bytes of one of the events at those seqs (a stand-in for a
// skipped one it takes).
type Receiver struct {
	URL string

	t      testing.TB
	secret string
	mu     sync.Mutex
	check  *stream.Checker
	fail   int
	refuse bool
	seqs   map[uint64]bool // events refused
	ids    map[string]int  // webhook-id → deliveries
	dups   int
	lines  int
	raw    [][]byte // every line, as received
	err    error
}

// NewReceiver starts a receiver checking signatures under secret and
// checkpoints with v. It stops when the test ends.
func NewReceiver(t testing.TB, secret string, v *tlog.Verifier) *Receiver {
	r := &Receiver{t: t, secret: secret, check: stream.NewChecker(v), ids: map[string]int{}}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

// MapWith makes the receiver's checker hold each OCSF event to Trail's
// mapping of its bytes (stream.Checker.MapWith).
func (r *Receiver) MapWith(actions trail.ActionResolver) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.check.MapWith(actions)
}

// Fail makes the receiver fail the next n requests, after reading them.
func (r *Receiver) Fail(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail = n
}

// Refuse makes the receiver refuse every request (400), or stop refusing.
func (r *Receiver) Refuse(on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refuse = on
}

// RefuseSeq makes the receiver refuse (400) every message carrying the
// bytes of an event at one of seqs.
func (r *Receiver) RefuseSeq(seqs ...uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seqs = map[uint64]bool{}
	for _, s := range seqs {
		r.seqs[s] = true
	}
}

// Skipped returns the seqs of tenant's events that came as skipped
// stand-ins.
func (r *Receiver) Skipped(tenant string) []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.check.Skipped(tenant)
}

// ServeHTTP receives one message.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	id, ts := req.Header.Get("webhook-id"), req.Header.Get("webhook-timestamp")
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(r.secret, "whsec_"))
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "." + string(body)))
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if sec, err := strconv.ParseInt(ts, 10, 64); err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute || req.Header.Get("webhook-signature") != want {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.refuse {
		http.Error(w, "schema says no", http.StatusBadRequest)
		return
	}
	var lines [][]byte
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l, err := stream.ParseLine(sc.Bytes())
		if err != nil {
			r.err = err
			continue
		}
		if l.Event != nil && r.seqs[l.Seq] {
			http.Error(w, fmt.Sprintf("seq %d: schema says no", l.Seq), http.StatusBadRequest)
			return
		}
		lines = append(lines, bytes.Clone(sc.Bytes()))
	}
	r.ids[id]++
	for _, line := range lines {
		r.lines++
		r.raw = append(r.raw, line)
		dup, err := r.check.Check(line)
		if dup {
			r.dups++
		}
		if err != nil {
			r.err = err
		}
	}
	if r.fail > 0 {
		r.fail--
		http.Error(w, "try later", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Verified returns how many of tenant's events the receiver has verified
// against a signed checkpoint. A line that failed its checks fails the
// test.
func (r *Receiver) Verified(tenant string) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		r.t.Fatalf("receiver: %v", r.err)
	}
	return r.check.Verified(tenant)
}

// Lines returns how many lines the receiver has read, and how many of
// them were redeliveries.
func (r *Receiver) Lines() (lines, dups int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lines, r.dups
}

// Raw returns every line the receiver has read, as it read it.
func (r *Receiver) Raw() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.raw)
}

// Eventually waits up to 10 seconds for ok, or fails the test naming what
// it waited for.
func Eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}
