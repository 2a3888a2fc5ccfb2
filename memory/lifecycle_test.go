package memory_test

import (
	"testing"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/memory"
	"github.com/trailaudit/trail/storetest"
)

func TestLifecycle(t *testing.T) {
	storetest.RunLifecycle(t, func(t *testing.T) trail.Store {
		return memory.New(storetest.Validator(), storetest.Signer())
	})
}
