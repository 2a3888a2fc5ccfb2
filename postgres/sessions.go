package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/trailaudit/trail"
)

var _ trail.SessionStore = (*DB)(nil)

// The web UI's sessions live in sessions (see migrations/0010_sessions.sql),
// shared by every Trail process on the database. Each call is one
// statement, but for a touch whose row changed meanwhile. A use is written
// only when trail.Session.Touch moves it, once a minute at most.

// CreateSession stores s, or returns ECONFLICT when a session has its hash.
func (db *DB) CreateSession(ctx context.Context, s *trail.Session) error {
	if err := trail.CheckSession(s); err != nil {
		return err
	}
	if err := db.enter(); err != nil {
		return err
	}
	defer db.inflight.Done()
	tag, err := db.pool.Exec(ctx, "INSERT INTO sessions ("+sessionColumns+", deadline) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (hash) DO NOTHING",
		s.Hash, s.Tenant, string(s.Kind), s.KeyID, s.Subject, s.Name, scopeTexts(s.Scopes), s.CreatedAt.UnixNano(), s.SeenAt.UnixNano(), int64(s.Idle),
		s.ExpiresAt.UnixNano(), s.Deadline().UnixNano())
	if err != nil {
		return internal(err, "create session")
	}
	if tag.RowsAffected() == 0 {
		return trail.Errorf(trail.ECONFLICT, "a session with this hash exists")
	}
	return nil
}

const sessionColumns = "hash, tenant, kind, key_id, subject, name, scopes, created_at, seen_at, idle, expires_at"

// session reads the session of hash (nil when there is none). The caller
// has entered.
func (db *DB) session(ctx context.Context, hash []byte) (*trail.Session, error) {
	s := &trail.Session{}
	var kind string
	var scopes []string
	var created, seen, idle, expires int64
	err := db.pool.QueryRow(ctx, "SELECT "+sessionColumns+" FROM sessions WHERE hash = $1", hash).
		Scan(&s.Hash, &s.Tenant, &kind, &s.KeyID, &s.Subject, &s.Name, &scopes, &created, &seen, &idle, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, internal(err, "read session")
	}
	s.Kind, s.Idle, s.Scopes = trail.SessionKind(kind), time.Duration(idle), keyScopes(scopes)
	s.CreatedAt, s.SeenAt, s.ExpiresAt = time.Unix(0, created).UTC(), time.Unix(0, seen).UTC(), time.Unix(0, expires).UTC()
	return s, nil
}

// TouchSession returns the session of hash while it is live at now, after
// storing the use when trail.Session.Touch moves it, or ENOTFOUND.
func (db *DB) TouchSession(ctx context.Context, hash []byte, now time.Time) (*trail.Session, error) {
	if err := db.enter(); err != nil {
		return nil, err
	}
	defer db.inflight.Done()
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
	// Only a session still live at now, and never back.
	tag, err := db.pool.Exec(ctx, "UPDATE sessions SET seen_at = $1, deadline = $2 WHERE hash = $3 AND seen_at < $1 AND deadline > $4",
		s.SeenAt.UnixNano(), s.Deadline().UnixNano(), hash, now.UnixNano())
	if err != nil {
		return nil, internal(err, "touch session")
	}
	if tag.RowsAffected() == 1 {
		return s, nil
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
	n, err := db.deleteSessions(ctx, "delete session", "hash = $1", hash)
	if err == nil && n == 0 {
		return trail.Errorf(trail.ENOTFOUND, "no such session")
	}
	return err
}

// DeleteKeySessions removes every session of the API key keyID.
func (db *DB) DeleteKeySessions(ctx context.Context, keyID string) (int, error) {
	return db.deleteSessions(ctx, "delete the key's sessions", "key_id = $1", keyID)
}

// DeleteEndedSessions removes every session not live at now.
func (db *DB) DeleteEndedSessions(ctx context.Context, now time.Time) (int, error) {
	return db.deleteSessions(ctx, "delete ended sessions", "deadline <= $1", now.UnixNano())
}

// deleteSessions deletes the sessions where cond holds for arg, and
// returns how many.
func (db *DB) deleteSessions(ctx context.Context, what, cond string, arg any) (int, error) {
	if err := db.enter(); err != nil {
		return 0, err
	}
	defer db.inflight.Done()
	tag, err := db.pool.Exec(ctx, "DELETE FROM sessions WHERE "+cond, arg)
	if err != nil {
		return 0, internal(err, what)
	}
	return int(tag.RowsAffected()), nil
}
