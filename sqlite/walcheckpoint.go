package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"
)

// The write-ahead log is copied into the database file by a goroutine of
// its own (walCheckpointer), not by the commit that happens to cross
// SQLite's automatic threshold: the writer's connections run with
// wal_autocheckpoint=0, and each commit only wakes the checkpointer. On
// two cores the copy overlaps the next group's preparation and writing.
// The checkpointer runs at most once per checkpointEvery, so under load
// the commits of that interval coalesce: a page several of them dirtied
// (the hot end of every index) is copied into the file, and the file
// fsynced, once for all of them rather than once per commit.
//
// Durability is not touched: every commit still fsyncs the log before it
// returns (synchronous=FULL), and a checkpoint fsyncs the database file
// before the log is reused, as SQLite's own does. A crash between the two
// leaves the commits in the log, which SQLite replays on open.
//
// A PASSIVE checkpoint never waits for the writer or the readers, so it
// may leave frames behind (a reader still on an older snapshot). When the
// log has grown past Options.MaxWAL, the checkpointer runs a RESTART
// checkpoint, which copies everything and waits until no reader uses the
// log, so that the next commit writes it again from its start (and cuts
// the file back to MaxWAL, journal_size_limit): the log stays bounded
// however busy the store is. Under continuous appends that is what resets
// the log: a PASSIVE checkpoint finishes while the writer is in its next
// transaction, so the log is never found fully copied between two, and it
// grows until RESTART. RESTART rather than TRUNCATE: a log truncated to
// nothing is grown again by every commit after, whose fsync then also
// writes the file's new size and blocks; a log reused in place is not
// (measured on a quiet machine: 1.18x the appends of batches of 1000,
// 1.30x those of 64 single-event callers; docs/benchmarks.md).
// It runs between groups, with the writer held (DB.turn), so that it
// waits for readers alone; it holds new writers back while it waits, so
// its connection waits at most restartWait; when a reader keeps it from
// finishing (a long export or verify on an older snapshot), the next
// attempt is restartBackoff later, so that appends are held back at most
// restartWait in every restartBackoff while the log stays over its bound
// (as SQLite's own checkpoints leave it, then).

// walCheckpointer runs checkpoints until db.stop is closed, each time a
// commit wakes it (db.cpKick), checkpointEvery after the wake-up. A
// checkpoint that fails loses nothing (the commits are in the log) and is
// retried at the next wake-up; it is logged, since a log that cannot be
// checkpointed grows.
func (db *DB) walCheckpointer() {
	defer close(db.cpDone)
	var restartAt time.Time // no RESTART before then
	over := false           // the last checkpoint left the log over MaxWAL
	for {
		// A log left over its bound is tried again at restartAt, even
		// if no commit comes.
		var retry <-chan time.Time // nil: never
		if over {
			retry = time.After(time.Until(restartAt))
		}
		select {
		case <-db.cpKick:
		case <-retry:
		case <-db.stop:
			return
		}
		timer := time.NewTimer(checkpointEvery)
		select {
		case <-timer.C:
		case <-db.stop:
			timer.Stop()
			return // Close checkpoints as SQLite closes the last connection
		}
		var err error
		var busy bool
		busy, over, err = db.checkpoint(bg, !time.Now().Before(restartAt))
		if busy {
			restartAt = time.Now().Add(restartBackoff)
		}
		if err != nil {
			db.o.Logger.Error("sqlite: checkpoint of the write-ahead log failed; it is retried later",
				"path", db.path, "err", err)
		}
	}
}

// checkpointEvery is the least time between two checkpoints: what the
// commits of that time wrote to the log is copied into the file at once.
// At a commit of 1000 events every 10–50 ms that is 6–30 commits, 14–70
// MB of log (about a 4 KiB page for two events): at the fast end one
// interval's commits may pass the default MaxWAL (64 MiB), which the
// checkpoint's RESTART then cuts back. The longer the interval, the more
// often a page several commits dirtied is copied once for all of them
// (300 ms rather than 100: about a tenth fewer bytes written an event,
// docs/benchmarks.md).
const checkpointEvery = 300 * time.Millisecond

// restartWait is the longest a RESTART checkpoint waits for readers
// and the writer (the checkpointer's busy_timeout); restartBackoff the
// time before another is tried after one could not finish.
const (
	restartWait    = 500 * time.Millisecond
	restartBackoff = 10 * time.Second
)

