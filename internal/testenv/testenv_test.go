package testenv_test

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/trailaudit/trail/internal/testenv"
)

// recorder is a testing.TB that notes whether Missing failed or skipped it.
type recorder struct {
	testing.TB
	failed, skipped bool
	msg             string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatal(args ...any) {
	r.failed, r.msg = true, fmt.Sprint(args...)
	runtime.Goexit()
}

func (r *recorder) Skip(args ...any) {
	r.skipped, r.msg = true, fmt.Sprint(args...)
	runtime.Goexit()
}

// missing runs Missing on a recorder in a goroutine of its own, as Fatal and
// Skip end the goroutine they are called on.
func missing(t *testing.T) *recorder {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		testenv.Missing(r, "no %s here", "thing")
	}()
	<-done
	return r
}

func TestMissingFailsUnderCI(t *testing.T) {
	t.Setenv("CI", "true")
	if r := missing(t); !r.failed || r.skipped {
		t.Errorf("under CI=true: failed=%v skipped=%v, want a failure", r.failed, r.skipped)
	} else if r.msg != "no thing here (CI=true, so this fails: CI must run it)" {
		t.Errorf("message %q", r.msg)
	}
}

func TestMissingSkipsElsewhere(t *testing.T) {
	for _, ci := range []string{"", "false", "1"} {
		t.Setenv("CI", ci)
		if r := missing(t); r.failed || !r.skipped || r.msg != "no thing here" {
			t.Errorf("CI=%q: failed=%v skipped=%v message %q, want a skip", ci, r.failed, r.skipped, r.msg)
		}
	}
}
