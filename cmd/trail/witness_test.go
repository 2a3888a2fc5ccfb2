package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/trailaudit/trail/internal/witnesstest"
	"github.com/trailaudit/trail/tlog"
	"github.com/trailaudit/trail/witness"
)

// cosign has the fixture's log in dir cosigned by ws: one round of a
// Witnesser under the policy of ws and quorum, which it writes to
// dir/witnesses.
func cosign(t *testing.T, dir string, quorum int, ws ...*witnesstest.Witness) {
	t.Helper()
	text := witnesstest.Policy(quorum, ws...)
	write(t, dir, "witnesses", text)
	witnessRound(t, dir, text, nil)
}

// witnessRound runs one round of a Witnesser under the policy text over
// the fixture's store in dir, its requests made by client (nil: the
// default).
func witnessRound(t *testing.T, dir, text string, client *http.Client) {
	t.Helper()
	p, err := witness.ParsePolicy(text)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, dir: dir, vars: map[string]string{}}
	sf := storeFlags{data: "trail-data"}
	d, err := sf.openFor(context.Background(), e, appendLog)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	w, err := witness.New(witness.Config{Policy: p, Store: d.Witness, Writer: d.Writer, Client: client, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Round(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// start makes a fixture and two witnesses of its root log: each fixture
// has a key of its own, so witnesses of their own.
func start(t *testing.T) (string, []*witnesstest.Witness) {
	t.Helper()
	dir := fixture(t)
	ws := []*witnesstest.Witness{witnesstest.Start(t, "w1.trail.test"), witnesstest.Start(t, "w2.trail.test")}
	log := strings.Fields(read(t, dir, "root.witness")) // trail verifier --tenant _root: origin, key
	if len(log) != 2 || log[0] != "audit.example.com/trail/_root" || !strings.HasPrefix(log[1], log[0]+"+") {
		t.Fatalf("trail verifier --tenant _root printed %q, want the root log's origin and the key named by it", log)
	}
	for _, w := range ws {
		w.AddLog(log[0], log[1])
	}
	return dir, ws
}

// trail checkpoint --witnessed prints the tenant's checkpoint with what
// proves it witnessed, which an auditor checks with the policy and the
// verifier key alone.
func TestCheckpointWitnessed(t *testing.T) {
	dir, ws := start(t)
	if code, out := runIn(dir, nil, "checkpoint", "--tenant", "acme", "--key", "audit.pub", "--witnessed"); code != 2 {
		t.Errorf("--witnessed with no policy: exit %d, want 2\n%s", code, out)
	}
	cosign(t, dir, 2, ws...)
	code, out := runIn(dir, nil, "checkpoint", "--tenant", "acme", "--key", "audit.pub", "--witnessed", "--witness-policy", "witnesses")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	var doc struct {
		Checkpoint string             `json:"checkpoint"`
		Size       uint64             `json:"size"`
		Witnessed  *witness.RootProof `json:"witnessed"`
	}
	if err := json.NewDecoder(strings.NewReader(out[strings.Index(out, "{"):])).Decode(&doc); err != nil { // stderr follows
		t.Fatalf("%v\n%s", err, out)
	}
	p, err := witness.ParsePolicy(read(t, dir, "witnesses"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := tlog.NewVerifier(strings.TrimSpace(read(t, dir, "audit.pub")))
	if err != nil {
		t.Fatal(err)
	}
	cp, err := p.VerifyTenant(v, "acme", &witness.Cosigned{Tenant: "acme", Size: doc.Size, Note: []byte(doc.Checkpoint), Root: doc.Witnessed})
	if err != nil || cp.Size != 5 {
		t.Fatalf("the printed chain: %v (size %d, want 5)\n%s", err, doc.Size, out)
	}
}

// trail verify with a witness policy, against real witnesses.
func TestVerifyWitnessed(t *testing.T) {
	tests := []struct {
		name   string
		quorum int
		down   bool // the second witness is down while Trail submits
		state  func(t *testing.T, dir string)
		code   int
		out    string
	}{
		{name: "2 of 2", quorum: 2, out: `intact(.|\n)*witnessed: the log extends its checkpoint of size 5, entry 1 of the root log, whose checkpoint is cosigned by w1\.trail\.test at \S+, w2\.trail\.test at \S+\n$`},
		{name: "1 of 2, one down", quorum: 1, down: true, out: `witnessed: the log extends its checkpoint of size 5, entry 1 of the root log, whose checkpoint is cosigned by w1\.trail\.test at \S+\n$`},
		{name: "2 of 2, one down", quorum: 2, down: true, code: 3,
			out: `could not check: tenant acme: no checkpoint is cosigned by a quorum of the witness policy 2 of 2 \(w1\.trail\.test, w2\.trail\.test\)`},
		{name: "rolled back below what they cosigned", quorum: 2, state: rollBack, code: 1, out: `DAMAGE: first at seq 5 \(rollback\)`},
		{name: "a root entry changed", quorum: 2, state: changeRootEntry, code: 1,
			out: `DAMAGE: the root log, which witnesses the tenants' checkpoints: .*damage \(changed\) at seq 1`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, ws := start(t)
			if tc.down {
				ws[1].Stop()
			}
			cosign(t, dir, tc.quorum, ws...)
			if tc.state != nil {
				tc.state(t, dir)
			}
			code, out := runIn(dir, nil, "verify", "--tenant", "acme", "--key", "audit.pub", "--witness-policy", "witnesses")
			if code != tc.code || !regexp.MustCompile(tc.out).MatchString(out) {
				t.Errorf("exit %d, want %d, output matching %s\n%s", code, tc.code, tc.out, out)
			}
		})
	}
}

// changeRootEntry makes the root log's entry of acme say size 4.
func changeRootEntry(t *testing.T, dir string) {
	tamper(t, dir, "events", func(db *sql.DB) {
		res, err := db.Exec(`UPDATE events SET body = CAST(replace(CAST(body AS TEXT), '"size":5', '"size":4') AS BLOB)
			WHERE key >> 40 = (SELECT tid FROM tenants WHERE name = '_root')`)
		if err != nil {
			t.Fatalf("change the root entry: %v", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			t.Fatalf("change the root entry: %d rows, want 1", n)
		}
	})
}

// rollBack removes the last event and everything inside the database that
// records it, but not what the witnesses cosigned.
func rollBack(t *testing.T, dir string) {
	for _, table := range []string{"events", "checkpoints", "tenants", "idempotency"} {
		tamper(t, dir, table, func(db *sql.DB) {
			stmt := map[string]string{
				"events":      "DELETE FROM events WHERE key & 1099511627775 = 5",
				"checkpoints": "DELETE FROM checkpoints WHERE size = 5",
				"tenants":     "UPDATE tenants SET size = 4",
				"idempotency": "DELETE FROM idempotency WHERE first_seq + n - 1 >= 5",
			}[table]
			if _, err := db.Exec(stmt); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		})
	}
}
