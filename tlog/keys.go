package tlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/trailaudit/trail"
)

// A log's keys. A log moves from one signing key to the next only through a
// rotation checkpoint: one whose text carries, after the root hash, the
// extension line
//
//	key-rotation OLD NEW
//
// (the two verifier keys, which share their name) and which both keys sign
// (Signer.Rotating makes them). Its size is where NEW takes over: the
// checkpoints below it are OLD's, it and those above are NEW's, until the
// next rotation. The rotations chain the log's keys; Keys follows the
// chain from a key the verifier trusts both ways: forward (OLD is trusted,
// and OLD signed the line naming NEW) and back (NEW is trusted, and NEW
// signed the line naming OLD, which therefore signed what came before).

// rotationTag begins a rotation checkpoint's extension line.
const rotationTag = "key-rotation"

// rotationLine is the extension line of a rotation from old to new.
func rotationLine(old, new string) []byte {
	return []byte(rotationTag + " " + old + " " + new + "\n")
}

// rotation is a rotation checkpoint of a log whose signatures hold.
type rotation struct {
	size     uint64
	old, new verifierKey
}

// parseRotation returns the rotation that signed, a checkpoint of tenant's
// log, carries. ok is false when it carries none, or one whose keys are not
// both well-formed, of one name, and signers of it for tenant's origin.
func parseRotation(tenant string, signed []byte) (r rotation, ok bool) {
	text, _, found := strings.Cut(string(signed), "\n\n")
	if !found {
		return r, false
	}
	lines := strings.Split(text, "\n")
	if len(lines) < 4 {
		return r, false
	}
	for _, line := range lines[3:] {
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != rotationTag {
			continue
		}
		old, err1 := parseVerifierKey(f[1])
		new, err2 := parseVerifierKey(f[2])
		if err1 != nil || err2 != nil || old.text == new.text || old.v.Name() != new.v.Name() {
			return r, false
		}
		cp, err := openWith(tenant, signed, []verifierKey{old})
		if err != nil {
			return r, false
		}
		if _, err := openWith(tenant, signed, []verifierKey{new}); err != nil {
			return r, false
		}
		return rotation{size: cp.Size, old: old, new: new}, true
	}
	return r, false
}

// Keys is a tenant's key history: the keys its rotation checkpoints chain,
// anchored on a key a Verifier trusts (Follow). A log with no such chain
// (most logs: never rotated) has the verifier's own keys.
type Keys struct {
	tenant  string
	trusted *Verifier
	epochs  []epoch // by from; nil when no chain of rotations holds a trusted key
}

// epoch is one key of a history and where it takes over.
type epoch struct {
	key  verifierKey
	from uint64 // size of the rotation checkpoint that made it the log's key; 0 for the first
}

// KeyEpoch is one key of a log's history, as a report lists it.
type KeyEpoch struct {
	Key string `json:"key"` // its verifier key
	// From is the size of the rotation checkpoint from which the key signs
	// the log (0: from the start).
	From uint64 `json:"from"`
	// Trusted: the verifier was given this key; the others are trusted
	// through the rotations.
	Trusted bool `json:"trusted"`
}

