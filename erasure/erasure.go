// Package erasure is GDPR erasure that keeps the log verifiable, by
// crypto-shredding: the personal data of each event is encrypted
// (AES-256-GCM) under a key of its data subject before the event is stored,
// and erasing the subject deletes its keys. The stored bytes, and so every
// leaf and proof of the log, stay as they were; the data reads as erased
// everywhere, the raw database included.
//
// Start with NewSealer over a trail.SubjectKeyStore, set it as the store's
// Validator.Sealer, and read through Wrap(store, s), which decrypts what it
// returns. Erase erases a subject. The keys live apart from the events, in
// a key store of the deployment's store package: sqlite.OpenSubjectKeys (a
// key file beside the database) for an embedded deployment,
// postgres.OpenSubjectKeys (the subject_keys table, shared by every
// process) for a shared one, memory.NewSubjectKeys for tests. This package
// imports none of them.
//
// What is personal: the actor's name and email, the request's IP address,
// the name of each user target, and each top-level context key (whatever
// JSON it holds) that the catalog marks personal for the event's action or
// whose name is one of PersonalKeys. Each is sealed under the key of the
// subject whose data it is: a user target's name and the context keys
// target_* and user_* under that target user's, the rest under Subject's.
// A field of no subject is stored as given. Actor and target ids stay in
// clear (they are what queries use): they must be pseudonymous ids, not
// email addresses.
package erasure

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/internal/ledger"
	"github.com/trailaudit/trail/internal/par"
	"github.com/trailaudit/trail/tlog"
)

// PersonalKeys are context keys treated as personal data whatever the
// action.
var PersonalKeys = []string{"email", "email_address", "ip", "ip_address", "phone", "phone_number", "name", "full_name",
	"first_name", "last_name", "address", "date_of_birth", "target_email", "user_email"}

// Erased is what an erased field reads as.
const Erased = "[erased]"

// An event's personal fields are sealed per data subject: the first field
// of each subject (in the order of Sealer.candidates) holds a sealed blob
// of all the subject's fields in the event, and the subject's other fields
// hold ref alone for the event's first blob (most events have one
// subject), else ref followed by the blob's path. One tag per subject of
// an event, not per field. The blob's forms are in format.go.
//
// The AES key of an enc3 or enc2 blob is the event's own, derived from the
// subject's (EventKey): giving it away (Openings) opens that event's blob
// and no other. Blobs sealed before event keys (enc1) are under the
// subject's key itself; they still open, but have no opening of their own.

// cacheTTL bounds how long a key is used from memory: after an erasure in
// another process, this process stops using the erased key within it.
const cacheTTL = time.Minute

// maxCached bounds each key cache; a full cache is emptied.
const maxCached = 100_000

// Sealer encrypts and decrypts events' personal data. It implements
// trail.Sealer. It is safe for concurrent use.
type Sealer struct {
	keys    trail.SubjectKeyStore
	actions trail.ActionResolver
	form    blobForm // how blobs are written: form4, or enc2 in tests (SealAsBefore)

	mu       sync.Mutex
	gen      uint64               // counts erasures: keys read before one are not cached
	subjects map[string]cachedKey // tenant \x00 subject → current key
	byID     map[string]cachedKey // tenant \x00 id → key, or gone (erased)
}

type cachedKey struct {
	id   string
	key  []byte      // the subject's key, which event keys derive from
	aead cipher.AEAD // of key itself (blobs under prefix1), made once: AES key expansion is not free
	gone bool        // the key was erased (KeyByID said ENOTFOUND)
	at   time.Time
}

var _ trail.Sealer = (*Sealer)(nil)

// NewSealer returns a Sealer keeping keys in keys; actions says which
// context keys each action marks personal (nil: only PersonalKeys).
func NewSealer(keys trail.SubjectKeyStore, actions trail.ActionResolver) *Sealer {
	return &Sealer{keys: keys, actions: actions, form: form4{}, subjects: map[string]cachedKey{}, byID: map[string]cachedKey{}}
}

