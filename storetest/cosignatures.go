package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/trailaudit/trail"
)

// RunCosignatures runs the conformance suite of trail.CosignatureStore.
// open must return a new, empty store each time it is called that is also
// a trail.CosignatureStore; the suite closes it.
func RunCosignatures(t *testing.T, open func(t *testing.T) trail.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s trail.Store, cs trail.CosignatureStore)
	}{
		{"AddAndRead", testCosigRoundTrip},
		{"FirstStays", testCosigFirstStays},
		{"LatestPerWitness", testCosigLatest},
		{"Invalid", testCosigInvalid},
		{"TenantsApart", testCosigTenants},
		{"LogSizes", testCosigLogSizes},
		{"LatestCheckpoints", testCosigLatestCheckpoints},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { s.Close() })
			cs, ok := s.(trail.CosignatureStore)
			if !ok {
				t.Fatalf("%T is not a trail.CosignatureStore", s)
			}
			tc.fn(t, s, cs)
		})
	}
}

// RunCosignaturesDurable runs the test of cosignatures only a durable
// store can pass: they survive close and reopen, and the database refuses
// to change or delete one. The table must be named "cosignatures".
func RunCosignaturesDurable(t *testing.T, newDurable func(t *testing.T) Durable) {
	t.Run("ReopenKeepsCosignatures", func(t *testing.T) {
		d := newDurable(t)
		open := func() (trail.Store, trail.CosignatureStore) {
			s, err := d.Open(t, nil)
			if err != nil {
				t.Fatal(err)
			}
			return s, s.(trail.CosignatureStore)
		}
		s, cs := open()
		addCosig(t, cs, cosig("acme", 3, "w1.example.com", 1))
		addCosig(t, cs, cosig("acme", 3, "w2.example.com", 2))
		before := cosigsOf(t, cs, "acme", 3)
		s.Close()
		s, cs = open()
		defer s.Close()
		if diff := cmp.Diff(before, cosigsOf(t, cs, "acme", 3)); diff != "" {
			t.Errorf("cosignatures changed across close and reopen (-before +after):\n%s", diff)
		}
		ctx := context.Background()
		for _, stmt := range []string{"UPDATE cosignatures SET signed_at = 0", "DELETE FROM cosignatures"} {
			if err := d.Exec(ctx, stmt); err == nil {
				t.Errorf("%s: the database allowed it", stmt)
			}
		}
	})
}

// cosig is a well-formed cosignature of tenant's checkpoint of size by
// witness, told apart by n.
func cosig(tenant string, size uint64, witness string, n int) *trail.Cosignature {
	return &trail.Cosignature{Tenant: tenant, Size: size, Witness: witness,
		Time: time.Unix(1_790_000_000+int64(n), 0).UTC(), Line: "— " + witness + " c2lnbmF0dXJl" + string(rune('A'+n%26)) + "==\n",
		Checkpoint: fmt.Appendf(nil, "example.com/%s\n%d\nc2lnbmF0dXJl\n\n— example.com c2ln\n", tenant, size)}
}

func addCosig(t *testing.T, cs trail.CosignatureStore, c *trail.Cosignature) {
	t.Helper()
	if err := cs.AddCosignature(context.Background(), c); err != nil {
		t.Fatalf("AddCosignature(%s, %d, %s): %v", c.Tenant, c.Size, c.Witness, err)
	}
}

func cosigsOf(t *testing.T, cs trail.CosignatureStore, tenant string, size uint64) []*trail.Cosignature {
	t.Helper()
	out, err := cs.Cosignatures(context.Background(), tenant, size)
	if err != nil {
		t.Fatalf("Cosignatures(%s, %d): %v", tenant, size, err)
	}
	return out
}

func latestCosigs(t *testing.T, cs trail.CosignatureStore, tenant string) []*trail.Cosignature {
	t.Helper()
	out, err := cs.LatestCosignatures(context.Background(), tenant)
	if err != nil {
		t.Fatalf("LatestCosignatures(%s): %v", tenant, err)
	}
	return out
}

func testCosigRoundTrip(t *testing.T, _ trail.Store, cs trail.CosignatureStore) {
	w2, w1 := cosig("acme", 3, "w2.example.com", 2), cosig("acme", 3, "w1.example.com", 1)
	addCosig(t, cs, w2)
	addCosig(t, cs, w1)
	addCosig(t, cs, cosig("acme", 4, "w1.example.com", 3))
	if diff := cmp.Diff([]*trail.Cosignature{w1, w2}, cosigsOf(t, cs, "acme", 3)); diff != "" {
		t.Errorf("Cosignatures of size 3, by witness (-want +got):\n%s", diff)
	}
	if got := cosigsOf(t, cs, "acme", 2); len(got) != 0 {
		t.Errorf("Cosignatures of a size never cosigned = %v, want none", got)
	}
}

