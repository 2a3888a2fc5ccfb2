package stream

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/trailaudit/trail"
)

var _ Transport = (*Webhook)(nil)

// Webhook posts each message to a URL as NDJSON (one line each, in its
// Encoding: Trail's Line or OCSF), signed as
// Standard Webhooks prescribe (https://www.standardwebhooks.com): headers
// webhook-id (the Message.ID, the same on every retry), webhook-timestamp
// (Unix seconds) and webhook-signature ("v1," and the base64 HMAC-SHA256,
// under the secret, of id "." timestamp "." body). A 2xx response
// acknowledges; 408, 429 and 5xx, or no response, are retried; any other
// status refuses the message for good.
type Webhook struct {
	url    string
	secret []byte
	client *http.Client
	now    func() time.Time
	splunk bool
	enc    Encoding
}

// WebhookOptions configure a Webhook.
type WebhookOptions struct {
	// Secret is the signing secret, as Standard Webhooks write it
	// ("whsec_" and base64). Required.
	Secret string
	// Client sends the requests (default: a client with a 30s timeout).
	Client *http.Client
	// Splunk wraps each line in the Splunk HTTP Event Collector's envelope
	// ({"time":…,"source":"trail","sourcetype":"trail:event","event":…}),
	// for a URL that is a collector's /services/collector/event.
	Splunk bool
	// Encoding writes the lines (default: Trail's Line). OCSF does not
	// go with Splunk.
	Encoding Encoding
}

// NewWebhook returns the transport posting to url.
func NewWebhook(url string, o WebhookOptions) (*Webhook, error) {
	secret, err := decodeSecret(o.Secret)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(url, "https://") && !strings.HasPrefix(url, "http://") {
		return nil, fmt.Errorf("stream: webhook url %q: want http:// or https://", url)
	}
	if o.Splunk && o.Encoding.OCSF {
		return nil, fmt.Errorf("stream: webhook: the Splunk envelope carries Trail's lines, not OCSF")
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 30 * time.Second}
	}
	return &Webhook{url: url, secret: secret, client: o.Client, now: time.Now, splunk: o.Splunk, enc: o.Encoding}, nil
}

func decodeSecret(s string) ([]byte, error) {
	b, err := trail.ParseWebhookSecret(s)
	if err != nil {
		return nil, fmt.Errorf("stream: webhook secret: %w", err)
	}
	return b, nil
}

// Sign returns the webhook-signature header of body sent as id at ts.
func Sign(secret, id string, ts time.Time, body []byte) (string, error) {
	key, err := decodeSecret(secret)
	if err != nil {
		return "", err
	}
	return sign(key, id, ts.Unix(), body), nil
}

func sign(key []byte, id string, ts int64, body []byte) string {
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%d.", id, ts)
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Send posts m.
func (w *Webhook) Send(ctx context.Context, m *Message) error {
	body, err := w.enc.NDJSON(m)
	if err != nil {
		return err
	}
	if w.splunk {
		body = splunkEnvelope(m)
	}
	id, ts := m.ID(), w.now().Unix()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return &Refused{Reason: err.Error()}
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", sign(w.secret, id, ts, body))
	resp, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("stream: webhook: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	switch {
	case resp.StatusCode/100 == 2:
		return nil
	case resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode >= 500:
		return fmt.Errorf("stream: webhook: %s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return &Refused{Reason: fmt.Sprintf("webhook answered %s: %s", resp.Status, bytes.TrimSpace(msg))}
}

// splunkEnvelope returns m's lines, each in the Splunk HTTP Event
// Collector's envelope, one after the other as the collector takes them.
// An event's time is its recorded_at.
func splunkEnvelope(m *Message) []byte {
	var b []byte
	for _, l := range m.Lines() {
		env := struct {
			Time       *float64 `json:"time,omitempty"`
			Source     string   `json:"source"`
			SourceType string   `json:"sourcetype"`
			Event      Line     `json:"event"`
		}{Source: "trail", SourceType: "trail:event", Event: l}
		if l.Checkpoint != "" {
			env.SourceType = "trail:checkpoint"
		}
		var ev struct {
			RecordedAt time.Time `json:"recorded_at"`
		}
		if l.Event != nil && json.Unmarshal(l.Event, &ev) == nil && !ev.RecordedAt.IsZero() {
			t := float64(ev.RecordedAt.UnixMilli()) / 1000
			env.Time = &t
		}
		b = append(append(b, marshalLine(&env)...), '\n')
	}
	return b
}
