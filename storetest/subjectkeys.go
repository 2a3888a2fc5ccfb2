package storetest

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/trailaudit/trail"
)

// RunSubjectKeys runs the conformance suite of trail.SubjectKeyStore, the
// keys of data subjects that package erasure seals personal data under.
// open must return a new, empty key store each time it is called, and
// close it when the test ends (t.Cleanup).
//
// The contract it checks, from trail.SubjectKeyStore:
//
//   - SubjectKeys returns one key per subject asked for, in the order asked
//     (a subject named twice gets its one key twice; no subjects, no keys):
//     a 32-byte key and a non-empty id, created on first use and returned
//     again by every later call; every subject's key is its own.
//   - Keys are per tenant: the same subject in two tenants has two keys,
//     and KeyByID finds a key only in its own tenant.
//   - KeyByID returns the key of an id, or ENOTFOUND for an id unknown to
//     the tenant or whose key was erased.
//   - EraseSubject deletes every key of the subject in the tenant and
//     returns how many (0 for a subject with none), touching no other
//     subject's or tenant's keys. Its keys are gone for good: KeyByID says
//     ENOTFOUND, and SubjectKeys makes a new, different key, never
//     reviving an erased one.
//   - Concurrent calls are safe. Concurrent first calls for one subject
//     all succeed with keys KeyByID finds; a store may then have made more
//     than one key for the subject (PostgreSQL, across connections), but a
//     later call returns one of them every time, and EraseSubject erases
//     and counts them all.
//   - What a caller gets is its own: changing a returned key changes
//     nothing stored.
func RunSubjectKeys(t *testing.T, open func(t *testing.T) trail.SubjectKeyStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s trail.SubjectKeyStore)
	}{
		{"CreatedOnceThenReturned", testSubjectKeysCreatedOnce},
		{"SubjectTwiceInOneCall", testSubjectKeysRepeated},
		{"NoSubjects", testSubjectKeysNone},
		{"ManySubjects", testSubjectKeysMany},
		{"PerTenant", testSubjectKeysPerTenant},
		{"UnknownKey", testSubjectKeysUnknown},
		{"Erase", testSubjectKeysErase},
		{"Concurrent", testSubjectKeysConcurrent},
		{"CallerOwnsKeys", testSubjectKeysOwned},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

// OpenSubjectKeys opens a store's subject keys at where (a file's path, a
// connection string) with open, such as sqlite.OpenSubjectKeys or
// postgres.OpenSubjectKeys, and closes them when the test ends.
func OpenSubjectKeys[K interface {
	trail.SubjectKeyStore
	Close() error
}](tb testing.TB, open func(context.Context, string) (K, error), where string) K {
	tb.Helper()
	k, err := open(context.Background(), where)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { k.Close() })
	return k
}

// subjectKeys calls SubjectKeys and checks the shape of what it returns:
// one key per subject, each of 32 bytes with an id.
func subjectKeys(t *testing.T, s trail.SubjectKeyStore, tenant string, subjects ...string) []trail.SubjectKey {
	t.Helper()
	ks, err := s.SubjectKeys(context.Background(), tenant, subjects)
	if err != nil {
		t.Fatalf("SubjectKeys(%s, %q): %v", tenant, subjects, err)
	}
	if len(ks) != len(subjects) {
		t.Fatalf("SubjectKeys(%s, %q) returned %d keys, want %d", tenant, subjects, len(ks), len(subjects))
	}
	for i, k := range ks {
		if k.ID == "" || len(k.Key) != 32 {
			t.Errorf("SubjectKeys(%s): the key of %q has id %q and %d bytes, want an id and 32 bytes", tenant, subjects[i], k.ID, len(k.Key))
		}
	}
	return ks
}

