package natsjs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/export"
	"github.com/trailaudit/trail/internal/ocsfschema"
	"github.com/trailaudit/trail/internal/streamtest"
	"github.com/trailaudit/trail/memory"
	"github.com/trailaudit/trail/storetest"
	"github.com/trailaudit/trail/stream"
	"github.com/trailaudit/trail/stream/natsjs"
)

var connect = streamtest.JetStream

// publish appends 25 events of tenant acme, delivers them through a sink
// writing enc to a JetStream stream of the test's own, redelivers the
// first two, and returns the stream's messages.
func publish(t *testing.T, enc stream.Encoding) []jetstream.Msg {
	t.Helper()
	nc, st, prefix := connect(t)
	s := memory.New(storetest.Validator(), storetest.Signer())
	evs := make([]*trail.Event, 25)
	for i := range evs {
		evs[i] = storetest.Login(fmt.Sprintf("user-%d", i))
		evs[i].Request.Method = "PATCH" // not in OCSF 1.3's list
	}
	if _, err := s.Append(context.Background(), "acme", evs, trail.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	tr, err := natsjs.New(nc, prefix, enc)
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
	batch, err := cons.FetchNoWait(1000)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []jetstream.Msg
	for msg := range batch.Messages() {
		msgs = append(msgs, msg)
	}
	return msgs
}

// checkAll checks every message with a checker (mapping OCSF events with
// the catalog), and their headers: it must verify all 25 events, with no
// redelivery left in the stream.
func checkAll(t *testing.T, msgs []jetstream.Msg) {
	t.Helper()
	check := stream.NewChecker(storetest.Signer().Verifier()).MapWith(catalog.Default())
	for i, msg := range msgs {
		if msg.Headers().Get("Trail-Tenant") != "acme" || msg.Headers().Get("Nats-Msg-Id") == "" {
			t.Errorf("message %d: headers %v", i+1, msg.Headers())
		}
		if dup, err := check.Check(msg.Data()); err != nil || dup {
			t.Fatalf("message %d: dup %v, %v", i+1, dup, err)
		}
	}
	if check.Verified("acme") != 25 {
		t.Fatalf("verified %d of 25 events (%d messages)", check.Verified("acme"), len(msgs))
	}
}

// Every event reaches the JetStream stream once, in order, with its id as
// Nats-Msg-Id (a redelivered message is dropped by the stream), and a
// consumer checks it all against the signed checkpoints.
func TestJetStreamDeliversCheckably(t *testing.T) {
	msgs := publish(t, stream.Encoding{})
	checkAll(t, msgs)
	var l stream.Line
	if err := json.Unmarshal(msgs[0].Data(), &l); err != nil || l.Seq != 1 || l.Event == nil {
		t.Errorf("the first message is %s, want Trail's line of seq 1", msgs[0].Data())
	}
}

// In OCSF, every event is an OCSF 1.3 event valid by the schema's rules,
// with the same headers, and the checkpoints Trail lines: a consumer
// checks the stream as it checks Trail's.
func TestJetStreamOCSF(t *testing.T) {
	msgs := publish(t, stream.Encoding{OCSF: true, Actions: catalog.Default()})
	checkAll(t, msgs)
	rules, err := ocsfschema.Load("../../export/testdata/ocsf-1.3.0.rules.json", export.OCSFVersion)
	if err != nil {
		t.Fatal(err)
	}
	events := 0
	for i, msg := range msgs {
		if msg.Headers().Get("Trail-Kind") != "event" {
			continue
		}
		events++
		if errs := rules.Validate(msg.Data()); len(errs) > 0 {
			t.Errorf("message %d is not valid OCSF: %s", i+1, strings.Join(errs, "; "))
		}
	}
	if events != 25 {
		t.Errorf("%d event messages, want 25", events)
	}
}
