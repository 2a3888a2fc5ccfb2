package sinks_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/internal/ledger"
	"github.com/trailaudit/trail/memory"
	"github.com/trailaudit/trail/storetest"
	"github.com/trailaudit/trail/stream/sinks"
)

var ops = trail.Actor{Type: trail.ActorSystem, ID: "cli:ops"}

// records returns the admin_config_changed records in tenant's log.
func records(t *testing.T, s trail.Store, tenant string) []*trail.Event {
	t.Helper()
	var out []*trail.Event
	err := s.Scan(context.Background(), tenant, 1, 0, func(ev *trail.Event) error {
		if ev.Action == catalog.AdminConfigChanged {
			out = append(out, ev)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Adding and removing a sink each leave a record in its tenant's log,
// with the configuration but never its secret.
func TestAddAndRemoveAreRecorded(t *testing.T) {
	ctx := context.Background()
	s := memory.New(storetest.Validator(), storetest.Signer())
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	c, seq, err := sinks.Add(ctx, s, s, webhook("acme", "siem", "https://siem.example.com/in"), ops, now)
	if err != nil {
		t.Fatal(err)
	}
	if c.CreatedBy != "cli:ops" || !c.CreatedAt.Equal(now) || c.Format != trail.FormatNDJSON || seq != 1 {
		t.Errorf("added %+v at seq %d", c, seq)
	}
	if got, err := s.GetSink(ctx, "acme", "siem"); err != nil || got.Secret != storetest.WebhookSecret {
		t.Fatalf("stored %+v, %v", got, err)
	}
	seq, err = sinks.Remove(ctx, s, s, "acme", "siem", ops)
	if err != nil || seq != 2 {
		t.Fatalf("Remove: seq %d, %v", seq, err)
	}
	if _, err := s.GetSink(ctx, "acme", "siem"); trail.ErrorCode(err) != trail.ENOTFOUND {
		t.Errorf("after Remove: %v", err)
	}
	recs := records(t, s, "acme")
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
	added, removed := recs[0].Context, recs[1].Context
	if added["config_key"] != "sink:siem" || added["old_value"] != nil || added["changed_by"] != "cli:ops" || recs[0].Actor.ID != ops.ID {
		t.Errorf("the record of the addition: %v by %+v", added, recs[0].Actor)
	}
	if nv, _ := added["new_value"].(map[string]any); nv["url"] != "https://siem.example.com/in" || nv["kind"] != "webhook" {
		t.Errorf("new_value %v", added["new_value"])
	}
	if removed["new_value"] != nil || removed["old_value"] == nil {
		t.Errorf("the record of the removal: %v", removed)
	}
	for _, r := range recs {
		if b, _ := trail.MarshalCanonical(r); strings.Contains(string(b), "whsec_") {
			t.Errorf("a record holds the secret: %s", b)
		}
	}
}

// What is refused is refused before anything is recorded.
func TestRefusedChangesAreNotRecorded(t *testing.T) {
	ctx := context.Background()
	s := memory.New(storetest.Validator(), storetest.Signer())
	if _, _, err := sinks.Add(ctx, s, s, webhook("acme", "siem", "https://siem.example.com/in"), ops, time.Now()); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"a name taken":   second(sinks.Add(ctx, s, s, webhook("acme", "siem", "https://other.example.com/"), ops, time.Now())),
		"a bad config":   second(sinks.Add(ctx, s, s, webhook("acme", "bad", "ftp://x/"), ops, time.Now())),
		"an unknown one": func() error { _, err := sinks.Remove(ctx, s, s, "acme", "nope", ops); return err }(),
		"another tenant": func() error { _, err := sinks.Remove(ctx, s, s, "globex", "siem", ops); return err }(),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if n := len(records(t, s, "acme")); n != 1 {
		t.Errorf("%d records, want the first addition's only", n)
	}
}

func second(_ *trail.SinkConfig, _ uint64, err error) error { return err }

// downWriter is a log that cannot be written.
type downWriter struct{}

func (downWriter) AppendOwn(ctx context.Context, tenant string, o ledger.Own) (*trail.AppendResult, error) {
	return nil, errors.New("disk full")
}

// A change that cannot be recorded is not made.
func TestUnrecordedChangesAreNotMade(t *testing.T) {
	ctx := context.Background()
	s := memory.New(storetest.Validator(), storetest.Signer())
	_, _, err := sinks.Add(ctx, s, downWriter{}, webhook("acme", "siem", "https://siem.example.com/in"), ops, time.Now())
	if trail.ErrorCode(err) != trail.EINTERNAL || !strings.Contains(trail.ErrorMessage(err), "not made") {
		t.Fatalf("Add with the log down: %v", err)
	}
	if _, err := s.GetSink(ctx, "acme", "siem"); trail.ErrorCode(err) != trail.ENOTFOUND {
		t.Errorf("the sink was added unrecorded: %v", err)
	}
	if _, _, err := sinks.Add(ctx, s, s, webhook("acme", "siem", "https://siem.example.com/in"), ops, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := sinks.Remove(ctx, s, downWriter{}, "acme", "siem", ops); trail.ErrorCode(err) != trail.EINTERNAL {
		t.Fatalf("Remove with the log down: %v", err)
	}
	if _, err := s.GetSink(ctx, "acme", "siem"); err != nil {
		t.Errorf("the sink was removed unrecorded: %v", err)
	}
}
