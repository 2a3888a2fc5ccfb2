package http

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/detect"
	"github.com/trailaudit/trail/tlog"
	"github.com/trailaudit/trail/witness"
)

// proofView is an event's verification, step by step: the latest signed
// checkpoint and its signature, the event's stored bytes and leaf hash,
// the inclusion proof, and whether the proof leads to the signed root.
type proofView struct {
	At       time.Time
	Tenant   string
	Seq      uint64
	Index    uint64 // the leaf's index: seq-1
	TreeSize uint64
	Root     []byte
	Origin   string
	KeyName  string
	Note     string // the signed checkpoint, C2SP signed-note text
	SigOK    bool
	SigErr   string
	LeafHash []byte
	BodyOK   bool // the stored bytes are the canonical bytes of the event shown
	BodyErr  string
	Pruned   bool // retention removed the stored bytes: the stored leaf hash stands for them
	Proof    [][]byte
	InclOK   bool
	InclErr  string
	OK       bool
	EventURL string
}

// uiProve verifies ev against the tenant's latest checkpoint, as a client
// of the API would: it checks the checkpoint's signature with the server's
// verifier key, then takes the proof of tlog.ProveInclusion (as the API
// does) and checks that the stored bytes are the event's. A failed check
// (damage included) is a result, not an error; errors are reads that
// failed. An event retention pruned after it was read is proven by its
// stored leaf hash, and shown as pruned: its bytes cannot be compared with
// the event shown.
func (s *Server) uiProve(r *http.Request, tenant string, ev *trail.Event) (*proofView, error) {
	ctx := r.Context()
	pv := &proofView{At: s.c.Now().UTC(), Tenant: tenant, Seq: ev.Seq, Index: ev.Seq - 1, KeyName: s.c.Verifier.Name(), EventURL: "/ui/events/" + ev.ID}
	note, err := s.c.Store.Checkpoint(ctx, tenant)
	if err != nil {
		return nil, err
	}
	pv.Note = string(note)
	cp, err := s.c.Verifier.Open(tenant, note)
	if err != nil {
		pv.SigErr = trail.ErrorMessage(err)
		if u, perr := tlog.ParseUnverified(note); perr == nil {
			pv.Origin, pv.TreeSize, pv.Root = u.Origin, u.Size, u.Root
		}
		s.log.ErrorContext(ctx, "the latest checkpoint does not verify: run trail verify", "tenant", tenant, "err", err)
		return pv, nil
	}
	pv.SigOK, pv.Origin, pv.TreeSize, pv.Root = true, cp.Origin, cp.Size, cp.Root
	in, err := tlog.ProveInclusion(ctx, s.c.Store, tenant, cp, ev.Seq, cp.Size)
	var damage *tlog.DamageError
	switch {
	case errors.As(err, &damage):
		pv.LeafHash, pv.Proof = damage.Found.LeafHash, damage.Found.Proof
		if !damage.InTree {
			pv.BodyErr = damage.Detail
			break
		}
		pv.InclErr = damage.Detail
		if err := s.uiBodyIs(ctx, pv, tenant, damage.Found, ev); err != nil {
			return nil, err
		}
	case trail.ErrorCode(err) == trail.EINVALID:
		pv.InclErr = fmt.Sprintf("the event's seq %d is not covered by the latest checkpoint (size %d)", ev.Seq, cp.Size)
		return pv, nil
	case err != nil:
		return nil, err
	default:
		pv.LeafHash, pv.Proof, pv.InclOK = in.LeafHash, in.Proof, true
		if err := s.uiBodyIs(ctx, pv, tenant, in, ev); err != nil {
			return nil, err
		}
	}
	pv.OK = pv.SigOK && pv.BodyOK && pv.InclOK
	if !pv.OK && !(pv.Pruned && pv.InclOK) {
		s.log.ErrorContext(ctx, "an event does not verify: run trail verify", "tenant", tenant, "seq", ev.Seq, "body", pv.BodyErr, "proof", pv.InclErr)
	}
	return pv, nil
}