// Subject returns the data subject of ev ("" for none): its actor when the
// actor is a user, else its first target of type user. The actor's name,
// email and IP address, and the event's other personal context keys, are
// sealed under this subject's key.
func Subject(ev *trail.Event) string {
	if ev.Actor.Type == trail.ActorUser && ev.Actor.ID != "" {
		return ev.Actor.ID
	}
	return targetUser(ev)
}

// targetUser returns the id of ev's first target of type user ("" for
// none).
func targetUser(ev *trail.Event) string {
	for _, t := range ev.Targets {
		if t.Type == "user" && t.ID != "" {
			return t.ID
		}
	}
	return ""
}

// field is one personal field of an event, with the subject whose data it
// is.
type field struct {
	path    string
	subject string
	at      place
	i       int    // the target's index (targetName)
	key     string // the context key (contextKey)
}

// place is where in an event a field is.
type place uint8

const (
	actorName place = iota
	actorEmail
	requestIP
	targetName
	contextKey
)

// topFields are the actor's name and email and the request's IP, as fields
// of subject.
var topFields = [...]field{{path: "actor.name", at: actorName}, {path: "actor.email", at: actorEmail}, {path: "request.ip", at: requestIP}}

func (f field) get(ev *trail.Event) any {
	if f.at == contextKey {
		return ev.Context[f.key]
	}
	return f.str(ev)
}

// str returns the value of a field that holds a string (not a context
// key's).
func (f field) str(ev *trail.Event) string {
	switch f.at {
	case actorName:
		return ev.Actor.Name
	case actorEmail:
		return ev.Actor.Email
	case requestIP:
		return ev.Request.IP
	case targetName:
		return ev.Targets[f.i].Name
	}
	return ""
}

// set stores v in the field (a string field takes a string: a sealed
// string field opens to one).
func (f field) set(ev *trail.Event, v any) {
	str, _ := v.(string)
	switch f.at {
	case actorName:
		ev.Actor.Name = str
	case actorEmail:
		ev.Actor.Email = str
	case requestIP:
		ev.Request.IP = str
	case targetName:
		ev.Targets[f.i].Name = str
	default:
		ev.Context[f.key] = v
	}
}

// candidates lists the fields of ev that Seal seals when they hold a
// value, with their subjects, in a fixed order: the actor's name and email
// and the request's IP (of Subject(ev)); the name of each user target (of
// that user); then the personal context keys in key order, those named
// target_* or user_* being of the first user target when there is one (an
// administrator changing a user's email address records the user's data,
// not the administrator's). A field of no subject is not listed.
func (s *Sealer) candidates(ev *trail.Event) []field {
	return appendCandidates(make([]field, 0, 3+len(ev.Targets)+len(ev.Context)), ev, s.resolve(ev.Tenant, ev.Action), false)
}

// appendCandidates appends the fields candidates lists for ev, whose
// action def defines (nil: unknown), to dst; with filled, only those that
// hold a value (the fields Seal seals).
func appendCandidates(dst []field, ev *trail.Event, def *trail.Action, filled bool) []field {
	subject, target := Subject(ev), targetUser(ev)
	if subject != "" {
		for _, f := range topFields {
			if !filled || f.str(ev) != "" {
				f.subject = subject
				dst = append(dst, f)
			}
		}
	}
	for i, t := range ev.Targets {
		if t.Type == "user" && t.ID != "" && (!filled || t.Name != "") {
			dst = append(dst, targetField(ev, i))
		}
	}
	start := len(dst)
	for k, v := range ev.Context {
		if filled && empty(v) || !personalKey(def, k) {
			continue
		}
		sub := subject
		if target != "" && (strings.HasPrefix(k, "target_") || strings.HasPrefix(k, "user_")) {
			sub = target
		}
		if sub != "" {
			dst = append(dst, field{path: "context." + k, subject: sub, at: contextKey, key: k})
		}
	}
	slices.SortFunc(dst[start:], func(a, b field) int { return strings.Compare(a.key, b.key) })
	return dst
}

