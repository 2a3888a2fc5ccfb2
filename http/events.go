package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/internal/ledger"
	"github.com/trailaudit/trail/internal/par"
)

// readBody reads the whole body, up to limit bytes, and returns it with
// its media type, one of accept. A body must say what it is: a
// Content-Type not in accept, or with a charset other than UTF-8 (JSON and
// NDJSON are UTF-8, RFC 8259), is refused with 415 naming the header; so is
// a body with none. An empty body needs none (its route says whether it
// may be empty).
func readBody(w http.ResponseWriter, r *http.Request, limit int64, accept ...string) ([]byte, string, error) {
	mt, err := bodyType(r, accept)
	if err != nil {
		return nil, "", err
	}
	// Read into one buffer of the size the request declares (a batch of
	// 1000 events is ~650 KB: growing by doubling copies it ten times).
	buf := bytes.NewBuffer(make([]byte, 0, bodyCap(r, limit)))
	_, err = buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	b := buf.Bytes()
	if err := readError(err, limit); err != nil {
		return nil, "", err
	}
	if err := untyped(mt, len(b), accept); err != nil {
		return nil, "", err
	}
	return b, mt, nil
}

// bodyType returns the media type of the request's Content-Type, one of
// accept, or "" when it has none (readBody and readNDJSON refuse a body
// without one once they know it is not empty).
func bodyType(r *http.Request, accept []string) (string, error) {
	if h := r.Header.Get("Content-Type"); h != "" {
		return mediaType(h, accept)
	}
	return "", nil
}

// bodyCap is the capacity to read a body into: the size it declares (up to
// limit) and room to see its end.
func bodyCap(r *http.Request, limit int64) int64 {
	return min(max(r.ContentLength, 0), limit) + bytes.MinRead
}

// readError is the answer to err, from reading a body of at most limit
// bytes, or nil for none.
func readError(err error, limit int64) error {
	var mbe *http.MaxBytesError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &mbe):
		return &apiError{code: eTooLarge, msg: fmt.Sprintf("the body is over the limit of %d bytes", limit)}
	default:
		return trail.Errorf(trail.EINVALID, "reading the body: %v", err)
	}
}

// untyped refuses a body of n bytes that came with no media type (mt "").
func untyped(mt string, n int, accept []string) error {
	if mt == "" && n > 0 {
		return unsupported("the body has no Content-Type: send %s", strings.Join(accept, " or "))
	}
	return nil
}

// mediaType returns the media type of the Content-Type header h when it is
// one of accept, with no charset or UTF-8.
func mediaType(h string, accept []string) (string, error) {
	want := strings.Join(accept, " or ")
	mt, params, err := mime.ParseMediaType(h)
	if err != nil {
		return "", unsupported("Content-Type does not parse (%v): send %s", err, want)
	}
	if !slices.Contains(accept, mt) {
		return "", unsupported("Content-Type %.64q is not accepted here: send %s", mt, want)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return "", unsupported("Content-Type charset %.32q: the body must be UTF-8 (charset=utf-8, or no charset)", cs)
	}
	return mt, nil
}

// unsupported is a 415 naming the Content-Type header.
func unsupported(format string, args ...any) error {
	return &apiError{code: eMediaType, msg: fmt.Sprintf(format, args...), header: "Content-Type"}
}

// readJSON reads a body of JSON (application/json), up to Limits.MaxBody.
func (s *Server) readJSON(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, _, err := readBody(w, r, s.c.Limits.MaxBody, "application/json")
	return b, err
}

// policy reads the append policy from the query: strict and allow_custom.
func policy(q url.Values) (trail.Policy, error) {
	var p trail.Policy
	if err := onlyParams(q, "strict", "allow_custom"); err != nil {
		return p, err
	}
	var fe []trail.FieldError
	for _, f := range []struct {
		name string
		to   *bool
	}{{"strict", &p.Strict}, {"allow_custom", &p.AllowCustom}} {
		if v := q.Get(f.name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				fe = append(fe, trail.FieldError{Path: f.name, Message: "want true or false"})
			}
			*f.to = b
		}
	}
	if len(fe) > 0 {
		return p, trail.Invalid("bad query parameters", fe...)
	}
	return p, nil
}

