package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/pgtest"
	"github.com/trailaudit/trail/internal/witnesstest"
	"github.com/trailaudit/trail/postgres"
	"github.com/trailaudit/trail/witness"
)

// quickElection is the election's timing in the serve tests.
var quickElection = postgres.ElectorOptions{Retry: 50 * time.Millisecond, Check: 50 * time.Millisecond, PingTimeout: 200 * time.Millisecond}

// TestServeElectsOne: two trail serve on one PostgreSQL schema, witnessing
// every 50ms, take ingest on both; one of them leads (/readyz, the
// trail_leader gauge) and the root log gets one entry per checkpoint
// entered, never two, from whichever runs it. When the leader's lock
// connection is cut, and when the leader stops, one process leads again,
// and still no entry is doubled.
func TestServeElectsOne(t *testing.T) {
	pgURL := pgtest.SchemaURL(t)
	u, err := url.Parse(pgURL)
	if err != nil {
		t.Fatal(err)
	}
	schema := u.Query().Get("search_path")
	dir := t.TempDir()
	if code, out := runIn(dir, nil, "keygen", "--name", "audit.example.com", "--data", "data"); code != 0 {
		t.Fatalf("keygen: %d %s", code, out)
	}
	code, out := runIn(dir, nil, "verifier", "--tenant", trail.RootTenant, "--data", "data")
	log := strings.Fields(out)
	if code != 0 || len(log) != 2 {
		t.Fatalf("trail verifier --tenant _root: %d %q", code, out)
	}
	lw := witnesstest.Start(t, "w1.trail.test")
	lw.AddLog(log[0], log[1])
	write(t, filepath.Join(dir, "data"), "witnesses", witnesstest.Policy(1, lw))
	sf := storeFlags{data: "data", postgres: pgURL}
	o := serveOptions{detect: true, sinks: true, witnesses: &policyFlag{every: 50 * time.Millisecond}, elect: quickElection}
	procs := []*inProcess{serveIn(t, dir, sf, o)}
	procs = append(procs, serveIn(t, dir, sf, o))
	key := procs[0].key
	if key == "" || procs[1].key != "" {
		t.Fatalf("bootstrap admin keys printed: %q, %q; want one, by the first", procs[0].key, procs[1].key)
	}
	procs[1].key = key
	leader := waitLeader(t, procs)
	for i := range 12 {
		procs[i%2].api("POST", "/v1/events", "application/json", `{"action":"user_logout","actor":{"type":"user","id":"u-1"}}`, 201)
		time.Sleep(30 * time.Millisecond)
	}
	waitWitnessed(t, procs[1-leader], 12)
	// The leader's lock connection is cut: it stops on its own failed
	// ping, and one of the two leads again.
	conn, err := pgx.Connect(context.Background(), pgtest.ServerURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
		postgres.LeaderApplication(schema)).Scan(&n); err != nil || n == 0 {
		t.Fatalf("terminating the leader's lock connection: %d, %v", n, err)
	}
	time.Sleep(quickElection.Check + quickElection.PingTimeout)
	leader = waitLeader(t, procs)
	for range 3 {
		procs[leader].api("POST", "/v1/events", "application/json", `{"action":"user_logout","actor":{"type":"user","id":"u-1"}}`, 201)
	}
	waitWitnessed(t, procs[1-leader], 15)
	procs[leader].stop()
	next := waitLeader(t, procs[1-leader:2-leader])
	if next != 0 {
		t.Fatal("no process leads after the leader stopped")
	}
	survivor := procs[1-leader]
	for range 3 {
		survivor.api("POST", "/v1/events", "application/json", `{"action":"user_logout","actor":{"type":"user","id":"u-1"}}`, 201)
	}
	waitWitnessed(t, survivor, 18)
	survivor.stop()
	checkRootEntries(t, dir, sf)
}

// waitLeader waits until exactly one of procs says it leads and the others
// that they follow, and returns its index.
func waitLeader(t *testing.T, procs []*inProcess) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		leader, leaders, gauges := -1, 0, 0
		for i, p := range procs {
			b := p.api("GET", "/readyz", "", "", 200)
			if strings.Contains(string(b), "\nleader: ") {
				leader, leaders = i, leaders+1
			} else if !strings.Contains(string(b), "\nfollower: ") {
				t.Fatalf("/readyz says no leadership: %q", b)
			}
			if strings.Contains(string(p.api("GET", "/metrics", "", "", 200)), "\ntrail_leader 1\n") {
				gauges++
			}
		}
		if leaders > 1 || gauges > 1 {
			t.Fatalf("%d processes say they lead (%d by trail_leader)", leaders, gauges)
		}
		if leaders == 1 && gauges == 1 {
			return leader
		}
		if time.Now().After(deadline) {
			t.Fatalf("no process leads within 10s (%d by /readyz, %d by trail_leader)", leaders, gauges)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitWitnessed waits until p serves acme's checkpoint of size want
// cosigned through the root log.
func waitWitnessed(t *testing.T, p *inProcess, want uint64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		req, _ := http.NewRequest("GET", p.url+"/v1/checkpoint?cosigned=1", nil)
		req.Header.Set("Authorization", "Bearer "+p.key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode == 200 && strings.Contains(string(b), fmt.Sprintf(`"size":%d,`, want)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no cosigned checkpoint of size %d: %d %s", want, res.StatusCode, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkRootEntries fails the test when the root log holds two entries of
// one log's one size: two processes entered the same checkpoint.
func checkRootEntries(t *testing.T, dir string, sf storeFlags) {
	t.Helper()
	d, err := sf.openFor(context.Background(), &env{stdout: io.Discard, stderr: io.Discard, dir: dir, vars: map[string]string{}}, readLog)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	seen := map[string]uint64{} // origin hash and size → the entry's seq
	q := trail.Query{Tenant: trail.RootTenant, TargetType: witness.RootTargetType, Limit: 500}
	n := 0
	for {
		page, err := d.Store.Query(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range page.Events {
			n++
			k := fmt.Sprint(ev.Targets[0].ID, " size ", ev.Context["size"])
			if first, dup := seen[k]; dup {
				t.Errorf("root entries %d and %d both enter %s: two processes ran the root log", first, ev.Seq, k)
			}
			seen[k] = ev.Seq
		}
		if page.Next == "" {
			break
		}
		q.Cursor = page.Next
	}
	if n == 0 {
		t.Error("the root log has no entries")
	}
}
