package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/trailaudit/trail"
)

var _ trail.RuleStore = (*DB)(nil)

// Tenants' rule files live in rules (see migrations/0006_rules.sql). Each
// call is one statement.

// PutRule stores f, replacing the tenant's file of that name. A zero
// CreatedAt is the store's clock.
func (db *DB) PutRule(ctx context.Context, f *trail.RuleFile) error {
	p, err := trail.PrepareRule(f, db.o.Now())
	if err != nil {
		return err
	}
	if err := db.enter(); err != nil {
		return err
	}
	defer db.inflight.Done()
	_, err = db.pool.Exec(ctx, "INSERT INTO rules ("+ruleColumns+") VALUES ($1, $2, $3, $4, $5) "+
		"ON CONFLICT (tenant, name) DO UPDATE SET yaml = excluded.yaml, created_at = excluded.created_at, created_by = excluded.created_by",
		p.Tenant, p.Name, p.YAML, p.CreatedAt.UnixNano(), p.CreatedBy)
	return internal(err, "put rule file")
}

const ruleColumns = "tenant, name, yaml, created_at, created_by"

// scanRule reads one row of ruleColumns.
func scanRule(row pgx.Row) (*trail.RuleFile, error) {
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
	if err := db.enter(); err != nil {
		return nil, err
	}
	defer db.inflight.Done()
	f, err := scanRule(db.pool.QueryRow(ctx, "SELECT "+ruleColumns+" FROM rules WHERE tenant = $1 AND name = $2", tenant, name))
	if errors.Is(err, pgx.ErrNoRows) {
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
	if err := db.enter(); err != nil {
		return nil, err
	}
	defer db.inflight.Done()
	q, args := "SELECT "+ruleColumns+" FROM rules ORDER BY tenant, name", []any{}
	if tenant != "" {
		q, args = "SELECT "+ruleColumns+" FROM rules WHERE tenant = $1 ORDER BY name", []any{tenant}
	}
	rows, err := db.pool.Query(ctx, q, args...)
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
	if err := db.enter(); err != nil {
		return err
	}
	defer db.inflight.Done()
	tag, err := db.pool.Exec(ctx, "DELETE FROM rules WHERE tenant = $1 AND name = $2", tenant, name)
	if err != nil {
		return internal(err, "delete rule file")
	}
	if tag.RowsAffected() == 0 {
		return trail.Errorf(trail.ENOTFOUND, "tenant %s has no rule file %q", tenant, name)
	}
	return nil
}
