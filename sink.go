package trail

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SinkKind is the transport a sink delivers through.
type SinkKind string

// The kinds of sink.
const (
	SinkWebhook SinkKind = "webhook" // HTTPS POSTs signed as Standard Webhooks prescribe
	SinkSyslog  SinkKind = "syslog"  // RFC 5424 over TCP (RFC 6587) or TLS (RFC 5425)
	SinkNATS    SinkKind = "nats"    // NATS JetStream
)

// SinkKinds lists every kind, in a fixed order.
var SinkKinds = []SinkKind{SinkWebhook, SinkSyslog, SinkNATS}

// What a sink does with a message its receiver refuses for good
// (SinkConfig.OnRefusal).
const (
	OnRefusalStop = "stop" // stop the sink, with an alert (the default)
	OnRefusalSkip = "skip" // leave the refused events out, and record the skip in the log
)

// The formats of a sink: a webhook's takes any, a nats sink's ndjson or
// ocsf; a syslog message's body is always Trail's line.
const (
	FormatNDJSON = "ndjson" // one stream line (event or checkpoint) per line
	FormatSplunk = "splunk" // each line in the Splunk HTTP Event Collector's envelope
	FormatOCSF   = "ocsf"   // each event as an OCSF 1.3 event naming tenant and seq; checkpoints as stream lines
)

// SinkConfig configures a sink: the stream of one tenant's log to one
// receiver (package stream delivers it). Which fields apply depends on
// Kind; one that does not apply must be empty.
type SinkConfig struct {
	Tenant string   `json:"tenant"`
	Name   string   `json:"name"` // names the sink in its tenant; its cursor is "sink." + Name
	Kind   SinkKind `json:"kind"`
	// URL is, for a webhook, where messages are posted (https://, or
	// http:// to a loopback address only); for nats, the server
	// (nats:// or tls://).
	URL string `json:"url,omitempty"`
	// Address is a syslog collector's host:port.
	Address string `json:"address,omitempty"`
	// Secret is a webhook's signing secret (whsec_ and base64). It is
	// write-only: never encoded, so no read of a config shows it.
	Secret string `json:"-"`
	// Format is a webhook's body: ndjson (the default), splunk or ocsf;
	// a nats sink's messages: ndjson ("" too) or ocsf.
	Format string `json:"format,omitempty"`
	// TLS makes a syslog sink's connection TLS.
	TLS bool `json:"tls,omitempty"`
	// Subject is a nats sink's subject prefix; the tenant is appended.
	Subject string `json:"subject,omitempty"`
	// OnRefusal is what a sink does with a message its receiver refuses
	// for good: stop (the default: the sink stops, with an alert, until
	// someone resumes it) or skip (the refused events are left out and
	// the skip is recorded in the tenant's log, sink_skipped).
	OnRefusal string    `json:"on_refusal"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"` // who configured it
}

// Public returns c as it may be shown: no secret, and a URL's password
// replaced by "xxxxx".
func (c SinkConfig) Public() SinkConfig {
	c.Secret = ""
	if u, err := url.Parse(c.URL); err == nil && u.User != nil {
		c.URL = u.Redacted()
	}
	return c
}

// Target returns where c delivers: its URL or address, as Public shows it.
func (c SinkConfig) Target() string {
	p := c.Public()
	if p.Kind == SinkSyslog {
		return p.Address
	}
	return p.URL
}

// SinkStore keeps the sinks' configurations, in the store's database.
//
// Contract: PutSink checks the config (PrepareSink; a zero CreatedAt is
// the store's clock) and stores it, secret included, or returns ECONFLICT
// when its tenant has a sink of that name; GetSink returns one, secret
// included, or ENOTFOUND; Sinks lists a tenant's sinks (every tenant's for
// "") in the order they were put; DeleteSink removes one, or returns
// ENOTFOUND. A tenant's sinks are never another's: GetSink and DeleteSink
// find only the tenant's own. A sink's position is its cursor
// (CursorStore), which deleting the config leaves: a sink put again under
// the same name resumes there.
type SinkStore interface {
	PutSink(ctx context.Context, c *SinkConfig) error
	GetSink(ctx context.Context, tenant, name string) (*SinkConfig, error)
	Sinks(ctx context.Context, tenant string) ([]*SinkConfig, error)
	DeleteSink(ctx context.Context, tenant, name string) error
}

// Limits of a sink's fields.
const (
	maxSinkURL     = 2048
	maxSinkSubject = 200
)

