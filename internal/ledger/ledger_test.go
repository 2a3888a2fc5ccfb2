package ledger

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/redact"
	"github.com/trailaudit/trail/tlog"
)

// fake is a hand-written Backend that records the pipeline's calls, so the
// tests read as the contract of Tx: which steps run, in which order.
type fake struct {
	calls   []string
	stored  Stored
	earlier []byte // the fingerprint a key was first used with
	rows    []PruneRow
	write   error // Write's error
	cp      *Checkpoint
	written []Row
}

func (f *fake) Begin(ctx context.Context, b *Batch) (Tx, error) {
	f.calls = append(f.calls, "Begin")
	return f, nil
}
func (f *fake) Head(ctx context.Context) (Stored, error) {
	f.calls = append(f.calls, "Head")
	return f.stored, nil
}
func (f *fake) Earlier(ctx context.Context) ([]byte, []*trail.Event, error) {
	f.calls = append(f.calls, "Earlier")
	return f.earlier, nil, nil
}
func (f *fake) PruneRows(ctx context.Context, seqs []uint64) ([]PruneRow, error) {
	f.calls = append(f.calls, "PruneRows")
	return f.rows, nil
}
func (f *fake) Write(ctx context.Context, rows *Rows) error {
	f.calls = append(f.calls, "Write")
	if f.write != nil {
		return f.write
	}
	all, err := rows.All()
	f.written = all
	return err
}
func (f *fake) Prune(ctx context.Context, seqs []uint64, by uint64, targets []PrunedTarget) error {
	f.calls = append(f.calls, "Prune")
	return nil
}
func (f *fake) Commit(ctx context.Context, cp *Checkpoint) error {
	f.calls = append(f.calls, "Commit")
	f.cp = cp
	return nil
}
func (f *fake) Rollback() { f.calls = append(f.calls, "Rollback") }

var t0 = time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)

