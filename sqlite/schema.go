package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/trailaudit/trail"
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
	// 1: events, targets, idempotency keys; append-only by trigger.
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
	body           BLOB NOT NULL        -- trail.MarshalCanonical: the bytes the log hashes
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

	// 2: the tamper-evident log (each event's tree hashes, signed
	// checkpoints), API keys, saved custom actions, retention (pruned
	// payloads) and legal holds. A version-1 database that holds events
	// is refused before this runs (see migrate): its events have no tree
	// hashes, which cannot be added after the fact.
	`
ALTER TABLE events ADD COLUMN hashes BLOB NOT NULL DEFAULT X''; -- trail.Leaf.Hashes: leaf hash, then the tree nodes it completed
ALTER TABLE events ADD COLUMN pruned INTEGER; -- seq of the audit_log_pruned event; NULL while the payload is there
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

-- api_keys holds every API key ever created (trail.APIKey), in creation
-- order (the rowid), with only a hash of its secret. A key is never deleted
-- nor changed, only revoked: revoked_at goes once from 0 to the time.
-- INSERT OR REPLACE would delete a row without firing the DELETE trigger,
-- so an INSERT of an existing id is refused before it gets that far.
CREATE TABLE api_keys (
	id         TEXT PRIMARY KEY,
	tenant     TEXT NOT NULL,
	name       TEXT NOT NULL,
	scopes     TEXT NOT NULL,              -- comma-separated trail.KeyScope
	hash       BLOB NOT NULL,              -- SHA-256 of the secret
	created_at INTEGER NOT NULL,           -- Unix nanoseconds
	revoked_at INTEGER NOT NULL DEFAULT 0  -- Unix nanoseconds; 0 while the key is live
);
CREATE INDEX api_keys_tenant ON api_keys (tenant);
CREATE TRIGGER api_keys_no_replace BEFORE INSERT ON api_keys
	WHEN EXISTS (SELECT 1 FROM api_keys WHERE id = NEW.id)
	BEGIN SELECT RAISE(ABORT, 'trail: API keys are never replaced'); END;
CREATE TRIGGER api_keys_no_delete BEFORE DELETE ON api_keys
	BEGIN SELECT RAISE(ABORT, 'trail: API keys are never deleted, only revoked'); END;
CREATE TRIGGER api_keys_revoke_only BEFORE UPDATE ON api_keys
	WHEN OLD.revoked_at <> 0 OR NEW.revoked_at = 0 OR NEW.rowid IS NOT OLD.rowid
		OR NEW.id IS NOT OLD.id OR NEW.tenant IS NOT OLD.tenant OR NEW.name IS NOT OLD.name
		OR NEW.scopes IS NOT OLD.scopes OR NEW.hash IS NOT OLD.hash OR NEW.created_at IS NOT OLD.created_at
	BEGIN SELECT RAISE(ABORT, 'trail: an API key can only be revoked, once'); END;

-- custom_actions holds the custom actions registered at run time
-- (trail.ActionStore), in the order saved (the rowid); append-only.
CREATE TABLE custom_actions (
	name       TEXT PRIMARY KEY,
	definition BLOB NOT NULL,    -- the trail.Action as JSON
	saved_at   INTEGER NOT NULL  -- Unix nanoseconds
);
CREATE TRIGGER custom_actions_no_replace BEFORE INSERT ON custom_actions
	WHEN EXISTS (SELECT 1 FROM custom_actions WHERE name = NEW.name)
	BEGIN SELECT RAISE(ABORT, 'trail: saved actions are never replaced'); END;
CREATE TRIGGER custom_actions_no_update BEFORE UPDATE ON custom_actions
	BEGIN SELECT RAISE(ABORT, 'trail: saved actions are append-only'); END;
CREATE TRIGGER custom_actions_no_delete BEFORE DELETE ON custom_actions
	BEGIN SELECT RAISE(ABORT, 'trail: saved actions are append-only'); END;

-- Retention (prune.go). Pruning an event removes its payload and keeps its
-- place in the tree: body becomes X'' and the indexed copies of its
-- descriptive fields (actor_id, organization, workspace, team,
-- correlation_id) become '', its targets rows are deleted, and pruned
-- takes the seq of the audit_log_pruned event that records it; key, id,
-- times, action, category, outcome, actor_type and hashes never change.
-- The update trigger allows exactly that, once per row, and only when the
-- record is the tenant's latest event, as it is in the commit that appends
-- it; audit_log_pruned events themselves are never pruned. A targets row
-- may only be deleted once its event is pruned.
CREATE INDEX events_pruned ON events (key) WHERE pruned IS NOT NULL;
DROP TRIGGER events_no_update;
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
	WHEN OLD.pruned IS NOT NULL OR NEW.pruned IS NULL OR OLD.action = 'audit_log_pruned'
		OR NEW.key IS NOT OLD.key OR NEW.id IS NOT OLD.id OR NEW.hashes IS NOT OLD.hashes
		OR NEW.recorded_at IS NOT OLD.recorded_at OR NEW.occurred_at IS NOT OLD.occurred_at
		OR NEW.action IS NOT OLD.action OR NEW.category IS NOT OLD.category OR NEW.outcome IS NOT OLD.outcome
		OR NEW.actor_type IS NOT OLD.actor_type
		OR NEW.body IS NOT X'' OR NEW.actor_id IS NOT '' OR NEW.organization IS NOT '' OR NEW.workspace IS NOT ''
		OR NEW.team IS NOT '' OR NEW.correlation_id IS NOT ''
		OR NEW.pruned <= (OLD.key & 1099511627775)
		OR NOT EXISTS (SELECT 1 FROM events r WHERE r.key = ((OLD.key >> 40) << 40) + NEW.pruned
			AND r.action = 'audit_log_pruned' AND r.pruned IS NULL)
		OR EXISTS (SELECT 1 FROM events x WHERE x.key > ((OLD.key >> 40) << 40) + NEW.pruned
			AND x.key <= ((OLD.key >> 40) << 40) + 1099511627775)
	BEGIN SELECT RAISE(ABORT, 'trail: events are append-only (retention may only remove a payload once, in the commit of its audit_log_pruned record)'); END;
DROP TRIGGER targets_no_delete;
CREATE TRIGGER targets_no_delete BEFORE DELETE ON targets
	WHEN NOT EXISTS (SELECT 1 FROM events WHERE key = OLD.key AND pruned IS NOT NULL)
	BEGIN SELECT RAISE(ABORT, 'trail: events are append-only'); END;

-- holds keeps legal holds (trail.HoldStore, holds.go), in the order placed
-- (the rowid). A hold is never deleted nor changed, only released:
-- released_at goes once from 0 to the time. As for api_keys, an INSERT of
-- an existing (tenant, id) is refused before a REPLACE could delete it.
CREATE TABLE holds (
	tenant      TEXT NOT NULL,
	id          TEXT NOT NULL,
	filter      BLOB NOT NULL,             -- trail.HoldFilter as JSON
	reason      TEXT NOT NULL,
	created_by  TEXT NOT NULL,
	created_at  INTEGER NOT NULL,          -- Unix nanoseconds
	released_at INTEGER NOT NULL DEFAULT 0, -- Unix nanoseconds; 0 while the hold stands
	UNIQUE (tenant, id)
);
CREATE TRIGGER holds_no_replace BEFORE INSERT ON holds
	WHEN EXISTS (SELECT 1 FROM holds WHERE tenant = NEW.tenant AND id = NEW.id)
	BEGIN SELECT RAISE(ABORT, 'trail: legal holds are never replaced'); END;
CREATE TRIGGER holds_no_delete BEFORE DELETE ON holds
	BEGIN SELECT RAISE(ABORT, 'trail: legal holds are never deleted, only released'); END;
CREATE TRIGGER holds_release_only BEFORE UPDATE ON holds
	WHEN OLD.released_at <> 0 OR NEW.released_at = 0 OR NEW.rowid IS NOT OLD.rowid
		OR NEW.tenant IS NOT OLD.tenant OR NEW.id IS NOT OLD.id OR NEW.filter IS NOT OLD.filter
		OR NEW.reason IS NOT OLD.reason OR NEW.created_by IS NOT OLD.created_by OR NEW.created_at IS NOT OLD.created_at
	BEGIN SELECT RAISE(ABORT, 'trail: a legal hold can only be released, once'); END;
`,

	// 3: what verification holds the rows to. Each tenant's row keeps the
	// size its log reached (written with every commit's checkpoint; it only
	// grows), so that a tail deleted with its checkpoints still shows; and
	// targets are indexed by key, so that verification reads a seq's
	// targets rows (planted ones too) in key order.
	`
ALTER TABLE tenants ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
DROP TRIGGER tenants_no_update;
UPDATE tenants SET size = coalesce((SELECT max(key) & 1099511627775 FROM events
	WHERE key BETWEEN (tenants.tid << 40) + 1 AND (tenants.tid << 40) + 1099511627775), 0);
CREATE TRIGGER tenants_no_update BEFORE UPDATE ON tenants
	WHEN NEW.tid IS NOT OLD.tid OR NEW.name IS NOT OLD.name OR NEW.size < OLD.size
	BEGIN SELECT RAISE(ABORT, 'trail: tenants are append-only (a log''s size only grows)'); END;
CREATE INDEX targets_key ON targets (key);
`,
	// 4: consumers' positions in the tenants' logs (trail.CursorStore): a
	// stream's sink, a detection rule. Not events: updated in place, only
	// forward (the trigger refuses a move back).
	`
CREATE TABLE cursors (
	name       TEXT NOT NULL,
	tenant     TEXT NOT NULL,
	seq        INTEGER NOT NULL,
	updated_at INTEGER NOT NULL, -- Unix nanoseconds
	PRIMARY KEY (name, tenant)
) WITHOUT ROWID;
CREATE TRIGGER cursors_forward BEFORE UPDATE ON cursors
	WHEN NEW.seq < OLD.seq
	BEGIN SELECT RAISE(ABORT, 'trail: a cursor never moves back'); END;
`,
	// 5: the sinks' configurations (trail.SinkStore, sinks.go), in the order
	// put (the rowid). Not events: deleted when a sink is removed (its
	// cursor stays). secret is a webhook's signing key, which the sink
	// needs in clear to sign.
	`
CREATE TABLE sinks (
	tenant     TEXT NOT NULL,
	name       TEXT NOT NULL,
	kind       TEXT NOT NULL,
	url        TEXT NOT NULL,
	address    TEXT NOT NULL,
	secret     TEXT NOT NULL,
	format     TEXT NOT NULL,
	tls        INTEGER NOT NULL,
	subject    TEXT NOT NULL,
	created_at INTEGER NOT NULL, -- Unix nanoseconds
	created_by TEXT NOT NULL,
	UNIQUE (tenant, name)
);
`,
	// 6: custom actions per tenant (trail.ActionStore): tenant_actions, in
	// the order saved (the rowid). custom_actions, of the actions saved when
	// the catalog was shared by every tenant, stays as it was (append-only)
	// and is read no more: each of its actions is given to the tenant whose
	// log records its registration (admin_config_changed of config_key
	// action:NAME) and to every tenant whose log holds an event of it, so no
	// tenant that used one loses it. One no log names goes to no tenant;
	// migrationNotes says what this did.
	`
CREATE TABLE tenant_actions (
	tenant     TEXT NOT NULL,
	name       TEXT NOT NULL,
	definition BLOB NOT NULL,    -- the trail.Action as JSON
	saved_at   INTEGER NOT NULL, -- Unix nanoseconds
	UNIQUE (tenant, name)
);
CREATE TRIGGER tenant_actions_no_replace BEFORE INSERT ON tenant_actions
	WHEN EXISTS (SELECT 1 FROM tenant_actions WHERE tenant = NEW.tenant AND name = NEW.name)
	BEGIN SELECT RAISE(ABORT, 'trail: saved actions are never replaced'); END;
CREATE TRIGGER tenant_actions_no_update BEFORE UPDATE ON tenant_actions
	BEGIN SELECT RAISE(ABORT, 'trail: saved actions are never changed'); END;
CREATE TRIGGER tenant_actions_no_delete BEFORE DELETE ON tenant_actions
	BEGIN SELECT RAISE(ABORT, 'trail: saved actions are never deleted'); END;
INSERT INTO tenant_actions (tenant, name, definition, saved_at)
SELECT t.name, c.name, c.definition, c.saved_at FROM custom_actions c CROSS JOIN tenants t
WHERE EXISTS (SELECT 1 FROM events e WHERE e.action = c.name
		AND e.key BETWEEN (t.tid << 40) + 1 AND (t.tid << 40) + 1099511627775)
	OR EXISTS (SELECT 1 FROM events e WHERE e.action = 'admin_config_changed'
		AND e.key BETWEEN (t.tid << 40) + 1 AND (t.tid << 40) + 1099511627775
		AND instr(CAST(e.body AS TEXT), '"config_key":"action:' || c.name || '"') > 0)
ORDER BY c.rowid, t.tid;
`,
	// 7: the web UI's sessions (trail.SessionStore, sessions.go). Not
	// events: a row is deleted when its session ends (signed out, its key
	// revoked, or swept once ended). hash is the SHA-256 of the session
	// id, which is never stored. deadline is trail.Session.Deadline, kept
	// beside its parts so that a sweep is one range of an index.
	`
CREATE TABLE sessions (
	hash       BLOB PRIMARY KEY,
	tenant     TEXT NOT NULL,
	kind       TEXT NOT NULL,
	key_id     TEXT NOT NULL,
	subject    TEXT NOT NULL,
	created_at INTEGER NOT NULL, -- Unix nanoseconds, as every time here
	seen_at    INTEGER NOT NULL,
	idle       INTEGER NOT NULL, -- nanoseconds
	expires_at INTEGER NOT NULL,
	deadline   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_key ON sessions (key_id);
CREATE INDEX sessions_deadline ON sessions (deadline);
`,
	// 8: what a sink does with a message its receiver refuses for good
	// (trail.SinkConfig.OnRefusal): stop (the default, and what every
	// sink stored before did) or skip, recording the skip in the log.
	`
ALTER TABLE sinks ADD COLUMN on_refusal TEXT NOT NULL DEFAULT 'stop';
`,
	// 9: tenants' own detection rule files (trail.RuleStore, rules.go),
	// Sigma YAML by name. Not events: replaced and deleted in place (each
	// change is recorded in the tenant's log by package detect).
	`
CREATE TABLE rules (
	tenant     TEXT NOT NULL,
	name       TEXT NOT NULL,
	yaml       TEXT NOT NULL,
	created_at INTEGER NOT NULL, -- Unix nanoseconds
	created_by TEXT NOT NULL,
	PRIMARY KEY (tenant, name)
) WITHOUT ROWID;
`,
	// 10: the witnesses' cosignatures of the tenants' checkpoints
	// (trail.CosignatureStore, cosignatures.go), each verified before it
	// is kept. Evidence, not configuration: never changed or deleted.
	`
CREATE TABLE cosignatures (
	tenant    TEXT NOT NULL,
	size      INTEGER NOT NULL,
	witness   TEXT NOT NULL,
	signed_at INTEGER NOT NULL, -- the cosignature's timestamp, Unix seconds
	line      TEXT NOT NULL,    -- the note signature line
	note      BLOB NOT NULL,    -- the signed checkpoint it cosigns
	PRIMARY KEY (tenant, size, witness)
) WITHOUT ROWID;
CREATE TRIGGER cosignatures_no_update BEFORE UPDATE ON cosignatures
	BEGIN SELECT RAISE(ABORT, 'trail: cosignatures are append-only'); END;
CREATE TRIGGER cosignatures_no_delete BEFORE DELETE ON cosignatures
	BEGIN SELECT RAISE(ABORT, 'trail: cosignatures are append-only'); END;
`,
	// 11: people's UI sessions (trail.SessionPerson): the name (email)
	// they are known by and the scopes their mapping gave them. A key's
	// session has neither: it acts as its key.
	`
ALTER TABLE sessions ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN scopes TEXT NOT NULL DEFAULT '';
`,
	// 12: the actor and workspace indexes lead with the key's bucket
	// (bucketBits): a commit's entries land among the current bucket's,
	// a few pages, not on a page of each actor's or workspace's across
	// the whole index, so that an append costs about the same at 10M
	// events as at 10k. Reads walk the buckets (read.go, plan.buckets).
	`
DROP INDEX events_actor;
DROP INDEX events_workspace_action;
CREATE INDEX events_actor ON events (key>>14, actor_id);
CREATE INDEX events_workspace_action ON events (key>>14, workspace, action);
`,
	// 13: targets in log order, found by id through a bucketed index. The
	// table was keyed (id, key, type): an event's targets rows landed on a
	// page of each target's across the whole table, which, with as many
	// targets as an app has records, costs an append at 10M events what
	// the actor index did before 12. Keyed (key, id, type), the rows go in
	// at the table's end, verification reads them in key order without an
	// index of its own (targets_key goes), and targets_id, led by the
	// key's bucket like the indexes of 12, finds a target's rows (in key
	// order within a bucket, so a walk needs no sort). The triggers are
	// those of version 2, on the new table.
	`
CREATE TABLE targets_by_key (
	id   TEXT NOT NULL,
	key  INTEGER NOT NULL,
	type TEXT NOT NULL,
	PRIMARY KEY (key, id, type)
) WITHOUT ROWID;
INSERT INTO targets_by_key (id, key, type) SELECT id, key, type FROM targets ORDER BY key, id, type;
DROP TABLE targets;
ALTER TABLE targets_by_key RENAME TO targets;
CREATE INDEX targets_id ON targets (key>>14, id, key);
CREATE TRIGGER targets_no_update BEFORE UPDATE ON targets
	BEGIN SELECT RAISE(ABORT, 'trail: events are append-only'); END;
CREATE TRIGGER targets_no_delete BEFORE DELETE ON targets
	WHEN NOT EXISTS (SELECT 1 FROM events WHERE key = OLD.key AND pruned IS NOT NULL)
	BEGIN SELECT RAISE(ABORT, 'trail: events are append-only'); END;
`,
}

