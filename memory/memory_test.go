package memory_test

import (
	"time"

	"testing"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/memory"
	"github.com/trailaudit/trail/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) trail.Store {
		return memory.New(storetest.Validator(), storetest.Signer())
	})
}

func TestKeys(t *testing.T) {
	storetest.RunKeys(t, func(t *testing.T) storetest.KeyStore {
		return memory.New(storetest.Validator(), storetest.Signer())
	})
}

func TestSubjectKeys(t *testing.T) {
	storetest.RunSubjectKeys(t, func(t *testing.T) trail.SubjectKeyStore { return memory.NewSubjectKeys() })
}

func TestCursors(t *testing.T) {
	storetest.RunCursors(t, func(t *testing.T) trail.CursorStore {
		return memory.New(storetest.Validator(), storetest.Signer())
	})
}

func TestRules(t *testing.T) {
	storetest.RunRules(t, func(t *testing.T) trail.RuleStore {
		return memory.New(storetest.Validator(), storetest.Signer())
	})
}

func TestSinks(t *testing.T) {
	storetest.RunSinks(t, func(t *testing.T) trail.SinkStore {
		return memory.New(storetest.Validator(), storetest.Signer())
	})
}

func TestSessions(t *testing.T) {
	storetest.RunSessions(t, func(t *testing.T) trail.SessionStore {
		return memory.New(storetest.Validator(), storetest.Signer())
	})
}

func TestCosignatures(t *testing.T) {
	storetest.RunCosignatures(t, func(t *testing.T) trail.Store {
		return memory.New(storetest.Validator(), storetest.Signer())
	})
}

func TestElector(t *testing.T) {
	storetest.RunElector(t, func(t *testing.T) (a, b trail.Elector) {
		s := memory.New(storetest.Validator(), storetest.Signer())
		return s.Elector(), s.Elector()
	}, time.Second)
}
