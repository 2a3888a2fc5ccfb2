package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"

	"github.com/trailaudit/trail"
)

var _ trail.CosignatureStore = (*DB)(nil)

// The witnesses' cosignatures live in cosignatures (see schema.go). Their
// writes go through the key connection, as API keys' do (keys.go): they
// wait for no group commit.

// AddCosignature keeps c; one already kept for its tenant, size and
// witness stays as it is.
func (db *DB) AddCosignature(ctx context.Context, c *trail.Cosignature) error {
	if err := trail.CheckCosignature(c); err != nil {
		return err
	}
	return db.adminTx(ctx, "add cosignature", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO cosignatures (tenant, size, witness, signed_at, line, note) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (tenant, size, witness) DO NOTHING`, c.Tenant, int64(c.Size), c.Witness, c.Time.Unix(), c.Line, c.Checkpoint)
		return err
	})
}

// Cosignatures returns those kept of tenant's checkpoint of size, by
// witness.
func (db *DB) Cosignatures(ctx context.Context, tenant string, size uint64) ([]*trail.Cosignature, error) {
	return db.cosignatures(ctx, "SELECT tenant, size, witness, signed_at, line, note FROM cosignatures WHERE tenant = ? AND size = ? ORDER BY witness",
		tenant, int64(size))
}

// LatestCosignatures returns, per witness, the one kept of tenant's
// largest size, by witness.
func (db *DB) LatestCosignatures(ctx context.Context, tenant string) ([]*trail.Cosignature, error) {
	return db.cosignatures(ctx, `SELECT tenant, max(size), witness, signed_at, line, note FROM cosignatures WHERE tenant = ?
		GROUP BY witness ORDER BY witness`, tenant)
}

func (db *DB) cosignatures(ctx context.Context, query string, args ...any) ([]*trail.Cosignature, error) {
	rows, err := db.r.QueryContext(ctx, query, args...)
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
// its tenants row records it.
func (db *DB) LogSizes(ctx context.Context) (map[string]uint64, error) {
	rows, err := db.r.QueryContext(ctx, "SELECT name, size FROM tenants WHERE size > 0")
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
// has one, in one query: the names go as one JSON array (json_each), so
// the statement is the same whatever their number.
func (db *DB) LatestCheckpoints(ctx context.Context, tenants []string) (map[string][]byte, error) {
	out := map[string][]byte{}
	if len(tenants) == 0 {
		return out, nil
	}
	names, err := json.Marshal(tenants)
	if err != nil {
		return nil, internal(err, "read checkpoints")
	}
	// CROSS JOIN keeps the names the outer loop: each is looked up by
	// the tenants' unique name index, rather than every tenant scanned.
	rows, err := db.r.QueryContext(ctx, `SELECT DISTINCT t.name, (SELECT c.note FROM checkpoints c WHERE c.tid = t.tid ORDER BY c.size DESC LIMIT 1)
		FROM json_each(?) AS j CROSS JOIN tenants AS t ON t.name = j.value`, string(names))
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
		if note != nil {
			out[name] = note
		}
	}
	return out, internal(rows.Err(), "read checkpoints")
}
