package http_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/erasure"
	trailhttp "github.com/trailaudit/trail/http"
	"github.com/trailaudit/trail/internal/ledger"
	"github.com/trailaudit/trail/sqlite"
	"github.com/trailaudit/trail/storetest"
	"github.com/trailaudit/trail/tlog"
)

// TestHoldsAndErasure: a legal hold on a subject blocks its erasure; once
// released, the erasure deletes its keys, its data reads as erased through
// the API, each step is on record, and the log still verifies.
func TestHoldsAndErasure(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	keys := storetest.OpenSubjectKeys(t, sqlite.OpenSubjectKeys, filepath.Join(dir, "subject-keys.db"))
	cat := catalog.Default()
	v := validator(cat)
	sealer := erasure.NewSealer(keys, cat)
	v.Sealer = sealer
	db, err := sqlite.Open(ctx, filepath.Join(dir, "trail.db"), sqlite.Options{Validator: v, Signer: storetest.Signer()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	srv, err := trailhttp.New(trailhttp.Config{Store: erasure.Wrap(db, sealer), Writer: db, Keys: db, Holds: db, Eraser: sealer, Catalog: cat,
		Sessions: db, Verifier: storetest.Signer().Verifier(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	text, k, _ := trail.NewAPIKey("acme", "admin", trail.KeyScopes, time.Now())
	if err := db.CreateKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	verifyText, vk, _ := trail.NewAPIKey("acme", "auditor", []trail.KeyScope{trail.ScopeVerify}, time.Now())
	if err := db.CreateKey(ctx, vk); err != nil {
		t.Fatal(err)
	}
	sessions := map[string]*http.Cookie{} // key text → its UI session
	callAs := func(key, method, path, body string, want int) []byte {
		t.Helper()
		req, _ := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if strings.HasPrefix(path, "/ui/") {
			if sessions[key] == nil {
				h := &harness{t: t, url: ts.URL, keys: map[string]string{"key": key}}
				sessions[key] = signIn(h, "key").cookie
			}
			req.AddCookie(sessions[key])
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != want {
			t.Fatalf("%s %s: %d, want %d\n%s", method, path, res.StatusCode, want, b)
		}
		return b
	}
	call := func(method, path, body string, want int) []byte {
		t.Helper()
		return callAs(text, method, path, body, want)
	}
	call("POST", "/v1/events", `{"action":"user_login_failed","actor":{"type":"user","id":"u-1","email":"alice@example.com"},"context":{"reason":"invalid_password","attempts":1,"email":"alice@example.com"}}`, 201)

	first, err := erasure.Wrap(db, sealer).GetSeq(ctx, "acme", 1)
	if err != nil {
		t.Fatal(err)
	}
	// The web UI verifies an event whose personal data is sealed in the
	// log and opened on the page.
	if b := call("GET", "/ui/events/"+first.ID+"/verify", "", 200); !strings.Contains(string(b), "✓ Verified") {
		t.Errorf("UI verification of a sealed event:\n%s", b)
	}
	// A key that may verify but not read gets the proof, not the event.
	b0 := callAs(verifyText, "GET", "/v1/proofs/inclusion?seq=1", "", 200)
	if strings.Contains(string(b0), `"event"`) || !strings.Contains(string(b0), `"proof"`) {
		t.Errorf("a verify-only key's proof: %s", b0)
	}

	var hold trail.Hold
	json.Unmarshal(call("POST", "/v1/holds", `{"filter":{"actor_id":"u-1"},"reason":"Case 9"}`, 201), &hold)
	if hold.ID == "" || hold.Tenant != "acme" || hold.CreatedBy != k.ID {
		t.Fatalf("placed hold: %+v", hold)
	}
	if b := call("POST", "/v1/subjects/u-1/erase", `{"reason":"GDPR 1"}`, 409); !strings.Contains(string(b), hold.ID) {
		t.Errorf("the refusal does not name the hold: %s", b)
	}
	if b := call("GET", "/v1/events?actor=u-1", "", 200); !strings.Contains(string(b), "alice@example.com") {
		t.Fatalf("before erasure the email does not read back: %s", b)
	}
	call("DELETE", "/v1/holds/"+hold.ID+"?reason=closed", "", 200)
	call("DELETE", "/v1/holds/"+hold.ID, "", 409)
	call("POST", "/v1/subjects/u-1/erase", `{"reason":"GDPR 1"}`, 200)
	b := call("GET", "/v1/events?actor=u-1", "", 200)
	if strings.Contains(string(b), "alice@example.com") || !strings.Contains(string(b), `"email":"[erased]"`) {
		t.Errorf("after erasure: %s", b)
	}
	b = call("GET", "/v1/events?action=legal_hold_placed&action=legal_hold_released&action=subject_erased", "", 200)
	for _, a := range []string{"legal_hold_placed", "legal_hold_released", "subject_erased"} {
		if !strings.Contains(string(b), `"action":"`+a+`"`) {
			t.Errorf("%s is not on record", a)
		}
	}
	rep, err := tlog.Verify(ctx, db, "acme", storetest.Signer().Verifier(), tlog.VerifyOptions{})
	if err != nil || !rep.OK() {
		t.Errorf("verify: %v %+v", err, rep)
	}

	// Retention prunes seq 1: its proof still stands on its stored leaf
	// hash, and the UI's full verification reports it pruned, not damaged.
	if _, err := db.AppendOwn(ctx, "acme", ledger.Prune([]uint64{1}, storetest.PruneRecord("test", 1))); err != nil {
		t.Fatal(err)
	}
	var incl struct {
		LeafHash   []byte `json:"leaf_hash"`
		Proof      [][]byte
		Pruned     bool
		Checkpoint string
	}
	json.Unmarshal(call("GET", "/v1/proofs/inclusion?seq=1", "", 200), &incl)
	cp, err := storetest.Signer().Verifier().Open("acme", []byte(incl.Checkpoint))
	if err != nil || !incl.Pruned || tlog.VerifyInclusion(incl.LeafHash, 0, cp.Size, incl.Proof, cp.Root) != nil {
		t.Errorf("proof of a pruned event: %v %+v", err, incl)
	}
	if b := call("POST", "/ui/health/verify", "", 200); !strings.Contains(string(b), "✓ Intact") {
		t.Errorf("UI full verification after a purge:\n%s", b)
	}
}
