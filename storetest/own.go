package storetest

import (
	"context"
	"fmt"
	"testing"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/internal/ledger"
)

// TrailRecords returns one event of each of Trail's own records in the
// built-in catalog (the actions whose sources name Trail), as a forger
// would send them.
func TrailRecords() []*trail.Event {
	var out []*trail.Event
	for _, a := range catalog.Default().Actions(catalog.Filter{}) {
		if a.TrailRecord() {
			out = append(out, &trail.Event{Action: a.Name, Actor: trail.Actor{ID: "mallory", Type: trail.ActorUser},
				Context: map[string]any{"hold_id": "h-1", "subject_id": "u-1", "policy": "p", "seq_ranges": []any{[]any{1, 1}}}})
		}
	}
	return out
}

// testRefusesTrailRecords: Append, the path of every outside caller,
// refuses Trail's own records and api_key actors, naming the field, and
// stores nothing of their batch; AppendOwn takes Trail's own records (but
// a purge record only with its prune).
func testRefusesTrailRecords(t *testing.T, s trail.Store) {
	ctx := context.Background()
	forged := TrailRecords()
	if len(forged) < 4 {
		t.Fatalf("the catalog has %d of Trail's own records, want at least 4", len(forged))
	}
	readByAdmin := &trail.Event{Action: catalog.DataViewed, Actor: trail.Actor{ID: "key-of-the-admin", Type: trail.ActorAPIKey}}
	cases := []struct {
		name string
		ev   *trail.Event
		path string
	}{{"api_key actor", readByAdmin, "[1].actor.type"}}
	for _, ev := range forged {
		cases = append(cases, struct {
			name string
			ev   *trail.Event
			path string
		}{ev.Action, ev, "[1].action"})
	}
	// An alias resolves to the action it names: refused the same.
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Append(ctx, "acme", []*trail.Event{Login("u-1"), tc.ev}, trail.AppendOptions{})
			if trail.ErrorCode(err) != trail.EINVALID {
				t.Fatalf("Append of %s = %v, want EINVALID", tc.name, err)
			}
			if !hasField(err, tc.path) {
				t.Errorf("Append of %s: %v, want a field error at %s", tc.name, err, tc.path)
			}
		})
	}
	if n, err := s.Count(ctx, trail.Query{Tenant: "acme"}); err != nil || n != 0 {
		t.Fatalf("after refused forgeries the log holds %d events (%v), want 0", n, err)
	}

	w, ok := s.(ledger.Writer)
	if !ok {
		t.Fatalf("%T is not a ledger.Writer", s)
	}
	own := forged[0]
	for _, ev := range forged {
		if ev.Action == catalog.LegalHoldPlaced {
			own = ev
		}
	}
	res, err := w.AppendOwn(ctx, "acme", ledger.Records(own, readByAdmin))
	if err != nil || len(res.Events) != 2 || res.Events[0].Action != own.Action || res.Events[1].Actor.Type != trail.ActorAPIKey {
		t.Fatalf("AppendOwn of Trail's own records: %v %+v", err, res)
	}
	for _, o := range []struct {
		name string
		own  ledger.Own
	}{
		{"the zero Own", ledger.Own{}},
		{"a purge record without its prune", ledger.Records(PruneRecord("test", 1))},
	} {
		if _, err := w.AppendOwn(ctx, "acme", o.own); trail.ErrorCode(err) != trail.EINVALID {
			t.Errorf("AppendOwn of %s = %v, want EINVALID", o.name, err)
		}
	}
	if n, err := s.Count(ctx, trail.Query{Tenant: "acme"}); err != nil || n != 2 {
		t.Errorf("the log holds %d events (%v), want the 2 Trail appended", n, err)
	}
}

func hasField(err error, path string) bool {
	for _, f := range trail.ErrorFields(err) {
		if f.Path == path {
			return true
		}
	}
	return false
}

// testIdempotencyAcrossAddresses: the client address a server fills in
// comes after the fingerprint, so a batch retried through another address
// (a load balancer moving the client) is a replay, not a conflict.
func testIdempotencyAcrossAddresses(t *testing.T, s trail.Store) {
	ctx := context.Background()
	anonymous := func(actor string) *trail.Event {
		ev := Login(actor)
		ev.Request.IP = ""
		return ev
	}
	batch := func() []*trail.Event { return []*trail.Event{anonymous("u-1"), anonymous("u-2")} }
	first, err := s.Append(ctx, "acme", batch(), trail.AppendOptions{IdempotencyKey: "k-1", ClientIP: "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range first.Events {
		if ev.Request.IP != "192.0.2.1" {
			t.Errorf("seq %d: request.ip %q, want the client address 192.0.2.1", ev.Seq, ev.Request.IP)
		}
	}
	again, err := s.Append(ctx, "acme", batch(), trail.AppendOptions{IdempotencyKey: "k-1", ClientIP: "198.51.100.7"})
	if err != nil || !again.Replay {
		t.Fatalf("the same batch retried from another address: %v (replay %v), want a replay", err, again != nil && again.Replay)
	}
	if got, want := seqsOf(again.Events), seqsOf(first.Events); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("replay returned seqs %v, want %v", got, want)
	}
	// An event that names its own address keeps it.
	named := Login("u-3")
	named.Request.IP = "203.0.113.9"
	res, err := s.Append(ctx, "acme", []*trail.Event{named}, trail.AppendOptions{ClientIP: "192.0.2.1"})

	if err != nil || res.Events[0].Request.IP != "203.0.113.9" {
		t.Errorf("an event naming its address: %v, ip %v", err, res)
	}
	if _, err := s.Append(ctx, "acme", []*trail.Event{anonymous("u-4")}, trail.AppendOptions{ClientIP: "not an address"}); !hasField(err, "client_ip") {
		t.Errorf("a bad client address = %v, want EINVALID at client_ip", err)
	}
}

// RootEntry returns a root_entry record as the witness package appends to
// the root log (trail.RootTenant): a tenant's checkpoint of size, by a hash
// of its origin.
func RootEntry(originHash string, size int64) *trail.Event {
	return &trail.Event{Action: catalog.RootEntry, Actor: trail.Actor{Type: trail.ActorSystem, ID: "trail-root", Name: "Trail's root log"},
		Targets: []trail.Target{{Type: "log", ID: originHash}},
		Context: map[string]any{"size": size, "root_hash": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "signatures": "— trail x\n"}}
}
