package tlog

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/trailaudit/trail"
	"golang.org/x/mod/sumdb/note"
)

// The key IDs of the test keys (both named testKeyName), and how their
// signatures of testTenant's checkpoints name them (by the origin).
const (
	testKeyID  = "trail.example+cdb1c7dd"
	otherKeyID = "trail.example+3e6a3a8b"
	testSigID  = "trail.example/trail/acme+3d539bd3"
	otherSigID = "trail.example/trail/acme+e0731cb6"
)

// signedBy returns a copy of l with each checkpoint signed by the signer by
// gives its size.
func signedBy(tb testing.TB, l *memLog, by func(size uint64) *Signer) *memLog {
	tb.Helper()
	out := l.clone()
	for i, n := range out.notes {
		cp, err := ParseUnverified(n)
		if err != nil {
			tb.Fatal(err)
		}
		if out.notes[i], err = by(cp.Size).Sign(testTenant, cp.Size, cp.Root); err != nil {
			tb.Fatal(err)
		}
	}
	return out
}

// rotating returns next.Rotating(prev).
func rotating(tb testing.TB, next, prev *Signer) *Signer {
	tb.Helper()
	r, err := next.Rotating(prev)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// newSigner returns a signer of a new key named name.
func newSigner(tb testing.TB, name string) *Signer {
	tb.Helper()
	skey, _, err := GenerateKey(name)
	if err != nil {
		tb.Fatal(err)
	}
	return signer(tb, skey)
}

// signNote signs text (a checkpoint's, extension lines included) with
// signers, under its origin, however they relate: what an intruder can
// forge.
func signNote(tb testing.TB, text string, signers ...*Signer) []byte {
	tb.Helper()
	origin, _, _ := strings.Cut(text, "\n")
	var ns []note.Signer
	for _, s := range signers {
		ns = append(ns, s.named(origin))
	}
	b, err := note.Sign(&note.Note{Text: text}, ns...)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestVerifyKeyRotation: the tamper table's log (checkpoints of sizes 1,
// 4, 11, 13, 18, 19, 23, 31, 37, 40 and 50) signed by keys that rotate, or
// that are swapped behind its back, verified from one trusted key or
// another.
func TestVerifyKeyRotation(t *testing.T) {
	k0, k1 := signer(t, testKey), signer(t, otherKey)
	k2 := newSigner(t, testKeyName)
	r01, r12 := rotating(t, k1, k0), rotating(t, k2, k1)
	orig := buildLog(t, k0, events(tamperEvents, 200), tamperGroups...)
	rotatedAt18 := map[uint64]*Signer{0: k0, 18: r01, 19: k1}
	twice := map[uint64]*Signer{0: k0, 18: r01, 19: k1, 31: r12, 37: k2}
	only := func(k *Signer, at uint64) map[uint64]*Signer { // k0's log, with k signing the checkpoint of size at
		m := map[uint64]*Signer{0: k0, at: k}
		for _, s := range []uint64{1, 4, 11, 13, 18, 19, 23, 31, 37, 40, 50} {
			if s > at {
				m[s] = k0
				break
			}
		}
		return m
	}
	with := func(m map[uint64]*Signer, size uint64, s *Signer) map[uint64]*Signer { // m, but s signs at size
		next := keysAt(m)(size + 1)
		m = maps.Clone(m)
		m[size], m[size+1] = s, next
		return m
	}
	both, err := ParseVerifiers(k0.VerifierKey() + "\n" + k1.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	text := string(orig.notes[4][:bytes.Index(orig.notes[4], []byte("\n\n"))+1]) // of size 18

	tests := []struct {
		name  string
		keys  map[uint64]*Signer
		edit  func(*memLog) // after signing
		trust *Verifier
		want  []string // kind@seq of each damage
		epoch []string // the report's key history, as KeyID@From, * for a trusted key
		err   bool     // the log cannot be checked: an UntrustedError
	}{
		{name: "rotated at 18, trusting the old key", keys: rotatedAt18, trust: k0.Verifier(),
			epoch: []string{"*" + testKeyID + "@0", otherKeyID + "@18"}},
		{name: "rotated at 18, trusting the new key", keys: rotatedAt18, trust: k1.Verifier(),
			epoch: []string{testKeyID + "@0", "*" + otherKeyID + "@18"}},
		{name: "rotated at 18 and 31, trusting the first key", keys: twice, trust: k0.Verifier(),
			epoch: []string{"*" + testKeyID + "@0", otherKeyID + "@18", KeyID(k2.VerifierKey()) + "@31"}},
		{name: "rotated at 18 and 31, trusting the last key", keys: twice, trust: k2.Verifier(),
			epoch: []string{testKeyID + "@0", otherKeyID + "@18", "*" + KeyID(k2.VerifierKey()) + "@31"}},
		{name: "the rotation co-signed again at 19 (it was finishing)", keys: with(rotatedAt18, 19, r01), trust: k0.Verifier(),
			epoch: []string{"*" + testKeyID + "@0", otherKeyID + "@18"}},
		{name: "the retired key signs at 31", keys: with(rotatedAt18, 31, k0), trust: k0.Verifier(),
			want: []string{"bad_signature@31"}, epoch: []string{"*" + testKeyID + "@0", otherKeyID + "@18"}},
		{name: "the new key signs at 11, before the rotation", keys: with(rotatedAt18, 11, k1), trust: k1.Verifier(),
			want: []string{"bad_signature@11"}, epoch: []string{testKeyID + "@0", "*" + otherKeyID + "@18"}},
		{name: "a key never introduced signs at 23", keys: with(rotatedAt18, 23, k2), trust: k0.Verifier(),
			want: []string{"bad_signature@23"}, epoch: []string{"*" + testKeyID + "@0", otherKeyID + "@18"}},
		{name: "another key signs at 23, never rotated to", keys: only(k1, 23), trust: k0.Verifier(),
			want: []string{"bad_signature@23"}},
		{name: "a planted rotation between two other keys at 23", keys: only(r12, 23), trust: k0.Verifier(),
			want: []string{"bad_signature@23"}},
		{
			name: "a rotation at 18 signed by the new key alone", keys: rotatedAt18, trust: k0.Verifier(),
			edit: func(l *memLog) {
				l.notes[4] = signNote(t, text+string(rotationLine(k0.VerifierKey(), k1.VerifierKey())), k1)
			},
			want: []string{"extra@14", "bad_signature@18", "bad_signature@19", "bad_signature@23", "bad_signature@31", "bad_signature@37", "bad_signature@40", "bad_signature@50"},
		},
		{
			name: "a rotation at 18 naming a key of another name", keys: rotatedAt18, trust: k0.Verifier(),
			edit: func(l *memLog) {
				l.notes[4] = signNote(t, text+string(rotationLine(k0.VerifierKey(), newSigner(t, "x").VerifierKey())), k0, k1)
			},
			want: []string{"bad_signature@19", "extra@19", "bad_signature@23", "bad_signature@31", "bad_signature@37", "bad_signature@40", "bad_signature@50"},
		},
		{name: "both keys trusted, swapped at 19 with no rotation", keys: map[uint64]*Signer{0: k0, 19: k1}, trust: both},
		{name: "the whole log signed by another key", keys: map[uint64]*Signer{0: k1}, trust: k0.Verifier(), err: true},
		{name: "the whole log signed by a rotation between two other keys", keys: map[uint64]*Signer{0: r12}, trust: k0.Verifier(), err: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := signedBy(t, orig, keysAt(tc.keys))
			if tc.edit != nil {
				tc.edit(l)
			}
			rep, err := Verify(context.Background(), l, testTenant, tc.trust, VerifyOptions{})
			var untrusted *UntrustedError
			if tc.err {
				if !errors.As(err, &untrusted) || trail.ErrorCode(err) != trail.EINVALID {
					t.Fatalf("Verify = %+v, %v; want an error holding an UntrustedError", rep, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got, epochs []string
			for _, d := range rep.Damage {
				got = append(got, fmt.Sprintf("%s@%d", d.Kind, d.Seq))
			}
			for _, e := range rep.Keys {
				epochs = append(epochs, fmt.Sprintf("%s%s@%d", map[bool]string{true: "*"}[e.Trusted], KeyID(e.Key), e.From))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("damage %q, want %q\n%+v", got, tc.want, rep.Damage)
			}
			if !slices.Equal(epochs, tc.epoch) {
				t.Errorf("keys %q, want %q", epochs, tc.epoch)
			}
		})
	}
}

// keysAt returns the signing of a log whose signer at each size is keys'
// entry of the greatest size not above it (keys holds 0).
func keysAt(keys map[uint64]*Signer) func(uint64) *Signer {
	return func(size uint64) *Signer {
		var best uint64
		for s := range keys {
			if s <= size && s >= best {
				best = s
			}
		}
		return keys[best]
	}
}

// TestVerifyKeyDamageSays: what a checkpoint signed by the wrong key of a
// history is told apart by.
func TestVerifyKeyDamageSays(t *testing.T) {
	k0, k1 := signer(t, testKey), signer(t, otherKey)
	r01 := rotating(t, k1, k0)
	orig := buildLog(t, k0, events(tamperEvents, 200), tamperGroups...)
	for _, tc := range []struct {
		name string
		keys map[uint64]*Signer
		want string
	}{
		{"retired", map[uint64]*Signer{0: k0, 18: r01, 19: k1, 31: k0, 37: k1}, "signed by " + testKeyID + ", which the rotation at size 18 retired"},
		{"early", map[uint64]*Signer{0: k0, 11: k1, 13: k0, 18: r01, 19: k1}, "signed by " + otherKeyID + ", which the log takes up only at its rotation at size 18"},
		{"stranger", map[uint64]*Signer{0: k0, 18: r01, 19: k1, 23: newSigner(t, testKeyName), 31: k1}, "not by " + otherKeyID + ", the log's key at size 23"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := signedBy(t, orig, keysAt(tc.keys))
			rep, err := Verify(context.Background(), l, testTenant, k0.Verifier(), VerifyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Damage) != 1 || !strings.Contains(rep.Damage[0].Detail, tc.want) {
				t.Errorf("damage %+v, want one saying %q", rep.Damage, tc.want)
			}
		})
	}
}

// TestVerifySavedByAnotherKey: a checkpoint an auditor saved, signed by
// the key the log had then, against a log re-signed since with another
// key and verified with that key (the one found beside the data): the log
// no longer extends it, which is a fork, not a usage error.
func TestVerifySavedByAnotherKey(t *testing.T) {
	k0, k1 := signer(t, testKey), signer(t, otherKey)
	orig := buildLog(t, k0, events(tamperEvents, 200), tamperGroups...)
	resigned := signedBy(t, orig, func(uint64) *Signer { return k1 })
	rep, err := Verify(context.Background(), resigned, testTenant, k1.Verifier(), VerifyOptions{Saved: [][]byte{orig.notes[4]}})
	if err != nil {
		t.Fatal(err)
	}
	if f := rep.First(); f == nil || f.Kind != Fork || f.Seq != 1 || !strings.Contains(f.Detail, "signed by "+testSigID) {
		t.Errorf("damage %+v, want fork at 1 naming %s", rep.Damage, testSigID)
	}
}

func TestOpenLatest(t *testing.T) {
	ctx := context.Background()
	k0, k1 := signer(t, testKey), signer(t, otherKey)
	r01 := rotating(t, k1, k0)
	orig := buildLog(t, k0, events(tamperEvents, 200), tamperGroups...)
	rotated := signedBy(t, orig, keysAt(map[uint64]*Signer{0: k0, 18: r01, 19: k1}))
	retired := rotated.clone()
	retired.notes[len(retired.notes)-1] = resign(t, testKey, retired.notes[len(retired.notes)-1])

	if cp, err := OpenLatest(ctx, rotated, testTenant, k0.Verifier()); err != nil || cp.Size != tamperEvents {
		t.Errorf("latest of a rotated log, trusting the old key: %+v, %v", cp, err)
	}
	var untrusted *UntrustedError
	if _, err := OpenLatest(ctx, rotated, testTenant, newSigner(t, testKeyName).Verifier()); !errors.As(err, &untrusted) || !slices.Equal(untrusted.SignedBy, []string{otherSigID}) {
		t.Errorf("latest under a key the log never had: %v; want an UntrustedError naming %s", err, otherSigID)
	}
	if _, err := OpenLatest(ctx, retired, testTenant, k1.Verifier()); err == nil || errors.As(err, &untrusted) || trail.ErrorCode(err) != trail.EINVALID {
		t.Errorf("latest signed by the retired key: %v; want damage (EINVALID, not untrusted)", err)
	}
	if _, err := OpenLatest(ctx, &memLog{}, testTenant, k0.Verifier()); trail.ErrorCode(err) != trail.ENOTFOUND {
		t.Errorf("latest of an empty log: %v; want ENOTFOUND", err)
	}
}

func TestRotatingSigner(t *testing.T) {
	k0, k1 := signer(t, testKey), signer(t, otherKey)
	for _, tc := range []struct {
		name       string
		next, prev *Signer
	}{
		{"no previous key", k1, nil},
		{"the same key", k0, signer(t, testKey)},
		{"another name", newSigner(t, "other.example"), k0},
		{"a rotating previous key", k1, rotating(t, k0, newSigner(t, testKeyName))},
	} {
		if _, err := tc.next.Rotating(tc.prev); trail.ErrorCode(err) != trail.EINVALID {
			t.Errorf("Rotating with %s: error %v, want EINVALID", tc.name, err)
		}
	}
	r := rotating(t, k1, k0)
	if r.Previous() != k0 || r.VerifierKey() != k1.VerifierKey() || k1.Previous() != nil {
		t.Errorf("Previous %v, VerifierKey %s", r.Previous(), r.VerifierKey())
	}
	root := mth(events(3, 40))
	n, err := r.Sign(testTenant, 3, root)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%s\n3\n%s\nkey-rotation %s %s\n\n— trail.example/trail/acme ", Origin(testKeyName, testTenant),
		base64.StdEncoding.EncodeToString(root), k0.VerifierKey(), k1.VerifierKey())
	if !strings.HasPrefix(string(n), want) || bytes.Count(n, []byte("\n— ")) != 2 {
		t.Errorf("rotation checkpoint:\n%s\nwant it to start\n%s\nand hold two signatures", n, want)
	}
	for _, v := range []*Verifier{k0.Verifier(), k1.Verifier(), r.Verifier()} {
		if _, err := v.Open(testTenant, n); err != nil {
			t.Errorf("Open of the rotation under %v: %v", v.Keys(), err)
		}
	}
	if got := r.Verifier().Keys(); !slices.Equal(got, []string{k1.VerifierKey(), k0.VerifierKey()}) {
		t.Errorf("the rotating signer's verifier trusts %q", got)
	}

	// Opened with a rotating signer, a store accepts logs either key signed
	// last, and learns which still wait for their rotation.
	byOld, _ := k0.Sign("acme", 3, root)
	byNew, _ := k1.Sign("globex", 3, root)
	byBoth, _ := r.Sign("initech", 3, root)
	byStranger, _ := newSigner(t, testKeyName).Sign("umbrella", 3, root)
	for tenant, note := range map[string][]byte{"acme": byOld, "globex": byNew, "initech": byBoth} {
		if err := r.CheckLatest(tenant, note); err != nil {
			t.Errorf("CheckLatest(%s): %v", tenant, err)
		}
	}
	if err := r.CheckLatest("umbrella", byStranger); trail.ErrorCode(err) != trail.ECONFLICT {
		t.Errorf("CheckLatest of a stranger's checkpoint: %v, want ECONFLICT", err)
	}
	if got := r.Unrotated(); !slices.Equal(got, []string{"acme"}) {
		t.Errorf("Unrotated = %q, want [acme]", got)
	}
	if err := k0.CheckLatest("initech", byBoth); trail.ErrorCode(err) != trail.ECONFLICT || !strings.Contains(err.Error(), "retired") {
		t.Errorf("CheckLatest by the old key of the rotation away from it: %v, want ECONFLICT naming the retired key", err)
	}
	if err := k1.CheckLatest("initech", byBoth); err != nil {
		t.Errorf("CheckLatest by the new key of the rotation to it: %v", err)
	}
	if err := k1.CheckLatest("acme", byOld); trail.ErrorCode(err) != trail.ECONFLICT {
		t.Errorf("CheckLatest by the new key alone of the old key's checkpoint: %v, want ECONFLICT", err)
	}
}

func TestParseVerifiers(t *testing.T) {
	k0, k1 := signer(t, testKey), signer(t, otherKey)
	v, err := ParseVerifiers("# the auditors' keys\n\n" + k0.VerifierKey() + "\n  " + k1.VerifierKey() + "   # since 2026-11\n" + k0.VerifierKey() + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := v.Keys(); !slices.Equal(got, []string{k0.VerifierKey(), k1.VerifierKey()}) {
		t.Errorf("Keys = %q", got)
	}
	for _, tc := range []struct{ name, text, want string }{
		{"nothing", "# none yet\n", "no verifier key"},
		{"a signer key", "\n" + testKey, "line 2"},
		{"two keys on a line", k0.VerifierKey() + " " + k1.VerifierKey(), "line 1"},
		{"garbage", k0.VerifierKey() + "\nhello\n", "line 2"},
	} {
		if _, err := ParseVerifiers(tc.text); trail.ErrorCode(err) != trail.EINVALID || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseVerifiers(%s): error %v, want EINVALID naming %q", tc.name, err, tc.want)
		}
	}
}

func TestKeyID(t *testing.T) {
	for in, want := range map[string]string{
		testVKey:                          testKeyID,
		"a+00000000+AB+CD+EF":             "a+00000000",
		"no-plus":                         "no-plus",
		signer(t, otherKey).VerifierKey(): otherKeyID,
	} {
		if got := KeyID(in); got != want {
			t.Errorf("KeyID(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzParseVerifiers: a list of trusted keys from a file never panics,
// and every key it accepts is one NewVerifier accepts alone.
func FuzzParseVerifiers(f *testing.F) {
	f.Add(testVKey + "\n# a comment\n  " + signer(f, otherKey).VerifierKey() + "  # the new key\n")
	f.Add("#\n\n")
	f.Add(testKey)
	f.Add("a+00000000+AB cd")
	f.Fuzz(func(t *testing.T, text string) {
		v, err := ParseVerifiers(text)
		if err != nil {
			if trail.ErrorCode(err) != trail.EINVALID {
				t.Fatalf("error %v, want EINVALID", err)
			}
			return
		}
		for _, k := range v.Keys() {
			if _, err := NewVerifier(k); err != nil {
				t.Fatalf("accepted %q, which NewVerifier refuses: %v", k, err)
			}
		}
	})
}

// FuzzRotation: reading a rotation from a checkpoint never panics, and one
// it accepts is signed by both keys it names.
func FuzzRotation(f *testing.F) {
	k0, k1 := signer(f, testKey), signer(f, otherKey)
	r, err := k1.Rotating(k0)
	if err != nil {
		f.Fatal(err)
	}
	n, err := r.Sign(testTenant, 7, mth(events(7, 40)))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(n)
	f.Add(bytes.Replace(n, []byte("key-rotation"), []byte("key-rotation x"), 1))
	f.Add([]byte("trail.example/acme\n7\nAAAA\nkey-rotation a b\n\n— x\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rot, ok := parseRotation(testTenant, b)
		if !ok {
			return
		}
		for _, k := range []verifierKey{rot.old, rot.new} {
			if _, err := openWith(testTenant, b, []verifierKey{k}); err != nil {
				t.Fatalf("a rotation %s did not sign: %v", k.id(), err)
			}
		}
	})
}
