package trail_test

import (
	"cmp"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/storetest"
)

var sinkNow = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

// Each kind of sink takes its own fields, and a bad one is named.
func TestPrepareSink(t *testing.T) {
	webhook := trail.SinkConfig{Tenant: "acme", Name: "siem", Kind: trail.SinkWebhook, URL: "https://siem.example.com/in", Secret: storetest.WebhookSecret}
	syslog := trail.SinkConfig{Tenant: "acme", Name: "rsyslog", Kind: trail.SinkSyslog, Address: "logs.example.com:6514", TLS: true}
	nats := trail.SinkConfig{Tenant: "acme", Name: "bus", Kind: trail.SinkNATS, URL: "nats://127.0.0.1:4222", Subject: "trail.events"}
	with := func(c trail.SinkConfig, fn func(*trail.SinkConfig)) trail.SinkConfig { fn(&c); return c }
	tests := []struct {
		name string
		c    trail.SinkConfig
		bad  []string // the fields named, in order; none: accepted
	}{
		{"webhook", webhook, nil},
		{"webhook, Splunk", with(webhook, func(c *trail.SinkConfig) { c.Format = trail.FormatSplunk }), nil},
		{"webhook over http to loopback", with(webhook, func(c *trail.SinkConfig) { c.URL = "http://127.0.0.1:8088/hook" }), nil},
		{"webhook over http elsewhere", with(webhook, func(c *trail.SinkConfig) { c.URL = "http://siem.example.com/in" }), []string{"url"}},
		{"webhook, other scheme", with(webhook, func(c *trail.SinkConfig) { c.URL = "ftp://siem.example.com/" }), []string{"url"}},
		{"webhook, no URL", with(webhook, func(c *trail.SinkConfig) { c.URL = "" }), []string{"url"}},
		{"webhook, bad port", with(webhook, func(c *trail.SinkConfig) { c.URL = "https://siem.example.com:99999/" }), []string{"url"}},
		{"webhook, no secret", with(webhook, func(c *trail.SinkConfig) { c.Secret = "" }), []string{"secret"}},
		{"webhook, short secret", with(webhook, func(c *trail.SinkConfig) { c.Secret = "whsec_c2hvcnQ=" }), []string{"secret"}},
		{"webhook, OCSF", with(webhook, func(c *trail.SinkConfig) { c.Format = trail.FormatOCSF }), nil},
		{"webhook, bad format", with(webhook, func(c *trail.SinkConfig) { c.Format = "xml" }), []string{"format"}},
		{"webhook, syslog's fields", with(webhook, func(c *trail.SinkConfig) { c.Address, c.TLS = "a:1", true }), []string{"address", "tls"}},
		{"syslog", syslog, nil},
		{"syslog, plain TCP", with(syslog, func(c *trail.SinkConfig) { c.TLS = false }), nil},
		{"syslog, IPv6", with(syslog, func(c *trail.SinkConfig) { c.Address = "[::1]:514" }), nil},
		{"syslog, no port", with(syslog, func(c *trail.SinkConfig) { c.Address = "logs.example.com" }), []string{"address"}},
		{"syslog, port 0", with(syslog, func(c *trail.SinkConfig) { c.Address = "logs.example.com:0" }), []string{"address"}},
		{"syslog, a format", with(syslog, func(c *trail.SinkConfig) { c.Format = trail.FormatNDJSON }), []string{"format"}},
		{"syslog, OCSF", with(syslog, func(c *trail.SinkConfig) { c.Format = trail.FormatOCSF }), []string{"format"}},
		{"syslog, a secret", with(syslog, func(c *trail.SinkConfig) { c.Secret = storetest.WebhookSecret }), []string{"secret"}},
		{"nats", nats, nil},
		{"nats, NDJSON", with(nats, func(c *trail.SinkConfig) { c.Format = trail.FormatNDJSON }), nil},
		{"nats, OCSF", with(nats, func(c *trail.SinkConfig) { c.Format = trail.FormatOCSF }), nil},
		{"nats, Splunk", with(nats, func(c *trail.SinkConfig) { c.Format = trail.FormatSplunk }), []string{"format"}},
		{"nats over TLS", with(nats, func(c *trail.SinkConfig) { c.URL = "tls://nats.example.com:4222" }), nil},
		{"nats, https", with(nats, func(c *trail.SinkConfig) { c.URL = "https://nats.example.com" }), []string{"url"}},
		{"nats, no subject", with(nats, func(c *trail.SinkConfig) { c.Subject = "" }), []string{"subject"}},
		{"nats, wildcard", with(nats, func(c *trail.SinkConfig) { c.Subject = "trail.>" }), []string{"subject"}},
		{"nats, empty token", with(nats, func(c *trail.SinkConfig) { c.Subject = "trail..events" }), []string{"subject"}},
		{"nats, space", with(nats, func(c *trail.SinkConfig) { c.Subject = "trail events" }), []string{"subject"}},
		{"no kind", with(nats, func(c *trail.SinkConfig) { c.Kind, c.URL, c.Subject = "", "", "" }), []string{"kind"}},
		{"unknown kind", with(nats, func(c *trail.SinkConfig) { c.Kind, c.URL, c.Subject = "kafka", "", "" }), []string{"kind"}},
		{"bad tenant and name", with(webhook, func(c *trail.SinkConfig) { c.Tenant, c.Name = "", "Has Space" }), []string{"tenant", "name"}},
		// A sink streams one tenant's log: never a log Trail keeps for itself.
		{"the root log", with(webhook, func(c *trail.SinkConfig) { c.Tenant = trail.RootTenant }), []string{"tenant"}},
		{"the operators' log", with(webhook, func(c *trail.SinkConfig) { c.Tenant = trail.OperatorTenant }), []string{"tenant"}},
		{"skip on refusal", with(syslog, func(c *trail.SinkConfig) { c.OnRefusal = trail.OnRefusalSkip }), nil},
		{"stop on refusal", with(nats, func(c *trail.SinkConfig) { c.OnRefusal = trail.OnRefusalStop }), nil},
		{"unknown on refusal", with(webhook, func(c *trail.SinkConfig) { c.OnRefusal = "retry" }), []string{"on_refusal"}},
		{"long creator", with(webhook, func(c *trail.SinkConfig) { c.CreatedBy = strings.Repeat("x", 129) }), []string{"created_by"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := trail.PrepareSink(&tt.c, sinkNow)
			var got []string
			for _, f := range trail.ErrorFields(err) {
				got = append(got, f.Path)
			}
			if tt.bad == nil {
				if err != nil {
					t.Fatalf("refused: %v %v", err, trail.ErrorFields(err))
				}
				if !p.CreatedAt.Equal(sinkNow) || p.Kind == trail.SinkWebhook && p.Format == "" {
					t.Errorf("prepared %+v: want created now, a webhook's format set", p)
				}
				if want := cmp.Or(tt.c.OnRefusal, trail.OnRefusalStop); p.OnRefusal != want {
					t.Errorf("on_refusal %q, want %q", p.OnRefusal, want)
				}
				return
			}
			if trail.ErrorCode(err) != trail.EINVALID || !slices.Equal(got, tt.bad) {
				t.Fatalf("err %v, fields %v; want EINVALID naming %v", err, got, tt.bad)
			}
		})
	}
}

