package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/trailaudit/trail"
)

var (
	_ trail.KeyStore    = (*DB)(nil)
	_ trail.ActionStore = (*DB)(nil)
)

// API keys and saved actions live in api_keys and custom_actions (see
// migrations/0001_events.sql), beside the events. Each call is one
// statement, so they need no lock of their own, and they work on a DB
// opened without a signer: they are not events. Their times are kept as
// Unix nanoseconds.

// CreateKey stores k, or returns ECONFLICT when its ID is taken.
func (db *DB) CreateKey(ctx context.Context, k *trail.APIKey) error {
	if err := trail.CheckAPIKey(k); err != nil {
		return err
	}
	if err := db.enter(); err != nil {
		return err
	}
	defer db.inflight.Done()
	var revoked int64
	if !k.RevokedAt.IsZero() {
		revoked = k.RevokedAt.UnixNano()
	}
	tag, err := db.pool.Exec(ctx, `INSERT INTO api_keys (id, tenant, name, scopes, hash, created_at, revoked_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING`,
		k.ID, k.Tenant, k.Name, scopeTexts(k.Scopes), k.Hash, k.CreatedAt.UnixNano(), revoked)
	if err != nil {
		return internal(err, "create API key")
	}
	if tag.RowsAffected() == 0 {
		return trail.Errorf(trail.ECONFLICT, "an API key with this id exists")
	}
	return nil
}

const keyColumns = "id, tenant, name, scopes, hash, created_at, revoked_at"

// scanKey reads one row of keyColumns.
func scanKey(row pgx.Row) (*trail.APIKey, error) {
	k := &trail.APIKey{}
	var scopes []string
	var created, revoked int64
	if err := row.Scan(&k.ID, &k.Tenant, &k.Name, &scopes, &k.Hash, &created, &revoked); err != nil {
		return nil, err
	}
	k.Scopes = keyScopes(scopes)
	k.CreatedAt = time.Unix(0, created).UTC()
	if revoked != 0 {
		k.RevokedAt = time.Unix(0, revoked).UTC()
	}
	return k, nil
}

// Key returns the key with id, or ENOTFOUND.
func (db *DB) Key(ctx context.Context, id string) (*trail.APIKey, error) {
	if err := db.enter(); err != nil {
		return nil, err
	}
	defer db.inflight.Done()
	k, err := scanKey(db.pool.QueryRow(ctx, "SELECT "+keyColumns+" FROM api_keys WHERE id = $1", id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, trail.Errorf(trail.ENOTFOUND, "no API key %q", id)
	}
	if err != nil {
		return nil, internal(err, "read API key")
	}
	return k, nil
}

// Keys returns tenant's keys (every tenant's for ""), revoked ones
// included, in creation order.
func (db *DB) Keys(ctx context.Context, tenant string) ([]*trail.APIKey, error) {
	if err := db.enter(); err != nil {
		return nil, err
	}
	defer db.inflight.Done()
	q, args := "SELECT "+keyColumns+" FROM api_keys ORDER BY n", []any{}
	if tenant != "" {
		q, args = "SELECT "+keyColumns+" FROM api_keys WHERE tenant = $1 ORDER BY n", []any{tenant}
	}
	rows, err := db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, internal(err, "read API keys")
	}
	defer rows.Close()
	out := []*trail.APIKey{}
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, internal(err, "read API keys")
		}
		out = append(out, k)
	}
	return out, internal(rows.Err(), "read API keys")
}

// RevokeKey sets the key's RevokedAt to at, unless it is revoked already
// (the first time stays), or returns ENOTFOUND.
func (db *DB) RevokeKey(ctx context.Context, id string, at time.Time) error {
	if f := trail.CheckTime("revoked_at", at); f != nil {
		return trail.Invalid("bad revocation", *f)
	}
	if err := db.enter(); err != nil {
		return err
	}
	defer db.inflight.Done()
	// One statement: the UPDATE takes the row's lock, so of two revocations
	// at once the second waits and then finds revoked_at set; a key's row,
	// once there, never goes away.
	var found, revoked bool
	err := db.pool.QueryRow(ctx, `WITH r AS (
			UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at = 0 RETURNING id
		) SELECT EXISTS (SELECT FROM api_keys WHERE id = $1), EXISTS (SELECT FROM r)`, id, at.UnixNano()).Scan(&found, &revoked)
	if err != nil {
		return internal(err, "revoke API key")
	}
	if !found && !revoked {
		return trail.Errorf(trail.ENOTFOUND, "no API key %q", id)
	}
	return nil
}

// SaveAction keeps tenant's custom action (its definition as JSON), or
// returns ECONFLICT when the tenant saved one of that name already.
func (db *DB) SaveAction(ctx context.Context, tenant string, a *trail.Action) error {
	if err := trail.CheckSavedAction(tenant, a); err != nil {
		return err
	}
	def, err := json.Marshal(a)
	if err != nil {
		return trail.Errorf(trail.EINVALID, "action cannot be encoded: %v", err)
	}
	if err := db.enter(); err != nil {
		return err
	}
	defer db.inflight.Done()
	tag, err := db.pool.Exec(ctx, "INSERT INTO tenant_actions (tenant, name, definition, saved_at) VALUES ($1, $2, $3, $4) ON CONFLICT (tenant, name) DO NOTHING",
		tenant, a.Name, def, db.o.Now().UnixNano())
	if err != nil {
		return internal(err, "save action")
	}
	if tag.RowsAffected() == 0 {
		return trail.Errorf(trail.ECONFLICT, "action %s is saved already", a.Name)
	}
	return nil
}

// SavedActions returns every tenant's saved custom actions in the order
// they were saved.
func (db *DB) SavedActions(ctx context.Context) ([]trail.SavedAction, error) {
	if err := db.enter(); err != nil {
		return nil, err
	}
	defer db.inflight.Done()
	rows, err := db.pool.Query(ctx, "SELECT tenant, definition FROM tenant_actions ORDER BY n")
	if err != nil {
		return nil, internal(err, "read saved actions")
	}
	defer rows.Close()
	out := []trail.SavedAction{}
	for rows.Next() {
		var sa trail.SavedAction
		var def []byte
		if err := rows.Scan(&sa.Tenant, &def); err != nil {
			return nil, internal(err, "read saved actions")
		}
		sa.Action = new(trail.Action)
		if err := json.Unmarshal(def, sa.Action); err != nil {
			return nil, trail.Errorf(trail.EINTERNAL, "postgres: saved action does not decode: %v", err)
		}
		out = append(out, sa)
	}
	return out, internal(rows.Err(), "read saved actions")
}

// scopeTexts is how scopes are kept in a text[] column (of api_keys,
// sessions).
func scopeTexts(scopes []trail.KeyScope) []string {
	out := make([]string, len(scopes))
	for i, s := range scopes {
		out[i] = string(s)
	}
	return out
}

// keyScopes reads a column that scopeTexts wrote.
func keyScopes(texts []string) []trail.KeyScope {
	var out []trail.KeyScope
	for _, s := range texts {
		out = append(out, trail.KeyScope(s))
	}
	return out
}