// onlyParams refuses query parameters other than known, naming them.
func onlyParams(q url.Values, known ...string) error {
	var fe []trail.FieldError
	for k := range q {
		if !slices.Contains(known, k) {
			fe = append(fe, trail.FieldError{Path: k, Message: "unknown query parameter"})
		}
	}
	if len(fe) > 0 {
		slices.SortFunc(fe, func(a, b trail.FieldError) int { return strings.Compare(a.Path, b.Path) })
		return trail.Invalid("unknown query parameters", fe...)
	}
	return nil
}

// appended is the answer to an append.
type appended struct {
	Count    int          `json:"count"`
	FirstSeq uint64       `json:"first_seq"`
	LastSeq  uint64       `json:"last_seq"`
	Marked   int          `json:"marked"` // stored with violations or redactions
	Event    *trail.Event `json:"event,omitempty"`
	IDs      []string     `json:"ids,omitempty"`
	Replay   bool         `json:"replay,omitempty"`
}

// appendEvents appends for the key's tenant and answers 201 (200 for an
// idempotent replay).
func (s *Server) appendEvents(w http.ResponseWriter, r *http.Request, k *trail.APIKey, evs []*trail.Event, single bool) error {
	p, err := policy(r.URL.Query())
	if err != nil {
		return err
	}
	t0 := time.Now()
	// The client's address fills events that name none, after the
	// store fingerprints the batch: a retry through another address is
	// the same batch. Trail's own records and api_key actors are refused
	// by the store's pipeline, as on every outside path.
	res, err := s.c.Store.Append(r.Context(), k.Tenant, evs, trail.AppendOptions{
		IdempotencyKey: r.Header.Get("Idempotency-Key"), Policy: p, ClientIP: s.clientIP(r)})
	if errors.Is(err, ledger.ErrForgery) {
		s.forged(r, k, evs)
	}
	if err != nil {
		return keyHeader(err)
	}
	s.writes.succeeded()
	s.metrics.commit.Observe(time.Since(t0).Seconds())
	out := appended{Count: len(res.Events), Replay: res.Replay}
	if n := len(res.Events); n > 0 {
		out.FirstSeq, out.LastSeq = res.Events[0].Seq, res.Events[n-1].Seq
	}
	for _, ev := range res.Events {
		if len(ev.Violations)+len(ev.Redacted) > 0 {
			out.Marked++
		}
		if !res.Replay {
			s.metrics.redactions.Add(float64(len(ev.Redacted)))
		}
	}
	if single {
		out.Event = res.Events[0]
	} else {
		out.IDs = make([]string, len(res.Events))
		for i, ev := range res.Events {
			out.IDs[i] = ev.ID
		}
	}
	status := http.StatusCreated
	if res.Replay {
		status = http.StatusOK
		w.Header().Set("Idempotent-Replayed", "true")
	} else {
		s.metrics.appended.Add(float64(len(res.Events)))
		s.metrics.batchSize.Observe(float64(len(res.Events)))
		s.metrics.marked.Add(float64(out.Marked))
	}
	return writeJSON(w, status, out)
}

// forged counts a batch the store refused for holding what only Trail
// writes (its own records, api_key actors), and raises the alert of
// Trail's own rule (detect.Forgeries: at most one per key per hour). The
// caller is answered with the refusal either way; an alert that cannot be
// written is logged as the error it is.
func (s *Server) forged(r *http.Request, k *trail.APIKey, evs []*trail.Event) {
	var actions []string
	for _, ev := range evs {
		for _, f := range ledger.Forged(s.c.Catalog, ev) {
			if !slices.Contains(actions, f) {
				actions = append(actions, f)
			}
		}
	}
	s.metrics.forgeries.WithLabelValues(k.Tenant).Inc()
	s.log.WarnContext(r.Context(), "refused a forgery of Trail's own records", "tenant", k.Tenant, "key", k.ID, "actions", actions)
	if err := s.forgeries.Refused(r.Context(), k.Tenant, keyActor(k), actions, s.c.Now()); err != nil {
		s.log.ErrorContext(r.Context(), "the alert of a refused forgery could not be recorded", "tenant", k.Tenant, "key", k.ID, "err", err)
	}
}

