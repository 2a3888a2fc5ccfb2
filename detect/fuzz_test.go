package detect

import (
	"testing"

	"github.com/trailaudit/trail"
)

// FuzzParseRules: rules files from outside never panic the parser, are
// refused only as EINVALID, and a rule the parser accepts runs.
func FuzzParseRules(f *testing.F) {
	for _, data := range BuiltinFiles() {
		f.Add(data)
	}
	f.Add([]byte("title: t\ndetection:\n  sel:\n    - action|re|i: '^user_(login|logout)'\n      request.ip|cidr: [10.0.0.0/8, '::1/128']\n  filter:\n    context.attempts|lt: 3\n  condition: (1 of sel* or all of them) and not filter\n"))
	f.Add([]byte("title: t\nid: &a x\nname: *a\n"))
	f.Add([]byte("title: t\ncorrelation:\n  type: value_count\n  rules: [x]\n  timespan: 9999999d\n  condition: {field: actor.id, gte: 1}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rules, err := ParseRules(data)
		if err != nil {
			if trail.ErrorCode(err) != trail.EINVALID {
				t.Fatalf("ParseRules = %v, want EINVALID", err)
			}
			return
		}
		ev := sampleEvent()
		for _, r := range rules {
			switch {
			case r.kind == KindDetection:
				matches(r, ev)
			case r.corr != nil:
				w := newWindows(r)
				values := make([]string, len(r.corr.groupBy))
				for range 3 {
					w.add(values, ev.Seq, ev.OccurredAt, "v", true)
				}
			}
		}
		_, _ = NewSet("fuzz", rules...)
	})
}