// wantKey checks that KeyByID finds k in tenant.
func wantKey(t *testing.T, s trail.SubjectKeyStore, tenant string, k trail.SubjectKey) {
	t.Helper()
	got, err := s.KeyByID(context.Background(), tenant, k.ID)
	if err != nil {
		t.Errorf("KeyByID(%s, %s): %v", tenant, k.ID, err)
	} else if !bytes.Equal(got, k.Key) {
		t.Errorf("KeyByID(%s, %s) returned another key than SubjectKeys did", tenant, k.ID)
	}
}

// wantNoKey checks that KeyByID says ENOTFOUND for id in tenant.
func wantNoKey(t *testing.T, s trail.SubjectKeyStore, tenant, id, why string) {
	t.Helper()
	got, err := s.KeyByID(context.Background(), tenant, id)
	if trail.ErrorCode(err) != trail.ENOTFOUND {
		t.Errorf("KeyByID(%s, %q) of %s = %d bytes, %v; want ENOTFOUND", tenant, id, why, len(got), err)
	}
}

func erase(t *testing.T, s trail.SubjectKeyStore, tenant, subject string, want int) {
	t.Helper()
	if n, err := s.EraseSubject(context.Background(), tenant, subject); err != nil || n != want {
		t.Errorf("EraseSubject(%s, %s) = %d, %v; want %d", tenant, subject, n, err, want)
	}
}

func sameKey(a, b trail.SubjectKey) bool { return a.ID == b.ID && bytes.Equal(a.Key, b.Key) }

func testSubjectKeysCreatedOnce(t *testing.T, s trail.SubjectKeyStore) {
	first := subjectKeys(t, s, "acme", "u-1", "u-2")
	if first[0].ID == first[1].ID || bytes.Equal(first[0].Key, first[1].Key) {
		t.Errorf("two subjects got one key: %s, %s", first[0].ID, first[1].ID)
	}
	// Known subjects get their keys again, in the order asked, beside a
	// new one.
	again := subjectKeys(t, s, "acme", "u-2", "u-3", "u-1")
	if !sameKey(again[0], first[1]) || !sameKey(again[2], first[0]) {
		t.Errorf("SubjectKeys of known subjects returned new keys: %s, %s; want %s, %s", again[0].ID, again[2].ID, first[1].ID, first[0].ID)
	}
	if again[1].ID == first[0].ID || again[1].ID == first[1].ID {
		t.Errorf("a new subject got another subject's key %s", again[1].ID)
	}
	for _, k := range append(first, again[1]) {
		wantKey(t, s, "acme", k)
	}
	if k := subjectKeys(t, s, "acme", "u-3"); !sameKey(k[0], again[1]) {
		t.Errorf("u-3's key changed from %s to %s", again[1].ID, k[0].ID)
	}
}

func testSubjectKeysRepeated(t *testing.T, s trail.SubjectKeyStore) {
	ks := subjectKeys(t, s, "acme", "u-1", "u-2", "u-1")
	if !sameKey(ks[0], ks[2]) {
		t.Errorf("a subject named twice in one call got two keys: %s, %s", ks[0].ID, ks[2].ID)
	}
	if k := subjectKeys(t, s, "acme", "u-1"); !sameKey(k[0], ks[0]) {
		t.Errorf("u-1's key changed from %s to %s", ks[0].ID, k[0].ID)
	}
	erase(t, s, "acme", "u-1", 1)
}

func testSubjectKeysNone(t *testing.T, s trail.SubjectKeyStore) {
	ctx := context.Background()
	for _, subjects := range [][]string{nil, {}} {
		if ks, err := s.SubjectKeys(ctx, "acme", subjects); err != nil || len(ks) != 0 {
			t.Errorf("SubjectKeys(acme, %#v) = %v, %v; want no keys", subjects, ks, err)
		}
	}
	erase(t, s, "acme", "u-1", 0)
}

