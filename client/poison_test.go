package client

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	trailhttp "github.com/trailaudit/trail/http"
	"github.com/trailaudit/trail/internal/pgtest"
	"github.com/trailaudit/trail/postgres"
	"github.com/trailaudit/trail/sqlite"
	"github.com/trailaudit/trail/storetest"
)

// realStores are the stores trail serve runs on in production, opened
// fresh for a test with the Validator v.
var realStores = []struct {
	name string
	open func(t *testing.T, v *trail.Validator) testStore
}{
	{"sqlite", func(t *testing.T, v *trail.Validator) testStore {
		db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "trail.db"), sqlite.Options{Validator: v, Signer: storetest.Signer()})
		if err != nil {
			t.Fatal(err)
		}
		return db
	}},
	{"postgres", func(t *testing.T, v *trail.Validator) testStore {
		db, err := postgres.Open(context.Background(), pgtest.ServerURL(), postgres.Options{Validator: v, Signer: storetest.Signer(), Schema: pgtest.NewSchema(t)})
		if err != nil {
			t.Fatal(err)
		}
		return db
	}},
}

// firewallBlock is what the gate in front of the server refuses a whole
// request for (see gate.block): it looks like SQL injection to a firewall.
const firewallBlock = "' OR '1'='1"

// poison is an event the server, or a firewall in front of it, refuses.
type poison struct {
	name  string
	event func(n int) *trail.Event
	path  string // the field the refusal names, or "" when it names none
	words string // words of the refusal
}

var (
	trailOnly = poison{"an action only Trail records", func(n int) *trail.Event {
		ev := testEvent(n)
		ev.Action = catalog.SubjectErased
		return ev
	}, "action", "recorded by Trail itself"}
	unknownAction = poison{"an action not in the catalog", func(n int) *trail.Event {
		ev := testEvent(n)
		ev.Action = "widget_frobnicated"
		return ev
	}, "action", "is not in the catalog"}
	blocked = poison{"a batch the firewall refuses as a whole", func(n int) *trail.Event {
		ev := testEvent(n)
		ev.Reason = "the user name given was admin' OR '1'='1"
		return ev
	}, "", "blocked by the firewall"}
)

// newPoisonServer starts the API on a fresh store of kind open behind a
// gate that blocks firewallBlock.
func newPoisonServer(t *testing.T, open func(*testing.T, *trail.Validator) testStore) (*testServer, *gate) {
	g := newGate()
	g.block = firewallBlock
	srv := newTestServerOn(t, func(v *trail.Validator) testStore { return open(t, v) },
		func(h http.Handler) http.Handler { g.h = h; return g }, trailhttp.Limits{Rate: -1})
	return srv, g
}