// PrepareSink checks a sink's config and returns a copy with its time in
// UTC, a zero CreatedAt set to now, a webhook's Format defaulted to ndjson
// and an empty OnRefusal to stop: what every SinkStore's PutSink does first. It names every bad
// field.
func PrepareSink(c *SinkConfig, now time.Time) (*SinkConfig, error) {
	if c == nil {
		return nil, Invalid("bad sink", FieldError{Path: "name", Message: "required"})
	}
	p := *c
	if p.CreatedAt.IsZero() {
		p.CreatedAt = now
	}
	p.CreatedAt = p.CreatedAt.UTC()
	if p.Kind == SinkWebhook && p.Format == "" {
		p.Format = FormatNDJSON
	}
	if p.OnRefusal == "" {
		p.OnRefusal = OnRefusalStop
	}
	var fe []FieldError
	bad := func(path, msg string) { fe = append(fe, FieldError{Path: path, Message: msg}) }
	if m := CheckTenant(p.Tenant); m != "" {
		bad("tenant", m)
	}
	if m := CheckTenant(p.Name); m != "" {
		bad("name", m)
	}
	if f := CheckTime("created_at", p.CreatedAt); f != nil {
		fe = append(fe, *f)
	}
	if p.OnRefusal != OnRefusalStop && p.OnRefusal != OnRefusalSkip {
		bad("on_refusal", fmt.Sprintf("%q is not one of stop, skip", p.OnRefusal))
	}
	if len(p.CreatedBy) > MaxNameLen {
		bad("created_by", fmt.Sprintf("longer than %d bytes", MaxNameLen))
	}
	// only refuses the fields set that kind k does not use.
	only := func(k SinkKind, fields ...string) {
		set := map[string]bool{"url": p.URL != "", "address": p.Address != "", "secret": p.Secret != "",
			"format": p.Format != "", "tls": p.TLS, "subject": p.Subject != ""}
		for _, f := range []string{"url", "address", "secret", "format", "tls", "subject"} {
			if set[f] && !slices.Contains(fields, f) {
				bad(f, fmt.Sprintf("does not apply to a %s sink", k))
			}
		}
	}
	switch p.Kind {
	case SinkWebhook:
		only(p.Kind, "url", "secret", "format")
		if m := checkSinkURL(p.URL, "http", "https"); m != "" {
			bad("url", m)
		}
		if p.Secret == "" {
			bad("secret", "required: whsec_ and base64 (POST /v1/sinks and trail sinks add make one)")
		} else if _, err := ParseWebhookSecret(p.Secret); err != nil {
			bad("secret", err.Error())
		}
		if p.Format != FormatNDJSON && p.Format != FormatSplunk && p.Format != FormatOCSF {
			bad("format", fmt.Sprintf("%q is not one of ndjson, splunk, ocsf", p.Format))
		}
	case SinkSyslog:
		only(p.Kind, "address", "tls")
		if m := checkHostPort(p.Address); m != "" {
			bad("address", m)
		}
	case SinkNATS:
		only(p.Kind, "url", "subject", "format")
		if m := checkSinkURL(p.URL, "", "nats", "tls"); m != "" {
			bad("url", m)
		}
		if p.Format != "" && p.Format != FormatNDJSON && p.Format != FormatOCSF {
			bad("format", fmt.Sprintf("%q is not one of ndjson, ocsf", p.Format))
		}
		if m := CheckSubjectPrefix(p.Subject); m != "" {
			bad("subject", m)
		}
	case "":
		bad("kind", "required: one of webhook, syslog, nats")
	default:
		bad("kind", fmt.Sprintf("%q is not one of webhook, syslog, nats", p.Kind))
	}
	if len(fe) > 0 {
		return nil, Invalid("bad sink", fe...)
	}
	return &p, nil
}

// checkSinkURL returns what is wrong with a sink's URL, which must have
// one of schemes, or local (when not "") to a loopback address only (a
// receiver on the same machine), and a host; "" when nothing is.
func checkSinkURL(s, local string, schemes ...string) string {
	if s == "" {
		return "required"
	}
	if len(s) > maxSinkURL {
		return fmt.Sprintf("longer than %d bytes", maxSinkURL)
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return fmt.Sprintf("want %s://HOST[:PORT][/PATH]", schemes[0])
	}
	switch {
	case slices.Contains(schemes, u.Scheme):
	case local != "" && u.Scheme == local:
		if !loopback(u.Hostname()) {
			return fmt.Sprintf("%s:// only to a loopback address; use %s:// for %s", local, schemes[0], u.Hostname())
		}
	default:
		return fmt.Sprintf("want %s:// (not %q)", strings.Join(schemes, ":// or "), u.Scheme)
	}
	if u.Port() != "" {
		if n, err := strconv.Atoi(u.Port()); err != nil || n < 1 || n > 65535 {
			return fmt.Sprintf("port %q is not 1 to 65535", u.Port())
		}
	}
	if u.Fragment != "" {
		return "no #fragment"
	}
	return ""
}

// loopback reports whether host names this machine.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkHostPort returns what is wrong with a host:port, or "".
func checkHostPort(s string) string {
	if s == "" {
		return "required: HOST:PORT"
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" || len(s) > maxSinkURL {
		return "want HOST:PORT"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Sprintf("port %q is not 1 to 65535", port)
	}
	return ""
}

// CheckSubjectPrefix returns what is wrong with a NATS subject prefix (for
// example "trail.events"): tokens of printable characters separated by
// dots, with no wildcard; "" when nothing is.
func CheckSubjectPrefix(s string) string {
	if s == "" {
		return "required: tokens separated by dots (trail.events)"
	}
	if len(s) > maxSinkSubject {
		return fmt.Sprintf("longer than %d bytes", maxSinkSubject)
	}
	for tok := range strings.SplitSeq(s, ".") {
		if tok == "" || tok == "*" || tok == ">" {
			return fmt.Sprintf("%q: want tokens separated by dots, no empty token, no wildcard", s)
		}
		for _, r := range tok {
			if r <= ' ' || r == 0x7f || r == '*' || r == '>' {
				return fmt.Sprintf("%q: no spaces, control characters or wildcards", s)
			}
		}
	}
	return ""
}

// webhookSecretPrefix begins a webhook signing secret, as Standard
// Webhooks write them.
const webhookSecretPrefix = "whsec_"

// ParseWebhookSecret returns the key of a webhook signing secret: whsec_
// and the base64 of at least 16 bytes.
func ParseWebhookSecret(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, webhookSecretPrefix))
	if err != nil || len(b) < 16 {
		return nil, fmt.Errorf("want whsec_ and at least 16 bytes in base64")
	}
	return b, nil
}

// NewWebhookSecret makes a webhook signing secret of 32 random bytes.
func NewWebhookSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return webhookSecretPrefix + base64.StdEncoding.EncodeToString(b[:]), nil
}
