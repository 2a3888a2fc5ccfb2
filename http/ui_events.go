package http

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
)

// uiFilter is the timeline's filter form as the user filled it in.
type uiFilter struct {
	Actor, ActorType, Action, Category, Outcome, TargetType, Target string
	Organization, Workspace, Team, Correlation, Since, Until        string
	OpenAttempts                                                    bool
}

// readFilter reads the filter form from a query. Since and Until are
// datetime-local values (taken as UTC) or RFC 3339 times; Action may name
// several actions, separated by commas.
func readFilter(v url.Values) uiFilter {
	g := func(k string) string { return strings.TrimSpace(v.Get(k)) }
	f := uiFilter{Actor: g("actor"), ActorType: g("actor_type"), Action: g("action"), Category: g("category"),
		Outcome: g("outcome"), TargetType: g("target_type"), Target: g("target"), Organization: g("organization"),
		Workspace: g("workspace"), Team: g("team"), Correlation: g("correlation"), Since: g("since"), Until: g("until")}
	f.OpenAttempts, _ = strconv.ParseBool(g("open_attempts"))
	if g("open_attempts") == "on" {
		f.OpenAttempts = true
	}
	for _, t := range []*string{&f.Since, &f.Until} {
		if ts, ok := parseFormTime(*t); ok {
			*t = ts.Format("2006-01-02T15:04") // as a datetime-local input shows it
			if ts.Second() != 0 || ts.Nanosecond() != 0 {
				*t = ts.Format("2006-01-02T15:04:05")
			}
		}
	}
	return f
}

// parseFormTime reads a datetime-local value (UTC) or an RFC 3339 time.
func parseFormTime(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), true
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// values returns the filter as the API's query parameters (those of GET
// /v1/events and /v1/export), leaving out the empty ones.
func (f uiFilter) values() url.Values {
	v := url.Values{}
	set := func(k, val string) {
		if val != "" {
			v.Set(k, val)
		}
	}
	set("actor", f.Actor)
	set("actor_type", f.ActorType)
	for _, a := range strings.Split(f.Action, ",") {
		if a = strings.TrimSpace(a); a != "" {
			v.Add("action", a)
		}
	}
	set("category", f.Category)
	set("outcome", f.Outcome)
	set("target_type", f.TargetType)
	set("target", f.Target)
	set("organization", f.Organization)
	set("workspace", f.Workspace)
	set("team", f.Team)
	set("correlation", f.Correlation)
	for _, t := range []struct{ name, val string }{{"since", f.Since}, {"until", f.Until}} {
		if ts, ok := parseFormTime(t.val); ok {
			set(t.name, ts.Format(time.RFC3339Nano))
		} else {
			set(t.name, t.val) // parseQuery names it as bad
		}
	}
	if f.OpenAttempts {
		v.Set("open_attempts", "true")
	}
	return v
}

// More reports whether a filter of the collapsed part of the form is set.
func (f uiFilter) More() bool {
	return f.ActorType != "" || f.TargetType != "" || f.Target != "" || f.Organization != "" || f.Workspace != "" ||
		f.Team != "" || f.Correlation != "" || f.Since != "" || f.Until != "" || f.OpenAttempts
}

// Active counts the filters set.
func (f uiFilter) Active() int {
	n := 0
	for _, s := range []string{f.Actor, f.ActorType, f.Action, f.Category, f.Outcome, f.TargetType, f.Target,
		f.Organization, f.Workspace, f.Team, f.Correlation, f.Since, f.Until} {
		if s != "" {
			n++
		}
	}
	if f.OpenAttempts {
		n++
	}
	return n
}

// eventsPage is the timeline's data.
type eventsPage struct {
	F          uiFilter
	Actions    []string
	Categories []catalog.Category
	Outcomes   []trail.Outcome
	ActorTypes []trail.ActorType
	Events     []*trail.Event
	Rows       []uiRow // Events, the viewer's own reads folded unless ShowReads
	ShowReads  bool    // ?reads=show: the viewer's own reads shown one by one
	ReadsURL   string  // the page with the other setting of ShowReads
	Error      string
	Fields     []trail.FieldError
	Paged      bool   // showing an older page
	Next       string // URL of the next (older) page
	Newest     string // URL of the first page
	Tail       string // URL the live tail polls
	ExportCSV  string
	ExportJSON string
}