// bucketBits is how many of a key's low bits its bucket leaves out in the
// bucketed indexes migrations 12 and 13 make: a bucket is a run of 2^bucketBits
// seqs of one tenant.
const bucketBits = 14

// readBucketBits returns the bucket size of the database's bucketed
// indexes, read from their definitions, so that reads spell the bucket as
// they do (bucketExpr); a test's database may have smaller buckets. It
// refuses a database whose indexes disagree or are not bucketed.
func readBucketBits(ctx context.Context, c *sql.Conn) (int, error) {
	bits := -1
	for _, ix := range []struct{ name, cols string }{{"events_actor", "actor_id"}, {"events_workspace_action", "workspace, action"}, {"targets_id", "id, key"}} {
		var def string
		if err := c.QueryRowContext(ctx, "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", ix.name).Scan(&def); err != nil {
			return 0, fmt.Errorf("read index %s: %w", ix.name, err)
		}
		var b int
		if _, err := fmt.Sscanf(def[strings.LastIndex(def, "("):], "(key>>%d, "+ix.cols+")", &b); err != nil || b < 0 || b >= seqBits || (bits >= 0 && b != bits) {
			return 0, fmt.Errorf("index %s is not bucketed as this build reads it: %s", ix.name, def)
		}
		bits = b
	}
	return bits, nil
}

