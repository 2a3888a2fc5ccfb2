package trail_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/trailaudit/trail"
)

func TestSessionID(t *testing.T) {
	text, hash, err := trail.NewSessionID()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(text)
	if err != nil || len(raw) != 32 || len(text) != 43 {
		t.Fatalf("session id %q: %d bytes, %v; want 32 random bytes in base64url", text, len(raw), err)
	}
	if want := sha256.Sum256([]byte(text)); !bytes.Equal(hash, want[:]) {
		t.Errorf("hash %x, want SHA-256 of the id", hash)
	}
	if got, err := trail.ParseSessionID(text); err != nil || !bytes.Equal(got, hash) {
		t.Errorf("ParseSessionID(%q) = %x, %v; want its hash", text, got, err)
	}
	ref := (&trail.Session{Hash: hash}).Ref()
	if len(ref) != 16 || strings.Contains(text, ref) || ref != base64.RawURLEncoding.EncodeToString(hash[:12]) {
		t.Errorf("Ref = %q: want 16 characters of the hash, nothing of the id", ref)
	}
	other, _, _ := trail.NewSessionID()
	if other == text {
		t.Error("two session ids are the same")
	}
	keyText, _, _ := trail.NewAPIKey("acme", "", []trail.KeyScope{trail.ScopeRead}, time.Now())
	for _, bad := range []string{
		"", text[:42], text + "A", text + "=", // wrong length, padding
		strings.Repeat("+", 43), strings.Repeat("/", 43), // standard base64, not URL
		text[:42] + "B", // the last character carries bits a 32-byte id never sets
		keyText,         // an API key is no session
		" " + text[1:],
	} {
		if bad == text {
			continue
		}
		if _, err := trail.ParseSessionID(bad); trail.ErrorCode(err) != trail.EUNAUTHORIZED {
			t.Errorf("ParseSessionID(%q) = %v, want EUNAUTHORIZED", bad, err)
		}
	}
}

func FuzzParseSessionID(f *testing.F) {
	text, _, _ := trail.NewSessionID()
	f.Add(text)
	f.Add("")
	f.Add(strings.Repeat("A", 43))
	f.Add("trail_0123456789ab_" + strings.Repeat("A", 43))
	f.Fuzz(func(t *testing.T, s string) {
		hash, err := trail.ParseSessionID(s)
		if err != nil {
			if trail.ErrorCode(err) != trail.EUNAUTHORIZED || hash != nil {
				t.Fatalf("ParseSessionID(%q) = %x, %v", s, hash, err)
			}
			return
		}
		// Accepted: exactly one spelling of 32 bytes, hashed.
		raw, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || len(raw) != 32 || base64.RawURLEncoding.EncodeToString(raw) != s {
			t.Fatalf("accepted %q, which is not 32 bytes in canonical base64url", s)
		}
		if want := sha256.Sum256([]byte(s)); !bytes.Equal(hash, want[:]) {
			t.Fatalf("hash of %q is not its SHA-256", s)
		}
	})
}

var t0 = time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)

func session(idle, max time.Duration) *trail.Session {
	return &trail.Session{Hash: make([]byte, 32), Tenant: "acme", Kind: trail.SessionKey, KeyID: "0123456789ab",
		CreatedAt: t0, SeenAt: t0, Idle: idle, ExpiresAt: t0.Add(max)}
}

// A session ends at its idle timeout after its last use or at its
// absolute expiry, whichever comes first; use moves the first, never the
// second.
func TestSessionLive(t *testing.T) {
	for _, tc := range []struct {
		name     string
		seen     time.Duration // last use, after creation
		at       time.Duration // when it is asked
		live     bool
		deadline time.Duration
	}{
		{"fresh", 0, 0, true, 30 * time.Minute},
		{"idle for less than the timeout", 0, 29*time.Minute + 59*time.Second, true, 30 * time.Minute},
		{"idle for the timeout", 0, 30 * time.Minute, false, 30 * time.Minute},
		{"used, then idle for less", 20 * time.Minute, 49 * time.Minute, true, 50 * time.Minute},
		{"used, then idle for the timeout", 20 * time.Minute, 50 * time.Minute, false, 50 * time.Minute},
		{"used until near the expiry", 11*time.Hour + 50*time.Minute, 11*time.Hour + 59*time.Minute, true, 12 * time.Hour},
		{"used until the expiry", 11*time.Hour + 50*time.Minute, 12 * time.Hour, false, 12 * time.Hour},
		{"asked before creation (a clock stepped back)", 0, -time.Hour, true, 30 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := session(30*time.Minute, 12*time.Hour)
			s.SeenAt = t0.Add(tc.seen)
			if got := s.Live(t0.Add(tc.at)); got != tc.live {
				t.Errorf("Live = %v, want %v", got, tc.live)
			}
			if got := s.Deadline(); !got.Equal(t0.Add(tc.deadline)) {
				t.Errorf("Deadline = %v, want %v", got, t0.Add(tc.deadline))
			}
		})
	}
}

