package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/trailaudit/trail"
)

var _ trail.CursorStore = (*DB)(nil)

// Cursor returns name's position in tenant's log (0: none).
func (db *DB) Cursor(ctx context.Context, name, tenant string) (uint64, error) {
	if err := db.enter(); err != nil {
		return 0, err
	}
	defer db.inflight.Done()
	var seq int64
	err := db.pool.QueryRow(ctx, "SELECT seq FROM cursors WHERE name = $1 AND tenant = $2", name, tenant).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, internal(err, "read cursor")
	}
	return uint64(seq), nil
}

// SetCursor moves name's position in tenant's log forward, in one
// statement: the upsert changes a row only when seq is not behind it.
func (db *DB) SetCursor(ctx context.Context, name, tenant string, seq uint64) error {
	if err := trail.CheckCursorName(name); err != nil {
		return err
	}
	if err := db.enter(); err != nil {
		return err
	}
	defer db.inflight.Done()
	var at int64
	err := db.pool.QueryRow(ctx, `INSERT INTO cursors AS c (name, tenant, seq, updated_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (name, tenant) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at WHERE c.seq <= excluded.seq
		RETURNING seq`, name, tenant, int64(seq), time.Now().UnixNano()).Scan(&at)
	if errors.Is(err, pgx.ErrNoRows) { // the row is ahead: nothing changed
		if err := db.pool.QueryRow(ctx, "SELECT seq FROM cursors WHERE name = $1 AND tenant = $2", name, tenant).Scan(&at); err != nil {
			return internal(err, "read cursor")
		}
		return trail.CursorBehind(name, tenant, uint64(at), seq)
	}
	return internal(err, "set cursor")
}

var _ trail.TenantLister = (*DB)(nil)

// Tenants returns every tenant with at least one event, in byte order.
func (db *DB) Tenants(ctx context.Context) ([]string, error) {
	if err := db.enter(); err != nil {
		return nil, err
	}
	defer db.inflight.Done()
	rows, err := db.pool.Query(ctx, "SELECT tenant FROM heads WHERE seq > 0 ORDER BY tenant")
	if err != nil {
		return nil, internal(err, "read tenants")
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, internal(err, "read tenants")
		}
		out = append(out, name)
	}
	return out, internal(rows.Err(), "read tenants")
}