func newLog(t *testing.T, f *fake, edit func(*Config)) *Log {
	t.Helper()
	skey, _, err := tlog.GenerateKey("test")
	if err != nil {
		t.Fatal(err)
	}
	s, err := tlog.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	c := Config{Store: "fake", Signer: s, Now: func() time.Time { return t0 },
		Validator: &trail.Validator{Actions: catalog.Default(), Redactor: redact.New(redact.Options{}), Limits: trail.DefaultLimits()}}
	if edit != nil {
		edit(&c)
	}
	l, err := New(c, f)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func login(actor string) *trail.Event {
	return &trail.Event{Action: catalog.UserLoginSuccess, Actor: trail.Actor{ID: actor, Type: trail.ActorUser},
		Context: map[string]any{"method": "password", "mfa": true, "remember_me": false}}
}

// A tenant with one event, as a store would hold it.
func oneEvent(t *testing.T) Stored {
	t.Helper()
	tree, _ := tlog.NewTree(0, nil)
	tree.Append([]byte("first"))
	l := newLog(t, &fake{}, nil)
	note, err := l.c.Signer.Sign("acme", 1, tree.Root())
	if err != nil {
		t.Fatal(err)
	}
	return Stored{Seq: 1, RecordedAt: t0.Add(-time.Hour), Edge: tree.Edge(), LastRow: 1, Latest: note}
}

func TestSteps(t *testing.T) {
	prunedRecord := func() *trail.Event {
		return &trail.Event{Action: catalog.AuditLogPruned, Actor: trail.Actor{ID: "retention", Type: trail.ActorSystem},
			Context: map[string]any{"policy": "p", "pruned_count": 1, "seq_ranges": []any{[]any{1, 1}}, "held_count": 0}}
	}
	tests := []struct {
		name  string
		f     *fake
		run   func(ctx context.Context, l *Log) (*trail.AppendResult, error)
		calls []string
		code  string // the error's code, "" for success
	}{
		{"an append writes, then commits with its checkpoint", &fake{},
			func(ctx context.Context, l *Log) (*trail.AppendResult, error) {
				return l.Append(ctx, "acme", []*trail.Event{login("alice")}, trail.AppendOptions{})
			}, []string{"Begin", "Head", "Write", "Commit"}, ""},
		{"a key is looked up before writing", &fake{},
			func(ctx context.Context, l *Log) (*trail.AppendResult, error) {
				return l.Append(ctx, "acme", []*trail.Event{login("alice")}, trail.AppendOptions{IdempotencyKey: "k"})
			}, []string{"Begin", "Head", "Earlier", "Write", "Commit"}, ""},
		{"a key used with another batch writes nothing", &fake{earlier: make([]byte, 32)},
			func(ctx context.Context, l *Log) (*trail.AppendResult, error) {
				return l.Append(ctx, "acme", []*trail.Event{login("alice")}, trail.AppendOptions{IdempotencyKey: "k"})
			}, []string{"Begin", "Head", "Earlier", "Rollback"}, trail.ECONFLICT},
		{"a head that does not match its checkpoint writes nothing", &fake{stored: Stored{Seq: 1, LastRow: 2}},
			func(ctx context.Context, l *Log) (*trail.AppendResult, error) {
				return l.Append(ctx, "acme", []*trail.Event{login("alice")}, trail.AppendOptions{})
			}, []string{"Begin", "Head", "Rollback"}, trail.EINTERNAL},
		{"a store failure in Write rolls back", &fake{write: errors.New("disk full")},
			func(ctx context.Context, l *Log) (*trail.AppendResult, error) {
				return l.Append(ctx, "acme", []*trail.Event{login("alice")}, trail.AppendOptions{})
			}, []string{"Begin", "Head", "Write", "Rollback"}, trail.EINTERNAL},
		{"Trail's own record from a caller never reaches the store", &fake{},
			func(ctx context.Context, l *Log) (*trail.AppendResult, error) {
				ev := login("alice")
				ev.Action = catalog.SubjectErased
				return l.Append(ctx, "acme", []*trail.Event{ev}, trail.AppendOptions{})
			}, nil, trail.EINVALID},
		{"a prune reads its rows before writing, and clears them after", &fake{rows: []PruneRow{{Seq: 1, Action: catalog.UserLoginSuccess, Body: mustBody(t)}}},
			func(ctx context.Context, l *Log) (*trail.AppendResult, error) {
				return l.AppendOwn(ctx, "acme", Prune([]uint64{1}, prunedRecord()))
			}, []string{"Begin", "Head", "PruneRows", "Write", "Prune", "Commit"}, ""},
		{"a prune of a row pruned already writes nothing", &fake{rows: []PruneRow{{Seq: 1, Pruned: true}}},
			func(ctx context.Context, l *Log) (*trail.AppendResult, error) {
				return l.AppendOwn(ctx, "acme", Prune([]uint64{1}, prunedRecord()))
			}, []string{"Begin", "Head", "PruneRows", "Rollback"}, trail.EINVALID},
		{"a prune of a row the store does not hold writes nothing", &fake{},
			func(ctx context.Context, l *Log) (*trail.AppendResult, error) {
				return l.AppendOwn(ctx, "acme", Prune([]uint64{1}, prunedRecord()))
			}, []string{"Begin", "Head", "PruneRows", "Rollback"}, trail.EINVALID},
		{"a prune record on its own is refused", &fake{},
			func(ctx context.Context, l *Log) (*trail.AppendResult, error) {
				return l.AppendOwn(ctx, "acme", Records(prunedRecord()))
			}, nil, trail.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if strings.Contains(tt.name, "prune") { // a tenant with an event to prune
				tt.f.stored = oneEvent(t)
			}
			l := newLog(t, tt.f, nil)
			_, err := tt.run(context.Background(), l)
			if got := trail.ErrorCode(err); (tt.code == "") != (err == nil) || (err != nil && got != tt.code) {
				t.Fatalf("err = %v (%s), want code %q", err, got, tt.code)
			}
			if !slices.Equal(tt.f.calls, tt.calls) {
				t.Errorf("calls %v, want %v", tt.f.calls, tt.calls)
			}
			if err == nil && tt.f.cp == nil {
				t.Error("committed without a checkpoint")
			}
		})
	}
}