// targetField is the name of ev's target i, as a field of that target.
func targetField(ev *trail.Event, i int) field {
	return field{path: "targets." + strconv.Itoa(i) + ".name", subject: ev.Targets[i].ID, at: targetName, i: i}
}

// empty reports whether a field holds nothing to seal.
func empty(v any) bool { return v == nil || v == "" }

// resolve returns the definition of action in tenant's view of the
// catalog (nil: none): a tenant's custom action says which of its context
// keys are personal for that tenant alone.
func (s *Sealer) resolve(tenant, action string) *trail.Action {
	if s.actions == nil {
		return nil
	}
	a, _ := trail.ResolverFor(s.actions, tenant).Resolve(action)
	return a
}

// personalKey reports whether context key k of events of the action def
// defines (nil: unknown) is personal: marked so in the catalog, or one of
// PersonalKeys.
func personalKey(def *trail.Action, k string) bool {
	if slices.Contains(PersonalKeys, k) {
		return true
	}
	if def == nil {
		return false
	}
	for _, c := range def.Context {
		if c.Key == k {
			return c.Personal
		}
	}
	return false
}

// Seal encrypts the personal fields of each event, one sealed blob per
// subject of the event, whatever JSON value a field holds. The keys of a
// batch's subjects are fetched (and the missing ones created) in one call
// to the key store. What is each event's own (finding its fields, deriving
// its keys, encrypting) is spread over the cores (par.Spread); an error
// names the first event, by index, that failed.
//
// Each event must carry an id (trail.NewID, as Validator.PrepareBatch
// draws one for every event it prepares): a blob's key is derived from
// the subject's key and the event's id, and its associated data holds
// the id. Every blob has a random nonce of its own (format.go), so an
// event sealed twice, or two events given one id (in one call or in
// two), never reuse a GCM key and nonce. The id must still be the
// event's alone: an opening (Openings) opens every blob sealed under its
// subject and id. Seal refuses an event with no id, or with one another
// event of the batch has; an id given again in a later call it cannot
// see. The append pipeline is the only caller, and draws a new id for
// every event.
func (s *Sealer) Seal(ctx context.Context, tenant string, evs []*trail.Event) error {
	// What can be checked of the above: every event has an id, and none
	// is sealed twice in the batch.
	ids := make(map[string]struct{}, len(evs))
	for i, ev := range evs {
		if _, dup := ids[ev.ID]; ev.ID == "" || dup {
			return fmt.Errorf("erasure: event %d: an id of its own is needed to seal it (its key is derived from it), got %q", i, ev.ID)
		}
		ids[ev.ID] = struct{}{}
	}
	groups := make([][]group, len(evs)) // each event's blobs, in order
	par.Spread(len(evs), func(lo, hi int) error {
		g := grouper{s: s}
		for i := lo; i < hi; i++ {
			groups[i] = g.groups(evs[i])
		}
		return nil
	})
	var need []string
	keys := map[string]cachedKey{}
	n := 0 // blobs in the batch
	for _, gs := range groups {
		n += len(gs)
		for _, g := range gs {
			subject := g.fields[0].subject
			if _, ok := keys[subject]; ok {
				continue
			}
			if c, ok := s.cached(s.subjects, tenant, subject); ok {
				keys[subject] = c
			} else {
				keys[subject] = cachedKey{}
				need = append(need, subject)
			}
		}
	}
	if len(need) > 0 {
		s.mu.Lock()
		gen := s.gen
		s.mu.Unlock()
		got, err := s.keys.SubjectKeys(ctx, tenant, need)
		if err != nil {
			return fmt.Errorf("erasure: keys of subjects: %w", err)
		}
		fresh := make([]cachedKey, len(need))
		now := time.Now()
		for i, k := range got {
			aead, err := newAEAD(k.Key)
			if err != nil {
				return err
			}
			fresh[i] = cachedKey{id: k.ID, key: k.Key, aead: aead, at: now}
			keys[need[i]] = fresh[i]
		}
		s.mu.Lock()
		if s.gen == gen { // no erasure since the read: the keys are current
			for i, subject := range need {
				s.remember(s.subjects, tenant+"\x00"+subject, fresh[i])
				s.remember(s.byID, tenant+"\x00"+fresh[i].id, fresh[i]) // Wrap.Append opens what it sealed
			}
		}
		s.mu.Unlock()
	}
	// Every blob's nonce, in one read of randomness for the batch.
	nonces := make([]byte, nonceSize*n)
	if _, err := rand.Read(nonces); err != nil {
		return fmt.Errorf("erasure: nonces: %w", err)
	}
	first := make([]int, len(evs)) // the index of each event's first blob
	for i := 1; i < len(evs); i++ {
		first[i] = first[i-1] + len(groups[i-1])
	}
	return par.Spread(len(evs), func(lo, hi int) error {
		var b blobWriter // its buffers serve every blob of the chunk
		for i := lo; i < hi; i++ {
			ev := evs[i]
			for j, g := range groups[i] {
				at := nonceSize * (first[i] + j)
				nonce := nonces[at : at+nonceSize]
				sealed, err := b.seal(s.form, tenant, keys[g.fields[0].subject], ev, g.fields, nonce)
				if err != nil {
					return err
				}
				blob := g.fields[0]
				blob.set(ev, sealed)
				r := ref // the event's first blob: most events have one subject
				if j > 0 {
					r = ref + blob.path
				}
				for _, f := range g.fields[1:] {
					f.set(ev, r)
				}
			}
		}
		return nil
	})
}

