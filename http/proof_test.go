package http_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/detect"
	trailhttp "github.com/trailaudit/trail/http"
	"github.com/trailaudit/trail/internal/ledger"
	"github.com/trailaudit/trail/storetest"
	"github.com/trailaudit/trail/tlog"
)

// proofStore is a store as the server sees it in a race and an intrusion:
// Get answers an event it answered before even after retention pruned it
// (a page read just before a purge), and ScanLeaves hands out the row of
// seq tamper with its stored leaf hash changed (an intruder's edit).
type proofStore struct {
	backend
	mu     sync.Mutex
	read   map[string]*trail.Event // by tenant and id
	tamper atomic.Uint64           // 0: none
}

func (s *proofStore) Get(ctx context.Context, tenant, id string) (*trail.Event, error) {
	ev, err := s.backend.Get(ctx, tenant, id)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err == nil:
		s.read[tenant+"/"+id] = ev
	case trail.ErrorCode(err) == trail.ENOTFOUND && s.read[tenant+"/"+id] != nil:
		return s.read[tenant+"/"+id], nil
	}
	return ev, err
}

func (s *proofStore) ScanLeaves(ctx context.Context, tenant string, from, to uint64, fn func(trail.Leaf) error) error {
	return s.backend.ScanLeaves(ctx, tenant, from, to, func(l trail.Leaf) error {
		if l.Seq == s.tamper.Load() {
			l.Hashes = append([]byte(nil), l.Hashes...)
			l.Hashes[0] ^= 1
		}
		return fn(l)
	})
}

// proofHarness is newHarness on a proofStore of each backend.
func proofHarness(t *testing.T, open func(*testing.T, *catalog.Catalog) backend) (*harness, *proofStore) {
	var ps *proofStore
	h := newHarness(t, func(t *testing.T, cat *catalog.Catalog) backend {
		ps = &proofStore{backend: open(t, cat), read: map[string]*trail.Event{}}
		return ps
	}, trailhttp.Limits{})
	return h, ps
}

func TestProofs(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Run("UIVerifiesPrunedEvent", func(t *testing.T) { testUIVerifyPruned(proofHarness(t, b.open)) })
			t.Run("Damage", func(t *testing.T) { testProofDamage(proofHarness(t, b.open)) })
			t.Run("DamageAlert", func(t *testing.T) { testDamageAlert(proofHarness(t, b.open)) })
			t.Run("OlderSize", func(t *testing.T) { h, _ := proofHarness(t, b.open); testProofOlderSize(t, h) })
		})
	}
}

