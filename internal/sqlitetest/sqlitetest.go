// Package sqlitetest holds what tests of more than one package need to
// know about the SQLite store's file.
package sqlitetest

// UndoToVersion5 turns a SQLite store's file back into one of schema 5,
// from before custom actions were per tenant, keeping its events: each
// later migration undone, newest first, so that opening the file runs
// them all again on the events it holds.
var UndoToVersion5 = []string{
	// 13: targets keyed by id again, with their key index and triggers.
	"CREATE TABLE targets_old (id TEXT NOT NULL, key INTEGER NOT NULL, type TEXT NOT NULL, PRIMARY KEY (id, key, type)) WITHOUT ROWID",
	"INSERT INTO targets_old SELECT id, key, type FROM targets", "DROP TABLE targets", "ALTER TABLE targets_old RENAME TO targets",
	"CREATE INDEX targets_key ON targets (key)",
	"CREATE TRIGGER targets_no_update BEFORE UPDATE ON targets BEGIN SELECT RAISE(ABORT, 'trail: events are append-only'); END",
	"CREATE TRIGGER targets_no_delete BEFORE DELETE ON targets WHEN NOT EXISTS (SELECT 1 FROM events WHERE key = OLD.key AND pruned IS NOT NULL) BEGIN SELECT RAISE(ABORT, 'trail: events are append-only'); END",
	// 12: the actor and workspace indexes without buckets.
	"DROP INDEX events_actor", "CREATE INDEX events_actor ON events (actor_id)",
	"DROP INDEX events_workspace_action", "CREATE INDEX events_workspace_action ON events (workspace, action)",
	// 10 to 6.
	"DROP TABLE cosignatures", "DROP TABLE rules", "ALTER TABLE sinks DROP COLUMN on_refusal", "DROP TABLE sessions", "DROP TABLE tenant_actions",
	"PRAGMA user_version = 5",
}
