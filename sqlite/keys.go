package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"
	"time"

	"github.com/trailaudit/trail"
)

var (
	_ trail.KeyStore    = (*DB)(nil)
	_ trail.ActionStore = (*DB)(nil)
)

// API keys and saved actions live in api_keys and tenant_actions (see
// schema.go), beside the events.
//
// Their writes do not go through the writer connection: it is held by the
// appends of a group commit, and exists to batch them. They go through db.adb instead, a
// pool of one connection whose transactions begin IMMEDIATE (they take
// SQLite's write lock at once, so there is no lock upgrade to deadlock on)
// with the same busy_timeout as the writer. SQLite lets one writer at a
// time hold the database, whichever connection or process it is: a key
// write waits for the group commit in progress, or a commit waits for the
// key write, each at most busy_timeout. Such writes are rare and tiny, and
// they work on a DB opened without a signer, which `trail keys` relies on:
// they are not events and sign nothing. Reads use the reader pool.

// adminTx runs fn in an IMMEDIATE transaction on the key connection.
func (db *DB) adminTx(ctx context.Context, what string, fn func(tx *sql.Tx) error) error {
	db.mu.RLock()
	closed := db.closed
	db.mu.RUnlock()
	if closed {
		return trail.Errorf(trail.EINTERNAL, "sqlite: store is closed")
	}
	tx, err := db.adb.BeginTx(ctx, nil) // BEGIN IMMEDIATE (_txlock)
	if err != nil {
		return internal(err, what)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return internal(err, what)
	}
	return internal(tx.Commit(), what)
}

// CreateKey stores k, or returns ECONFLICT when its ID is taken.
func (db *DB) CreateKey(ctx context.Context, k *trail.APIKey) error {
	if err := trail.CheckAPIKey(k); err != nil {
		return err
	}
	var revoked int64
	if !k.RevokedAt.IsZero() {
		revoked = k.RevokedAt.UnixNano()
	}
	return db.adminTx(ctx, "create API key", func(tx *sql.Tx) error {
		// The transaction holds the write lock: nobody can insert the id
		// between this look and the INSERT.
		var taken bool
		if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM api_keys WHERE id = ?)", k.ID).Scan(&taken); err != nil {
			return err
		}
		if taken {
			return trail.Errorf(trail.ECONFLICT, "an API key with this id exists")
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO api_keys (id, tenant, name, scopes, hash, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
			k.ID, k.Tenant, k.Name, joinScopes(k.Scopes), k.Hash, k.CreatedAt.UnixNano(), revoked)
		return err
	})
}

const keyColumns = "id, tenant, name, scopes, hash, created_at, revoked_at"

// scanKey reads one row of keyColumns.
func scanKey(row interface{ Scan(...any) error }) (*trail.APIKey, error) {
	k := &trail.APIKey{}
	var scopes string
	var created, revoked int64
	if err := row.Scan(&k.ID, &k.Tenant, &k.Name, &scopes, &k.Hash, &created, &revoked); err != nil {
		return nil, err
	}
	k.Scopes = splitScopes(scopes)
	k.CreatedAt = time.Unix(0, created).UTC()
	if revoked != 0 {
		k.RevokedAt = time.Unix(0, revoked).UTC()
	}
	return k, nil
}

// Key returns the key with id, or ENOTFOUND.
func (db *DB) Key(ctx context.Context, id string) (*trail.APIKey, error) {
	k, err := scanKey(db.r.QueryRowContext(ctx, "SELECT "+keyColumns+" FROM api_keys WHERE id = ?", id))
	if err == sql.ErrNoRows {
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
	q, args := "SELECT "+keyColumns+" FROM api_keys ORDER BY rowid", []any{}
	if tenant != "" {
		q, args = "SELECT "+keyColumns+" FROM api_keys WHERE tenant = ? ORDER BY rowid", []any{tenant}
	}
	rows, err := db.r.QueryContext(ctx, q, args...)
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
	return db.adminTx(ctx, "revoke API key", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at = 0", at.UnixNano(), id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		var found bool
		if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM api_keys WHERE id = ?)", id).Scan(&found); err != nil {
			return err
		}
		if !found {
			return trail.Errorf(trail.ENOTFOUND, "no API key %q", id)
		}
		return nil // revoked before: the first time stays
	})
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
	return db.adminTx(ctx, "save action", func(tx *sql.Tx) error {
		var taken bool
		if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM tenant_actions WHERE tenant = ? AND name = ?)", tenant, a.Name).Scan(&taken); err != nil {
			return err
		}
		if taken {
			return trail.Errorf(trail.ECONFLICT, "action %s is saved already", a.Name)
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO tenant_actions (tenant, name, definition, saved_at) VALUES (?, ?, ?, ?)", tenant, a.Name, def, db.o.Now().UnixNano())
		return err
	})
}

// SavedActions returns every tenant's saved custom actions in the order
// they were saved.
func (db *DB) SavedActions(ctx context.Context) ([]trail.SavedAction, error) {
	rows, err := db.r.QueryContext(ctx, "SELECT tenant, definition FROM tenant_actions ORDER BY rowid")
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
			return nil, trail.Errorf(trail.EINTERNAL, "sqlite: saved action does not decode: %v", err)
		}
		out = append(out, sa)
	}
	return out, internal(rows.Err(), "read saved actions")
}

// joinScopes is how scopes are kept in a column (of api_keys, sessions):
// comma-separated.
func joinScopes(scopes []trail.KeyScope) string {
	out := make([]string, len(scopes))
	for i, s := range scopes {
		out[i] = string(s)
	}
	return strings.Join(out, ",")
}

// splitScopes reads a column that joinScopes wrote.
func splitScopes(text string) []trail.KeyScope {
	var out []trail.KeyScope
	if text != "" {
		for s := range strings.SplitSeq(text, ",") {
			out = append(out, trail.KeyScope(s))
		}
	}
	return out
}
