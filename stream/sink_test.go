package stream_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/ledger"
	"github.com/trailaudit/trail/internal/streamtest"
	"github.com/trailaudit/trail/memory"
	"github.com/trailaudit/trail/storetest"
	"github.com/trailaudit/trail/stream"
)

const secret = storetest.WebhookSecret

func newStore(t *testing.T) *memory.Store {
	t.Helper()
	return memory.New(storetest.Validator(), storetest.Signer())
}

func appendN(t *testing.T, s trail.Store, n int) {
	t.Helper()
	evs := make([]*trail.Event, n)
	for i := range evs {
		evs[i] = storetest.Login(fmt.Sprintf("user-%d", i))
	}
	if _, err := s.Append(context.Background(), "acme", evs, trail.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
}

func newReceiver(t *testing.T) *streamtest.Receiver {
	return streamtest.NewReceiver(t, secret, storetest.Signer().Verifier())
}

func newSink(t *testing.T, s *memory.Store, url string) *stream.Sink {
	return newSkipSink(t, s, url, nil)
}

// newSkipSink is newSink with skip as its Config.Skip.
func newSkipSink(t *testing.T, s *memory.Store, url string, skip func(context.Context, stream.Record, string) error) *stream.Sink {
	t.Helper()
	wh, err := stream.NewWebhook(url, stream.WebhookOptions{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	sk, err := stream.New(stream.Config{Name: "siem", Tenant: "acme", Log: s, Cursors: s, Transport: wh, Skip: skip,
		Batch: 7, Poll: 5 * time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return sk
}

// run starts the sink and returns a stop that waits for it.
func run(t *testing.T, sk *stream.Sink) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sk.Run(ctx) }()
	return func() error { cancel(); return <-done }
}

var eventually = streamtest.Eventually

// Everything recorded reaches the receiver, which can check it all against
// the signed checkpoints: events appended while the sink runs, a pruned
// event (by its leaf hash), a receiver failing a while (retried, and the
// redeliveries told apart), and a sink restarted from its cursor.
func TestWebhookDeliversEverythingCheckably(t *testing.T) {
	s := newStore(t)
	rcv := newReceiver(t)
	appendN(t, s, 20)
	// Retention prunes seq 3 before the sink starts: the receiver gets its
	// leaf hash, and its tree still adds up.
	if _, err := s.AppendOwn(context.Background(), "acme", ledger.Prune([]uint64{3}, storetest.PruneRecord("test", 3))); err != nil {
		t.Fatal(err)
	}
	rcv.Fail(3)
	sk := newSink(t, s, rcv.URL)
	stop := run(t, sk)
	eventually(t, "the first 21 events verified", func() bool { return rcv.Verified("acme") == 21 })
	appendN(t, s, 15)
	eventually(t, "36 events verified", func() bool { return rcv.Verified("acme") == 36 })
	// The cursor moves once the sink has the receiver's answer: after the
	// receiver has checked the events.
	eventually(t, "the cursor at 36", func() bool { return sk.Status().Cursor == 36 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	st := sk.Status()
	if st.Cursor != 36 || st.Lag != 0 || st.Failures < 3 || st.Stopped {
		t.Errorf("status %+v, want cursor 36, no lag, at least 3 failures, running", st)
	}
	if _, dups := rcv.Lines(); dups == 0 {
		t.Error("the receiver saw no redelivery, though it failed after reading three batches")
	}
	// A new sink of the same name resumes from the cursor in the store.
	appendN(t, s, 5)
	lines, _ := rcv.Lines()
	sk2 := newSink(t, s, rcv.URL)
	stop = run(t, sk2)
	eventually(t, "41 events verified", func() bool { return rcv.Verified("acme") == 41 })
	eventually(t, "the cursor at 41", func() bool { return sk2.Status().Cursor == 41 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if now, _ := rcv.Lines(); now-lines > 5+2 { // the 5 events and a checkpoint or two
		t.Errorf("the restarted sink sent %d lines, want only what was new", now-lines)
	}
	if c, _ := s.Cursor(context.Background(), "sink.siem", "acme"); c != 41 {
		t.Errorf("cursor %d, want 41", c)
	}
}

// A receiver that refuses a message for good stops the sink: it does not
// skip the message, and its cursor stays where the receiver left it.
func TestRefusalStopsTheSink(t *testing.T) {
	s := newStore(t)
	rcv := newReceiver(t)
	rcv.Refuse(true)
	appendN(t, s, 3)
	sk := newSink(t, s, rcv.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := sk.Run(ctx)
	if !stream.IsRefused(err) {
		t.Fatalf("Run = %v, want a refusal", err)
	}
	if st := sk.Status(); !st.Stopped || st.Cursor != 0 || !strings.Contains(st.LastError, "400 Bad Request: schema says no") {
		t.Errorf("status %+v, want stopped at cursor 0 with the receiver's answer", st)
	}
	if !stream.Final(err) {
		t.Errorf("Final(%v) = false: a refusal stops the sink for good", err)
	}
}

// A sink that skips: each event the receiver refuses (found by sending the
// refused batch in halves) is handed to Skip, then sent as a stand-in (its
// leaf hash, marked skipped), so the receiver still verifies the whole
// tree against the checkpoints and knows which seqs it lacks the bytes of;
// every other event arrives.
func TestSkipSendsAStandIn(t *testing.T) {
	s := newStore(t)
	rcv := newReceiver(t)
	rcv.RefuseSeq(4, 9)
	appendN(t, s, 12)
	type skip struct {
		seq    uint64
		reason string
	}
	var skipped []skip
	sk := newSkipSink(t, s, rcv.URL, func(ctx context.Context, r stream.Record, reason string) error {
		skipped = append(skipped, skip{r.Seq, reason})
		return nil
	})
	stop := run(t, sk)
	eventually(t, "the 12 events verified", func() bool { return rcv.Verified("acme") == 12 })
	eventually(t, "the cursor at 12", func() bool { return sk.Status().Cursor == 12 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := rcv.Skipped("acme"); !slices.Equal(got, []uint64{4, 9}) {
		t.Errorf("the receiver got stand-ins for %v, want [4 9]", got)
	}
	if len(skipped) != 2 || skipped[0].seq != 4 || skipped[1].seq != 9 || !strings.Contains(skipped[0].reason, "seq 4: schema says no") {
		t.Errorf("Skip called with %+v, want seqs 4 and 9 with the receiver's answer", skipped)
	}
	if st := sk.Status(); st.Skipped != 2 || st.Cursor != 12 || st.Stopped {
		t.Errorf("status %+v, want 2 skipped, cursor 12, running", st)
	}
}

// A skip that cannot be recorded ends the run with the error, and the
// cursor stays where it was (before the message the event came in):
// nothing is left out unrecorded. A
// refusal among Skip's causes stops the sink for good.
func TestSkipThatFailsIsNoHole(t *testing.T) {
	for _, tt := range []struct {
		name  string
		err   error
		final bool
	}{
		{"the record fails", trail.Errorf(trail.EUNAVAILABLE, "store down"), false},
		{"a refusal", fmt.Errorf("no skip of a skip: %w", &stream.Refused{Reason: "loop"}), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			rcv := newReceiver(t)
			rcv.RefuseSeq(2)
			appendN(t, s, 3)
			sk := newSkipSink(t, s, rcv.URL, func(context.Context, stream.Record, string) error { return tt.err })
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := sk.Run(ctx)
			if !errors.Is(err, tt.err) || stream.Final(err) != tt.final {
				t.Fatalf("Run = %v (final %v), want %v (final %v)", err, stream.Final(err), tt.err, tt.final)
			}
			if c, _ := s.Cursor(ctx, "sink.siem", "acme"); c != 0 || rcv.Verified("acme") != 0 || len(rcv.Skipped("acme")) != 0 {
				t.Errorf("cursor %d, receiver verified %d, skipped %v; want cursor 0, nothing skipped", c, rcv.Verified("acme"), rcv.Skipped("acme"))
			}
		})
	}
}

// A sink whose cursor is past the log (a log rolled back, or restored
// from an old backup) stops rather than stream a different history.
func TestLogBehindCursorStops(t *testing.T) {
	s := newStore(t)
	appendN(t, s, 3)
	if err := s.SetCursor(context.Background(), "sink.siem", "acme", 10); err != nil {
		t.Fatal(err)
	}
	rcv := newReceiver(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := newSink(t, s, rcv.URL).Run(ctx)
	if trail.ErrorCode(err) != trail.EINTERNAL || !stream.Final(err) {
		t.Fatalf("Run = %v (final %v), want EINTERNAL, final: the log went back", err, stream.Final(err))
	}
}

// The Splunk HTTP Event Collector envelope wraps each line.
func TestSplunkEnvelope(t *testing.T) {
	s := newStore(t)
	appendN(t, s, 2)
	var got []map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dec := json.NewDecoder(r.Body)
		for {
			var v map[string]any
			if dec.Decode(&v) != nil {
				break
			}
			got = append(got, v)
		}
	}))
	defer srv.Close()
	wh, err := stream.NewWebhook(srv.URL, stream.WebhookOptions{Secret: secret, Splunk: true})
	if err != nil {
		t.Fatal(err)
	}
	m := &stream.Message{Sink: "siem", Tenant: "acme", Records: []stream.Record{{Seq: 1, Body: []byte(`{"seq":1,"recorded_at":"2026-12-03T10:00:00Z"}`)}}, Checkpoint: []byte("note\n"), Size: 1}
	if err := wh.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0]["sourcetype"] != "trail:event" || got[0]["time"] != 1796292000.0 || got[1]["sourcetype"] != "trail:checkpoint" {
		t.Fatalf("collector got %v", got)
	}
}

// downCursors is a cursor store that is down: every call fails.
type downCursors struct{}

func (downCursors) Cursor(ctx context.Context, name, tenant string) (uint64, error) {
	return 0, trail.Errorf(trail.EINTERNAL, "store: connection refused")
}

func (downCursors) SetCursor(ctx context.Context, name, tenant string, seq uint64) error {
	return trail.Errorf(trail.EINTERNAL, "store: connection refused")
}

// A store that fails stops a run, but not for good: running the sink again
// is worth it (stream/sinks does).
func TestStoreFailureIsNotFinal(t *testing.T) {
	s := newStore(t)
	rcv := newReceiver(t)
	wh, err := stream.NewWebhook(rcv.URL, stream.WebhookOptions{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	sk, err := stream.New(stream.Config{Name: "siem", Tenant: "acme", Log: s, Cursors: downCursors{}, Transport: wh})
	if err != nil {
		t.Fatal(err)
	}
	err = sk.Run(context.Background())
	if err == nil || stream.Final(err) {
		t.Fatalf("Run = %v (final %v), want an error worth a retry", err, stream.Final(err))
	}
	if st := sk.Status(); st.LastError != "store: connection refused" {
		t.Errorf("status %+v, want the store's message", st)
	}
}
