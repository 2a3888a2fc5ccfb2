package storetest

import (
	"context"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/trailaudit/trail"
)

// KeyStore is what RunKeys tests: a store's API keys and saved custom
// actions.
type KeyStore interface {
	trail.KeyStore
	trail.ActionStore
	Close() error
}

// RunKeys runs the conformance suite of trail.KeyStore and
// trail.ActionStore. open must return a new, empty store each time it is
// called; the suite closes it.
func RunKeys(t *testing.T, open func(t *testing.T) KeyStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s KeyStore)
	}{
		{"CreateAndGet", testKeyRoundTrip},
		{"DuplicateID", testKeyConflict},
		{"Invalid", testKeyInvalid},
		{"UnknownID", testKeyNotFound},
		{"ListByTenantInOrder", testKeyList},
		{"Revoke", testKeyRevoke},
		{"Authenticate", testKeyAuthenticate},
		{"Concurrent", testKeyConcurrent},
		{"SaveAction", testSaveAction},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s)
		})
	}
}

// RunKeysDurable runs the tests of API keys and saved actions only a
// durable store can pass: they survive close and reopen, also when the
// store is opened without a signer (they are not events), and the database
// itself refuses to delete a key or change one but to revoke it once.
// newDurable must return a fresh, empty database each call, whose
// Open returns a store that is also a KeyStore.
func RunKeysDurable(t *testing.T, newDurable func(t *testing.T) Durable) {
	t.Run("ReopenKeepsKeys", func(t *testing.T) { testKeysReopen(t, newDurable(t)) })
	t.Run("DatabaseRefusesKeyChanges", func(t *testing.T) { testKeysRefuseChanges(t, newDurable(t)) })
}

// keyTime is a time with nanoseconds, in a zone other than UTC: stores
// must keep the instant exactly.
var keyTime = time.Date(2026, 11, 24, 10, 30, 0, 123456789, time.FixedZone("CET", 3600))

// newKey makes a key with trail.NewAPIKey and returns its text and record.
func newKey(t *testing.T, tenant, name string, at time.Time, scopes ...trail.KeyScope) (string, *trail.APIKey) {
	t.Helper()
	text, k, err := trail.NewAPIKey(tenant, name, scopes, at)
	if err != nil {
		t.Fatal(err)
	}
	return text, k
}

func createKey(t *testing.T, s trail.KeyStore, k *trail.APIKey) {
	t.Helper()
	if err := s.CreateKey(context.Background(), k); err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
}

func getKey(t *testing.T, s trail.KeyStore, id string) *trail.APIKey {
	t.Helper()
	k, err := s.Key(context.Background(), id)
	if err != nil {
		t.Fatalf("Key(%q): %v", id, err)
	}
	return k
}

func listKeys(t *testing.T, s trail.KeyStore, tenant string) []*trail.APIKey {
	t.Helper()
	ks, err := s.Keys(context.Background(), tenant)
	if err != nil {
		t.Fatalf("Keys(%q): %v", tenant, err)
	}
	return ks
}

func keyIDs(ks []*trail.APIKey) []string {
	ids := make([]string, len(ks))
	for i, k := range ks {
		ids[i] = k.ID
	}
	return ids
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := trail.ErrorCode(err); got != code {
		t.Errorf("%s = %v (code %q), want code %q", what, err, got, code)
	}
}

