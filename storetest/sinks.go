package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/trailaudit/trail"
)

// WebhookSecret is a Standard Webhooks signing secret for tests.
const WebhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// RunSinks runs the conformance suite of trail.SinkStore. open must return
// a new, empty store each time it is called; the suite closes it when it
// has a Close method.
func RunSinks(t *testing.T, open func(t *testing.T) trail.SinkStore) {
	runEach(t, open, []storeCase[trail.SinkStore]{
		{"PutAndGetEveryKind", testSinkRoundTrip},
		{"StoreClockAndDefaults", testSinkDefaults},
		{"DuplicateName", testSinkConflict},
		{"Invalid", testSinkInvalid},
		{"ListByTenantInOrder", testSinkList},
		{"Delete", testSinkDelete},
		{"TenantsApart", testSinkTenants},
	})
}

// RunSinksDurable runs the test of sinks only a durable store can pass:
// they survive close and reopen, secrets included, also when the store is
// opened without a signer (they are not events). newDurable must return a
// fresh, empty database each call, whose Open returns a store that is also
// a trail.SinkStore.
func RunSinksDurable(t *testing.T, newDurable func(t *testing.T) Durable) {
	t.Run("ReopenKeepsSinks", func(t *testing.T) {
		d := newDurable(t)
		s := sinkStore(t, d)
		for _, c := range sampleSinks("acme") {
			putSink(t, s, c)
		}
		before := listSinks(t, s, "")
		s.(trail.Store).Close()
		s = sinkStore(t, d)
		defer s.(trail.Store).Close()
		if diff := cmp.Diff(before, listSinks(t, s, "")); diff != "" {
			t.Errorf("sinks changed across close and reopen (-before +after):\n%s", diff)
		}
		if c := getSink(t, s, "acme", "siem"); c.Secret != WebhookSecret {
			t.Errorf("the secret came back as %q", c.Secret)
		}
	})
}

func sinkStore(t *testing.T, d Durable) trail.SinkStore {
	t.Helper()
	s, err := d.Open(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	ss, ok := s.(trail.SinkStore)
	if !ok {
		s.Close()
		t.Fatalf("%T is not a trail.SinkStore", s)
	}
	return ss
}

// sinkTime is a time with nanoseconds, in a zone other than UTC: stores
// must keep the instant exactly.
var sinkTime = time.Date(2026, 12, 3, 10, 30, 0, 123456789, time.FixedZone("CET", 3600))

// sampleSinks returns one sink of each kind for tenant, with every field
// its kind takes.
func sampleSinks(tenant string) []*trail.SinkConfig {
	return []*trail.SinkConfig{
		{Tenant: tenant, Name: "siem", Kind: trail.SinkWebhook, URL: "https://siem.example.com/services/collector/event", Secret: WebhookSecret,
			Format: trail.FormatSplunk, CreatedAt: sinkTime, CreatedBy: "key 3f9c2a7b1e04"},
		{Tenant: tenant, Name: "rsyslog", Kind: trail.SinkSyslog, Address: "logs.example.com:6514", TLS: true, OnRefusal: trail.OnRefusalSkip, CreatedAt: sinkTime.Add(time.Second), CreatedBy: "cli:ops"},
		{Tenant: tenant, Name: "bus", Kind: trail.SinkNATS, URL: "nats://trail:pw@127.0.0.1:4222", Subject: "trail.events", CreatedAt: sinkTime.Add(2 * time.Second)},
	}
}

func putSink(t *testing.T, s trail.SinkStore, c *trail.SinkConfig) {
	t.Helper()
	if err := s.PutSink(context.Background(), c); err != nil {
		t.Fatalf("PutSink(%s/%s): %v", c.Tenant, c.Name, err)
	}
}

func getSink(t *testing.T, s trail.SinkStore, tenant, name string) *trail.SinkConfig {
	t.Helper()
	c, err := s.GetSink(context.Background(), tenant, name)
	if err != nil {
		t.Fatalf("GetSink(%s, %s): %v", tenant, name, err)
	}
	return c
}

func listSinks(t *testing.T, s trail.SinkStore, tenant string) []*trail.SinkConfig {
	t.Helper()
	cs, err := s.Sinks(context.Background(), tenant)
	if err != nil {
		t.Fatalf("Sinks(%q): %v", tenant, err)
	}
	return cs
}

func sinkNames(cs []*trail.SinkConfig) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, c.Tenant+"/"+c.Name)
	}
	return out
}

// Every field of every kind comes back as put, the secret included, the
// time as the same instant in UTC, no on_refusal as stop.
func testSinkRoundTrip(t *testing.T, s trail.SinkStore) {
	for _, c := range sampleSinks("acme") {
		putSink(t, s, c)
		want := *c
		want.CreatedAt = c.CreatedAt.UTC()
		if want.OnRefusal == "" {
			want.OnRefusal = trail.OnRefusalStop
		}
		if diff := cmp.Diff(&want, getSink(t, s, "acme", c.Name)); diff != "" {
			t.Errorf("sink %s (-put +got):\n%s", c.Name, diff)
		}
	}
}

