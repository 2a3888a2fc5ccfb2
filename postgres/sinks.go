package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/trailaudit/trail"
)

var _ trail.SinkStore = (*DB)(nil)

// The sinks' configurations live in sinks (see migrations/0005_sinks.sql and 0009_sink_options.sql).
// Each call is one statement.

// PutSink stores c, or returns ECONFLICT when its tenant has a sink of
// that name. A zero CreatedAt is the store's clock.
func (db *DB) PutSink(ctx context.Context, c *trail.SinkConfig) error {
	p, err := trail.PrepareSink(c, db.o.Now())
	if err != nil {
		return err
	}
	if err := db.enter(); err != nil {
		return err
	}
	defer db.inflight.Done()
	tag, err := db.pool.Exec(ctx, "INSERT INTO sinks ("+sinkColumns+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (tenant, name) DO NOTHING",
		p.Tenant, p.Name, string(p.Kind), p.URL, p.Address, p.Secret, p.Format, p.TLS, p.Subject, p.CreatedAt.UnixNano(), p.CreatedBy, p.OnRefusal)
	if err != nil {
		return internal(err, "put sink")
	}
	if tag.RowsAffected() == 0 {
		return trail.Errorf(trail.ECONFLICT, "tenant %s has a sink %q already", p.Tenant, p.Name)
	}
	return nil
}

const sinkColumns = "tenant, name, kind, url, address, secret, format, tls, subject, created_at, created_by, on_refusal"

// scanSink reads one row of sinkColumns.
func scanSink(row pgx.Row) (*trail.SinkConfig, error) {
	c := &trail.SinkConfig{}
	var kind string
	var created int64
	if err := row.Scan(&c.Tenant, &c.Name, &kind, &c.URL, &c.Address, &c.Secret, &c.Format, &c.TLS, &c.Subject, &created, &c.CreatedBy, &c.OnRefusal); err != nil {
		return nil, err
	}
	c.Kind, c.CreatedAt = trail.SinkKind(kind), time.Unix(0, created).UTC()
	return c, nil
}

// GetSink returns the tenant's sink name, or ENOTFOUND.
func (db *DB) GetSink(ctx context.Context, tenant, name string) (*trail.SinkConfig, error) {
	if err := db.enter(); err != nil {
		return nil, err
	}
	defer db.inflight.Done()
	c, err := scanSink(db.pool.QueryRow(ctx, "SELECT "+sinkColumns+" FROM sinks WHERE tenant = $1 AND name = $2", tenant, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, trail.Errorf(trail.ENOTFOUND, "tenant %s has no sink %q", tenant, name)
	}
	if err != nil {
		return nil, internal(err, "read sink")
	}
	return c, nil
}

// Sinks returns the tenant's sinks (every tenant's for "") in the order
// they were put.
func (db *DB) Sinks(ctx context.Context, tenant string) ([]*trail.SinkConfig, error) {
	if err := db.enter(); err != nil {
		return nil, err
	}
	defer db.inflight.Done()
	q, args := "SELECT "+sinkColumns+" FROM sinks ORDER BY n", []any{}
	if tenant != "" {
		q, args = "SELECT "+sinkColumns+" FROM sinks WHERE tenant = $1 ORDER BY n", []any{tenant}
	}
	rows, err := db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, internal(err, "read sinks")
	}
	defer rows.Close()
	out := []*trail.SinkConfig{}
	for rows.Next() {
		c, err := scanSink(rows)
		if err != nil {
			return nil, internal(err, "read sinks")
		}
		out = append(out, c)
	}
	return out, internal(rows.Err(), "read sinks")
}

// DeleteSink removes the tenant's sink name, or returns ENOTFOUND.
func (db *DB) DeleteSink(ctx context.Context, tenant, name string) error {
	if err := db.enter(); err != nil {
		return err
	}
	defer db.inflight.Done()
	tag, err := db.pool.Exec(ctx, "DELETE FROM sinks WHERE tenant = $1 AND name = $2", tenant, name)
	if err != nil {
		return internal(err, "delete sink")
	}
	if tag.RowsAffected() == 0 {
		return trail.Errorf(trail.ENOTFOUND, "tenant %s has no sink %q", tenant, name)
	}
	return nil
}
