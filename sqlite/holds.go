package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"

	"github.com/trailaudit/trail"
)

var _ trail.HoldStore = (*DB)(nil)

// Legal holds live in holds (see schema.go). Like API keys, their writes
// are short IMMEDIATE transactions on the key connection (adminTx), not
// the writer's: they sign nothing, and the legal_hold_placed and
// legal_hold_released events that record them are appended by the caller.
// Their times are kept as Unix nanoseconds.

// PlaceHold stores h, or returns ECONFLICT when tenant has a hold of its
// ID. A zero CreatedAt is the store's clock.
func (db *DB) PlaceHold(ctx context.Context, h *trail.Hold) error {
	c, err := trail.PrepareHold(h, db.o.Now())
	if err != nil {
		return err
	}
	filter, err := json.Marshal(c.Filter)
	if err != nil {
		return trail.Errorf(trail.EINVALID, "hold filter cannot be encoded: %v", err)
	}
	err = db.adminTx(ctx, "place legal hold", func(tx *sql.Tx) error {
		var taken bool
		if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM holds WHERE tenant = ? AND id = ?)", c.Tenant, c.ID).Scan(&taken); err != nil {
			return err
		}
		if taken {
			return trail.Errorf(trail.ECONFLICT, "tenant %s has a legal hold %q already", c.Tenant, c.ID)
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO holds (tenant, id, filter, reason, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?)",
			c.Tenant, c.ID, filter, c.Reason, c.CreatedBy, c.CreatedAt.UnixNano())
		return err
	})
	if err == nil {
		h.CreatedAt = c.CreatedAt
	}
	return err
}

// ReleaseHold sets the hold's ReleasedAt to at. A hold is released once:
// releasing it again is ECONFLICT (the first time stays), an unknown hold
// ENOTFOUND.
func (db *DB) ReleaseHold(ctx context.Context, tenant, id string, at time.Time) error {
	if f := trail.CheckTime("released_at", at); f != nil {
		return trail.Invalid("bad release", *f)
	}
	return db.adminTx(ctx, "release legal hold", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE holds SET released_at = ? WHERE tenant = ? AND id = ? AND released_at = 0", at.UnixNano(), tenant, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		var found bool
		if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM holds WHERE tenant = ? AND id = ?)", tenant, id).Scan(&found); err != nil {
			return err
		}
		if !found {
			return trail.Errorf(trail.ENOTFOUND, "tenant %s has no legal hold %q", tenant, id)
		}
		return trail.Errorf(trail.ECONFLICT, "legal hold %q is released already", id)
	})
}

// Holds returns tenant's holds in the order they were placed, released
// ones included.
func (db *DB) Holds(ctx context.Context, tenant string) ([]*trail.Hold, error) {
	rows, err := db.r.QueryContext(ctx, "SELECT tenant, id, filter, reason, created_by, created_at, released_at FROM holds WHERE tenant = ? ORDER BY rowid", tenant)
	if err != nil {
		return nil, internal(err, "read legal holds")
	}
	defer rows.Close()
	out := []*trail.Hold{}
	for rows.Next() {
		h := &trail.Hold{}
		var filter []byte
		var created, released int64
		if err := rows.Scan(&h.Tenant, &h.ID, &filter, &h.Reason, &h.CreatedBy, &created, &released); err != nil {
			return nil, internal(err, "read legal holds")
		}
		if err := json.Unmarshal(filter, &h.Filter); err != nil {
			return nil, trail.Errorf(trail.EINTERNAL, "sqlite: legal hold %q: filter does not decode: %v", h.ID, err)
		}
		h.Filter = h.Filter.UTC()
		h.CreatedAt = time.Unix(0, created).UTC()
		if released != 0 {
			h.ReleasedAt = time.Unix(0, released).UTC()
		}
		out = append(out, h)
	}
	return out, internal(rows.Err(), "read legal holds")
}
