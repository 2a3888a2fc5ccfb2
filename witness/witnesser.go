package witness

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/detect"
	"github.com/trailaudit/trail/internal/ledger"
	"github.com/trailaudit/trail/tlog"
)

// Actor is the actor of every witness_refused record: Trail's witnessing.
var Actor = trail.Actor{Type: trail.ActorSystem, ID: "trail-witness", Name: "Trail witnessing"}

// TargetType is the type of a witness_refused record's target: the witness.
const TargetType = "witness"

// DefaultInterval is how often a Witnesser appends the tenants'
// checkpoints to the root log and submits it, at most.
const DefaultInterval = 10 * time.Second

// Store is what a Witnesser reads and keeps: the logs and their
// checkpoints, and the cosignatures; and what finds a tenant's entries in
// the root log (Query, by their target).
type Store interface {
	trail.Log
	trail.CosignatureStore
	Query(ctx context.Context, q trail.Query) (*trail.Page, error)
}

// Config is what a Witnesser needs. Policy, Store and Writer are
// required.
type Config struct {
	Policy *Policy
	Store  Store
	// Writer appends the root log's entries, and records each refusal
	// in the operators' log (witness_refused).
	Writer ledger.Writer
	// Interval is how often a round runs (default DefaultInterval): each
	// appends to the root log the latest checkpoint of each log that
	// changed since its last entry, and submits the root log's latest
	// checkpoint to each witness that has not cosigned it.
	Interval time.Duration
	// Client makes the requests (default: one with a 10 s timeout).
	Client *http.Client
	Logger *slog.Logger // default slog.Default()
	// Registerer takes the metrics (trail_witness_*); nil: none.
	Registerer prometheus.Registerer
}

// Witnesser has the tenants' checkpoints cosigned by the policy's
// witnesses through the root log (trail.RootTenant), apart from ingest:
// appends never wait on it, so a witness that is down delays cosigning and
// nothing else. Start it with Run.
//
// Each round (Round) reads every log's size and appends to the root log
// one root_entry of the latest checkpoint of each log whose size is not
// that of its last entry (all in a few batches); then, for each witness
// that has not cosigned the root log's size, it submits the root log's
// latest checkpoint with the consistency proof from the size the witness
// last cosigned (the largest of its kept cosignatures; on 409 the size it
// answers), verifies the cosignature and keeps it. So a witness gets one
// request per round however many tenants there are, and sees only the
// root log's origin, size and root hash. A refusal (RefusedError, or a
// 409 naming a size larger than the checkpoint's: the log was rolled back
// or forked) is an alert: the metric trail_witness_refusals_total, an
// error logged, the witness's Status, and a witness_refused record in the
// operators' log (trail.OperatorTenant), written once until the witness
// cosigns the root log again.
type Witnesser struct {
	c   Config
	log *slog.Logger

	refusals, errs, cosigs *prometheus.CounterVec

	mu         sync.Mutex
	rootSeeded bool                     // entered was read from the root log in this Run
	rootRead   uint64                   // the root log's seqs read into entered, 1 through rootRead
	entered    map[string]uint64        // the size of each log's last root entry, by OriginHash
	hashes     map[string]string        // each tenant's OriginHash, once read
	seeded     map[string]bool          // tenants whose cosigned sizes were read from the store
	cosign     map[key]uint64           // the size each witness last cosigned of each tenant
	refused    map[key]*RefusedError    // the refusals recorded, until the witness cosigns again
	state      map[string]*witnessState // by witness name
}

type key struct{ witness, tenant string }

type witnessState struct {
	attempt time.Time // the last submission
	err     string    // the last submission's failure ("" once one succeeds)
}