func testCosigFirstStays(t *testing.T, _ trail.Store, cs trail.CosignatureStore) {
	first := cosig("acme", 3, "w1.example.com", 1)
	addCosig(t, cs, first)
	addCosig(t, cs, cosig("acme", 3, "w1.example.com", 7))
	if diff := cmp.Diff([]*trail.Cosignature{first}, cosigsOf(t, cs, "acme", 3)); diff != "" {
		t.Errorf("a second cosignature of the same checkpoint by the same witness replaced the first (-want +got):\n%s", diff)
	}
}

func testCosigLatest(t *testing.T, _ trail.Store, cs trail.CosignatureStore) {
	w1 := cosig("acme", 9, "w1.example.com", 3)
	w2 := cosig("acme", 4, "w2.example.com", 4)
	for _, c := range []*trail.Cosignature{cosig("acme", 2, "w1.example.com", 1), w1, cosig("acme", 5, "w1.example.com", 2), w2} {
		addCosig(t, cs, c)
	}
	if diff := cmp.Diff([]*trail.Cosignature{w1, w2}, latestCosigs(t, cs, "acme")); diff != "" {
		t.Errorf("LatestCosignatures: each witness's of the largest size (-want +got):\n%s", diff)
	}
	if got := latestCosigs(t, cs, "beta"); len(got) != 0 {
		t.Errorf("LatestCosignatures of a tenant never cosigned = %v, want none", got)
	}
}

func testCosigInvalid(t *testing.T, _ trail.Store, cs trail.CosignatureStore) {
	tests := []struct {
		field string
		edit  func(c *trail.Cosignature)
	}{
		{"tenant", func(c *trail.Cosignature) { c.Tenant = "" }},
		{"size", func(c *trail.Cosignature) { c.Size = 0 }},
		{"witness", func(c *trail.Cosignature) { c.Witness = "two words" }},
		{"time", func(c *trail.Cosignature) { c.Time = time.Time{} }},
		{"line", func(c *trail.Cosignature) { c.Line = "— another.example.com c2ln\n" }},
		{"line", func(c *trail.Cosignature) { c.Line = "— w1.example.com c2ln\n— w1.example.com c2ln\n" }},
		{"checkpoint", func(c *trail.Cosignature) { c.Checkpoint = nil }},
	}
	for _, tc := range tests {
		c := cosig("acme", 3, "w1.example.com", 1)
		tc.edit(c)
		err := cs.AddCosignature(context.Background(), c)
		if trail.ErrorCode(err) != trail.EINVALID || !namesField(err, tc.field) {
			t.Errorf("bad %s: err = %v, want EINVALID naming %s", tc.field, err, tc.field)
		}
	}
	if got := latestCosigs(t, cs, "acme"); len(got) != 0 {
		t.Errorf("refused cosignatures were kept: %v", got)
	}
}

func testCosigTenants(t *testing.T, _ trail.Store, cs trail.CosignatureStore) {
	addCosig(t, cs, cosig("acme", 3, "w1.example.com", 1))
	if got := cosigsOf(t, cs, "beta", 3); len(got) != 0 {
		t.Errorf("tenant beta reads acme's cosignatures: %v", got)
	}
}

func testCosigLogSizes(t *testing.T, s trail.Store, cs trail.CosignatureStore) {
	ctx := context.Background()
	for tenant, n := range map[string]int{"acme": 3, "beta": 1} {
		for range n {
			if _, err := s.Append(ctx, tenant, []*trail.Event{Login("u-1")}, trail.AppendOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, err := cs.LogSizes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]uint64{"acme": 3, "beta": 1}, got); diff != "" {
		t.Errorf("LogSizes (-want +got):\n%s", diff)
	}
}

// testCosigLatestCheckpoints checks that LatestCheckpoints returns, for
// each tenant named that has a log, exactly what Checkpoint returns (the
// largest of its checkpoints, not the first), and nothing of the others.
func testCosigLatestCheckpoints(t *testing.T, s trail.Store, cs trail.CosignatureStore) {
	ctx := context.Background()
	for tenant, n := range map[string]int{"acme": 3, "beta": 1, "gamma": 2} {
		for range n {
			if _, err := s.Append(ctx, tenant, []*trail.Event{Login("u-1")}, trail.AppendOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := map[string][]byte{}
	for _, tenant := range []string{"acme", "beta"} {
		note, err := s.Checkpoint(ctx, tenant)
		if err != nil {
			t.Fatal(err)
		}
		want[tenant] = note
	}
	for _, tc := range []struct {
		name    string
		tenants []string
		want    map[string][]byte
	}{
		{"none named", nil, map[string][]byte{}},
		{"some, one without a log", []string{"beta", "nobody", "acme"}, want},
		{"named twice", []string{"acme", "acme"}, map[string][]byte{"acme": want["acme"]}},
	} {
		got, err := cs.LatestCheckpoints(ctx, tc.tenants)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: LatestCheckpoints(%q) (-want +got):\n%s", tc.name, tc.tenants, diff)
		}
	}
}

// namesField reports whether err's field errors name path.
func namesField(err error, path string) bool {
	for _, f := range trail.ErrorFields(err) {
		if f.Path == path {
			return true
		}
	}
	return false
}
