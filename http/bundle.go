package http

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/export"
	"github.com/trailaudit/trail/tlog"
)

// bundleFormat is the export_format an export of a verifiable bundle
// records.
const bundleFormat export.Format = "trail-bundle"

// exportBundle answers GET /v1/export?verifiable=1: the bundle of the
// events that pass the filters, proven against the latest checkpoint
// (tlog.WriteBundle), recorded as export records the others. With no
// filter but since and until it is a complete window (the
// Trail-Bundle-Window header says complete, else selection).
func (s *Server) exportBundle(w http.ResponseWriter, r *http.Request, k *trail.APIKey, v url.Values) error {
	if on, err := strconv.ParseBool(v.Get("verifiable")); err != nil || !on {
		return trail.Invalid("bad query parameters", trail.FieldError{Path: "verifiable", Message: "want 1 (or true): a bundle with the signed checkpoint and proofs"})
	}
	if v.Has("format") {
		return trail.Invalid("bad query parameters", trail.FieldError{Path: "format", Message: "a verifiable export is a bundle (" + tlog.BundleFormat + "): leave format out"})
	}
	reason := v.Get("reason")
	v.Del("verifiable")
	v.Del("reason")
	q, err := parseQuery(v, k.Tenant, false)
	if err != nil {
		return err
	}
	if reason == "" {
		reason = "api_request"
	}
	cp, err := s.latest(r, k.Tenant)
	if err != nil {
		return err
	}
	if now := s.c.Now(); q.RecordedBefore.IsZero() || q.RecordedBefore.After(now) {
		q.RecordedBefore = now
	}
	corr := trail.NewID(s.c.Now())
	if err := s.audit(r, k, exportAttempted(bundleFormat, corr, v, r.URL.RawQuery)); err != nil {
		return err
	}
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(time.Hour))
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-events.bundle"`, k.Tenant))
	window := "selection"
	if q.WindowOnly() {
		window = "complete"
	}
	w.Header().Set("Trail-Bundle-Window", window)
	cw := &countingWriter{w: w}
	var opener tlog.BundleOpener // the openings of events' sealed data
	if s.c.Eraser != nil {
		opener = s.c.Eraser
	}
	n, _, err := tlog.WriteBundle(r.Context(), cw, s.c.Store, cp, q, opener)
	if err != nil {
		w.Header().Del("Trail-Bundle-Window")
		return s.exportFailed(w, r, k, bundleFormat, corr, cw.n, n, err)
	}
	if err := s.audit(r, k, exported(bundleFormat, corr, reason, cw.n, n)); err != nil {
		s.log.ErrorContext(r.Context(), "recording a finished export failed", "tenant", k.Tenant, "err", err)
	}
	return nil
}