func testKeyRoundTrip(t *testing.T, s KeyStore) {
	_, k := newKey(t, "acme", "ci deploys", keyTime, trail.ScopeRead, trail.ScopeIngest, trail.ScopeExport)
	want := *k
	want.Scopes = slices.Clone(k.Scopes)
	want.Hash = slices.Clone(k.Hash)
	createKey(t, s, k)
	// The store keeps its own copy: changing the caller's record or the one
	// returned changes nothing stored.
	k.Scopes[0], k.Hash[0], k.Name = trail.ScopeAdmin, k.Hash[0]+1, "changed"
	got := getKey(t, s, want.ID)
	if diff := cmp.Diff(&want, got); diff != "" {
		t.Errorf("Key returned another record than was created (-created +got):\n%s", diff)
	}
	if !got.CreatedAt.Equal(keyTime) || got.Revoked() {
		t.Errorf("CreatedAt = %v, revoked %v; want exactly %v, live", got.CreatedAt, got.Revoked(), keyTime)
	}
	if len(got.Hash) != 32 || string(got.Hash) != string(want.Hash) {
		t.Errorf("Hash = %x, want %x", got.Hash, want.Hash)
	}
	got.Scopes[0], got.Hash[0] = trail.ScopeAdmin, got.Hash[0]+1
	if diff := cmp.Diff(&want, getKey(t, s, want.ID)); diff != "" {
		t.Errorf("changing a returned key changed the stored one (-created +got):\n%s", diff)
	}
}

func testKeyConflict(t *testing.T, s KeyStore) {
	ctx := context.Background()
	_, k := newKey(t, "acme", "first", keyTime, trail.ScopeRead)
	createKey(t, s, k)
	wantCode(t, "CreateKey of the same key again", s.CreateKey(ctx, k), trail.ECONFLICT)
	_, other := newKey(t, "globex", "second", keyTime.Add(time.Hour), trail.ScopeAdmin)
	other.ID = k.ID
	wantCode(t, "CreateKey of another key with a taken id", s.CreateKey(ctx, other), trail.ECONFLICT)
	if got := getKey(t, s, k.ID); got.Tenant != "acme" || got.Name != "first" || string(got.Hash) != string(k.Hash) {
		t.Errorf("a refused CreateKey changed the stored key: %+v", got)
	}
	if ks := listKeys(t, s, ""); len(ks) != 1 {
		t.Errorf("Keys lists %d keys, want 1", len(ks))
	}
}

// testKeyInvalid: a key record a store cannot keep is refused, naming the
// field, and nothing is stored.
func testKeyInvalid(t *testing.T, s KeyStore) {
	ctx := context.Background()
	for _, tc := range []struct {
		path  string
		spoil func(k *trail.APIKey)
	}{
		{"id", func(k *trail.APIKey) { k.ID = "" }},
		{"hash", func(k *trail.APIKey) { k.Hash = nil }},
		{"scopes[1]", func(k *trail.APIKey) { k.Scopes = append(k.Scopes, "read,admin") }},
		{"created_at", func(k *trail.APIKey) { k.CreatedAt = time.Time{} }},
		{"revoked_at", func(k *trail.APIKey) { k.RevokedAt = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC) }},
	} {
		_, k := newKey(t, "acme", "bad", keyTime, trail.ScopeRead)
		tc.spoil(k)
		err := s.CreateKey(ctx, k)
		wantCode(t, "CreateKey with a bad "+tc.path, err, trail.EINVALID)
		if fs := trail.ErrorFields(err); len(fs) != 1 || fs[0].Path != tc.path {
			t.Errorf("CreateKey with a bad %s: fields %+v, want just %s", tc.path, fs, tc.path)
		}
	}
	if ks := listKeys(t, s, ""); len(ks) != 0 {
		t.Errorf("refused keys were stored: %d", len(ks))
	}
}

func testKeyNotFound(t *testing.T, s KeyStore) {
	ctx := context.Background()
	_, err := s.Key(ctx, "0123456789ab")
	wantCode(t, "Key of an unknown id", err, trail.ENOTFOUND)
	_, err = s.Key(ctx, "")
	wantCode(t, `Key("")`, err, trail.ENOTFOUND)
	wantCode(t, "RevokeKey of an unknown id", s.RevokeKey(ctx, "0123456789ab", keyTime), trail.ENOTFOUND)
	if ks := listKeys(t, s, ""); len(ks) != 0 {
		t.Errorf("Keys of an empty store lists %d keys", len(ks))
	}
	if ks := listKeys(t, s, "acme"); len(ks) != 0 {
		t.Errorf("Keys(acme) of an empty store lists %d keys", len(ks))
	}
}

