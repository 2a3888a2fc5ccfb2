package http

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/detect"
)

// alertView is one alert_raised event as the alerts page shows it.
type alertView struct {
	Ev                     *trail.Event
	Rule, RuleID, Set      string
	Level                  string
	From, To               string
	Group                  []string // "field=value", in field order
	Evidence               []uint64
	EvidenceCount, Trigger uint64
	More                   bool // evidence_count is more than the seqs listed
}

// alertsPage is the alerts page's data.
type alertsPage struct {
	Alerts []alertView
	Status []detect.Status // the sets running over the tenant's log; nil when none run here
	Run    bool            // this server runs the rules
	Paged  bool
	Next   string
}

// viewAlert reads what the alerts page shows of an alert. Its context is
// what the engine wrote, but read defensively: an alert is an event like
// any other, and a missing or mistyped key shows as missing.
func viewAlert(ev *trail.Event) alertView {
	c := ev.Context
	str := func(k string) string { s, _ := c[k].(string); return s }
	num := func(v any) uint64 {
		switch x := v.(type) {
		case float64:
			if x >= 0 {
				return uint64(x)
			}
		case uint64:
			return x
		case int64:
			return uint64(max(x, 0))
		case int:
			return uint64(max(x, 0))
		case interface{ Int64() (int64, error) }:
			if n, err := x.Int64(); err == nil && n >= 0 {
				return uint64(n)
			}
		}
		return 0
	}
	a := alertView{Ev: ev, Rule: str("rule_title"), RuleID: str("rule_id"), Set: str("rule_set"), Level: str("level"),
		From: str("window_from"), To: str("window_to"), EvidenceCount: num(c["evidence_count"]), Trigger: num(c["trigger_seq"])}
	seqs, _ := c["evidence_seqs"].([]any)
	for _, s := range seqs {
		if n := num(s); n > 0 {
			a.Evidence = append(a.Evidence, n)
		}
	}
	a.More = a.EvidenceCount > uint64(len(a.Evidence))
	if g, ok := c["group"].(map[string]any); ok {
		keys := make([]string, 0, len(g))
		for k := range g {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			a.Group = append(a.Group, fmt.Sprintf("%s=%v", k, g[k]))
		}
	}
	return a
}

// uiAlerts shows the tenant's alerts, newest first, a page at a time,
// each with its rule, level, window, group and links to its evidence, and
// the status of the rule sets running over the log. The page is a
// recorded read.
func (s *Server) uiAlerts(w http.ResponseWriter, r *http.Request, k *trail.APIKey) error {
	cursor := r.URL.Query().Get("cursor")
	p, err := s.c.Store.Query(r.Context(), trail.Query{Tenant: k.Tenant, Actions: []string{catalog.AlertRaised},
		Descending: true, Limit: uiPageSize, Cursor: cursor})
	if err != nil {
		return err
	}
	rec := viewedEvents(url.Values{"action": {catalog.AlertRaised}}, "action="+catalog.AlertRaised, len(p.Events)).in("ui_alerts")
	if err := s.audit(r, k, rec); err != nil {
		return err
	}
	d := &alertsPage{Paged: cursor != "", Run: s.c.Detections != nil}
	for _, ev := range p.Events {
		d.Alerts = append(d.Alerts, viewAlert(ev))
	}
	if p.Next != "" {
		d.Next = "/ui/alerts?cursor=" + url.QueryEscape(p.Next)
	}
	if s.c.Detections != nil {
		d.Status = s.c.Detections.Statuses(k.Tenant)
	}
	return s.uiRender(w, r, http.StatusOK, "alerts", k, "Alerts", d)
}

// uiSeq sends the browser to the page of the event at a seq of the
// tenant's log (an alert's evidence names seqs). The event page records
// the read.
func (s *Server) uiSeq(w http.ResponseWriter, r *http.Request, k *trail.APIKey) error {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		return trail.Invalid("bad seq", trail.FieldError{Path: "seq", Message: "want a seq of the log (1 or more)"})
	}
	ev, err := s.c.Store.GetSeq(r.Context(), k.Tenant, seq)
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/ui/events/"+url.PathEscape(ev.ID), http.StatusSeeOther)
	return nil
}
