package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/erasure"
	"github.com/trailaudit/trail/internal/witnesstest"
	"github.com/trailaudit/trail/memory"
	"github.com/trailaudit/trail/storetest"
	"github.com/trailaudit/trail/tlog"
	"github.com/trailaudit/trail/witness"
)

// legacyOrigin is the origin of acme's log in legacyFixture: the form
// logs started before NAME/trail/TENANT keep for life.
const legacyOrigin = "audit.example.com/acme"

// legacyFixture returns a directory with acme's log of four events in two
// commits whose checkpoints carry the legacy origin NAME/TENANT: the first
// is re-signed under it (as a log started before issue 16 was), and the
// second commit keeps the origin it found.
func legacyFixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	const ev = `{"action":"user_logout","actor":{"type":"user","id":"u-1"},"context":{"logout_method":"button","session_id":"s-1"}}` + "\n"
	write(t, dir, "events.ndjson", ev+ev)
	for _, step := range []struct{ args, out string }{
		{"keygen --name audit.example.com", "audit.pub"},
		{"verifier --tenant _root", "root.witness"},
		{"ingest --tenant acme --batch 2 events.ndjson", ""},
	} {
		var out, errb bytes.Buffer
		if code := run(strings.Fields(step.args), &env{stdout: &out, stderr: &errb, dir: dir, vars: map[string]string{}}); code != 0 {
			t.Fatalf("trail %s: exit %d\n%s%s", step.args, code, out.String(), errb.String())
		}
		if step.out != "" {
			write(t, dir, step.out, out.String())
		}
	}
	skey, err := os.ReadFile(filepath.Join(dir, "trail-data", keyFile))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := tlog.NewSigner(string(skey))
	if err != nil {
		t.Fatal(err)
	}
	tamper(t, dir, "checkpoints", func(db *sql.DB) {
		var size uint64
		var note []byte
		if err := db.QueryRow("SELECT size, note FROM checkpoints WHERE tid = (SELECT tid FROM tenants WHERE name = 'acme')").Scan(&size, &note); err != nil {
			t.Fatal(err)
		}
		cp, err := tlog.ParseUnverified(note)
		if err != nil {
			t.Fatal(err)
		}
		old, err := signer.SignOrigin("acme", legacyOrigin, size, cp.Root)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec("UPDATE checkpoints SET note = ? WHERE size = ? AND tid = (SELECT tid FROM tenants WHERE name = 'acme')", old, size); err != nil {
			t.Fatal(err)
		}
	})
	if code, out := runIn(dir, nil, "ingest", "--tenant", "acme", "--batch", "2", "events.ndjson"); code != 0 {
		t.Fatalf("trail ingest: exit %d\n%s", code, out)
	}
	return dir
}

