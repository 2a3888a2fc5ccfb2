package http

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/trailaudit/trail"
)

// statuses maps Trail's error codes to HTTP statuses: the one place this
// is decided.
var statuses = map[string]int{
	trail.EINVALID:      http.StatusBadRequest,
	trail.EUNAUTHORIZED: http.StatusUnauthorized,
	trail.EFORBIDDEN:    http.StatusForbidden,
	trail.ENOTFOUND:     http.StatusNotFound,
	trail.ECONFLICT:     http.StatusConflict,
	trail.EINTERNAL:     http.StatusInternalServerError,
	trail.EUNAVAILABLE:  http.StatusServiceUnavailable,  // Retry-After says when to try again
	trail.ESTORAGEFULL:  http.StatusInsufficientStorage, // the same
}

// Codes the API adds for conditions of HTTP itself.
const (
	eTooLarge  = "too_large"              // 413: the body is over the limit
	eMediaType = "unsupported_media_type" // 415: the body's Content-Type is not one the route reads
	eTooMany   = "rate_limited"           // 429: the key is over its rate
	eClosed    = "unavailable"            // 503: the server is shutting down or the store is unreachable
)

var apiStatuses = map[string]int{
	eTooLarge:  http.StatusRequestEntityTooLarge,
	eMediaType: http.StatusUnsupportedMediaType,
	eTooMany:   http.StatusTooManyRequests,
}

// Problem is an RFC 9457 problem details document, with Trail's error code
// and, for invalid input, every offending field by JSON path.
type Problem struct {
	Type   string             `json:"type"`
	Title  string             `json:"title"`
	Status int                `json:"status"`
	Detail string             `json:"detail,omitempty"`
	Code   string             `json:"code"`
	Errors []trail.FieldError `json:"errors,omitempty"`
}

// apiError is an error of the API layer with its own code; header, when
// set, names the request header at fault (in the problem's errors).
type apiError struct {
	code, msg, header string
}

func (e *apiError) Error() string { return e.msg }

// problem returns the problem document for err. An error without a code is
// internal: its text is logged, never shown.
func problem(err error) *Problem {
	var ae *apiError
	if errors.As(err, &ae) {
		p := &Problem{Type: "about:blank", Title: http.StatusText(apiStatuses[ae.code]), Status: apiStatuses[ae.code], Detail: ae.msg, Code: ae.code}
		if ae.header != "" {
			p.Errors = []trail.FieldError{{Path: ae.header, Message: ae.msg}}
		}
		return p
	}
	code := trail.ErrorCode(err)
	status := statuses[code]
	return &Problem{
		Type:   "about:blank",
		Title:  http.StatusText(status),
		Status: status,
		Detail: trail.ErrorMessage(err),
		Code:   code,
		Errors: trail.ErrorFields(err),
	}
}

// writeError answers with err as problem details (failed says what else
// a failed request does).
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	s.writeProblem(w, r, s.failed(w, r, err, "request failed"))
}

// failed is what every failed request does, the API's and the UI's, before
// it answers: it returns the problem for err, logs what the caller is not
// shown (a fault of Trail's or of its store's), counts the refusal, and,
// for a store that is down or full (503, 507), tells the caller when to
// retry and keeps /readyz failing for a while (ready.go).
func (s *Server) failed(w http.ResponseWriter, r *http.Request, err error, what string) *Problem {
	p := problem(err)
	if p.Status >= 500 {
		s.log.ErrorContext(r.Context(), what, "method", r.Method, "path", r.URL.Path, "err", err)
	}
	s.metrics.refused.WithLabelValues(p.Code).Inc()
	if storeDown(p.Code) {
		s.writes.failed(s.c.Now(), p.Detail)
		w.Header().Set("Retry-After", strconv.Itoa(int(retryStorage/time.Second)))
	}
	return p
}

// writeProblem answers with p.
func (s *Server) writeProblem(w http.ResponseWriter, r *http.Request, p *Problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	if err := json.NewEncoder(w).Encode(p); err != nil {
		s.log.DebugContext(r.Context(), "writing error response", "err", err)
	}
}