// testSubjectKeysMany: a batch of more subjects than a store may put in
// one statement (SQLite reads 500 at a time), half of them known.
func testSubjectKeysMany(t *testing.T, s trail.SubjectKeyStore) {
	subjects := make([]string, 1200)
	for i := range subjects {
		subjects[i] = fmt.Sprintf("u-%d", i)
	}
	known := subjectKeys(t, s, "acme", subjects[:600]...)
	all := subjectKeys(t, s, "acme", subjects...)
	ids := map[string]bool{}
	for i, k := range all {
		if i < len(known) && !sameKey(k, known[i]) {
			t.Fatalf("the key of %s changed from %s to %s", subjects[i], known[i].ID, k.ID)
		}
		if ids[k.ID] {
			t.Fatalf("key id %s is given to two subjects", k.ID)
		}
		ids[k.ID] = true
	}
	again := subjectKeys(t, s, "acme", subjects...)
	for i := range again {
		if !sameKey(again[i], all[i]) {
			t.Fatalf("the key of %s changed from %s to %s", subjects[i], all[i].ID, again[i].ID)
		}
	}
	wantKey(t, s, "acme", all[len(all)-1])
}

func testSubjectKeysPerTenant(t *testing.T, s trail.SubjectKeyStore) {
	acme := subjectKeys(t, s, "acme", "u-1")[0]
	globex := subjectKeys(t, s, "globex", "u-1")[0]
	if acme.ID == globex.ID || bytes.Equal(acme.Key, globex.Key) {
		t.Fatalf("u-1 of acme and u-1 of globex share a key (%s, %s)", acme.ID, globex.ID)
	}
	wantKey(t, s, "acme", acme)
	wantKey(t, s, "globex", globex)
	wantNoKey(t, s, "globex", acme.ID, "another tenant's key")
	wantNoKey(t, s, "acme", globex.ID, "another tenant's key")
	// Erasing in one tenant leaves the other's subject be.
	erase(t, s, "globex", "u-1", 1)
	wantKey(t, s, "acme", acme)
	if k := subjectKeys(t, s, "acme", "u-1")[0]; !sameKey(k, acme) {
		t.Errorf("erasing globex's u-1 changed acme's u-1 key from %s to %s", acme.ID, k.ID)
	}
	erase(t, s, "initech", "u-1", 0)
	wantKey(t, s, "acme", acme)
}

func testSubjectKeysUnknown(t *testing.T, s trail.SubjectKeyStore) {
	wantNoKey(t, s, "acme", "0123456789abcdef", "an unknown id in an empty store")
	k := subjectKeys(t, s, "acme", "u-1")[0]
	wantNoKey(t, s, "acme", "0123456789abcdef", "an unknown id")
	wantNoKey(t, s, "acme", "", "the empty id")
	wantNoKey(t, s, "acme", "u-1", "a subject (not a key id)")
	erase(t, s, "acme", "nobody", 0)
	erase(t, s, "acme", "", 0)
	wantKey(t, s, "acme", k)
}

func testSubjectKeysErase(t *testing.T, s trail.SubjectKeyStore) {
	ks := subjectKeys(t, s, "acme", "u-1", "u-2")
	erase(t, s, "acme", "u-1", 1)
	wantNoKey(t, s, "acme", ks[0].ID, "an erased key")
	wantKey(t, s, "acme", ks[1])
	// A subject erased and seen again gets a new key; the old one stays
	// erased.
	fresh := subjectKeys(t, s, "acme", "u-1", "u-2")
	if fresh[0].ID == ks[0].ID || bytes.Equal(fresh[0].Key, ks[0].Key) {
		t.Errorf("SubjectKeys after erasure revived the erased key %s", ks[0].ID)
	}
	if !sameKey(fresh[1], ks[1]) {
		t.Errorf("erasing u-1 changed u-2's key from %s to %s", ks[1].ID, fresh[1].ID)
	}
	wantNoKey(t, s, "acme", ks[0].ID, "an erased key, after the subject's new key was made")
	wantKey(t, s, "acme", fresh[0])
	erase(t, s, "acme", "u-1", 1) // the new key
	wantNoKey(t, s, "acme", fresh[0].ID, "an erased key")
	erase(t, s, "acme", "u-1", 0)
	wantKey(t, s, "acme", ks[1])
}

