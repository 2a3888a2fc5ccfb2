package natsjs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/streamtest"
	"github.com/trailaudit/trail/memory"
	"github.com/trailaudit/trail/storetest"
	"github.com/trailaudit/trail/stream"
	"github.com/trailaudit/trail/stream/natsjs"
)

var connect = streamtest.JetStream

// Every event reaches the JetStream stream once, in order, with its id as
// Nats-Msg-Id (a redelivered message is dropped by the stream), and a
// consumer checks it all against the signed checkpoints.
func TestJetStreamDeliversCheckably(t *testing.T) {
	nc, st, prefix := connect(t)
	s := memory.New(storetest.Validator(), storetest.Signer())
	evs := make([]*trail.Event, 25)
	for i := range evs {
		evs[i] = storetest.Login(fmt.Sprintf("user-%d", i))
	}
	if _, err := s.Append(context.Background(), "acme", evs, trail.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	tr, err := natsjs.New(nc, prefix)
	if err != nil {
		t.Fatal(err)
	}
	sk, err := stream.New(stream.Config{Name: "bus", Tenant: "acme", Log: s, Cursors: s, Transport: tr, Batch: 10, Poll: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sk.Run(ctx) }()
	for deadline := time.Now().Add(10 * time.Second); sk.Status().Cursor < 25 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // the caught-up checkpoint
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// A redelivery of a message already published is dropped by the stream.
	m := &stream.Message{Sink: "bus", Tenant: "acme"}
	if err := s.ScanLeaves(context.Background(), "acme", 1, 2, func(l trail.Leaf) error {
		m.Records = append(m.Records, stream.Record{Seq: l.Seq, Body: append([]byte(nil), l.Body...)})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := tr.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}

	cons, err := st.OrderedConsumer(context.Background(), jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	check := stream.NewChecker(storetest.Signer().Verifier())
	batch, err := cons.FetchNoWait(1000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for msg := range batch.Messages() {
		n++
		var l stream.Line
		if err := json.Unmarshal(msg.Data(), &l); err != nil {
			t.Fatal(err)
		}
		if msg.Headers().Get("Trail-Tenant") != "acme" || msg.Headers().Get("Nats-Msg-Id") == "" {
			t.Errorf("message %d: headers %v", n, msg.Headers())
		}
		if dup, err := check.Line(&l); err != nil || dup {
			t.Fatalf("message %d: dup %v, %v", n, dup, err)
		}
	}
	if check.Verified("acme") != 25 {
		t.Fatalf("verified %d of 25 events (%d messages)", check.Verified("acme"), n)
	}
}
