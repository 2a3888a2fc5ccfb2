// Package erasure is GDPR erasure that keeps the log verifiable, by
// crypto-shredding: the personal data of each event is encrypted
// (AES-256-GCM) under a key of its data subject before the event is stored,
// and erasing the subject deletes its keys. The stored bytes, and so every
// leaf and proof of the log, stay as they were; the data reads as erased
// everywhere, the raw database included.
//
// Start with NewSealer over a trail.SubjectKeyStore (KeyFile for an embedded
// deployment, the PostgreSQL store for a shared one, MemoryKeys for tests),
// set it as the store's Validator.Sealer, and read through Wrap(store, s),
// which decrypts what it returns. Erase erases a subject.
//
// What is personal: the actor's name and email, the request's IP address,
// and each top-level context key that the catalog marks personal for the
// event's action or whose name is one of PersonalKeys. The subject of an
// event is its actor when the actor is a user, else its first target of
// type user; an event with neither has no subject and is stored as given.
// Actor and target ids stay in clear (they are what queries use): they must
// be pseudonymous ids, not email addresses.
package erasure

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/trailaudit/trail"
)

// PersonalKeys are context keys treated as personal data whatever the
// action.
var PersonalKeys = []string{"email", "email_address", "ip", "ip_address", "phone", "phone_number", "name", "full_name",
	"first_name", "last_name", "address", "date_of_birth", "target_email", "user_email"}

// Erased is what an erased field reads as.
const Erased = "[erased]"

// An event's personal fields are sealed together: the first of them (in
// the order of Sealer.fields) holds prefix KEYID ":" base64url(nonce ||
// AES-256-GCM(JSON {path: value})), the others hold ref. One nonce and tag
// per event, not per field: sealing adds about a third fewer bytes.
const (
	prefix = "enc1:"
	ref    = prefix + "^"
)

// cacheTTL bounds how long a key is used from memory: after an erasure in
// another process, this process stops using the erased key within it.
const cacheTTL = time.Minute

// Sealer encrypts and decrypts events' personal data. It implements
// trail.Sealer. It is safe for concurrent use.
type Sealer struct {
	keys    trail.SubjectKeyStore
	actions trail.ActionResolver

	mu       sync.Mutex
	subjects map[string]cachedKey // tenant \x00 subject → current key
	byID     map[string]cachedKey // tenant \x00 id → key
}

type cachedKey struct {
	id   string
	key  []byte
	aead cipher.AEAD // made once per key: AES key expansion is not free
	at   time.Time
}

var _ trail.Sealer = (*Sealer)(nil)

// NewSealer returns a Sealer keeping keys in keys; actions says which
// context keys each action marks personal (nil: only PersonalKeys).
func NewSealer(keys trail.SubjectKeyStore, actions trail.ActionResolver) *Sealer {
	return &Sealer{keys: keys, actions: actions, subjects: map[string]cachedKey{}, byID: map[string]cachedKey{}}
}

// Subject returns the data subject of ev ("" for none).
func Subject(ev *trail.Event) string {
	if ev.Actor.Type == trail.ActorUser && ev.Actor.ID != "" {
		return ev.Actor.ID
	}
	for _, t := range ev.Targets {
		if t.Type == "user" && t.ID != "" {
			return t.ID
		}
	}
	return ""
}

// field is one personal field of an event.
type field struct {
	path string
	get  func() (string, bool)
	set  func(string)
}

