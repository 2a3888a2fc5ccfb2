package main

import (
	"bytes"
	"database/sql"
	"encoding/base64"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/trailaudit/trail/tlog"
)

// TestExitCodes: what the commands that check something exit with, in
// each state a log can be in: 0 checked and intact, 1 damage, 2 usage, 3
// could not check (the store unreadable, nothing signed by the trusted key,
// no log). Each case starts from the same deployment (fixture), changes
// it as an administrator or an intruder could (state), and runs one
// command; its output must match out.
func TestExitCodes(t *testing.T) {
	tests := []struct {
		name  string
		state func(t *testing.T, dir string)
		args  string            // the command line, split on spaces
		vars  map[string]string // the environment
		code  int
		out   string // a regular expression the output (stdout, then stderr) must match
	}{
		// verify
		{name: "verify, trusting --key", args: "verify --tenant acme --key audit.pub",
			out: `trusting key audit\.example\.com\+\w+ from --key audit\.pub\n(.|\n)*intact`},
		{name: "verify, trusting a list of keys", args: "verify --tenant acme --trusted-keys trusted-keys",
			out: `trusting keys audit\.example\.com\+\w+, audit\.example\.com\+\w+ from --trusted-keys trusted-keys\n(.|\n)*intact`},
		{name: "verify, trusting TRAIL_VERIFIER_KEY", args: "verify --tenant acme", vars: map[string]string{"TRAIL_VERIFIER_KEY": "audit.pub"},
			out: `from TRAIL_VERIFIER_KEY audit\.pub\n(.|\n)*intact`},
		{name: "verify, trusting the key beside the data", args: "verify --tenant acme",
			out: `found beside the data \(.*trail-data/log\.key\): a key written there by someone who re-signed the log would pass; pass --key\n(.|\n)*intact`},
		{name: "verify, no tenant", args: "verify --key audit.pub", code: 2, out: `--tenant`},
		{name: "verify, a key that is not one", args: "verify --tenant acme --key nonsense", code: 2, out: `--key: `},
		{name: "verify, a list that holds no key", args: "verify --tenant acme --trusted-keys events.ndjson", code: 2,
			out: `--trusted-keys events\.ndjson: tlog: line 1: not a verifier key`},
		{name: "verify, an event edited", state: editEvent2, args: "verify --tenant acme --key audit.pub", code: 1,
			out: `DAMAGE: first at seq 2 \(changed\)`},
		{name: "verify, events and no checkpoint", state: dropCheckpoints, args: "verify --tenant acme --key audit.pub", code: 1,
			out: `DAMAGE: first at seq 1 \(extra\)`},
		{name: "verify, under another key", args: "verify --tenant acme --key other.pub", code: 3,
			out: `could not check: no checkpoint of tenant acme is signed by the trusted key audit\.example\.com\+(\w+); the log is signed by audit\.example\.com/trail/acme\+\w+`},
		{name: "verify, re-signed with a new log.key, trusting the real key", state: resign, args: "verify --tenant acme --key audit.pub", code: 3,
			out: `could not check: no checkpoint of tenant acme is signed by the trusted key audit\.example\.com\+\w+; the log is signed by audit\.example\.com/trail/acme\+\w+`},
		{name: "verify, re-signed with a new log.key, trusting it, with a checkpoint saved before", state: resign,
			args: "verify --tenant acme --checkpoint saved.checkpoint", code: 1,
			out: `found beside the data(.|\n)*DAMAGE: first at seq 1 \(fork\)\n\s+fork\s+seq 1\s+saved checkpoint 1 \(size 5\) is tlog: checkpoint: not signed by the trusted key`},
		{name: "verify, a tenant with no log", args: "verify --tenant nobody --key audit.pub", code: 3,
			out: `could not check: tenant nobody has no log`},
		{name: "verify, the store unreadable", state: garbleStore, args: "verify --tenant acme --key audit.pub", code: 3,
			out: `could not check: the store cannot be read`},
		{name: "verify, PostgreSQL unreachable", args: "verify --tenant acme --key audit.pub --postgres postgres://postgres@127.0.0.1:1/test", code: 3,
			out: `could not check: the store cannot be read`},

		// verify with a witness policy (real cosignatures: witness_test.go)
		{name: "verify, a witness policy and nothing cosigned", state: writePolicy, args: "verify --tenant acme --key audit.pub --witness-policy witnesses", code: 3,
			out: `holding the log to the witness policy 1 of 1 \(w1\.trail\.test\) from witnesses\n(.|\n)*intact(.|\n)*could not check: tenant acme: no checkpoint is cosigned by a quorum`},
		{name: "verify, the policy in DATA/witnesses", state: writeDataPolicy, args: "verify --tenant acme --key audit.pub", code: 3,
			out: `from trail-data/witnesses\n(.|\n)*could not check: tenant acme: no checkpoint is cosigned`},
		{name: "verify, TRAIL_WITNESS_POLICY", state: writePolicy, args: "verify --tenant acme --key audit.pub", vars: map[string]string{"TRAIL_WITNESS_POLICY": "witnesses"}, code: 3,
			out: `from witnesses\n(.|\n)*could not check: tenant acme: no checkpoint is cosigned`},
		{name: "verify, a witness policy that does not parse", state: writeBadPolicy, args: "verify --tenant acme --key audit.pub --witness-policy witnesses", code: 2,
			out: `--witness-policy witnesses: witness policy: line 2: unknown statement "log"`},
		{name: "verify, a witness policy file missing", args: "verify --tenant acme --key audit.pub --witness-policy witnesses", code: 2, out: `--witness-policy: open`},
		{name: "verify, a forged cosignature", state: forgeCosignature, args: "verify --tenant acme --key audit.pub --witness-policy witnesses", code: 1,
			out: `DAMAGE: tenant _root: the cosignature kept of the checkpoint of size 1 by witness w1\.trail\.test is forged: witness w1\.trail\.test: its cosignature does not verify`},

		// checkpoint
		// keygen says the origins its name makes, and when they are not URLs
		{name: "keygen", args: "keygen --name audit.example.com --out host.key", out: `a tenant's log has the origin audit\.example\.com/trail/TENANT; its verifier key:\n$`},
		{name: "keygen, not a host name", args: "keygen --name vm --out vm.key", out: `note: the key name vm is not a host name, so origins are not URLs; a name like --name audit\.example\.com makes them so`},
		// a log's key for its witnesses: named by the log's origin
		{name: "verifier", args: "verifier", out: `^audit\.example\.com\+[0-9a-f]{8}\+\S+\n$`},
		{name: "verifier, a tenant's log", args: "verifier --tenant acme", out: `^audit\.example\.com/trail/acme\naudit\.example\.com/trail/acme\+[0-9a-f]{8}\+\S+\n$`},
		{name: "verifier, a log started before", args: "verifier --origin audit.example.com/acme", out: `^audit\.example\.com/acme\naudit\.example\.com/acme\+[0-9a-f]{8}\+\S+\n$`},
		{name: "verifier, a bad tenant", args: "verifier --tenant Acme", code: 2, out: `--tenant: must be lower-case`},
		{name: "verifier, a bad origin", args: "verifier --origin a+b", code: 2, out: `--origin: tlog: origin "a\+b"`},
		{name: "verifier, both", args: "verifier --tenant acme --origin x", code: 2, out: `--tenant and --origin: pass one`},
		{name: "checkpoint", args: "checkpoint --tenant acme --key audit.pub", out: `^audit\.example\.com/trail/acme\n5\n`},
		{name: "checkpoint, under another key", args: "checkpoint --tenant acme --key other.pub", code: 3,
			out: `could not check: the latest checkpoint of tenant acme is not signed by the trusted key audit\.example\.com\+\w+ \(signed by audit\.example\.com/trail/acme\+\w+\)`},
		{name: "checkpoint, a tenant with no log", args: "checkpoint --tenant nobody --key audit.pub", code: 3, out: `tenant nobody has no log`},
		{name: "checkpoint, events and no checkpoint", state: dropCheckpoints, args: "checkpoint --tenant acme --key audit.pub", code: 1,
			out: `damage: tenant acme holds 5 events and no checkpoint`},
		{name: "checkpoint, the store unreadable", state: garbleStore, args: "checkpoint --tenant acme --key audit.pub", code: 3, out: `the store cannot be read`},

		// prove
		{name: "prove an event", args: "prove --tenant acme --seq 3 --key audit.pub", out: `"seq":3`},
		{name: "prove an event edited", state: editEvent2, args: "prove --tenant acme --seq 2 --key audit.pub", code: 1, out: `damage: changed at seq 2`},
		{name: "prove the event beside one edited", state: editEvent2, args: "prove --tenant acme --seq 3 --key audit.pub", out: `"seq":3`},
		{name: "prove an event past the log", args: "prove --tenant acme --seq 9 --key audit.pub", code: 2, out: `--seq: 9 is past the signed checkpoint`},
		{name: "prove, under another key", args: "prove --tenant acme --seq 1 --key other.pub", code: 3, out: `not signed by the trusted key`},
		{name: "prove a saved checkpoint extended", args: "prove --tenant acme --old saved.checkpoint --key audit.pub", out: `"old_size":5`},
		{name: "prove a saved checkpoint, re-signed with a new log.key", state: resign, args: "prove --tenant acme --old saved.checkpoint", code: 1,
			out: `damage: the log does not extend the old checkpoint \(fork\)`},
		{name: "prove a checkpoint that is not one", args: "prove --tenant acme --old events.ndjson --key audit.pub", code: 2,
			out: `--old: tlog: checkpoint: not a signed note`},

		// bundles
		{name: "bundle", args: "verify --bundle u-2.bundle --key audit.pub", out: `2 events proven(.|\n)*intact`},
		{name: "bundle edited", state: editBundle, args: "verify --bundle u-2.bundle --key audit.pub", code: 1, out: `changed`},
		{name: "bundle, under another key", args: "verify --bundle u-2.bundle --key other.pub", code: 3, out: `could not check: the bundle's checkpoint is not signed`},
		{name: "bundle, no key", args: "verify --bundle u-2.bundle", code: 2, out: `no verifier key: pass --key`},
		{name: "export a bundle, under another key", args: "export --tenant acme --verifiable --key other.pub", code: 3, out: `not signed by the trusted key`},
		{name: "export as CSV", args: "export --tenant acme --format csv --out -", out: `^seq,id,recorded_at,(.|\n)*5 events exported`},
		{name: "export as OCSF", args: "export --tenant acme --format ocsf", out: `^\{"class_uid":3002,(.|\n)*5 events exported`},
		{name: "export, an unknown format", args: "export --tenant acme --format xml", code: 2, out: `--format: unknown export format: use one of ndjson, csv, ocsf`},
		{name: "export a bundle as CSV", args: "export --tenant acme --verifiable --format csv --key audit.pub", code: 2, out: `--verifiable writes a bundle(.|\n)*no --format csv`},

		// A search that can only find nothing says so: 3 nothing to read,
		// 2 an action no one has (with the nearest names).
		{name: "query, a tenant with no log", args: "query --tenant acmee", code: 3, out: `tenant acmee has no log: no events, no checkpoint \(is --tenant right\?\)`},
		{name: "query, no Trail data", args: "query --tenant acme --data typo", code: 3, out: `no Trail data in typo \(no trail\.db there\): check --data or TRAIL_DATA`},
		{name: "query, an unknown action", args: "query --tenant acme --action user_logout --action user_logn_failed", code: 2,
			out: `--action: "user_logn_failed" is not an action the catalog knows, and no event of the tenant has it; nearest: user_login_failed`},
		{name: "query, an alias", args: "query --tenant acme --action LOGOUT", out: `user_logout(.|\n)*5 events`},
		{name: "export, a tenant with no log", args: "export --tenant acmee", code: 3, out: `tenant acmee has no log`},
		{name: "export, an unknown action", args: "export --tenant acme --action user_login_sucess --format csv", code: 2, out: `nearest: user_login_success`},
		{name: "export a bundle, an unknown action", args: "export --tenant acme --verifiable --key audit.pub --action user_login_sucess", code: 2, out: `nearest: user_login_success`},
		{name: "verify, no Trail data", args: "verify --tenant acme --key audit.pub --data typo", code: 3, out: `could not check: the store cannot be read: no Trail data in typo`},

		// Each says so in its help.
		{name: "verify --help", args: "verify --help", out: `Exit codes: 0 checked(.|\n)*3 could not check`},
		{name: "checkpoint --help", args: "checkpoint --help", out: `Exit codes: 0 checked(.|\n)*3 could not check`},
		{name: "prove --help", args: "prove --help", out: `Exit codes: 0 checked(.|\n)*3 could not check`},
		{name: "export --help", args: "export --help", out: `Exit codes: 0 checked(.|\n)*3 could not check`},
		{name: "validate --help", args: "validate --help", out: `1 when any event was refused or marked(.|\n)*3 when it could\nnot check`},

		// validate
		{name: "validate clean events", args: "validate events.ndjson", out: `5 events: 5 clean`},
		{name: "validate a refused event", args: "validate trusted-keys", code: 1, out: `3 events: 0 clean, 0 marked, 3 refused`},
		{name: "validate what cannot be read", args: "validate trail-data", code: 3, out: `could not check: reading line 1`},
		{name: "validate nothing", args: "validate", code: 2, out: `accepts 1 arg`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := fixture(t)
			if tc.state != nil {
				tc.state(t, dir)
			}
			code, out := runIn(dir, tc.vars, strings.Fields(tc.args)...)
			if code != tc.code || !regexp.MustCompile(tc.out).MatchString(out) {
				t.Errorf("trail %s: exit %d, want %d, output matching %s\n%s", tc.args, code, tc.code, tc.out, out)
			}
		})
	}
}

