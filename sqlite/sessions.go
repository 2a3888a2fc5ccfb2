package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/trailaudit/trail"
)

var _ trail.SessionStore = (*DB)(nil)

// The web UI's sessions live in sessions (see schema.go). Their writes go
// through the key connection, as API keys' do (keys.go): they are not
// events and wait for no group commit. A use is written only when
// trail.Session.Touch moves it, once a minute at most.

// CreateSession stores s, or returns ECONFLICT when a session has its hash.
func (db *DB) CreateSession(ctx context.Context, s *trail.Session) error {
	if err := trail.CheckSession(s); err != nil {
		return err
	}
	return db.adminTx(ctx, "create session", func(tx *sql.Tx) error {
		var taken bool
		if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM sessions WHERE hash = ?)", s.Hash).Scan(&taken); err != nil {
			return err
		}
		if taken {
			return trail.Errorf(trail.ECONFLICT, "a session with this hash exists")
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO sessions ("+sessionColumns+", deadline) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			s.Hash, s.Tenant, string(s.Kind), s.KeyID, s.Subject, s.Name, joinScopes(s.Scopes), s.CreatedAt.UnixNano(), s.SeenAt.UnixNano(), int64(s.Idle),
			s.ExpiresAt.UnixNano(), s.Deadline().UnixNano())
		return err
	})
}

const sessionColumns = "hash, tenant, kind, key_id, subject, name, scopes, created_at, seen_at, idle, expires_at"

// session reads the session of hash (nil when there is none).
func (db *DB) session(ctx context.Context, hash []byte) (*trail.Session, error) {
	s := &trail.Session{}
	var kind, scopes string
	var created, seen, idle, expires int64
	err := db.r.QueryRowContext(ctx, "SELECT "+sessionColumns+" FROM sessions WHERE hash = ?", hash).
		Scan(&s.Hash, &s.Tenant, &kind, &s.KeyID, &s.Subject, &s.Name, &scopes, &created, &seen, &idle, &expires)
	if err == sql.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, internal(err, "read session")
	}
	s.Kind, s.Idle, s.Scopes = trail.SessionKind(kind), time.Duration(idle), splitScopes(scopes)
	s.CreatedAt, s.SeenAt, s.ExpiresAt = time.Unix(0, created).UTC(), time.Unix(0, seen).UTC(), time.Unix(0, expires).UTC()
	return s, nil
}

// TouchSession returns the session of hash while it is live at now, after
// storing the use when trail.Session.Touch moves it, or ENOTFOUND.
func (db *DB) TouchSession(ctx context.Context, hash []byte, now time.Time) (*trail.Session, error) {
	s, err := db.session(ctx, hash)
	if err != nil {
		return nil, err
	}
	if s == nil || !s.Live(now) {
		return nil, trail.Errorf(trail.ENOTFOUND, "no such session, or it has ended")
	}
	if !s.Touch(now) {
		return s, nil
	}
	var n int64
	err = db.adminTx(ctx, "touch session", func(tx *sql.Tx) error {
		// Only a session still live at now, and never back.
		res, err := tx.ExecContext(ctx, "UPDATE sessions SET seen_at = ?, deadline = ? WHERE hash = ? AND seen_at < ? AND deadline > ?",
			s.SeenAt.UnixNano(), s.Deadline().UnixNano(), hash, s.SeenAt.UnixNano(), now.UnixNano())
		if err == nil {
			n, err = res.RowsAffected()
		}
		return err
	})
	if err != nil || n == 1 {
		return s, err
	}
	// Deleted meanwhile, or touched later by another request.
	if s, err = db.session(ctx, hash); err != nil {
		return nil, err
	}
	if s == nil || !s.Live(now) {
		return nil, trail.Errorf(trail.ENOTFOUND, "no such session, or it has ended")
	}
	return s, nil
}

// DeleteSession removes the session of hash, or returns ENOTFOUND.
func (db *DB) DeleteSession(ctx context.Context, hash []byte) error {
	n, err := db.deleteSessions(ctx, "delete session", "hash = ?", hash)
	if err == nil && n == 0 {
		return trail.Errorf(trail.ENOTFOUND, "no such session")
	}
	return err
}

// DeleteKeySessions removes every session of the API key keyID.
func (db *DB) DeleteKeySessions(ctx context.Context, keyID string) (int, error) {
	return db.deleteSessions(ctx, "delete the key's sessions", "key_id = ?", keyID)
}

// DeleteEndedSessions removes every session not live at now.
func (db *DB) DeleteEndedSessions(ctx context.Context, now time.Time) (int, error) {
	return db.deleteSessions(ctx, "delete ended sessions", "deadline <= ?", now.UnixNano())
}

// deleteSessions deletes the sessions where cond holds for arg, and
// returns how many.
func (db *DB) deleteSessions(ctx context.Context, what, cond string, arg any) (int, error) {
	var n int64
	err := db.adminTx(ctx, what, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM sessions WHERE "+cond, arg)
		if err == nil {
			n, err = res.RowsAffected()
		}
		return err
	})
	return int(n), err
}
