package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"

	"github.com/trailaudit/trail"
	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// dsn is the data source name of the database file at path: the URI
// parameters given and the pragmas every connection runs.
func dsn(path string, params url.Values, pragmas []string) string {
	q := url.Values{}
	for k, v := range params {
		q[k] = v
	}
	q["_pragma"] = pragmas
	return "file:" + path + "?" + q.Encode()
}

// readOnly returns the URI parameters that open the existing database at
// path for reading alone (mode=ro): nothing is created, not even the
// write-ahead log's -shm file, so a copy on a read-only file system (a
// mounted backup) can be read.
//
// In WAL mode SQLite reads through the -shm file. Where it is missing and
// cannot be made (a read-only directory), SQLite can still read the
// database as immutable, which ignores the write-ahead log: that is done
// only when the log is missing or empty, so that everything committed is
// in the database file. A copy whose log holds commits, with no -shm, is
// refused (EUNAVAILABLE), never read without them.
func readOnly(ctx context.Context, path string) (url.Values, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, trail.Errorf(trail.ENOTFOUND, "sqlite: %s does not exist (a read-only open creates nothing)", path)
	}
	params := url.Values{"mode": {"ro"}}
	err := probe(ctx, path, params)
	if err == nil {
		return params, nil
	}
	var se *msqlite.Error
	if !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_CANTOPEN {
		return nil, internal(err, "open "+path+" read-only")
	}
	if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() > 0 {
		return nil, trail.Errorf(trail.EUNAVAILABLE, "sqlite: %s: its write-ahead log (%[1]s-wal) holds commits that cannot be read "+
			"without %[1]s-shm, which cannot be made in this directory: read a copy made after a checkpoint (its -wal is empty), "+
			"or a copy in a directory that can be written", path)
	}
	params.Set("immutable", "1")
	if err := probe(ctx, path, params); err != nil {
		return nil, internal(err, "open "+path+" read-only")
	}
	return params, nil
}

// probe opens the database with params and reads its schema.
func probe(ctx context.Context, path string, params url.Values) error {
	db, err := sql.Open("sqlite", dsn(path, params, nil))
	if err != nil {
		return err
	}
	defer db.Close()
	var n int
	return db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master").Scan(&n)
}

// checkVersion refuses a database whose schema is not the current one: a
// read-only open cannot migrate it.
func checkVersion(ctx context.Context, c *sql.Conn) error {
	var v int
	if err := c.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if v != SchemaVersion {
		return fmt.Errorf("database schema version %d, and this build of Trail reads %d: open it read-write once to migrate it (or upgrade Trail)", v, SchemaVersion)
	}
	return nil
}
