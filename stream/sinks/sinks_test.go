package sinks_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/internal/streamtest"
	"github.com/trailaudit/trail/sqlite"
	"github.com/trailaudit/trail/storetest"
	"github.com/trailaudit/trail/stream"
	"github.com/trailaudit/trail/stream/sinks"
)

// openStore opens a real SQLite store in a fresh directory.
func openStore(t *testing.T) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "trail.db"), sqlite.Options{Validator: storetest.Validator(), Signer: storetest.Signer()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func appendN(t *testing.T, s trail.Store, tenant string, n int) {
	t.Helper()
	evs := make([]*trail.Event, n)
	for i := range evs {
		evs[i] = storetest.Login(fmt.Sprintf("user-%d", i))
	}
	if _, err := s.Append(context.Background(), tenant, evs, trail.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
}

func newReceiver(t *testing.T) *streamtest.Receiver {
	return streamtest.NewReceiver(t, storetest.WebhookSecret, storetest.Signer().Verifier())
}

func webhook(tenant, name, url string) *trail.SinkConfig {
	return &trail.SinkConfig{Tenant: tenant, Name: name, Kind: trail.SinkWebhook, URL: url, Secret: storetest.WebhookSecret}
}

func put(t *testing.T, db *sqlite.DB, c *trail.SinkConfig) {
	t.Helper()
	if err := db.PutSink(context.Background(), c); err != nil {
		t.Fatal(err)
	}
}

// start runs a supervisor over db that reloads only when told (reload is
// the period otherwise), and returns it with a stop that waits for it.
func start(t *testing.T, db *sqlite.DB, reload time.Duration) (*sinks.Supervisor, func()) {
	t.Helper()
	sv, err := sinks.New(sinks.Config{Configs: db, Log: db, Cursors: db, Writer: db, Reload: reload, MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		Sink: stream.Config{Batch: 4, Poll: 5 * time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sv.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the supervisor did not stop within 10s")
		}
	}
	t.Cleanup(stop)
	return sv, stop
}

func status(t *testing.T, sv *sinks.Supervisor, tenant, name string) stream.Status {
	t.Helper()
	st, ok := sv.Status(tenant, name)
	if !ok {
		t.Fatalf("sink %s/%s is not running", tenant, name)
	}
	return st
}

// The supervisor runs each configured sink from a real SQLite store to a
// real webhook receiver: it delivers everything, checkably; picks up a
// sink added (at a reload, or at once with Reload) and stops one removed;
// and stops them all on shutdown, each cursor where its receiver left it.
func TestSupervisorRunsTheConfiguredSinks(t *testing.T) {
	db := openStore(t)
	appendN(t, db, "acme", 10)
	appendN(t, db, "globex", 3)
	first := newReceiver(t)
	put(t, db, webhook("acme", "siem", first.URL))
	sv, stop := start(t, db, 20*time.Millisecond) // picks up what is stored by polling
	streamtest.Eventually(t, "acme's 10 events verified by the first receiver", func() bool { return first.Verified("acme") == 10 })
	appendN(t, db, "acme", 5)
	streamtest.Eventually(t, "15 events verified", func() bool { return first.Verified("acme") == 15 })
	streamtest.Eventually(t, "no lag", func() bool { st := status(t, sv, "acme", "siem"); return st.Cursor == 15 && st.Lag == 0 })
	if st := status(t, sv, "acme", "siem"); st.Stopped || st.Delivered == 0 || st.Head != 15 || st.LastError != "" {
		t.Errorf("status %+v, want running, delivered, head 15, no error", st)
	}

	// A sink of another tenant, added while the supervisor runs.
	second := newReceiver(t)
	put(t, db, webhook("globex", "siem", second.URL))
	sv.Reload()
	streamtest.Eventually(t, "globex's 3 events verified by the second receiver", func() bool { return second.Verified("globex") == 3 })
	if got := sv.Statuses(""); len(got) != 2 || got[0].Tenant != "acme" || got[1].Tenant != "globex" {
		t.Errorf("Statuses(\"\") = %+v, want acme's and globex's", got)
	}
	if got := sv.Statuses("globex"); len(got) != 1 || got[0].Name != "siem" || got[0].Tenant != "globex" {
		t.Errorf("Statuses(globex) = %+v, want globex's only", got)
	}
	if second.Verified("acme") != 0 || first.Verified("globex") != 0 {
		t.Error("a receiver got another tenant's events")
	}

	// Removed: it stops, and gets nothing more.
	if err := db.DeleteSink(context.Background(), "acme", "siem"); err != nil {
		t.Fatal(err)
	}
	sv.Reload()
	streamtest.Eventually(t, "the removed sink stopped", func() bool { _, ok := sv.Status("acme", "siem"); return !ok })
	appendN(t, db, "acme", 2)
	appendN(t, db, "globex", 2)
	streamtest.Eventually(t, "globex's 5 events verified", func() bool { return second.Verified("globex") == 5 })
	streamtest.Eventually(t, "globex's cursor at 5", func() bool { return status(t, sv, "globex", "siem").Cursor == 5 })
	stop()
	if got := first.Verified("acme"); got != 15 {
		t.Errorf("the removed sink delivered %d events, want the 15 from before", got)
	}
	for tenant, want := range map[string]uint64{"acme": 15, "globex": 5} {
		if c, err := db.Cursor(context.Background(), "sink.siem", tenant); err != nil || c != want {
			t.Errorf("cursor of %s's sink: %d, %v; want %d", tenant, c, err, want)
		}
	}
}

// recordAt returns the event at seq of tenant's log, which must be one of
// the supervisor's records about sink name (action).
func recordAt(t *testing.T, db *sqlite.DB, tenant string, seq uint64, action, name string) *trail.Event {
	t.Helper()
	ev, err := db.GetSeq(context.Background(), tenant, seq)
	if err != nil {
		t.Fatalf("seq %d: %v", seq, err)
	}
	if ev.Action != action || ev.Context["sink"] != name || ev.Actor.ID != sinks.Actor.ID || len(ev.Targets) != 1 || ev.Targets[0].ID != name {
		t.Fatalf("seq %d is %s by %+v about %v, want %s about sink %s", seq, ev.Action, ev.Actor, ev.Context["sink"], action, name)
	}
	return ev
}

// A receiver that refuses a message for good stops its sink, which the
// supervisor leaves stopped with the receiver's answer and records in the
// tenant's log (sink_stopped: an alert that reaches the tenant's other
// sinks); resumed (once the receiver is fixed), or put again, it goes on
// from its cursor.
func TestSupervisorLeavesARefusedSinkStopped(t *testing.T) {
	db := openStore(t)
	appendN(t, db, "acme", 3)
	rcv := newReceiver(t)
	rcv.Refuse(true)
	put(t, db, webhook("acme", "siem", rcv.URL))
	sv, _ := start(t, db, 10*time.Millisecond)
	streamtest.Eventually(t, "the sink stopped", func() bool { st, ok := sv.Status("acme", "siem"); return ok && st.Stopped })
	time.Sleep(100 * time.Millisecond) // ten reloads: none may run it again
	st := status(t, sv, "acme", "siem")
	if !st.Stopped || st.Cursor != 0 || st.Failures != 1 || !strings.Contains(st.LastError, "schema says no") {
		t.Fatalf("status %+v, want stopped at cursor 0 after one failure, with the receiver's answer", st)
	}
	streamtest.Eventually(t, "the stop recorded", func() bool { _, err := db.GetSeq(context.Background(), "acme", 4); return err == nil })
	ev := recordAt(t, db, "acme", 4, catalog.SinkStopped, "siem")
	if r, _ := ev.Context["reason"].(string); !strings.Contains(r, "schema says no") || fmt.Sprint(ev.Context["cursor"]) != "0" {
		t.Errorf("sink_stopped context %v, want the receiver's answer and cursor 0", ev.Context)
	}
	if err := sv.Resume("acme", "nope"); trail.ErrorCode(err) != trail.ENOTFOUND {
		t.Errorf("Resume of an unknown sink: %v, want ENOTFOUND", err)
	}

	rcv.Refuse(false)
	if err := sv.Resume("acme", "siem"); err != nil {
		t.Fatal(err)
	}
	streamtest.Eventually(t, "the resumed sink delivered the 3 events and its stop record", func() bool { return rcv.Verified("acme") == 4 })
	if st := status(t, sv, "acme", "siem"); st.Stopped || st.LastError != "" {
		t.Errorf("status %+v, want running", st)
	}
	if err := sv.Resume("acme", "siem"); trail.ErrorCode(err) != trail.ECONFLICT {
		t.Errorf("Resume of a running sink: %v, want ECONFLICT", err)
	}

	// Put again, a stopped sink goes on from its cursor too.
	rcv.Refuse(true)
	appendN(t, db, "acme", 1)
	streamtest.Eventually(t, "the sink stopped again", func() bool { st, ok := sv.Status("acme", "siem"); return ok && st.Stopped })
	rcv.Refuse(false)
	if err := db.DeleteSink(context.Background(), "acme", "siem"); err != nil {
		t.Fatal(err)
	}
	put(t, db, webhook("acme", "siem", rcv.URL))
	streamtest.Eventually(t, "the sink put again delivered the event and the second stop record", func() bool { return rcv.Verified("acme") == 6 })
}

// A sink configured to skip records each event its receiver refuses
// (sink_skipped: the sink, the seq, the receiver's answer), sends a
// stand-in in its place, and goes on: the receiver verifies the whole log,
// knowing which seqs it lacks the bytes of, and the records of the skips
// reach it too.
func TestSupervisorSkipsAndRecords(t *testing.T) {
	db := openStore(t)
	appendN(t, db, "acme", 6)
	rcv := newReceiver(t)
	rcv.RefuseSeq(2, 5)
	c := webhook("acme", "siem", rcv.URL)
	c.OnRefusal = trail.OnRefusalSkip
	put(t, db, c)
	sv, _ := start(t, db, time.Hour)
	streamtest.Eventually(t, "the 6 events and the 2 skip records verified", func() bool { return rcv.Verified("acme") == 8 })
	if got := rcv.Skipped("acme"); len(got) != 2 || got[0] != 2 || got[1] != 5 {
		t.Errorf("stand-ins for %v, want [2 5]", got)
	}
	for i, seq := range []uint64{2, 5} {
		ev := recordAt(t, db, "acme", uint64(7+i), catalog.SinkSkipped, "siem")
		if r, _ := ev.Context["reason"].(string); fmt.Sprint(ev.Context["skipped_seq"]) != fmt.Sprint(seq) || !strings.Contains(r, fmt.Sprintf("seq %d: schema says no", seq)) {
			t.Errorf("sink_skipped context %v, want seq %d and the receiver's answer", ev.Context, seq)
		}
	}
	streamtest.Eventually(t, "the cursor at 8", func() bool { return status(t, sv, "acme", "siem").Cursor == 8 })
	if st := status(t, sv, "acme", "siem"); st.Skipped != 2 || st.Stopped {
		t.Errorf("status %+v, want 2 skipped, running, at 8", st)
	}
}

// A skipping sink whose receiver refuses everything would record skips
// forever (each record refused in turn): refused its own record of a
// skip, it stops instead, with the alert.
func TestSupervisorSkipsNoSkipOfASkip(t *testing.T) {
	db := openStore(t)
	appendN(t, db, "acme", 2)
	rcv := newReceiver(t)
	rcv.RefuseSeq(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	c := webhook("acme", "siem", rcv.URL)
	c.OnRefusal = trail.OnRefusalSkip
	put(t, db, c)
	sv, _ := start(t, db, time.Hour)
	streamtest.Eventually(t, "the sink stopped", func() bool { st, ok := sv.Status("acme", "siem"); return ok && st.Stopped })
	st := status(t, sv, "acme", "siem")
	if st.Skipped != 2 || !strings.Contains(st.LastError, "own record of a skip (seq 3)") {
		t.Errorf("status %+v, want 2 skipped, then stopped at the record of the first", st)
	}
	recordAt(t, db, "acme", 3, catalog.SinkSkipped, "siem")
	recordAt(t, db, "acme", 4, catalog.SinkSkipped, "siem")
	streamtest.Eventually(t, "the stop recorded", func() bool { _, err := db.GetSeq(context.Background(), "acme", 5); return err == nil })
	recordAt(t, db, "acme", 5, catalog.SinkStopped, "siem")
}

// A sink that fails for a reason worth a retry (here its NATS server
// cannot be reached) is run again and again, with backoff, and says why.
func TestSupervisorRetriesAFailedSink(t *testing.T) {
	db := openStore(t)
	appendN(t, db, "acme", 1)
	put(t, db, &trail.SinkConfig{Tenant: "acme", Name: "bus", Kind: trail.SinkNATS, URL: "nats://127.0.0.1:1", Subject: "trail.events"})
	sv, stop := start(t, db, time.Hour)
	streamtest.Eventually(t, "three failed runs", func() bool { st, ok := sv.Status("acme", "bus"); return ok && st.Failures >= 3 })
	stop()
	st := status(t, sv, "acme", "bus")
	if st.Stopped || !strings.Contains(st.LastError, "connect to NATS at nats://127.0.0.1:1") {
		t.Errorf("status %+v, want not stopped, saying it cannot connect", st)
	}
}

func TestTransportOfEachKind(t *testing.T) {
	for _, c := range []*trail.SinkConfig{
		webhook("acme", "hook", "https://siem.example.com/"),
		{Tenant: "acme", Name: "syslog", Kind: trail.SinkSyslog, Address: "logs.example.com:6514", TLS: true},
		{Tenant: "acme", Name: "syslog", Kind: trail.SinkSyslog, Address: "logs.example.com:514"},
	} {
		tr, done, err := sinks.Transport(context.Background(), c, nil)
		if err != nil || tr == nil {
			t.Errorf("%s: %v", c.Kind, err)
			continue
		}
		done()
	}
	if _, _, err := sinks.Transport(context.Background(), &trail.SinkConfig{Kind: "kafka"}, nil); err == nil {
		t.Error("a transport of an unknown kind")
	}
}

// A NATS sink connects to the server its configuration names and
// publishes there (the NATS server at 127.0.0.1:4222), in the format it
// names.
func TestSupervisorPublishesToNATS(t *testing.T) {
	for _, format := range []string{"", trail.FormatOCSF} {
		t.Run("format "+format, func(t *testing.T) {
			_, js, prefix := streamtest.JetStream(t)
			db := openStore(t)
			appendN(t, db, "acme", 5)
			put(t, db, &trail.SinkConfig{Tenant: "acme", Name: "bus", Kind: trail.SinkNATS, URL: streamtest.NATSURL, Subject: prefix, Format: format})
			sv, stop := start(t, db, time.Hour)
			streamtest.Eventually(t, "5 events published", func() bool { st, ok := sv.Status("acme", "bus"); return ok && st.Cursor == 5 })
			stop()
			info, err := js.Info(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if info.State.Msgs < 6 { // the events and at least one checkpoint
				t.Errorf("the stream holds %d messages, want the 5 events and a checkpoint", info.State.Msgs)
			}
			m, err := js.GetMsg(context.Background(), info.State.FirstSeq)
			if err != nil || m.Subject != prefix+".acme" || m.Header.Get("Trail-Seq") != "1" {
				t.Fatalf("first message %+v, %v; want acme's seq 1", m, err)
			}
			if ocsf := strings.Contains(string(m.Data), `"class_uid"`); ocsf != (format == trail.FormatOCSF) {
				t.Errorf("format %q: first message %s", format, m.Data)
			}
		})
	}
}
