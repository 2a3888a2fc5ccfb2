package witness_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/detect"
	"github.com/trailaudit/trail/internal/ledger"
	"github.com/trailaudit/trail/internal/witnesstest"
	"github.com/trailaudit/trail/memory"
	"github.com/trailaudit/trail/storetest"
	"github.com/trailaudit/trail/tlog"
	"github.com/trailaudit/trail/witness"
	"golang.org/x/mod/sumdb/note"
)

// These tests run real witnesses (litewitness, internal/witnesstest)
// against Trail's logs: every cosignature is made, and every refusal
// decided, by the witness itself.

const tenant = "acme"

// startWitnesses starts n witnesses that know the root log under the test
// signer: the one log they are given.
func startWitnesses(t *testing.T, n int) []*witnesstest.Witness {
	t.Helper()
	var ws []*witnesstest.Witness
	for i := range n {
		w := witnesstest.Start(t, "w"+string(rune('1'+i))+".trail.test")
		origin := tlog.Origin(storetest.Signer().Verifier().Name(), trail.RootTenant)
		w.AddLog(origin, mustOriginKey(t, storetest.Signer().VerifierKey(), origin)) // the root log's key, named by its origin
		ws = append(ws, w)
	}
	return ws
}

func policy(t *testing.T, k int, ws ...*witnesstest.Witness) *witness.Policy {
	t.Helper()
	p, err := witness.ParsePolicy(witnesstest.Policy(k, ws...))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newStore() *memory.Store { return memory.New(storetest.Validator(), storetest.Signer()) }

// newWitnesser witnesses s, recording refusals through writer.
func newWitnesser(t *testing.T, p *witness.Policy, s witness.Store, writer *memory.Store, reg prometheus.Registerer) *witness.Witnesser {
	t.Helper()
	w, err := witness.New(witness.Config{Policy: p, Store: s, Writer: writer, Registerer: reg, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func appendN(t *testing.T, s trail.Store, actor string, n int) {
	t.Helper()
	appendTo(t, s, tenant, actor, n)
}

func appendTo(t *testing.T, s trail.Store, tenant, actor string, n int) {
	t.Helper()
	for range n {
		if _, err := s.Append(context.Background(), tenant, []*trail.Event{storetest.Login(actor)}, trail.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

func round(t *testing.T, w *witness.Witnesser) {
	t.Helper()
	if err := w.Round(context.Background()); err != nil {
		t.Fatalf("Round: %v", err)
	}
}

// cosignedSizes returns the size each witness last cosigned of the root log.
func cosignedSizes(t *testing.T, w *witness.Witnesser) map[string]uint64 {
	t.Helper()
	st, err := w.Status(context.Background(), tenant)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	for _, s := range st {
		out[s.Name] = s.Size
	}
	return out
}

// witnessedSize returns the size of tenant's checkpoint witnessed through
// the root log, its chain checked (VerifyTenant), 0 when there is none.
func witnessedSize(t *testing.T, p *witness.Policy, s witness.Store) uint64 {
	t.Helper()
	c, err := p.Witnessed(context.Background(), s, tenant)
	if trail.ErrorCode(err) == trail.ENOTFOUND {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	cp, err := p.VerifyTenant(storetest.Signer().Verifier(), tenant, c)
	if err != nil {
		t.Fatalf("VerifyTenant of the witnessed checkpoint: %v", err)
	}
	if cp.Size != c.Size {
		t.Fatalf("VerifyTenant: size %d, Witnessed said %d", cp.Size, c.Size)
	}
	return c.Size
}

// rootSize returns the size of s's root log.
func rootSize(t *testing.T, s trail.CosignatureStore) uint64 {
	t.Helper()
	sizes, err := s.LogSizes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return sizes[trail.RootTenant]
}

func TestCosign(t *testing.T) {
	ws := startWitnesses(t, 2)
	s := newStore()
	defer s.Close()
	both := policy(t, 2, ws...)
	w := newWitnesser(t, both, s, s, nil)
	appendN(t, s, "u-1", 3)
	round(t, w)
	// The witnesses cosign the root log, of one entry: acme's checkpoint.
	if got := cosignedSizes(t, w); got[ws[0].Name] != 1 || got[ws[1].Name] != 1 {
		t.Fatalf("cosigned sizes of the root log %v, want 1 by each witness", got)
	}
	c, err := both.Witnessed(context.Background(), s, tenant)
	if err != nil {
		t.Fatal(err)
	}
	// The tenant's checkpoint is the log's signed note, made again from
	// its root entry byte for byte; the root checkpoint is a signed note
	// of the root log, which carries both witnesses' lines.
	latest, err := s.Checkpoint(context.Background(), tenant)
	if err != nil || string(latest) != string(c.Note) || c.Size != 3 {
		t.Errorf("the witnessed checkpoint (size %d):\n%s\nwant the log's latest:\n%s", c.Size, c.Note, latest)
	}
	if _, err := storetest.Signer().Verifier().Open(trail.RootTenant, c.Root.Note); err != nil {
		t.Errorf("the log's verifier does not open the cosigned root checkpoint: %v", err)
	}
	origin := tlog.Origin(storetest.Signer().Verifier().Name(), trail.RootTenant)
	n, err := note.Open(c.Root.Note, note.VerifierList(mustVerifier(t, mustOriginKey(t, storetest.Signer().VerifierKey(), origin))))
	if err != nil || len(n.UnverifiedSigs) != 2 {
		t.Errorf("note.Open: %v; %d other signatures, want the 2 cosignatures", err, len(n.UnverifiedSigs))
	}
	if got := witnessedSize(t, both, s); got != 3 {
		t.Errorf("witnessed size %d, want 3", got)
	}
	if len(c.Cosignatures) != 2 || time.Since(c.Cosignatures[0].Time) > time.Hour {
		t.Errorf("cosignatures %v: want 2, signed just now", c.Cosignatures)
	}

	// The log grows: the witnesses check the consistency proof from the
	// size they cosigned.
	appendN(t, s, "u-1", 4)
	round(t, w)
	if got := witnessedSize(t, both, s); got != 7 {
		t.Errorf("witnessed size %d after growing, want 7", got)
	}
	// A round with nothing new appends and submits nothing (the sizes
	// stay).
	round(t, w)
	if got := rootSize(t, s); got != 2 {
		t.Errorf("the root log's size %d after a round with nothing new, want still 2", got)
	}
	if got := witnessedSize(t, policy(t, 1, ws...), s); got != 7 {
		t.Errorf("1 of 2: witnessed size %d, want 7", got)
	}
}

func mustVerifier(t *testing.T, vkey string) note.Verifier {
	t.Helper()
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// A witness that is down delays cosigning and nothing else: ingest goes
// on while the witnessing loop waits on it, and once it is back it
// cosigns the latest checkpoint, proven from what it cosigned before.
func TestWitnessDown(t *testing.T) {
	ws := startWitnesses(t, 2)
	s := newStore()
	defer s.Close()
	both, either := policy(t, 2, ws...), policy(t, 1, ws...)
	w := newWitnesser(t, both, s, s, nil)
	appendN(t, s, "u-1", 2)
	round(t, w)
	ws[1].Stop()

	// Witnessing runs all the while, and one more "witness" takes the
	// connection and never answers: appends are not held up by either.
	hang, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hang.Close()
	go func() {
		for {
			c, err := hang.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The hung witness's key is never used: it never answers.
	hung, err := witness.ParsePolicy(witnesstest.Policy(1, ws...) +
		"witness hung.trail.test hung.trail.test+4ca314a6+BM7MFQfcHd1ylZUcKQiI8JWtuQRNG3PWlubfBl1oO9T8 http://" + hang.Addr().String() + "\n")
	if err != nil {
		t.Fatal(err)
	}
	hw := newWitnesser(t, hung, s, s, nil)
	done := make(chan struct{})
	go func() { hw.Run(ctx); close(done) }()
	appendN(t, s, "u-2", 5)
	cancel()
	<-done

	// The hung witnesser's rounds entered acme's log too: how often
	// depends on the timing, so the root log's size is read.
	round(t, w)
	sizes := cosignedSizes(t, w)
	if rs := rootSize(t, s); sizes[ws[0].Name] != rs || sizes[ws[1].Name] != 1 {
		t.Fatalf("cosigned sizes of the root log %v with %s down, want %d (the root log's size) and 1", sizes, ws[1].Name, rs)
	}
	st, _ := w.Status(context.Background(), tenant)
	if st[1].Err == "" {
		t.Errorf("the status of the witness that is down shows no error: %+v", st[1])
	}
	if got := witnessedSize(t, both, s); got != 2 {
		t.Errorf("2 of 2 with one down: witnessed size %d, want 2 (the last both cosigned)", got)
	}
	if got := witnessedSize(t, either, s); got != 7 {
		t.Errorf("1 of 2 with one down: witnessed size %d, want 7", got)
	}

	ws[1].Restart()
	round(t, w)
	if got := witnessedSize(t, both, s); got != 7 {
		t.Errorf("2 of 2 once it is back: witnessed size %d, want 7", got)
	}
	if st, _ := w.Status(context.Background(), tenant); st[1].Err != "" {
		t.Errorf("the status still shows an error once it cosigned: %q", st[1].Err)
	}
}

// forgetful is a store that has lost its cosignatures (a new Trail in
// front of an old log): the witness's 409 tells it the size to prove from.
type forgetful struct{ *memory.Store }

func (forgetful) LatestCosignatures(context.Context, string) ([]*trail.Cosignature, error) {
	return nil, nil
}

func TestConflictProvesAgain(t *testing.T) {
	ws := startWitnesses(t, 1)
	s := newStore()
	defer s.Close()
	p := policy(t, 1, ws...)
	appendN(t, s, "u-1", 3)
	round(t, newWitnesser(t, p, s, s, nil))
	appendN(t, s, "u-1", 2)
	w := newWitnesser(t, p, forgetful{s}, s, nil)
	round(t, w)
	if got := witnessedSize(t, p, s); got != 5 {
		t.Fatalf("witnessed size %d, want 5: after the 409 Trail proves from the witness's size", got)
	}
}

// A second database under the same key, with other events (a rewrite of
// the database, re-signed with the log's key), has another root log under
// the same origin, which the witness that cosigned the first refuses:
// smaller (409 naming a larger size), then larger (the consistency proof
// fails: 422). The refusal is recorded once in the forked database's
// operators' log, counted and shown.
func TestForkRefused(t *testing.T) {
	ws := startWitnesses(t, 1)
	p := policy(t, 1, ws...)
	real := newStore()
	defer real.Close()
	appendN(t, real, "u-1", 4)
	appendTo(t, real, "globex", "u-1", 1)
	round(t, newWitnesser(t, p, real, real, nil))

	forked := newStore()
	defer forked.Close()
	appendN(t, forked, "mallory", 2)
	reg := prometheus.NewRegistry()
	w := newWitnesser(t, p, forked, forked, reg)
	round(t, w)
	refusals := refusalsIn(t, forked)
	if len(refusals) != 1 {
		t.Fatalf("%d witness_refused records in the forked operators' log, want 1", len(refusals))
	}
	ctx := refusals[0].Context
	if got := fmt.Sprintf("%v %v %v %v", ctx["witness"], ctx["status"], ctx["witness_size"], ctx["checkpoint_size"]); got != ws[0].Name+" 409 2 1" {
		t.Errorf("the refusal record's witness, status, witness_size, checkpoint_size: %s; context %v", got, ctx)
	}
	alerts, err := forked.Query(context.Background(), trail.Query{Tenant: trail.OperatorTenant, Actions: []string{catalog.AlertRaised}})
	if err != nil {
		t.Fatal(err)
	}
	if len(alerts.Events) != 1 || alerts.Events[0].Context["rule_id"] != detect.OwnWitnessRefused ||
		fmt.Sprint(alerts.Events[0].Context["evidence_seqs"]) != fmt.Sprintf("[%d]", refusals[0].Seq) {
		t.Errorf("the refusal's alerts: %+v; want one %s alert with the record as its evidence", alerts.Events, detect.OwnWitnessRefused)
	}
	st, _ := w.Status(context.Background(), tenant)
	if st[0].Refused == nil || st[0].Refused.WitnessSize != 2 {
		t.Errorf("status %+v: want the refusal, naming the witness's size 2", st[0])
	}

	// Grown past the witness's size: the proof from 2 does not hold.
	appendN(t, forked, "mallory", 3)
	round(t, w)
	if got := refusalsCounted(t, reg); got != 2 {
		t.Errorf("trail_witness_refusals_total = %v, want 2", got)
	}
	if n := len(refusalsIn(t, forked)); n != 1 {
		t.Errorf("%d witness_refused records after the second refusal, want still 1", n)
	}
	fresh := newWitnesser(t, p, forked, forked, nil)
	round(t, fresh)
	last := refusalsIn(t, forked)
	if len(last) != 2 || fmt.Sprint(last[1].Context["status"]) != "422" {
		t.Errorf("a new witnesser's refusal of the grown fork: %d records, want a second with status 422", len(last))
	}
	if got := witnessedSize(t, p, forked); got != 0 {
		t.Errorf("the forked log has a witnessed checkpoint of size %d", got)
	}
}

func refusalsIn(t *testing.T, s trail.Store) []*trail.Event {
	t.Helper()
	page, err := s.Query(context.Background(), trail.Query{Tenant: trail.OperatorTenant, Actions: []string{catalog.WitnessRefused}})
	if err != nil {
		t.Fatal(err)
	}
	return page.Events
}

// refusalsCounted sums trail_witness_refusals_total in reg.
func refusalsCounted(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() == "trail_witness_refusals_total" {
			for _, m := range mf.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}

// mustOriginKey returns the verifier key vkey named by origin: what a
// witness is given for the log of that origin.
func mustOriginKey(t *testing.T, vkey, origin string) string {
	t.Helper()
	k, err := tlog.OriginKey(vkey, origin)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// rootEntries returns the root log's entries, by seq: the OriginHash each
// names and the size it holds.
func rootEntries(t *testing.T, s trail.Store) []string {
	t.Helper()
	var out []string
	err := s.Scan(context.Background(), trail.RootTenant, 1, 0, func(ev *trail.Event) error {
		if ev.Action != catalog.RootEntry || ev.Actor.ID != witness.RootActor.ID {
			t.Errorf("the root log's seq %d is %s by %+v, want a root entry", ev.Seq, ev.Action, ev.Actor)
		}
		out = append(out, fmt.Sprintf("%s=%v", ev.Targets[0].ID, ev.Context["size"]))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func originHash(tenant string) string {
	return witness.OriginHash(tlog.Origin(storetest.Signer().Verifier().Name(), tenant))
}

// A round appends an entry for each log that changed since its last
// entry, and only for those; a Witnesser started again reads the last
// entries from the root log. Between rounds nothing is appended, however
// many commits there are: the root log grows at the cadence.
func TestRootEntriesForChangedLogs(t *testing.T) {
	ws := startWitnesses(t, 1)
	p := policy(t, 1, ws...)
	s := newStore()
	defer s.Close()
	appendN(t, s, "u-1", 2)
	appendTo(t, s, "globex", "u-1", 1)
	w := newWitnesser(t, p, s, s, nil)
	round(t, w)
	acme, globex := originHash(tenant), originHash("globex")
	want := []string{acme + "=2", globex + "=1"}
	if got := rootEntries(t, s); !slices.Equal(got, want) {
		t.Fatalf("root entries %v, want %v", got, want)
	}
	appendN(t, s, "u-1", 3)
	round(t, w)
	want = append(want, acme+"=5")
	if got := rootEntries(t, s); !slices.Equal(got, want) {
		t.Fatalf("root entries after acme grew %v, want %v", got, want)
	}
	round(t, newWitnesser(t, p, s, s, nil))
	if got := rootEntries(t, s); !slices.Equal(got, want) {
		t.Errorf("a new Witnesser appended again: %v, want %v", got, want)
	}

	// Run: its first round at once, the next one an Interval later.
	ctx, cancel := context.WithCancel(context.Background())
	hourly, err := witness.New(witness.Config{Policy: p, Store: s, Writer: s, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	appendTo(t, s, "globex", "u-1", 1)
	done := make(chan struct{})
	go func() { hourly.Run(ctx); close(done) }()
	want = append(want, globex+"=2")
	for !slices.Equal(rootEntries(t, s), want) {
		time.Sleep(10 * time.Millisecond)
	}
	appendTo(t, s, "globex", "u-1", 5)
	cancel()
	<-done
	if got := rootEntries(t, s); !slices.Equal(got, want) {
		t.Errorf("root entries %v between two rounds, want %v: commits between rounds add nothing", got, want)
	}
	if got := witnessedSize(t, p, s); got != 5 {
		t.Errorf("acme's witnessed size %d, want 5", got)
	}
}

// recorder is an http.RoundTripper that keeps the bodies sent.
type recorder struct {
	mu     sync.Mutex
	bodies []string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	b, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.bodies = append(r.bodies, req.URL.String()+"\n"+string(b))
	r.mu.Unlock()
	req.Body = io.NopCloser(bytes.NewReader(b))
	return http.DefaultTransport.RoundTrip(req)
}

// The witnesses see the root log's checkpoints and proofs, one request
// per witness per round however many tenants: no tenant's name, nor its
// origin.
func TestWitnessesSeeNoTenant(t *testing.T) {
	ws := startWitnesses(t, 2)
	p := policy(t, 2, ws...)
	s := newStore()
	defer s.Close()
	names := []string{"hooli-secret", "initech-private", "umbrella-corp"}
	for _, n := range names {
		appendTo(t, s, n, "u-1", 2)
	}
	rec := &recorder{}
	w, err := witness.New(witness.Config{Policy: p, Store: s, Writer: s, Client: &http.Client{Transport: rec}})
	if err != nil {
		t.Fatal(err)
	}
	round(t, w)
	for _, n := range names {
		appendTo(t, s, n, "u-2", 1)
	}
	round(t, w)
	if len(rec.bodies) != 4 {
		t.Errorf("%d requests to the witnesses in 2 rounds, want 4 (one per witness per round)", len(rec.bodies))
	}
	for _, b := range rec.bodies {
		if !strings.Contains(b, "/"+trail.RootTenant+"\n") {
			t.Errorf("a request that is not of the root log:\n%s", b)
		}
		for _, n := range names {
			if strings.Contains(b, n) {
				t.Errorf("a request to a witness names tenant %s:\n%s", n, b)
			}
		}
	}
	for _, n := range names {
		c, err := p.Witnessed(context.Background(), s, n)
		if err != nil || c.Size != 3 {
			t.Fatalf("tenant %s: witnessed %+v, %v; want its checkpoint of size 3", n, c, err)
		}
	}
}

// VerifyTenant trusts nothing of a root proof it is given: a tampered
// entry, another tenant's entry, a checkpoint the root log does not hold
// and a root checkpoint without its quorum all fail.
func TestVerifyTenantRefuses(t *testing.T) {
	ws := startWitnesses(t, 2)
	both := policy(t, 2, ws...)
	s := newStore()
	defer s.Close()
	appendN(t, s, "u-1", 3)
	appendTo(t, s, "globex", "u-1", 2)
	round(t, newWitnesser(t, both, s, s, nil))
	ctx := context.Background()
	good, err := both.Witnessed(ctx, s, tenant)
	if err != nil {
		t.Fatal(err)
	}
	other, err := both.Witnessed(ctx, s, "globex")
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, s, "u-1", 1) // a checkpoint of size 4 the root log does not hold
	newer, err := s.Checkpoint(ctx, tenant)
	if err != nil {
		t.Fatal(err)
	}
	v := storetest.Signer().Verifier()
	if _, err := both.VerifyTenant(v, tenant, good); err != nil {
		t.Fatalf("the witnessed checkpoint: %v", err)
	}
	change := func(f func(c *witness.Cosigned, r *witness.RootProof)) *witness.Cosigned {
		c, r := *good, *good.Root
		r.Proof = slices.Clone(r.Proof)
		f(&c, &r)
		c.Root = &r
		return &c
	}
	oneLine := func(n []byte) []byte {
		i := bytes.LastIndex(n[:len(n)-1], []byte("\n"))
		return n[:i+1] // the last cosignature's line dropped
	}
	for _, tc := range []struct {
		name string
		c    *witness.Cosigned
	}{
		{"a tampered entry", change(func(_ *witness.Cosigned, r *witness.RootProof) {
			r.Entry = bytes.Replace(r.Entry, []byte(`"size":3`), []byte(`"size":4`), 1)
		})},
		{"a tampered entry, the tenant's checkpoint to match", change(func(c *witness.Cosigned, r *witness.RootProof) {
			r.Entry = bytes.Replace(r.Entry, []byte(`"size":3`), []byte(`"size":4`), 1)
			c.Note = newer
		})},
		{"a checkpoint not in the root log", change(func(c *witness.Cosigned, _ *witness.RootProof) { c.Note = newer })},
		{"another tenant's entry", change(func(_ *witness.Cosigned, r *witness.RootProof) { *r = *other.Root })},
		{"another seq", change(func(_ *witness.Cosigned, r *witness.RootProof) { r.Seq = other.Root.Seq })},
		{"a proof of another leaf", change(func(_ *witness.Cosigned, r *witness.RootProof) { r.Proof = other.Root.Proof })},
		{"a root checkpoint without its quorum", change(func(_ *witness.Cosigned, r *witness.RootProof) { r.Note = oneLine(r.Note) })},
		{"no root proof", &witness.Cosigned{Tenant: tenant, Size: good.Size, Note: good.Note}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := both.VerifyTenant(v, tenant, tc.c)
			var broken *witness.BrokenChainError
			if !errors.As(err, &broken) {
				t.Fatalf("VerifyTenant: %v, want a *BrokenChainError", err)
			}
		})
	}
	if !bytes.Contains(good.Root.Entry, []byte(`"size":3`)) {
		t.Fatalf("the entry holds no \"size\":3 to tamper with:\n%s", good.Root.Entry)
	}
	// With one of the two cosignatures the root checkpoint still has a
	// quorum of 1 of 2.
	if _, err := policy(t, 1, ws...).VerifyTenant(v, tenant, change(func(_ *witness.Cosigned, r *witness.RootProof) { r.Note = oneLine(r.Note) })); err != nil {
		t.Errorf("1 of 2 with one cosignature: %v", err)
	}
}

// flakyWriter fails every append while err is set, and appends through
// Writer otherwise.
type flakyWriter struct {
	ledger.Writer
	err error
}

func (f *flakyWriter) AppendOwn(ctx context.Context, tenant string, o ledger.Own) (*trail.AppendResult, error) {
	if f.err != nil {
		return nil, f.err
	}
	return f.Writer.AppendOwn(ctx, tenant, o)
}

// A round whose root append fails returns the write error and enters
// nothing; the next round that can write enters the logs then.
func TestRootAppendErrorIsReturned(t *testing.T) {
	s := newStore()
	defer s.Close()
	appendN(t, s, "u-1", 2)
	appendTo(t, s, "globex", "u-1", 1)
	disk := errors.New("disk full")
	writer := &flakyWriter{Writer: s, err: disk}
	w, err := witness.New(witness.Config{Policy: &witness.Policy{Quorum: 1}, Store: s, Writer: writer})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Round(context.Background()); !errors.Is(err, disk) {
		t.Fatalf("Round with a failing writer: %v, want the write error", err)
	}
	if got := rootEntries(t, s); len(got) != 0 {
		t.Fatalf("root entries %v after a failed append, want none", got)
	}
	writer.err = nil
	round(t, w)
	want := []string{originHash(tenant) + "=2", originHash("globex") + "=1"}
	if got := rootEntries(t, s); !slices.Equal(got, want) {
		t.Errorf("root entries %v after the writer is back, want %v", got, want)
	}
}

// rootScans is a store that records where each scan of the root log
// starts.
type rootScans struct {
	*memory.Store
	mu    sync.Mutex
	froms []uint64
}

func (s *rootScans) ScanLeaves(ctx context.Context, tenant string, from, to uint64, fn func(trail.Leaf) error) error {
	if tenant == trail.RootTenant {
		s.mu.Lock()
		s.froms = append(s.froms, from)
		s.mu.Unlock()
	}
	return s.Store.ScanLeaves(ctx, tenant, from, to, fn)
}

// runOnce runs w (as a term of leadership: Run) until its first round has
// entered want, then stops it.
func runOnce(t *testing.T, w *witness.Witnesser, s trail.Store, want []string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	deadline := time.Now().Add(30 * time.Second)
	for !slices.Equal(rootEntries(t, s), want) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if got := rootEntries(t, s); !slices.Equal(got, want) {
		t.Fatalf("root entries %v, want %v", got, want)
	}
}

// A Witnesser that leads again (a new Run) reads only the root entries
// after those it read before, including those another process entered
// while it did not lead, and enters nothing twice.
func TestRunReadsOnlyNewRootEntries(t *testing.T) {
	ws := startWitnesses(t, 1)
	p := policy(t, 1, ws...)
	mem := newStore()
	defer mem.Close()
	s := &rootScans{Store: mem}
	acme, globex := originHash(tenant), originHash("globex")
	other := func(want []string) { // another process leads for a round
		t.Helper()
		round(t, newWitnesser(t, p, mem, mem, nil))
		if got := rootEntries(t, mem); !slices.Equal(got, want) {
			t.Fatalf("root entries %v, want %v", got, want)
		}
	}
	appendN(t, mem, "u-1", 2)
	want := []string{acme + "=2"}
	other(want)

	w, err := witness.New(witness.Config{Policy: p, Store: s, Writer: mem, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	appendTo(t, mem, "globex", "u-1", 1)
	want = append(want, globex+"=1")
	runOnce(t, w, mem, want)

	appendN(t, mem, "u-1", 1)
	want = append(want, acme+"=3")
	other(want)

	// This one leads again: it knows acme=3 from the other's entry, and
	// enters globex's growth only.
	appendTo(t, mem, "globex", "u-1", 1)
	want = append(want, globex+"=2")
	runOnce(t, w, mem, want)
	s.mu.Lock()
	froms := slices.Clone(s.froms)
	s.mu.Unlock()
	if len(froms) != 2 || froms[0] != 1 || froms[1] != 2 {
		t.Errorf("the root log was read from seqs %v; want [1 2]: the whole log at the first Run, then only what follows the entries it read", froms)
	}
}