// blobWriter seals blobs, keeping its buffers from one to the next: one
// per goroutine.
type blobWriter struct {
	keyer
	pt, ad, sealed, out []byte
}

// seal returns the blob of ev's fields (one subject's, under its key k)
// sealed with nonce, in form. What a client sends is data, whatever it
// looks like: a value that already looks sealed is sealed like any other.
func (b *blobWriter) seal(form blobForm, tenant string, k cachedKey, ev *trail.Event, fields []field, nonce []byte) (string, error) {
	var err error
	if b.pt, err = form.appendPlain(b.pt[:0], ev, fields); err != nil {
		return "", err
	}
	aead, err := newAEAD(b.derive(k.key, tenant, k.id, ev.ID))
	if err != nil {
		return "", err
	}
	b.ad = appendAAD(b.ad[:0], tenant, k.id, ev.ID)
	if b.sealed, err = form.appendHead(b.sealed[:0], k.id); err != nil {
		return "", err
	}
	b.sealed = aead.Seal(append(b.sealed, nonce...), nonce, b.pt, b.ad)
	b.out = form.appendBlob(b.out[:0], k.id, b.sealed)
	return string(b.out), nil
}

// group is the fields of one subject in an event, the blob's field first.
type group struct{ fields []field }

// grouper finds the fields Seal seals in the events of one chunk, keeping
// what they share: the definitions of their actions, and the arrays their
// fields and groups are cut from.
type grouper struct {
	s       *Sealer
	actions map[[2]string]*trail.Action // by tenant and action: one batch, one view of the catalog
	scratch []field
	sizes   []int   // the fields of each group of the event at hand
	fields  []field // the groups' fields are cut from it
	made    []group // each event's groups are cut from it
}

// groups returns ev's fields that Seal seals (candidates holding a value),
// grouped by subject in the order of their first field.
func (g *grouper) groups(ev *trail.Event) []group {
	k := [2]string{ev.Tenant, ev.Action}
	def, ok := g.actions[k]
	if !ok {
		if g.actions == nil {
			g.actions = map[[2]string]*trail.Action{}
		}
		def = g.s.resolve(ev.Tenant, ev.Action)
		g.actions[k] = def
	}
	g.scratch = appendCandidates(g.scratch[:0], ev, def, true)
	if len(g.scratch) == 0 {
		return nil
	}
	// Each subject's fields in turn, in the order of their first field,
	// then the groups cut from where they landed (what an append leaves
	// behind when it moves the array stays as it was).
	at := len(g.fields)
	g.sizes = g.sizes[:0]
	for i, f := range g.scratch {
		if slices.ContainsFunc(g.scratch[:i], func(e field) bool { return e.subject == f.subject }) {
			continue // its subject's group is made
		}
		n := len(g.fields)
		for _, e := range g.scratch[i:] {
			if e.subject == f.subject {
				g.fields = append(g.fields, e)
			}
		}
		g.sizes = append(g.sizes, len(g.fields)-n)
	}
	first := len(g.made)
	for _, n := range g.sizes {
		g.made = append(g.made, group{fields: g.fields[at : at+n : at+n]})
		at += n
	}
	return g.made[first:len(g.made):len(g.made)]
}

