package http

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/trailaudit/trail"
)

// Readiness. /readyz answers 503 while the store does not answer a read,
// and while it could not be written: from a request that failed because
// the store was down or full (EUNAVAILABLE, ESTORAGEFULL) until an append
// succeeds, or unreadyFor has passed with no such failure (so that a
// server a load balancer stopped sending appends to is tried again). No
// probe can tell a disk that is full from one that is not without writing
// to the log, so the server goes by what its own writes met.
const (
	unreadyFor = 15 * time.Second
	// retryStorage is the Retry-After of an answer that the store was
	// down or full (503, 507): how long a caller waits before it tries
	// again.
	retryStorage = 5 * time.Second
)

// storeDown reports whether code is a failure of the store that passes:
// the store cannot be used (EUNAVAILABLE) or written (ESTORAGEFULL) now.
func storeDown(code string) bool { return code == trail.EUNAVAILABLE || code == trail.ESTORAGEFULL }

// writes remembers the last failure of a request because the store was
// down or full, until an append succeeds. It is safe for concurrent use.
type writes struct {
	mu  sync.Mutex
	at  time.Time // zero: none since the last append that succeeded
	why string
}

// failed records a failure at now, with what it said.
func (w *writes) failed(now time.Time, why string) {
	w.mu.Lock()
	w.at, w.why = now, why
	w.mu.Unlock()
}

// succeeded records an append that succeeded: the store writes.
func (w *writes) succeeded() {
	w.mu.Lock()
	w.at = time.Time{}
	w.mu.Unlock()
}

// failing returns what the last failure said when it was less than
// unreadyFor before now.
func (w *writes) failing(now time.Time) (string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.at.IsZero() || now.Sub(w.at) >= unreadyFor {
		return "", false
	}
	return w.why, true
}

// readyz answers 200 when the store answers a read and its writes are not
// failing, else 503 saying why; a line after "ready" says whether this
// process runs the background work (a follower is as ready as the leader:
// it serves the API). Its own answer is no failure of a request:
// it does not keep itself failing.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	var why string
	if _, err := s.c.Store.Count(ctx, trail.Query{Tenant: "readyz"}); err != nil {
		s.log.WarnContext(r.Context(), "not ready", "err", err)
		why = "the store does not answer: " + trail.ErrorMessage(err)
	} else if failing, ok := s.writes.failing(s.c.Now()); ok {
		why = "the store cannot be written: " + failing
	}
	if why != "" {
		w.Header().Set("Retry-After", strconv.Itoa(int(retryStorage/time.Second)))
		s.writeProblem(w, r, problem(trail.Errorf(trail.EUNAVAILABLE, "not ready: %s", why)))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ready\n" + s.leadership()))
}

// leadership is the line of /readyz saying which process runs the
// background work ("" when this one runs none).
func (s *Server) leadership() string {
	switch {
	case s.c.Leadership == nil:
		return ""
	case s.c.Leadership.Leading():
		return "leader: this process runs the background work (root log and witnessing, detections, sinks)\n"
	}
	return "follower: another process runs the background work (root log and witnessing, detections, sinks); this one takes over if it stops\n"
}
