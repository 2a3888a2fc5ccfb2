package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations are the schema's versions, in order: migrations[i] takes a
// database from version i to i+1. They are forward-only: a released entry
// is never edited, only followed by a new one. The version lives in SQLite's
// user_version.
//
// Rows of events are keyed by one integer, key = tid<<40 | seq, where tid is
// the tenant's number in tenants. That key is the table's rowid, so a
// tenant's log is one contiguous rowid range: reading by seq, paging by seq
// and finding the head are rowid lookups with no extra index, and every
// secondary index ends in the key, so its entries for one value are already
// in seq order. A tenant can hold 2^40 events.
//
// Each index costs every append a B-tree insert; docs/design.md has the
// measured cost of each and why these were chosen.
var migrations = []string{
	// 1: events with their tree hashes, targets, idempotency keys,
	// checkpoints; append-only by trigger.
	`
CREATE TABLE tenants (
	tid  INTEGER PRIMARY KEY,
	name TEXT NOT NULL UNIQUE
);
CREATE TABLE events (
	key            INTEGER PRIMARY KEY, -- tid<<40 | seq
	id             BLOB NOT NULL,       -- 16-byte UUIDv7
	recorded_at    INTEGER NOT NULL,    -- Unix nanoseconds
	occurred_at    INTEGER NOT NULL,    -- Unix nanoseconds
	action         TEXT NOT NULL,
	category       TEXT NOT NULL,
	outcome        TEXT NOT NULL,
	actor_id       TEXT NOT NULL,
	actor_type     TEXT NOT NULL,
	organization   TEXT NOT NULL,
	workspace      TEXT NOT NULL,
	team           TEXT NOT NULL,
	correlation_id TEXT NOT NULL,
	body           BLOB NOT NULL,       -- trail.MarshalCanonical: the bytes the log hashes
	hashes         BLOB NOT NULL        -- trail.Leaf.Hashes: leaf hash, then the tree nodes it completed
);
CREATE UNIQUE INDEX events_id ON events (id);
CREATE INDEX events_actor ON events (actor_id);
CREATE INDEX events_action ON events (action);
CREATE INDEX events_workspace_action ON events (workspace, action);
CREATE INDEX events_correlation ON events (correlation_id) WHERE correlation_id <> '';
CREATE TABLE targets (
	id   TEXT NOT NULL,
	key  INTEGER NOT NULL,
	type TEXT NOT NULL,
	PRIMARY KEY (id, key, type)
) WITHOUT ROWID;
CREATE TABLE idempotency (
	tid         INTEGER NOT NULL,
	key         TEXT NOT NULL,
	fingerprint BLOB NOT NULL,
	first_seq   INTEGER NOT NULL,
	n           INTEGER NOT NULL,
	PRIMARY KEY (tid, key)
) WITHOUT ROWID;
CREATE TABLE checkpoints (
	tid  INTEGER NOT NULL,
	size INTEGER NOT NULL,
	note BLOB NOT NULL, -- the signed note (tlog.Signer.Sign)
	PRIMARY KEY (tid, size)
) WITHOUT ROWID;
CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints
	BEGIN SELECT RAISE(ABORT, 'trail: checkpoints are append-only'); END;
CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON checkpoints
	BEGIN SELECT RAISE(ABORT, 'trail: checkpoints are append-only'); END;
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
	BEGIN SELECT RAISE(ABORT, 'trail: events are append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
	BEGIN SELECT RAISE(ABORT, 'trail: events are append-only'); END;
CREATE TRIGGER targets_no_update BEFORE UPDATE ON targets
	BEGIN SELECT RAISE(ABORT, 'trail: events are append-only'); END;
CREATE TRIGGER targets_no_delete BEFORE DELETE ON targets
	BEGIN SELECT RAISE(ABORT, 'trail: events are append-only'); END;
CREATE TRIGGER idempotency_no_update BEFORE UPDATE ON idempotency
	BEGIN SELECT RAISE(ABORT, 'trail: idempotency keys are append-only'); END;
CREATE TRIGGER tenants_no_update BEFORE UPDATE ON tenants
	BEGIN SELECT RAISE(ABORT, 'trail: tenants are append-only'); END;
CREATE TRIGGER tenants_no_delete BEFORE DELETE ON tenants
	BEGIN SELECT RAISE(ABORT, 'trail: tenants are append-only'); END;
`,
}

// SchemaVersion is the schema version this build writes and reads.
var SchemaVersion = len(migrations)

const seqBits = 40

// maxSeq is the largest seq a tenant can reach.
const maxSeq = 1<<seqBits - 1

func rowKey(tid int64, seq uint64) int64 { return tid<<seqBits | int64(seq) }

func keySeq(key int64) uint64 { return uint64(key) & maxSeq }

// migrate brings the database to SchemaVersion, each step in its own
// transaction, and refuses a database newer than this build.
func migrate(ctx context.Context, c *sql.Conn) error {
	for {
		tx, err := c.BeginTx(ctx, nil) // BEGIN IMMEDIATE: one migrator at a time
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		var v int
		if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate: read schema version: %w", err)
		}
		if v > SchemaVersion {
			tx.Rollback()
			return fmt.Errorf("database schema version %d is newer than this build of Trail understands (%d): upgrade Trail", v, SchemaVersion)
		}
		if v == SchemaVersion {
			return tx.Rollback()
		}
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate to version %d: %w", v+1, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate to version %d: %w", v+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate to version %d: %w", v+1, err)
		}
	}
}