// uiBodyIs fills in the leaf step of pv: whether the bytes the proof is of
// are ev's, or were pruned.
func (s *Server) uiBodyIs(ctx context.Context, pv *proofView, tenant string, in *tlog.Inclusion, ev *trail.Event) error {
	if in.Pruned {
		pv.Pruned = true
		return nil
	}
	same, err := s.storedIs(ctx, tenant, in.Body, ev)
	switch {
	case err != nil:
		return err
	case !same:
		pv.BodyErr = "the log's stored bytes at this seq are not the bytes of the event shown"
	default:
		pv.BodyOK = true
	}
	return nil
}

// uiVerify verifies an event and shows the steps: to htmx, as a fragment
// for the event page; without JavaScript, as the event page with the
// verification filled in. The proof is a read, recorded as the API's
// proofs are.
func (s *Server) uiVerify(w http.ResponseWriter, r *http.Request, k *trail.APIKey) error {
	htmx := r.Header.Get("HX-Request") != ""
	var d *eventPage
	if htmx {
		ev, err := s.c.Store.Get(r.Context(), k.Tenant, r.PathValue("id"))
		if err != nil {
			return err
		}
		d = &eventPage{Ev: ev}
	} else {
		var err error
		if d, err = s.uiEventData(r, k); err != nil {
			return err
		}
	}
	pv, err := s.uiProve(r, k.Tenant, d.Ev)
	if err != nil {
		return err
	}
	rec := viewedProof("seq", map[string]any{"seq": d.Ev.Seq, "tree_size": pv.TreeSize, "verified": pv.OK}).in("ui_verify")
	if err := s.audit(r, k, rec); err != nil {
		return err
	}
	if htmx {
		s.uiFragment(w, http.StatusOK, "proof", pv)
		return nil
	}
	d.Proof = pv
	return s.uiRender(w, r, http.StatusOK, "event", k, d.Ev.Action+" · event "+strconv.FormatUint(d.Ev.Seq, 10)+" · verified", d)
}

// healthPage is the log health page's data.
type healthPage struct {
	Events  int64
	Empty   bool // the tenant has no log yet
	CP      *checkpointView
	Last    *fullVerification
	Running bool
	Chart   *chart
	// Witnesses is each witness's state for the tenant, when the log is
	// witnessed (nil otherwise), Policy the policy, and Witnessed the
	// largest size a quorum cosigned (0: none yet).
	Witnesses []witnessView
	Policy    string
	Witnessed uint64
	// Leadership is the /readyz line saying whether this process runs the
	// background work ("" when it runs none).
	Leadership string
}

// witnessView is one witness on the health page.
type witnessView struct {
	witness.Status
	Age string // since its latest cosignature of the tenant's log ("" when none)
}

type checkpointView struct {
	Origin string
	Size   uint64
	Root   []byte
	Note   string
	SigOK  bool
	SigErr string
}

// uiHealth shows the log's health: its latest checkpoint (checked), its
// size, the last full verification run here, and failed logins per hour.
// The chart counts events, so the page is a recorded read.
func (s *Server) uiHealth(w http.ResponseWriter, r *http.Request, k *trail.APIKey) error {
	ctx := r.Context()
	d := &healthPage{Leadership: strings.TrimSuffix(s.leadership(), "\n")}
	n, err := s.c.Store.Count(ctx, trail.Query{Tenant: k.Tenant})
	if err != nil {
		return err
	}
	d.Events = n
	note, err := s.c.Store.Checkpoint(ctx, k.Tenant)
	switch {
	case trail.ErrorCode(err) == trail.ENOTFOUND:
		d.Empty = true
	case err != nil:
		return err
	default:
		cv := &checkpointView{Note: string(note)}
		if cp, err := s.c.Verifier.Open(k.Tenant, note); err != nil {
			cv.SigErr = trail.ErrorMessage(err)
			if u, perr := tlog.ParseUnverified(note); perr == nil {
				cv.Origin, cv.Size, cv.Root = u.Origin, u.Size, u.Root
			}
		} else {
			cv.SigOK, cv.Origin, cv.Size, cv.Root = true, cp.Origin, cp.Size, cp.Root
		}
		d.CP = cv
	}
	if d.Chart, err = s.failedLogins(r, k.Tenant); err != nil {
		return err
	}
	if err := s.uiWitnesses(r, k.Tenant, d); err != nil {
		return err
	}
	s.ui.mu.Lock()
	d.Last, d.Running = s.ui.verified[k.Tenant], s.ui.running[k.Tenant]
	s.ui.mu.Unlock()
	rec := viewed("audit_events", []any{"action", "recorded_at"}, map[string]any{
		"results": d.Chart.Total, "query": "action=" + catalog.UserLoginFailed + "&per=hour&hours=24",
	}).in("ui_health")
	if err := s.audit(r, k, rec); err != nil {
		return err
	}
	return s.uiRender(w, r, http.StatusOK, "health", k, "Log health", d)
}

