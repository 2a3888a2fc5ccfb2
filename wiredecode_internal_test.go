package trail

import (
	"strings"
	"testing"
)

// TestDecodeEventKnowsEveryMember: a document with every member of the
// wire form (the struct tags of wireEvent and the types it holds) is
// decoded in one pass, so no member of a new field is left to the strict
// reader unnoticed.
func TestDecodeEventKnowsEveryMember(t *testing.T) {
	special := map[string]string{"seq": `1`, "recorded_at": `"2026-11-24T10:00:00Z"`,
		"occurred_at": `"2026-11-24T10:00:00Z"`, "context": `{"k":[1,true,null,{"o":"x"}]}`}
	var doc func(s *shape) string
	doc = func(s *shape) string {
		switch {
		case s.names != nil:
			var members []string
			for name, ms := range s.names {
				v, ok := special[name]
				if !ok {
					v = doc(ms)
				}
				members = append(members, `"`+name+`":`+v)
			}
			return "{" + strings.Join(members, ",") + "}"
		case s.elem != nil:
			return "[" + doc(s.elem) + "]"
		}
		return `"x"`
	}
	data := doc(wireShape())
	ev, ok := decodeEvent([]byte(data), wireForm)
	if !ok {
		t.Fatalf("%s: left to the strict reader", data)
	}
	if ev.Actor.Roles[0] != "x" || ev.Request.TraceID != "x" || ev.Violations[0].Message != "x" || ev.Scope.Team != "x" {
		t.Errorf("%s: decoded to %+v", data, ev)
	}
}
