package postgres

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/trailaudit/trail"
)

// SubjectKeys keeps the keys of data subjects (package erasure) in the
// subject_keys table of Trail's schema, which every Trail process sharing
// the database shares: a key made by one is found by all, and an erasure
// by one erases for all. It has a small pool of its own, apart from the
// DB's, so that it can be opened before the DB (the DB's Validator seals
// with an erasure.Sealer built on it). It is safe for concurrent use.
type SubjectKeys struct {
	pool  *pgxpool.Pool
	notes []string // what the migrations its open ran did (MigrationNotes)
}

var _ trail.SubjectKeyStore = (*SubjectKeys)(nil)

// subjectKeyConns bounds the pool of SubjectKeys when the connection string
// does not set pool_max_conns: key reads and writes are few (the Sealer
// caches keys) and small.
const subjectKeyConns = 4

// OpenSubjectKeys connects to the database named by connString (as Open
// reads it; the schema is its search_path parameter, else "public") and
// migrates Trail's schema to the current version, as Open does, so that
// either may be opened first. A schema newer than this binary is refused.
func OpenSubjectKeys(ctx context.Context, connString string) (*SubjectKeys, error) {
	pool, _, notes, err := connect(ctx, connString, "", subjectKeyConns)
	if err != nil {
		return nil, err
	}
	return &SubjectKeys{pool: pool, notes: notes}, nil
}

// MigrationNotes is DB.MigrationNotes of the migrations this open ran
// (whichever of Open and OpenSubjectKeys comes first migrates).
func (sk *SubjectKeys) MigrationNotes() []string { return slices.Clone(sk.notes) }

// Close waits for the calls in flight and closes the pool. Calls after
// Close fail.
func (sk *SubjectKeys) Close() error {
	sk.pool.Close()
	return nil
}

// SubjectKeys returns the subjects' newest keys, creating the missing
// ones in one transaction. Two calls creating a subject's first key at
// once (in one process or two) may both succeed: the subject then has two
// keys, both used and both erased with it, and the newer is its current
// key from then on (of two made at one instant, the one with the greater
// id, so that the choice never flips).
func (sk *SubjectKeys) SubjectKeys(ctx context.Context, tenant string, subjects []string) ([]trail.SubjectKey, error) {
	found := map[string]trail.SubjectKey{}
	rows, err := sk.pool.Query(ctx, `SELECT DISTINCT ON (subject) subject, id, key FROM subject_keys
		WHERE tenant = $1 AND subject = ANY($2) ORDER BY subject, created_at DESC, id DESC`, tenant, subjects)
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
		k, err := trail.NewSubjectKey()
		if err != nil {
			return nil, err
		}
		found[subject], out[i] = k, k
		b.Queue("INSERT INTO subject_keys (tenant, id, subject, key, created_at) VALUES ($1, $2, $3, $4, $5)", tenant, k.ID, subject, k.Key, now)
	}
	if b.Len() > 0 {
		tx, err := sk.pool.Begin(ctx)
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
func (sk *SubjectKeys) KeyByID(ctx context.Context, tenant, id string) ([]byte, error) {
	var key []byte
	err := sk.pool.QueryRow(ctx, "SELECT key FROM subject_keys WHERE tenant = $1 AND id = $2", tenant, id).Scan(&key)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, trail.Errorf(trail.ENOTFOUND, "no subject key %s (erased)", id)
	}
	return key, internal(err, "read a subject key")
}

// EraseSubject deletes the subject's keys, then vacuums the table so their
// bytes leave its pages (the vacuum needs the table's owner; run as a
// trail_app member it is skipped, and autovacuum does it later).
func (sk *SubjectKeys) EraseSubject(ctx context.Context, tenant, subject string) (int, error) {
	tag, err := sk.pool.Exec(ctx, "DELETE FROM subject_keys WHERE tenant = $1 AND subject = $2", tenant, subject)
	if err != nil {
		return 0, internal(err, "delete subject keys")
	}
	sk.pool.Exec(ctx, "VACUUM subject_keys")
	return int(tag.RowsAffected()), nil
}
