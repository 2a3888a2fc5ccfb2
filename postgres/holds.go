package postgres

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/trailaudit/trail"
)

var _ trail.HoldStore = (*DB)(nil)

// Legal holds live in holds (see migrations/0001_events.sql), beside the
// events. Each call is one statement; the legal_hold_placed and
// legal_hold_released events that record them are appended by the caller.
// Their times are kept as Unix nanoseconds.

// PlaceHold stores h, or returns ECONFLICT when its tenant has a hold of
// its ID. A zero CreatedAt is the store's clock.
func (db *DB) PlaceHold(ctx context.Context, h *trail.Hold) error {
	c, err := trail.PrepareHold(h, db.o.Now())
	if err != nil {
		return err
	}
	filter, err := json.Marshal(c.Filter)
	if err != nil {
		return trail.Errorf(trail.EINVALID, "hold filter cannot be encoded: %v", err)
	}
	if err := db.enter(); err != nil {
		return err
	}
	defer db.inflight.Done()
	tag, err := db.pool.Exec(ctx, `INSERT INTO holds (tenant, id, filter, reason, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (tenant, id) DO NOTHING`, c.Tenant, c.ID, string(filter), c.Reason, c.CreatedBy, c.CreatedAt.UnixNano())
	if err != nil {
		return internal(err, "place legal hold")
	}
	if tag.RowsAffected() == 0 {
		return trail.Errorf(trail.ECONFLICT, "tenant %s has a legal hold %q already", c.Tenant, c.ID)
	}
	h.CreatedAt = c.CreatedAt
	return nil
}

// ReleaseHold sets the hold's ReleasedAt to at, once: releasing it again
// is ECONFLICT (the first time stays), an unknown hold ENOTFOUND.
func (db *DB) ReleaseHold(ctx context.Context, tenant, id string, at time.Time) error {
	if f := trail.CheckTime("released_at", at); f != nil {
		return trail.Invalid("bad release", *f)
	}
	if err := db.enter(); err != nil {
		return err
	}
	defer db.inflight.Done()
	tag, err := db.pool.Exec(ctx, "UPDATE holds SET released_at = $3 WHERE tenant = $1 AND id = $2 AND released_at = 0", tenant, id, at.UnixNano())
	if err != nil {
		return internal(err, "release legal hold")
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	// Not released now: say why, from a snapshot taken after any release
	// that raced with this one committed.
	var found bool
	if err := db.pool.QueryRow(ctx, "SELECT EXISTS (SELECT FROM holds WHERE tenant = $1 AND id = $2)", tenant, id).Scan(&found); err != nil {
		return internal(err, "release legal hold")
	}
	if !found {
		return trail.Errorf(trail.ENOTFOUND, "tenant %s has no legal hold %q", tenant, id)
	}
	return trail.Errorf(trail.ECONFLICT, "legal hold %q is released already", id)
}

// Holds returns tenant's holds in the order they were placed, released
// ones included.
func (db *DB) Holds(ctx context.Context, tenant string) ([]*trail.Hold, error) {
	if err := db.enter(); err != nil {
		return nil, err
	}
	defer db.inflight.Done()
	rows, err := db.pool.Query(ctx, "SELECT tenant, id, filter::text, reason, created_by, created_at, released_at FROM holds WHERE tenant = $1 ORDER BY n", tenant)
	if err != nil {
		return nil, internal(err, "read legal holds")
	}
	out := []*trail.Hold{}
	var (
		h                 trail.Hold
		filter            string
		created, released int64
	)
	_, err = pgx.ForEachRow(rows, []any{&h.Tenant, &h.ID, &filter, &h.Reason, &h.CreatedBy, &created, &released}, func() error {
		c := h
		c.Filter = trail.HoldFilter{}
		if err := json.Unmarshal([]byte(filter), &c.Filter); err != nil {
			return trail.Errorf(trail.EINTERNAL, "postgres: legal hold %q: filter does not decode: %v", c.ID, err)
		}
		c.Filter = c.Filter.UTC()
		c.CreatedAt = time.Unix(0, created).UTC()
		c.ReleasedAt = time.Time{}
		if released != 0 {
			c.ReleasedAt = time.Unix(0, released).UTC()
		}
		out = append(out, &c)
		return nil
	})
	if err != nil {
		return nil, internal(err, "read legal holds")
	}
	return out, nil
}