// testKeyList: Keys lists in creation order, which is the order of the
// CreateKey calls whatever their CreatedAt says (a clock may step back).
func testKeyList(t *testing.T, s KeyStore) {
	var all, acme, globex []string
	for i, tenant := range []string{"acme", "globex", "acme", "acme", "globex", "acme", "initech"} {
		at := keyTime.Add(time.Duration(i) * time.Minute)
		if i == 3 {
			at = keyTime.Add(-time.Hour) // the clock stepped back
		}
		_, k := newKey(t, tenant, "", at, trail.ScopeRead)
		createKey(t, s, k)
		all = append(all, k.ID)
		switch tenant {
		case "acme":
			acme = append(acme, k.ID)
		case "globex":
			globex = append(globex, k.ID)
		}
	}
	for tenant, want := range map[string][]string{"": all, "acme": acme, "globex": globex, "nobody": {}} {
		ks := listKeys(t, s, tenant)
		if diff := cmp.Diff(want, keyIDs(ks)); diff != "" {
			t.Errorf("Keys(%q) (-want +got):\n%s", tenant, diff)
		}
		for _, k := range ks {
			if tenant != "" && k.Tenant != tenant {
				t.Errorf("Keys(%q) lists a key of %q", tenant, k.Tenant)
			}
		}
	}
	// The list holds the records Key returns.
	for _, k := range listKeys(t, s, "") {
		if diff := cmp.Diff(getKey(t, s, k.ID), k); diff != "" {
			t.Errorf("Keys and Key disagree on %s (-Key +Keys):\n%s", k.ID, diff)
		}
	}
}

func testKeyRevoke(t *testing.T, s KeyStore) {
	ctx := context.Background()
	_, k := newKey(t, "acme", "leaked", keyTime, trail.ScopeIngest)
	_, live := newKey(t, "acme", "kept", keyTime, trail.ScopeIngest)
	createKey(t, s, k)
	createKey(t, s, live)
	first := keyTime.Add(90*time.Minute + 987654321*time.Nanosecond).In(time.FixedZone("EST", -5*3600))
	if err := s.RevokeKey(ctx, k.ID, first); err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}
	got := getKey(t, s, k.ID)
	if !got.Revoked() || !got.RevokedAt.Equal(first) {
		t.Errorf("after RevokeKey, RevokedAt = %v, want exactly %v", got.RevokedAt, first)
	}
	want := *k
	want.RevokedAt = first
	if diff := cmp.Diff(&want, got); diff != "" {
		t.Errorf("RevokeKey changed more than RevokedAt (-want +got):\n%s", diff)
	}
	// A second revocation keeps the first time.
	if err := s.RevokeKey(ctx, k.ID, first.Add(time.Hour)); err != nil {
		t.Errorf("second RevokeKey: %v", err)
	}
	if got := getKey(t, s, k.ID); !got.RevokedAt.Equal(first) {
		t.Errorf("second RevokeKey moved RevokedAt to %v, want it kept at %v", got.RevokedAt, first)
	}
	if got := getKey(t, s, live.ID); got.Revoked() {
		t.Errorf("RevokeKey of one key revoked another")
	}
	ks := listKeys(t, s, "acme")
	if len(ks) != 2 || ks[0].ID != k.ID || !ks[0].RevokedAt.Equal(first) || ks[1].Revoked() {
		t.Errorf("Keys after a revocation = %v; want both keys, the first revoked at %v", keyIDs(ks), first)
	}
}