// uiEvents shows the timeline: the tenant's events passing the filters,
// newest first, a page at a time, and records the read.
func (s *Server) uiEvents(w http.ResponseWriter, r *http.Request, k *trail.APIKey) error {
	in := r.URL.Query()
	f := readFilter(in)
	filters := f.values()
	show := in.Get("reads") == "show"
	links := readsLinks(filters, show) // what the page's own links carry
	d := &eventsPage{F: f, ShowReads: show, Outcomes: trail.Outcomes, Categories: s.catalogOf(k).Categories(),
		ActorTypes: []trail.ActorType{trail.ActorUser, trail.ActorService, trail.ActorSystem, trail.ActorAPIKey}}
	for _, a := range s.catalogOf(k).Actions(catalog.Filter{}) {
		d.Actions = append(d.Actions, a.Name)
	}
	q, err := parseQuery(filters, k.Tenant, false)
	if err == nil {
		q, err = catalog.ResolveQueryActions(r.Context(), s.c.Catalog, s.c.Store, q)
	}
	if err == nil {
		q.Descending, q.Limit, q.Cursor = true, uiPageSize, in.Get("cursor")
		var p *trail.Page
		if p, err = s.c.Store.Query(r.Context(), q); err == nil {
			if err = s.audit(r, k, viewedEvents(filters, filters.Encode(), len(p.Events)).in("ui_timeline")); err != nil {
				return err
			}
			d.Events = p.Events
			if p.Next != "" {
				d.Next = withParam("/ui/", links, "cursor", p.Next)
			}
		}
	}
	d.Rows = foldOwnReads(d.Events, s.actor(r, k), show, withParam("/ui/", readsLinks(filters, true), "cursor", q.Cursor))
	d.ReadsURL = withParam("/ui/", readsLinks(filters, !show), "cursor", q.Cursor)
	status := http.StatusOK
	if err != nil {
		if trail.ErrorCode(err) != trail.EINVALID {
			return err
		}
		d.Error, d.Fields, status = trail.ErrorMessage(err), trail.ErrorFields(err), http.StatusBadRequest
	}
	d.Paged = q.Cursor != ""
	d.Newest = withParam("/ui/", links, "", "")
	if k.Has(trail.ScopeExport) {
		d.ExportCSV = withParam("/ui/export", filters, "format", "csv")
		d.ExportJSON = withParam("/ui/export", filters, "format", "ndjson")
	}
	if !d.Paged && err == nil {
		var newest uint64
		if len(d.Events) > 0 {
			newest = d.Events[0].Seq
		} else if n, err := s.c.Store.Count(r.Context(), trail.Query{Tenant: k.Tenant}); err == nil {
			newest = uint64(n) // nothing matches yet: tail from the end of the log
		}
		d.Tail = withParam("/ui/tail", links, "after", strconv.FormatUint(newest, 10))
	}
	return s.uiRender(w, r, status, "events", k, "Events", d)
}

// readsLinks returns the filters as the timeline's links carry them: with
// reads=show when the viewer's own reads are shown one by one.
func readsLinks(filters url.Values, show bool) url.Values {
	if !show {
		return filters
	}
	return withParamValues(filters, "reads", "show")
}

// uiRow is one line of the timeline: an event, or (Reads > 0) a run of
// consecutive records of the viewer's own reads, folded into one line
// that stands for them; the embedded event is then the run's newest.
type uiRow struct {
	*trail.Event
	Reads   int      // how many reads the line stands for; 0 for an event
	Oldest  uint64   // the seq of the run's oldest
	Actions []string // the actions of the run, each once
	After   bool     // the line follows another: "and N reads by you"
	Show    string   // the page with the reads shown one by one
}

// ownRead reports whether ev records a read made by viewer (Server.actor
// of the viewer's request): what the timeline folds, since every page the viewer opens
// adds one. The records stay in the log, and ?reads=show shows them.
func ownRead(ev *trail.Event, viewer trail.Actor) bool {
	switch ev.Action {
	case catalog.DataViewed, catalog.DataExportAttempted, catalog.DataExported, catalog.DataExportFailed:
		return ev.Actor.Type == viewer.Type && ev.Actor.ID == viewer.ID
	}
	return false
}

