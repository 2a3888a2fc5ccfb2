package export

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/internal/ocsfschema"
)

// The OCSF export is held to the schema itself: testdata/ocsf-1.3.0.rules.json
// is compiled from the OCSF schema at its 1.3.0 tag by
// export/internal/ocsfrules (every attribute of the four classes and the
// objects they reach, with its requirement, type, enum and the classes'
// constraints), and every event the export writes must satisfy it.

func loadOCSFRules(t *testing.T) *ocsfschema.Rules {
	t.Helper()
	r, err := ocsfschema.Load("testdata/ocsf-1.3.0.rules.json", OCSFVersion)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestOCSFValidBySchema writes events of every built-in action, in shapes
// from the fullest to the barest, and holds each to the OCSF 1.3.0 schema.
func TestOCSFValidBySchema(t *testing.T) {
	rules := loadOCSFRules(t)
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	shapes := []struct {
		name string
		ev   func(a *trail.Action) *trail.Event
	}{
		{"full", func(a *trail.Action) *trail.Event {
			return &trail.Event{ID: "0190c1a2-0000-7000-8000-000000000001", Seq: 7, Tenant: "acme", Action: a.Name, Category: a.Category, Outcome: a.Outcome,
				OccurredAt: at, RecordedAt: at, CorrelationID: "c-1", Reason: "because",
				Actor:   trail.Actor{ID: "u-1", Type: trail.ActorUser, Name: "Alice", Email: "alice@example.com", Roles: []string{"admin"}},
				Targets: []trail.Target{{Type: "user", ID: "u-2", Name: "Bob"}, {Type: "document", ID: "d-1"}},
				Request: trail.Request{IP: "192.0.2.1", UserAgent: "Mozilla/5.0", Method: "post", Path: "/v1/x", RequestID: "r-1", SessionID: "s-1", TraceID: "t-1"},
				Scope:   trail.Scope{Organization: "org-1", Workspace: "ws-1"},
				Context: map[string]any{"k": "v"}}
		}},
		{"system actor, nothing else", func(a *trail.Action) *trail.Event {
			return &trail.Event{ID: "0190c1a2-0000-7000-8000-000000000002", Action: a.Name, Category: a.Category, Outcome: a.Outcome, OccurredAt: at,
				Actor: trail.Actor{ID: "cron", Type: trail.ActorSystem}}
		}},
		{"service actor, a non-user target, PATCH", func(a *trail.Action) *trail.Event {
			return &trail.Event{ID: "0190c1a2-0000-7000-8000-000000000003", Action: a.Name, Category: a.Category, Outcome: a.Outcome, OccurredAt: at,
				Actor:   trail.Actor{ID: "billing", Type: trail.ActorService},
				Targets: []trail.Target{{Type: "invoice", ID: "i-1"}},
				Request: trail.Request{Method: "PATCH", Path: "/v1/invoices/i-1"}}
		}},
	}
	cat := catalog.Default()
	bad := 0
	for _, sh := range shapes {
		for _, a := range cat.Actions(catalog.Filter{}) {
			ev := sh.ev(a)
			oe := toOCSF(ev, resolve(cat, ev))
			b, err := json.Marshal(&oe)
			if err != nil {
				t.Fatal(err)
			}
			if errs := rules.Validate(b); len(errs) > 0 {
				bad++
				if bad <= 20 {
					t.Errorf("%s, %s (class %d): %s", sh.name, a.Name, oe.ClassUID, strings.Join(errs, "; "))
				}
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d events are not valid OCSF %s", bad, OCSFVersion)
	}
	// And the golden file's events, written through the exporter.
	golden, err := os.ReadFile("testdata/ocsf.golden")
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range bytes.Split(bytes.TrimSpace(golden), []byte("\n")) {
		if errs := rules.Validate(line); len(errs) > 0 {
			t.Errorf("ocsf.golden line %d: %s", i+1, strings.Join(errs, "; "))
		}
	}
}

// The validator finds what it is there to find: each edit of a valid event
// is reported.
func TestOCSFValidatorFinds(t *testing.T) {
	rules := loadOCSFRules(t)
	const valid = `{"class_uid":3004,"category_uid":3,"activity_id":1,"type_uid":300401,"time":1,"severity_id":1,` +
		`"metadata":{"version":"1.3.0","product":{"name":"Trail","vendor_name":"Trail"}},"entity":{"uid":"e-1"}}`
	if errs := rules.Validate([]byte(valid)); len(errs) > 0 {
		t.Fatalf("a valid event: %v", errs)
	}
	for _, tt := range []struct{ old, new, want string }{
		{`,"entity":{"uid":"e-1"}`, ``, `entity: required by entity_management`},
		{`"entity":{"uid":"e-1"}`, `"entity":{"type":"x"}`, `entity: managed_entity needs at least one of`},
		{`"time":1,`, ``, `time: required`},
		{`"time":1`, `"time":1,"bogus":1`, `bogus: not an attribute of entity_management`},
		{`"time":1`, `"time":1,"http_request":{"http_method":"PATCH"}`, `http_request.http_method: PATCH is not one of`},
		{`"severity_id":1`, `"severity_id":"1"`, `severity_id: want an integer`},
		{`"activity_id":1,`, ``, `activity_id: required`},
		{`"activity_id":1`, `"activity_id":42`, `activity_id: 42 is not one of`},
		{`"vendor_name":"Trail"`, `"vendor":"Trail"`, `metadata.product.vendor: not an attribute of product`},
	} {
		edited := strings.Replace(valid, tt.old, tt.new, 1)
		if edited == valid {
			t.Fatalf("edit %q changes nothing", tt.old)
		}
		if errs := strings.Join(rules.Validate([]byte(edited)), "; "); !strings.Contains(errs, tt.want) {
			t.Errorf("%s: errors %q, want %q", edited, errs, tt.want)
		}
	}
}

// MarshalOCSF is the writer's line for one event; given the event's stored
// bytes, it carries them verbatim (no HTML escaping, no reordering) in
// unmapped.trail_event, and the event stays valid OCSF.
func TestMarshalOCSF(t *testing.T) {
	rules := loadOCSFRules(t)
	cat := catalog.Default()
	ev := &trail.Event{ID: "0190c1a2-0000-7000-8000-000000000009", Seq: 9, Tenant: "acme", Action: "user_login_success",
		OccurredAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Actor: trail.Actor{ID: "u-1", Type: trail.ActorUser},
		Request: trail.Request{UserAgent: "curl & <friends>"}}
	var line bytes.Buffer
	w, _ := NewWriter(&line, OCSF, cat)
	if err := w.Write(ev); err != nil {
		t.Fatal(err)
	}
	w.Close()
	plain, err := MarshalOCSF(ev, cat, nil)
	if err != nil || string(plain)+"\n" != line.String() {
		t.Fatalf("MarshalOCSF = %s, %v; the writer wrote %s", plain, err, line.Bytes())
	}
	stored := []byte(`{"b":"<&>","a":1}`)
	b, err := MarshalOCSF(ev, cat, stored)
	if err != nil {
		t.Fatal(err)
	}
	if errs := rules.Validate(b); len(errs) > 0 {
		t.Errorf("not valid OCSF: %v", errs)
	}
	var got struct {
		Unmapped struct {
			TrailEvent json.RawMessage `json:"trail_event"`
		} `json:"unmapped"`
	}
	if err := json.Unmarshal(b, &got); err != nil || !bytes.Equal(got.Unmapped.TrailEvent, stored) {
		t.Errorf("unmapped.trail_event = %s, %v; want %s verbatim", got.Unmapped.TrailEvent, err, stored)
	}
	if _, err := MarshalOCSF(ev, cat, []byte("{not json")); trail.ErrorCode(err) != trail.EINVALID {
		t.Errorf("stored bytes that are not JSON: %v, want EINVALID", err)
	}
}
