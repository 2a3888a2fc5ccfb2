package tlog

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/trailaudit/trail"
	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

// GenerateKey returns a new Ed25519 signing key named name, as a note
// signer key (keep it secret) and its verifier key (give it to auditors).
// The name (a host name, say) begins the origin of every checkpoint signed
// with the key: NAME/trail/TENANT (Origin).
func GenerateKey(name string) (skey, vkey string, err error) {
	if err := checkKeyName(name); err != nil {
		return "", "", err
	}
	return note.GenerateKey(rand.Reader, name)
}

// checkKeyName applies note's rules for key names (valid UTF-8, no space
// of any kind, no '+') and Trail's own: no '/', which separates the name
// from the tenant in an origin.
func checkKeyName(name string) error {
	if name == "" || !utf8.ValidString(name) || strings.IndexFunc(name, unicode.IsSpace) >= 0 || strings.ContainsAny(name, "+/") {
		return trail.Errorf(trail.EINVALID, "tlog: key name %q: want a non-empty UTF-8 name with no spaces, '+' or '/'", name)
	}
	return nil
}

// Signer signs a tenant's checkpoints. A new log's origin is
// NAME/trail/TENANT (Origin), where NAME is its key's name; a log started
// before that keeps its origin NAME/TENANT (a witness knows a log by its
// origin). Each signature is named as C2SP signed-note wants it, by the
// origin it signs: one key signs under one name per tenant's origin
// (OriginKey gives the verifier key of that name). A legacy log's
// checkpoints are signed under NAME as well, as they were before, for the
// witnesses and verifiers that know that key. A rotating signer (Rotating)
// signs each checkpoint with the key the log moves from as well, which
// makes the checkpoint a rotation (see Keys).
type Signer struct {
	s    note.Signer
	v    note.Verifier
	vkey string
	priv ed25519.PrivateKey
	prev *Signer // the key the log moves from, while rotating

	mu        sync.Mutex
	unrotated map[string]bool // tenants whose latest checkpoint only prev signed
}

