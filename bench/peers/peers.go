package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/codenotary/immudb/embedded/logger"
	"github.com/codenotary/immudb/embedded/store"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/redact"
	"github.com/trailaudit/trail/sqlite"
	"github.com/trailaudit/trail/tlog"
	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/storage/posix"
	"golang.org/x/mod/sumdb/note"
)

// Workload is what every system appends in one run: the same events, as
// Trail's batches of events and as the peers' entries (each event's
// canonical bytes), in batches of the same size.
type Workload struct {
	Events  [][]*trail.Event // Trail's batches
	Entries [][][]byte       // the peers' batches: Events' canonical bytes
}

// Len returns how many events the workload holds.
func (w Workload) Len() int {
	n := 0
	for _, b := range w.Entries {
		n += len(b)
	}
	return n
}

// System is one log measured by the benchmark. Run appends w durably to a
// new log kept in dir (an empty folder) and returns how long the appending
// took: from the first entry handed over to the last one durable (and, for
// a transparency log, covered by a published checkpoint). Opening and
// closing the log are not timed. Run must return an error, never a figure,
// when any entry was not stored.
type System interface {
	Name() string
	Run(ctx context.Context, dir string, w Workload) (time.Duration, error)
}

var (
	_ System = trailSQLite{}
	_ System = tesseraPOSIX{}
	_ System = immudbStore{}
)

// trailSQLite is Trail's SQLite store through its public API: sqlite.Open
// and Append, one caller, each batch one durable commit with its signed
// checkpoint, validated and redacted as `trail serve` does.
type trailSQLite struct{}

func (trailSQLite) Name() string { return "trail-sqlite" }

func (trailSQLite) Run(ctx context.Context, dir string, w Workload) (time.Duration, error) {
	return appendTrail(ctx, dir, w.Events, nil)
}

// appendTrail appends batches to a new Trail SQLite store in dir, calling
// stored (when not nil) with each batch as stored, and returns how long
// the appends took.
func appendTrail(ctx context.Context, dir string, batches [][]*trail.Event, stored func([]*trail.Event) error) (time.Duration, error) {
	skey, _, err := tlog.GenerateKey("bench.example")
	if err != nil {
		return 0, err
	}
	signer, err := tlog.NewSigner(skey)
	if err != nil {
		return 0, err
	}
	db, err := sqlite.Open(ctx, filepath.Join(dir, "trail.db"), sqlite.Options{
		Validator: trailValidator(),
		Signer:    signer,
	})
	if err != nil {
		return 0, fmt.Errorf("trail: open: %w", err)
	}
	var took time.Duration
	for _, batch := range batches {
		t0 := time.Now()
		res, err := db.Append(ctx, "acme", batch, trail.AppendOptions{})
		took += time.Since(t0)
		if err == nil && len(res.Events) != len(batch) {
			err = fmt.Errorf("stored %d events of %d", len(res.Events), len(batch))
		}
		if err == nil && stored != nil {
			err = stored(res.Events)
		}
		if err != nil {
			return 0, errors.Join(fmt.Errorf("trail: append: %w", err), db.Close())
		}
	}
	if err := db.Close(); err != nil {
		return 0, fmt.Errorf("trail: close: %w", err)
	}
	return took, nil
}

// trailValidator validates and redacts as `trail serve` does by default:
// the built-in catalog, the default redactor and limits.
func trailValidator() *trail.Validator {
	return &trail.Validator{Actions: catalog.Default(), Redactor: redact.New(redact.Options{}), Limits: trail.DefaultLimits()}
}

// tesseraPOSIX is transparency-dev/tessera's POSIX driver with antispam
// off: every entry is added at once (Tessera batches them, batch size the
// workload's), and the run ends when every entry has its index and a
// published checkpoint covers the last one (tessera.PublicationAwaiter).
// Every file Tessera writes is fsync'd. Adding everything at once is
// Tessera's best case: it pipelines sequencing, integration and
// publication, where Trail's caller waits for each batch.
type tesseraPOSIX struct{}

func (tesseraPOSIX) Name() string { return "tessera-posix" }