// bucketExpr is the bucket of the key column key (e.key, t.key) in a
// read, as the bucketed indexes of bits spell it.
func bucketExpr(key string, bits int) string { return "(" + key + ">>" + strconv.Itoa(bits) + ")" }

// actionsMigration is the version whose migration gave the shared custom
// actions to tenants.
const actionsMigration = 6

// migrationNotes says what migration to version v did, for the operator;
// it runs in the migration's transaction. Only the migration of custom
// actions to tenants has anything to say.
func migrationNotes(ctx context.Context, tx *sql.Tx, v int) ([]string, error) {
	if v != actionsMigration {
		return nil, nil
	}
	var notes []string
	rows, err := tx.QueryContext(ctx, `SELECT c.name, coalesce(group_concat(a.tenant, ', '), '') FROM custom_actions c
		LEFT JOIN tenant_actions a ON a.name = c.name GROUP BY c.name ORDER BY min(c.rowid)`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var name, tenants string
		if err := rows.Scan(&name, &tenants); err != nil {
			return nil, err
		}
		notes = append(notes, trail.ActionMigrationNote(name, tenants))
	}
	return notes, rows.Err()
}

// SchemaVersion is the schema version this build writes and reads.
var SchemaVersion = len(migrations)

const seqBits = 40

// maxSeq is the largest seq a tenant can reach.
const maxSeq = 1<<seqBits - 1

