package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/internal/pgtest"
	"github.com/trailaudit/trail/internal/sample"
	"github.com/trailaudit/trail/internal/testenv"
	"github.com/trailaudit/trail/memory"
	"github.com/trailaudit/trail/postgres"
	"github.com/trailaudit/trail/storetest"
	"github.com/trailaudit/trail/tlog"
)

// connect opens a plain connection to the server with search_path set to
// schema, closed when the test ends.
func connect(tb testing.TB, schema string, params map[string]string) *pgx.Conn {
	tb.Helper()
	cfg, err := pgx.ParseConfig(pgtest.ServerURL())
	if err != nil {
		tb.Fatal(err)
	}
	cfg.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	for k, v := range params {
		cfg.RuntimeParams[k] = v
	}
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// open opens a store on schema, closed when the test ends. The Validator
// and Signer default to storetest's.
func open(tb testing.TB, schema string, o postgres.Options) *postgres.DB {
	tb.Helper()
	if o.Validator == nil {
		o.Validator = storetest.Validator()
	}
	if o.Signer == nil {
		o.Signer = storetest.Signer()
	}
	o.Schema = schema
	db, err := postgres.Open(context.Background(), pgtest.ServerURL(), o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) trail.Store {
		return open(t, pgtest.NewSchema(t), postgres.Options{})
	})
}

// TestConformanceCopy runs the suite again with every batch written by
// COPY (small batches are written by INSERT otherwise).
func TestConformanceCopy(t *testing.T) {
	postgres.SetCopyMin(t, 1)
	storetest.Run(t, func(t *testing.T) trail.Store {
		return open(t, pgtest.NewSchema(t), postgres.Options{})
	})
}

func TestDurable(t *testing.T) {
	storetest.RunDurable(t, durable)
}

func TestTamper(t *testing.T) {
	storetest.RunTamper(t, durable)
}

// durable returns a fresh schema as storetest sees it, with its owner's
// connection to change it behind the store's back.
func durable(t *testing.T) storetest.Durable {
	schema := pgtest.NewSchema(t)
	a := &admin{conn: connect(t, schema, nil)}
	return storetest.Durable{
		Open: func(t *testing.T, s *tlog.Signer) (trail.Store, error) {
			db, err := postgres.Open(context.Background(), pgtest.ServerURL(), postgres.Options{Validator: storetest.Validator(), Schema: schema, Signer: s})
			if err == nil {
				t.Cleanup(func() { db.Close() })
			}
			return db, err
		},
		Exec:   a.Exec,
		Tamper: a,
	}
}

// admin is the owner's connection to a schema: it can run any statement,
// and tamper with the log as storetest.Tamperer says, disabling the
// append-only triggers, changing rows and enabling the triggers again, in
// one transaction.
type admin struct {
	mu   sync.Mutex // a pgx.Conn serves one caller at a time
	conn *pgx.Conn
}

var _ storetest.Tamperer = (*admin)(nil)

// Exec runs stmt.
func (a *admin) Exec(ctx context.Context, stmt string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, err := a.conn.Exec(ctx, stmt)
	return err
}