// NewSigner parses a signer key made by GenerateKey.
func NewSigner(skey string) (*Signer, error) {
	skey = strings.TrimSpace(skey)
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, trail.Errorf(trail.EINVALID, "tlog: signer key: %w", err)
	}
	// note.Signer does not give its public key; derive it from the seed
	// (PRIVATE+KEY+name+hash+base64(0x01 || seed)). The base64 may itself
	// hold '+', so split off the four fields before it only.
	parts := strings.SplitN(skey, "+", 5)
	if len(parts) != 5 {
		return nil, trail.Errorf(trail.EINVALID, "tlog: signer key: not an Ed25519 key")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return nil, trail.Errorf(trail.EINVALID, "tlog: signer key: not an Ed25519 key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(s.Name(), pub)
	if err != nil {
		return nil, trail.Errorf(trail.EINVALID, "tlog: signer key: %w", err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, trail.Errorf(trail.EINVALID, "tlog: signer key: %w", err)
	}
	return &Signer{s: s, v: v, vkey: vkey, priv: ed25519.NewKeyFromSeed(raw[1:])}, nil
}

// Rotating returns a signer that moves logs from prev's key to s's: each
// checkpoint it signs carries a rotation line naming both verifier keys
// and is signed by both, so that a verifier trusting either key follows the
// log to the other (Keys). The keys must differ and share their name (the
// log's origin stays the same). Stores opened with it accept a log whose
// latest checkpoint either key signed (CheckLatest).
func (s *Signer) Rotating(prev *Signer) (*Signer, error) {
	switch {
	case prev == nil || prev.prev != nil || s.prev != nil:
		return nil, trail.Errorf(trail.EINVALID, "tlog: rotate: want two plain signers")
	case prev.vkey == s.vkey:
		return nil, trail.Errorf(trail.EINVALID, "tlog: rotate: the new key is the previous key")
	case prev.s.Name() != s.s.Name():
		return nil, trail.Errorf(trail.EINVALID, "tlog: rotate: the new key is named %s, the previous %s: a rotation keeps the name (it begins every origin)",
			s.s.Name(), prev.s.Name())
	}
	return &Signer{s: s.s, v: s.v, vkey: s.vkey, priv: s.priv, prev: prev}, nil
}

// Previous returns the key a rotating signer moves logs from, else nil.
func (s *Signer) Previous() *Signer { return s.prev }

// Verifier returns the verifier of s's signatures (and, while rotating, of
// its previous key's).
func (s *Signer) Verifier() *Verifier {
	keys := []verifierKey{{v: s.v, text: s.vkey}}
	if s.prev != nil {
		keys = append(keys, verifierKey{v: s.prev.v, text: s.prev.vkey})
	}
	return &Verifier{keys: keys}
}

// VerifierKey returns the verifier key of s in note format
// (name+hash+key): public, for auditors.
func (s *Signer) VerifierKey() string { return s.vkey }

// Sign returns a signed checkpoint of tenant's new tree at size with root,
// under the origin Origin gives it.
func (s *Signer) Sign(tenant string, size uint64, root []byte) ([]byte, error) {
	return s.SignOrigin(tenant, "", size, root)
}

// SignOrigin returns a signed checkpoint of tenant's tree at size with
// root, under origin: the origin of the log's latest checkpoint, which a
// log keeps for life ("" for a log with none: Origin's). It fails
// (EINVALID) on an origin that is not tenant's under s's key name.
func (s *Signer) SignOrigin(tenant, origin string, size uint64, root []byte) ([]byte, error) {
	name := s.s.Name()
	if origin == "" {
		origin = Origin(name, tenant)
	}
	legacy := origin == legacyOrigin(name, tenant)
	if !legacy && origin != Origin(name, tenant) {
		return nil, trail.Errorf(trail.EINVALID, "tlog: sign checkpoint: origin %q is not tenant %s's under the key %s", origin, tenant, name)
	}
	text := log.Checkpoint{Origin: origin, Size: size, Hash: root}.Marshal()
	keys := []*Signer{s}
	if s.prev != nil {
		text = append(text, rotationLine(s.prev.vkey, s.vkey)...)
		keys = []*Signer{s.prev, s}
	}
	var signers []note.Signer
	for _, k := range keys {
		if legacy {
			signers = append(signers, k.s)
		}
		signers = append(signers, k.named(origin))
	}
	msg, err := note.Sign(&note.Note{Text: string(text)}, signers...)
	if err != nil {
		return nil, trail.Errorf(trail.EINTERNAL, "tlog: sign checkpoint: %w", err)
	}
	return msg, nil
}

// named returns a note signer of s's key under name (an origin).
func (s *Signer) named(name string) note.Signer {
	pub := s.priv.Public().(ed25519.PublicKey)
	return &namedSigner{name: name, hash: keyHash(name, pub), priv: s.priv}
}

// namedSigner is a note.Signer of an Ed25519 key under any name.
type namedSigner struct {
	name string
	hash uint32
	priv ed25519.PrivateKey
}

func (n *namedSigner) Name() string                    { return n.name }
func (n *namedSigner) KeyHash() uint32                 { return n.hash }
func (n *namedSigner) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(n.priv, msg), nil }

var _ note.Signer = (*namedSigner)(nil)

// keyHash is the hash that names an Ed25519 key of name in signatures
// (c2sp.org/signed-note): the first four bytes of
// SHA-256(name || 0x0A || 0x01 || key).
func keyHash(name string, pub ed25519.PublicKey) uint32 {
	h := sha256.New()
	h.Write([]byte(name + "\n"))
	h.Write([]byte{1})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// Origin returns the origin of a new log of tenant signed by the key named
// name: NAME/trail/TENANT, a URL without its scheme (c2sp.org/tlog-checkpoint)
// when NAME is the service's host name. The key signs it under that name
// (OriginKey).
func Origin(name, tenant string) string { return name + "/trail/" + tenant }

// legacyOrigin is the origin of tenant's log under the key named name when
// the log was started before Origin's: NAME/TENANT. Such a log keeps it.
func legacyOrigin(name, tenant string) string { return name + "/" + tenant }

// OriginKey returns the verifier key, named origin, of the verifier key
// vkey (NAME+HASH+KEY, as trail keygen prints it): the key a witness is
// given for a log of that origin, since it checks that a log's key is named
// by its origin.
func OriginKey(vkey, origin string) (string, error) {
	k, err := parseVerifierKey(vkey)
	if err != nil {
		return "", err
	}
	pub, err := k.pub()
	if err != nil {
		return "", err
	}
	if err := checkOrigin(origin); err != nil {
		return "", err
	}
	out, err := note.NewEd25519VerifierKey(origin, pub)
	if err != nil {
		return "", trail.Errorf(trail.EINVALID, "tlog: origin %q: %w", origin, err)
	}
	return out, nil
}

// checkOrigin applies note's rules for key names to an origin.
func checkOrigin(origin string) error {
	if origin == "" || !utf8.ValidString(origin) || strings.IndexFunc(origin, unicode.IsSpace) >= 0 || strings.Contains(origin, "+") {
		return trail.Errorf(trail.EINVALID, "tlog: origin %q: want a non-empty UTF-8 name with no spaces or '+'", origin)
	}
	return nil
}

// Verifier checks checkpoints against the keys it trusts: one (NewVerifier)
// or several (ParseVerifiers).
type Verifier struct {
	keys []verifierKey // no two alike
}

// verifierKey is one trusted key: its note verifier and its text.
type verifierKey struct {
	v    note.Verifier
	text string // NAME+HASH+KEY
}

// id is the key's name and hash, as signatures name it.
func (k verifierKey) id() string { return KeyID(k.text) }

// pub returns the key's Ed25519 public key.
func (k verifierKey) pub() (ed25519.PublicKey, error) {
	f := strings.SplitN(k.text, "+", 3)
	raw, err := base64.StdEncoding.DecodeString(f[len(f)-1])
	if err != nil || len(raw) != 1+ed25519.PublicKeySize || raw[0] != 1 {
		return nil, trail.Errorf(trail.EINVALID, "tlog: verifier key %s: not an Ed25519 key", k.id())
	}
	return ed25519.PublicKey(raw[1:]), nil
}

// named returns a note verifier of the key under name (an origin).
func (k verifierKey) named(name string) (note.Verifier, error) {
	pub, err := k.pub()
	if err != nil {
		return nil, err
	}
	vkey, err := note.NewEd25519VerifierKey(name, pub)
	if err != nil {
		return nil, trail.Errorf(trail.EINVALID, "tlog: verifier key %s under %q: %w", k.id(), name, err)
	}
	return note.NewVerifier(vkey)
}

// NewVerifier parses a verifier key (as printed by trail keygen).
func NewVerifier(vkey string) (*Verifier, error) {
	k, err := parseVerifierKey(vkey)
	if err != nil {
		return nil, err
	}
	return &Verifier{keys: []verifierKey{k}}, nil
}

func parseVerifierKey(vkey string) (verifierKey, error) {
	vkey = strings.TrimSpace(vkey)
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return verifierKey{}, trail.Errorf(trail.EINVALID, "tlog: verifier key: %w", err)
	}
	return verifierKey{v: v, text: vkey}, nil
}

// ParseVerifiers reads a list of trusted verifier keys, one per line. Blank
// lines and lines starting with # are skipped, and a key may be followed
// by a comment (spaces, then #). It fails (EINVALID, naming the line) on
// anything else, and on a list with no key.
func ParseVerifiers(text string) (*Verifier, error) {
	v := &Verifier{}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, rest, _ := strings.Cut(strings.Join(strings.Fields(line), " "), " ")
		if rest != "" && !strings.HasPrefix(rest, "#") {
			return nil, trail.Errorf(trail.EINVALID, "tlog: line %d: want one verifier key, then at most a # comment", i+1)
		}
		k, err := parseVerifierKey(key)
		if err != nil {
			return nil, trail.Errorf(trail.EINVALID, "tlog: line %d: not a verifier key: %v", i+1, errors.Unwrap(err))
		}
		if !v.trusts(k.text) {
			v.keys = append(v.keys, k)
		}
	}
	if len(v.keys) == 0 {
		return nil, trail.Errorf(trail.EINVALID, "tlog: no verifier key in the list")
	}
	return v, nil
}

