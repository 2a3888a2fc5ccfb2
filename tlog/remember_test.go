package tlog

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trailaudit/trail"
)

// TestCheckRemembered walks a client through what a log may show it after
// it saw the checkpoint of size 9 of a log: the same one, a larger one
// that extends it, an older one, a rollback, and forks of the same key.
func TestCheckRemembered(t *testing.T) {
	ctx := context.Background()
	s := signer(t, testKey)
	v := s.Verifier()
	l := buildLog(t, s, events(20, 80), 3)                              // checkpoints of sizes 3, 6, 9, ... 20
	fork := buildLog(t, s, append(events(4, 80), events(16, 90)...), 3) // another history from seq 5
	open := func(l *memLog, i int) *Checkpoint {
		t.Helper()
		cp, err := v.Open(testTenant, l.notes[i])
		if err != nil {
			t.Fatal(err)
		}
		return cp
	}
	proveFrom := func(l *memLog) ProveFunc {
		return func(ctx context.Context, from, to uint64) ([][]byte, error) {
			return ConsistencyProof(ctx, l, testTenant, from, to)
		}
	}
	for _, tc := range []struct {
		name     string
		cp       *Checkpoint
		latest   bool
		prove    ProveFunc
		want     string // in the error; "" for none
		rollback bool
		then     uint64 // the size remembered afterwards
	}{
		{name: "the same", cp: open(l, 2), latest: true, prove: proveFrom(l), then: 9},
		{name: "larger and consistent", cp: open(l, 6), latest: true, prove: proveFrom(l), then: 20},
		{name: "an older prefix", cp: open(l, 0), prove: proveFrom(l), then: 9},
		{name: "a rollback", cp: open(l, 1), latest: true, prove: proveFrom(l), rollback: true,
			want: "the checkpoint of size 6, root " + rootText(open(l, 1).Root) + ": it is smaller than the one remembered (a rollback), of size 9, root " + rootText(open(l, 2).Root)},
		{name: "a fork of the same size", cp: open(fork, 2), latest: true, prove: proveFrom(fork),
			want: "the checkpoint of size 9, root " + rootText(open(fork, 2).Root) + ": it is not consistent with the one remembered (a fork"},
		{name: "a larger fork", cp: open(fork, 6), latest: true, prove: proveFrom(fork), want: "of size 9, root " + rootText(open(l, 2).Root) + " (the consistency proof between them does not verify)"},
		{name: "a smaller fork", cp: open(fork, 1), prove: proveFrom(l), want: "a fork"},
		{name: "a proof that cannot be had", cp: open(l, 6), latest: true,
			prove: func(context.Context, uint64, uint64) ([][]byte, error) { return nil, errors.New("server down") },
			want:  "proving size 9 consistent with size 20: server down", then: 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := RememberDir(t.TempDir())
			if err := CheckRemembered(ctx, dir, open(l, 2), true, nil); err != nil {
				t.Fatal(err) // nothing remembered yet: remembered, no proof asked
			}
			err := CheckRemembered(ctx, dir, tc.cp, tc.latest, tc.prove)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("err = %v, want none", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err = %v, want one saying %q", err, tc.want)
			}
			var ie *InconsistentError
			if errors.As(err, &ie) != (tc.then == 0) || (ie != nil && ie.Rollback != tc.rollback) {
				t.Errorf("err = %#v: want an InconsistentError: %v, rollback %v", err, tc.then == 0, tc.rollback)
			}
			if ie != nil && trail.ErrorCode(err) != trail.ECONFLICT {
				t.Errorf("code %s, want %s", trail.ErrorCode(err), trail.ECONFLICT)
			}
			want := uint64(9)
			if tc.then != 0 {
				want = tc.then
			}
			b, err := dir.Load(ctx, Origin(testKeyName, testTenant))
			if err != nil {
				t.Fatal(err)
			}
			if got, err := ParseUnverified(b); err != nil || got.Size != want {
				t.Errorf("remembered %v (%v), want size %d", got, err, want)
			}
		})
	}
}

// TestRememberDir: a file per origin, named so that no origin escapes the
// directory, holding the signed note; no temporary file is left.
func TestRememberDir(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	dir := RememberDir(filepath.Join(root, "trail", "checkpoints"))
	if b, err := dir.Load(ctx, "a/b"); b != nil || err != nil {
		t.Fatalf("Load of nothing = %q, %v", b, err)
	}
	for origin, file := range map[string]string{
		"audit.example.com/trail/acme": "audit.example.com%2Ftrail%2Facme",
		"../x":                         "%2E.%2Fx",
		"a b+c":                        "a%20b%2Bc",
	} {
		if err := dir.Save(ctx, origin, []byte(origin+"\n")); err != nil {
			t.Fatal(err)
		}
		if err := dir.Save(ctx, origin, []byte(origin+"\n2\n")); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(string(dir), file))
		if err != nil || !bytes.Equal(b, []byte(origin+"\n2\n")) {
			t.Errorf("file %s: %q, %v", file, b, err)
		}
		if b, err := dir.Load(ctx, origin); !bytes.Equal(b, []byte(origin+"\n2\n")) || err != nil {
			t.Errorf("Load(%q) = %q, %v", origin, b, err)
		}
	}
	names, _ := os.ReadDir(string(dir))
	if len(names) != 3 {
		t.Errorf("files %v, want 3", names)
	}
	if fi, err := os.Stat(string(dir)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v, %v, want 0700", fi.Mode(), err)
	}
}