// tamper runs stmts (each an SQL statement and its arguments) with the
// triggers off. Each must change a row, but those on event_targets.
func (a *admin) tamper(ctx context.Context, stmts ...[]any) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	tx, err := a.conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	tables := []string{"events", "event_targets", "checkpoints", "heads"}
	for _, table := range tables {
		if _, err := tx.Exec(ctx, "ALTER TABLE "+table+" DISABLE TRIGGER USER"); err != nil {
			return err
		}
	}
	for _, st := range stmts {
		sql := st[0].(string)
		tag, err := tx.Exec(ctx, sql, st[1:]...)
		if err != nil {
			return fmt.Errorf("%s: %w", sql, err)
		}
		if tag.RowsAffected() == 0 && !strings.Contains(sql, "event_targets") {
			return fmt.Errorf("%s changed no row", sql)
		}
	}
	for _, table := range tables {
		if _, err := tx.Exec(ctx, "ALTER TABLE "+table+" ENABLE TRIGGER USER"); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

func (a *admin) SetBody(ctx context.Context, tenant string, seq uint64, body []byte) error {
	return a.tamper(ctx, []any{"UPDATE events SET body = $3 WHERE tenant = $1 AND seq = $2", tenant, int64(seq), body})
}

func (a *admin) SetHashes(ctx context.Context, tenant string, seq uint64, hashes []byte) error {
	return a.tamper(ctx, []any{"UPDATE events SET hashes = $3 WHERE tenant = $1 AND seq = $2", tenant, int64(seq), hashes})
}

func (a *admin) Delete(ctx context.Context, tenant string, from, to uint64) error {
	if to == 0 {
		to = math.MaxInt64
	}
	return a.tamper(ctx,
		[]any{"DELETE FROM event_targets WHERE tenant = $1 AND seq >= $2 AND seq < $3", tenant, int64(from), int64(to)},
		[]any{"DELETE FROM events WHERE tenant = $1 AND seq >= $2 AND seq < $3", tenant, int64(from), int64(to)})
}

func (a *admin) Insert(ctx context.Context, tenant string, seq uint64, body, hashes []byte) error {
	ev, err := trail.UnmarshalCanonical(body)
	if err != nil {
		return err
	}
	cols, row, err := postgres.EventRow(tenant, seq, ev, body, hashes)
	if err != nil {
		return err
	}
	ps := make([]string, len(row))
	for i := range ps {
		ps[i] = "$" + strconv.Itoa(i+1)
	}
	return a.tamper(ctx, append([]any{"INSERT INTO events (" + strings.Join(cols, ", ") + ") VALUES (" + strings.Join(ps, ", ") + ")"}, row...))
}

func (a *admin) Swap(ctx context.Context, tenant string, x, y uint64) error {
	var stmts [][]any
	for _, table := range []string{"events", "event_targets"} {
		set := "UPDATE " + table + " SET seq = $2 WHERE tenant = $1 AND seq = $3"
		stmts = append(stmts, []any{set, tenant, -1, int64(x)}, []any{set, tenant, int64(x), int64(y)}, []any{set, tenant, int64(y), -1})
	}
	return a.tamper(ctx, stmts...)
}

func (a *admin) SetCheckpoint(ctx context.Context, tenant string, size uint64, note []byte) error {
	return a.tamper(ctx, []any{"UPDATE checkpoints SET note = $3 WHERE tenant = $1 AND size = $2", tenant, int64(size), note})
}

func (a *admin) SetColumn(ctx context.Context, tenant string, seq uint64, column, value string) error {
	return a.tamper(ctx, []any{"UPDATE events SET " + column + " = $3 WHERE tenant = $1 AND seq = $2", tenant, int64(seq), value})
}

func (a *admin) SetTargets(ctx context.Context, tenant string, seq uint64, targets []trail.Target) error {
	stmts := [][]any{{"DELETE FROM event_targets WHERE tenant = $1 AND seq = $2", tenant, int64(seq)}}
	for _, tg := range targets {
		stmts = append(stmts, []any{"INSERT INTO event_targets (tenant, seq, type, id) VALUES ($1, $2, $3, $4)", tenant, int64(seq), tg.Type, tg.ID})
	}
	return a.tamper(ctx, stmts...)
}

func (a *admin) Rollback(ctx context.Context, tenant string, size uint64, head, keys bool) error {
	stmts := [][]any{
		{"DELETE FROM event_targets WHERE tenant = $1 AND seq > $2", tenant, int64(size)},
		{"DELETE FROM events WHERE tenant = $1 AND seq > $2", tenant, int64(size)},
		{"DELETE FROM checkpoints WHERE tenant = $1 AND size > $2", tenant, int64(size)},
	}
	if head {
		// The head as the commit of size left it: its seq, time and tree.
		edge, err := a.edge(ctx, tenant, size)
		if err != nil {
			return err
		}
		stmts = append(stmts, []any{`UPDATE heads SET seq = $2, tree = $3, (recorded_at, recorded_ns) =
			(SELECT recorded_at, recorded_ns FROM events WHERE tenant = $1 AND seq = $2) WHERE tenant = $1`, tenant, int64(size), edge})
	}
	if keys {
		stmts = append(stmts, []any{"DELETE FROM idempotency WHERE tenant = $1 AND first_seq + n - 1 > $2", tenant, int64(size)})
	}
	return a.tamper(ctx, stmts...)
}

// edge returns the right edge of tenant's tree of size, from the rows that
// hold its peaks: what the heads row keeps.
func (a *admin) edge(ctx context.Context, tenant string, size uint64) ([]byte, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	peaks, err := tlog.ReadTreeHashes(tlog.PeakNodes(size), func(seqs []uint64) ([][]byte, error) {
		out := make([][]byte, len(seqs))
		for i, seq := range seqs {
			if err := a.conn.QueryRow(ctx, "SELECT hashes FROM events WHERE tenant = $1 AND seq = $2", tenant, int64(seq)).Scan(&out[i]); err != nil {
				return nil, err
			}
		}
		return out, nil
	})
	return bytes.Join(peaks, nil), err
}

// TestTwoProcesses has two stores on one database, as two Trail processes
// would be, append to one tenant from 16 goroutines each: the seqs must be
// 1..N, each once, in RecordedAt order; the log must verify, with one
// checkpoint per append, at its last seq, whichever process made it. The
// log is read back in small chunks.
func TestTwoProcesses(t *testing.T) {
	postgres.SetLogChunk(t, 7)
	schema := pgtest.NewSchema(t)
	dbs := []*postgres.DB{open(t, schema, postgres.Options{}), open(t, schema, postgres.Options{})}
	const perDB, each = 16, 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seqs []uint64
		by   = map[uint64]int{} // the process that appended up to each seq
		errs []error
	)
	for d, db := range dbs {
		for w := range perDB {
			wg.Go(func() {
				for i := range each {
					batch := []*trail.Event{storetest.Login(fmt.Sprintf("d%d-w%d-%d", d, w, i))}
					if i%2 == 0 {
						batch = append(batch, storetest.Login(fmt.Sprintf("d%d-w%d-%d-b", d, w, i)))
					}
					res, err := db.Append(context.Background(), "acme", batch, trail.AppendOptions{})
					mu.Lock()
					if err != nil {
						errs = append(errs, err)
					} else {
						for _, ev := range res.Events {
							seqs = append(seqs, ev.Seq)
						}
						by[res.Events[len(res.Events)-1].Seq] = d
					}
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d appends failed; first: %v", len(errs), errs[0])
	}
	want := 2 * perDB * (each + each/2)
	slices.Sort(seqs)
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("Append returned seqs %v...: want each of 1..%d exactly once", seqs[:i+1], want)
		}
	}
	if len(seqs) != want {
		t.Fatalf("Append returned %d seqs, want %d", len(seqs), want)
	}
	var prev *trail.Event
	n := 0
	ids := map[string]bool{}
	err := dbs[1].Scan(context.Background(), "acme", 1, 0, func(ev *trail.Event) error {
		n++
		if ev.Seq != uint64(n) {
			return fmt.Errorf("position %d holds seq %d", n, ev.Seq)
		}
		if prev != nil && ev.RecordedAt.Before(prev.RecordedAt) {
			return fmt.Errorf("seq %d recorded at %v, before seq %d at %v", ev.Seq, ev.RecordedAt, prev.Seq, prev.RecordedAt)
		}
		if ids[ev.ID] {
			return fmt.Errorf("id %s stored twice", ev.ID)
		}
		ids[ev.ID] = true
		prev = ev
		return nil
	})
	if err != nil || n != want {
		t.Fatalf("Scan: %v after %d events, want %d", err, n, want)
	}

	ctx := context.Background()
	v := storetest.Signer().Verifier()
	rep, err := tlog.Verify(ctx, dbs[0], "acme", v, tlog.VerifyOptions{})
	if err != nil || !rep.OK() || rep.Size != uint64(want) || rep.Checkpoints != len(by) {
		t.Fatalf("Verify: %v %+v; want an intact log of size %d with %d checkpoints", err, rep, want, len(by))
	}
	var (
		size     uint64
		switches int
		last     = -1
	)
	err = dbs[1].Checkpoints(ctx, "acme", func(note []byte) error {
		cp, err := v.Open("acme", note)
		if err != nil {
			return err
		}
		d, ok := by[cp.Size]
		switch {
		case cp.Size <= size:
			return fmt.Errorf("checkpoint of size %d follows one of size %d", cp.Size, size)
		case !ok:
			return fmt.Errorf("checkpoint of size %d: no append ended there", cp.Size)
		}
		if last >= 0 && d != last {
			switches++
		}
		size, last = cp.Size, d
		return nil
	})
	if err != nil {
		t.Fatalf("Checkpoints: %v", err)
	}
	if switches == 0 {
		t.Errorf("all checkpoints came from process %d", last)
	}
	t.Logf("%d checkpoints; the process signing them changed %d times", len(by), switches)
}

// TestClockStepsBack has a process whose clock runs an hour behind append
// after one whose clock is right: RecordedAt holds at the head's, to the
// nanosecond.
func TestClockStepsBack(t *testing.T) {
	schema := pgtest.NewSchema(t)
	ahead := time.Date(2026, 11, 24, 10, 0, 0, 123456789, time.UTC)
	a := open(t, schema, postgres.Options{Now: func() time.Time { return ahead }})
	b := open(t, schema, postgres.Options{Now: func() time.Time { return ahead.Add(-time.Hour) }})
	ctx := context.Background()
	first, err := a.Append(ctx, "acme", []*trail.Event{storetest.Login("u-1")}, trail.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	later, err := b.Append(ctx, "acme", []*trail.Event{storetest.Login("u-2"), storetest.Login("u-3")}, trail.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !first.Events[0].RecordedAt.Equal(ahead) {
		t.Errorf("first event recorded at %v, want %v", first.Events[0].RecordedAt, ahead)
	}
	for _, ev := range later.Events {
		if !ev.RecordedAt.Equal(ahead) {
			t.Errorf("seq %d recorded at %v: a clock stepping back must be held at the head's %v", ev.Seq, ev.RecordedAt, ahead)
		}
	}
}

// TestTimesExact checks time ranges to the nanosecond, at the edges of what
// int64 nanoseconds or a timestamptz's microseconds could hold, against the
// memory store's answers for the same events and clock.
func TestTimesExact(t *testing.T) {
	ctx := context.Background()
	base := time.Date(2026, 11, 24, 10, 0, 0, 500, time.UTC) // 500ns into a microsecond
	recorded := []time.Time{base, base.Add(1), base.Add(499), base.Add(500), base.Add(time.Microsecond), base.Add(time.Microsecond + 1)}
	occurred := []time.Time{
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),       // (the zero time would mean "now")
		time.Date(1500, 6, 1, 12, 0, 0, 999, time.UTC), // before int64 nanoseconds reach
		time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(1970, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(2300, 1, 1, 0, 0, 0, 1001, time.UTC), // after
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
	}
	var i int
	clock := func() time.Time { return recorded[i] }
	db := open(t, pgtest.NewSchema(t), postgres.Options{Now: clock})
	mem := memory.New(storetest.Validator(), nil)
	mem.SetClock(clock)
	for i = range recorded {
		ev := storetest.Login(fmt.Sprintf("u-%d", i))
		ev.OccurredAt = occurred[i]
		for _, s := range []trail.Store{db, mem} {
			if _, err := s.Append(ctx, "acme", []*trail.Event{ev}, trail.AppendOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var edges []time.Time
	for _, ts := range [][]time.Time{recorded, occurred} {
		for _, e := range ts {
			edges = append(edges, e.Add(-1), e, e.Add(1))
		}
	}
	edges = append(edges, time.Date(-9999, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(999999, 1, 1, 0, 0, 0, 0, time.UTC))
	seqs := func(s trail.Store, q trail.Query) []uint64 {
		t.Helper()
		q.Tenant = "acme"
		p, err := s.Query(ctx, q)
		if err != nil {
			t.Fatalf("Query(%+v): %v", q, err)
		}
		var out []uint64
		for _, ev := range p.Events {
			out = append(out, ev.Seq)
		}
		return out
	}
	for _, e := range edges {
		for _, q := range []trail.Query{{RecordedAfter: e}, {RecordedBefore: e}, {OccurredAfter: e}, {OccurredBefore: e},
			{RecordedAfter: e, Descending: true}, {RecordedAfter: base.Add(1), RecordedBefore: e}} {
			want, got := seqs(mem, q), seqs(db, q)
			if !slices.Equal(want, got) {
				t.Errorf("Query(%+v) = %v, memory says %v", q, got, want)
			}
			q.Tenant = "acme"
			if n, err := db.Count(ctx, q); err != nil || n != int64(len(want)) {
				t.Errorf("Count(%+v) = %d, %v; want %d", q, n, err, len(want))
			}
		}
	}
	// Get returns the times to the nanosecond.
	for seq := range uint64(len(recorded)) {
		ev, err := db.GetSeq(ctx, "acme", seq+1)
		if err != nil {
			t.Fatal(err)
		}
		if !ev.RecordedAt.Equal(recorded[seq]) || !ev.OccurredAt.Equal(occurred[seq]) {
			t.Errorf("seq %d: recorded %v occurred %v; want %v, %v", seq+1, ev.RecordedAt, ev.OccurredAt, recorded[seq], occurred[seq])
		}
	}
	// A time no timestamptz holds is refused, not stored wrong.
	ev := storetest.Login("u-x")
	ev.OccurredAt = time.Date(-5000, 1, 1, 0, 0, 0, 0, time.UTC)
	_, err := db.Append(ctx, "acme", []*trail.Event{ev}, trail.AppendOptions{})
	if fe := trail.ErrorFields(err); trail.ErrorCode(err) != trail.EINVALID || len(fe) != 1 || fe[0].Path != "[0].occurred_at" {
		t.Errorf("Append at year -5000 = %v, want EINVALID at [0].occurred_at", err)
	}
}

// TestLargeBatches crosses the chunk size of Scan and ScanLeaves, and
// replays a batch larger than it.
func TestLargeBatches(t *testing.T) {
	ctx := context.Background()
	db := open(t, pgtest.NewSchema(t), postgres.Options{MaxBatch: 2000})
	n := postgres.ScanChunk*2 + 7
	batch := sample.New(1).Batch(n, time.Now())
	opts := trail.AppendOptions{IdempotencyKey: "big"}
	if _, err := db.Append(ctx, "acme", batch, opts); trail.ErrorCode(err) != trail.EINVALID {
		t.Fatalf("Append of %d events with MaxBatch 2000 = %v, want EINVALID", n, err)
	}
	first, err := db.Append(ctx, "acme", batch[:1500], opts)
	if err != nil {
		t.Fatal(err)
	}
	again, err := db.Append(ctx, "acme", batch[:1500], opts)
	if err != nil || !again.Replay {
		t.Fatalf("replay: %v, replay %v", err, again != nil && again.Replay)
	}
	if diff := cmp.Diff(first.Events, again.Events); diff != "" {
		t.Errorf("replay differs (-first +again):\n%s", diff)
	}
	if _, err := db.Append(ctx, "acme", batch[1500:], trail.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, r := range [][2]uint64{{1, 0}, {999, 2002}, {1000, 1001}, {uint64(n), 0}, {uint64(n) + 1, 0}} {
		var got, leaves []uint64
		if err := db.Scan(ctx, "acme", r[0], r[1], func(ev *trail.Event) error {
			got = append(got, ev.Seq)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := db.ScanLeaves(ctx, "acme", r[0], r[1], func(l trail.Leaf) error {
			leaves = append(leaves, l.Seq)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		end := r[1]
		if end == 0 {
			end = uint64(n) + 1
		}
		var want []uint64
		for s := r[0]; s < end; s++ {
			want = append(want, s)
		}
		if !slices.Equal(got, want) {
			t.Errorf("Scan(%d, %d) gave %d events (%v..), want %d", r[0], r[1], len(got), got[:min(len(got), 3)], len(want))
		}
		if !slices.Equal(leaves, want) {
			t.Errorf("ScanLeaves(%d, %d) gave %d leaves (%v..), want %d", r[0], r[1], len(leaves), leaves[:min(len(leaves), 3)], len(want))
		}
	}
	rep, err := tlog.Verify(ctx, db, "acme", storetest.Signer().Verifier(), tlog.VerifyOptions{})
	if err != nil || !rep.OK() || rep.Leaves != uint64(n) || rep.Checkpoints != 2 {
		t.Errorf("Verify: %v %+v; want an intact log of %d leaves and 2 checkpoints", err, rep, n)
	}
}

// TestNewerSchemaRefused opens a database that a newer Trail migrated.
func TestNewerSchemaRefused(t *testing.T) {
	schema := pgtest.NewSchema(t)
	db := open(t, schema, postgres.Options{})
	db.Close()
	newer := postgres.SchemaVersion + 1
	if _, err := connect(t, schema, nil).Exec(context.Background(), "INSERT INTO schema_migrations (version) VALUES ($1)", newer); err != nil {
		t.Fatal(err)
	}
	_, err := postgres.Open(context.Background(), pgtest.ServerURL(), postgres.Options{Validator: storetest.Validator(), Schema: schema})
	if err == nil {
		t.Fatal("Open of a newer schema succeeded")
	}
	for _, v := range []int{newer, postgres.SchemaVersion} {
		if !strings.Contains(err.Error(), "version "+strconv.Itoa(v)) {
			t.Errorf("error %q does not name version %d", err, v)
		}
	}
}

// TestConcurrentOpen migrates one fresh schema from several Opens at once.
func TestConcurrentOpen(t *testing.T) {
	schema := pgtest.NewSchema(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			db, err := postgres.Open(context.Background(), pgtest.ServerURL(), postgres.Options{Validator: storetest.Validator(), Schema: schema})
			if err != nil {
				errs <- err
				return
			}
			db.Close()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var n int
	if err := connect(t, schema, nil).QueryRow(context.Background(), "SELECT count(*) FROM schema_migrations").Scan(&n); err != nil || n != postgres.SchemaVersion {
		t.Errorf("schema_migrations has %d rows (%v), want %d", n, err, postgres.SchemaVersion)
	}
}

// TestAppRole checks the role production connects as: it can run Trail
// (open a migrated schema, append, read) and cannot change the log, not
// even by dropping the triggers.
func TestAppRole(t *testing.T) {
	ctx := context.Background()
	schema := pgtest.NewSchema(t)
	owner := open(t, schema, postgres.Options{})
	stored, err := owner.Append(ctx, "acme", []*trail.Event{storetest.Login("u-1")}, trail.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	app, conn := openAsApp(t, schema)
	res, err := app.Append(ctx, "acme", []*trail.Event{storetest.Login("u-2")}, trail.AppendOptions{IdempotencyKey: "k"})
	if err != nil || res.Events[0].Seq != 2 {
		t.Fatalf("Append as trail_app: %v", err)
	}
	if got, err := app.Get(ctx, "acme", stored.Events[0].ID); err != nil || !cmp.Equal(got, stored.Events[0]) {
		t.Errorf("Get as trail_app: %v", err)
	}

	var role string
	if err := conn.QueryRow(ctx, "SELECT current_user").Scan(&role); err != nil || role != "trail_app" {
		t.Fatalf("current_user = %q, %v", role, err)
	}
	for _, stmt := range []string{
		"UPDATE events SET action = 'user_logout'",
		"DELETE FROM events",
		"TRUNCATE events",
		"UPDATE event_targets SET id = 'x'",
		"DELETE FROM event_targets",
		"DELETE FROM idempotency",
		"UPDATE idempotency SET n = 0",
		"DELETE FROM heads",
		"UPDATE heads SET seq = 0",
		"UPDATE heads SET seq = seq + 1, recorded_at = recorded_at - interval '1 hour'",
		"UPDATE heads SET tree = ''",
		"UPDATE checkpoints SET note = ''",
		"DELETE FROM checkpoints",
		"TRUNCATE checkpoints",
		"ALTER TABLE checkpoints DISABLE TRIGGER USER",
		"ALTER TABLE events DISABLE TRIGGER events_append_only",
		"DROP TRIGGER events_append_only ON events",
		"DROP TABLE events",
		"CREATE TABLE events2 (x int)",
	} {
		_, err := conn.Exec(ctx, stmt)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || (pe.Code != "42501" && pe.Code != "42P01") {
			t.Errorf("trail_app ran %q: %v; want permission denied", stmt, err)
		}
	}
	if n, err := owner.Count(ctx, trail.Query{Tenant: "acme"}); err != nil || n != 2 {
		t.Errorf("Count = %d, %v; want 2", n, err)
	}
	if rep, err := tlog.Verify(ctx, owner, "acme", storetest.Signer().Verifier(), tlog.VerifyOptions{}); err != nil || !rep.OK() || rep.Size != 2 {
		t.Errorf("Verify: %v %+v; want an intact log of size 2", err, rep)
	}
}

// TestGetOddIDs: an id that is not a UUID, or another tenant's, is not
// found.
func TestGetOddIDs(t *testing.T) {
	ctx := context.Background()
	db := open(t, pgtest.NewSchema(t), postgres.Options{})
	ev, err := db.Append(ctx, "acme", []*trail.Event{{Action: catalog.UserLogout, Actor: trail.Actor{ID: "u-1", Type: trail.ActorUser}}}, trail.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	id := ev.Events[0].ID
	for _, c := range []struct{ tenant, id string }{{"acme", ""}, {"acme", "x"}, {"acme", strings.ToUpper(id) + "0"}, {"globex", id}, {"acme", "00000000-0000-0000-0000-000000000000"}} {
		if _, err := db.Get(ctx, c.tenant, c.id); trail.ErrorCode(err) != trail.ENOTFOUND {
			t.Errorf("Get(%q, %q) = %v, want ENOTFOUND", c.tenant, c.id, err)
		}
	}
	if got, err := db.Get(ctx, "acme", strings.ToUpper(id)); err != nil || got.ID != id {
		t.Errorf("Get by the upper-case id: %v", err)
	}
}

// TestFailedAppendLeavesNothing makes an append fail inside its
// transaction (a row planted at the seq it will take) and checks that none
// of it stays, and that the store goes on working, on both write paths.
func TestFailedAppendLeavesNothing(t *testing.T) {
	for _, copyMin := range []int{1, 1000} {
		t.Run(fmt.Sprintf("copyMin=%d", copyMin), func(t *testing.T) {
			postgres.SetCopyMin(t, copyMin)
			ctx := context.Background()
			schema := pgtest.NewSchema(t)
			db := open(t, schema, postgres.Options{})
			first, err := db.Append(ctx, "acme", []*trail.Event{storetest.Login("u-1")}, trail.AppendOptions{})
			if err != nil {
				t.Fatal(err)
			}
			admin := connect(t, schema, nil)
			if _, err := admin.Exec(ctx, `INSERT INTO events SELECT tenant, 3, gen_random_uuid(), recorded_at, occurred_at, recorded_ns,
				occurred_ns, action, category, outcome, actor_id, actor_type, organization, workspace, team, correlation_id, body, hashes
				FROM events WHERE seq = 1`); err != nil {
				t.Fatal(err)
			}
			batch := []*trail.Event{storetest.Login("u-2"), storetest.Login("u-3"), storetest.Login("u-4")}
			for range 3 { // more times than the pool has connections
				_, err := db.Append(ctx, "acme", batch, trail.AppendOptions{IdempotencyKey: "k"})
				if trail.ErrorCode(err) != trail.EINTERNAL {
					t.Fatalf("Append onto a planted row = %v, want EINTERNAL", err)
				}
			}
			var head, targets, keys, cps int
			if err := admin.QueryRow(ctx, `SELECT (SELECT seq FROM heads), (SELECT count(*) FROM event_targets),
				(SELECT count(*) FROM idempotency), (SELECT count(*) FROM checkpoints)`).Scan(&head, &targets, &keys, &cps); err != nil {
				t.Fatal(err)
			}
			if head != 1 || targets != 1 || keys != 0 || cps != 1 {
				t.Errorf("after failed appends: head %d, %d target rows, %d keys, %d checkpoints; want 1, 1, 0, 1", head, targets, keys, cps)
			}
			if got, err := db.Get(ctx, "acme", first.Events[0].ID); err != nil || got.Seq != 1 {
				t.Errorf("Get after failed appends: %v", err)
			}
		})
	}
}

// spoiler is a Sealer that spoils the id of the event at index bad, so
// the pipeline cannot encode it: a fault found while the store reads the
// batch's rows (ledger.Rows), after the first of them were sent.
type spoiler struct{ bad int }

func (s spoiler) Seal(ctx context.Context, tenant string, evs []*trail.Event) error {
	if s.bad < len(evs) {
		evs[s.bad].ID = "not-a-uuid"
	}
	return nil
}

// TestStreamStoppedLeavesNothing: an event that fails to encode once the
// rows before it are on their way to the server (the COPY streams them)
// fails the append with its own error, and nothing of the batch stays,
// wherever in the batch it is and on both write paths.
func TestStreamStoppedLeavesNothing(t *testing.T) {
	for _, copyMin := range []int{1, 1001} { // COPY, INSERTs
		for _, bad := range []int{0, 130, 999} {
			t.Run(fmt.Sprintf("copyMin=%d/bad=%d", copyMin, bad), func(t *testing.T) {
				postgres.SetCopyMin(t, copyMin)
				ctx := context.Background()
				schema := pgtest.NewSchema(t)
				v := storetest.Validator()
				v.Sealer = spoiler{bad: bad}
				db := open(t, schema, postgres.Options{Validator: v})
				batch := sample.New(3).Batch(1000, time.Now())
				_, err := db.Append(ctx, "acme", batch, trail.AppendOptions{IdempotencyKey: "k"})
				if trail.ErrorCode(err) != trail.EINTERNAL || !strings.Contains(err.Error(), `event id "not-a-uuid" is not a UUID`) {
					t.Fatalf("Append = %v, want the event's own EINTERNAL", err)
				}
				var events, targets, keys, cps int
				if err := connect(t, schema, nil).QueryRow(ctx, `SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM event_targets),
					(SELECT count(*) FROM idempotency), (SELECT count(*) FROM checkpoints)`).Scan(&events, &targets, &keys, &cps); err != nil {
					t.Fatal(err)
				}
				if events+targets+keys+cps != 0 {
					t.Errorf("after the failed append: %d events, %d target rows, %d keys, %d checkpoints; want none", events, targets, keys, cps)
				}
				v.Sealer = spoiler{bad: len(batch)} // spoils nothing: the store goes on
				res, err := db.Append(ctx, "acme", batch[:2], trail.AppendOptions{})
				if err != nil || res.Events[0].Seq != 1 {
					t.Fatalf("Append after = %v", err)
				}
			})
		}
	}
}

// TestDamagedEdgeRefused: an append does not continue a tree from a head
// whose stored edge does not fit its seq.
func TestDamagedEdgeRefused(t *testing.T) {
	ctx := context.Background()
	schema := pgtest.NewSchema(t)
	db := open(t, schema, postgres.Options{})
	if _, err := db.Append(ctx, "acme", []*trail.Event{storetest.Login("u-1"), storetest.Login("u-2")}, trail.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	a := &admin{conn: connect(t, schema, nil)}
	for _, stmt := range []string{"ALTER TABLE heads DISABLE TRIGGER USER", "UPDATE heads SET tree = substr(tree, 2)", "ALTER TABLE heads ENABLE TRIGGER USER"} {
		if err := a.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	_, err := db.Append(ctx, "acme", []*trail.Event{storetest.Login("u-3")}, trail.AppendOptions{})
	if trail.ErrorCode(err) != trail.EINTERNAL || !strings.Contains(err.Error(), "right edge") {
		t.Fatalf("Append onto a damaged edge = %v, want EINTERNAL naming the edge", err)
	}
	if n, err := db.Count(ctx, trail.Query{Tenant: "acme"}); err != nil || n != 2 {
		t.Errorf("Count = %d, %v; want 2", n, err)
	}
}

// TestLockWaitCancelled has an append wait for a tenant's head, held by
// another session, until its context ends; the tenant's next append after
// the lock is released takes the next seq.
func TestLockWaitCancelled(t *testing.T) {
	ctx := context.Background()
	schema := pgtest.NewSchema(t)
	db := open(t, schema, postgres.Options{})
	if _, err := db.Append(ctx, "acme", []*trail.Event{storetest.Login("u-1")}, trail.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	other := connect(t, schema, nil)
	tx, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT * FROM heads WHERE tenant = 'acme' FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := db.Append(short, "acme", []*trail.Event{storetest.Login("u-2")}, trail.AppendOptions{}); err == nil {
		t.Fatal("Append succeeded while another session held the tenant's head")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Append returned after %v; want soon after its context ended", d)
	}
	// Another tenant is not held up meanwhile.
	if _, err := db.Append(ctx, "globex", []*trail.Event{storetest.Login("u-1")}, trail.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := db.Append(ctx, "acme", []*trail.Event{storetest.Login("u-3")}, trail.AppendOptions{})
	if err != nil || res.Events[0].Seq != 2 {
		t.Fatalf("Append after the lock was released: %v (seq %v), want seq 2", err, res)
	}
}

func TestKeys(t *testing.T) {
	// Key writes work on a DB opened without a signer: they are not events.
	storetest.RunKeys(t, func(t *testing.T) storetest.KeyStore {
		db, err := postgres.Open(context.Background(), pgtest.ServerURL(), postgres.Options{Validator: storetest.Validator(), Schema: pgtest.NewSchema(t)})
		if err != nil {
			t.Fatal(err)
		}
		return db
	})
	storetest.RunKeysDurable(t, durable)

	// trail_app may create and revoke keys and save actions, and do
	// nothing else to them.
	t.Run("AppRole", func(t *testing.T) {
		ctx := context.Background()
		schema := pgtest.NewSchema(t)
		open(t, schema, postgres.Options{}) // migrates as the owner
		app, conn := openAsApp(t, schema)
		_, k, err := trail.NewAPIKey("acme", "ci", []trail.KeyScope{trail.ScopeIngest}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := app.CreateKey(ctx, k); err != nil {
			t.Fatalf("CreateKey as trail_app: %v", err)
		}
		if err := app.RevokeKey(ctx, k.ID, time.Now()); err != nil {
			t.Fatalf("RevokeKey as trail_app: %v", err)
		}
		if err := app.SaveAction(ctx, "acme", &trail.Action{Name: "badge_scanned", Category: "physical", Outcome: trail.OutcomeInfo}); err != nil {
			t.Fatalf("SaveAction as trail_app: %v", err)
		}
		if ks, err := app.Keys(ctx, "acme"); err != nil || len(ks) != 1 || !ks[0].Revoked() {
			t.Fatalf("Keys as trail_app = %v, %v", ks, err)
		}
		for _, stmt := range []string{
			"UPDATE api_keys SET hash = ''",
			"UPDATE api_keys SET tenant = 'globex'",
			"DELETE FROM api_keys",
			"TRUNCATE api_keys",
			"UPDATE custom_actions SET definition = ''",
			"DELETE FROM custom_actions",
			"ALTER TABLE api_keys DISABLE TRIGGER USER",
			"DROP TRIGGER api_keys_revoke_only ON api_keys",
		} {
			_, err := conn.Exec(ctx, stmt)
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != "42501" {
				t.Errorf("trail_app ran %q: %v; want permission denied", stmt, err)
			}
		}
	})
}

// openAsApp opens Trail on schema (migrated by its owner already) as the
// role trail_app, and a plain connection as trail_app. Without the role
// (a test user that cannot create roles) the test skips, or fails under
// CI=true.
func openAsApp(t *testing.T, schema string) (*postgres.DB, *pgx.Conn) {
	t.Helper()
	ctx := context.Background()
	var exists bool
	if err := connect(t, schema, nil).QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = 'trail_app')").Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if !exists {
		testenv.Missing(t, "role trail_app does not exist: the test user cannot create roles")
	}
	u, err := url.Parse(pgtest.ServerURL())
	if err != nil {
		t.Fatal(err)
	}
	qs := u.Query()
	qs.Set("role", "trail_app") // a run-time parameter set at connection start
	u.RawQuery = qs.Encode()
	app, err := postgres.Open(ctx, u.String(), postgres.Options{Validator: storetest.Validator(), Schema: schema, Signer: storetest.Signer()})
	if err != nil {
		t.Fatalf("Open as trail_app: %v", err)
	}
	t.Cleanup(func() { app.Close() })
	return app, connect(t, schema, map[string]string{"role": "trail_app"})
}

func TestCursors(t *testing.T) {
	storetest.RunCursors(t, func(t *testing.T) trail.CursorStore {
		return open(t, pgtest.NewSchema(t), postgres.Options{})
	})
}

func TestSessions(t *testing.T) {
	storetest.RunSessions(t, func(t *testing.T) trail.SessionStore {
		return open(t, pgtest.NewSchema(t), postgres.Options{})
	})
	storetest.RunSessionsDurable(t, durable)

	// trail_app may create, touch and delete sessions.
	t.Run("AppRole", func(t *testing.T) {
		ctx := context.Background()
		schema := pgtest.NewSchema(t)
		open(t, schema, postgres.Options{}) // migrates as the owner
		app, _ := openAsApp(t, schema)
		_, hash, err := trail.NewSessionID()
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		s := &trail.Session{Hash: hash, Tenant: "acme", Kind: trail.SessionKey, KeyID: "0123456789ab", CreatedAt: now, SeenAt: now,
			Idle: time.Minute, ExpiresAt: now.Add(time.Hour)}
		if err := app.CreateSession(ctx, s); err != nil {
			t.Fatalf("CreateSession as trail_app: %v", err)
		}
		if _, err := app.TouchSession(ctx, hash, now.Add(30*time.Second)); err != nil {
			t.Fatalf("TouchSession as trail_app: %v", err)
		}
		if n, err := app.DeleteEndedSessions(ctx, now.Add(2*time.Hour)); err != nil || n != 1 {
			t.Fatalf("DeleteEndedSessions as trail_app: %d, %v", n, err)
		}
	})
}

func TestRules(t *testing.T) {
	storetest.RunRules(t, func(t *testing.T) trail.RuleStore {
		return open(t, pgtest.NewSchema(t), postgres.Options{})
	})
	storetest.RunRulesDurable(t, durable)

	// trail_app may put, replace, read and delete rule files.
	t.Run("AppRole", func(t *testing.T) {
		ctx := context.Background()
		schema := pgtest.NewSchema(t)
		open(t, schema, postgres.Options{}) // migrates as the owner
		app, _ := openAsApp(t, schema)
		f := &trail.RuleFile{Tenant: "acme", Name: "mine", YAML: storetest.SigmaRule("r-1")}
		for range 2 {
			if err := app.PutRule(ctx, f); err != nil {
				t.Fatalf("PutRule as trail_app: %v", err)
			}
		}
		if _, err := app.GetRule(ctx, "acme", "mine"); err != nil {
			t.Fatalf("GetRule as trail_app: %v", err)
		}
		if err := app.DeleteRule(ctx, "acme", "mine"); err != nil {
			t.Fatalf("DeleteRule as trail_app: %v", err)
		}
	})
}

func TestSinks(t *testing.T) {
	storetest.RunSinks(t, func(t *testing.T) trail.SinkStore {
		return open(t, pgtest.NewSchema(t), postgres.Options{})
	})
	storetest.RunSinksDurable(t, durable)

	// trail_app may put, read and delete sinks, and not change one.
	t.Run("AppRole", func(t *testing.T) {
		ctx := context.Background()
		schema := pgtest.NewSchema(t)
		open(t, schema, postgres.Options{}) // migrates as the owner
		app, conn := openAsApp(t, schema)
		c := &trail.SinkConfig{Tenant: "acme", Name: "siem", Kind: trail.SinkWebhook, URL: "https://siem.example.com/", Secret: storetest.WebhookSecret}
		if err := app.PutSink(ctx, c); err != nil {
			t.Fatalf("PutSink as trail_app: %v", err)
		}
		if _, err := app.GetSink(ctx, "acme", "siem"); err != nil {
			t.Fatalf("GetSink as trail_app: %v", err)
		}
		if err := app.DeleteSink(ctx, "acme", "siem"); err != nil {
			t.Fatalf("DeleteSink as trail_app: %v", err)
		}
		_, err := conn.Exec(ctx, "UPDATE sinks SET url = 'https://evil.example.com/'")
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "42501" {
			t.Errorf("trail_app updated a sink: %v; want permission denied", err)
		}
	})
}

// TestActionMigration: migration 6 gives the custom actions saved when one
// catalog served every tenant to the tenants whose logs registered or used
// them.
func TestActionMigration(t *testing.T) {
	storetest.RunActionMigration(t, durable(t), storetest.Legacy{
		Undo: []string{"DROP TABLE cosignatures", "DROP TABLE rules", "ALTER TABLE sinks DROP COLUMN on_refusal", "DROP TABLE sessions", "DROP TABLE tenant_actions", "DELETE FROM schema_migrations WHERE version >= 6"},
		Save: func(name string, def []byte) string {
			return fmt.Sprintf("INSERT INTO custom_actions (name, definition, saved_at) VALUES ('%s', decode('%x', 'hex'), 1)", name, def)
		},
	})
}

func TestCosignatures(t *testing.T) {
	storetest.RunCosignatures(t, func(t *testing.T) trail.Store {
		return open(t, pgtest.NewSchema(t), postgres.Options{})
	})
	storetest.RunCosignaturesDurable(t, durable)
}

// TestWritePathsStoreTheSameRows appends the same events by COPY (binary,
// encoded by the store) and by INSERT (encoded by pgx), each into a schema
// of its own, and checks that both store the same rows, column for column
// (but the id Trail gives each event, and so its bytes and hashes), that the
// id and bytes are those of the event Append returned, and that every
// stored time with its *_ns column is the event's own time:
// times before 1970 and 2000 (negative microseconds), with and without
// nanoseconds under the microsecond, and the edges of what a store holds.
func TestWritePathsStoreTheSameRows(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 5, 1, 12, 0, 0, 123456789, time.UTC)
	occurred := []time.Time{
		time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(1999, 12, 31, 23, 59, 59, 1, time.UTC),
		time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-3999, 1, 1, 0, 0, 0, 999, time.UTC),
		time.Date(199999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		now,
	}
	events := func() []*trail.Event {
		var evs []*trail.Event
		for i, at := range occurred {
			ev := storetest.Login(fmt.Sprintf("u-%d", i))
			ev.OccurredAt = at
			ev.CorrelationID = fmt.Sprintf("c-%d", i%2)
			ev.Targets = append(ev.Targets, trail.Target{Type: "document", ID: fmt.Sprintf("d-%d", i)})
			evs = append(evs, ev)
		}
		return evs
	}
	const columns = `id::text, body, tenant, seq, recorded_at, recorded_ns, occurred_at, occurred_ns, action, category, outcome,
		actor_id, actor_type, organization, workspace, team, correlation_id, length(hashes), pruned IS NULL`
	read := func(conn *pgx.Conn) (rows [][]any, targets [][]any) {
		for _, q := range []struct {
			sql string
			out *[][]any
		}{
			{"SELECT " + columns + " FROM events ORDER BY tenant, seq", &rows},
			{"SELECT tenant, seq, type, id FROM event_targets ORDER BY tenant, seq, type, id", &targets},
		} {
			r, err := conn.Query(ctx, q.sql)
			if err != nil {
				t.Fatal(err)
			}
			for r.Next() {
				v, err := r.Values()
				if err != nil {
					t.Fatal(err)
				}
				*q.out = append(*q.out, v)
			}
			if err := r.Err(); err != nil {
				t.Fatal(err)
			}
		}
		return rows, targets
	}
	var got [2][2][][]any
	for i, copyMin := range []int{1, 1000} {
		postgres.SetCopyMin(t, copyMin)
		schema := pgtest.NewSchema(t)
		db := open(t, schema, postgres.Options{Now: func() time.Time { return now }})
		res, err := db.Append(ctx, "acme", events(), trail.AppendOptions{})
		if err != nil {
			t.Fatalf("copyMin=%d: Append: %v", copyMin, err)
		}
		got[i][0], got[i][1] = read(connect(t, schema, nil))
		for j, r := range got[i][0] {
			body, err := trail.MarshalCanonical(res.Events[j])
			if err != nil {
				t.Fatal(err)
			}
			if r[0] != res.Events[j].ID || !bytes.Equal(r[1].([]byte), body) {
				t.Errorf("copyMin=%d: row %d holds id %v and body %s, want %s and %s", copyMin, j, r[0], r[1], res.Events[j].ID, body)
			}
			got[i][0][j] = r[2:]
		}
	}
	if !reflect.DeepEqual(got[0], got[1]) {
		t.Fatalf("COPY stored\n%v\nINSERT stored\n%v", got[0], got[1])
	}
	rows, targets := got[0][0], got[0][1]
	if len(rows) != len(occurred) || len(targets) != 2*len(occurred) {
		t.Fatalf("%d rows and %d targets rows, want %d and %d", len(rows), len(targets), len(occurred), 2*len(occurred))
	}
	for i, r := range rows {
		at := func(col int) time.Time { return r[col].(time.Time).Add(time.Duration(r[col+1].(int32))) }
		if rec := at(2); !rec.Equal(now) {
			t.Errorf("row %d: recorded_at with recorded_ns is %v, want %v", i, rec, now)
		}
		if occ := at(4); !occ.Equal(occurred[i]) {
			t.Errorf("row %d: occurred_at with occurred_ns is %v, want %v", i, occ, occurred[i])
		}
	}
}