// runIn runs trail in dir with vars as its environment, and returns its
// exit code and stdout followed by stderr.
func runIn(dir string, vars map[string]string, args ...string) (int, string) {
	var out, errb bytes.Buffer
	if vars == nil {
		vars = map[string]string{}
	}
	code := run(args, &env{stdout: &out, stderr: &errb, dir: dir, vars: vars})
	return code, out.String() + errb.String()
}

// fixture returns a directory with a deployment: tenant acme's log of five
// events in three commits (checkpoints of sizes 2, 4 and 5), signed by
// trail-data/log.key, whose verifier key is in audit.pub; a checkpoint of
// it saved (saved.checkpoint); a bundle of u-2's events (u-2.bundle);
// another key of the same name (other.key, other.pub), and trusted-keys
// listing both.
func fixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	var events bytes.Buffer
	for _, u := range []string{"u-1", "u-2", "u-3", "u-2", "u-5"} {
		events.WriteString(`{"action":"user_logout","actor":{"type":"user","id":"` + u + `"},"context":{"logout_method":"button","session_id":"s-1"}}` + "\n")
	}
	write(t, dir, "events.ndjson", events.String())
	for _, step := range []struct {
		args string
		out  string // file to write stdout to
	}{
		{"keygen --name audit.example.com", "audit.pub"},
		{"keygen --name audit.example.com --out other.key", "other.pub"},
		{"verifier --tenant _root", "root.witness"}, // the root log's origin and its key, for witnesses
		{"ingest --tenant acme --batch 2 events.ndjson", ""},
		{"checkpoint --tenant acme --key audit.pub", "saved.checkpoint"},
		{"export --tenant acme --actor u-2 --verifiable --key audit.pub --out u-2.bundle", ""},
	} {
		var out, errb bytes.Buffer
		if code := run(strings.Fields(step.args), &env{stdout: &out, stderr: &errb, dir: dir, vars: map[string]string{}}); code != 0 {
			t.Fatalf("trail %s: exit %d\n%s%s", step.args, code, out.String(), errb.String())
		}
		if step.out != "" {
			write(t, dir, step.out, out.String())
		}
	}
	write(t, dir, "trusted-keys", "# the auditors' keys\n"+read(t, dir, "audit.pub")+read(t, dir, "other.pub"))
	return dir
}