// Name returns the name of the (first) key, which begins every origin it
// signs.
func (v *Verifier) Name() string { return v.keys[0].v.Name() }

// Keys returns the verifier keys v trusts, in the order given.
func (v *Verifier) Keys() []string {
	out := make([]string, len(v.keys))
	for i, k := range v.keys {
		out[i] = k.text
	}
	return out
}

// trusts reports whether v trusts the verifier key vkey.
func (v *Verifier) trusts(vkey string) bool {
	return slices.ContainsFunc(v.keys, func(k verifierKey) bool { return k.text == vkey })
}

// KeyID returns the name and hash that begin a verifier key (NAME+HASH):
// how a signature names its key, and how Trail prints one.
func KeyID(vkey string) string {
	// A name holds no '+'; the base64 of the key may.
	if f := strings.SplitN(vkey, "+", 3); len(f) == 3 {
		return f[0] + "+" + f[1]
	}
	return vkey
}

// Checkpoint is a signed checkpoint that has been verified.
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   []byte
	Note   []byte // the signed note as stored
}

// Open verifies a signed checkpoint of tenant's log and parses it. It fails
// (EINVALID) when a signature by a key v trusts does not verify, when the
// origin is not tenant's under a key that signed it (openWith), and when no key v
// trusts signed it: then the error holds an *UntrustedError naming the keys
// that did.
func (v *Verifier) Open(tenant string, signed []byte) (*Checkpoint, error) {
	return openWith(tenant, signed, v.keys)
}