// foldOwnReads returns evs as the timeline's lines: each run of viewer's own
// reads (consecutive in evs) folded into one line linking to show, unless
// show is set.
func foldOwnReads(evs []*trail.Event, viewer trail.Actor, show bool, showURL string) []uiRow {
	rows := make([]uiRow, 0, len(evs))
	for _, ev := range evs {
		if show || !ownRead(ev, viewer) {
			rows = append(rows, uiRow{Event: ev})
			continue
		}
		if n := len(rows); n > 0 && rows[n-1].Reads > 0 {
			r := &rows[n-1]
			r.Reads++
			r.Oldest = ev.Seq
			if !slices.Contains(r.Actions, ev.Action) {
				r.Actions = append(r.Actions, ev.Action)
			}
			continue
		}
		rows = append(rows, uiRow{Event: ev, Reads: 1, Oldest: ev.Seq, Actions: []string{ev.Action}, After: len(rows) > 0, Show: showURL})
	}
	return rows
}

// withParam returns path with the query v plus name=value (when name is
// not empty).
func withParam(path string, v url.Values, name, value string) string {
	c := withParamValues(v, name, value)
	if len(c) == 0 {
		return path
	}
	return path + "?" + c.Encode()
}

// withParamValues returns a copy of v with name=value set (when name and
// value are not empty).
func withParamValues(v url.Values, name, value string) url.Values {
	c := url.Values{}
	for k, vals := range v {
		c[k] = slices.Clone(vals)
	}
	if name != "" && value != "" {
		c.Set(name, value)
	}
	return c
}

// tailFragment is the answer to a live tail poll.
type tailFragment struct {
	Next   string         // URL of the next poll
	Events []*trail.Event // the new events, newest first
	Rows   []uiRow        // Events as the timeline's lines
	Every  string
}

// uiTail answers the timeline's live tail (polled by htmx): the events
// passing the filters that are newer than ?after=SEQ, as rows to put on
// top of the list, and the poller for the next round.
//
// A poll that found nothing is not recorded: an open page asks every few
// seconds, and recording each empty answer would flood the log with reads
// that showed nothing. Nor is one whose new events are all echoes of the
// UI's own reads (the data_viewed records its pages and polls write):
// recording the read of a read record would itself be a new event for the
// next poll, so two open pages (or one) would feed each other a record
// every few seconds forever. Every poll that shows any other event is
// recorded like a page of the timeline.
func (s *Server) uiTail(w http.ResponseWriter, r *http.Request, k *trail.APIKey) error {
	in := r.URL.Query()
	after, err := strconv.ParseUint(in.Get("after"), 10, 64)
	if err != nil {
		return trail.Invalid("bad query parameters", trail.FieldError{Path: "after", Message: "want the seq to tail after"})
	}
	filters := readFilter(in).values()
	show := in.Get("reads") == "show"
	q, err := parseQuery(filters, k.Tenant, false)
	if err != nil {
		return err
	}
	q.Limit = 100
	if after > 0 {
		q.Cursor = trail.EncodeCursor(after, false)
	}
	p, err := s.c.Store.Query(r.Context(), q)
	if err != nil {
		return err
	}
	last := after
	for _, ev := range p.Events {
		last = max(last, ev.Seq)
	}
	if slices.ContainsFunc(p.Events, func(ev *trail.Event) bool { return !uiEcho(ev) }) {
		rec := viewedEvents(filters, filters.Encode(), len(p.Events)).in("ui_live_tail").with("after_seq", after)
		if err := s.audit(r, k, rec); err != nil {
			return err
		}
	}
	slices.Reverse(p.Events) // newest on top
	s.uiFragment(w, http.StatusOK, "tail", tailFragment{
		Next:   withParam("/ui/tail", readsLinks(filters, show), "after", strconv.FormatUint(last, 10)),
		Events: p.Events, Rows: foldOwnReads(p.Events, s.actor(r, k), show, withParam("/ui/", readsLinks(filters, true), "", "")), Every: uiTailEvery})
	return nil
}

// uiEcho reports whether ev is the record of a read made through the UI.
func uiEcho(ev *trail.Event) bool {
	return ev.Action == catalog.DataViewed && (ev.Actor.Type == trail.ActorAPIKey || ev.Actor.Type == trail.ActorUser) && strings.HasPrefix(ev.Request.Path, "/ui/")
}