// A config as it is shown never carries its secret, in JSON or in Public,
// nor a URL's password.
func TestSinkSecretIsWriteOnly(t *testing.T) {
	c := trail.SinkConfig{Tenant: "acme", Name: "bus", Kind: trail.SinkNATS, URL: "nats://trail:hunter2@nats.example.com:4222", Subject: "trail", Secret: storetest.WebhookSecret}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "whsec_") || strings.Contains(string(b), `"secret"`) {
		t.Errorf("JSON %s carries the secret", b)
	}
	p := c.Public()
	if p.Secret != "" || strings.Contains(p.URL, "hunter2") || p.Target() != "nats://trail:xxxxx@nats.example.com:4222" {
		t.Errorf("Public() = %+v", p)
	}
	if c.Secret != storetest.WebhookSecret || !strings.Contains(c.URL, "hunter2") {
		t.Error("Public changed its receiver")
	}
}

func TestNewWebhookSecret(t *testing.T) {
	s, err := trail.NewWebhookSecret()
	if err != nil {
		t.Fatal(err)
	}
	key, err := trail.ParseWebhookSecret(s)
	if err != nil || len(key) != 32 || !strings.HasPrefix(s, "whsec_") {
		t.Fatalf("secret %q: key %d bytes, %v", s, len(key), err)
	}
	if s2, _ := trail.NewWebhookSecret(); s2 == s {
		t.Error("two secrets are the same")
	}
}

// FuzzPrepareSink holds PrepareSink to what it promises for any input (a
// config comes from the API's callers): it never panics; what it accepts
// it accepts again unchanged, and what it refuses it refuses naming a
// field.
func FuzzPrepareSink(f *testing.F) {
	f.Add("acme", "siem", "webhook", "https://siem.example.com/in", "", storetest.WebhookSecret, "", false, "")
	f.Add("acme", "rsyslog", "syslog", "", "logs.example.com:6514", "", "", true, "")
	f.Add("acme", "bus", "nats", "nats://u:p@127.0.0.1:4222", "", "", "", false, "trail.events")
	f.Add("acme", "x", "webhook", "http://[::1]:80/", "", "whsec_", "splunk", false, "")
	f.Fuzz(func(t *testing.T, tenant, name, kind, url, addr, secret, format string, tls bool, subject string) {
		c := &trail.SinkConfig{Tenant: tenant, Name: name, Kind: trail.SinkKind(kind), URL: url, Address: addr, Secret: secret,
			Format: format, TLS: tls, Subject: subject, OnRefusal: map[bool]string{true: "skip"}[len(name)%2 == 1]}
		p, err := trail.PrepareSink(c, sinkNow)
		if err != nil {
			if trail.ErrorCode(err) != trail.EINVALID || len(trail.ErrorFields(err)) == 0 {
				t.Fatalf("refused without naming a field: %v", err)
			}
			return
		}
		again, err := trail.PrepareSink(p, sinkNow.Add(time.Hour))
		if err != nil || *again != *p {
			t.Fatalf("accepted %+v, then %+v, %v", p, again, err)
		}
		if pub := p.Public(); pub.Secret != "" {
			t.Fatalf("Public kept the secret")
		}
	})
}
