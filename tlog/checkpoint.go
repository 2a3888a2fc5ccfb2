package tlog

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/trailaudit/trail"
	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

// GenerateKey returns a new Ed25519 signing key named name, as a note
// signer key (keep it secret) and its verifier key (give it to auditors).
// The name (a host name, say) begins the origin of every checkpoint signed
// with the key: NAME/TENANT.
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

// Signer signs a tenant's checkpoints. Its origins are NAME/TENANT, where
// NAME is its key's name.
type Signer struct {
	s    note.Signer
	v    note.Verifier
	vkey string
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
	return &Signer{s: s, v: v, vkey: vkey}, nil
}

// Verifier returns the verifier of s's signatures.
func (s *Signer) Verifier() *Verifier { return &Verifier{v: s.v} }

// VerifierKey returns the verifier key of s in note format
// (name+hash+key): public, for auditors.
func (s *Signer) VerifierKey() string { return s.vkey }

// Sign returns a signed checkpoint of tenant's tree at size with root.
func (s *Signer) Sign(tenant string, size uint64, root []byte) ([]byte, error) {
	text := log.Checkpoint{Origin: Origin(s.s.Name(), tenant), Size: size, Hash: root}.Marshal()
	msg, err := note.Sign(&note.Note{Text: string(text)}, s.s)
	if err != nil {
		return nil, trail.Errorf(trail.EINTERNAL, "tlog: sign checkpoint: %w", err)
	}
	return msg, nil
}

// Origin returns the origin line of tenant's checkpoints signed by the key
// named name.
func Origin(name, tenant string) string { return name + "/" + tenant }

// Verifier checks checkpoints signed by one key.
type Verifier struct {
	v note.Verifier
}

// NewVerifier parses a verifier key (as printed by trail keygen).
func NewVerifier(vkey string) (*Verifier, error) {
	v, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return nil, trail.Errorf(trail.EINVALID, "tlog: verifier key: %w", err)
	}
	return &Verifier{v: v}, nil
}

// Name returns the name of the key, which begins every origin it signs.
func (v *Verifier) Name() string { return v.v.Name() }

// Checkpoint is a signed checkpoint that has been verified.
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   []byte
	Note   []byte // the signed note as stored
}

// Open verifies a signed checkpoint of tenant's log and parses it. It fails
// when no signature is by v's key, or the origin is not v's for tenant.
func (v *Verifier) Open(tenant string, signed []byte) (*Checkpoint, error) {
	cp, _, _, err := log.ParseCheckpoint(signed, Origin(v.v.Name(), tenant), v.v)
	if err != nil {
		return nil, trail.Errorf(trail.EINVALID, "tlog: checkpoint: %w", err)
	}
	if len(cp.Hash) != trail.HashSize {
		return nil, trail.Errorf(trail.EINVALID, "tlog: checkpoint: root hash is %d bytes, want %d", len(cp.Hash), trail.HashSize)
	}
	return &Checkpoint{Origin: cp.Origin, Size: cp.Size, Root: cp.Hash, Note: signed}, nil
}

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
// checkpoint, verifies under s's own key. Stores call it when they open with
// a signer: appending under another key would fork the log's history
// without anyone noticing, so they refuse to.
func (s *Signer) CheckLatest(tenant string, latest []byte) error {
	if _, err := s.Verifier().Open(tenant, latest); err != nil {
		return trail.Errorf(trail.ECONFLICT, "tenant %s: its latest checkpoint does not verify under the signing key %s "+
			"(was the log started with another key?); refusing to sign a forked history: %v", tenant, s.s.Name(), err)
	}
	return nil
}

// CheckHead returns an error unless a tenant's log is as its last commit
// left it: lastSeq, the highest seq stored, is the size of the tree the
// store is about to continue, and latest (the newest stored checkpoint; nil
// when there is none) is of that size and root. Stores call it before
// appending: a row deleted or forged behind their back would otherwise be
// built into the tree and covered by the next checkpoint they sign.
// They refuse to append instead, and trail verify says what happened.
func CheckHead(tenant string, lastSeq uint64, tree *Tree, latest []byte) error {
	var size uint64
	var root []byte
	if latest != nil {
		cp, err := ParseUnverified(latest)
		if err != nil {
			return trail.Errorf(trail.EINTERNAL, "tenant %s: its latest checkpoint does not parse (run trail verify); refusing to append: %v", tenant, err)
		}
		size, root = cp.Size, cp.Root
	}
	if lastSeq != size || tree.Size() != size || (size > 0 && !bytes.Equal(root, tree.Root())) {
		return trail.Errorf(trail.EINTERNAL, "tenant %s: the log (last seq %d, tree of %d) does not match its latest checkpoint (size %d) "+
			"(run trail verify); refusing to append", tenant, lastSeq, tree.Size(), size)
	}
	return nil
}