// testSubjectKeysConcurrent: first calls for one new subject at once, each
// with a subject of its own, all succeed; every key made is found, and
// erased and counted with the subject.
func testSubjectKeysConcurrent(t *testing.T, s trail.SubjectKeyStore) {
	ctx := context.Background()
	const n = 8
	got := make([][]trail.SubjectKey, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ks, err := s.SubjectKeys(ctx, "acme", []string{"u-new", fmt.Sprintf("u-%d", i)})
			if err != nil || len(ks) != 2 {
				t.Errorf("SubjectKeys: %d keys, %v", len(ks), err)
				return
			}
			got[i] = ks
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	made := map[string]trail.SubjectKey{}
	for i, ks := range got {
		if k, ok := made[ks[0].ID]; ok && !sameKey(k, ks[0]) {
			t.Errorf("key %s was returned with two values", k.ID)
		}
		made[ks[0].ID] = ks[0]
		wantKey(t, s, "acme", ks[0])
		wantKey(t, s, "acme", ks[1])
		if k := subjectKeys(t, s, "acme", fmt.Sprintf("u-%d", i))[0]; !sameKey(k, ks[1]) {
			t.Errorf("u-%d's key changed from %s to %s", i, ks[1].ID, k.ID)
		}
	}
	t.Logf("%d concurrent first calls for one subject made %d keys", n, len(made))
	// From now on the subject has one current key, one of those made.
	current := subjectKeys(t, s, "acme", "u-new")[0]
	if _, ok := made[current.ID]; !ok {
		t.Errorf("SubjectKeys after the concurrent calls made another key %s", current.ID)
	}
	for range 3 {
		if k := subjectKeys(t, s, "acme", "u-new")[0]; !sameKey(k, current) {
			t.Errorf("u-new's current key changed from %s to %s", current.ID, k.ID)
		}
	}
	// Concurrent reads and erasures of other subjects are safe too.
	for i := range n {
		wg.Go(func() {
			if _, err := s.KeyByID(ctx, "acme", current.ID); err != nil {
				t.Errorf("KeyByID: %v", err)
			}
		})
		wg.Go(func() {
			if c, err := s.EraseSubject(ctx, "acme", fmt.Sprintf("u-%d", i)); err != nil || c != 1 {
				t.Errorf("EraseSubject(u-%d) = %d, %v; want 1", i, c, err)
			}
		})
	}
	wg.Wait()
	erase(t, s, "acme", "u-new", len(made))
	for id := range made {
		wantNoKey(t, s, "acme", id, "an erased key")
	}
}

// testSubjectKeysOwned: a caller that changes the bytes of a key it got,
// from SubjectKeys making it, from SubjectKeys of a known subject or from
// KeyByID, changes nothing stored.
func testSubjectKeysOwned(t *testing.T, s trail.SubjectKeyStore) {
	ctx := context.Background()
	k := subjectKeys(t, s, "acme", "u-1")[0]
	want := bytes.Clone(k.Key)
	spoil := func(b []byte, from string) {
		t.Helper()
		for i := range b {
			b[i] ^= 0xff
		}
		if again := subjectKeys(t, s, "acme", "u-1")[0]; again.ID != k.ID || !bytes.Equal(again.Key, want) {
			t.Errorf("after a change to the key %s returned, SubjectKeys returns another", from)
		}
		if got, err := s.KeyByID(ctx, "acme", k.ID); err != nil || !bytes.Equal(got, want) {
			t.Errorf("after a change to the key %s returned, KeyByID returns another (%v)", from, err)
		}
	}
	spoil(k.Key, "SubjectKeys (making it)")
	spoil(subjectKeys(t, s, "acme", "u-1")[0].Key, "SubjectKeys of a known subject")
	got, err := s.KeyByID(ctx, "acme", k.ID)
	if err != nil {
		t.Fatal(err)
	}
	spoil(got, "KeyByID")
}