// keyHeader names the Idempotency-Key header in err where the store names
// the append's idempotency_key (ledger.MaxIdempotencyKey bounds it): the
// header is what the caller sent.
func keyHeader(err error) error {
	var te *trail.Error
	if !errors.As(err, &te) {
		return err
	}
	i := slices.IndexFunc(te.Fields, func(f trail.FieldError) bool { return f.Path == "idempotency_key" })
	if i < 0 {
		return err
	}
	named := *te
	named.Message = "bad Idempotency-Key header"
	named.Fields = slices.Clone(te.Fields)
	named.Fields[i].Path = "Idempotency-Key"
	return &named
}

// postEvent appends one event.
func (s *Server) postEvent(w http.ResponseWriter, r *http.Request, k *trail.APIKey) error {
	body, err := s.readJSON(w, r)
	if err != nil {
		return err
	}
	ev, err := trail.ParseEvent(body)
	if err != nil {
		return err
	}
	return s.appendEvents(w, r, k, []*trail.Event{ev}, true)
}

// batchTypes are the media types of a batch.
var batchTypes = []string{"application/x-ndjson", "application/json"}

// postBatch appends a batch, all or nothing: NDJSON (one event per line,
// application/x-ndjson) or a JSON array (application/json). A refused
// batch's errors name each bad event by its index ("[3].actor.type": the
// fourth event, line 4 of NDJSON).
func (s *Server) postBatch(w http.ResponseWriter, r *http.Request, k *trail.APIKey) error {
	mt, err := bodyType(r, batchTypes)
	if err != nil {
		return err
	}
	var evs []*trail.Event
	var errs []error
	if mt == "application/json" {
		evs, errs, err = s.readArray(w, r)
	} else { // application/x-ndjson, or no Content-Type (then an empty body)
		evs, errs, err = s.readNDJSON(w, r, mt)
	}
	if err != nil {
		return err
	}
	var fe []trail.FieldError
	for i, err := range errs {
		if err == nil {
			continue
		}
		fields := trail.ErrorFields(err)
		if len(fields) == 0 {
			fields = []trail.FieldError{{Message: trail.ErrorMessage(err)}}
		}
		for _, f := range fields {
			f.Path = strings.TrimSuffix(trail.PathIndex("", i)+"."+f.Path, ".")
			fe = append(fe, f)
		}
	}
	if len(fe) > 0 {
		return trail.Invalid("batch refused: nothing was stored", fe...)
	}
	return s.appendEvents(w, r, k, evs, false)
}

// readArray reads a batch that is a JSON array of events and parses each
// on every core (par.Spread). It returns the events and each one's error
// (nil when it parsed), or the error that refuses the body.
func (s *Server) readArray(w http.ResponseWriter, r *http.Request) ([]*trail.Event, []error, error) {
	body, _, err := readBody(w, r, s.c.Limits.MaxBatchBody, batchTypes...)
	if err != nil {
		return nil, nil, err
	}
	var arr []json.RawMessage
	if err := json.Unmarshal(body, &arr); err != nil {
		return nil, nil, trail.Errorf(trail.EINVALID, "the body is not a JSON array of events: %v", err)
	}
	if err := s.batchSize(len(arr)); err != nil {
		return nil, nil, err
	}
	evs := make([]*trail.Event, len(arr))
	errs := make([]error, len(arr))
	par.Spread(len(arr), func(lo, hi int) error {
		for i := lo; i < hi; i++ {
			evs[i], errs[i] = trail.ParseEvent(arr[i])
		}
		return nil
	})
	return evs, errs, nil
}

// batchSize refuses a batch of n events over Limits.MaxBatch.
func (s *Server) batchSize(n int) error {
	if n > s.c.Limits.MaxBatch {
		return &apiError{code: eTooLarge, msg: fmt.Sprintf("%d events: a batch may hold %d", n, s.c.Limits.MaxBatch)}
	}
	return nil
}

// eventFilters are the query parameters of GET /v1/events and /v1/export.
var eventFilters = []string{"actor", "actor_type", "action", "category", "outcome", "target_type", "target",
	"organization", "workspace", "team", "correlation", "since", "until", "occurred_since", "occurred_until", "open_attempts"}

