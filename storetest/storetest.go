// Package storetest is the conformance suite of trail.Store: one set of tests
// that every implementation (memory, sqlite, postgres) must pass, so that
// they all keep the same contract.
//
// Call Run from a Store's tests with a function that opens a new, empty
// store built with Validator and Signer.
package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/redact"
	"github.com/trailaudit/trail/tlog"
)

// Validator returns the validator stores under test must be built with: the
// built-in catalog and the default redactor.
func Validator() *trail.Validator {
	return &trail.Validator{Actions: catalog.Default(), Redactor: redact.New(redact.Options{}), Limits: trail.DefaultLimits()}
}

// Run runs the conformance suite. open must return a new, empty store each
// time it is called; the suite closes it.
func Run(t *testing.T, open func(t *testing.T) trail.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s trail.Store)
	}{
		{"AppendAssigns", testAppendAssigns},
		{"SeqContiguousUnderConcurrency", testConcurrentSeq},
		{"BatchIsAtomic", testAtomicBatch},
		{"Idempotency", testIdempotency},
		{"Get", testGet},
		{"GetSeq", testGetSeq},
		{"Scan", testScan},
		{"TenantIsolation", testTenantIsolation},
		{"Tenants", testTenants},
		{"Filters", testFilters},
		{"CursorStableWhileAppending", testCursor},
		{"RedactsBeforeStoring", testRedacts},
		{"TreeAndCheckpoints", testLog},
		{"OpenAttempts", testOpenAttempts},
		{"RefusesTrailRecords", testRefusesTrailRecords},
		{"IdempotencyAcrossAddresses", testIdempotencyAcrossAddresses},
		{"OneMeaning", testOneMeaning},
		{"Index", testIndex},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s)
		})
	}
}

// Durable is a store kept in a database, as the durability tests see it.
type Durable struct {
	// Open opens the store, signing checkpoints with signer (nil: open it
	// read-only). Called again after the last store it opened is closed, it
	// must open the same data.
	Open func(t *testing.T, signer *tlog.Signer) (trail.Store, error)
	// Exec runs one SQL statement on the store's database behind the
	// store's back, as an intruder or a careless operator would.
	Exec func(ctx context.Context, stmt string) error
	// Tamper changes the database behind the store's back (RunTamper).
	Tamper Tamperer
}

// RunDurable runs the tests only a durable store can pass: close and reopen
// keeps everything, and the database itself refuses to change or delete an
// event. newDurable must return a fresh, empty database each call. The
// events table must be named "events".
func RunDurable(t *testing.T, newDurable func(t *testing.T) Durable) {
	t.Run("ReopenKeepsEverything", func(t *testing.T) { testReopen(t, newDurable(t)) })
	t.Run("DatabaseRefusesChanges", func(t *testing.T) { testRefusesChanges(t, newDurable(t)) })
	t.Run("RefusesAnotherKey", func(t *testing.T) { testAnotherKey(t, newDurable(t)) })
}

