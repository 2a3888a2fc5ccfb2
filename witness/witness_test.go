package witness_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/detect"
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

// startWitnesses starts n witnesses that know tenant's log under the
// test signer.
func startWitnesses(t *testing.T, n int) []*witnesstest.Witness {
	t.Helper()
	var ws []*witnesstest.Witness
	for i := range n {
		w := witnesstest.Start(t, "w"+string(rune('1'+i))+".trail.test")
		origin := tlog.Origin(storetest.Signer().Verifier().Name(), tenant)
		w.AddLog(origin, mustOriginKey(t, storetest.Signer().VerifierKey(), origin)) // a log's key is named by its origin
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

// cosignedSizes returns the size each witness last cosigned of tenant's log.
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

func witnessedSize(t *testing.T, p *witness.Policy, s trail.CosignatureStore) uint64 {
	t.Helper()
	c, err := p.Witnessed(context.Background(), s, tenant)
	if trail.ErrorCode(err) == trail.ENOTFOUND {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return c.Size
}

func TestCosign(t *testing.T) {
	ws := startWitnesses(t, 2)
	s := newStore()
	defer s.Close()
	both := policy(t, 2, ws...)
	w := newWitnesser(t, both, s, s, nil)
	appendN(t, s, "u-1", 3)
	round(t, w)
	if got := cosignedSizes(t, w); got[ws[0].Name] != 3 || got[ws[1].Name] != 3 {
		t.Fatalf("cosigned sizes %v, want 3 by each witness", got)
	}
	c, err := both.Witnessed(context.Background(), s, tenant)
	if err != nil {
		t.Fatal(err)
	}
	// The cosigned checkpoint is a signed note: the log's key opens it,
	// and it carries both witnesses' lines, each valid (Check).
	if _, err := storetest.Signer().Verifier().Open(tenant, c.Note); err != nil {
		t.Errorf("the log's verifier does not open the cosigned checkpoint: %v", err)
	}
	origin := tlog.Origin(storetest.Signer().Verifier().Name(), tenant)
	n, err := note.Open(c.Note, note.VerifierList(mustVerifier(t, mustOriginKey(t, storetest.Signer().VerifierKey(), origin))))
	if err != nil || len(n.UnverifiedSigs) != 2 {
		t.Errorf("note.Open: %v; %d other signatures, want the 2 cosignatures", err, len(n.UnverifiedSigs))
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
	// A round with nothing new submits nothing (the sizes stay).
	round(t, w)
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
	go newWitnesser(t, hung, s, s, nil).Run(ctx)
	appendN(t, s, "u-2", 5)
	cancel()

	round(t, w)
	sizes := cosignedSizes(t, w)
	if sizes[ws[0].Name] != 7 || sizes[ws[1].Name] != 2 {
		t.Fatalf("cosigned sizes %v with %s down, want 7 and 2", sizes, ws[1].Name)
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

// A second log under the same origin and key, with other events (a
// rewrite of the database, re-signed with the log's key), is refused by
// the witness that cosigned the first: smaller (409 naming a larger size),
// then as large (the consistency proof fails: 422). The refusal is
// recorded once in the forked log, counted and shown.
func TestForkRefused(t *testing.T) {
	ws := startWitnesses(t, 1)
	p := policy(t, 1, ws...)
	real := newStore()
	defer real.Close()
	appendN(t, real, "u-1", 4)
	round(t, newWitnesser(t, p, real, real, nil))

	forked := newStore()
	defer forked.Close()
	appendN(t, forked, "mallory", 2)
	reg := prometheus.NewRegistry()
	w := newWitnesser(t, p, forked, forked, reg)
	round(t, w)
	refusals := refusalsIn(t, forked)
	if len(refusals) != 1 {
		t.Fatalf("%d witness_refused records in the forked log, want 1", len(refusals))
	}
	ctx := refusals[0].Context
	if got := fmt.Sprintf("%v %v %v %v", ctx["witness"], ctx["status"], ctx["witness_size"], ctx["checkpoint_size"]); got != ws[0].Name+" 409 4 2" {
		t.Errorf("the refusal record's witness, status, witness_size, checkpoint_size: %s; context %v", got, ctx)
	}
	alerts, err := forked.Query(context.Background(), trail.Query{Tenant: tenant, Actions: []string{catalog.AlertRaised}})
	if err != nil {
		t.Fatal(err)
	}
	if len(alerts.Events) != 1 || alerts.Events[0].Context["rule_id"] != detect.OwnWitnessRefused ||
		fmt.Sprint(alerts.Events[0].Context["evidence_seqs"]) != fmt.Sprintf("[%d]", refusals[0].Seq) {
		t.Errorf("the refusal's alerts: %+v; want one %s alert with the record as its evidence", alerts.Events, detect.OwnWitnessRefused)
	}
	st, _ := w.Status(context.Background(), tenant)
	if st[0].Refused == nil || st[0].Refused.WitnessSize != 4 {
		t.Errorf("status %+v: want the refusal, naming the witness's size 4", st[0])
	}

	// Grown past the witness's size: the proof from 4 does not hold.
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
	page, err := s.Query(context.Background(), trail.Query{Tenant: tenant, Actions: []string{catalog.WitnessRefused}})
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