// UntrustedError reports a checkpoint that none of the keys it was checked
// against signed. It may be well signed by another key: it cannot be
// checked, which is not the same as damaged.
type UntrustedError struct {
	SignedBy []string // the keys of its signatures, as NAME+HASH
	Want     []string // the keys it was checked against, as NAME+HASH
}

func (e *UntrustedError) Error() string {
	by := "no key"
	if len(e.SignedBy) > 0 {
		by = strings.Join(e.SignedBy, ", ")
	}
	return "not signed by the trusted key " + strings.Join(e.Want, ", ") + " (signed by " + by + ")"
}

// openWith opens signed as Open does, trusting keys. A key named NAME
// vouches for the checkpoint of tenant's log by a signature under its
// origin, NAME/trail/TENANT or (a log started before that) NAME/TENANT;
// or, for the latter, by one under NAME, as checkpoints were signed
// before their signatures were named by their origin.
func openWith(tenant string, signed []byte, keys []verifierKey) (*Checkpoint, error) {
	type sigKey struct {
		name string
		hash uint32
	}
	origins := map[sigKey]string{} // the origin a signature by the key vouches for
	var list []note.Verifier
	for _, k := range keys {
		list = append(list, k.v)
		origins[sigKey{k.v.Name(), k.v.KeyHash()}] = legacyOrigin(k.v.Name(), tenant)
		for _, o := range []string{Origin(k.v.Name(), tenant), legacyOrigin(k.v.Name(), tenant)} {
			v, err := k.named(o)
			if err != nil {
				continue // a tenant name no key name allows: nothing signed it
			}
			list = append(list, v)
			origins[sigKey{v.Name(), v.KeyHash()}] = o
		}
	}
	n, err := note.Open(signed, note.VerifierList(list...))
	var unverified *note.UnverifiedNoteError
	if errors.As(err, &unverified) {
		u := &UntrustedError{}
		for _, s := range unverified.Note.UnverifiedSigs {
			u.SignedBy = append(u.SignedBy, sigID(s))
		}
		for _, k := range keys {
			u.Want = append(u.Want, k.id())
		}
		return nil, trail.Errorf(trail.EINVALID, "tlog: checkpoint: %w", u)
	}
	if err != nil {
		return nil, trail.Errorf(trail.EINVALID, "tlog: checkpoint: %v", err)
	}
	var cp log.Checkpoint
	if _, err := cp.Unmarshal([]byte(n.Text)); err != nil {
		return nil, trail.Errorf(trail.EINVALID, "tlog: checkpoint: %v", err)
	}
	if !slices.ContainsFunc(n.Sigs, func(s note.Signature) bool { return origins[sigKey{s.Name, s.Hash}] == cp.Origin }) {
		return nil, trail.Errorf(trail.EINVALID, "tlog: checkpoint: origin %q is not that of tenant %s under the key that signed it (%s)",
			cp.Origin, tenant, sigID(n.Sigs[0]))
	}
	if len(cp.Hash) != trail.HashSize {
		return nil, trail.Errorf(trail.EINVALID, "tlog: checkpoint: root hash is %d bytes, want %d", len(cp.Hash), trail.HashSize)
	}
	return &Checkpoint{Origin: cp.Origin, Size: cp.Size, Root: cp.Hash, Note: signed}, nil
}

