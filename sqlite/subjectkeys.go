package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/trailaudit/trail"
)

// SubjectKeys keeps the keys of data subjects (package erasure) in a
// SQLite file of their own, apart from the events (DATA/subject-keys.db
// beside DATA/trail.db), so that the events' file, its backups and its
// copies never hold a key. Erasing a subject deletes its rows with
// secure_delete on and truncates the write-ahead log, so no copy of the
// key stays in the file.
//
// It is safe for concurrent use. Other processes may open the same file
// (`trail erase` beside `trail serve`): every write is an IMMEDIATE
// transaction, so key creations never race.
type SubjectKeys struct {
	db *sql.DB
	mu sync.Mutex // one writer: creation checks, then inserts
}

var _ trail.SubjectKeyStore = (*SubjectKeys)(nil)

// OpenSubjectKeys opens the key file at path, creating it (and its
// directory, mode 0700) when it is missing. The file is mode 0600, set
// before SQLite opens it, as its write-ahead log and shared memory take
// the file's mode.
func OpenSubjectKeys(ctx context.Context, path string) (*SubjectKeys, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	fh, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	fh.Close()
	if err := os.Chmod(path, 0o600); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	db, err := sql.Open("sqlite", dsn(path, nil, []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)", "secure_delete(ON)"})+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS subject_keys (
		tenant TEXT NOT NULL, id TEXT NOT NULL, subject TEXT NOT NULL, key BLOB NOT NULL, created_at INTEGER NOT NULL,
		PRIMARY KEY (tenant, id)) WITHOUT ROWID;
		CREATE INDEX IF NOT EXISTS subject_keys_subject ON subject_keys (tenant, subject)`); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	return &SubjectKeys{db: db}, nil
}

// OpenSubjectKeysReadOnly opens the existing key file at path for reading
// alone (a read-only open of the events' database says how): keys are read,
// none is made or deleted. A file that does not exist is ENOTFOUND.
func OpenSubjectKeysReadOnly(ctx context.Context, path string) (*SubjectKeys, error) {
	params, err := readOnly(ctx, path)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", dsn(path, params, []string{"busy_timeout(10000)", "query_only(1)"}))
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	db.SetMaxOpenConns(1)
	return &SubjectKeys{db: db}, nil
}

// Close closes the file. Calls after Close fail.
func (f *SubjectKeys) Close() error { return f.db.Close() }

// SubjectKeys returns the subjects' keys, creating the missing ones in one
// transaction (one sync for a whole batch of new subjects).
func (f *SubjectKeys) SubjectKeys(ctx context.Context, tenant string, subjects []string) ([]trail.SubjectKey, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	tx, err := f.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, internal(err, "read subject keys")
	}
	defer tx.Rollback()
	out := make([]trail.SubjectKey, len(subjects))
	found := map[string]trail.SubjectKey{}
	for start := 0; start < len(subjects); start += 500 {
		chunk := subjects[start:min(start+500, len(subjects))]
		args := []any{tenant}
		for _, sub := range chunk {
			args = append(args, sub)
		}
		rows, err := tx.QueryContext(ctx, "SELECT subject, id, key FROM subject_keys WHERE tenant = ? AND subject IN ("+
			strings.TrimSuffix(strings.Repeat("?,", len(chunk)), ",")+") ORDER BY created_at, id", args...)
		if err != nil {
			return nil, internal(err, "read subject keys")
		}
		for rows.Next() {
			var sub string
			var k trail.SubjectKey
			if err := rows.Scan(&sub, &k.ID, &k.Key); err != nil {
				rows.Close()
				return nil, internal(err, "read subject keys")
			}
			found[sub] = k // the newest last (as in PostgreSQL, the greatest id of one instant)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, internal(err, "read subject keys")
		}
	}
	created := false
	for i, subject := range subjects {
		if k, ok := found[subject]; ok {
			out[i] = k
			continue
		}
		k, err := trail.NewSubjectKey()
		if err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO subject_keys (tenant, id, subject, key, created_at) VALUES (?, ?, ?, ?, ?)",
			tenant, k.ID, subject, k.Key, time.Now().UnixNano()); err != nil {
			return nil, internal(err, "store a subject key")
		}
		found[subject] = k
		out[i] = k
		created = true
	}
	if !created {
		return out, nil
	}
	if err := tx.Commit(); err != nil {
		return nil, internal(err, "store subject keys")
	}
	return out, nil
}

// KeyByID returns a key, or ENOTFOUND once erased.
func (f *SubjectKeys) KeyByID(ctx context.Context, tenant, id string) ([]byte, error) {
	var key []byte
	err := f.db.QueryRowContext(ctx, "SELECT key FROM subject_keys WHERE tenant = ? AND id = ?", tenant, id).Scan(&key)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, trail.Errorf(trail.ENOTFOUND, "no subject key %s (erased)", id)
	}
	if err != nil {
		return nil, internal(err, "read a subject key")
	}
	return key, nil
}

// EraseSubject deletes the subject's keys and truncates the write-ahead
// log, so that the file holds no copy of them. When readers in another
// process keep the log from being truncated (it retries for a few
// seconds), it returns how many keys it deleted with an error saying that
// the log still holds them.
func (f *SubjectKeys) EraseSubject(ctx context.Context, tenant, subject string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	res, err := f.db.ExecContext(ctx, "DELETE FROM subject_keys WHERE tenant = ? AND subject = ?", tenant, subject)
	if err != nil {
		return 0, internal(err, "delete subject keys")
	}
	n, _ := res.RowsAffected()
	// A reader in another process (trail serve beside trail erase) can
	// keep the checkpoint from finishing: it reports busy, not an error.
	for try := 0; ; try++ {
		var busy, logPages, moved int
		err := f.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logPages, &moved)
		if err == nil && busy == 0 {
			return int(n), nil
		}
		if err == nil {
			err = fmt.Errorf("the file is busy (%d of %d pages copied)", moved, logPages)
		}
		if try == 50 || ctx.Err() != nil {
			return int(n), trail.Errorf(trail.EINTERNAL, "sqlite: keys deleted, but the write-ahead log still holds them: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
