package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/trailaudit/trail"
)

// RunSessions runs the conformance suite of trail.SessionStore. open must
// return a new, empty store each time it is called; the suite closes it
// when it has a Close method.
func RunSessions(t *testing.T, open func(t *testing.T) trail.SessionStore) {
	runEach(t, open, []storeCase[trail.SessionStore]{
		{"CreateAndTouch", testSessionRoundTrip},
		{"DuplicateHash", testSessionConflict},
		{"Invalid", testSessionInvalid},
		{"Unknown", testSessionUnknown},
		{"IdleTimeout", testSessionIdle},
		{"AbsoluteTimeout", testSessionAbsolute},
		{"Delete", testSessionDelete},
		{"DeleteKeySessions", testSessionDeleteKey},
		{"DeleteEnded", testSessionDeleteEnded},
		{"ConcurrentTouches", testSessionConcurrent},
	})
}

// RunSessionsDurable runs the test of sessions only a durable store can
// pass: they survive close and reopen, also when the store is opened
// without a signer (they are not events). newDurable must return a fresh,
// empty database each call, whose Open returns a store that is also a
// trail.SessionStore.
func RunSessionsDurable(t *testing.T, newDurable func(t *testing.T) Durable) {
	t.Run("ReopenKeepsSessions", func(t *testing.T) {
		d := newDurable(t)
		s := sessionStore(t, d)
		a := newSession(t, "acme", "0123456789ab", 0)
		createSession(t, s, a)
		s.(trail.Store).Close()
		s = sessionStore(t, d)
		defer s.(trail.Store).Close()
		if diff := cmp.Diff(a, touch(t, s, a.Hash, sessionTime.Add(time.Second))); diff != "" {
			t.Errorf("session changed across close and reopen (-before +after):\n%s", diff)
		}
	})
}