// TestWitnessedLegacyOrigin: a log whose checkpoints carry the legacy
// origin NAME/TENANT is witnessed through the root log like any other: the
// root log enters it under the hash of that origin, GET
// /v1/checkpoint?cosigned=1 and trail checkpoint --witnessed give its
// checkpoint with the root proof, and trail verify checks the chain.
func TestWitnessedLegacyOrigin(t *testing.T) {
	dir := legacyFixture(t)
	if code, out := runIn(dir, nil, "checkpoint", "--tenant", "acme", "--key", "audit.pub"); code != 0 || !strings.Contains(out, legacyOrigin+"\n4\n") {
		t.Fatalf("the fixture's checkpoint is not of the legacy origin at size 4: exit %d\n%s", code, out)
	}
	lw := witnesstest.Start(t, "w1.trail.test")
	root := strings.Fields(read(t, dir, "root.witness"))
	lw.AddLog(root[0], root[1])
	policy := witnesstest.Policy(1, lw)
	write(t, dir, "witnesses", policy)
	write(t, filepath.Join(dir, "trail-data"), "witnesses", policy)

	// serve enters it in the root log and has the root log cosigned.
	p := serveIn(t, dir, storeFlags{data: "trail-data"}, serveOptions{witnesses: &policyFlag{every: 50 * time.Millisecond}})
	if p.key == "" {
		t.Fatal("serve printed no bootstrap admin key")
	}
	waitWitnessed(t, p, 4)
	var doc struct {
		Checkpoint string             `json:"checkpoint"`
		Size       uint64             `json:"size"`
		Witnessed  *witness.RootProof `json:"witnessed"`
	}
	if err := json.Unmarshal(p.api("GET", "/v1/checkpoint?cosigned=1", "", "", 200), &doc); err != nil {
		t.Fatal(err)
	}
	p.stop()
	pol, err := witness.ParsePolicy(policy)
	if err != nil {
		t.Fatal(err)
	}
	v, err := tlog.NewVerifier(strings.TrimSpace(read(t, dir, "audit.pub")))
	if err != nil {
		t.Fatal(err)
	}
	check := func(how, note string, size uint64, proof *witness.RootProof) {
		t.Helper()
		if proof == nil {
			t.Fatalf("%s: no root proof", how)
		}
		cp, err := pol.VerifyTenant(v, "acme", &witness.Cosigned{Tenant: "acme", Size: size, Note: []byte(note), Root: proof})
		if err != nil || cp.Origin != legacyOrigin || cp.Size != 4 {
			t.Fatalf("%s: the chain: %v (%+v)", how, err, cp)
		}
	}
	check("GET /v1/checkpoint?cosigned=1", doc.Checkpoint, doc.Size, doc.Witnessed)

	code, out := runIn(dir, nil, "checkpoint", "--tenant", "acme", "--key", "audit.pub", "--witnessed", "--witness-policy", "witnesses")
	if code != 0 {
		t.Fatalf("trail checkpoint --witnessed: exit %d\n%s", code, out)
	}
	doc.Witnessed = nil
	if err := json.NewDecoder(strings.NewReader(out[strings.Index(out, "{"):])).Decode(&doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	check("trail checkpoint --witnessed", doc.Checkpoint, doc.Size, doc.Witnessed)

	code, out = runIn(dir, map[string]string{"TRAIL_CHECKPOINTS": filepath.Join(t.TempDir(), "remembered")},
		"verify", "--tenant", "acme", "--key", "audit.pub", "--witness-policy", "witnesses")
	if want := `intact(.|\n)*witnessed: the log extends its checkpoint of size 4, entry \d+ of the root log, whose checkpoint is cosigned by w1\.trail\.test`; code != 0 ||
		!regexp.MustCompile(want).MatchString(out) {
		t.Fatalf("trail verify: exit %d, want 0 and output matching %s\n%s", code, want, out)
	}
}

// TestVerifyBundleSealedBefore: trail verify --bundle says of an event
// sealed before per-event keys (enc1:) that its personal data cannot be
// opened here, and counts it among neither the events opened nor the
// damage.
func TestVerifyBundleSealedBefore(t *testing.T) {
	ctx := context.Background()
	v := storetest.Validator()
	store := memory.New(v, storetest.Signer())
	old := &trail.Event{Action: catalog.UserLoginFailed, Actor: trail.Actor{Type: trail.ActorUser, ID: "u-1",
		Email: "enc1:00000000deadbeef:" + strings.Repeat("A", 40)}, Context: map[string]any{"reason": "invalid_password", "attempts": 1, "email": ""}}
	if _, err := store.Append(ctx, "acme", []*trail.Event{old}, trail.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	sealer := erasure.NewSealer(memory.NewSubjectKeys(), catalog.Default())
	cp, err := tlog.OpenLatest(ctx, store, "acme", storetest.Signer().Verifier())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, _, err := tlog.WriteBundle(ctx, &buf, store, cp, trail.Query{Tenant: "acme", RecordedBefore: time.Now().Add(time.Minute)}, sealer); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write(t, dir, "old.bundle", buf.String())
	write(t, dir, "audit.pub", storetest.Signer().VerifierKey()+"\n")
	code, out := runIn(dir, nil, "verify", "--bundle", "old.bundle", "--key", "audit.pub")
	if want := "sealed: 1 events hold personal data sealed before per-event keys (enc1:), which cannot be opened here: no opening can be handed out for it, so it is shown sealed (seqs 1)\n"; code != 0 ||
		!strings.Contains(out, want) || strings.Contains(out, "cleartext:") {
		t.Fatalf("trail verify --bundle: exit %d, want 0 saying %q and no cleartext line\n%s", code, want, out)
	}
}
