package http_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/trailaudit/trail"
	trailhttp "github.com/trailaudit/trail/http"
	"github.com/trailaudit/trail/internal/witnesstest"
	"github.com/trailaudit/trail/storetest"
	"github.com/trailaudit/trail/tlog"
	"github.com/trailaudit/trail/witness"
)

// The witnessed checkpoint and the health page's witnesses, with a real
// witness (litewitness) cosigning the root log.
func TestWitnessed(t *testing.T) {
	lw := witnesstest.Start(t, "w1.trail.test")
	origin := tlog.Origin(storetest.Signer().Verifier().Name(), trail.RootTenant)
	vkey, verr := tlog.OriginKey(storetest.Signer().VerifierKey(), origin)
	if verr != nil {
		t.Fatal(verr)
	}
	lw.AddLog(origin, vkey)
	p, err := witness.ParsePolicy(witnesstest.Policy(1, lw))
	if err != nil {
		t.Fatal(err)
	}
	var wr *witness.Witnesser
	h := newHarnessWith(t, backends[0].open, func(c *trailhttp.Config, s backend) {
		if wr, err = witness.New(witness.Config{Policy: p, Store: s, Writer: s, Logger: slog.New(slog.DiscardHandler)}); err != nil {
			t.Fatal(err)
		}
		c.Witnessing = wr
	})
	h.ok(201, "acme", "POST", "/v1/events", login, nil)
	if pr := h.problem(404, string(trail.ENOTFOUND), "acme", "GET", "/v1/checkpoint?cosigned=1", "", ""); !strings.Contains(pr.Detail, "no checkpoint is cosigned") {
		t.Errorf("before a round: %q", pr.Detail)
	}
	h.problem(400, string(trail.EINVALID), "acme", "GET", "/v1/checkpoint?cosigned=yes", "", "")
	if err := wr.Round(context.Background()); err != nil {
		t.Fatal(err)
	}

	var doc struct {
		Checkpoint   string `json:"checkpoint"`
		Size         uint64 `json:"size"`
		Cosignatures []struct {
			Witness string `json:"witness"`
		} `json:"cosignatures"`
		Witnessed struct {
			Checkpoint string          `json:"checkpoint"`
			Seq        uint64          `json:"seq"`
			Entry      json.RawMessage `json:"entry"`
			Proof      [][]byte        `json:"proof"`
		} `json:"witnessed"` // spelled out: the API's documented form, not RootProof's methods
	}
	h.ok(200, "acme", "GET", "/v1/checkpoint?cosigned=1", "", &doc)
	if doc.Size != 1 || len(doc.Cosignatures) != 1 || doc.Cosignatures[0].Witness != lw.Name {
		t.Fatalf("cosigned checkpoint: %+v", doc)
	}
	// What the answer carries is all a client needs to check the chain
	// itself: the tenant's checkpoint, signed by the log's key; its root
	// entry, in the root checkpoint; that one cosigned by the witness.
	c := &witness.Cosigned{Tenant: "acme", Size: doc.Size, Note: []byte(doc.Checkpoint),
		Root: &witness.RootProof{Note: []byte(doc.Witnessed.Checkpoint), Seq: doc.Witnessed.Seq, Entry: doc.Witnessed.Entry, Proof: doc.Witnessed.Proof}}
	cp, err := p.VerifyTenant(storetest.Signer().Verifier(), "acme", c)
	if err != nil {
		t.Fatalf("the answer does not prove the checkpoint witnessed: %v", err)
	}
	if cp.Size != doc.Size || !strings.Contains(doc.Witnessed.Checkpoint, "\n— "+lw.Name+" ") || strings.Contains(doc.Checkpoint, lw.Name) {
		t.Errorf("checkpoint of size %d (doc %d), the witness's line on the root checkpoint only:\n%s\n%s", cp.Size, doc.Size, doc.Checkpoint, doc.Witnessed.Checkpoint)
	}
	// The plain checkpoint is still the latest, signed by the log alone.
	var plain struct{ Checkpoint string }
	h.ok(200, "acme", "GET", "/v1/checkpoint", "", &plain)
	if strings.Contains(plain.Checkpoint, lw.Name) {
		t.Errorf("the plain checkpoint carries a cosignature:\n%s", plain.Checkpoint)
	}

	body := signIn(h, "acme").get(200, "/ui/health")
	for _, want := range []string{"Witnesses", lw.Name, "1 of 1 (w1.trail.test)", "✓ Cosigning", " ago ("} {
		if !strings.Contains(body, want) {
			t.Errorf("the health page does not show %q", want)
		}
	}
}
