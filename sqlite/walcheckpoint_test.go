package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/sample"
	"github.com/trailaudit/trail/sqlite"
	"github.com/trailaudit/trail/storetest"
)

// TestWALBounded checks that the write-ahead log is checkpointed off the
// commit path and kept within Options.MaxWAL: while appends go on, the
// background checkpointer copies it into the file and resets it, so that
// the commits after write it again from its start and the file is cut
// back to MaxWAL (it stays far under what was written), and the events
// read back, after a reopen too. DB.WALStats counts the resets and what
// they cost the writer, and the largest log, within the same bound: every
// RESTART once, as a reset or as busy, as the checkpointer's own record
// of it says.
func TestWALBounded(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "trail.db")
	var restarts restartLog
	o := sqlite.Options{Validator: storetest.Validator(), Signer: storetest.Signer(), MaxWAL: 256 << 10, Logger: slog.New(&restarts)}
	db, err := sqlite.Open(ctx, path, o)
	if err != nil {
		t.Fatal(err)
	}
	if st := db.WALStats(); st != (sqlite.WALStats{}) {
		t.Fatalf("WALStats of a store nothing was appended to = %+v; want zero", st)
	}
	s := sample.New(5)
	const batches, size = 60, 40
	var largest int64 // the log file's, after each commit
	for range batches {
		if _, err := db.Append(ctx, "acme", s.Batch(size, time.Now()), trail.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		largest = max(largest, fi.Size())
		time.Sleep(30 * time.Millisecond) // a tenth of the checkpointer's interval
	}
	// 2,400 events write about 15 MB to the log; bounded, it holds MaxWAL
	// and the commits of a checkpoint interval or two (40 events each,
	// about 0.3 MB), and a RESTART the writer kept from finishing is
	// tried again 10 s later (restartBackoff), well after this test.
	limit := o.MaxWAL + 4<<20
	if largest > limit {
		t.Errorf("the write-ahead log reached %d bytes, over MaxWAL %d and a few commits (%d): it was not reset", largest, o.MaxWAL, limit)
	}
	// The log grew past MaxWAL about 60 times over (15 MB written) and
	// stayed under limit: the checkpointer reset it (9 times in a quiet
	// run), each reset holding the writer a while. Each RESTART is counted
	// once, where the checkpointer's record of it says: no reader keeps
	// one from finishing here, but a machine loaded enough to stall the
	// RESTART past restartWait (0.5 s) makes one busy, and that is counted
	// as busy, not as a reset; no checkpoint failed otherwise.
	st := db.WALStats()
	reset, busy, failed := restarts.counts()
	if st.Resets == 0 || st.Resets != reset || st.Busy != busy || failed != busy || st.Held <= 0 || st.Largest <= o.MaxWAL || st.Largest > limit {
		t.Errorf("WALStats = %+v (%v); the checkpointer recorded %d RESTARTs that reset the log, %d busy, %d failed checkpoints; "+
			"want resets, each RESTART counted as recorded, none failed but the busy ones, some time held, the largest log over MaxWAL %d and under %d",
			st, st, reset, busy, failed, o.MaxWAL, limit)
	}
	if n, err := db.Count(ctx, trail.Query{Tenant: "acme"}); err != nil || n != batches*size {
		t.Fatalf("Count = %d, %v; want %d", n, err, batches*size)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if db, err = sqlite.Open(ctx, path, o); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if n, err := db.Count(ctx, trail.Query{Tenant: "acme"}); err != nil || n != batches*size {
		t.Fatalf("after reopen: Count = %d, %v; want %d", n, err, batches*size)
	}
}

// TestWALPinnedByReader checks what happens when a reader on an old
// snapshot keeps the log from being reset: appends go on, held back no
// longer than the checkpointer waits, and the checkpointer says
// (Options.Logger) that the log is over MaxWAL and counts the RESTART
// the reader kept from finishing (WALStats.Busy).
func TestWALPinnedByReader(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "trail.db")
	var logs syncBuffer
	o := sqlite.Options{Validator: storetest.Validator(), Signer: storetest.Signer(), MaxWAL: 64 << 10,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	db, err := sqlite.Open(ctx, path, o)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := sample.New(6)
	if _, err := db.Append(ctx, "acme", s.Batch(10, time.Now()), trail.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	reader, err := raw.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Rollback()
	var n int
	if err := reader.QueryRowContext(ctx, "SELECT count(*) FROM events").Scan(&n); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		// An append may wait for a RESTART that waits for the reader,
		// but only restartWait (0.5 s), not the writer's busy_timeout
		// (10 s).
		t0 := time.Now()
		if _, err := db.Append(ctx, "acme", s.Batch(300, time.Now()), trail.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(t0); d > 6*time.Second {
			t.Errorf("append %d took %v while a reader pinned the log: held back by the checkpointer", i, d)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), "over MaxWAL") && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if got := logs.String(); !strings.Contains(got, "over MaxWAL") {
		t.Errorf("a log pinned over MaxWAL by a reader was not reported; logs:\n%s", got)
	}
	if st := db.WALStats(); st.Busy == 0 || st.Largest <= o.MaxWAL {
		t.Errorf("WALStats = %+v while a reader pinned the log; want a busy RESTART and the largest log over MaxWAL %d", st, o.MaxWAL)
	}
	if got, err := db.Count(ctx, trail.Query{Tenant: "acme"}); err != nil || got != 910 {
		t.Errorf("Count = %d, %v; want 910", got, err)
	}
}

// restartLog is a slog.Handler counting what a store's checkpointer
// records: its RESTART checkpoints (Debug), by whether each was busy, and
// the checkpoints that failed (Error; a busy RESTART is one).
type restartLog struct {
	mu                  sync.Mutex
	reset, busy, failed int64
}

func (l *restartLog) Enabled(context.Context, slog.Level) bool { return true }

func (l *restartLog) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case r.Message == "sqlite: RESTART checkpoint":
		busy := false
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "busy" {
				busy = a.Value.Bool()
			}
			return true
		})
		if busy {
			l.busy++
		} else {
			l.reset++
		}
	case r.Level >= slog.LevelError:
		l.failed++
	}
	return nil
}

func (l *restartLog) WithAttrs([]slog.Attr) slog.Handler { return l }

func (l *restartLog) WithGroup(string) slog.Handler { return l }

// counts returns the RESTARTs recorded that were not busy, the busy ones,
// and the failed checkpoints.
func (l *restartLog) counts() (reset, busy, failed int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reset, l.busy, l.failed
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
