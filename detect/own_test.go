package detect

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/internal/ledger"
	"github.com/trailaudit/trail/tlog"
)

// A key's refused forgeries raise one alert at once, then none for an
// hour, counting the attempts, and the first attempt after the hour
// raises the next with the count; each key has its own hour; every
// attempt is counted per tenant.
func TestForgeries(t *testing.T) {
	ctx := context.Background()
	s := newMemory(t)
	f := NewForgeries(s, time.Hour)
	mallory := trail.Actor{Type: trail.ActorAPIKey, ID: "3f9c2a7b1e04", Name: "ci"}
	other := trail.Actor{Type: trail.ActorAPIKey, ID: "0a1b2c3d4e5f"}
	steps := []struct {
		key    trail.Actor
		at     time.Duration
		action string
		alerts int // in the log after the step
	}{
		{mallory, 0, "alert_raised", 1},
		{mallory, time.Minute, "audit_log_pruned", 1},
		{mallory, 59 * time.Minute, "alert_raised", 1},
		{other, 59 * time.Minute, "subject_erased", 2},
		{mallory, 61 * time.Minute, "legal_hold_placed", 3},
	}
	for i, st := range steps {
		if err := f.Refused(ctx, "acme", st.key, []string{st.action}, t0.Add(st.at)); err != nil {
			t.Fatal(err)
		}
		if n := len(alerts(t, s)); n != st.alerts {
			t.Fatalf("step %d: %d alerts, want %d", i, n, st.alerts)
		}
	}
	as := alerts(t, s)
	last := as[2].Context
	if fmt.Sprintf("%v %v %v %v", last["attempts"], last["actions"], last["window_from"], last["window_to"]) !=
		"3 [alert_raised audit_log_pruned legal_hold_placed] 2026-03-02T09:01:00Z 2026-03-02T10:01:00Z" {
		t.Errorf("the second alert of the key: %v", last)
	}
	for _, a := range as {
		if len(a.Violations) != 0 || a.Context["rule_id"] != OwnForgeryRefused || a.Targets[1].Type != "api_key" {
			t.Errorf("alert %+v", a)
		}
	}
	if got := f.Counts(); got["acme"] != 5 {
		t.Errorf("counts %v, want 5 for acme", got)
	}
}

// An alert that cannot be written is an error, and the next attempt
// tries again, counting the attempts it could not report.
func TestForgeriesUnrecorded(t *testing.T) {
	ctx := context.Background()
	s := newMemory(t)
	key := trail.Actor{Type: trail.ActorAPIKey, ID: "3f9c2a7b1e04"}
	f := NewForgeries(failingWriter{}, time.Hour)
	if err := f.Refused(ctx, "acme", key, []string{"alert_raised"}, t0); err == nil {
		t.Fatal("an alert that could not be written is no error")
	}
	f.w = s
	if err := f.Refused(ctx, "acme", key, []string{"alert_raised"}, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if as := alerts(t, s); len(as) != 1 || fmt.Sprint(as[0].Context["attempts"]) != "2" {
		t.Errorf("alerts %v, want one of 2 attempts", as)
	}
}

// The alert of a verification that found damage names the damage and its
// seqs, and is an alert like the engine's (no catalog rule broken); an
// intact log has none.
func TestDamageAlert(t *testing.T) {
	if DamageAlert(&tlog.Report{Tenant: "acme", Size: 12}, "ops", t0) != nil {
		t.Error("an intact log raised an alert")
	}
	rep := &tlog.Report{Tenant: "acme", Size: 12, Damage: []tlog.Damage{
		{Kind: tlog.Changed, Seq: 3, Detail: "the stored bytes do not match their leaf hash"},
		{Kind: tlog.Index, Seq: 3, Detail: "actor_id is not the signed bytes'"},
		{Kind: tlog.Missing, Seq: 9, Detail: "no row"},
	}}
	s := newMemory(t)
	res, err := s.AppendOwn(context.Background(), "acme", ledger.Records(DamageAlert(rep, "ops (3f9c2a7b1e04)", t0)))
	if err != nil {
		t.Fatal(err)
	}
	a := res.Events[0]
	c := a.Context
	if a.Action != catalog.AlertRaised || len(a.Violations) != 0 || c["rule_set"] != OwnSet || c["rule_id"] != OwnVerificationDamage ||
		fmt.Sprintf("%v %v %v", c["evidence_seqs"], c["evidence_count"], c["trigger_seq"]) != "[3 9] 3 9" ||
		c["first_damage"] != "changed at seq 3: the stored bytes do not match their leaf hash" || len(c["damage"].([]any)) != 3 {
		t.Errorf("the damage alert: %+v", a)
	}
	if _, err := OwnAlert(Finding{Rule: "nonsense"}); err == nil {
		t.Error("OwnAlert took a rule that is not Trail's")
	}
}
