package http

import (
	"cmp"
	"context"
	"net/http"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/detect"
)

// The detection rules a tenant's log runs (package detect): the built-in
// set, read-only, and the tenant's own rule files, Sigma YAML kept by
// name. Reading them, and the sets' status, takes the read scope; putting
// and deleting a file the admin scope, and each change is recorded in the
// tenant's log (detect.PutRules). The alerts are events (GET /v1/alerts).

// ruleFileView is one of the tenant's rule files as the API shows it.
type ruleFileView struct {
	*trail.RuleFile
	Rules       []detect.RuleInfo `json:"rules"`
	RecordedSeq uint64            `json:"recorded_seq,omitempty"` // the record of the change (PUT)
}

// ruleStore returns the server's rule store, or an error saying there is
// none.
func (s *Server) ruleStore() (trail.RuleStore, error) {
	if s.c.Rules == nil {
		return nil, trail.Errorf(trail.EINTERNAL, "this server keeps no detection rules")
	}
	return s.c.Rules, nil
}

// viewRuleFile is f with the rules in it.
func viewRuleFile(f *trail.RuleFile) ruleFileView {
	rs, _ := detect.ParseRules([]byte(f.YAML)) // stored files were parsed before they were stored
	return ruleFileView{RuleFile: f, Rules: detect.Infos(rs)}
}

// listRules answers the built-in rules, the tenant's rule files and the
// status of each set running over the tenant's log.
func (s *Server) listRules(w http.ResponseWriter, r *http.Request, k *trail.APIKey) error {
	if err := onlyParams(r.URL.Query()); err != nil {
		return err
	}
	rs, err := s.ruleStore()
	if err != nil {
		return err
	}
	files, err := rs.Rules(r.Context(), k.Tenant)
	if err != nil {
		return err
	}
	views := make([]ruleFileView, len(files))
	for i, f := range files {
		views[i] = viewRuleFile(f)
	}
	status := []detect.Status{}
	if s.c.Detections != nil {
		status = append(status, s.c.Detections.Statuses(k.Tenant)...)
	}
	return writeJSON(w, http.StatusOK, map[string]any{"builtin": s.builtin, "files": views, "status": status})
}

// getRules answers one of the tenant's rule files.
func (s *Server) getRules(w http.ResponseWriter, r *http.Request, k *trail.APIKey) error {
	if err := onlyParams(r.URL.Query()); err != nil {
		return err
	}
	rs, err := s.ruleStore()
	if err != nil {
		return err
	}
	f, err := rs.GetRule(r.Context(), k.Tenant, r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, viewRuleFile(f))
}

// putRules puts one of the tenant's rule files: the body is its Sigma
// YAML. 201 for a new file, 200 for one replaced.
func (s *Server) putRules(w http.ResponseWriter, r *http.Request, k *trail.APIKey) error {
	if err := onlyParams(r.URL.Query()); err != nil {
		return err
	}
	rs, err := s.ruleStore()
	if err != nil {
		return err
	}
	body, _, err := readBody(w, r, trail.MaxRuleFileSize, "application/yaml", "text/yaml")
	if err != nil {
		return err
	}
	f, replaced, seq, err := detect.PutRules(r.Context(), rs, s.c.Writer, &trail.RuleFile{Tenant: k.Tenant, Name: r.PathValue("name"), YAML: string(body),
		CreatedAt: s.c.Now(), CreatedBy: k.ID}, keyActor(k), s.c.Now())
	if err != nil {
		return err
	}
	s.writes.succeeded()
	s.syncDetections(r.Context())
	v := viewRuleFile(f)
	v.RecordedSeq = seq
	status := http.StatusCreated
	if replaced {
		status = http.StatusOK
	}
	return writeJSON(w, status, v)
}

// deleteRules removes one of the tenant's rule files, after recording it.
func (s *Server) deleteRules(w http.ResponseWriter, r *http.Request, k *trail.APIKey) error {
	if err := onlyParams(r.URL.Query()); err != nil {
		return err
	}
	rs, err := s.ruleStore()
	if err != nil {
		return err
	}
	seq, err := detect.RemoveRules(r.Context(), rs, s.c.Writer, k.Tenant, r.PathValue("name"), keyActor(k))
	if err != nil {
		return err
	}
	s.syncDetections(r.Context())
	return writeJSON(w, http.StatusOK, map[string]any{"deleted": r.PathValue("name"), "recorded_seq": seq})
}

// detectionsSyncWait bounds how long a change of rules waits for the
// engines run here to pick it up before it is answered.
const detectionsSyncWait = 5 * time.Second

// syncDetections has the detection rules run here (if any) pick up a
// change of rules before the change is answered, so that a replay or a
// status read after the answer sees the new rules. Past
// detectionsSyncWait it answers anyway, saying so in the log: the change
// is stored, and the engines pick it up at their next reload.
func (s *Server) syncDetections(ctx context.Context) {
	if s.c.Detections == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, detectionsSyncWait)
	defer cancel()
	if err := s.c.Detections.Sync(ctx); err != nil {
		s.log.WarnContext(ctx, "the detection rules did not pick up a change of rules in time; they will at their next reload", "err", err)
	}
}

// listAlerts answers a page of the tenant's alerts (alert_raised events),
// newest first unless order=asc, with the filters and paging of GET
// /v1/events but action, and records the read.
func (s *Server) listAlerts(w http.ResponseWriter, r *http.Request, k *trail.APIKey) error {
	v := r.URL.Query()
	if v.Has("action") {
		return trail.Invalid("bad query parameters", trail.FieldError{Path: "action", Message: "alerts are alert_raised events: filter GET /v1/events for other actions"})
	}
	if !v.Has("order") {
		v.Set("order", "desc")
	}
	q, err := parseQuery(v, k.Tenant, true)
	if err != nil {
		return err
	}
	q.Actions = []string{catalog.AlertRaised}
	p, err := s.c.Store.Query(r.Context(), q)
	if err != nil {
		return err
	}
	if err := s.audit(r, k, viewedEvents(v, r.URL.RawQuery, len(p.Events)).with("view", "alerts")); err != nil {
		return err
	}
	if p.Events == nil {
		p.Events = []*trail.Event{}
	}
	return writeJSON(w, http.StatusOK, page{Events: p.Events, Next: p.Next})
}

// replayRules runs one of the sets over the tenant's log again, from a
// time (?since=, RFC 3339; ?set=tenant, the default, or builtin), up to
// where the running set has got to: new rules over the past. It answers
// 202 with the replay's set name, whose status GET /v1/rules shows and
// whose alerts name it.
func (s *Server) replayRules(w http.ResponseWriter, r *http.Request, k *trail.APIKey) error {
	q := r.URL.Query()
	if err := onlyParams(q, "since", "set"); err != nil {
		return err
	}
	since, err := time.Parse(time.RFC3339Nano, q.Get("since"))
	if err != nil {
		return trail.Invalid("bad query parameters", trail.FieldError{Path: "since", Message: "required: an RFC 3339 time (like 2026-11-01T00:00:00Z)"})
	}
	set := cmp.Or(q.Get("set"), detect.TenantSet)
	if set != detect.TenantSet && set != detect.BuiltinSet {
		return trail.Invalid("bad query parameters", trail.FieldError{Path: "set", Message: "want tenant or builtin"})
	}
	if s.c.Detections == nil {
		return trail.Errorf(trail.EUNAVAILABLE, "this server does not run the detection rules")
	}
	name, err := s.c.Detections.Replay(k.Tenant, set, since, s.c.Now())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, map[string]any{"set": name, "replays": set, "since": since.UTC().Format(time.RFC3339Nano)})
}
