package trail

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"time"
)

// SessionKind is what signed a web UI session in.
type SessionKind string

// The kinds of session.
const (
	SessionKey    SessionKind = "key"    // an API key, given on the sign-in form (KeyID)
	SessionPerson SessionKind = "person" // a person (Subject), signed in by an identity provider
)

// Session is a signed-in web UI session. The browser holds its id (the
// cookie's text, from NewSessionID), which is never stored: the store keys
// the session by the id's SHA-256, so a copy of the database signs no one
// in.
type Session struct {
	Hash   []byte      `json:"-"` // SHA-256 of the session id
	Tenant string      `json:"tenant"`
	Kind   SessionKind `json:"kind"`
	// KeyID is the API key the session acts with: for Kind key the key
	// that signed in. Revoking the key ends its sessions.
	KeyID string `json:"key_id,omitempty"`
	// Subject is the person who signed in, for Kind person: the identity
	// provider's issuer and its subject for the person, as issuer#sub.
	Subject string `json:"subject,omitempty"`
	// Name is how a person is known (their email), for Kind person.
	Name string `json:"name,omitempty"`
	// Scopes are what a person may do, given by the mapping that signed
	// them in, for Kind person; a key session acts with its key's.
	Scopes    []KeyScope `json:"scopes,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	// SeenAt is the session's last use (Touch moves it); the idle timeout
	// counts from it.
	SeenAt time.Time `json:"seen_at"`
	// Idle ends the session after this long unused.
	Idle time.Duration `json:"idle"`
	// ExpiresAt ends the session however much it is used.
	ExpiresAt time.Time `json:"expires_at"`
}

// Deadline is when s ends unless it is used again: its idle timeout from
// its last use, or its absolute expiry, whichever comes first.
func (s *Session) Deadline() time.Time {
	idle := s.SeenAt.Add(s.Idle)
	if idle.Before(s.ExpiresAt) {
		return idle
	}
	return s.ExpiresAt
}

// Live reports whether s is still open at now. This is the one place that
// decides when a session has ended; every SessionStore goes by it.
func (s *Session) Live(now time.Time) bool { return now.Before(s.Deadline()) }

// Touch records a use of s at now and reports whether SeenAt moved, so
// that the store must write it. SeenAt moves only in steps of a minute (or
// a tenth of the idle timeout, if that is shorter), so that a session used
// on every page view is written once a minute at most; the idle timeout
// is then honored to within that step. SeenAt never moves back.
func (s *Session) Touch(now time.Time) bool {
	step := min(time.Minute, s.Idle/10)
	if now.Sub(s.SeenAt) < step {
		return false
	}
	s.SeenAt = now.UTC()
	return true
}

// Ref names s in records and logs: the first 12 bytes of its hash in
// base64url (16 characters), which tell nothing of its id (the cookie) but
// are the same for every record of one session. (Not hex: 16 hex digits are
// now and then all decimal, and may pass for a card number.)
func (s *Session) Ref() string { return base64.RawURLEncoding.EncodeToString(s.Hash[:12]) }

// SessionStore keeps the web UI's sessions, in the store's database.
//
// Contract: CreateSession MUST store s (CheckSession first) or return
// ECONFLICT when a session has its hash; it MUST NOT keep the session id,
// only the hash it is given. TouchSession MUST return the session of hash
// only while it is live at now (Session.Live) and ENOTFOUND when there is
// none or it has ended, even if it is still stored: an ended session is
// never returned again, and nothing revives it. When Session.Touch says
// the use moves SeenAt, TouchSession MUST store the new SeenAt before it
// returns. DeleteSession MUST remove the session of hash, or return
// ENOTFOUND. DeleteKeySessions MUST remove every session whose KeyID is
// keyID, of any tenant, and return how many it removed.
// DeleteEndedSessions MUST remove every session not live at now, and
// return how many. Sessions are not events: nothing of them is in the log.
type SessionStore interface {
	CreateSession(ctx context.Context, s *Session) error
	TouchSession(ctx context.Context, hash []byte, now time.Time) (*Session, error)
	DeleteSession(ctx context.Context, hash []byte) error
	DeleteKeySessions(ctx context.Context, keyID string) (int, error)
	DeleteEndedSessions(ctx context.Context, now time.Time) (int, error)
}

// sessionIDLen is the length of a session id: 32 bytes in unpadded
// base64url.
const sessionIDLen = 43

// NewSessionID makes a session id, 32 random bytes in base64url (the text a
// browser keeps), and its hash (what a SessionStore keeps).
func NewSessionID() (text string, hash []byte, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, err
	}
	text = base64.RawURLEncoding.EncodeToString(b[:])
	h := sha256.Sum256([]byte(text))
	return text, h[:], nil
}

// ParseSessionID returns the hash of a session id given by a browser, or
// EUNAUTHORIZED when text is not shaped like one.
func ParseSessionID(text string) ([]byte, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(text)
	if len(text) != sessionIDLen || err != nil || len(b) != 32 {
		return nil, Errorf(EUNAUTHORIZED, "not a session")
	}
	h := sha256.Sum256([]byte(text))
	return h[:], nil
}

// CheckSession refuses a session a store cannot keep, naming each bad
// field: what every SessionStore's CreateSession checks first.
func CheckSession(s *Session) error {
	if s == nil {
		return Invalid("bad session", FieldError{Path: "hash", Message: "required"})
	}
	var fe []FieldError
	bad := func(path, msg string) { fe = append(fe, FieldError{Path: path, Message: msg}) }
	if len(s.Hash) != sha256.Size {
		bad("hash", "want the 32-byte SHA-256 of the session id")
	}
	if m := CheckTenant(s.Tenant); m != "" {
		bad("tenant", m)
	}
	switch s.Kind {
	case SessionKey:
		if s.KeyID == "" {
			bad("key_id", "required for a key session")
		}
		if s.Subject != "" {
			bad("subject", "a key session has none")
		}
		if s.Name != "" || len(s.Scopes) > 0 {
			bad("name", "a key session has no name or scopes of its own: it acts as its key")
		}
	case SessionPerson:
		if s.Subject == "" {
			bad("subject", "required for a person's session")
		}
		if s.KeyID != "" {
			bad("key_id", "a person's session acts with no key")
		}
		if len(s.Scopes) == 0 {
			bad("scopes", "a person's session needs at least one scope")
		}
		for _, sc := range s.Scopes {
			if !sc.Valid() {
				bad("scopes", fmt.Sprintf("%q is not a scope", sc))
			}
		}
	default:
		bad("kind", fmt.Sprintf("%q is not one of key, person", s.Kind))
	}
	if len(s.KeyID) > MaxNameLen {
		bad("key_id", fmt.Sprintf("longer than %d bytes", MaxNameLen))
	}
	if len(s.Subject) > 1024 {
		bad("subject", "longer than 1024 bytes")
	}
	if len(s.Name) > 1024 {
		bad("name", "longer than 1024 bytes")
	}
	for _, f := range []struct {
		path string
		t    time.Time
	}{{"created_at", s.CreatedAt}, {"seen_at", s.SeenAt}, {"expires_at", s.ExpiresAt}} {
		if e := CheckTime(f.path, f.t); e != nil {
			fe = append(fe, *e)
		}
	}
	if s.Idle <= 0 {
		bad("idle", "must be positive")
	}
	if s.SeenAt.Before(s.CreatedAt) {
		bad("seen_at", "before created_at")
	}
	if !s.ExpiresAt.After(s.CreatedAt) {
		bad("expires_at", "must be after created_at")
	}
	if len(fe) > 0 {
		return Invalid("bad session", fe...)
	}
	return nil
}