// eventPage is one event's page.
type eventPage struct {
	Ev         *trail.Event
	Def        *trail.Action // the catalog's definition of its action, if any
	Correlated []*trail.Event
	More       bool // more correlated events than shown
	Proof      *proofView
	VerifyURL  string
}

// uiEvent shows one event: every field, its marks, the events that share
// its correlation id, and (with the verify scope) a button to verify it.
func (s *Server) uiEvent(w http.ResponseWriter, r *http.Request, k *trail.APIKey) error {
	d, err := s.uiEventData(r, k)
	if err != nil {
		return err
	}
	return s.uiRender(w, r, http.StatusOK, "event", k, d.Ev.Action+" · event "+strconv.FormatUint(d.Ev.Seq, 10), d)
}

// uiEventData reads an event and its correlated events, and records the
// read.
func (s *Server) uiEventData(r *http.Request, k *trail.APIKey) (*eventPage, error) {
	ev, err := s.c.Store.Get(r.Context(), k.Tenant, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	d := &eventPage{Ev: ev, VerifyURL: "/ui/events/" + url.PathEscape(ev.ID) + "/verify"}
	d.Def, _ = s.catalogOf(k).Resolve(ev.Action)
	if ev.CorrelationID != "" {
		p, err := s.c.Store.Query(r.Context(), trail.Query{Tenant: k.Tenant, CorrelationID: ev.CorrelationID, Limit: 50})
		if err != nil {
			return nil, err
		}
		d.Correlated, d.More = p.Events, p.Next != ""
	}
	if err := s.audit(r, k, viewedEvent(ev).with("correlated", len(d.Correlated)).in("ui_event")); err != nil {
		return nil, err
	}
	return d, nil
}

// uiExport exports the timeline's current filter as CSV or NDJSON through
// the API's export, so that it is recorded the same way
// (data_export_attempted, then data_exported or data_export_failed).
func (s *Server) uiExport(w http.ResponseWriter, r *http.Request, k *trail.APIKey) error {
	in := r.URL.Query()
	format := in.Get("format")
	if format != "csv" && format != "ndjson" {
		return trail.Invalid("bad query parameters", trail.FieldError{Path: "format", Message: "want csv or ndjson"})
	}
	v := readFilter(in).values()
	v.Set("format", format)
	v.Set("reason", "ui_download")
	u := *r.URL
	u.RawQuery = v.Encode()
	r2 := r.WithContext(r.Context())
	r2.URL = &u
	return s.export(w, r2, k)
}

// actionsPage is the catalog browser's data.
type actionsPage struct {
	Category, Outcome, Compliance, Search string
	Categories                            []catalog.Category
	Outcomes                              []trail.Outcome
	Groups                                []actionGroup
	Count, Total                          int
}

type actionGroup struct {
	Category catalog.Category
	Actions  []*trail.Action
}

// uiActions shows the action catalog, filtered, grouped by category.
func (s *Server) uiActions(w http.ResponseWriter, r *http.Request, k *trail.APIKey) error {
	in := r.URL.Query()
	d := &actionsPage{Category: in.Get("category"), Outcome: in.Get("outcome"), Compliance: strings.TrimSpace(in.Get("compliance")),
		Search: strings.TrimSpace(in.Get("q")), Categories: s.catalogOf(k).Categories(), Outcomes: trail.Outcomes}
	d.Total = len(s.catalogOf(k).Actions(catalog.Filter{}))
	acts := s.catalogOf(k).Actions(catalog.Filter{Category: d.Category, Outcome: trail.Outcome(d.Outcome), Compliance: d.Compliance})
	needle := strings.ToLower(d.Search)
	for _, c := range d.Categories {
		g := actionGroup{Category: c}
		for _, a := range acts {
			if a.Category != c.Name {
				continue
			}
			if needle != "" && !strings.Contains(strings.ToLower(a.Name+" "+a.Description+" "+strings.Join(a.Aliases, " ")), needle) {
				continue
			}
			g.Actions = append(g.Actions, a)
		}
		if len(g.Actions) > 0 {
			d.Groups = append(d.Groups, g)
			d.Count += len(g.Actions)
		}
	}
	return s.uiRender(w, r, http.StatusOK, "actions", k, "Actions catalog", d)
}