// open opens d with the test key.
func (d Durable) open(t *testing.T) trail.Store {
	t.Helper()
	s, err := d.Open(t, Signer())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testAnotherKey: a store must not sign a log whose checkpoints another key
// signed (that would fork its history unseen), and without a key it can be
// read but not appended to.
func testAnotherKey(t *testing.T, d Durable) {
	ctx := context.Background()
	s := d.open(t)
	stored := appendOK(t, s, "acme", Login("u-1"))
	s.Close()
	if s, err := d.Open(t, OtherSigner()); err == nil {
		s.Close()
		t.Fatal("the store opened with a key that did not sign its checkpoints")
	} else if !strings.Contains(err.Error(), "acme") {
		t.Errorf("refusal does not name the tenant: %v", err)
	}
	ro, err := d.Open(t, nil)
	if err != nil {
		t.Fatalf("open read-only: %v", err)
	}
	defer ro.Close()
	if _, err := ro.Append(ctx, "acme", []*trail.Event{Login("u-2")}, trail.AppendOptions{}); err == nil {
		t.Error("a store opened without a key appended")
	}
	if diff := cmp.Diff(stored, queryAll(t, ro, trail.Query{Tenant: "acme"})); diff != "" {
		t.Errorf("read-only store reads (-stored +read):\n%s", diff)
	}
}

func testReopen(t *testing.T, d Durable) {
	ctx := context.Background()
	s := d.open(t)
	opts := trail.AppendOptions{IdempotencyKey: "k-1"}
	first, err := s.Append(ctx, "acme", []*trail.Event{Login("u-1"), Login("u-2")}, opts)
	if err != nil {
		t.Fatal(err)
	}
	appendOK(t, s, "globex", Login("u-3"))
	before := queryAll(t, s, trail.Query{Tenant: "acme"})
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := s.Append(ctx, "acme", []*trail.Event{Login("u-1")}, trail.AppendOptions{}); err == nil {
		t.Error("Append on a closed store succeeded")
	}

	s = d.open(t)
	defer s.Close()
	if diff := cmp.Diff(before, queryAll(t, s, trail.Query{Tenant: "acme"})); diff != "" {
		t.Errorf("events changed across close and reopen (-before +after):\n%s", diff)
	}
	again, err := s.Append(ctx, "acme", []*trail.Event{Login("u-1"), Login("u-2")}, opts)
	if err != nil || !again.Replay || !cmp.Equal(first.Events, again.Events) {
		t.Errorf("idempotency key forgotten across reopen: %v, replay %v", err, again != nil && again.Replay)
	}
	if next := appendOK(t, s, "acme", Login("u-4")); next[0].Seq != 3 || !next[0].RecordedAt.After(before[1].RecordedAt.Add(-time.Nanosecond)) {
		t.Errorf("after reopen the next event has seq %d, recorded %v; want seq 3, not before %v", next[0].Seq, next[0].RecordedAt, before[1].RecordedAt)
	}
}

func testRefusesChanges(t *testing.T, d Durable) {
	ctx := context.Background()
	s := d.open(t)
	defer s.Close()
	stored := appendOK(t, s, "acme", Login("u-1"), Login("u-2"))
	for _, stmt := range []string{
		"UPDATE events SET action = 'user_logout'",
		"UPDATE events SET seq = seq + 100 WHERE seq = 2",
		"DELETE FROM events WHERE seq = 1",
		"DELETE FROM events",
	} {
		if err := d.Exec(ctx, stmt); err == nil {
			t.Errorf("the database ran %q: it must refuse to change or delete events", stmt)
		}
	}
	if diff := cmp.Diff(stored, queryAll(t, s, trail.Query{Tenant: "acme"})); diff != "" {
		t.Errorf("events changed (-stored +now):\n%s", diff)
	}
}

// Login returns a valid user_login_success event for actor.
func Login(actor string) *trail.Event {
	return &trail.Event{
		Action:  catalog.UserLoginSuccess,
		Actor:   trail.Actor{ID: actor, Type: trail.ActorUser, Email: actor + "@example.com"},
		Targets: []trail.Target{{Type: "session", ID: "s-" + actor}},
		Request: trail.Request{IP: "203.0.113.7", UserAgent: "Mozilla/5.0", SessionID: "s-" + actor, RequestID: "r-1"},
		Scope:   trail.Scope{Organization: "org-1", Workspace: "ws-1"},
		Context: map[string]any{"method": "password", "mfa": true, "remember_me": false},
	}
}

func appendOK(t *testing.T, s trail.Store, tenant string, evs ...*trail.Event) []*trail.Event {
	t.Helper()
	res, err := s.Append(context.Background(), tenant, evs, trail.AppendOptions{})
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return res.Events
}

func testAppendAssigns(t *testing.T, s trail.Store) {
	in := Login("u-1")
	before := time.Now().Add(-time.Second)
	got := appendOK(t, s, "acme", in, Login("u-2"))
	if len(got) != 2 {
		t.Fatalf("stored %d events, want 2", len(got))
	}
	for i, ev := range got {
		if ev.Seq != uint64(i+1) {
			t.Errorf("event %d: seq %d, want %d", i, ev.Seq, i+1)
		}
		if ev.ID == "" || ev.Tenant != "acme" || ev.RecordedAt.Before(before) || ev.OccurredAt.IsZero() {
			t.Errorf("event %d: id %q tenant %q recorded_at %v occurred_at %v", i, ev.ID, ev.Tenant, ev.RecordedAt, ev.OccurredAt)
		}
		if ev.Category != "authentication" || ev.Outcome != trail.OutcomeSuccess {
			t.Errorf("event %d: category %q outcome %q not filled from the catalog", i, ev.Category, ev.Outcome)
		}
	}
	if in.ID != "" || in.Seq != 0 {
		t.Error("Append modified the caller's event")
	}
	more := appendOK(t, s, "acme", Login("u-3"))
	if more[0].Seq != 3 {
		t.Errorf("next append got seq %d, want 3", more[0].Seq)
	}
}

func testConcurrentSeq(t *testing.T, s trail.Store) {
	const workers, each = 32, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				batch := []*trail.Event{Login(fmt.Sprintf("w%d-%d", w, i))}
				if i%3 == 0 {
					batch = append(batch, Login(fmt.Sprintf("w%d-%d-b", w, i)))
				}
				if _, err := s.Append(context.Background(), "acme", batch, trail.AppendOptions{}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	all := queryAll(t, s, trail.Query{Tenant: "acme"})
	want := workers * (each + (each+2)/3)
	if len(all) != want {
		t.Fatalf("stored %d events, want %d", len(all), want)
	}
	for i, ev := range all {
		if ev.Seq != uint64(i+1) {
			t.Fatalf("position %d holds seq %d: seqs must be contiguous from 1", i, ev.Seq)
		}
	}
}

func testAtomicBatch(t *testing.T, s trail.Store) {
	bad := Login("u-2")
	bad.Actor.Type = "robot"
	_, err := s.Append(context.Background(), "acme", []*trail.Event{Login("u-1"), bad, Login("u-3")}, trail.AppendOptions{})
	if trail.ErrorCode(err) != trail.EINVALID {
		t.Fatalf("Append = %v, want EINVALID", err)
	}
	fe := trail.ErrorFields(err)
	if len(fe) != 1 || fe[0].Path != "[1].actor.type" {
		t.Errorf("field errors %v, want [1].actor.type", fe)
	}
	if all := queryAll(t, s, trail.Query{Tenant: "acme"}); len(all) != 0 {
		t.Fatalf("a refused batch stored %d events", len(all))
	}
	if got := appendOK(t, s, "acme", Login("u-4")); got[0].Seq != 1 {
		t.Errorf("after a refused batch the next seq is %d, want 1", got[0].Seq)
	}
}

func testIdempotency(t *testing.T, s trail.Store) {
	ctx := context.Background()
	opts := trail.AppendOptions{IdempotencyKey: "req-42"}
	first, err := s.Append(ctx, "acme", []*trail.Event{Login("u-1"), Login("u-2")}, opts)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.Append(ctx, "acme", []*trail.Event{Login("u-1"), Login("u-2")}, opts)
	if err != nil {
		t.Fatalf("retried Append: %v", err)
	}
	if !again.Replay {
		t.Error("a retried Append must say it is a replay")
	}
	if diff := cmp.Diff(first.Events, again.Events); diff != "" {
		t.Errorf("a retried Append must return the original events (-first +again):\n%s", diff)
	}
	_, err = s.Append(ctx, "acme", []*trail.Event{Login("u-9")}, opts)
	if trail.ErrorCode(err) != trail.ECONFLICT {
		t.Errorf("same key, other batch: %v, want ECONFLICT", err)
	}
	// Keys are per tenant.
	other, err := s.Append(ctx, "globex", []*trail.Event{Login("u-9")}, opts)
	if err != nil || other.Replay {
		t.Errorf("another tenant's key: %v, replay %v", err, other != nil && other.Replay)
	}
	if all := queryAll(t, s, trail.Query{Tenant: "acme"}); len(all) != 2 {
		t.Errorf("stored %d events, want 2", len(all))
	}
}

func testGet(t *testing.T, s trail.Store) {
	stored := appendOK(t, s, "acme", Login("u-1"))[0]
	got, err := s.Get(context.Background(), "acme", stored.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(stored, got); diff != "" {
		t.Errorf("Get differs from what Append returned (-append +get):\n%s", diff)
	}
	if _, err := s.Get(context.Background(), "acme", "no-such-id"); trail.ErrorCode(err) != trail.ENOTFOUND {
		t.Errorf("Get(unknown) = %v, want ENOTFOUND", err)
	}
}

func testGetSeq(t *testing.T, s trail.Store) {
	ctx := context.Background()
	stored := appendOK(t, s, "acme", Login("u-1"), Login("u-2"))
	got, err := s.GetSeq(ctx, "acme", 2)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(stored[1], got); diff != "" {
		t.Errorf("GetSeq(2) differs from what Append returned (-append +get):\n%s", diff)
	}
	for _, seq := range []uint64{0, 3, 1 << 62} {
		if _, err := s.GetSeq(ctx, "acme", seq); trail.ErrorCode(err) != trail.ENOTFOUND {
			t.Errorf("GetSeq(%d) = %v, want ENOTFOUND", seq, err)
		}
	}
	if _, err := s.GetSeq(ctx, "globex", 1); trail.ErrorCode(err) != trail.ENOTFOUND {
		t.Errorf("GetSeq on another tenant = %v, want ENOTFOUND", err)
	}
}

func testScan(t *testing.T, s trail.Store) {
	ctx := context.Background()
	var stored []*trail.Event
	for i := range 7 {
		stored = append(stored, appendOK(t, s, "acme", Login(fmt.Sprintf("u-%d", i)), Login(fmt.Sprintf("v-%d", i)))...)
	}
	appendOK(t, s, "globex", Login("u-1"))
	scan := func(from, to uint64) []*trail.Event {
		t.Helper()
		var got []*trail.Event
		if err := s.Scan(ctx, "acme", from, to, func(ev *trail.Event) error {
			got = append(got, ev)
			return nil
		}); err != nil {
			t.Fatalf("Scan(%d, %d): %v", from, to, err)
		}
		return got
	}
	for _, tc := range []struct {
		from, to uint64
		want     []*trail.Event
	}{
		{1, 0, stored},
		{0, 0, stored},
		{3, 6, stored[2:5]},
		{14, 0, stored[13:]},
		{15, 0, nil},
		{5, 5, nil},
		{10, 100, stored[9:]},
	} {
		if diff := cmp.Diff(tc.want, scan(tc.from, tc.to)); diff != "" {
			t.Errorf("Scan(%d, %d) (-want +got):\n%s", tc.from, tc.to, diff)
		}
	}
	// Scan stops at fn's first error and returns it.
	stop := fmt.Errorf("enough")
	n := 0
	err := s.Scan(ctx, "acme", 1, 0, func(*trail.Event) error {
		if n++; n == 3 {
			return stop
		}
		return nil
	})
	if err != stop || n != 3 {
		t.Errorf("Scan returned %v after %d calls, want %v after 3", err, n, stop)
	}
	// A scan to the end stops at the end as of its start, even while
	// appends go on inside it.
	n = 0
	if err := s.Scan(ctx, "acme", 1, 0, func(*trail.Event) error {
		n++
		if n == 1 {
			appendOK(t, s, "acme", Login("late"))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != len(stored) {
		t.Errorf("Scan to the end saw %d events, want the %d there when it began", n, len(stored))
	}
	if c, err := s.Count(ctx, trail.Query{Tenant: "acme"}); err != nil || c != int64(len(stored)+1) {
		t.Errorf("Count = %d, %v; want %d", c, err, len(stored)+1)
	}
}

func testTenantIsolation(t *testing.T, s trail.Store) {
	a := appendOK(t, s, "acme", Login("u-1"))[0]
	b := appendOK(t, s, "globex", Login("u-1"))[0]
	if b.Seq != 1 {
		t.Errorf("each tenant has its own sequence: globex's first seq is %d", b.Seq)
	}
	if _, err := s.Get(context.Background(), "globex", a.ID); trail.ErrorCode(err) != trail.ENOTFOUND {
		t.Errorf("globex can Get acme's event: %v", err)
	}
	for _, ev := range queryAll(t, s, trail.Query{Tenant: "globex", ActorID: "u-1"}) {
		if ev.Tenant != "globex" {
			t.Errorf("a globex query returned a %s event", ev.Tenant)
		}
	}
}

func testRedacts(t *testing.T, s trail.Store) {
	ev := Login("u-1")
	ev.Context["password"] = "hunter2"
	ev.Reason = "card 4111 1111 1111 1111 on file"
	got := appendOK(t, s, "acme", ev)[0]
	back, err := s.Get(context.Background(), "acme", got.ID)
	if err != nil {
		t.Fatal(err)
	}
	if back.Context["password"] == "hunter2" || back.Reason != "card ****1111 on file" {
		t.Errorf("stored context %v reason %q: secrets must be redacted before storing", back.Context, back.Reason)
	}
	if !slices.Contains(back.Redacted, "context.password") || !slices.Contains(back.Redacted, "reason") {
		t.Errorf("redacted = %v", back.Redacted)
	}
}

// queryAll pages through every event matching q.
func queryAll(t *testing.T, s trail.Store, q trail.Query) []*trail.Event {
	t.Helper()
	var out []*trail.Event
	for {
		p, err := s.Query(context.Background(), q)
		if err != nil {
			t.Fatalf("Query: %v", err)
		}
		out = append(out, p.Events...)
		if p.Next == "" {
			return out
		}
		q.Cursor = p.Next
	}
}

func testFilters(t *testing.T, s trail.Store) {
	at := func(h int) time.Time { return time.Date(2026, 11, 24, h, 0, 0, 0, time.UTC) }
	login := Login("u-1")
	login.OccurredAt = at(9)
	failed := &trail.Event{Action: catalog.UserLoginFailed, OccurredAt: at(10),
		Actor: trail.Actor{ID: "u-2", Type: trail.ActorUser}, Scope: trail.Scope{Organization: "org-1", Workspace: "ws-2", Team: "t-1"},
		Context: map[string]any{"reason": "invalid_password", "attempts": 3, "email": "b@example.com"}}
	export := &trail.Event{Action: catalog.DataExported, OccurredAt: at(11), CorrelationID: "c-1",
		Actor: trail.Actor{ID: "svc-1", Type: trail.ActorService}, Targets: []trail.Target{{Type: "report", ID: "r-1"}},
		Scope: trail.Scope{Organization: "org-2"}}
	denied := &trail.Event{Action: catalog.AccessDenied, OccurredAt: at(12),
		Actor: trail.Actor{ID: "u-1", Type: trail.ActorUser}, Targets: []trail.Target{{Type: "document", ID: "d-1"}, {Type: "workspace", ID: "ws-1"}, {Type: "folder", ID: "ws-1"}},
		Scope: trail.Scope{Organization: "org-1", Workspace: "ws-1", Team: "t-1"}}
	approved := &trail.Event{Action: catalog.EntryApproved, OccurredAt: at(13), CorrelationID: "c-1",
		Actor: trail.Actor{ID: "u-3", Type: trail.ActorUser}, Targets: []trail.Target{{Type: "entry", ID: "e-1"}},
		Scope: trail.Scope{Organization: "org-1", Workspace: "ws-1"}}
	var stored []*trail.Event
	for _, ev := range []*trail.Event{login, failed, export, denied, approved} {
		stored = append(stored, appendOK(t, s, "acme", ev)...)
		time.Sleep(2 * time.Millisecond) // distinct recorded_at values
	}
	appendOK(t, s, "globex", Login("u-1")) // never matches an acme query

	for _, tc := range []struct {
		name string
		q    trail.Query
		want []uint64 // seqs, in order
	}{
		{"everything", trail.Query{}, []uint64{1, 2, 3, 4, 5}},
		{"newest first", trail.Query{Descending: true}, []uint64{5, 4, 3, 2, 1}},
		{"actor", trail.Query{ActorID: "u-1"}, []uint64{1, 4}},
		{"actor type", trail.Query{ActorType: trail.ActorService}, []uint64{3}},
		{"one action", trail.Query{Actions: []string{catalog.UserLoginFailed}}, []uint64{2}},
		{"several actions", trail.Query{Actions: []string{catalog.UserLoginSuccess, catalog.AccessDenied}}, []uint64{1, 4}},
		{"several actions, newest first", trail.Query{Actions: []string{catalog.EntryApproved, catalog.UserLoginSuccess, catalog.AccessDenied}, Descending: true}, []uint64{5, 4, 1}},
		{"an action named twice", trail.Query{Actions: []string{catalog.AccessDenied, catalog.AccessDenied}}, []uint64{4}},
		{"category", trail.Query{Category: "authentication"}, []uint64{1, 2}},
		{"outcome", trail.Query{Outcome: trail.OutcomeDenied}, []uint64{4}},
		{"target type", trail.Query{TargetType: "document"}, []uint64{4}},
		{"target id (named twice on one event)", trail.Query{TargetID: "ws-1"}, []uint64{4}},
		{"target type and id", trail.Query{TargetType: "folder", TargetID: "ws-1"}, []uint64{4}},
		{"target type and id on one target", trail.Query{TargetType: "document", TargetID: "ws-1"}, nil},
		{"organization", trail.Query{Organization: "org-1"}, []uint64{1, 2, 4, 5}},
		{"workspace", trail.Query{Workspace: "ws-1"}, []uint64{1, 4, 5}},
		{"team", trail.Query{Team: "t-1"}, []uint64{2, 4}},
		{"correlation", trail.Query{CorrelationID: "c-1"}, []uint64{3, 5}},
		{"occurred range", trail.Query{OccurredAfter: at(10), OccurredBefore: at(12)}, []uint64{2, 3}},
		{"recorded after (inclusive)", trail.Query{RecordedAfter: stored[2].RecordedAt}, []uint64{3, 4, 5}},
		{"recorded before (exclusive)", trail.Query{RecordedBefore: stored[2].RecordedAt}, []uint64{1, 2}},
		{"actor and time range", trail.Query{ActorID: "u-1", OccurredAfter: at(10)}, []uint64{4}},
		{"action and workspace", trail.Query{Actions: []string{catalog.EntryApproved, catalog.UserLoginFailed}, Workspace: "ws-1"}, []uint64{5}},
		{"organization, category and outcome", trail.Query{Organization: "org-1", Category: "authentication", Outcome: trail.OutcomeFailure}, []uint64{2}},
		{"nothing matches", trail.Query{ActorID: "nobody"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.q.Tenant = "acme"
			var got []uint64
			for _, ev := range queryAll(t, s, tc.q) {
				got = append(got, ev.Seq)
				if !tc.q.Matches(ev) {
					t.Errorf("seq %d does not match the query by trail.Query.Matches", ev.Seq)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("seqs (-want +got):\n%s", diff)
			}
			// Paging one event at a time finds the same events.
			one := tc.q
			one.Limit = 1
			var paged []uint64
			for _, ev := range queryAll(t, s, one) {
				paged = append(paged, ev.Seq)
			}
			if diff := cmp.Diff(tc.want, paged); diff != "" {
				t.Errorf("paging by one (-want +got):\n%s", diff)
			}
			if n, err := s.Count(context.Background(), tc.q); err != nil || n != int64(len(tc.want)) {
				t.Errorf("Count = %d, %v; want %d", n, err, len(tc.want))
			}
		})
	}

	for _, q := range []trail.Query{{}, {Tenant: "acme", Limit: -1}, {Tenant: "acme", Limit: trail.MaxPageSize + 1}, {Tenant: "acme", Cursor: "garbage"}} {
		if _, err := s.Query(context.Background(), q); trail.ErrorCode(err) != trail.EINVALID {
			t.Errorf("Query(%+v) = %v, want EINVALID", q, err)
		}
	}
}

func testCursor(t *testing.T, s trail.Store) {
	ctx := context.Background()
	add := func(n int) {
		for i := range n {
			appendOK(t, s, "acme", Login(fmt.Sprintf("u-%d", i)))
		}
	}
	for _, desc := range []bool{false, true} {
		t.Run(fmt.Sprintf("descending=%v", desc), func(t *testing.T) {
			add(25)
			q := trail.Query{Tenant: "acme", Limit: 10, Descending: desc}
			var seqs []uint64
			for page := 0; ; page++ {
				p, err := s.Query(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				if len(p.Events) > 10 {
					t.Fatalf("page of %d events, limit 10", len(p.Events))
				}
				for _, ev := range p.Events {
					seqs = append(seqs, ev.Seq)
				}
				if page == 0 {
					add(5) // new events arrive between pages
				}
				if p.Next == "" {
					break
				}
				q.Cursor = p.Next
			}
			for i := 1; i < len(seqs); i++ {
				if (desc && seqs[i] != seqs[i-1]-1) || (!desc && seqs[i] != seqs[i-1]+1) {
					t.Fatalf("pages skipped or repeated an event: %v", seqs)
				}
			}
			if desc && seqs[len(seqs)-1] != 1 {
				t.Errorf("newest-first paging must end at seq 1: %v", seqs)
			}
			if !desc && len(seqs) != 30 {
				t.Errorf("oldest-first paging must reach the events added meanwhile: got %d events", len(seqs))
			}
			// A cursor of one direction is refused by the other.
			if q.Cursor != "" {
				q.Descending = !q.Descending
				if _, err := s.Query(ctx, q); trail.ErrorCode(err) != trail.EINVALID {
					t.Errorf("cursor used the other way: %v, want EINVALID", err)
				}
			}
		})
	}
}

// testOpenAttempts: attempts whose correlation id has no outcome yet are
// listed, in the tenant's log only, bounded by recorded time.
func testOpenAttempts(t *testing.T, s trail.Store) {
	attempt := func(corr string) *trail.Event {
		return &trail.Event{Action: catalog.UserLoginAttempted, CorrelationID: corr, Actor: trail.Actor{ID: "u-1", Type: trail.ActorUser},
			Context: map[string]any{"email": "u1@example.com", "method": "password"}}
	}
	outcome := func(corr string, ok bool) *trail.Event {
		if ok {
			ev := Login("u-1")
			ev.CorrelationID = corr
			return ev
		}
		return &trail.Event{Action: catalog.UserLoginFailed, CorrelationID: corr, Actor: trail.Actor{ID: "u-1", Type: trail.ActorUser},
			Context: map[string]any{"reason": "invalid_password", "attempts": 1, "email": "u1@example.com"}}
	}
	seqs := func(evs []*trail.Event) []uint64 {
		var out []uint64
		for _, ev := range evs {
			out = append(out, ev.Seq)
		}
		return out
	}
	appendOK(t, s, "acme", attempt("c-a"))         // 1: finished below
	b := appendOK(t, s, "acme", attempt("c-b"))[0] // 2: open (globex's c-b does not close it)
	appendOK(t, s, "acme", attempt(""))            // 3: no correlation id: cannot be matched
	appendOK(t, s, "acme", attempt("c-c"))         // 4: failed below
	appendOK(t, s, "acme", outcome("c-a", true))   // 5
	appendOK(t, s, "acme", outcome("c-c", false))  // 6
	appendOK(t, s, "globex", outcome("c-b", true)) // another tenant's outcome
	time.Sleep(2 * time.Millisecond)
	d := appendOK(t, s, "acme", attempt("c-d"))[0] // 7: open, recorded last

	for _, tc := range []struct {
		name string
		q    trail.Query
		want []uint64
	}{
		{"open attempts", trail.Query{OpenAttempts: true}, []uint64{b.Seq, d.Seq}},
		{"newest first", trail.Query{OpenAttempts: true, Descending: true}, []uint64{d.Seq, b.Seq}},
		{"begun before a time", trail.Query{OpenAttempts: true, RecordedBefore: d.RecordedAt}, []uint64{b.Seq}},
		{"with another filter", trail.Query{OpenAttempts: true, CorrelationID: "c-d"}, []uint64{d.Seq}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.q.Tenant = "acme"
			if got := seqs(queryAll(t, s, tc.q)); !slices.Equal(got, tc.want) {
				t.Errorf("seqs %v, want %v", got, tc.want)
			}
			if n, err := s.Count(context.Background(), tc.q); err != nil || n != int64(len(tc.want)) {
				t.Errorf("Count = %d, %v; want %d", n, err, len(tc.want))
			}
		})
	}
}
