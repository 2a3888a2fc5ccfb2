package http

import (
	"net/http"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/stream"
	"github.com/trailaudit/trail/stream/sinks"
)

// SinkRunner is what the server needs of the sinks run beside it: their
// statuses, a reload once a configuration changed, and a resume of one
// stopped for good. A stream/sinks.Supervisor is one.
type SinkRunner interface {
	// Statuses returns the status of each of tenant's sinks it runs.
	Statuses(tenant string) []stream.Status
	// Status returns the status of tenant's sink name, and false when it
	// does not run it.
	Status(tenant, name string) (stream.Status, bool)
	// Reload reads the configurations again now, without waiting.
	Reload()
	// Resume runs again a sink that stopped for good.
	Resume(tenant, name string) error
}

var _ SinkRunner = (*sinks.Supervisor)(nil)

// sinkRequest is the body of POST /v1/sinks: a trail.SinkConfig less what
// the server sets (tenant, creation).
type sinkRequest struct {
	Name      string         `json:"name"`
	Kind      trail.SinkKind `json:"kind"`
	URL       string         `json:"url"`
	Address   string         `json:"address"`
	Secret    string         `json:"secret"`
	Format    string         `json:"format"`
	TLS       bool           `json:"tls"`
	Subject   string         `json:"subject"`
	OnRefusal string         `json:"on_refusal"`
}

// sinkView is a sink as the API shows it: its configuration as Public
// gives it (never the secret) and its status.
type sinkView struct {
	*trail.SinkConfig
	Status sinkStatus `json:"status"`
}

// sinkStatus is what a sink is doing, as far as this server knows: a sink
// it does not run (Running false) shows only that.
type sinkStatus struct {
	Running    bool    `json:"running"` // this server runs it (its supervisor has started it)
	Cursor     uint64  `json:"cursor"`  // the last seq its receiver acknowledged
	Head       uint64  `json:"head"`    // the size of the latest checkpoint it has seen
	LagEvents  uint64  `json:"lag_events"`
	LagSeconds float64 `json:"lag_seconds"` // how long the oldest undelivered event has waited
	Delivered  uint64  `json:"delivered"`   // messages acknowledged
	Failures   uint64  `json:"failures"`    // failed attempts
	Skipped    uint64  `json:"skipped"`     // events refused and skipped (on_refusal skip)
	LastError  string  `json:"last_error,omitempty"`
	Stopped    bool    `json:"stopped"` // stopped for good: resume it once fixed
}

// statusView returns st as the API shows it at now.
func statusView(st stream.Status, now time.Time) sinkStatus {
	v := sinkStatus{Running: true, Cursor: st.Cursor, Head: st.Head, LagEvents: st.Lag, Delivered: st.Delivered,
		Failures: st.Failures, Skipped: st.Skipped, LastError: st.LastError, Stopped: st.Stopped}
	if !st.LagSince.IsZero() {
		v.LagSeconds = max(0, now.Sub(st.LagSince).Seconds())
	}
	return v
}

// sinkStore returns the server's sink configurations, or an error saying
// there are none.
func (s *Server) sinkStore() (trail.SinkStore, error) {
	if s.c.Sinks == nil {
		return nil, trail.Errorf(trail.EINTERNAL, "this server keeps no sinks")
	}
	return s.c.Sinks, nil
}

// view returns c as shown, with its status.
func (s *Server) view(c *trail.SinkConfig) sinkView {
	p := c.Public()
	v := sinkView{SinkConfig: &p}
	if s.c.SinkRunner != nil {
		if st, ok := s.c.SinkRunner.Status(c.Tenant, c.Name); ok {
			v.Status = statusView(st, s.c.Now())
		}
	}
	return v
}

// reloadSinks has the sinks run here pick up a change at once.
func (s *Server) reloadSinks() {
	if s.c.SinkRunner != nil {
		s.c.SinkRunner.Reload()
	}
}

// listSinks lists the key's tenant's sinks, with their statuses.
func (s *Server) listSinks(w http.ResponseWriter, r *http.Request, k *trail.APIKey) error {
	if err := onlyParams(r.URL.Query()); err != nil {
		return err
	}
	ss, err := s.sinkStore()
	if err != nil {
		return err
	}
	cs, err := ss.Sinks(r.Context(), k.Tenant)
	if err != nil {
		return err
	}
	out := make([]sinkView, len(cs))
	for i, c := range cs {
		out[i] = s.view(c)
	}
	return writeJSON(w, http.StatusOK, map[string]any{"sinks": out})
}

// getSink shows one of the key's tenant's sinks. Another tenant's is not
// found, as an unknown one is.
func (s *Server) getSink(w http.ResponseWriter, r *http.Request, k *trail.APIKey) error {
	if err := onlyParams(r.URL.Query()); err != nil {
		return err
	}
	ss, err := s.sinkStore()
	if err != nil {
		return err
	}
	c, err := ss.GetSink(r.Context(), k.Tenant, r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, s.view(c))
}