func write(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// tamper runs fn on the deployment's SQLite database as an administrator
// would: with the triggers of table dropped, then put back.
func tamper(t *testing.T, dir, table string, fn func(db *sql.DB)) {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(dir, "trail-data", "trail.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?", table)
	if err != nil {
		t.Fatal(err)
	}
	triggers := map[string]string{}
	for rows.Next() {
		var name, stmt string
		if err := rows.Scan(&name, &stmt); err != nil {
			t.Fatal(err)
		}
		triggers[name] = stmt
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	exec := func(stmt string, args ...any) {
		if _, err := db.Exec(stmt, args...); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	for name := range triggers {
		exec("DROP TRIGGER " + name)
	}
	fn(db)
	for _, stmt := range triggers {
		exec(stmt)
	}
}

// editEvent2 changes the actor of the event at seq 2 in place.
func editEvent2(t *testing.T, dir string) {
	tamper(t, dir, "events", func(db *sql.DB) {
		if _, err := db.Exec(`UPDATE events SET body = CAST(replace(CAST(body AS TEXT), '"u-2"', '"u-9"') AS BLOB) WHERE key & 1099511627775 = 2`); err != nil {
			t.Fatal(err)
		}
	})
}

// dropCheckpoints deletes every stored checkpoint.
func dropCheckpoints(t *testing.T, dir string) {
	tamper(t, dir, "checkpoints", func(db *sql.DB) {
		if _, err := db.Exec("DELETE FROM checkpoints"); err != nil {
			t.Fatal(err)
		}
	})
}

// resign re-signs every checkpoint with other.key and puts that key in
// place of trail-data/log.key: what someone who wants the log to verify
// after rewriting it does.
func resign(t *testing.T, dir string) {
	s, err := tlog.NewSigner(read(t, dir, "other.key"))
	if err != nil {
		t.Fatal(err)
	}
	tamper(t, dir, "checkpoints", func(db *sql.DB) {
		rows, err := db.Query("SELECT note FROM checkpoints")
		if err != nil {
			t.Fatal(err)
		}
		var notes [][]byte
		for rows.Next() {
			var n []byte
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
			notes = append(notes, n)
		}
		for _, n := range notes {
			cp, err := tlog.ParseUnverified(n)
			if err != nil {
				t.Fatal(err)
			}
			forged, err := s.Sign("acme", cp.Size, cp.Root)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec("UPDATE checkpoints SET note = ? WHERE note = ?", forged, n); err != nil {
				t.Fatal(err)
			}
		}
	})
	write(t, dir, "trail-data/log.key", read(t, dir, "other.key"))
}

// testPolicy is a witness policy of one witness, w1.trail.test, whose
// signing key no test holds.
const testPolicy = "witness w1.trail.test w1.trail.test+23d9ac8c+BM7MFQfcHd1ylZUcKQiI8JWtuQRNG3PWlubfBl1oO9T8 https://w1.example.com\nquorum 1\n"

func writePolicy(t *testing.T, dir string)     { write(t, dir, "witnesses", testPolicy) }
func writeDataPolicy(t *testing.T, dir string) { write(t, dir, "trail-data/witnesses", testPolicy) }
func writeBadPolicy(t *testing.T, dir string) {
	write(t, dir, "witnesses", "quorum 1\nlog example.com/acme\n")
}

// forgeCosignature has a round enter acme's log in the root log (the
// witness unreachable), then keeps, beside the root checkpoint of size 1,
// a cosignature line under w1.trail.test's name and key hash that the
// witness never signed.
func forgeCosignature(t *testing.T, dir string) {
	writePolicy(t, dir)
	witnessRound(t, dir, testPolicy, &http.Client{Transport: down{}})
	var root []byte
	tamper(t, dir, "checkpoints", func(db *sql.DB) {
		if err := db.QueryRow("SELECT note FROM checkpoints WHERE tid = (SELECT tid FROM tenants WHERE name = '_root') AND size = 1").Scan(&root); err != nil {
			t.Fatal(err)
		}
	})
	sig := append([]byte{0x23, 0xd9, 0xac, 0x8c, 0, 0, 0, 0, 0x6a, 0x00, 0x00, 0x00}, make([]byte, 64)...)
	line := "— w1.trail.test " + base64.StdEncoding.EncodeToString(sig) + "\n"
	tamper(t, dir, "cosignatures", func(db *sql.DB) {
		if _, err := db.Exec("INSERT INTO cosignatures (tenant, size, witness, signed_at, line, note) VALUES ('_root', 1, 'w1.trail.test', 1778384896, ?, ?)",
			line, root); err != nil {
			t.Fatal(err)
		}
	})
}

// down is a transport to a witness that is down.
type down struct{}

func (down) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("connection refused")
}

// garbleStore puts what is not a database where the SQLite file is.
func garbleStore(t *testing.T, dir string) {
	for _, f := range []string{"trail.db-wal", "trail.db-shm"} {
		os.Remove(filepath.Join(dir, "trail-data", f))
	}
	write(t, dir, "trail-data/trail.db", strings.Repeat("not a database\n", 400))
}

// editBundle changes u-2's login in the bundle.
func editBundle(t *testing.T, dir string) {
	b := read(t, dir, "u-2.bundle")
	write(t, dir, "u-2.bundle", strings.Replace(b, `"u-2"`, `"u-7"`, 1))
}