func testKeyAuthenticate(t *testing.T, s KeyStore) {
	ctx := context.Background()
	text, k := newKey(t, "acme", "", keyTime, trail.ScopeRead)
	createKey(t, s, k)
	id, hash, err := trail.ParseAPIKey(text)
	if err != nil {
		t.Fatalf("ParseAPIKey of a new key's text: %v", err)
	}
	got, err := s.Key(ctx, id)
	if err != nil {
		t.Fatalf("Key of the id in the key's text: %v", err)
	}
	if !got.Matches(hash) {
		t.Error("the stored key does not match its own text")
	}
	// The same text with another secret.
	wrong := []byte(text)
	if wrong[len(wrong)-1] == 'A' {
		wrong[len(wrong)-1] = 'B'
	} else {
		wrong[len(wrong)-1] = 'A'
	}
	wid, whash, err := trail.ParseAPIKey(string(wrong))
	if err != nil || wid != id {
		t.Fatalf("ParseAPIKey of the altered text = %q, %v", wid, err)
	}
	if got.Matches(whash) {
		t.Error("the stored key matches a wrong secret")
	}
}

// testKeyConcurrent: creations and revocations at once are each applied
// once; of several creations of one id exactly one succeeds.
func testKeyConcurrent(t *testing.T, s KeyStore) {
	ctx := context.Background()
	const n = 8
	_, contested := newKey(t, "acme", "contested", keyTime, trail.ScopeRead)
	keys := make([]*trail.APIKey, n)
	for i := range keys {
		_, keys[i] = newKey(t, "acme", "", keyTime, trail.ScopeRead)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			if err := s.CreateKey(ctx, keys[i]); err != nil {
				t.Errorf("CreateKey: %v", err)
			}
		})
		wg.Go(func() { errs[i] = s.CreateKey(ctx, contested) })
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch trail.ErrorCode(err) {
		case "":
			won++
		case trail.ECONFLICT:
		default:
			t.Errorf("CreateKey of a contested id: %v", err)
		}
	}
	if won != 1 {
		t.Errorf("%d of %d creations of one id succeeded, want 1", won, n)
	}
	if ks := listKeys(t, s, "acme"); len(ks) != n+1 {
		t.Errorf("Keys lists %d keys, want %d", len(ks), n+1)
	}
	times := make([]time.Time, n)
	for i := range n {
		times[i] = keyTime.Add(time.Duration(i+1) * time.Second)
		wg.Go(func() {
			if err := s.RevokeKey(ctx, contested.ID, times[i]); err != nil {
				t.Errorf("RevokeKey: %v", err)
			}
		})
	}
	wg.Wait()
	got := getKey(t, s, contested.ID)
	if !slices.ContainsFunc(times, got.RevokedAt.Equal) {
		t.Errorf("RevokedAt = %v, want one of the revocations' times", got.RevokedAt)
	}
}

// fullAction is a custom action with every field set.
func fullAction(name string) *trail.Action {
	return &trail.Action{
		Name:        name,
		Category:    "billing",
		Outcome:     trail.OutcomeSuccess,
		Description: "An invoice was paid — in full.",
		Severity:    trail.SeverityLow,
		Compliance:  []string{trail.ComplianceSOC2, trail.CompliancePCIDSS},
		Retention:   "7y",
		Attempt:     "invoice_payment_attempted",
		Aliases:     []string{name + "_legacy"},
		Sources:     []string{"billing:PAID"},
		Context: []trail.ContextKey{
			{Key: "invoice_id", Type: trail.TypeString, Required: true, Personal: true, Description: "the invoice"},
			{Key: "amount", Type: trail.TypeNumber},
		},
		Custom: true,
	}
}

// checkAllSet fails when fullAction leaves a field of trail.Action unset,
// or one of trail.ContextKey unset in all its context keys: when they gain
// a field, fullAction must set it for the round trip to cover it.
func checkAllSet(t *testing.T, a *trail.Action) {
	t.Helper()
	v := reflect.ValueOf(a).Elem()
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Errorf("fullAction leaves Action.%s unset: set it, so that the round trip covers it", v.Type().Field(i).Name)
		}
	}
	ck := reflect.TypeFor[trail.ContextKey]()
	for i := range ck.NumField() {
		if !slices.ContainsFunc(a.Context, func(k trail.ContextKey) bool { return !reflect.ValueOf(k).Field(i).IsZero() }) {
			t.Errorf("fullAction leaves ContextKey.%s unset: set it, so that the round trip covers it", ck.Field(i).Name)
		}
	}
}