// New returns the Witnesser c describes.
func New(c Config) (*Witnesser, error) {
	if c.Policy == nil || c.Store == nil || c.Writer == nil {
		return nil, errors.New("witness: Config needs Policy, Store and Writer")
	}
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.Client == nil {
		c.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	w := &Witnesser{c: c, log: c.Logger, seeded: map[string]bool{}, cosign: map[key]uint64{}, entered: map[string]uint64{}, hashes: map[string]string{},
		refused: map[key]*RefusedError{}, state: map[string]*witnessState{}}
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"witness"})
	}
	w.refusals = counter("trail_witness_refusals_total", "Checkpoints a witness refused to cosign: a rollback or fork of the log, or a witness that does not accept it.")
	w.errs = counter("trail_witness_errors_total", "Submissions to a witness that failed without an answer (down, timed out, a bad answer).")
	w.cosigs = counter("trail_witness_cosignatures_total", "Cosignatures verified and kept.")
	if c.Registerer != nil {
		for _, m := range []prometheus.Collector{w.refusals, w.errs, w.cosigs} {
			if err := c.Registerer.Register(m); err != nil {
				return nil, fmt.Errorf("witness: metrics: %w", err)
			}
		}
	}
	for _, wit := range c.Policy.Witnesses {
		w.state[wit.Name] = &witnessState{}
	}
	return w, nil
}

// Policy returns the policy w submits to.
func (w *Witnesser) Policy() *Policy { return w.c.Policy }