// remember caches c under k; s.mu is held.
func (s *Sealer) remember(m map[string]cachedKey, k string, c cachedKey) {
	if len(m) >= maxCached {
		clear(m)
	}
	m[k] = c
}

// Open decrypts ev's sealed fields in place; the personal fields of an
// erased subject read as Erased. A value that only looks sealed (a client
// may send any string, in any field) is left as it is, and so is a sealed
// value changed in the database (trail verify reports the change): no
// event can make the reads of a page fail.
func (s *Sealer) Open(ctx context.Context, tenant string, ev *trail.Event) error {
	return open(tenant, ev, func() []field { return s.candidates(ev) }, func(version, id string) (cipher.AEAD, bool, error) {
		key, err := s.keyByID(ctx, tenant, id)
		switch {
		case err != nil || key.gone:
			return nil, key.gone, err
		case version == prefix1:
			return key.aead, false, nil
		}
		var k keyer
		aead, err := newAEAD(k.derive(key.key, tenant, id, ev.ID))
		return aead, false, err
	})
}

// OpenWith decrypts ev's sealed fields in place with openings, the event
// keys by key id that Openings gave for it: what a verifier holding only the
// event's stored bytes and its openings sees. A blob with no opening (its
// subject erased) reads as Erased; one its opening does not decrypt, and
// one sealed before event keys (which has no opening), is left sealed.
// Without the catalog, OpenWith cannot tell a value a client sent in a
// field that is not personal, shaped like a blob, from a blob of an erased
// subject: both have no opening, and both read as Erased.
func OpenWith(tenant string, ev *trail.Event, openings map[string][]byte) error {
	return open(tenant, ev, nil, func(version, id string) (cipher.AEAD, bool, error) {
		k, ok := openings[id]
		switch {
		case version == prefix1:
			return nil, false, nil
		case !ok:
			return nil, true, nil
		}
		aead, err := newAEAD(k)
		if err != nil {
			return nil, false, fmt.Errorf("erasure: the opening of key %s: %w", id, err)
		}
		return aead, false, nil
	})
}

// Openings returns the event keys (by key id) of ev's blobs, as stored
// (sealed): each opens that blob of that event alone (EventKey). A subject
// erased has none, and neither has a blob sealed before event keys.
func (s *Sealer) Openings(ctx context.Context, tenant string, ev *trail.Event) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, f := range sealedFields(ev) {
		b, ok := parseBlob(f.get(ev).(string))
		if !ok || b.version == prefix1 || out[b.id] != nil {
			continue
		}
		key, err := s.keyByID(ctx, tenant, b.id)
		if err != nil {
			return nil, err
		}
		if !key.gone {
			out[b.id] = EventKey(key.key, tenant, b.id, ev.ID)
		}
	}
	return out, nil
}

// EventKey derives the AES-256 key of the blobs of event sealed under the
// subject key id of tenant: HMAC-SHA256(key, a label, tenant, id, event).
// It reveals nothing of key, nor of any other event's key.
func EventKey(key []byte, tenant, id, event string) []byte {
	var k keyer
	return k.derive(key, tenant, id, event)
}

