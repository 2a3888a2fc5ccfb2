package http

import (
	"cmp"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/export"
)

// countingWriter counts the bytes an export wrote.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// export streams the tenant's events that pass the filters, oldest first,
// as NDJSON, CSV or OCSF (?format=, default ndjson), or as a verifiable
// bundle (?verifiable=1, exportBundle), and records the export:
// data_export_attempted before the first byte (refused if that cannot be
// written), then data_exported with the size and count, or
// data_export_failed, under one correlation id.
func (s *Server) export(w http.ResponseWriter, r *http.Request, k *trail.APIKey) error {
	v := r.URL.Query()
	if v.Has("verifiable") {
		return s.exportBundle(w, r, k, v)
	}
	format, reason := v.Get("format"), v.Get("reason")
	v.Del("format")
	v.Del("reason")
	f, err := export.ParseFormat(cmp.Or(format, "ndjson"))
	if err != nil {
		return err
	}
	q, err := parseQuery(v, k.Tenant, false)
	if err != nil {
		return err
	}
	if q, err = catalog.ResolveQueryActions(r.Context(), s.c.Catalog, s.c.Store, q); err != nil {
		return err
	}
	if reason == "" {
		reason = "api_request"
	}
	// The export is of the log as it stands now: events recorded later
	// (its own record among them) are left to the next export, so that it
	// ends under steady ingest.
	if now := s.c.Now(); q.RecordedBefore.IsZero() || q.RecordedBefore.After(now) {
		q.RecordedBefore = now
	}
	corr := trail.NewID(s.c.Now())
	if err := s.audit(r, k, exportAttempted(f, corr, v, r.URL.RawQuery)); err != nil {
		return err
	}
	// An export may take longer than the server's write timeout.
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(time.Hour))
	w.Header().Set("Content-Type", f.ContentType())
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-events.%s"`, k.Tenant, extension(f)))
	cw := &countingWriter{w: w}
	ew, err := export.NewWriter(cw, f, s.catalogOf(k))
	if err != nil {
		return err
	}
	count := 0
	q.Limit = trail.MaxPageSize
	for {
		p, err := s.c.Store.Query(r.Context(), q)
		if err == nil {
			for _, ev := range p.Events {
				if err = ew.Write(ev); err != nil {
					break
				}
				count++
			}
		}
		if err != nil {
			return s.exportFailed(w, r, k, f, corr, cw.n, count, err)
		}
		if p.Next == "" {
			break
		}
		q.Cursor = p.Next
	}
	if err := ew.Close(); err != nil {
		return s.exportFailed(w, r, k, f, corr, cw.n, count, err)
	}
	// The body is written; a failure to record its success is logged (and
	// the attempt is on record already).
	if err := s.audit(r, k, exported(f, corr, reason, cw.n, count)); err != nil {
		s.log.ErrorContext(r.Context(), "recording a finished export failed", "tenant", k.Tenant, "err", err)
	}
	return nil
}

// exportFailed records a failed export. Before the first byte the client is
// answered with the error; after it, the status is sent already, so the
// client sees a cut body and the error is logged.
func (s *Server) exportFailed(w http.ResponseWriter, r *http.Request, k *trail.APIKey, f export.Format, corr string, written int64, count int, cause error) error {
	if err := s.audit(r, k, exportFailed(f, corr, cause, count)); err != nil {
		s.log.ErrorContext(r.Context(), "recording a failed export failed", "tenant", k.Tenant, "err", err)
	}
	if written == 0 {
		w.Header().Del("Content-Disposition")
		return cause // nothing sent yet: the client gets problem details
	}
	s.log.ErrorContext(r.Context(), "export failed after it began; the client sees a cut body", "tenant", k.Tenant, "after", count, "err", cause)
	return nil
}

func failReason(err error) string {
	if slices.Contains([]string{trail.EINVALID, trail.ENOTFOUND}, trail.ErrorCode(err)) {
		return "invalid_request"
	}
	return "interrupted"
}

func extension(f export.Format) string {
	if f == export.CSV {
		return "csv"
	}
	return "ndjson"
}