func mustBody(t *testing.T) []byte {
	ev := login("bob")
	ev.ID, ev.Seq, ev.RecordedAt, ev.OccurredAt = "0190c1a2-0000-7000-8000-000000000001", 1, t0, t0
	ev.Category, ev.Outcome = "authentication", trail.OutcomeSuccess
	b, err := trail.MarshalCanonical(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A replay is answered from what the store read, and still goes through
// Commit: the answer waits until what it read is durable.
func TestReplayCommitsWithoutCheckpoint(t *testing.T) {
	f := &fake{}
	l := newLog(t, f, nil)
	b, err := l.prepare(context.Background(), "acme", []*trail.Event{login("alice")}, trail.AppendOptions{IdempotencyKey: "k"}, false)
	if err != nil {
		t.Fatal(err)
	}
	f.earlier = b.Fingerprint[:]
	res, err := l.Append(context.Background(), "acme", []*trail.Event{login("alice")}, trail.AppendOptions{IdempotencyKey: "k"})
	if err != nil || !res.Replay {
		t.Fatalf("Append = %+v, %v; want a replay", res, err)
	}
	if want := []string{"Begin", "Head", "Earlier", "Commit"}; !slices.Equal(f.calls, want) || f.cp != nil {
		t.Fatalf("calls %v with checkpoint %v, want %v with none", f.calls, f.cp, want)
	}
}

// Sequencing continues the stored head: seqs follow it, recorded_at never
// runs behind it, and the checkpoint is of the tree after the batch.
func TestSequenceContinuesHead(t *testing.T) {
	f := &fake{}
	f.stored = oneEvent(t)
	f.stored.RecordedAt = t0.Add(time.Hour) // the clock ran back since
	l := newLog(t, f, nil)
	res, err := l.Append(context.Background(), "acme", []*trail.Event{login("a"), login("b")}, trail.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range res.Events {
		if ev.Seq != uint64(2+i) || ev.RecordedAt.Before(f.stored.RecordedAt) {
			t.Errorf("event %d: seq %d recorded %v; want seq %d, not before %v", i, ev.Seq, ev.RecordedAt, 2+i, f.stored.RecordedAt)
		}
	}
	if f.cp == nil || f.cp.Size != 3 {
		t.Fatalf("checkpoint %+v, want size 3", f.cp)
	}
	for i, r := range f.written {
		if len(r.Hashes) < trail.HashSize || string(r.Hashes[:trail.HashSize]) != string(tlog.LeafHash(r.Body)) {
			t.Errorf("row %d: hashes do not start with its leaf hash", i)
		}
	}
}

// What is checked before any lock: each case names its field, and reaches
// no store.
func TestPrepareRefuses(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		ev   func() *trail.Event
		opts trail.AppendOptions
		code string
		path string // a field error's path, or "" for none
	}{
		{"own record", nil, func() *trail.Event { ev := login("a"); ev.Action = catalog.LegalHoldPlaced; return ev }, trail.AppendOptions{}, trail.EINVALID, "[0].action"},
		{"api_key actor", nil, func() *trail.Event { ev := login("a"); ev.Actor.Type = trail.ActorAPIKey; return ev }, trail.AppendOptions{}, trail.EINVALID, "[0].actor.type"},
		{"own record, validator without catalog",
			func(c *Config) { c.Validator = &trail.Validator{Limits: trail.DefaultLimits()} },
			func() *trail.Event { ev := login("a"); ev.Action = catalog.SubjectErased; return ev }, trail.AppendOptions{}, trail.EINVALID, "[0].action"},
		{"bad client address", nil, func() *trail.Event { return login("a") }, trail.AppendOptions{ClientIP: "not-an-ip"}, trail.EINVALID, "client_ip"},
		{"occurred outside the store's years", func(c *Config) { c.MinTime = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC) },
			func() *trail.Event {
				ev := login("a")
				ev.OccurredAt = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
				return ev
			}, trail.AppendOptions{}, trail.EINVALID, "[0].occurred_at"},
		{"clock outside the store's years", func(c *Config) { c.MaxTime = t0.Add(-time.Hour) },
			func() *trail.Event { ev := login("a"); ev.OccurredAt = t0.Add(-2 * time.Hour); return ev }, trail.AppendOptions{}, trail.EINTERNAL, ""},
		{"batch larger than the store takes", func(c *Config) { c.MaxBatch = 1 },
			nil, trail.AppendOptions{}, trail.EINVALID, ""},
		{"no signer", func(c *Config) { c.Signer = nil }, func() *trail.Event { return login("a") }, trail.AppendOptions{}, trail.EINTERNAL, ""},
		{"idempotency key too long", nil, nil, trail.AppendOptions{IdempotencyKey: strings.Repeat("k", MaxIdempotencyKey+1)}, trail.EINVALID, "idempotency_key"},
		{"idempotency key of 60 KB", nil, nil, trail.AppendOptions{IdempotencyKey: strings.Repeat("k", 60<<10)}, trail.EINVALID, "idempotency_key"},
		{"idempotency key with a space", nil, nil, trail.AppendOptions{IdempotencyKey: "k 1"}, trail.EINVALID, "idempotency_key"},
		{"idempotency key with a NUL", nil, nil, trail.AppendOptions{IdempotencyKey: "k\x001"}, trail.EINVALID, "idempotency_key"},
		{"idempotency key with a newline", nil, nil, trail.AppendOptions{IdempotencyKey: "k\n"}, trail.EINVALID, "idempotency_key"},
		{"idempotency key not ASCII", nil, nil, trail.AppendOptions{IdempotencyKey: "clé"}, trail.EINVALID, "idempotency_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fake{}
			l := newLog(t, f, tt.edit)
			evs := []*trail.Event{login("a"), login("b")}
			if tt.ev != nil {
				evs = []*trail.Event{tt.ev()}
			}
			_, err := l.Append(context.Background(), "acme", evs, tt.opts)
			if trail.ErrorCode(err) != tt.code {
				t.Fatalf("err = %v, want code %s", err, tt.code)
			}
			if tt.path != "" && !hasPath(err, tt.path) {
				t.Errorf("err = %v, want a field error at %s", err, tt.path)
			}
			if len(f.calls) > 0 {
				t.Errorf("the store was called: %v", f.calls)
			}
		})
	}
}