func testSaveAction(t *testing.T, s KeyStore) {
	ctx := context.Background()
	if got, err := s.SavedActions(ctx); err != nil || len(got) != 0 {
		t.Fatalf("SavedActions of an empty store = %v, %v; want none", got, err)
	}
	checkAllSet(t, fullAction("x"))
	badge := &trail.Action{Name: "badge_scanned", Category: "physical", Outcome: trail.OutcomeInfo, Custom: true}
	theirs := fullAction("badge_scanned") // globex's badge_scanned: the same name, its own definition
	theirs.Description = "another definition"
	want := []trail.SavedAction{
		{Tenant: "acme", Action: fullAction("invoice_paid")},
		{Tenant: "acme", Action: badge},
		{Tenant: "globex", Action: theirs},
		{Tenant: "acme", Action: fullAction("an_invoice_refunded")},
	}
	for _, sa := range want {
		if err := s.SaveAction(ctx, sa.Tenant, sa.Action); err != nil {
			t.Fatalf("SaveAction(%s, %s): %v", sa.Tenant, sa.Action.Name, err)
		}
	}
	other := fullAction("badge_scanned")
	other.Description = "yet another definition"
	wantCode(t, "SaveAction of a name the tenant saved", s.SaveAction(ctx, "acme", other), trail.ECONFLICT)
	wantCode(t, "SaveAction of the same action again", s.SaveAction(ctx, "acme", fullAction("invoice_paid")), trail.ECONFLICT)
	wantCode(t, "SaveAction of no tenant", s.SaveAction(ctx, "", fullAction("x_y")), trail.EINVALID)
	wantCode(t, "SaveAction of the operators' tenant", s.SaveAction(ctx, trail.OperatorTenant, fullAction("x_y")), trail.EINVALID)
	got, err := s.SavedActions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("SavedActions (-saved +got):\n%s", diff)
	}
	// What a caller gets is its own.
	got[0].Action.Aliases[0], got[0].Action.Context[0].Key = "changed", "changed"
	if again, err := s.SavedActions(ctx); err != nil || !cmp.Equal(want, again) {
		t.Errorf("changing what SavedActions returned changed what is saved (%v)", err)
	}
}

