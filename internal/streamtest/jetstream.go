package streamtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/trailaudit/trail/internal/testenv"
)

// NATSURL is the NATS server with JetStream the tests use.
const NATSURL = "nats://127.0.0.1:4222"

// JetStream connects to the NATS server at NATSURL and makes a JetStream
// stream of its own for the test, capturing prefix + ".>", removed after.
// Without the server the test skips, or fails under CI=true.
func JetStream(t testing.TB) (nc *nats.Conn, st jetstream.Stream, prefix string) {
	t.Helper()
	nc, err := nats.Connect(NATSURL, nats.Timeout(2*time.Second))
	if err != nil {
		testenv.Missing(t, "NATS at %s: %v", NATSURL, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("TRAIL_TEST_%d", time.Now().UnixNano())
	prefix = "trailtest." + name
	st, err = js.CreateStream(context.Background(), jetstream.StreamConfig{Name: name, Subjects: []string{prefix + ".>"}, Duplicates: time.Minute})
	if err != nil {
		testenv.Missing(t, "a JetStream stream on %s (is JetStream enabled?): %v", NATSURL, err)
	}
	t.Cleanup(func() { js.DeleteStream(context.Background(), name) })
	return nc, st, prefix
}
