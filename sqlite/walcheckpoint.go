package sqlite

import (
	"context"
	"database/sql"
	"fmt"
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
// log has grown past Options.MaxWAL, the checkpointer runs a TRUNCATE
// checkpoint, which waits for them (busy_timeout), copies everything and
// empties the file: the log stays bounded however busy the store is.

// walCheckpointer runs checkpoints until db.stop is closed, each time a
// commit wakes it (db.cpKick). A checkpoint that fails loses nothing (the
// commits are in the log) and is retried at the next wake-up; it is
// logged, since a log that cannot be checkpointed grows.
func (db *DB) walCheckpointer() {
	defer close(db.cpDone)
	for {
		select {
		case <-db.cpKick:
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
		if err := db.checkpoint(bg); err != nil {
			db.o.Logger.Error("sqlite: checkpoint of the write-ahead log failed; it is retried after the next commit",
				"path", db.path, "err", err)
		}
	}
}

// checkpointEvery is the least time between two checkpoints: what the
// commits of that time wrote to the log is copied into the file at once.
// At a commit of 1000 events every 10–40 ms that is a few commits, well
// within the default MaxWAL.
const checkpointEvery = 100 * time.Millisecond

// checkpoint copies the log into the database file (PASSIVE), and when
// the log is larger than Options.MaxWAL, copies all of it and truncates
// it (TRUNCATE), waiting for readers and the writer as busy_timeout
// allows.
func (db *DB) checkpoint(ctx context.Context) error {
	frames, err := walCheckpoint(ctx, db.cdb, "PASSIVE")
	if err != nil || frames*db.pageSize <= db.o.MaxWAL {
		return err
	}
	_, err = walCheckpoint(ctx, db.cdb, "TRUNCATE")
	return err
}

// walCheckpoint runs PRAGMA wal_checkpoint(mode) and returns the log's
// size in frames as it was.
func walCheckpoint(ctx context.Context, c *sql.DB, mode string) (int64, error) {
	var busy, frames, moved int64
	if err := c.QueryRowContext(ctx, "PRAGMA wal_checkpoint("+mode+")").Scan(&busy, &frames, &moved); err != nil {
		return 0, internal(err, "checkpoint the write-ahead log ("+mode+")")
	}
	if mode == "TRUNCATE" && busy != 0 {
		return frames, internal(fmt.Errorf("busy: %d of %d frames copied", moved, frames), "checkpoint the write-ahead log (TRUNCATE)")
	}
	return frames, nil
}

// kickCheckpoint wakes the checkpointer (a wake-up pending already is
// enough).
func (db *DB) kickCheckpoint() {
	select {
	case db.cpKick <- struct{}{}:
	default:
	}
}