// fields lists ev's personal fields that hold a string.
func (s *Sealer) fields(ev *trail.Event) []field {
	var out []field
	for _, f := range topFields(ev) {
		if v, _ := f.get(); v != "" {
			out = append(out, f)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(ev.Context)) {
		str, ok := ev.Context[k].(string)
		if !ok || str == "" || !s.personalKey(ev.Action, k) {
			continue
		}
		out = append(out, contextField(ev, k))
	}
	return out
}

// topFields are the personal fields outside the context, in order.
func topFields(ev *trail.Event) []field {
	return []field{
		{"actor.name", func() (string, bool) { return ev.Actor.Name, true }, func(v string) { ev.Actor.Name = v }},
		{"actor.email", func() (string, bool) { return ev.Actor.Email, true }, func(v string) { ev.Actor.Email = v }},
		{"request.ip", func() (string, bool) { return ev.Request.IP, true }, func(v string) { ev.Request.IP = v }},
	}
}

// contextField is the context key k of ev as a field.
func contextField(ev *trail.Event, k string) field {
	return field{"context." + k, func() (string, bool) { s, ok := ev.Context[k].(string); return s, ok }, func(v string) { ev.Context[k] = v }}
}

// personalKey reports whether context key k of action's events is
// personal: marked so in the catalog, or one of PersonalKeys.
func (s *Sealer) personalKey(action, k string) bool {
	if isPersonalKey(k) {
		return true
	}
	if s.actions == nil {
		return false
	}
	a, ok := s.actions.Resolve(action)
	if !ok {
		return false
	}
	for _, c := range a.Context {
		if c.Key == k {
			return c.Personal
		}
	}
	return false
}

func isPersonalKey(k string) bool {
	for _, p := range PersonalKeys {
		if k == p {
			return true
		}
	}
	return false
}

// Seal encrypts the personal fields of each event that has a subject. The
// keys of a batch's subjects are fetched (and the missing ones created) in
// one call to the key store.
func (s *Sealer) Seal(ctx context.Context, tenant string, evs []*trail.Event) error {
	type job struct {
		ev      *trail.Event
		subject string
		fields  []field
	}
	var jobs []job
	var need []string
	keys := map[string]cachedKey{}
	for _, ev := range evs {
		subject := Subject(ev)
		if subject == "" {
			continue
		}
		fs := s.fields(ev)
		if len(fs) == 0 {
			continue
		}
		jobs = append(jobs, job{ev, subject, fs})
		if _, ok := keys[subject]; !ok {
			if c, ok := s.cachedSubject(tenant, subject); ok {
				keys[subject] = c
			} else {
				keys[subject] = cachedKey{}
				need = append(need, subject)
			}
		}
	}
	if len(need) > 0 {
		got, err := s.keys.SubjectKeys(ctx, tenant, need)
		if err != nil {
			return fmt.Errorf("erasure: keys of subjects: %w", err)
		}
		now := time.Now()
		s.mu.Lock()
		if len(s.subjects) > 100_000 {
			clear(s.subjects)
		}
		for i, subject := range need {
			aead, err := newAEAD(got[i].Key)
			if err != nil {
				s.mu.Unlock()
				return err
			}
			c := cachedKey{id: got[i].ID, key: got[i].Key, aead: aead, at: now}
			keys[subject] = c
			s.subjects[tenant+"\x00"+subject] = c
		}
		s.mu.Unlock()
	}
	// One read of randomness for every nonce of the batch.
	nonces := make([]byte, 12*len(jobs))
	if _, err := rand.Read(nonces); err != nil {
		return err
	}
	var pt []byte
	for i, j := range jobs {
		k := keys[j.subject]
		// What a client sends is data, whatever it looks like: a value
		// that already looks sealed is sealed like any other.
		pt = append(pt[:0], '{')
		for n, f := range j.fields {
			if n > 0 {
				pt = append(pt, ',')
			}
			v, _ := f.get()
			pt = strconv.AppendQuote(pt, f.path)
			pt = append(pt, ':')
			pt = strconv.AppendQuote(pt, v)
		}
		pt = append(pt, '}')
		nonce := nonces[12*i : 12*i+12 : 12*i+12]
		ct := k.aead.Seal(nonce, nonce, pt, aad(tenant, k.id, j.ev.ID))
		j.fields[0].set(prefix + k.id + ":" + base64.RawURLEncoding.EncodeToString(ct))
		for _, f := range j.fields[1:] {
			f.set(ref)
		}
	}
	return nil
}

// Open decrypts ev's sealed fields in place; the personal fields of an
// erased subject read as Erased. A value that only looks sealed (a client
// may send any string, in any field) is left as it is, and so is a sealed
// value changed in the database (trail verify reports the change): no
// event can make the reads of a page fail.
func (s *Sealer) Open(ctx context.Context, tenant string, ev *trail.Event) error {
	cands := s.sealedFields(ev)
	for _, f := range cands {
		v, _ := f.get()
		if v == ref {
			continue
		}
		id, b64, ok := strings.Cut(strings.TrimPrefix(v, prefix), ":")
		ct, err := base64.RawURLEncoding.DecodeString(b64)
		if !ok || err != nil || len(ct) < 12 {
			continue
		}
		key, err := s.keyByID(ctx, tenant, id)
		if trail.ErrorCode(err) == trail.ENOTFOUND {
			personal := s.personalPaths(ev)
			if !personal[f.path] {
				continue
			}
			for _, g := range cands {
				if personal[g.path] {
					g.set(Erased)
				}
			}
			return nil
		}
		if err != nil {
			return err
		}
		aead, err := newAEAD(key)
		if err != nil {
			return err
		}
		pt, err := aead.Open(nil, ct[:12], ct[12:], aad(tenant, id, ev.ID))
		var vals map[string]string
		if err != nil || json.Unmarshal(pt, &vals) != nil {
			continue
		}
		for _, g := range cands {
			if v, ok := vals[g.path]; ok {
				g.set(v)
			}
		}
		return nil
	}
	return nil
}

// personalPaths returns the paths Seal seals in ev (whatever they hold).
func (s *Sealer) personalPaths(ev *trail.Event) map[string]bool {
	out := map[string]bool{"actor.name": true, "actor.email": true, "request.ip": true}
	for k := range ev.Context {
		if s.personalKey(ev.Action, k) {
			out["context."+k] = true
		}
	}
	return out
}

// sealedFields lists ev's fields that hold a sealed value or a reference
// to one, wherever they are (the catalog may have changed since the event
// was sealed), in the order of Sealer.fields.
func (s *Sealer) sealedFields(ev *trail.Event) []field {
	var out []field
	for _, f := range topFields(ev) {
		if v, _ := f.get(); strings.HasPrefix(v, prefix) {
			out = append(out, f)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(ev.Context)) {
		if str, ok := ev.Context[k].(string); ok && strings.HasPrefix(str, prefix) {
			out = append(out, contextField(ev, k))
		}
	}
	return out
}

// aad binds a ciphertext to its tenant, key and event: moved to another
// event, it does not decrypt.
func aad(tenant, id, event string) []byte { return []byte(tenant + "\x00" + id + "\x00" + event) }

func newAEAD(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("erasure: %w", err)
	}
	return cipher.NewGCM(b)
}

// cachedSubject returns the subject's key from memory, if fresh.
func (s *Sealer) cachedSubject(tenant, subject string) (cachedKey, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.subjects[tenant+"\x00"+subject]
	return c, ok && time.Since(c.at) < cacheTTL
}

func (s *Sealer) keyByID(ctx context.Context, tenant, id string) ([]byte, error) {
	k := tenant + "\x00" + id
	s.mu.Lock()
	c, ok := s.byID[k]
	s.mu.Unlock()
	if ok && time.Since(c.at) < cacheTTL {
		return c.key, nil
	}
	key, err := s.keys.KeyByID(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if len(s.byID) > 100_000 {
		clear(s.byID)
	}
	s.byID[k] = cachedKey{id: id, key: key, at: time.Now()}
	s.mu.Unlock()
	return key, nil
}

// Erase deletes every key of subject in tenant, here and in the key store,
// and returns how many keys it deleted. The subject's personal data then
// reads as Erased. Checking legal holds and recording the erasure are the
// caller's (see trail erase).
func (s *Sealer) Erase(ctx context.Context, tenant, subject string) (int, error) {
	n, err := s.keys.EraseSubject(ctx, tenant, subject)
	s.mu.Lock()
	clear(s.subjects)
	clear(s.byID)
	s.mu.Unlock()
	return n, err
}

// EraseSubject erases subject from tenant's log the way an operator must:
// it refuses (ECONFLICT) while held says a legal hold covers the subject,
// deletes the subject's keys, and records subject_erased in the log with
// actor as who did it. held may be nil (no holds kept). It returns how many
// keys it deleted.
func (s *Sealer) EraseSubject(ctx context.Context, store trail.Store, held func(ctx context.Context, tenant, subject string) (*trail.Hold, error),
	tenant, subject, reason string, actor trail.Actor) (int, error) {
	if subject == "" {
		return 0, trail.Invalid("bad erasure", trail.FieldError{Path: "subject", Message: "required: the data subject's id"})
	}
	if held != nil {
		h, err := held(ctx, tenant, subject)
		if err != nil {
			return 0, err
		}
		if h != nil {
			return 0, trail.Errorf(trail.ECONFLICT, "legal hold %s (%s) covers events of subject %s: release it first", h.ID, h.Reason, subject)
		}
	}
	n, err := s.Erase(ctx, tenant, subject)
	if err != nil {
		return n, err
	}
	_, err = store.Append(ctx, tenant, []*trail.Event{{Action: "subject_erased", Actor: actor, Reason: reason,
		Context: map[string]any{"subject_id": subject, "key_count": n, "reason": reason}}}, trail.AppendOptions{})
	if err != nil {
		return n, fmt.Errorf("the subject's keys are deleted, but recording it failed: %w", err)
	}
	return n, nil
}