// Opening returns the openings of a stored event (canonical JSON) and the
// event as they open it (OpenLeaf): what a verifiable export carries
// (tlog.BundleOpener). Both are nil for an event with nothing sealed.
func (s *Sealer) Opening(ctx context.Context, tenant string, body []byte) (map[string][]byte, []byte, error) {
	ev, err := trail.UnmarshalCanonical(body)
	if err != nil {
		return nil, nil, fmt.Errorf("erasure: opening: %w", err)
	}
	if len(sealedFields(ev)) == 0 {
		return nil, nil, nil
	}
	openings, err := s.Openings(ctx, tenant, ev)
	if err != nil {
		return nil, nil, err
	}
	opened, err := OpenLeaf(tenant, body, openings)
	if errors.Is(err, tlog.ErrUnopenable) {
		// Its values sealed before event keys stay sealed in the bundle:
		// the key that opens them opens all the subject's events.
		err = nil
	}
	return openings, opened, err
}

// OpenLeaf opens a stored event (canonical JSON, as a leaf hashes it) with
// openings alone (OpenWith) and returns it in canonical JSON; nil for an
// event with nothing sealed (tlog.OpenFunc). An event holding blobs sealed
// before event keys (enc1:, which no opening opens) comes back with them
// still sealed and an error wrapping tlog.ErrUnopenable.
func OpenLeaf(tenant string, body []byte, openings map[string][]byte) ([]byte, error) {
	ev, err := trail.UnmarshalCanonical(body)
	if err != nil {
		return nil, fmt.Errorf("erasure: %w", err)
	}
	if len(sealedFields(ev)) == 0 {
		return nil, nil
	}
	if err := OpenWith(tenant, ev, openings); err != nil {
		return nil, err
	}
	out, err := trail.MarshalCanonical(ev)
	if err != nil {
		return nil, fmt.Errorf("erasure: the opened event: %w", err)
	}
	if fs := sealedBefore(ev); len(fs) > 0 {
		return out, fmt.Errorf("erasure: %s: %w", strings.Join(fs, ", "), tlog.ErrUnopenable)
	}
	return out, nil
}

// sealedBefore returns the paths of ev's fields holding a blob sealed
// before event keys (enc1:, not a reference to another blob).
func sealedBefore(ev *trail.Event) []string {
	var out []string
	for _, f := range sealedFields(ev) {
		if v := f.get(ev).(string); strings.HasPrefix(v, prefix1) && !strings.HasPrefix(v, ref) {
			out = append(out, f.path)
		}
	}
	return out
}

var _ tlog.BundleOpener = (*Sealer)(nil)
var _ tlog.OpenFunc = OpenLeaf

// open decrypts ev's sealed fields in place, with the AEAD keyOf gives a
// blob (gone: its key is erased, or not given; neither: it cannot be
// opened, and is left as it is). candidates lists the fields
// Seal seals in ev (nil: every sealed field may be one).
func open(tenant string, ev *trail.Event, candidates func() []field, keyOf func(version, id string) (aead cipher.AEAD, gone bool, err error)) error {
	sealed := sealedFields(ev)
	if len(sealed) == 0 {
		return nil
	}
	var personal map[string]bool // the paths Seal seals in ev, made once needed
	// What the fields open to, set after every blob is read (an opened
	// value may look like a reference).
	type assign struct {
		f field
		v any
	}
	var opened []assign
	for _, blob := range sealed {
		v := blob.get(ev).(string)
		if strings.HasPrefix(v, ref) {
			continue
		}
		b, ok := parseBlob(v)
		if !ok {
			continue
		}
		aead, gone, err := keyOf(b.version, b.id)
		if err != nil {
			return err
		}
		if aead == nil && !gone {
			continue
		}
		// The blob's field and the references to it: by its path, or bare
		// for the event's first blob.
		mine := func(f field, bare bool) bool {
			r := f.get(ev).(string)
			return f.path == blob.path || r == ref+blob.path || (r == ref && bare)
		}
		if gone {
			if personal == nil {
				personal = map[string]bool{}
				if candidates == nil {
					for _, f := range sealed {
						personal[f.path] = true
					}
				} else {
					for _, f := range candidates() {
						personal[f.path] = true
					}
				}
			}
			if !personal[blob.path] { // not where Seal puts a blob: a look-alike
				continue
			}
			// Seal's first blob is the first personal field holding one.
			first := slices.IndexFunc(sealed, func(f field) bool {
				return personal[f.path] && !strings.HasPrefix(f.get(ev).(string), ref)
			})
			for _, f := range sealed {
				if mine(f, sealed[first].path == blob.path) {
					opened = append(opened, assign{f, Erased})
				}
			}
			continue
		}
		pt, err := aead.Open(nil, b.nonce, b.ct, appendAAD(nil, tenant, b.id, ev.ID))
		if err != nil {
			continue
		}
		vals, ok := b.values(pt)
		if !ok {
			continue
		}
		for _, f := range sealed {
			// The plaintext names its fields: a bare reference is this
			// blob's when it names the field.
			if val, ok := vals[f.path]; ok && mine(f, true) {
				opened = append(opened, assign{f, val})
			}
		}
	}
	for _, a := range opened {
		a.f.set(ev, a.v)
	}
	return nil
}

