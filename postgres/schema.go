package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/trailaudit/trail"
)

// The schema's versions are the files of migrations/, in name order: the
// Nth file takes a database from version N-1 to N. They are forward-only:
// a released file is never edited, only followed by a new one. Their
// numbers increase; a number may be skipped while work that took it is
// not merged yet (the files are renumbered without gaps when it is). The
// versions applied are the rows of schema_migrations.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrations holds the migration scripts; migrations[i] makes version i+1.
var migrations = func() []string {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		panic(err)
	}
	sort.Strings(names)
	out := make([]string, len(names))
	last := 0
	for i, n := range names {
		var v int
		if _, err := fmt.Sscanf(path.Base(n), "%04d_", &v); err != nil || v <= last {
			panic(fmt.Sprintf("postgres: migration %s is out of sequence (want a number above %d)", n, last))
		}
		last = v
		b, err := migrationFiles.ReadFile(n)
		if err != nil {
			panic(err)
		}
		out[i] = string(b)
	}
	return out
}()

// schemaVersion is the schema version this build migrates databases to.
var schemaVersion = len(migrations)

// migrateLock is the advisory lock key every Trail migration of a database
// holds for its transaction ("trail" in ASCII), so that processes opening
// one database at once migrate it one after the other.
const migrateLock int64 = 0x74726169_6c000001

// migrate brings the schema up to schemaVersion in one transaction under
// the migration lock, or refuses a database that is already newer. A
// database already current gets no DDL, so a role without CREATE (a
// trail_app member) can open it.
func migrate(ctx context.Context, pool *pgxpool.Pool, schema string) (err error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: connect: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrateLock); err != nil {
		return fmt.Errorf("postgres: take the migration lock: %w", err)
	}
	var hasSchema, hasTable bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1),
		to_regclass(quote_ident($1) || '.schema_migrations') IS NOT NULL`, schema).Scan(&hasSchema, &hasTable); err != nil {
		return fmt.Errorf("postgres: read the schema version: %w", err)
	}
	if !hasSchema {
		if _, err := tx.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
			return fmt.Errorf("postgres: create schema %q: %w", schema, err)
		}
	}
	// The pool's connections search the schema already; say so here too, as
	// it may not have existed when this connection started.
	if _, err := tx.Exec(ctx, "SET LOCAL search_path TO "+pgx.Identifier{schema}.Sanitize()); err != nil {
		return fmt.Errorf("postgres: set search_path: %w", err)
	}
	if !hasTable {
		if _, err := tx.Exec(ctx, `CREATE TABLE schema_migrations (
			version    integer     PRIMARY KEY,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`); err != nil {
			return fmt.Errorf("postgres: create schema_migrations: %w", err)
		}
	}
	var version int
	if err := tx.QueryRow(ctx, "SELECT COALESCE(max(version), 0) FROM schema_migrations").Scan(&version); err != nil {
		return fmt.Errorf("postgres: read the schema version: %w", err)
	}
	if version > schemaVersion {
		return trail.Errorf(trail.EINTERNAL, "postgres: the database schema %q is at version %d, newer than this build of Trail knows (version %d): upgrade Trail", schema, version, schemaVersion)
	}
	for v := version + 1; v <= schemaVersion; v++ {
		if _, err := tx.Exec(ctx, migrations[v-1]); err != nil {
			return fmt.Errorf("postgres: migrate schema %q to version %d: %w", schema, v, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version) VALUES ($1)", v); err != nil {
			return fmt.Errorf("postgres: migrate schema %q to version %d: %w", schema, v, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: migrate schema %q: %w", schema, err)
	}
	return nil
}