// testUIVerifyPruned: an event retention prunes after its page was read
// is verified by its stored leaf hash and shown as pruned, not as damage
// (the UI once hashed the empty body, or took the pruned row for a
// missing one).
func testUIVerifyPruned(h *harness, ps *proofStore) {
	t := h.t
	ctx := context.Background()
	ev := h.appendEvent(login)
	h.appendEvent(loginOf("u-2"))
	u := signIn(h, "acme")
	u.get(200, "/ui/events/"+ev.ID) // read before the purge
	var leaf []byte
	if err := ps.backend.ScanLeaves(ctx, "acme", ev.Seq, ev.Seq+1, func(l trail.Leaf) error {
		leaf = tlog.LeafHash(l.Body)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := ps.AppendOwn(ctx, "acme", ledger.Prune([]uint64{ev.Seq}, storetest.PruneRecord("test", ev.Seq))); err != nil {
		t.Fatal(err)
	}
	for _, hdr := range [][]string{{"HX-Request", "true"}, nil} {
		body := u.get(200, "/ui/events/"+ev.ID+"/verify", hdr...)
		for _, want := range []string{
			"Pruned: event 1's leaf is in the log",
			"Retention has pruned the bytes stored at seq 1",
			hex.EncodeToString(leaf),
			"Hashing the leaf up the proof gives the signed root",
		} {
			if !strings.Contains(body, want) {
				t.Errorf("the verification of a pruned event (%v) does not show %q:\n%s", hdr, want, body)
			}
		}
		if strings.Contains(body, "✗") || strings.Contains(body, "✓ Verified") {
			t.Errorf("a pruned event is shown as damaged or as verified (%v):\n%s", hdr, body)
		}
	}
}

// testProofDamage: a row whose stored leaf hash was changed gets no proof
// from the API (an internal error naming the damage), is shown as damage
// by the UI (a result, not an error page), and the rows beside it are
// proven as before.
func testProofDamage(h *harness, ps *proofStore) {
	t := h.t
	for range 3 {
		h.appendEvent(login)
	}
	evs := h.events("acme")
	ps.tamper.Store(2)
	p := h.problem(500, trail.EINTERNAL, "acme-verify", "GET", "/v1/proofs/inclusion?seq=2", "", "")
	if !strings.Contains(p.Detail, "damaged (changed at seq 2)") {
		t.Errorf("the API's answer to a damaged row: %+v", p)
	}
	h.ok(200, "acme-verify", "GET", "/v1/proofs/inclusion?seq=3", "", nil)
	frag := signIn(h, "acme").get(200, "/ui/events/"+evs[1].ID+"/verify", "HX-Request", "true")
	if !strings.Contains(frag, "✗ Not verified") || !strings.Contains(frag, "do not match their stored leaf hash") {
		t.Errorf("the UI's verification of a damaged row:\n%s", frag)
	}
}

// testProofOlderSize: a proof in an older tree is checked too, and leads
// to the root the checkpoint of that size signed; the latest checkpoint
// comes only with a proof at its size.
func testProofOlderSize(t *testing.T, h *harness) {
	for range 3 {
		h.appendEvent(login)
	}
	first := h.firstCheckpoint("acme")
	var incl struct {
		LeafHash   []byte `json:"leaf_hash"`
		TreeSize   uint64 `json:"tree_size"`
		Proof      [][]byte
		Checkpoint string
	}
	h.ok(200, "acme-verify", "GET", "/v1/proofs/inclusion?seq=1&size=1", "", &incl)
	if incl.TreeSize != 1 || incl.Checkpoint != "" || tlog.VerifyInclusion(incl.LeafHash, 0, 1, incl.Proof, first.Root) != nil {
		t.Errorf("proof in the tree of size 1: %+v", incl)
	}
	// Each proof is a read, recorded in the log: the latest size grows.
	note, err := h.store.Checkpoint(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	latest, err := storetest.Signer().Verifier().Open("acme", note)
	if err != nil {
		t.Fatal(err)
	}
	incl.Checkpoint = ""
	h.ok(200, "acme-verify", "GET", fmt.Sprintf("/v1/proofs/inclusion?seq=2&size=%d", latest.Size), "", &incl)
	if incl.Checkpoint != string(latest.Note) || tlog.VerifyInclusion(incl.LeafHash, 1, latest.Size, incl.Proof, latest.Root) != nil {
		t.Errorf("proof at the latest size, asked for by size: %+v", incl)
	}
	if p := h.problem(400, trail.EINVALID, "acme-verify", "GET", "/v1/proofs/inclusion?seq=3&size=2", "", ""); !hasPath(p, "seq") {
		t.Errorf("seq past size: %+v; want seq named", p)
	}
	if p := h.problem(400, trail.EINVALID, "acme-verify", "GET", "/v1/proofs/inclusion?seq=1&size=99", "", ""); !hasPath(p, "size") {
		t.Errorf("size past the checkpoint: %+v; want size named", p)
	}
}

// testDamageAlert: a full verification from the UI that finds damage
// raises the alert of Trail's own rule in the tenant's log, naming the
// damage; one that finds none raises nothing.
func testDamageAlert(h *harness, ps *proofStore) {
	t := h.t
	for range 3 {
		h.appendEvent(login)
	}
	u := signIn(h, "acme-verify")
	verify := func() {
		t.Helper()
		if res, body := u.request("POST", "/ui/health/verify", url.Values{}); res.StatusCode != 303 {
			t.Fatalf("POST /ui/health/verify: %d\n%s", res.StatusCode, body)
		}
	}
	verify()
	alerts := func() []*trail.Event {
		var out []*trail.Event
		for _, ev := range h.events("acme") {
			if ev.Action == catalog.AlertRaised {
				out = append(out, ev)
			}
		}
		return out
	}
	if n := len(alerts()); n != 0 {
		t.Fatalf("an intact log raised %d alerts", n)
	}
	ps.tamper.Store(2)
	verify()
	as := alerts()
	if len(as) != 1 {
		t.Fatalf("%d alerts after damage, want 1", len(as))
	}
	c := as[0].Context
	if c["rule_id"] != detect.OwnVerificationDamage || c["rule_set"] != detect.OwnSet || c["level"] != "critical" ||
		!strings.Contains(fmt.Sprint(c["first_damage"]), "changed at seq 2") || fmt.Sprint(c["evidence_seqs"]) != "[2]" {
		t.Errorf("the damage alert: %v", c)
	}
	if len(as[0].Violations) != 0 {
		t.Errorf("the damage alert breaks the catalog's rules: %+v", as[0].Violations)
	}
}
