package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/trailaudit/trail"
)

var _ trail.CursorStore = (*DB)(nil)

// Cursor returns name's position in tenant's log (0: none).
func (db *DB) Cursor(ctx context.Context, name, tenant string) (uint64, error) {
	var seq uint64
	err := db.r.QueryRowContext(ctx, "SELECT seq FROM cursors WHERE name = ? AND tenant = ?", name, tenant).Scan(&seq)
	if err == sql.ErrNoRows {
		return 0, nil
	}
	return seq, internal(err, "read cursor")
}

// SetCursor moves name's position in tenant's log forward, on the key
// connection (keys.go): it is not an event and waits for no group commit.
func (db *DB) SetCursor(ctx context.Context, name, tenant string, seq uint64) error {
	if err := trail.CheckCursorName(name); err != nil {
		return err
	}
	return db.adminTx(ctx, "set cursor", func(tx *sql.Tx) error {
		var at uint64
		err := tx.QueryRowContext(ctx, "SELECT seq FROM cursors WHERE name = ? AND tenant = ?", name, tenant).Scan(&at)
		switch {
		case err == sql.ErrNoRows:
		case err != nil:
			return err
		case seq < at:
			return trail.CursorBehind(name, tenant, at, seq)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO cursors (name, tenant, seq, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (name, tenant) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at`,
			name, tenant, int64(seq), time.Now().UnixNano())
		return err
	})
}

var _ trail.TenantLister = (*DB)(nil)

// Tenants returns every tenant with at least one event, in byte order.
func (db *DB) Tenants(ctx context.Context) ([]string, error) {
	rows, err := db.r.QueryContext(ctx, "SELECT name FROM tenants WHERE size > 0 ORDER BY name")
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