// parseQuery reads the filters (and, with paging, cursor, limit and order)
// into a query of the key's tenant.
func parseQuery(v url.Values, tenant string, paging bool) (trail.Query, error) {
	known := eventFilters
	if paging {
		known = append(slices.Clone(known), "cursor", "limit", "order")
	}
	q := trail.Query{Tenant: tenant}
	var fe []trail.FieldError
	for k, vals := range v {
		if !slices.Contains(known, k) {
			fe = append(fe, trail.FieldError{Path: k, Message: "unknown query parameter"})
			continue
		}
		if k != "action" && len(vals) > 1 {
			fe = append(fe, trail.FieldError{Path: k, Message: "given more than once"})
		}
	}
	q.ActorID, q.ActorType = v.Get("actor"), trail.ActorType(v.Get("actor_type"))
	q.Actions, q.Category = v["action"], v.Get("category")
	q.Outcome = trail.Outcome(v.Get("outcome"))
	if q.Outcome != "" && !q.Outcome.Valid() {
		fe = append(fe, trail.FieldError{Path: "outcome", Message: "must be one of attempted, success, failure, denied, info"})
	}
	q.TargetType, q.TargetID = v.Get("target_type"), v.Get("target")
	q.Organization, q.Workspace, q.Team = v.Get("organization"), v.Get("workspace"), v.Get("team")
	q.CorrelationID = v.Get("correlation")
	if s := v.Get("open_attempts"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			fe = append(fe, trail.FieldError{Path: "open_attempts", Message: "want true or false"})
		}
		q.OpenAttempts = b
	}
	for _, t := range []struct {
		name string
		to   *time.Time
	}{{"since", &q.RecordedAfter}, {"until", &q.RecordedBefore}, {"occurred_since", &q.OccurredAfter}, {"occurred_until", &q.OccurredBefore}} {
		if s := v.Get(t.name); s != "" {
			ts, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				fe = append(fe, trail.FieldError{Path: t.name, Message: "not an RFC 3339 time (like 2026-11-24T10:00:00Z)"})
			}
			*t.to = ts
		}
	}
	if paging {
		q.Cursor = v.Get("cursor")
		if s := v.Get("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > trail.MaxPageSize {
				fe = append(fe, trail.FieldError{Path: "limit", Message: fmt.Sprintf("want 1 to %d", trail.MaxPageSize)})
			}
			q.Limit = n
		}
		switch v.Get("order") {
		case "", "asc":
		case "desc":
			q.Descending = true
		default:
			fe = append(fe, trail.FieldError{Path: "order", Message: "want asc or desc"})
		}
	}
	if len(fe) > 0 {
		slices.SortFunc(fe, func(a, b trail.FieldError) int { return strings.Compare(a.Path, b.Path) })
		return q, trail.Invalid("bad query parameters", fe...)
	}
	return q, q.Check()
}

// usedFilters names the filters a request gave, for the record of the read.
func usedFilters(v url.Values) []any {
	var out []any
	for _, f := range eventFilters {
		if v.Has(f) {
			out = append(out, f)
		}
	}
	return out
}

// page is the answer to GET /v1/events.
type page struct {
	Events []*trail.Event `json:"events"`
	Next   string         `json:"next,omitempty"`
}

// listEvents answers a page of the tenant's events, and records the read.
func (s *Server) listEvents(w http.ResponseWriter, r *http.Request, k *trail.APIKey) error {
	v := r.URL.Query()
	q, err := parseQuery(v, k.Tenant, true)
	if err != nil {
		return err
	}
	// A filter by an action no one has is a mistake to say, not an empty
	// page; a tenant with no log yet just has no events.
	if q, err = catalog.ResolveQueryActions(r.Context(), s.c.Catalog, s.c.Store, q); err != nil {
		return err
	}
	p, err := s.c.Store.Query(r.Context(), q)
	if err != nil {
		return err
	}
	if err := s.audit(r, k, viewedEvents(v, r.URL.RawQuery, len(p.Events))); err != nil {
		return err
	}
	if p.Events == nil {
		p.Events = []*trail.Event{}
	}
	return writeJSON(w, http.StatusOK, page{Events: p.Events, Next: p.Next})
}

// getEvent answers one event by id, and records the read.
func (s *Server) getEvent(w http.ResponseWriter, r *http.Request, k *trail.APIKey) error {
	if err := onlyParams(r.URL.Query()); err != nil {
		return err
	}
	ev, err := s.c.Store.Get(r.Context(), k.Tenant, r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := s.audit(r, k, viewedEvent(ev)); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, ev)
}

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