// createdSink is the answer to POST /v1/sinks: the sink, the seq of the
// record of its creation, and a webhook's signing secret when the server
// made it (shown this once).
type createdSink struct {
	Sink        sinkView `json:"sink"`
	RecordedSeq uint64   `json:"recorded_seq"`
	Secret      string   `json:"secret,omitempty"`
}

// postSink adds a sink to the key's tenant, recorded in its log
// (admin_config_changed) before it is stored, and has it run at once. A
// webhook given no secret gets one, returned this once.
func (s *Server) postSink(w http.ResponseWriter, r *http.Request, k *trail.APIKey) error {
	if err := onlyParams(r.URL.Query()); err != nil {
		return err
	}
	ss, err := s.sinkStore()
	if err != nil {
		return err
	}
	body, err := s.readJSON(w, r)
	if err != nil {
		return err
	}
	var req sinkRequest
	if err := decodeStrict(body, &req); err != nil {
		return err
	}
	made := ""
	if req.Kind == trail.SinkWebhook && req.Secret == "" {
		if made, err = trail.NewWebhookSecret(); err != nil {
			return err
		}
		req.Secret = made
	}
	c, seq, err := sinks.Add(r.Context(), ss, s.c.Writer, &trail.SinkConfig{Tenant: k.Tenant, Name: req.Name, Kind: req.Kind, URL: req.URL,
		Address: req.Address, Secret: req.Secret, Format: req.Format, TLS: req.TLS, Subject: req.Subject, OnRefusal: req.OnRefusal}, keyActor(k), s.c.Now())
	if err != nil {
		return err
	}
	s.reloadSinks()
	return writeJSON(w, http.StatusCreated, createdSink{Sink: s.view(c), RecordedSeq: seq, Secret: made})
}

// deleteSink removes one of the key's tenant's sinks, recorded in its log
// first; the sink stops at once. Its cursor stays: a sink added again
// under the name goes on from there.
func (s *Server) deleteSink(w http.ResponseWriter, r *http.Request, k *trail.APIKey) error {
	if err := onlyParams(r.URL.Query()); err != nil {
		return err
	}
	ss, err := s.sinkStore()
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	seq, err := sinks.Remove(r.Context(), ss, s.c.Writer, k.Tenant, name, keyActor(k))
	if err != nil {
		return err
	}
	s.reloadSinks()
	return writeJSON(w, http.StatusOK, map[string]any{"removed": name, "recorded_seq": seq})
}

// resumeSink runs again, from its cursor, one of the key's tenant's sinks
// that stopped for good, recorded in its log (sink_resumed) first. A sink
// that has not stopped is a conflict, as is one this server does not run.
func (s *Server) resumeSink(w http.ResponseWriter, r *http.Request, k *trail.APIKey) error {
	if err := onlyParams(r.URL.Query()); err != nil {
		return err
	}
	ss, err := s.sinkStore()
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	if _, err := ss.GetSink(r.Context(), k.Tenant, name); err != nil {
		return err
	}
	if s.c.SinkRunner == nil {
		return trail.Errorf(trail.ECONFLICT, "this server does not run sinks, so it cannot resume one (trail serve runs them)")
	}
	st, ok := s.c.SinkRunner.Status(k.Tenant, name)
	switch {
	case !ok:
		return trail.Errorf(trail.ECONFLICT, "sink %q is not running yet: nothing to resume", name)
	case !st.Stopped:
		return trail.Errorf(trail.ECONFLICT, "sink %q has not stopped: nothing to resume", name)
	}
	seq, err := sinks.Resumed(r.Context(), s.c.Writer, k.Tenant, name, st.LastError, keyActor(k))
	if err != nil {
		return err
	}
	if err := s.c.SinkRunner.Resume(k.Tenant, name); err != nil {
		return &trail.Error{Code: trail.ErrorCode(err), Err: err,
			Message: trail.ErrorMessage(err) + " (the resume is recorded, but the sink was not resumed)"}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"resumed": name, "recorded_seq": seq})
}

// sinksPage is the data of the UI's sinks page.
type sinksPage struct {
	Running bool // this server runs the sinks
	Sinks   []sinkView
}

// uiSinks shows the key's tenant's sinks with their statuses: read-only
// (changes go through the API or the CLI, which record them). It is not a
// read of the log, so it is not recorded.
func (s *Server) uiSinks(w http.ResponseWriter, r *http.Request, k *trail.APIKey) error {
	ss, err := s.sinkStore()
	if err != nil {
		return err
	}
	cs, err := ss.Sinks(r.Context(), k.Tenant)
	if err != nil {
		return err
	}
	d := &sinksPage{Running: s.c.SinkRunner != nil}
	for _, c := range cs {
		d.Sinks = append(d.Sinks, s.view(c))
	}
	return s.uiRender(w, r, http.StatusOK, "sinks", k, "Sinks", d)
}