// A zero CreatedAt is the store's clock; a webhook's format defaults to
// ndjson, what it does on a refusal to stop; the caller's config is left
// as it was.
func testSinkDefaults(t *testing.T, s trail.SinkStore) {
	c := &trail.SinkConfig{Tenant: "acme", Name: "hook", Kind: trail.SinkWebhook, URL: "http://127.0.0.1:9/", Secret: WebhookSecret}
	before := time.Now().Add(-time.Second)
	putSink(t, s, c)
	got := getSink(t, s, "acme", "hook")
	if got.Format != trail.FormatNDJSON || got.OnRefusal != trail.OnRefusalStop || got.CreatedAt.Before(before) || got.CreatedAt.After(time.Now().Add(time.Second)) || got.CreatedAt.Location() != time.UTC {
		t.Errorf("got %+v: want format ndjson, on_refusal stop, created now in UTC", got)
	}
	if c.Format != "" || c.OnRefusal != "" || !c.CreatedAt.IsZero() {
		t.Errorf("PutSink changed the caller's config: %+v", c)
	}
}

// A name is its tenant's once; another tenant may use it.
func testSinkConflict(t *testing.T, s trail.SinkStore) {
	c := sampleSinks("acme")[0]
	putSink(t, s, c)
	again := *sampleSinks("acme")[1]
	again.Name = c.Name
	if err := s.PutSink(context.Background(), &again); trail.ErrorCode(err) != trail.ECONFLICT {
		t.Fatalf("a second sink named %s: %v, want ECONFLICT", c.Name, err)
	}
	if got := getSink(t, s, "acme", c.Name); got.Kind != c.Kind {
		t.Errorf("the first sink was replaced: %+v", got)
	}
	putSink(t, s, sampleSinks("globex")[0])
}

// A bad config is refused naming the field, and nothing is stored.
func testSinkInvalid(t *testing.T, s trail.SinkStore) {
	c := *sampleSinks("acme")[0]
	c.Secret = "not a secret"
	err := s.PutSink(context.Background(), &c)
	if f := trail.ErrorFields(err); trail.ErrorCode(err) != trail.EINVALID || len(f) != 1 || f[0].Path != "secret" {
		t.Fatalf("PutSink with a bad secret: %v %v, want EINVALID naming secret", err, f)
	}
	if err := s.PutSink(context.Background(), nil); trail.ErrorCode(err) != trail.EINVALID {
		t.Errorf("PutSink(nil): %v, want EINVALID", err)
	}
	if cs := listSinks(t, s, ""); len(cs) != 0 {
		t.Errorf("stored %v", sinkNames(cs))
	}
}

// Sinks lists a tenant's (or every tenant's) in the order put; none is
// an empty list.
func testSinkList(t *testing.T, s trail.SinkStore) {
	if cs := listSinks(t, s, "acme"); cs == nil || len(cs) != 0 {
		t.Fatalf("no sinks: %v, want an empty list", cs)
	}
	a, g := sampleSinks("acme"), sampleSinks("globex")
	for _, c := range []*trail.SinkConfig{a[1], g[0], a[0], a[2]} {
		putSink(t, s, c)
	}
	if got, want := sinkNames(listSinks(t, s, "acme")), []string{"acme/rsyslog", "acme/siem", "acme/bus"}; !cmp.Equal(got, want) {
		t.Errorf("acme's sinks %v, want %v", got, want)
	}
	if got, want := sinkNames(listSinks(t, s, "")), []string{"acme/rsyslog", "globex/siem", "acme/siem", "acme/bus"}; !cmp.Equal(got, want) {
		t.Errorf("every sink %v, want %v", got, want)
	}
	if listSinks(t, s, "acme")[1].Secret != WebhookSecret {
		t.Error("Sinks left out the secret, which the runner needs")
	}
}

// A deleted sink is gone; its name may be put again, which lists it last.
func testSinkDelete(t *testing.T, s trail.SinkStore) {
	for _, c := range sampleSinks("acme") {
		putSink(t, s, c)
	}
	ctx := context.Background()
	if err := s.DeleteSink(ctx, "acme", "siem"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetSink(ctx, "acme", "siem"); trail.ErrorCode(err) != trail.ENOTFOUND {
		t.Errorf("GetSink after DeleteSink: %v, want ENOTFOUND", err)
	}
	if err := s.DeleteSink(ctx, "acme", "siem"); trail.ErrorCode(err) != trail.ENOTFOUND {
		t.Errorf("DeleteSink again: %v, want ENOTFOUND", err)
	}
	putSink(t, s, sampleSinks("acme")[0])
	if got, want := sinkNames(listSinks(t, s, "acme")), []string{"acme/rsyslog", "acme/bus", "acme/siem"}; !cmp.Equal(got, want) {
		t.Errorf("sinks %v, want %v", got, want)
	}
}

// A tenant's sink is found and deleted only through that tenant.
func testSinkTenants(t *testing.T, s trail.SinkStore) {
	putSink(t, s, sampleSinks("acme")[0])
	ctx := context.Background()
	if c, err := s.GetSink(ctx, "globex", "siem"); trail.ErrorCode(err) != trail.ENOTFOUND {
		t.Errorf("globex got acme's sink: %+v, %v", c, err)
	}
	if err := s.DeleteSink(ctx, "globex", "siem"); trail.ErrorCode(err) != trail.ENOTFOUND {
		t.Errorf("globex deleting acme's sink: %v, want ENOTFOUND", err)
	}
	getSink(t, s, "acme", "siem")
	if cs := listSinks(t, s, "globex"); len(cs) != 0 {
		t.Errorf("globex lists %v", sinkNames(cs))
	}
}
