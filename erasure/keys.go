package erasure

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/trailaudit/trail"
	_ "modernc.org/sqlite" // the "sqlite" driver
)

// newKey makes a key id and a 32-byte AES-256 key.
func newKey() (string, []byte, error) {
	var id [8]byte
	key := make([]byte, 32)
	if _, err := rand.Read(id[:]); err != nil {
		return "", nil, err
	}
	if _, err := rand.Read(key); err != nil {
		return "", nil, err
	}
	return hex.EncodeToString(id[:]), key, nil
}

// KeyFile keeps subject keys in a SQLite file of their own, apart from the
// events (DATA/subject-keys.db beside DATA/trail.db): erasing a subject
// deletes its rows with secure_delete on, and truncates the write-ahead
// log, so no copy of the key stays in the file.
type KeyFile struct {
	db *sql.DB
	mu sync.Mutex // one writer: creation checks, then inserts
}

var _ trail.SubjectKeyStore = (*KeyFile)(nil)

// OpenKeyFile opens (creating) the key file at path, mode 0600.
func OpenKeyFile(ctx context.Context, path string) (*KeyFile, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("erasure: %w", err)
	}
	// The file is made 0600 before SQLite opens it: its write-ahead log
	// and shared memory take the file's mode.
	fh, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("erasure: %w", err)
	}
	fh.Close()
	if err := os.Chmod(path, 0o600); err != nil {
		return nil, fmt.Errorf("erasure: %w", err)
	}
	q := url.Values{"_pragma": {"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)", "secure_delete(ON)"}, "_txlock": {"immediate"}}
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("erasure: %w", err)
	}
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS subject_keys (
		tenant TEXT NOT NULL, id TEXT NOT NULL, subject TEXT NOT NULL, key BLOB NOT NULL, created_at INTEGER NOT NULL,
		PRIMARY KEY (tenant, id)) WITHOUT ROWID;
		CREATE INDEX IF NOT EXISTS subject_keys_subject ON subject_keys (tenant, subject)`); err != nil {
		db.Close()
		return nil, fmt.Errorf("erasure: %s: %w", path, err)
	}
	return &KeyFile{db: db}, nil
}

// Close closes the file.
func (f *KeyFile) Close() error { return f.db.Close() }

// SubjectKeys returns the subjects' keys, creating the missing ones in one
// transaction (one sync for a whole batch of new subjects).
func (f *KeyFile) SubjectKeys(ctx context.Context, tenant string, subjects []string) ([]trail.SubjectKey, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	tx, err := f.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, trail.Errorf(trail.EINTERNAL, "erasure: %v", err)
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
			strings.TrimSuffix(strings.Repeat("?,", len(chunk)), ",")+") ORDER BY created_at", args...)
		if err != nil {
			return nil, trail.Errorf(trail.EINTERNAL, "erasure: read subject keys: %v", err)
		}
		for rows.Next() {
			var sub string
			var k trail.SubjectKey
			if err := rows.Scan(&sub, &k.ID, &k.Key); err != nil {
				rows.Close()
				return nil, trail.Errorf(trail.EINTERNAL, "erasure: read subject keys: %v", err)
			}
			found[sub] = k // the newest last
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, trail.Errorf(trail.EINTERNAL, "erasure: read subject keys: %v", err)
		}
	}
	created := false
	for i, subject := range subjects {
		if k, ok := found[subject]; ok {
			out[i] = k
			continue
		}
		id, key, err := newKey()
		if err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO subject_keys (tenant, id, subject, key, created_at) VALUES (?, ?, ?, ?, ?)",
			tenant, id, subject, key, time.Now().UnixNano()); err != nil {
			return nil, trail.Errorf(trail.EINTERNAL, "erasure: store a subject key: %v", err)
		}
		found[subject] = trail.SubjectKey{ID: id, Key: key}
		out[i] = found[subject]
		created = true
	}
	if !created {
		return out, nil
	}
	if err := tx.Commit(); err != nil {
		return nil, trail.Errorf(trail.EINTERNAL, "erasure: store subject keys: %v", err)
	}
	return out, nil
}

// KeyByID returns a key, or ENOTFOUND once erased.
func (f *KeyFile) KeyByID(ctx context.Context, tenant, id string) ([]byte, error) {
	var key []byte
	err := f.db.QueryRowContext(ctx, "SELECT key FROM subject_keys WHERE tenant = ? AND id = ?", tenant, id).Scan(&key)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, trail.Errorf(trail.ENOTFOUND, "no subject key %s (erased)", id)
	}
	if err != nil {
		return nil, trail.Errorf(trail.EINTERNAL, "erasure: read a subject key: %v", err)
	}
	return key, nil
}

// EraseSubject deletes the subject's keys and truncates the write-ahead
// log, so that the file holds no copy of them.
func (f *KeyFile) EraseSubject(ctx context.Context, tenant, subject string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	res, err := f.db.ExecContext(ctx, "DELETE FROM subject_keys WHERE tenant = ? AND subject = ?", tenant, subject)
	if err != nil {
		return 0, trail.Errorf(trail.EINTERNAL, "erasure: delete subject keys: %v", err)
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
			return int(n), trail.Errorf(trail.EINTERNAL, "erasure: keys deleted, but the write-ahead log still holds them: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// MemoryKeys keeps subject keys in memory: for tests and the memory store.
type MemoryKeys struct {
	mu      sync.Mutex
	keys    map[string]memKey // tenant \x00 id
	current map[string]string // tenant \x00 subject → id
}

type memKey struct {
	subject string
	key     []byte
}

var _ trail.SubjectKeyStore = (*MemoryKeys)(nil)

// NewMemoryKeys returns an empty key store.
func NewMemoryKeys() *MemoryKeys {
	return &MemoryKeys{keys: map[string]memKey{}, current: map[string]string{}}
}

// SubjectKeys returns the subjects' keys, creating the missing ones.
func (m *MemoryKeys) SubjectKeys(ctx context.Context, tenant string, subjects []string) ([]trail.SubjectKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]trail.SubjectKey, len(subjects))
	for i, subject := range subjects {
		if id, ok := m.current[tenant+"\x00"+subject]; ok {
			out[i] = trail.SubjectKey{ID: id, Key: m.keys[tenant+"\x00"+id].key}
			continue
		}
		id, key, err := newKey()
		if err != nil {
			return nil, err
		}
		m.keys[tenant+"\x00"+id] = memKey{subject: subject, key: key}
		m.current[tenant+"\x00"+subject] = id
		out[i] = trail.SubjectKey{ID: id, Key: key}
	}
	return out, nil
}

// KeyByID returns a key, or ENOTFOUND once erased.
func (m *MemoryKeys) KeyByID(ctx context.Context, tenant, id string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.keys[tenant+"\x00"+id]; ok {
		return v.key, nil
	}
	return nil, trail.Errorf(trail.ENOTFOUND, "no subject key %s (erased)", id)
}

// EraseSubject deletes the subject's keys.
func (m *MemoryKeys) EraseSubject(ctx context.Context, tenant, subject string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for k, v := range m.keys {
		if v.subject == subject && strings.HasPrefix(k, tenant+"\x00") {
			clear(v.key)
			delete(m.keys, k)
			n++
		}
	}
	delete(m.current, tenant+"\x00"+subject)
	return n, nil
}