// sealedFields lists ev's fields that hold a string with the sealed
// prefix, wherever they are (the catalog may have changed since the event
// was sealed), in the order of Sealer.candidates.
func sealedFields(ev *trail.Event) []field {
	sealedValue := func(v any) bool {
		str, ok := v.(string)
		return ok && isSealed(str)
	}
	var out []field
	for _, f := range topFields {
		if sealedValue(f.get(ev)) {
			out = append(out, f)
		}
	}
	for i := range ev.Targets {
		if isSealed(ev.Targets[i].Name) {
			out = append(out, targetField(ev, i))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(ev.Context)) {
		if sealedValue(ev.Context[k]) {
			out = append(out, field{path: "context." + k, at: contextKey, key: k})
		}
	}
	return out
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("erasure: %w", err)
	}
	return cipher.NewGCM(b)
}

// cached returns the key under tenant and k from m, if fresh.
func (s *Sealer) cached(m map[string]cachedKey, tenant, k string) (cachedKey, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := m[tenant+"\x00"+k]
	return c, ok && time.Since(c.at) < cacheTTL
}

// keyByID returns the key id of tenant, or one marked gone once erased.
func (s *Sealer) keyByID(ctx context.Context, tenant, id string) (cachedKey, error) {
	if c, ok := s.cached(s.byID, tenant, id); ok {
		return c, nil
	}
	s.mu.Lock()
	gen := s.gen
	s.mu.Unlock()
	c := cachedKey{id: id, at: time.Now()}
	key, err := s.keys.KeyByID(ctx, tenant, id)
	switch {
	case trail.ErrorCode(err) == trail.ENOTFOUND:
		c.gone = true
	case err != nil:
		return cachedKey{}, err
	default:
		if c.aead, err = newAEAD(key); err != nil {
			return cachedKey{}, err
		}
		c.key = key
	}
	s.mu.Lock()
	if s.gen == gen {
		s.remember(s.byID, tenant+"\x00"+id, c)
	}
	s.mu.Unlock()
	return c, nil
}

// Erase deletes every key of subject in tenant, here and in the key store,
// and returns how many keys it deleted. The subject's personal data then
// reads as Erased. Checking legal holds and recording the erasure are the
// caller's (see trail erase).
func (s *Sealer) Erase(ctx context.Context, tenant, subject string) (int, error) {
	n, err := s.keys.EraseSubject(ctx, tenant, subject)
	s.mu.Lock()
	s.gen++
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
func (s *Sealer) EraseSubject(ctx context.Context, w ledger.Writer, held func(ctx context.Context, tenant, subject string) (*trail.Hold, error),
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
	_, err = w.AppendOwn(ctx, tenant, ledger.Records(&trail.Event{Action: catalog.SubjectErased, Actor: actor, Reason: reason,
		Context: map[string]any{"subject_id": subject, "key_count": n, "reason": reason}}))
	if err != nil {
		return n, fmt.Errorf("the subject's keys are deleted, but recording it failed: %w", err)
	}
	return n, nil
}
