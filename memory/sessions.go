package memory

import (
	"context"
	"slices"
	"time"

	"github.com/trailaudit/trail"
)

var _ trail.SessionStore = (*Store)(nil)

// sessions are the web UI's sessions, by hash.
type sessions map[string]*trail.Session

// CreateSession stores ss, or returns ECONFLICT when a session has its
// hash.
func (s *Store) CreateSession(ctx context.Context, ss *trail.Session) error {
	if err := trail.CheckSession(ss); err != nil {
		return err
	}
	c := *ss
	c.Hash = append([]byte(nil), ss.Hash...)
	c.Scopes = slices.Clone(ss.Scopes)
	c.CreatedAt, c.SeenAt, c.ExpiresAt = c.CreatedAt.UTC(), c.SeenAt.UTC(), c.ExpiresAt.UTC()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return trail.Errorf(trail.EINTERNAL, "store is closed")
	}
	if _, ok := s.ui[string(c.Hash)]; ok {
		return trail.Errorf(trail.ECONFLICT, "a session with this hash exists")
	}
	if s.ui == nil {
		s.ui = sessions{}
	}
	s.ui[string(c.Hash)] = &c
	return nil
}

// TouchSession returns the session of hash while it is live at now, after
// recording the use, or ENOTFOUND.
func (s *Store) TouchSession(ctx context.Context, hash []byte, now time.Time) (*trail.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.ui[string(hash)]
	if !ok || !ss.Live(now) {
		return nil, trail.Errorf(trail.ENOTFOUND, "no such session, or it has ended")
	}
	ss.Touch(now)
	c := *ss
	c.Scopes = slices.Clone(ss.Scopes)
	return &c, nil
}

// DeleteSession removes the session of hash, or returns ENOTFOUND.
func (s *Store) DeleteSession(ctx context.Context, hash []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.ui[string(hash)]; !ok {
		return trail.Errorf(trail.ENOTFOUND, "no such session")
	}
	delete(s.ui, string(hash))
	return nil
}

// DeleteKeySessions removes every session of the API key keyID.
func (s *Store) DeleteKeySessions(ctx context.Context, keyID string) (int, error) {
	return s.deleteSessions(func(ss *trail.Session) bool { return ss.KeyID == keyID }), nil
}

// DeleteEndedSessions removes every session not live at now.
func (s *Store) DeleteEndedSessions(ctx context.Context, now time.Time) (int, error) {
	return s.deleteSessions(func(ss *trail.Session) bool { return !ss.Live(now) }), nil
}

// deleteSessions removes the sessions that match, and returns how many.
func (s *Store) deleteSessions(match func(*trail.Session) bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for h, ss := range s.ui {
		if match(ss) {
			delete(s.ui, h)
			n++
		}
	}
	return n
}