// Touch moves SeenAt in steps of a minute (a tenth of a short idle
// timeout), never back.
func TestSessionTouch(t *testing.T) {
	for _, tc := range []struct {
		name  string
		idle  time.Duration
		after time.Duration
		moved bool
	}{
		{"within the minute", 30 * time.Minute, 59 * time.Second, false},
		{"a minute on", 30 * time.Minute, time.Minute, true},
		{"short idle: within a tenth", 5 * time.Minute, 29 * time.Second, false},
		{"short idle: a tenth on", 5 * time.Minute, 30 * time.Second, true},
		{"back in time", 30 * time.Minute, -time.Hour, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := session(tc.idle, 12*time.Hour)
			now := t0.Add(tc.after).In(time.FixedZone("CET", 3600))
			if got := s.Touch(now); got != tc.moved {
				t.Errorf("Touch = %v, want %v", got, tc.moved)
			}
			want := t0
			if tc.moved {
				want = now
			}
			if !s.SeenAt.Equal(want) || s.SeenAt.Location() != time.UTC {
				t.Errorf("SeenAt = %v, want %v in UTC", s.SeenAt, want)
			}
		})
	}
}

func TestCheckSession(t *testing.T) {
	if err := trail.CheckSession(session(time.Minute, time.Hour)); err != nil {
		t.Fatalf("a good session: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(s *trail.Session)
		path string
	}{
		{"no hash", func(s *trail.Session) { s.Hash = nil }, "hash"},
		{"the id, not its hash", func(s *trail.Session) { s.Hash = []byte(strings.Repeat("A", 43)) }, "hash"},
		{"bad tenant", func(s *trail.Session) { s.Tenant = "Acme" }, "tenant"},
		{"no kind", func(s *trail.Session) { s.Kind = "" }, "kind"},
		{"key session without its key", func(s *trail.Session) { s.KeyID = "" }, "key_id"},
		{"key session with a subject", func(s *trail.Session) { s.Subject = "ann" }, "subject"},
		{"person without a subject", func(s *trail.Session) { s.Kind = trail.SessionPerson }, "subject"},
		{"key session with a name", func(s *trail.Session) { s.Name = "ann@example.com" }, "name"},
		{"person acting with a key", func(s *trail.Session) {
			s.Kind, s.Subject, s.Scopes = trail.SessionPerson, "https://idp/#1", []trail.KeyScope{trail.ScopeRead}
		}, "key_id"},
		{"person without scopes", func(s *trail.Session) { s.Kind, s.KeyID, s.Subject = trail.SessionPerson, "", "https://idp/#1" }, "scopes"},
		{"person with a scope that is none", func(s *trail.Session) {
			s.Kind, s.KeyID, s.Subject, s.Scopes = trail.SessionPerson, "", "https://idp/#1", []trail.KeyScope{"root"}
		}, "scopes"},
		{"no idle timeout", func(s *trail.Session) { s.Idle = 0 }, "idle"},
		{"no creation time", func(s *trail.Session) { s.CreatedAt = time.Time{} }, "created_at"},
		{"seen before created", func(s *trail.Session) { s.SeenAt = t0.Add(-time.Second) }, "seen_at"},
		{"expires at creation", func(s *trail.Session) { s.ExpiresAt = t0 }, "expires_at"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := session(time.Minute, time.Hour)
			tc.edit(s)
			err := trail.CheckSession(s)
			fields := trail.ErrorFields(err)
			if trail.ErrorCode(err) != trail.EINVALID || len(fields) == 0 || fields[0].Path != tc.path {
				t.Errorf("CheckSession = %v %v, want EINVALID naming %s", err, fields, tc.path)
			}
		})
	}
	if err := trail.CheckSession(nil); trail.ErrorCode(err) != trail.EINVALID {
		t.Errorf("CheckSession(nil) = %v", err)
	}
	p := session(time.Minute, time.Hour)
	p.Kind, p.KeyID, p.Subject, p.Name = trail.SessionPerson, "", "https://idp.example.com/#1", "ann@example.com"
	p.Scopes = []trail.KeyScope{trail.ScopeRead}
	if err := trail.CheckSession(p); err != nil {
		t.Errorf("a person's session: %v", err)
	}
}
