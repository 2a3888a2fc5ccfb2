package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/trailaudit/trail"
)

var _ trail.SinkStore = (*DB)(nil)

// The sinks' configurations live in sinks (see schema.go). Their writes go
// through the key connection, as API keys' do (keys.go): they are not
// events and wait for no group commit.

// PutSink stores c, or returns ECONFLICT when its tenant has a sink of
// that name. A zero CreatedAt is the store's clock.
func (db *DB) PutSink(ctx context.Context, c *trail.SinkConfig) error {
	p, err := trail.PrepareSink(c, db.o.Now())
	if err != nil {
		return err
	}
	return db.adminTx(ctx, "put sink", func(tx *sql.Tx) error {
		var taken bool
		if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM sinks WHERE tenant = ? AND name = ?)", p.Tenant, p.Name).Scan(&taken); err != nil {
			return err
		}
		if taken {
			return trail.Errorf(trail.ECONFLICT, "tenant %s has a sink %q already", p.Tenant, p.Name)
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO sinks ("+sinkColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			p.Tenant, p.Name, string(p.Kind), p.URL, p.Address, p.Secret, p.Format, p.TLS, p.Subject, p.CreatedAt.UnixNano(), p.CreatedBy, p.OnRefusal)
		return err
	})
}

const sinkColumns = "tenant, name, kind, url, address, secret, format, tls, subject, created_at, created_by, on_refusal"

// scanSink reads one row of sinkColumns.
func scanSink(row interface{ Scan(...any) error }) (*trail.SinkConfig, error) {
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
	c, err := scanSink(db.r.QueryRowContext(ctx, "SELECT "+sinkColumns+" FROM sinks WHERE tenant = ? AND name = ?", tenant, name))
	if err == sql.ErrNoRows {
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
	q, args := "SELECT "+sinkColumns+" FROM sinks ORDER BY rowid", []any{}
	if tenant != "" {
		q, args = "SELECT "+sinkColumns+" FROM sinks WHERE tenant = ? ORDER BY rowid", []any{tenant}
	}
	rows, err := db.r.QueryContext(ctx, q, args...)
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
	return db.adminTx(ctx, "delete sink", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM sinks WHERE tenant = ? AND name = ?", tenant, name)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		return trail.Errorf(trail.ENOTFOUND, "tenant %s has no sink %q", tenant, name)
	})
}
