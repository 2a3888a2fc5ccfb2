package postgres

import (
	"context"
	"time"

	"github.com/trailaudit/trail"
)

var _ trail.CosignatureStore = (*DB)(nil)

// The witnesses' cosignatures live in cosignatures (see
// migrations/0008_cosignatures.sql). Each call is one statement.

// AddCosignature keeps c; one already kept for its tenant, size and
// witness stays as it is.
func (db *DB) AddCosignature(ctx context.Context, c *trail.Cosignature) error {
	if err := trail.CheckCosignature(c); err != nil {
		return err
	}
	if err := db.enter(); err != nil {
		return err
	}
	defer db.inflight.Done()
	_, err := db.pool.Exec(ctx, `INSERT INTO cosignatures (tenant, size, witness, signed_at, line, note) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (tenant, size, witness) DO NOTHING`, c.Tenant, int64(c.Size), c.Witness, c.Time.Unix(), c.Line, c.Checkpoint)
	return internal(err, "add cosignature")
}

// Cosignatures returns those kept of tenant's checkpoint of size, by
// witness.
func (db *DB) Cosignatures(ctx context.Context, tenant string, size uint64) ([]*trail.Cosignature, error) {
	return db.cosignatures(ctx, "SELECT tenant, size, witness, signed_at, line, note FROM cosignatures WHERE tenant = $1 AND size = $2 ORDER BY witness",
		tenant, int64(size))
}

// LatestCosignatures returns, per witness, the one kept of tenant's
// largest size, by witness.
func (db *DB) LatestCosignatures(ctx context.Context, tenant string) ([]*trail.Cosignature, error) {
	return db.cosignatures(ctx, `SELECT DISTINCT ON (witness) tenant, size, witness, signed_at, line, note FROM cosignatures
		WHERE tenant = $1 ORDER BY witness, size DESC`, tenant)
}

func (db *DB) cosignatures(ctx context.Context, query string, args ...any) ([]*trail.Cosignature, error) {
	if err := db.enter(); err != nil {
		return nil, err
	}
	defer db.inflight.Done()
	rows, err := db.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, internal(err, "read cosignatures")
	}
	defer rows.Close()
	var out []*trail.Cosignature
	for rows.Next() {
		var c trail.Cosignature
		var size, at int64
		if err := rows.Scan(&c.Tenant, &size, &c.Witness, &at, &c.Line, &c.Checkpoint); err != nil {
			return nil, internal(err, "read cosignatures")
		}
		c.Size, c.Time = uint64(size), time.Unix(at, 0).UTC()
		out = append(out, &c)
	}
	return out, internal(rows.Err(), "read cosignatures")
}

// LogSizes returns the size of every tenant's log that holds an event, as
// its heads row records it.
func (db *DB) LogSizes(ctx context.Context) (map[string]uint64, error) {
	if err := db.enter(); err != nil {
		return nil, err
	}
	defer db.inflight.Done()
	rows, err := db.pool.Query(ctx, "SELECT tenant, seq FROM heads WHERE seq > 0")
	if err != nil {
		return nil, internal(err, "read log sizes")
	}
	defer rows.Close()
	out := map[string]uint64{}
	for rows.Next() {
		var name string
		var size int64
		if err := rows.Scan(&name, &size); err != nil {
			return nil, internal(err, "read log sizes")
		}
		out[name] = uint64(size)
	}
	return out, internal(rows.Err(), "read log sizes")
}

// LatestCheckpoints returns the latest checkpoint of each of tenants that
// has one, in one query: for each name of the array, its checkpoint of the
// largest size, by the primary key.
func (db *DB) LatestCheckpoints(ctx context.Context, tenants []string) (map[string][]byte, error) {
	out := map[string][]byte{}
	if len(tenants) == 0 {
		return out, nil
	}
	if err := db.enter(); err != nil {
		return nil, err
	}
	defer db.inflight.Done()
	rows, err := db.pool.Query(ctx, `SELECT t.name, c.note FROM unnest($1::text[]) AS t(name)
		CROSS JOIN LATERAL (SELECT note FROM checkpoints WHERE tenant = t.name COLLATE "C" ORDER BY size DESC LIMIT 1) c`, tenants)
	if err != nil {
		return nil, internal(err, "read checkpoints")
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var note []byte
		if err := rows.Scan(&name, &note); err != nil {
			return nil, internal(err, "read checkpoints")
		}
		out[name] = note
	}
	return out, internal(rows.Err(), "read checkpoints")
}