// Run runs a round at once and then every Interval until ctx is done. A
// round's failures are logged; Run goes on.
//
// What a round remembers of the root log and of the witnesses'
// cosignatures is read again from the store at each Run: where processes
// take turns running it (trail.Elector), another may have appended root
// entries and kept cosignatures since this one last ran. Of the root log,
// only the entries after those read at an earlier Run are read.
func (w *Witnesser) Run(ctx context.Context) {
	w.mu.Lock()
	w.rootSeeded, w.seeded = false, map[string]bool{}
	w.mu.Unlock()
	t := time.NewTicker(w.c.Interval)
	defer t.Stop()
	for {
		if err := w.Round(ctx); err != nil && ctx.Err() == nil {
			w.log.ErrorContext(ctx, "witnessing round failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Round appends, once, the checkpoints of the logs that changed to the
// root log, and submits the root log's latest checkpoint to each witness
// that has not cosigned its size, the witnesses in parallel. It returns
// the errors of reads, of the root log's appends and of refusals it could
// not record; a witness that is down or refuses is no error of the
// round's (see Status).
func (w *Witnesser) Round(ctx context.Context) error {
	sizes, err := w.c.Store.LogSizes(ctx)
	if err != nil {
		return fmt.Errorf("witness: read the logs' sizes: %w", err)
	}
	tenants := make([]string, 0, len(sizes))
	for t := range sizes {
		tenants = append(tenants, t)
	}
	slices.Sort(tenants)
	size, err := w.appendRoot(ctx, sizes, tenants)
	if err != nil || size == 0 {
		return err
	}
	const root = trail.RootTenant
	if err := w.seed(ctx, root); err != nil {
		return err
	}
	errs := make([]error, len(w.c.Policy.Witnesses))
	var wg sync.WaitGroup
	for i, wit := range w.c.Policy.Witnesses {
		if w.cosigned(wit.Name, root) == size {
			continue
		}
		wg.Go(func() { errs[i] = w.submit(ctx, wit, root) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// seed reads the sizes the witnesses last cosigned of tenant from the
// store, once.
func (w *Witnesser) seed(ctx context.Context, tenant string) error {
	w.mu.Lock()
	done := w.seeded[tenant]
	w.mu.Unlock()
	if done {
		return nil
	}
	latest, err := w.c.Store.LatestCosignatures(ctx, tenant)
	if err != nil {
		return fmt.Errorf("witness: read tenant %s's cosignatures: %w", tenant, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range latest {
		k := key{c.Witness, tenant}
		w.cosign[k] = max(w.cosign[k], c.Size)
	}
	w.seeded[tenant] = true
	return nil
}

func (w *Witnesser) cosigned(witness, tenant string) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cosign[key{witness, tenant}]
}

// submit has wit cosign tenant's latest checkpoint. It returns only the
// errors a round reports (see Round).
func (w *Witnesser) submit(ctx context.Context, wit *Witness, tenant string) error {
	note, err := w.c.Store.Checkpoint(ctx, tenant)
	if err != nil {
		return fmt.Errorf("witness: read tenant %s's checkpoint: %w", tenant, err)
	}
	cp, err := tlog.ParseUnverified(note)
	if err != nil {
		return fmt.Errorf("witness: tenant %s's checkpoint: %w", tenant, err)
	}
	old := w.cosigned(wit.Name, tenant)
	w.attempted(wit.Name)
	for range 2 {
		if old > cp.Size {
			// Trail keeps a cosignature of a larger tree than its log's
			// latest checkpoint: the log was rolled back.
			return w.refuse(ctx, tenant, cp.Size, &RefusedError{Witness: wit.Name, Status: 0, WitnessSize: old,
				Reason: fmt.Sprintf("Trail keeps the witness's cosignature of size %d, more than the log's latest checkpoint (%d): the log was rolled back", old, cp.Size)})
		}
		var proof [][]byte
		if old > 0 {
			if proof, err = tlog.ConsistencyProof(ctx, w.c.Store, tenant, old, cp.Size); err != nil {
				return fmt.Errorf("witness: tenant %s: consistency proof from %d to %d: %w", tenant, old, cp.Size, err)
			}
		}
		line, at, err := wit.addCheckpoint(ctx, w.c.Client, old, proof, note)
		var conflict *conflictError
		switch {
		case errors.As(err, &conflict):
			if conflict.size > cp.Size {
				return w.refuse(ctx, tenant, cp.Size, &RefusedError{Witness: wit.Name, Status: http.StatusConflict, WitnessSize: conflict.size,
					Reason: fmt.Sprintf("the witness has cosigned size %d of this log, more than its latest checkpoint (%d): the log was rolled back, or forked", conflict.size, cp.Size)})
			}
			old = conflict.size
			continue
		case err != nil:
			if r, ok := errRefused(err); ok {
				return w.refuse(ctx, tenant, cp.Size, r)
			}
			w.failed(ctx, wit.Name, err)
			return nil
		}
		c := &trail.Cosignature{Tenant: tenant, Size: cp.Size, Witness: wit.Name, Time: at, Line: line, Checkpoint: note}
		if err := w.c.Store.AddCosignature(ctx, c); err != nil {
			return fmt.Errorf("witness: keep %s's cosignature of tenant %s's checkpoint of size %d: %w", wit.Name, tenant, cp.Size, err)
		}
		w.cosigs.WithLabelValues(wit.Name).Inc()
		w.mu.Lock()
		k := key{wit.Name, tenant}
		w.cosign[k] = max(w.cosign[k], cp.Size)
		delete(w.refused, k)
		w.state[wit.Name].err = ""
		w.mu.Unlock()
		return nil
	}
	w.failed(ctx, wit.Name, fmt.Errorf("witness %s: answered 409 twice in a row (the size it last cosigned keeps changing)", wit.Name))
	return nil
}

func (w *Witnesser) attempted(witness string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.state[witness].attempt = time.Now()
}

// failed notes a submission that got no answer: the witness is down or
// misbehaves. Cosigning waits for the next round.
func (w *Witnesser) failed(ctx context.Context, witness string, err error) {
	w.errs.WithLabelValues(witness).Inc()
	w.mu.Lock()
	st := w.state[witness]
	changed := st.err != err.Error()
	st.err = err.Error()
	w.mu.Unlock()
	if changed {
		w.log.WarnContext(ctx, "a witness could not cosign: cosigning waits, ingest goes on", "witness", witness, "err", err)
	}
}

// refuse raises the alert of a refusal of tenant's log (the root log): the
// metric and the log line each time, and the record in the operators' log
// once until the witness cosigns again. The record's write error is
// returned, never dropped.
func (w *Witnesser) refuse(ctx context.Context, tenant string, size uint64, r *RefusedError) error {
	w.refusals.WithLabelValues(r.Witness).Inc()
	w.log.ErrorContext(ctx, "a witness refused to cosign the log's checkpoint: the log may have been rolled back or forked",
		"witness", r.Witness, "tenant", tenant, "size", size, "status", r.Status, "reason", r.Reason)
	k := key{r.Witness, tenant}
	w.mu.Lock()
	w.state[r.Witness].err = r.Error()
	_, recorded := w.refused[k]
	w.mu.Unlock()
	if recorded {
		return nil
	}
	wit := w.witness(r.Witness)
	ctxv := map[string]any{"witness": r.Witness, "witness_url": wit.URL, "checkpoint_size": int64(size), "status": int64(r.Status), "reason": r.Reason}
	if r.WitnessSize > 0 {
		ctxv["witness_size"] = int64(r.WitnessSize)
	}
	ev := &trail.Event{Action: catalog.WitnessRefused, Actor: Actor,
		Targets: []trail.Target{{Type: TargetType, ID: r.Witness, Name: wit.URL}}, Context: ctxv}
	res, err := w.c.Writer.AppendOwn(ctx, trail.OperatorTenant, ledger.Records(ev))
	if err != nil {
		return fmt.Errorf("witness: record %s's refusal of tenant %s's log in the operators' log: %w", r.Witness, tenant, err)
	}
	// And Trail's own detection of it: an alert, which reaches the sinks
	// and the UI's alerts page like any other, with the record as its
	// evidence.
	now := time.Now()
	alert, err := detect.OwnAlert(detect.Finding{Rule: detect.OwnWitnessRefused, Evidence: []uint64{res.Events[0].Seq}, From: now, To: now,
		Targets: []trail.Target{{Type: TargetType, ID: r.Witness, Name: wit.URL}}, Detail: ctxv})
	if err == nil {
		_, err = w.c.Writer.AppendOwn(ctx, trail.OperatorTenant, ledger.Records(alert))
	}
	if err != nil {
		return fmt.Errorf("witness: raise the alert of %s's refusal of tenant %s's log in the operators' log: %w", r.Witness, tenant, err)
	}
	w.mu.Lock()
	w.refused[k] = r
	w.mu.Unlock()
	return nil
}

func (w *Witnesser) witness(name string) *Witness {
	for _, wit := range w.c.Policy.Witnesses {
		if wit.Name == name {
			return wit
		}
	}
	return nil
}

// Status is what the health page shows of one witness: the witness
// cosigns the root log, which holds every tenant's checkpoints.
type Status struct {
	Name, URL string
	// Size is the largest size of the root log the witness cosigned (0:
	// none), and At when it signed that cosignature.
	Size uint64
	At   time.Time
	// Refused is the refusal of the root log recorded, nil when none.
	Refused *RefusedError
	// Err is the last submission's failure, of any tenant ("" when the
	// last one succeeded), and Attempt when the last submission was.
	Err     string
	Attempt time.Time
}

// Status returns each witness's Status, in the policy's order: of the
// root log, which witnesses tenant's log (tenant is not read).
func (w *Witnesser) Status(ctx context.Context, _ string) ([]Status, error) {
	const tenant = trail.RootTenant
	latest, err := w.c.Store.LatestCosignatures(ctx, tenant)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]Status, 0, len(w.c.Policy.Witnesses))
	for _, wit := range w.c.Policy.Witnesses {
		st := Status{Name: wit.Name, URL: wit.URL, Refused: w.refused[key{wit.Name, tenant}], Err: w.state[wit.Name].err, Attempt: w.state[wit.Name].attempt}
		for _, c := range latest {
			if c.Witness == wit.Name {
				st.Size, st.At = c.Size, c.Time
			}
		}
		out = append(out, st)
	}
	return out, nil
}

// Witnessed returns tenant's checkpoint witnessed through the root log
// (Policy.Witnessed).
func (w *Witnesser) Witnessed(ctx context.Context, tenant string) (*Cosigned, error) {
	return w.c.Policy.Witnessed(ctx, w.c.Store, tenant)
}