// Follow reads tenant's stored checkpoints for its rotations and returns
// its key history as seen from v. Rotations chain when each one's OLD is
// the NEW of the one before (a repeat of the last rotation, co-signed while
// it was finishing, adds nothing); of the chains, the last that holds a key
// v trusts is the history. A rotation no chain holding a trusted key
// reaches does not count: its checkpoint is one like any other.
func (v *Verifier) Follow(ctx context.Context, l trail.Log, tenant string) (*Keys, error) {
	var rots []rotation
	marker := []byte("\n" + rotationTag + " ")
	err := l.Checkpoints(ctx, tenant, func(note []byte) error {
		if bytes.Contains(note, marker) {
			if r, ok := parseRotation(tenant, note); ok {
				rots = append(rots, r)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tlog: the log's keys: %w", err)
	}
	return v.chain(tenant, rots), nil
}

// chain returns the history rots (in the log's order) make, as Follow
// describes it.
func (v *Verifier) chain(tenant string, rots []rotation) *Keys {
	var chains [][]epoch
	for _, r := range rots {
		if n := len(chains); n > 0 {
			c := chains[n-1]
			last := c[len(c)-1].key.text
			if last == r.old.text {
				chains[n-1] = append(c, epoch{key: r.new, from: r.size})
				continue
			}
			if last == r.new.text && c[len(c)-2].key.text == r.old.text {
				continue
			}
		}
		chains = append(chains, []epoch{{key: r.old}, {key: r.new, from: r.size}})
	}
	k := &Keys{tenant: tenant, trusted: v}
	for _, c := range slices.Backward(chains) {
		if slices.ContainsFunc(c, func(e epoch) bool { return v.trusts(e.key.text) }) {
			k.epochs = c
			break
		}
	}
	return k
}

// Epochs lists the history's keys in order, nil for a log that never
// rotated to or from a trusted key.
func (k *Keys) Epochs() []KeyEpoch {
	var out []KeyEpoch
	for _, e := range k.epochs {
		out = append(out, KeyEpoch{Key: e.key.text, From: e.from, Trusted: k.trusted.trusts(e.key.text)})
	}
	return out
}

// foreignError says of a checkpoint well signed, but not by the key the
// history gives its size, which key did.
type foreignError struct{ why string }

func (e *foreignError) Error() string { return e.why }

// Open verifies a checkpoint of the tenant's log under the key the history
// gives its size, and parses it. Without a history, that is any key the
// verifier trusts (Verifier.Open). With one, a checkpoint signed by
// another key is damage (EINVALID): by a key the history retired, by one
// it takes up only later, or by one it never holds.
func (k *Keys) Open(signed []byte) (*Checkpoint, error) {
	if k.epochs == nil {
		return k.trusted.Open(k.tenant, signed)
	}
	u, err := ParseUnverified(signed)
	if err != nil {
		return nil, err
	}
	i := len(k.epochs) - 1
	for i > 0 && k.epochs[i].from > u.Size {
		i--
	}
	want := k.epochs[i]
	cp, err := openWith(k.tenant, signed, []verifierKey{want.key})
	var untrusted *UntrustedError
	if !errors.As(err, &untrusted) {
		return cp, err
	}
	why := fmt.Sprintf("signed by %s, not by %s, the log's key at size %d", strings.Join(untrusted.SignedBy, ", "), want.key.id(), u.Size)
	for j, e := range k.epochs {
		switch {
		case !hasSigned(k.tenant, signed, e.key):
		case j < i:
			why = fmt.Sprintf("signed by %s, which the rotation at size %d retired", e.key.id(), k.epochs[j+1].from)
		case j > i:
			why = fmt.Sprintf("signed by %s, which the log takes up only at its rotation at size %d", e.key.id(), e.from)
		}
	}
	return nil, trail.Errorf(trail.EINVALID, "tlog: checkpoint (size %d): %w", u.Size, &foreignError{why})
}

// hasSigned reports whether key signed signed, a checkpoint of tenant's
// log (under any of the names it signs by).
func hasSigned(tenant string, signed []byte, key verifierKey) bool {
	_, err := openWith(tenant, signed, []verifierKey{key})
	return err == nil
}

// foreign reports whether err is Open's or Keys.Open's for a checkpoint
// that is well signed, but not by the key it should be.
func foreign(err error) bool {
	return errors.As(err, new(*UntrustedError)) || errors.As(err, new(*foreignError))
}

// OpenLatest reads tenant's latest checkpoint and opens it under v, or,
// when v trusts none of its keys, under the log's key history (Follow). A
// store's error is returned as it is (ENOTFOUND: there is none); an error
// holding an *UntrustedError means no key the history reaches from v's
// signed it: it cannot be checked; any other is damage (EINVALID).
func OpenLatest(ctx context.Context, l trail.Log, tenant string, v *Verifier) (*Checkpoint, error) {
	note, err := l.Checkpoint(ctx, tenant)
	if err != nil {
		return nil, err
	}
	return v.OpenIn(ctx, l, tenant, note)
}

// OpenIn opens signed, a checkpoint of tenant's log l, under v, or, when v
// trusts none of its keys, under the log's key history, as OpenLatest
// does.
func (v *Verifier) OpenIn(ctx context.Context, l trail.Log, tenant string, signed []byte) (*Checkpoint, error) {
	cp, err := v.Open(tenant, signed)
	var untrusted *UntrustedError
	if !errors.As(err, &untrusted) {
		return cp, err
	}
	keys, ferr := v.Follow(ctx, l, tenant)
	if ferr != nil {
		return nil, ferr
	}
	return keys.Open(signed)
}