// sigID names a signature's key as KeyID does.
func sigID(s note.Signature) string { return fmt.Sprintf("%s+%08x", s.Name, s.Hash) }

// ParseUnverified reads a checkpoint's origin, size and root without
// checking any signature: for reports about checkpoints that failed Open.
func ParseUnverified(signed []byte) (*Checkpoint, error) {
	text, _, ok := strings.Cut(string(signed), "\n\n")
	if !ok {
		return nil, trail.Errorf(trail.EINVALID, "tlog: checkpoint: not a signed note")
	}
	var cp log.Checkpoint
	if _, err := cp.Unmarshal([]byte(text + "\n")); err != nil {
		return nil, trail.Errorf(trail.EINVALID, "tlog: checkpoint: %w", err)
	}
	return &Checkpoint{Origin: cp.Origin, Size: cp.Size, Root: cp.Hash, Note: signed}, nil
}

// CheckLatest returns an error unless latest, tenant's newest stored
// checkpoint, verifies under s's own key, or under its previous key while
// it rotates (the tenants where only the previous key did are then listed
// by Unrotated), and is not a rotation away from s's key. Stores call it
// for every tenant when they open with a signer: appending under another
// key would fork the log's history without anyone noticing, and under a
// key rotated away from would sign with a retired key; they refuse to.
func (s *Signer) CheckLatest(tenant string, latest []byte) error {
	if r, ok := parseRotation(tenant, latest); ok && r.old.text == s.vkey {
		return trail.Errorf(trail.ECONFLICT, "tenant %s: its log was rotated from the signing key %s to %s; refusing to sign with the retired key",
			tenant, KeyID(s.vkey), r.new.id())
	}
	_, err := s.Verifier().Open(tenant, latest)
	if err == nil && s.prev != nil {
		if _, cerr := openWith(tenant, latest, s.Verifier().keys[:1]); cerr != nil {
			s.mu.Lock()
			if s.unrotated == nil {
				s.unrotated = map[string]bool{}
			}
			s.unrotated[tenant] = true
			s.mu.Unlock()
		}
	}
	if err != nil {
		return trail.Errorf(trail.ECONFLICT, "tenant %s: its latest checkpoint does not verify under the signing key %s "+
			"(was the log started with another key?); refusing to sign a forked history: %v", tenant, KeyID(s.vkey), err)
	}
	return nil
}

// Unrotated lists, sorted, the tenants whose latest checkpoint only the
// previous key of a rotating signer signed, as CheckLatest found them:
// those whose logs still wait for their rotation checkpoint.
func (s *Signer) Unrotated() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.unrotated))
	for t := range s.unrotated {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// CheckHead returns an error unless a tenant's log is as its last commit
// left it: lastSeq, the highest seq stored, is the size of the tree the
// store is about to continue, and latest (the newest stored checkpoint; nil
// when there is none) is of that size and root. Stores call it before
// appending: a row deleted or forged behind their back would otherwise be
// built into the tree and covered by the next checkpoint they sign.
// They refuse to append instead, and trail verify says what happened. It
// returns latest's origin ("" when there is none), which the log keeps.
func CheckHead(tenant string, lastSeq uint64, tree *Tree, latest []byte) (origin string, err error) {
	var size uint64
	var root []byte
	if latest != nil {
		cp, err := ParseUnverified(latest)
		if err != nil {
			return "", trail.Errorf(trail.EINTERNAL, "tenant %s: its latest checkpoint does not parse (run trail verify); refusing to append: %v", tenant, err)
		}
		size, root, origin = cp.Size, cp.Root, cp.Origin
	}
	if lastSeq != size || tree.Size() != size || (size > 0 && !bytes.Equal(root, tree.Root())) {
		return "", trail.Errorf(trail.EINTERNAL, "tenant %s: the log (last seq %d, tree of %d) does not match its latest checkpoint (size %d) "+
			"(run trail verify); refusing to append", tenant, lastSeq, tree.Size(), size)
	}
	return origin, nil
}