// readDeadLetters returns the lines of dir's dead.ndjson by the event's n.
func readDeadLetters(t *testing.T, dir string) map[string]deadLine {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, deadName))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]deadLine{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var dl deadLine
		if err := json.Unmarshal(sc.Bytes(), &dl); err != nil {
			t.Fatalf("dead.ndjson: %v: %s", err, sc.Bytes())
		}
		ev, err := trail.ParseEvent(dl.Event)
		if err != nil {
			t.Fatalf("dead.ndjson holds an event that does not parse: %v: %s", err, sc.Bytes())
		}
		n, _ := ev.Context["n"].(string)
		if _, dup := out[n]; dup {
			t.Errorf("dead.ndjson holds event n=%s twice", n)
		}
		out[n] = dl
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// refusalNames says whether fields and text are the refusal p: the field
// it names (exactly, when it names one) and its words.
func refusalNames(p poison, fields []trail.FieldError, text string) bool {
	if p.path != "" && (len(fields) != 1 || fields[0].Path != p.path) {
		return false
	}
	return strings.Contains(text, p.words)
}

// In Spool mode an event the server refuses goes to dead.ndjson with the
// server's reason, and delivery goes on: every other event is stored once,
// those recorded after it too. A batch refused as a whole, naming no event
// (here by a firewall in front of the server), is sent in halves until the
// events refused are found.
func TestPoisonEventSpool(t *testing.T) {
	for _, st := range realStores {
		t.Run(st.name, func(t *testing.T) {
			srv, g := newPoisonServer(t, st.open)
			close(g.release)
			dir := t.TempDir()
			r := newRemote(t, RemoteOptions{URL: srv.url(), Key: srv.key, Mode: Spool, SpoolDir: dir, BatchSize: 8, BatchWait: 10 * time.Second})
			// Batches of eight: 0-7 one refused by the server, 8-15 another,
			// 16-23 two the firewall blocks, 24-31 one of each, 32-39 none.
			poisons := map[int]poison{5: trailOnly, 13: unknownAction, 17: blocked, 22: blocked, 26: blocked, 29: trailOnly}
			var good []int
			ctx := ctxTimeout(t, 30*time.Second)
			record := func(from, to int) {
				for i := from; i < to; i++ {
					ev := testEvent(i)
					if p, bad := poisons[i]; bad {
						ev = p.event(i)
					} else {
						good = append(good, i)
					}
					if err := r.Record(ctx, ev); err != nil {
						t.Fatalf("Record %d: %v", i, err)
					}
				}
			}
			record(0, 40)
			if err := r.Flush(ctx); err == nil || !strings.Contains(err.Error(), deadName) {
				t.Errorf("Flush: %v, want it to say events were moved to %s", err, deadName)
			}
			record(40, 45)
			if err := r.Flush(ctx); err != nil {
				t.Errorf("Flush after the refusals: %v", err)
			}
			srv.wantExactlyOnce(good)

			dead := readDeadLetters(t, dir)
			if len(dead) != len(poisons) {
				t.Errorf("dead.ndjson holds %d events, want %d", len(dead), len(poisons))
			}
			for n, p := range poisons {
				dl, ok := dead[strconv.Itoa(n)]
				switch {
				case !ok:
					t.Errorf("event %d (%s) is not in dead.ndjson", n, p.name)
				case dl.Status != http.StatusBadRequest || dl.Code != trail.EINVALID || dl.FailedAt.IsZero() ||
					!refusalNames(p, dl.Errors, dl.Detail+" "+errorsText(dl.Errors)):
					t.Errorf("event %d (%s): dead letter status %d, code %q, detail %q, errors %v, at %v; want 400 %s naming %q, saying %q",
						n, p.name, dl.Status, dl.Code, dl.Detail, dl.Errors, dl.FailedAt, trail.EINVALID, p.path, p.words)
				}
			}
			if st := r.Stats(); st.Refused != 6 || st.DeadLettered != 6 || st.Delivered != int64(len(good)) || st.Pending != 0 || st.Splits == 0 {
				t.Errorf("stats: %+v, want 6 refused and dead-lettered, %d delivered, batches split", st, len(good))
			}
			g.wantKeysOwnBodies(t)
		})
	}
}

// In FailClosed mode only the caller of a refused event gets the refusal;
// the callers whose events rode in the same batch are told their events
// are stored once they are, and later Records go on as before.
func TestPoisonEventFailClosed(t *testing.T) {
	for _, st := range realStores {
		t.Run(st.name, func(t *testing.T) {
			srv, g := newPoisonServer(t, st.open)
			r := newRemote(t, RemoteOptions{URL: srv.url(), Key: srv.key, BatchWait: time.Second})
			poisons := map[int]poison{3: trailOnly, 6: unknownAction, 9: blocked, 12: blocked}
			const n = 16
			errs := make([]error, n)
			var wg sync.WaitGroup
			wg.Go(func() { errs[0] = r.Record(ctxTimeout(t, 20*time.Second), testEvent(0)) })
			<-g.arrived // event 0 is in flight, held: the others batch up behind it
			for i := 1; i < n; i++ {
				ev := testEvent(i)
				if p, bad := poisons[i]; bad {
					ev = p.event(i)
				}
				wg.Go(func() { errs[i] = r.Record(ctxTimeout(t, 20*time.Second), ev) })
			}
			waitFor(t, "the events queued behind the first", func() bool { return r.Stats().Pending == n })
			close(g.release)
			wg.Wait()
			var good []int
			for i, err := range errs {
				p, bad := poisons[i]
				if !bad {
					good = append(good, i)
					if err != nil {
						t.Errorf("Record %d: %v", i, err)
					}
					continue
				}
				if trail.ErrorCode(err) != trail.EINVALID || !refusalNames(p, trail.ErrorFields(err), err.Error()) {
					t.Errorf("Record %d (%s): %v (fields %v), want EINVALID naming %q, saying %q", i, p.name, err, trail.ErrorFields(err), p.path, p.words)
				}
			}
			if err := r.Record(ctxTimeout(t, 10*time.Second), testEvent(n)); err != nil {
				t.Errorf("Record after the refusals: %v", err)
			}
			good = append(good, n)
			srv.wantExactlyOnce(good)
			if st := r.Stats(); st.Refused != 4 || st.DeadLettered != 0 || st.Delivered != int64(len(good)) || st.Pending != 0 || st.Splits == 0 {
				t.Errorf("stats: %+v, want 4 refused, %d delivered, batches split", st, len(good))
			}
			g.wantKeysOwnBodies(t)
		})
	}
}

// A batch refused as a whole is sent in halves, each with its own key
// derived from the refused batch's and the events it holds; a half whose
// answer is lost is sent again under the same key, and the server answers
// with a replay: nothing is stored twice.
func TestSplitRefusedBatch(t *testing.T) {
	for _, mode := range []Mode{FailClosed, Spool} {
		t.Run(mode.String(), func(t *testing.T) {
			g := newGate()
			close(g.release)
			g.block = firewallBlock
			g.lose = 2 // the first half: 0-3
			srv := newTestServer(t, func(h http.Handler) http.Handler { g.h = h; return g })
			r := newRemote(t, RemoteOptions{URL: srv.url(), Key: srv.key, Mode: mode, SpoolDir: t.TempDir(), BatchSize: 8, BatchWait: 10 * time.Second,
				MaxRetryWait: 20 * time.Millisecond})
			r.entering.Add(1) // FailClosed: the batch goes when full
			var wg sync.WaitGroup
			errs := make([]error, 8)
			for i := range 8 {
				ev := testEvent(i)
				if i == 5 {
					ev = blocked.event(i)
				}
				wg.Go(func() { errs[i] = r.Record(ctxTimeout(t, 20*time.Second), ev) })
				if i < 7 { // in order; the eighth fills the batch, which goes
					waitFor(t, "the event to be queued", func() bool { return r.Stats().Pending == int64(i+1) })
				}
			}
			r.entering.Add(-1)
			wg.Wait()
			for i, err := range errs {
				if (err != nil) != (i == 5 && mode == FailClosed) {
					t.Errorf("Record %d: %v", i, err)
				}
			}
			if err := r.Flush(ctxTimeout(t, 10*time.Second)); (err != nil) != (mode == Spool) {
				t.Errorf("Flush: %v", err)
			}
			srv.wantExactlyOnce([]int{0, 1, 2, 3, 4, 6, 7})
			// 0-7 refused; 0-3 stored, its answer lost, resent; 4-7
			// refused; 4-5 refused; 4 stored; 5 refused alone; 6-7 stored.
			if got, want := g.requests(), []int{8, 4, 4, 4, 2, 1, 1, 2}; !slices.Equal(got, want) {
				t.Errorf("requests carried %v events, want %v", got, want)
			}
			keys := g.requestKeys()
			if len(keys) == 8 && (keys[2] != keys[1] || len(slices.Compact(slices.Clone(keys))) != 7) {
				t.Errorf("keys %v: want one of its own for each part, and the resend of 0-3 under the same key", keys)
			}
			g.wantKeysOwnBodies(t)
			if st := r.Stats(); st.Splits != 3 || st.Refused != 1 || st.Delivered != 7 || st.Replayed != 4 {
				t.Errorf("stats: %+v, want 3 splits, 1 refused, 7 delivered of which 4 replayed", st)
			}
		})
	}
}

// subKey derives one key for the same events cut from the same batch, and
// another for anything else.
func TestSubKey(t *testing.T) {
	const parent = "tc-00112233445566778899aabbccddeeff"
	seq := func(q uint64) uint64 { return q }
	k := subKey(parent, []uint64{1, 2, 3}, seq)
	if len(k) != len(newKey()) || !strings.HasPrefix(k, "tc-") {
		t.Errorf("subKey = %q, want the shape of newKey's keys", k)
	}
	for _, tc := range []struct {
		name string
		from string
		seqs []uint64
		same bool
	}{
		{"the same events of the same batch", parent, []uint64{1, 2, 3}, true},
		{"other events", parent, []uint64{1, 2}, false},
		{"the same events in another order", parent, []uint64{2, 1, 3}, false},
		{"the same events cut from another batch", "tc-ffeeddccbbaa99887766554433221100", []uint64{1, 2, 3}, false},
	} {
		if got := subKey(tc.from, tc.seqs, seq); (got == k) != tc.same || got == tc.from {
			t.Errorf("%s: subKey = %q, the first %q: same = %v, want %v", tc.name, got, k, got == k, tc.same)
		}
	}
}

// settle takes a request's events off the parts left to send and puts the
// pieces still to send first.
func TestSettle(t *testing.T) {
	for _, tc := range []struct {
		name   string
		parts  []part
		k      int
		pieces []int
		want   []part
	}{
		{"a new request stored", nil, 5, nil, nil},
		{"a new request refused as a whole", nil, 5, []int{3, 2}, []part{{3, "K"}, {2, "K"}}},
		{"one event of a new request refused", nil, 5, []int{4}, []part{{4, "K"}}},
		{"every event refused", nil, 5, []int{0}, nil},
		{"a part stored", []part{{3, "P"}, {2, "P"}}, 3, nil, []part{{2, "P"}}},
		{"a part refused as a whole", []part{{3, "P"}, {2, "P"}}, 3, []int{2, 1}, []part{{2, "K"}, {1, "K"}, {2, "P"}}},
		{"less than a part sent", []part{{4, "P"}}, 2, nil, []part{{2, "P"}}},
		{"less than a part sent and refused", []part{{4, "P"}}, 2, []int{1, 1}, []part{{1, "K"}, {1, "K"}, {2, "P"}}},
	} {
		if got := settle(slices.Clone(tc.parts), tc.k, "K", tc.pieces...); !slices.Equal(got, tc.want) {
			t.Errorf("%s: settle(%v, %d, K, %v) = %v, want %v", tc.name, tc.parts, tc.k, tc.pieces, got, tc.want)
		}
	}
}

func errorsText(fe []trail.FieldError) string {
	var parts []string
	for _, f := range fe {
		parts = append(parts, f.Path+": "+f.Message)
	}
	return strings.Join(parts, "; ")
}