// uiRunVerify runs a full verification of the tenant's log now
// (tlog.Verify, as trail verify does) and keeps its report for the health
// page. One runs at a time per tenant.
func (s *Server) uiRunVerify(w http.ResponseWriter, r *http.Request, k *trail.APIKey) error {
	s.ui.mu.Lock()
	if s.ui.running[k.Tenant] {
		s.ui.mu.Unlock()
		return trail.Errorf(trail.ECONFLICT, "a full verification of this log is running already; its result will be on the health page")
	}
	s.ui.running[k.Tenant] = true
	s.ui.mu.Unlock()
	defer func() {
		s.ui.mu.Lock()
		delete(s.ui.running, k.Tenant)
		s.ui.mu.Unlock()
	}()
	// A large log takes a while: longer than the server's write timeout.
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(time.Hour))
	t0 := s.c.Now()
	rep, err := tlog.VerifyStore(r.Context(), s.c.Store, k.Tenant, s.c.Verifier, nil)
	if err != nil {
		return err
	}
	fv := &fullVerification{At: t0.UTC(), Took: s.c.Now().Sub(t0), By: k.Name + " (" + k.ID + ")", Report: rep}
	rec := viewedProof("*", map[string]any{
		"leaves": rep.Leaves, "tree_size": rep.Size, "verified": rep.OK(), "damage": len(rep.Damage),
	}).in("ui_full_verification")
	if err := s.audit(r, k, rec); err != nil {
		return err
	}
	s.ui.mu.Lock()
	s.ui.verified[k.Tenant] = fv
	s.ui.mu.Unlock()
	if alert := detect.DamageAlert(rep, fv.By, fv.At); alert != nil {
		// Damage is Trail's own detection: an alert in the log (which
		// reaches the sinks), not only a page someone happened to open.
		s.log.ErrorContext(r.Context(), "full verification found damage", "tenant", k.Tenant, "first", rep.First())
		if err := s.appendRecord(r.Context(), k.Tenant, alert); err != nil {
			return &trail.Error{Code: trail.EINTERNAL, Err: err,
				Message: "the verification found damage (see the health page), but its alert could not be recorded in the log"}
		}
	}
	http.Redirect(w, r, "/ui/health#verification", http.StatusSeeOther)
	return nil
}

// chart is a bar chart drawn as inline SVG on the server (no script).
type chart struct {
	Title         string
	Width, Height int
	Bars          []bar
	Ticks         []tick // y axis
	Labels        []tick // x axis
	Total, Max    int64
	Top, Bottom   int // y of the plot's top and its base line
	Left, Right   int
	Start         time.Time // the first hour's start
	PlotH         int
}

type bar struct {
	X, Y, W, H int
	Count      int64
	Label      string // the <title>: the hour and the count
}

type tick struct {
	X, Y  int
	LineY int // y of the grid line (y axis ticks)
	Text  string
}