// keyStore returns the store d opens without a signer, as a KeyStore.
func keyStore(t *testing.T, d Durable) KeyStore {
	t.Helper()
	s, err := d.Open(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	ks, ok := s.(KeyStore)
	if !ok {
		s.Close()
		t.Fatalf("%T is not a trail.KeyStore and trail.ActionStore", s)
	}
	return ks
}

func testKeysReopen(t *testing.T, d Durable) {
	ctx := context.Background()
	s := keyStore(t, d) // no signer: key writes are not events
	var ids []string
	for i, tenant := range []string{"acme", "globex", "acme"} {
		_, k := newKey(t, tenant, "k", keyTime.Add(time.Duration(i)*time.Second), trail.ScopeRead, trail.ScopeVerify)
		createKey(t, s, k)
		ids = append(ids, k.ID)
	}
	if err := s.RevokeKey(ctx, ids[1], keyTime.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, a := range []*trail.Action{fullAction("invoice_paid"), fullAction("invoice_voided")} {
		if err := s.SaveAction(ctx, "acme", a); err != nil {
			t.Fatal(err)
		}
	}
	before := listKeys(t, s, "")
	actions, err := s.SavedActions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = keyStore(t, d)
	defer s.Close()
	if diff := cmp.Diff(before, listKeys(t, s, "")); diff != "" {
		t.Errorf("keys changed across close and reopen (-before +after):\n%s", diff)
	}
	if got, err := s.SavedActions(ctx); err != nil || !cmp.Equal(actions, got) {
		t.Errorf("saved actions changed across close and reopen: %v\n%s", err, cmp.Diff(actions, got))
	}
	// The store goes on where it was: a key created now lists last, a
	// revoked key stays revoked at its first time.
	_, k := newKey(t, "acme", "after", keyTime.Add(-time.Hour), trail.ScopeAdmin)
	createKey(t, s, k)
	if got := keyIDs(listKeys(t, s, "acme")); !cmp.Equal(got, []string{ids[0], ids[2], k.ID}) {
		t.Errorf("Keys(acme) after reopen = %v, want %v", got, []string{ids[0], ids[2], k.ID})
	}
	if err := s.RevokeKey(ctx, ids[1], keyTime.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := getKey(t, s, ids[1]); !got.RevokedAt.Equal(keyTime.Add(time.Hour)) {
		t.Errorf("RevokedAt after reopen = %v, want the first revocation's %v", got.RevokedAt, keyTime.Add(time.Hour))
	}
	wantCode(t, "CreateKey after reopen of a stored id", s.CreateKey(ctx, before[0]), trail.ECONFLICT)
	wantCode(t, "SaveAction after reopen of a saved name", s.SaveAction(ctx, "acme", fullAction("invoice_paid")), trail.ECONFLICT)
}

func testKeysRefuseChanges(t *testing.T, d Durable) {
	ctx := context.Background()
	s := keyStore(t, d)
	defer s.Close()
	_, live := newKey(t, "acme", "live", keyTime, trail.ScopeRead)
	_, gone := newKey(t, "acme", "gone", keyTime, trail.ScopeRead)
	createKey(t, s, live)
	createKey(t, s, gone)
	if err := s.RevokeKey(ctx, gone.ID, keyTime.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveAction(ctx, "acme", fullAction("invoice_paid")); err != nil {
		t.Fatal(err)
	}
	keys := listKeys(t, s, "")
	actions, err := s.SavedActions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		"DELETE FROM api_keys WHERE id = '" + live.ID + "'",
		"DELETE FROM api_keys",
		"UPDATE api_keys SET hash = hash || hash WHERE id = '" + live.ID + "'",
		"UPDATE api_keys SET hash = hash || hash",
		"UPDATE api_keys SET tenant = 'globex'",
		"UPDATE api_keys SET name = 'x' WHERE id = '" + gone.ID + "'",
		"UPDATE api_keys SET created_at = created_at - 1",
		"UPDATE api_keys SET revoked_at = 0 WHERE id = '" + gone.ID + "'",              // un-revoke
		"UPDATE api_keys SET revoked_at = revoked_at + 1 WHERE id = '" + gone.ID + "'", // move a revocation
		"UPDATE api_keys SET revoked_at = 1, hash = hash || hash WHERE id = '" + live.ID + "'",
		"UPDATE api_keys SET id = 'x' WHERE id = '" + live.ID + "'",
		"DELETE FROM tenant_actions",
		"UPDATE tenant_actions SET definition = definition || definition",
		"UPDATE tenant_actions SET tenant = 'globex'",
	} {
		if err := d.Exec(ctx, stmt); err == nil {
			t.Errorf("the database ran %q: it must refuse to delete or change a key but to revoke it once, and to change saved actions", stmt)
		}
	}
	if diff := cmp.Diff(keys, listKeys(t, s, "")); diff != "" {
		t.Errorf("keys changed (-stored +now):\n%s", diff)
	}
	if got, err := s.SavedActions(ctx); err != nil || !cmp.Equal(actions, got) {
		t.Errorf("saved actions changed: %v\n%s", err, cmp.Diff(actions, got))
	}
	// Revoking is what the database allows.
	if err := d.Exec(ctx, "UPDATE api_keys SET revoked_at = 1 WHERE id = '"+live.ID+"'"); err != nil {
		t.Errorf("the database refused to revoke a key: %v", err)
	}
}
