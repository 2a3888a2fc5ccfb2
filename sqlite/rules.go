package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/trailaudit/trail"
)

var _ trail.RuleStore = (*DB)(nil)

// Tenants' rule files live in rules (see schema.go). Their writes go
// through the key connection, as the sinks' do (sinks.go).

// PutRule stores f, replacing the tenant's file of that name. A zero
// CreatedAt is the store's clock.
func (db *DB) PutRule(ctx context.Context, f *trail.RuleFile) error {
	p, err := trail.PrepareRule(f, db.o.Now())
	if err != nil {
		return err
	}
	return db.adminTx(ctx, "put rule file", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO rules ("+ruleColumns+") VALUES (?, ?, ?, ?, ?) "+
			"ON CONFLICT (tenant, name) DO UPDATE SET yaml = excluded.yaml, created_at = excluded.created_at, created_by = excluded.created_by",
			p.Tenant, p.Name, p.YAML, p.CreatedAt.UnixNano(), p.CreatedBy)
		return err
	})
}

const ruleColumns = "tenant, name, yaml, created_at, created_by"

// scanRule reads one row of ruleColumns.
func scanRule(row interface{ Scan(...any) error }) (*trail.RuleFile, error) {
	f := &trail.RuleFile{}
	var created int64
	if err := row.Scan(&f.Tenant, &f.Name, &f.YAML, &created, &f.CreatedBy); err != nil {
		return nil, err
	}
	f.CreatedAt = time.Unix(0, created).UTC()
	return f, nil
}

// GetRule returns the tenant's rule file name, or ENOTFOUND.
func (db *DB) GetRule(ctx context.Context, tenant, name string) (*trail.RuleFile, error) {
	f, err := scanRule(db.r.QueryRowContext(ctx, "SELECT "+ruleColumns+" FROM rules WHERE tenant = ? AND name = ?", tenant, name))
	if err == sql.ErrNoRows {
		return nil, trail.Errorf(trail.ENOTFOUND, "tenant %s has no rule file %q", tenant, name)
	}
	if err != nil {
		return nil, internal(err, "read rule file")
	}
	return f, nil
}

// Rules returns the tenant's rule files (every tenant's for "") by tenant
// and name.
func (db *DB) Rules(ctx context.Context, tenant string) ([]*trail.RuleFile, error) {
	q, args := "SELECT "+ruleColumns+" FROM rules ORDER BY tenant, name", []any{}
	if tenant != "" {
		q, args = "SELECT "+ruleColumns+" FROM rules WHERE tenant = ? ORDER BY name", []any{tenant}
	}
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, internal(err, "read rule files")
	}
	defer rows.Close()
	out := []*trail.RuleFile{}
	for rows.Next() {
		f, err := scanRule(rows)
		if err != nil {
			return nil, internal(err, "read rule files")
		}
		out = append(out, f)
	}
	return out, internal(rows.Err(), "read rule files")
}

// DeleteRule removes the tenant's rule file name, or returns ENOTFOUND.
func (db *DB) DeleteRule(ctx context.Context, tenant, name string) error {
	return db.adminTx(ctx, "delete rule file", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM rules WHERE tenant = ? AND name = ?", tenant, name)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		return trail.Errorf(trail.ENOTFOUND, "tenant %s has no rule file %q", tenant, name)
	})
}