// checkpoint copies the log into the database file (PASSIVE), and when
// the log is larger than Options.MaxWAL and restart is set, copies all
// of it and waits for the readers to leave it, so that the next commit
// writes it from its start (RESTART), waiting at most restartWait. It
// reports whether a RESTART could not finish (busy) for a reader, and
// whether the log is left over MaxWAL.
func (db *DB) checkpoint(ctx context.Context, restart bool) (busy, over bool, err error) {
	_, frames, err := walCheckpoint(ctx, db.cdb, "PASSIVE")
	if err == nil {
		db.wal.sawLog(frames * db.pageSize)
	}
	if err != nil || frames*db.pageSize <= db.o.MaxWAL {
		return false, false, err
	}
	if !restart {
		return false, true, nil
	}
	// Between groups: with the writer held, its open group committed and
	// the one committing done (settle), no transaction of the store's is
	// open, so RESTART waits for readers alone; appends wait for it (most
	// of the log is copied by the PASSIVE checkpoints before, so it is
	// short).
	t0 := time.Now()
	db.turn <- struct{}{}
	t1 := time.Now()
	db.settle()
	busy, frames, err = walCheckpoint(ctx, db.cdb, "RESTART")
	<-db.turn
	waited, held := t1.Sub(t0), time.Since(t1)
	db.wal.restarted(busy, err, waited, held)
	db.o.Logger.Debug("sqlite: RESTART checkpoint", "path", db.path, "frames", frames, "busy", busy,
		"waited", waited, "held", held)
	if err == nil && busy {
		err = internal(fmt.Errorf("the log holds %d bytes, over MaxWAL (%d), and a reader kept it from being reset; "+
			"retried in %v", frames*db.pageSize, db.o.MaxWAL, restartBackoff), "checkpoint the write-ahead log (RESTART)")
	}
	return busy, err != nil, err
}

// WALStats is what the checkpointer did to a store's write-ahead log since
// Open (all zero for a read-only store, which checkpoints nothing): how
// often it reset the log (RESTART) and what that cost the writer. A
// program watching a store reads it with DB.WALStats; trail serve exports
// it on /metrics (trail_sqlite_wal_*).
type WALStats struct {
	// Resets are the RESTART checkpoints that reset the log (over
	// Options.MaxWAL): the next commit wrote it from its start.
	Resets int64
	// Busy are the RESTART checkpoints a reader on an older snapshot kept
	// from finishing: the log stayed over MaxWAL until the next attempt,
	// restartBackoff (10 s) later. A RESTART that failed otherwise (an
	// error, logged) is in neither count.
	Busy int64
	// Held is the time the RESTART checkpoints, finished or not, held the
	// writer: appends waited for it.
	Held time.Duration
	// Waited is the time the checkpointer waited for the writer (its
	// group in progress) before each RESTART.
	Waited time.Duration
	// Largest is the largest log a checkpoint found, in bytes (its frames
	// times the page size); the bound is MaxWAL and the commits of a
	// checkpoint interval.
	Largest int64
}

// String is the stats in one line, for a benchmark's log.
func (s WALStats) String() string {
	return fmt.Sprintf("%d resets (%d busy) held the writer %v (waited %v), largest log %.1f MiB",
		s.Resets, s.Busy, s.Held.Round(time.Millisecond), s.Waited.Round(time.Millisecond), float64(s.Largest)/(1<<20))
}

// WALStats says what the checkpointer did to the write-ahead log since
// Open. It may be called at any time, from any goroutine, and after Close.
func (db *DB) WALStats() WALStats {
	db.wal.mu.Lock()
	defer db.wal.mu.Unlock()
	return db.wal.s
}

// walStats is a DB's WALStats, written by the checkpointer and read by
// DB.WALStats.
type walStats struct {
	mu sync.Mutex
	s  WALStats
}

// sawLog records that a checkpoint found a log of size bytes.
func (w *walStats) sawLog(size int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.s.Largest = max(w.s.Largest, size)
}

// restarted records a RESTART checkpoint as walCheckpoint answered it: a
// reset of the log, or one a reader kept from finishing (busy), or
// neither (err); and how long it waited for the writer and how long it
// held it.
func (w *walStats) restarted(busy bool, err error, waited, held time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case err != nil: // in neither count (the checkpointer logs it)
	case busy:
		w.s.Busy++
	default:
		w.s.Resets++
	}
	w.s.Waited += waited
	w.s.Held += held
}

// walCheckpoint runs PRAGMA wal_checkpoint(mode): whether it could not
// finish (busy), and the log's size in frames as it was.
func walCheckpoint(ctx context.Context, c *sql.DB, mode string) (busy bool, frames int64, err error) {
	var b, moved int64
	if err := c.QueryRowContext(ctx, "PRAGMA wal_checkpoint("+mode+")").Scan(&b, &frames, &moved); err != nil {
		return false, 0, internal(err, "checkpoint the write-ahead log ("+mode+")")
	}
	return b != 0, frames, nil
}

// checkpointerPragmas are the writer's pragmas with busy_timeout set to
// restartWait. (The first busy_timeout of a DSN is the one the driver
// applies, so it is replaced rather than added.)
func checkpointerPragmas(writer []string) []string {
	return replacePragma(writer, fmt.Sprintf("busy_timeout(%d)", restartWait.Milliseconds()))
}

// kickCheckpoint wakes the checkpointer (a wake-up pending already is
// enough).
func (db *DB) kickCheckpoint() {
	select {
	case db.cpKick <- struct{}{}:
	default:
	}
}