// The reserved logs hold only Trail's own records: an outside append to
// the operators' log or the root log is refused, naming the tenant.
func TestReservedLogsRefuseOutsideAppends(t *testing.T) {
	for _, tenant := range []string{trail.OperatorTenant, trail.RootTenant} {
		f := &fake{}
		l := newLog(t, f, nil)
		_, err := l.Append(context.Background(), tenant, []*trail.Event{login("a")}, trail.AppendOptions{})
		if trail.ErrorCode(err) != trail.EINVALID || !hasPath(err, "tenant") || len(f.calls) > 0 {
			t.Errorf("an outside append to %s: %v (store calls %v), want EINVALID at tenant", tenant, err, f.calls)
		}
	}
}

// Idempotency keys of visible ASCII up to MaxIdempotencyKey bytes are
// taken as they are.
func TestIdempotencyKeys(t *testing.T) {
	for _, key := range []string{"", "k", "tc-0123456789abcdef0123456789abcdef", "!~\"{}", strings.Repeat("k", MaxIdempotencyKey)} {
		b, err := newLog(t, &fake{}, nil).prepare(context.Background(), "acme", []*trail.Event{login("a")}, trail.AppendOptions{IdempotencyKey: key}, false)
		if err != nil || b.Key != key {
			t.Errorf("key %.20q (%d bytes): %v", key, len(key), err)
		}
	}
}

func hasPath(err error, path string) bool {
	var te *trail.Error
	if !errors.As(err, &te) {
		return false
	}
	for _, fe := range te.Fields {
		if fe.Path == path {
			return true
		}
	}
	return false
}

// The fingerprint is of the batch as the caller sent it: the client
// address the server adds is not in it, so a retry through another address
// is the same batch; the address still lands in the events that have none.
func TestClientAddressAfterFingerprint(t *testing.T) {
	l := newLog(t, &fake{}, nil)
	prep := func(ip string) *Batch {
		b, err := l.prepare(context.Background(), "acme", []*trail.Event{login("a")}, trail.AppendOptions{IdempotencyKey: "k", ClientIP: ip}, false)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, b := prep("192.0.2.1"), prep("::ffff:198.51.100.2")
	if a.Fingerprint != b.Fingerprint {
		t.Error("the client address changed the batch's fingerprint")
	}
	if ip := b.Events[0].Request.IP; ip != "198.51.100.2" {
		t.Errorf("request.ip = %q, want the client address, unmapped", ip)
	}
}

// A log keeps its origin for life (witnesses know a log by it): a log
// whose latest checkpoint has the origin of logs started before
// NAME/trail/TENANT goes on under it; a new log takes the new one.
func TestCheckpointKeepsOrigin(t *testing.T) {
	for _, tc := range []struct {
		name   string
		origin string // of the stored latest checkpoint; "" for a new tenant
		want   string
	}{
		{"a new log", "", "test/trail/acme"},
		{"a log of the new origin", "test/trail/acme", "test/trail/acme"},
		{"a log started before", "test/acme", "test/acme"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fake{}
			l := newLog(t, f, nil)
			if tc.origin != "" {
				f.stored = oneEvent(t)
				tree, _ := tlog.NewTree(0, nil)
				tree.Append([]byte("first"))
				note, err := l.c.Signer.SignOrigin("acme", tc.origin, 1, tree.Root())
				if err != nil {
					t.Fatal(err)
				}
				f.stored.Latest = note
			}
			if _, err := l.Append(context.Background(), "acme", []*trail.Event{login("a")}, trail.AppendOptions{}); err != nil {
				t.Fatal(err)
			}
			note, err := f.cp.Note()
			if err != nil {
				t.Fatal(err)
			}
			cp, err := l.c.Signer.Verifier().Open("acme", note)
			if err != nil || cp.Origin != tc.want {
				t.Errorf("checkpoint %+v, %v; want origin %s", cp, err, tc.want)
			}
		})
	}
}