func (tesseraPOSIX) Run(ctx context.Context, dir string, w Workload) (time.Duration, error) {
	skey, _, err := note.GenerateKey(rand.Reader, "bench.example/tessera")
	if err != nil {
		return 0, err
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	driver, err := posix.New(ctx, posix.Config{Path: dir})
	if err != nil {
		return 0, fmt.Errorf("tessera: driver: %w", err)
	}
	n := w.Len()
	batch := 1
	if len(w.Entries) > 0 {
		batch = max(1, len(w.Entries[0]))
	}
	opts := tessera.NewAppendOptions().
		WithCheckpointSigner(signer).
		WithBatching(uint(batch), 100*time.Millisecond).
		WithCheckpointInterval(100 * time.Millisecond). // the driver's minimum
		WithPushback(uint(n + 1))                       // every entry may be outstanding
	app, shutdown, reader, err := tessera.NewAppender(ctx, driver, opts)
	if err != nil {
		return 0, fmt.Errorf("tessera: appender: %w", err)
	}
	await := tessera.NewPublicationAwaiter(ctx, reader.ReadCheckpoint, 5*time.Millisecond)

	t0 := time.Now()
	futures := make([]tessera.IndexFuture, 0, n)
	for _, b := range w.Entries {
		for _, e := range b {
			futures = append(futures, app.Add(ctx, tessera.NewEntry(e)))
		}
	}
	var runErr error
	for i, f := range futures {
		idx, err := f()
		if err != nil {
			runErr = fmt.Errorf("tessera: entry %d: %w", i, err)
			break
		}
		if idx.Index != uint64(i) {
			runErr = fmt.Errorf("tessera: entry %d got index %d", i, idx.Index)
			break
		}
	}
	if runErr == nil && n > 0 {
		// The last entry's checkpoint covers all the earlier ones.
		if _, _, err := await.Await(ctx, futures[n-1]); err != nil {
			runErr = fmt.Errorf("tessera: await publication: %w", err)
		}
	}
	took := time.Since(t0)
	if err := shutdown(ctx); err != nil && runErr == nil {
		runErr = fmt.Errorf("tessera: shutdown: %w", err)
	}
	if runErr != nil {
		return 0, runErr
	}
	return took, nil
}

// immudbStore is codenotary/immudb's embedded store: one transaction per
// batch (key: the entry's sequence number, value: its bytes), synced,
// committed with Commit, which returns once the transaction is durable and
// indexed. syncFrequency is the store's sync window (its default is 20 ms;
// 0 syncs every commit at once).
type immudbStore struct{ syncFrequency time.Duration }

func (s immudbStore) Name() string {
	return "immudb-" + s.syncFrequency.String()
}

func (s immudbStore) Run(ctx context.Context, dir string, w Workload) (time.Duration, error) {
	maxBatch := 0
	for _, b := range w.Entries {
		maxBatch = max(maxBatch, len(b))
	}
	opts := store.DefaultOptions().
		WithSynced(true).
		WithSyncFrequency(s.syncFrequency).
		WithMaxTxEntries(max(maxBatch, store.DefaultMaxTxEntries)).
		WithLogger(immudbLogger())
	st, err := store.Open(dir, opts)
	if err != nil {
		return 0, fmt.Errorf("immudb: open: %w", err)
	}
	t0 := time.Now()
	seq := uint64(0)
	var runErr error
	for _, b := range w.Entries {
		if runErr = immudbCommit(ctx, st, seq, b); runErr != nil {
			break
		}
		seq += uint64(len(b))
	}
	took := time.Since(t0)
	if runErr == nil {
		if got, want := st.LastCommittedTxID(), uint64(len(w.Entries)); got != want {
			runErr = fmt.Errorf("immudb: %d transactions committed, want %d", got, want)
		}
	}
	if err := st.Close(); err != nil && runErr == nil {
		runErr = fmt.Errorf("immudb: close: %w", err)
	}
	if runErr != nil {
		return 0, runErr
	}
	return took, nil
}

// immudbLogger keeps immudb's info lines off the report.
func immudbLogger() logger.Logger {
	return logger.NewSimpleLoggerWithLevel("immudb", io.Discard, logger.LogError)
}

// immudbCommit writes one batch as one transaction, from sequence number
// seq on.
func immudbCommit(ctx context.Context, st *store.ImmuStore, seq uint64, batch [][]byte) error {
	tx, err := st.NewWriteOnlyTx(ctx)
	if err != nil {
		return fmt.Errorf("immudb: new tx: %w", err)
	}
	for i, e := range batch {
		if err := tx.Set(immudbKey(seq+uint64(i)), nil, e); err != nil {
			return errors.Join(fmt.Errorf("immudb: set: %w", err), tx.Cancel())
		}
	}
	if _, err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("immudb: commit: %w", err)
	}
	return nil
}

// immudbKey is entry seq's key: fixed width, so keys sort in log order.
func immudbKey(seq uint64) []byte {
	return fmt.Appendf(nil, "acme/%016x", seq)
}
