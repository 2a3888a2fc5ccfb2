package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/trailaudit/trail"
)

var _ trail.SubjectKeyStore = (*DB)(nil)

// SubjectKeys returns the subjects' newest keys, creating the missing
// ones in one transaction. Two processes creating a subject's first key at
// once may both succeed: the subject then has two keys, both used and both
// erased with it.
func (db *DB) SubjectKeys(ctx context.Context, tenant string, subjects []string) ([]trail.SubjectKey, error) {
	if err := db.enter(); err != nil {
		return nil, err
	}
	defer db.inflight.Done()
	found := map[string]trail.SubjectKey{}
	rows, err := db.pool.Query(ctx, `SELECT DISTINCT ON (subject) subject, id, key FROM subject_keys
		WHERE tenant = $1 AND subject = ANY($2) ORDER BY subject, created_at DESC`, tenant, subjects)
	if err != nil {
		return nil, internal(err, "read subject keys")
	}
	for rows.Next() {
		var subject string
		var k trail.SubjectKey
		if err := rows.Scan(&subject, &k.ID, &k.Key); err != nil {
			rows.Close()
			return nil, internal(err, "read subject keys")
		}
		found[subject] = k
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, internal(err, "read subject keys")
	}
	out := make([]trail.SubjectKey, len(subjects))
	var b pgx.Batch
	now := time.Now().UnixNano()
	for i, subject := range subjects {
		if k, ok := found[subject]; ok {
			out[i] = k
			continue
		}
		var idb [8]byte
		key := make([]byte, 32)
		if _, err := rand.Read(idb[:]); err != nil {
			return nil, err
		}
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		k := trail.SubjectKey{ID: hex.EncodeToString(idb[:]), Key: key}
		found[subject], out[i] = k, k
		b.Queue("INSERT INTO subject_keys (tenant, id, subject, key, created_at) VALUES ($1, $2, $3, $4, $5)", tenant, k.ID, subject, k.Key, now)
	}
	if b.Len() > 0 {
		tx, err := db.pool.Begin(ctx)
		if err != nil {
			return nil, internal(err, "store subject keys")
		}
		defer tx.Rollback(ctx)
		if err := tx.SendBatch(ctx, &b).Close(); err != nil {
			return nil, internal(err, "store subject keys")
		}
		if err := tx.Commit(ctx); err != nil {
			return nil, internal(err, "store subject keys")
		}
	}
	return out, nil
}

// KeyByID returns a key, or ENOTFOUND once erased.
func (db *DB) KeyByID(ctx context.Context, tenant, id string) ([]byte, error) {
	if err := db.enter(); err != nil {
		return nil, err
	}
	defer db.inflight.Done()
	var key []byte
	err := db.pool.QueryRow(ctx, "SELECT key FROM subject_keys WHERE tenant = $1 AND id = $2", tenant, id).Scan(&key)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, trail.Errorf(trail.ENOTFOUND, "no subject key %s (erased)", id)
	}
	return key, internal(err, "read a subject key")
}

// EraseSubject deletes the subject's keys, then vacuums the table so their
// bytes leave its pages (the vacuum needs the table's owner; run as a
// trail_app member it is skipped, and autovacuum does it later).
func (db *DB) EraseSubject(ctx context.Context, tenant, subject string) (int, error) {
	if err := db.enter(); err != nil {
		return 0, err
	}
	defer db.inflight.Done()
	tag, err := db.pool.Exec(ctx, "DELETE FROM subject_keys WHERE tenant = $1 AND subject = $2", tenant, subject)
	if err != nil {
		return 0, internal(err, "delete subject keys")
	}
	db.pool.Exec(ctx, "VACUUM subject_keys")
	return int(tag.RowsAffected()), nil
}