func sessionStore(t *testing.T, d Durable) trail.SessionStore {
	t.Helper()
	s, err := d.Open(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	ss, ok := s.(trail.SessionStore)
	if !ok {
		s.Close()
		t.Fatalf("%T is not a trail.SessionStore", s)
	}
	return ss
}

// sessionTime is a time with nanoseconds, in a zone other than UTC: stores
// must keep the instant exactly.
var sessionTime = time.Date(2026, 12, 3, 10, 30, 0, 123456789, time.FixedZone("CET", 3600))

// newSession returns a key session of keyID in tenant, created after
// sessionTime, with a 30-minute idle timeout and a 12-hour expiry, as
// the store must return it (times in UTC).
func newSession(t *testing.T, tenant, keyID string, after time.Duration) *trail.Session {
	t.Helper()
	_, hash, err := trail.NewSessionID()
	if err != nil {
		t.Fatal(err)
	}
	at := sessionTime.Add(after).UTC()
	return &trail.Session{Hash: hash, Tenant: tenant, Kind: trail.SessionKey, KeyID: keyID,
		CreatedAt: at, SeenAt: at, Idle: 30 * time.Minute, ExpiresAt: at.Add(12 * time.Hour)}
}

func createSession(t *testing.T, s trail.SessionStore, ss *trail.Session) {
	t.Helper()
	if err := s.CreateSession(context.Background(), ss); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
}

func touch(t *testing.T, s trail.SessionStore, hash []byte, now time.Time) *trail.Session {
	t.Helper()
	got, err := s.TouchSession(context.Background(), hash, now)
	if err != nil {
		t.Fatalf("TouchSession at %v: %v", now, err)
	}
	return got
}

// ended fails unless the session of hash is not found at now.
func ended(t *testing.T, s trail.SessionStore, hash []byte, now time.Time, why string) {
	t.Helper()
	if got, err := s.TouchSession(context.Background(), hash, now); trail.ErrorCode(err) != trail.ENOTFOUND {
		t.Errorf("%s: TouchSession = %+v, %v; want ENOTFOUND", why, got, err)
	}
}

// Every field comes back as created, times as the same instants in UTC;
// a person's session too. A use moves SeenAt (stored: the next touch sees
// it), a use within Session.Touch's step does not.
func testSessionRoundTrip(t *testing.T, s trail.SessionStore) {
	a := newSession(t, "acme", "0123456789ab", 0)
	in := *a
	in.CreatedAt, in.SeenAt, in.ExpiresAt = in.CreatedAt.In(sessionTime.Location()), in.SeenAt.In(sessionTime.Location()), in.ExpiresAt.In(sessionTime.Location())
	createSession(t, s, &in)
	if diff := cmp.Diff(a, touch(t, s, a.Hash, sessionTime.Add(30*time.Second))); diff != "" {
		t.Errorf("touched within the step (-created +got):\n%s", diff)
	}
	later := sessionTime.Add(10 * time.Minute)
	want := *a
	want.SeenAt = later.UTC()
	if diff := cmp.Diff(&want, touch(t, s, a.Hash, later)); diff != "" {
		t.Errorf("touched 10 minutes on (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(&want, touch(t, s, a.Hash, later.Add(time.Second))); diff != "" {
		t.Errorf("the use 10 minutes on was not stored (-want +got):\n%s", diff)
	}

	p := newSession(t, "globex", "", 0)
	p.Kind, p.Subject, p.Name = trail.SessionPerson, "https://idp.example.com/#ann", "ann@example.com"
	p.Scopes = []trail.KeyScope{trail.ScopeRead, trail.ScopeExport}
	createSession(t, s, p)
	if diff := cmp.Diff(p, touch(t, s, p.Hash, sessionTime)); diff != "" {
		t.Errorf("a person's session (-created +got):\n%s", diff)
	}
	if got := touch(t, s, a.Hash, later.Add(2*time.Second)); got.Name != "" || got.Scopes != nil {
		t.Errorf("a key's session came back with name %q and scopes %v; want none", got.Name, got.Scopes)
	}
}

// A hash is one session's; the first stays.
func testSessionConflict(t *testing.T, s trail.SessionStore) {
	a := newSession(t, "acme", "0123456789ab", 0)
	createSession(t, s, a)
	b := *newSession(t, "globex", "ba9876543210", time.Minute)
	b.Hash = a.Hash
	if err := s.CreateSession(context.Background(), &b); trail.ErrorCode(err) != trail.ECONFLICT {
		t.Fatalf("a second session of one hash: %v, want ECONFLICT", err)
	}
	if got := touch(t, s, a.Hash, sessionTime); got.Tenant != "acme" {
		t.Errorf("the first session was replaced: %+v", got)
	}
}

// A bad session is refused naming the field, and nothing is stored.
func testSessionInvalid(t *testing.T, s trail.SessionStore) {
	a := newSession(t, "acme", "", 0)
	err := s.CreateSession(context.Background(), a)
	if f := trail.ErrorFields(err); trail.ErrorCode(err) != trail.EINVALID || len(f) != 1 || f[0].Path != "key_id" {
		t.Fatalf("CreateSession without a key: %v %v, want EINVALID naming key_id", err, f)
	}
	ended(t, s, a.Hash, sessionTime, "a refused session")
	if err := s.CreateSession(context.Background(), nil); trail.ErrorCode(err) != trail.EINVALID {
		t.Errorf("CreateSession(nil): %v, want EINVALID", err)
	}
}

func testSessionUnknown(t *testing.T, s trail.SessionStore) {
	createSession(t, s, newSession(t, "acme", "0123456789ab", 0))
	ended(t, s, newSession(t, "acme", "0123456789ab", 0).Hash, sessionTime, "an unknown hash")
	ended(t, s, nil, sessionTime, "no hash")
	ctx := context.Background()
	if err := s.DeleteSession(ctx, newSession(t, "acme", "x", 0).Hash); trail.ErrorCode(err) != trail.ENOTFOUND {
		t.Errorf("DeleteSession of an unknown hash: %v, want ENOTFOUND", err)
	}
	if n, err := s.DeleteKeySessions(ctx, "ffffffffffff"); n != 0 || err != nil {
		t.Errorf("DeleteKeySessions of a key with none: %d, %v", n, err)
	}
}

// Unused for its idle timeout, a session has ended: it is not returned,
// though it is still stored, and a later use does not revive it.
func testSessionIdle(t *testing.T, s trail.SessionStore) {
	a := newSession(t, "acme", "0123456789ab", 0)
	createSession(t, s, a)
	touch(t, s, a.Hash, sessionTime.Add(29*time.Minute))
	touch(t, s, a.Hash, sessionTime.Add(58*time.Minute)) // 29 minutes after the last use
	ended(t, s, a.Hash, sessionTime.Add(88*time.Minute), "idle for 30 minutes")
	ended(t, s, a.Hash, sessionTime.Add(89*time.Minute), "used again after it ended")
}

// However much it is used, a session ends at its expiry.
func testSessionAbsolute(t *testing.T, s trail.SessionStore) {
	a := newSession(t, "acme", "0123456789ab", 0)
	createSession(t, s, a)
	at := sessionTime
	for at.Before(sessionTime.Add(12 * time.Hour)) {
		touch(t, s, a.Hash, at)
		at = at.Add(20 * time.Minute)
	}
	ended(t, s, a.Hash, sessionTime.Add(12*time.Hour), "at its expiry")
}

// A deleted session is gone at once; deleting it again is ENOTFOUND.
func testSessionDelete(t *testing.T, s trail.SessionStore) {
	a, b := newSession(t, "acme", "0123456789ab", 0), newSession(t, "acme", "0123456789ab", time.Second)
	createSession(t, s, a)
	createSession(t, s, b)
	ctx := context.Background()
	if err := s.DeleteSession(ctx, a.Hash); err != nil {
		t.Fatal(err)
	}
	ended(t, s, a.Hash, sessionTime, "deleted")
	if err := s.DeleteSession(ctx, a.Hash); trail.ErrorCode(err) != trail.ENOTFOUND {
		t.Errorf("DeleteSession again: %v, want ENOTFOUND", err)
	}
	touch(t, s, b.Hash, sessionTime.Add(time.Second)) // the key's other session stays
}

// Ending a key's sessions ends all of them, of every tenant, and no other.
func testSessionDeleteKey(t *testing.T, s trail.SessionStore) {
	var mine []*trail.Session
	for i, tenant := range []string{"acme", "acme", "globex"} {
		ss := newSession(t, tenant, "0123456789ab", time.Duration(i)*time.Second)
		createSession(t, s, ss)
		mine = append(mine, ss)
	}
	other := newSession(t, "acme", "ba9876543210", 0)
	createSession(t, s, other)
	n, err := s.DeleteKeySessions(context.Background(), "0123456789ab")
	if err != nil || n != 3 {
		t.Fatalf("DeleteKeySessions = %d, %v; want 3", n, err)
	}
	for _, ss := range mine {
		ended(t, s, ss.Hash, sessionTime.Add(time.Minute), "its key's sessions were deleted")
	}
	touch(t, s, other.Hash, sessionTime.Add(time.Minute))
	if n, err := s.DeleteKeySessions(context.Background(), "0123456789ab"); n != 0 || err != nil {
		t.Errorf("DeleteKeySessions again = %d, %v; want 0", n, err)
	}
}

// DeleteEndedSessions removes the sessions ended at now, idle or expired,
// and no live one: a removed session is not found even when asked about
// at a time it was live.
func testSessionDeleteEnded(t *testing.T, s trail.SessionStore) {
	idle := newSession(t, "acme", "0123456789ab", 0)                                  // idle from +30m
	used := newSession(t, "acme", "0123456789ab", 0)                                  // used at +20m: idle from +50m
	expiring := newSession(t, "globex", "ba9876543210", -12*time.Hour+40*time.Minute) // expires at +40m
	fresh := newSession(t, "acme", "0123456789ab", 40*time.Minute)
	for _, ss := range []*trail.Session{idle, used, expiring, fresh} {
		createSession(t, s, ss)
	}
	for at := sessionTime.Add(-12*time.Hour + 40*time.Minute); at.Before(sessionTime.Add(40 * time.Minute)); at = at.Add(20 * time.Minute) {
		touch(t, s, expiring.Hash, at)
	}
	touch(t, s, used.Hash, sessionTime.Add(20*time.Minute))
	n, err := s.DeleteEndedSessions(context.Background(), sessionTime.Add(45*time.Minute))
	if err != nil || n != 2 {
		t.Fatalf("DeleteEndedSessions = %d, %v; want 2 (the idle one, the expired one)", n, err)
	}
	ended(t, s, idle.Hash, sessionTime.Add(time.Minute), "removed as idle")
	ended(t, s, expiring.Hash, sessionTime.Add(time.Minute), "removed as expired")
	touch(t, s, used.Hash, sessionTime.Add(45*time.Minute))
	touch(t, s, fresh.Hash, sessionTime.Add(45*time.Minute))
}

// Touches racing from many requests all succeed, and SeenAt ends at the
// latest of them: it never moves back.
func testSessionConcurrent(t *testing.T, s trail.SessionStore) {
	a := newSession(t, "acme", "0123456789ab", 0)
	createSession(t, s, a)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.TouchSession(context.Background(), a.Hash, sessionTime.Add(time.Duration(i+1)*time.Minute))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("a concurrent touch: %v", err)
		}
	}
	// Asked within the step after the latest, the stored SeenAt is what
	// comes back: anything earlier would move to the time asked.
	last := sessionTime.Add(16 * time.Minute).UTC()
	if got := touch(t, s, a.Hash, last.Add(30*time.Second)); !got.SeenAt.Equal(last) {
		t.Errorf("after concurrent touches SeenAt = %v, want the latest, %v", got.SeenAt, last)
	}
}
