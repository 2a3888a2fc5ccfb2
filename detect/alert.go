package detect

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
)

// Actor is the actor of every alert: Trail's detection engine.
var Actor = trail.Actor{Type: trail.ActorSystem, ID: "trail-detect", Name: "Trail detection rules"}

// TargetType is the type of an alert's target: the rule that raised it.
const TargetType = "detection_rule"

// alertEvent is the alert_raised event of rule r's hit h, in set.
func alertEvent(set string, r *Rule, h *hit) *trail.Event {
	seqs := make([]any, len(h.evidence))
	for i, s := range h.evidence {
		seqs[i] = s
	}
	ctx := map[string]any{
		"rule_id": r.Ref(), "rule_title": r.Title, "rule_set": set, "level": string(r.Level),
		"window_from": timeText(h.from), "window_to": timeText(h.to),
		"evidence_seqs": seqs, "evidence_count": h.count, "trigger_seq": h.trigger,
	}
	if h.group != nil {
		ctx["group"] = h.group
	}
	if r.kind == KindValueCount {
		ctx["value_count"] = h.values
	}
	return &trail.Event{
		Action:  catalog.AlertRaised,
		Actor:   Actor,
		Targets: []trail.Target{{Type: TargetType, ID: r.Ref(), Name: r.Title}},
		Context: ctx,
	}
}

// alert is what the engine reads back from one of its set's alerts.
type alert struct {
	rule     string
	trigger  uint64
	from, to time.Time
	group    []string // the group-by values, in the rule's order
}

// own reports whether ev is an alert of the engine's set, and reads it.
func (e *Engine) own(ev *trail.Event) (alert, bool) {
	if ev.Action != catalog.AlertRaised || ev.Context["rule_set"] != e.c.Set.Name {
		return alert{}, false
	}
	a := alert{}
	a.rule, _ = ev.Context["rule_id"].(string)
	a.trigger, _ = uintOf(ev.Context["trigger_seq"])
	a.from, _ = timeOf(ev.Context["window_from"])
	a.to, _ = timeOf(ev.Context["window_to"])
	if r := e.c.Set.Rule(a.rule); r != nil && r.corr != nil {
		g, _ := ev.Context["group"].(map[string]any)
		for _, f := range r.corr.groupBy {
			v, ok := g[f].(string)
			if !ok {
				a.group = nil
				break
			}
			a.group = append(a.group, v)
		}
	}
	return a, a.rule != "" && a.trigger > 0
}

func uintOf(v any) (uint64, bool) {
	switch x := v.(type) {
	case json.Number:
		n, err := strconv.ParseUint(x.String(), 10, 64)
		return n, err == nil
	case float64:
		return uint64(x), x >= 0
	case uint64:
		return x, true
	case int:
		return uint64(x), x >= 0
	case int64:
		return uint64(x), x >= 0
	}
	return 0, false
}

func timeOf(v any) (time.Time, bool) {
	s, _ := v.(string)
	t, err := time.Parse(time.RFC3339Nano, s)
	return t, err == nil
}