// failedLogins counts user_login_failed per hour over the last 24 hours
// (the current hour last), one Count each.
func (s *Server) failedLogins(r *http.Request, tenant string) (*chart, error) {
	const hours = 24
	end := s.c.Now().UTC().Truncate(time.Hour).Add(time.Hour)
	start := end.Add(-hours * time.Hour)
	counts := make([]int64, hours)
	c := &chart{Title: "Failed logins per hour, last 24 hours (UTC)", Width: 720, Height: 220, Top: 16, Bottom: 188, Left: 40, Right: 712, Start: start}
	for i := range hours {
		from := start.Add(time.Duration(i) * time.Hour)
		n, err := s.c.Store.Count(r.Context(), trail.Query{Tenant: tenant, Actions: []string{"user_login_failed"},
			RecordedAfter: from, RecordedBefore: from.Add(time.Hour)})
		if err != nil {
			return nil, err
		}
		counts[i] = n
		c.Total += n
		c.Max = max(c.Max, n)
	}
	// The y scale: a round top at or above the largest count.
	top := int64(4)
	for step := int64(10); top < c.Max; step *= 10 {
		for _, f := range []int64{1, 2, 5} {
			if top < c.Max {
				top = f * step
			}
		}
	}
	plotH := c.Bottom - c.Top
	c.PlotH = plotH
	slot := (c.Right - c.Left) / hours
	for i, n := range counts {
		from := start.Add(time.Duration(i) * time.Hour)
		h := int(int64(plotH) * n / top)
		if n > 0 && h < 2 {
			h = 2
		}
		label := fmt.Sprintf("%s–%s UTC: %d failed login", from.Format("Jan 2 15:04"), from.Add(time.Hour).Format("15:04"), n)
		if n != 1 {
			label += "s"
		}
		c.Bars = append(c.Bars, bar{X: c.Left + i*slot + 3, Y: c.Bottom - h, W: slot - 6, H: h, Count: n, Label: label})
		if i%4 == 0 {
			c.Labels = append(c.Labels, tick{X: c.Left + i*slot + slot/2, Y: c.Bottom + 18, Text: from.Format("15:04")})
		}
	}
	for _, v := range []int64{0, top / 2, top} {
		y := c.Bottom - int(int64(plotH)*v/top)
		c.Ticks = append(c.Ticks, tick{X: c.Left - 8, Y: y + 4, LineY: y, Text: strconv.FormatInt(v, 10)})
	}
	return c, nil
}

// storedIs reports whether body, the bytes stored at ev's seq, are ev's: the
// event shown has its personal data opened (Config.Eraser), the stored
// bytes hold it sealed, so the stored bytes are opened the same way and
// the two compared in canonical form.
func (s *Server) storedIs(ctx context.Context, tenant string, body []byte, ev *trail.Event) (bool, error) {
	stored, err := trail.UnmarshalCanonical(body)
	if err != nil {
		return false, nil
	}
	if s.c.Eraser != nil {
		if err := s.c.Eraser.Open(ctx, tenant, stored); err != nil {
			return false, err
		}
	}
	a, err1 := trail.MarshalCanonical(stored)
	b, err2 := trail.MarshalCanonical(ev)
	return err1 == nil && err2 == nil && bytes.Equal(a, b), nil
}

// uiWitnesses fills in the witnesses of the health page: each one's
// latest cosignature of the root log and its age, a refusal, the last
// failure; and the largest size of the tenant's log a quorum witnessed
// through the root log.
func (s *Server) uiWitnesses(r *http.Request, tenant string, d *healthPage) error {
	if s.c.Witnessing == nil {
		return nil
	}
	st, err := s.c.Witnessing.Status(r.Context(), tenant)
	if err != nil {
		return err
	}
	now := s.c.Now()
	for _, w := range st {
		v := witnessView{Status: w}
		if !w.At.IsZero() {
			v.Age = now.Sub(w.At).Round(time.Second).String()
		}
		d.Witnesses = append(d.Witnesses, v)
	}
	d.Policy = s.c.Witnessing.Policy().String()
	c, err := s.c.Witnessing.Witnessed(r.Context(), tenant)
	switch {
	case err == nil:
		d.Witnessed = c.Size
	case trail.ErrorCode(err) != trail.ENOTFOUND:
		return err
	}
	return nil
}
