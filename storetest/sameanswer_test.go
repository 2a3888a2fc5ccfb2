package storetest_test

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/pgtest"
	"github.com/trailaudit/trail/postgres"
	"github.com/trailaudit/trail/sqlite"
	"github.com/trailaudit/trail/storetest"
)

// twoStores is a SQLite and a PostgreSQL store on one clock, so that what
// they store for one input differs only in the ids they draw.
type twoStores struct {
	sqlite, postgres trail.Store
}

func openTwo(tb testing.TB) twoStores {
	tb.Helper()
	clock := func() time.Time { return time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC) }
	lite, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "trail.db"),
		sqlite.Options{Validator: storetest.Validator(), Signer: storetest.Signer(), Now: clock})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { lite.Close() })
	pg, err := postgres.Open(context.Background(), pgtest.ServerURL(),
		postgres.Options{Validator: storetest.Validator(), Signer: storetest.Signer(), Schema: pgtest.NewSchema(tb), Now: clock})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { pg.Close() })
	return twoStores{lite, pg}
}

// sameAnswer appends ev to both stores and fails tb unless both refuse it
// with the same field errors, or both store it as the same bytes (but for
// its id) at the same seq, found by a search on each of its identifiers.
func (two twoStores) sameAnswer(tb testing.TB, ev *trail.Event) {
	tb.Helper()
	ctx := context.Background()
	opts := trail.AppendOptions{Policy: trail.Policy{AllowCustom: true}}
	a, aerr := two.sqlite.Append(ctx, "acme", []*trail.Event{ev}, opts)
	b, berr := two.postgres.Append(ctx, "acme", []*trail.Event{ev}, opts)
	if trail.ErrorCode(aerr) != trail.ErrorCode(berr) || !cmp.Equal(trail.ErrorFields(aerr), trail.ErrorFields(berr)) {
		tb.Fatalf("SQLite answered %v, PostgreSQL %v", aerr, berr)
	}
	if aerr != nil {
		if trail.ErrorCode(aerr) != trail.EINVALID {
			tb.Fatalf("both stores failed: %v", aerr)
		}
		return
	}
	sa, sb := a.Events[0], b.Events[0]
	if sa.Seq != sb.Seq {
		tb.Fatalf("stored at seq %d in SQLite, %d in PostgreSQL", sa.Seq, sb.Seq)
	}
	ba, bb := body(tb, two.sqlite, sa.Seq), body(tb, two.postgres, sb.Seq)
	if !bytes.Equal(ba, bytes.ReplaceAll(bb, []byte(sb.ID), []byte(sa.ID))) {
		tb.Fatalf("stored bytes differ, but for the id:\nSQLite     %q\nPostgreSQL %q", ba, bb)
	}
	q := trail.Query{Tenant: "acme", ActorID: sa.Actor.ID, ActorType: sa.Actor.Type, Actions: []string{sa.Action},
		Category: sa.Category, Outcome: sa.Outcome, Organization: sa.Scope.Organization, Workspace: sa.Scope.Workspace,
		Team: sa.Scope.Team, CorrelationID: sa.CorrelationID, Descending: true, Limit: 1}
	for _, t := range sa.Targets {
		q.TargetType, q.TargetID = t.Type, t.ID
	}
	var counts []int64
	for name, s := range map[string]trail.Store{"SQLite": two.sqlite, "PostgreSQL": two.postgres} {
		p, err := s.Query(ctx, q)
		if err != nil || len(p.Events) != 1 || p.Events[0].Seq != sa.Seq {
			tb.Fatalf("%s: the newest event a search on every identifier of seq %d finds: %v, %d events", name, sa.Seq, err, len(p.Events))
		}
		n, err := s.Count(ctx, q)
		if err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
		counts = append(counts, n)
	}
	if counts[0] != counts[1] {
		tb.Fatalf("a search on every identifier of seq %d finds %d events in one store, %d in the other", sa.Seq, counts[0], counts[1])
	}
}

// body returns the stored bytes of seq.
func body(tb testing.TB, s trail.Store, seq uint64) []byte {
	tb.Helper()
	var out []byte
	err := s.ScanLeaves(context.Background(), "acme", seq, seq+1, func(l trail.Leaf) error {
		out = bytes.Clone(l.Body)
		return nil
	})
	if err != nil || out == nil {
		tb.Fatalf("the stored bytes of seq %d: %v", seq, err)
	}
	return out
}

// FuzzSameAnswer: for one JSON event, SQLite and PostgreSQL give the same
// answer: the same refusal, or the same stored bytes (but for the id) at
// the same seq, found by the same searches. (A NUL in an identifier was
// stored by SQLite and failed PostgreSQL's insert.) What ParseEvent
// refuses reaches no store.
func FuzzSameAnswer(f *testing.F) {
	for _, seed := range []string{
		`{"action":"user_login_failed","actor":{"id":"u-1","type":"user"},"context":{"reason":"invalid_password","attempts":3,"email":"ana@example.com"}}`,
		`{"action":"invoice_paid","actor":{"id":"u-1\u0000","type":"user"},"scope":{"workspace":"w\u0000"},"targets":[{"type":"invoice","id":"\u0000"}]}`,
		`{"action":"invoice_paid","actor":{"id":"ü-1 東京","type":"service","name":"A\tB\n"},"scope":{"organization":"o","workspace":"w","team":"t"},"correlation_id":"c-1","reason":"x\u0007y","targets":[{"type":"t","id":"1","name":"\u2028"}],"context":{"a":["\ud83d\ude00",1e21,12345678901234567890,-0],"Ab":{"c":null}}}`,
		`{"action":"invoice_paid","actor":{"id":"u-1","type":"user"},"context":{"n":"\u0000"},"request":{"user_agent":"\u0000"}}`,
		`{"action":"invoice_paid","actor":{"id":"u-1","type":"user"},"correlation_id":"\u001f","scope":{"team":"\u007f"}}`,
	} {
		f.Add([]byte(seed))
	}
	two := openTwo(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := trail.ParseEvent(data)
		if err != nil {
			return
		}
		two.sameAnswer(t, ev)
	})
}

// FuzzSameAnswerGo: the same for events built in Go, whose strings may
// hold any bytes (the JSON parser refuses invalid UTF-8 before a store
// sees it; a Go caller's reaches the Validator).
func FuzzSameAnswerGo(f *testing.F) {
	f.Add("u-1", "ws-1", "inv-1", "c-1", "a reason", "a note")
	f.Add("u-1\x00", "\x00", "inv\x00", "c\x00", "\x00", "\x00")
	f.Add("u-\xff", "w\xed\xa0\x80", "\x7f", "\u0085", "caf\xe9", "\xc0\xaf")
	f.Add("ü-1", "東京", "inv 1", "c-1", "line 1\nline 2\t\x1b[0m", "\u2028\ufffd")
	two := openTwo(f)
	f.Fuzz(func(t *testing.T, actor, workspace, target, correlation, reason, note string) {
		two.sameAnswer(t, &trail.Event{Action: "invoice_paid", Actor: trail.Actor{ID: actor, Type: trail.ActorUser, Name: note},
			Targets: []trail.Target{{Type: "invoice", ID: target, Name: note}}, Scope: trail.Scope{Workspace: workspace},
			CorrelationID: correlation, Reason: reason, Context: map[string]any{"note": note, note: 1}})
	})
}