func rowKey(tid int64, seq uint64) int64 { return tid<<seqBits | int64(seq) }

func keySeq(key int64) uint64 { return uint64(key) & maxSeq }

// migrate brings the database to SchemaVersion, each step in its own
// transaction, and refuses a database newer than this build. It returns
// what the steps it ran have to tell the operator (migrationNotes), and
// logs each step on a database that holds events as it starts and ends:
// one that rebuilds indexes over every event (12) takes tens of seconds
// per million events.
func migrate(ctx context.Context, c *sql.Conn, log *slog.Logger) (notes []string, err error) {
	var step *slog.Logger // log, or nothing for a database with no events: set at the first step
	for {
		tx, err := c.BeginTx(ctx, nil) // BEGIN IMMEDIATE: one migrator at a time
		if err != nil {
			return nil, fmt.Errorf("migrate: %w", err)
		}
		var v int
		if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
			tx.Rollback()
			return nil, fmt.Errorf("migrate: read schema version: %w", err)
		}
		if v > SchemaVersion {
			tx.Rollback()
			return nil, fmt.Errorf("database schema version %d is newer than this build of Trail understands (%d): upgrade Trail", v, SchemaVersion)
		}
		if v == SchemaVersion {
			return notes, tx.Rollback()
		}
		// Whether the database holds events is asked once, at its first
		// step (version 0 has no events table): version 1 with events is
		// refused, and the steps on one with events are logged, as the
		// ones that rebuild indexes read every event.
		if step == nil {
			has := false
			if v > 0 {
				var n int
				if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM (SELECT 1 FROM events LIMIT 1)").Scan(&n); err != nil {
					tx.Rollback()
					return nil, fmt.Errorf("migrate: %w", err)
				}
				has = n > 0
			}
			if v == 1 && has {
				// Events stored before the tamper-evident log have no
				// tree hashes and no checkpoint; none can be made for
				// them now without trusting bytes nobody signed.
				tx.Rollback()
				return nil, fmt.Errorf("database schema version 1 holds events from before the tamper-evident log, which cannot be added to them: " +
					"export them with an older build (trail query --json) and ingest them into a new data directory")
			}
			if step = log; !has {
				step = slog.New(slog.DiscardHandler)
			}
		}
		step.Info("sqlite: migrating the schema", "from", v, "to", v+1)
		t0 := time.Now()
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			tx.Rollback()
			return nil, fmt.Errorf("migrate to version %d: %w", v+1, err)
		}
		said, err := migrationNotes(ctx, tx, v+1)
		if err != nil {
			tx.Rollback()
			return nil, fmt.Errorf("migrate to version %d: %w", v+1, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
			tx.Rollback()
			return nil, fmt.Errorf("migrate to version %d: %w", v+1, err)
		}
		if err := tx.Commit(); err != nil {
			return nil, fmt.Errorf("migrate to version %d: %w", v+1, err)
		}
		step.Info("sqlite: migrated the schema", "to", v+1, "took", time.Since(t0).Round(time.Millisecond))
		notes = append(notes, said...)
	}
}
