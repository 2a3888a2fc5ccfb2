package tlog

import (
	"context"
	"testing"
)

// staleLog is a log read while a commit lands: Checkpoints still yields
// the checkpoints of before the commit, while the rows and the latest
// checkpoint already include it.
type staleLog struct {
	*memLog
	before [][]byte
}

func (l *staleLog) Checkpoints(ctx context.Context, tenant string, fn func(note []byte) error) error {
	for _, n := range l.before {
		if err := fn(n); err != nil {
			return err
		}
	}
	return nil
}

// TestVerifyWhileAppending: rows appended after Verify read the checkpoints
// are not damage when the latest checkpoint covers them: they are counted
// as unverified, for the next run. Rows no checkpoint covers stay Extra.
func TestVerifyWhileAppending(t *testing.T) {
	s := signer(t, testKey)
	full := buildLog(t, s, events(20, 200), 5)
	live := &staleLog{memLog: full, before: full.notes[:3]} // checkpoints up to 15
	rep, err := Verify(context.Background(), live, testTenant, s.Verifier(), VerifyOptions{})
	if err != nil || !rep.OK() || rep.Unverified != 5 || rep.Size != 15 {
		t.Fatalf("verify while appending: %v %+v; want OK, size 15, 5 unverified", err, rep)
	}

	forged := full.clone()
	forged.notes = forged.notes[:3] // rows 16-20 covered by no checkpoint at all
	rep, err = Verify(context.Background(), forged, testTenant, s.Verifier(), VerifyOptions{})
	if err != nil || rep.First() == nil || rep.First().Kind != Extra || rep.First().Seq != 16 {
		t.Fatalf("rows no checkpoint covers: %v %+v; want extra at 16", err, rep)
	}
}
