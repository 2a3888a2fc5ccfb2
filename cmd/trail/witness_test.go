package main

import (
	"bytes"
	"context"
	"database/sql"
	"log/slog"
	"regexp"
	"strings"
	"testing"

	"github.com/trailaudit/trail/internal/witnesstest"
	"github.com/trailaudit/trail/witness"
)

// cosign has the fixture's log in dir cosigned by ws: one round of a
// Witnesser under the policy of ws and quorum, which it writes to
// dir/witnesses.
func cosign(t *testing.T, dir string, quorum int, ws ...*witnesstest.Witness) {
	t.Helper()
	text := witnesstest.Policy(quorum, ws...)
	write(t, dir, "witnesses", text)
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
	w, err := witness.New(witness.Config{Policy: p, Store: d.Witness, Writer: d.Writer, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Round(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// trail verify with a witness policy, against real witnesses.
func TestVerifyWitnessed(t *testing.T) {
	// Each case's fixture has a key of its own: witnesses of their own.
	start := func(t *testing.T) (string, []*witnesstest.Witness) {
		dir := fixture(t)
		ws := []*witnesstest.Witness{witnesstest.Start(t, "w1.trail.test"), witnesstest.Start(t, "w2.trail.test")}
		for _, w := range ws {
			w.AddLog("audit.example.com/_root", strings.TrimSpace(read(t, dir, "audit.pub")))
		}
		return dir, ws
	}
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
