package tlog

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/trailaudit/trail"
)

// A client that reads a log remembers the latest checkpoint it has seen of
// each origin, as Go's checksum-database client keeps its latest note, and
// refuses one that is not consistent with it: a log rolled back to an
// earlier size, or forked (rewritten and signed again, even with its own
// key), is then found by anyone who ever read it. CheckRemembered is that
// decision, for the Go client and trail verify alike.

// Remembered keeps, per origin, the latest checkpoint a client has seen.
// It holds only checkpoints that verified when CheckRemembered saved them:
// it is the client's own memory, trusted as such.
type Remembered interface {
	// Load returns the signed checkpoint remembered for origin, or nil (and
	// no error) when none is.
	Load(ctx context.Context, origin string) ([]byte, error)
	// Save remembers signed as origin's latest, replacing what was.
	Save(ctx context.Context, origin string, signed []byte) error
}

// RememberDir keeps each origin's checkpoint in a file of its own in the
// directory it names (made, mode 0700, on the first Save): the signed note
// verbatim, in a file named after the origin (bytes other than letters,
// digits, '.', '_' and '-' written as %XX), replaced atomically (a
// temporary file, synced, renamed over it).
type RememberDir string

var _ Remembered = RememberDir("")

// DefaultRememberDir returns where clients remember checkpoints unless told
// otherwise: trail/checkpoints in the user's configuration directory
// (os.UserConfigDir: $XDG_CONFIG_HOME or ~/.config on Linux). A cache
// directory would do worse: clearing it forgets what a rollback is found
// against.
func DefaultRememberDir() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("tlog: no directory to remember checkpoints in: %w", err)
	}
	return filepath.Join(dir, "trail", "checkpoints"), nil
}

// file returns the path of origin's file.
func (d RememberDir) file(origin string) string {
	var b strings.Builder
	for i := 0; i < len(origin); i++ {
		c := origin[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.' && i > 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return filepath.Join(string(d), b.String())
}

// Load reads origin's file; none is no checkpoint.
func (d RememberDir) Load(ctx context.Context, origin string) ([]byte, error) {
	b, err := os.ReadFile(d.file(origin))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tlog: the remembered checkpoint of %s: %w", origin, err)
	}
	return b, nil
}

// Save writes origin's file atomically.
func (d RememberDir) Save(ctx context.Context, origin string, signed []byte) error {
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return fmt.Errorf("tlog: remembering the checkpoint of %s: %w", origin, err)
	}
	f, err := os.CreateTemp(string(d), ".tmp-*")
	if err != nil {
		return fmt.Errorf("tlog: remembering the checkpoint of %s: %w", origin, err)
	}
	_, err = f.Write(signed)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), d.file(origin))
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("tlog: remembering the checkpoint of %s: %w", origin, err)
	}
	if dir, err := os.Open(string(d)); err == nil { // make the rename durable
		dir.Sync()
		dir.Close()
	}
	return nil
}

// ProveFunc returns the proof that the log's tree of size to extends its
// tree of size from: from the API (GET /v1/proofs/consistency) or a store
// (ConsistencyProof). It is checked, never trusted.
type ProveFunc func(ctx context.Context, from, to uint64) ([][]byte, error)

// InconsistentError reports a checkpoint that is not consistent with the
// one remembered of its origin: a rollback (the log's latest is smaller)
// or a fork (another tree under the same origin and key).
type InconsistentError struct {
	Origin     string
	Remembered *Checkpoint // what the client saw before
	Got        *Checkpoint // what it was shown now
	Rollback   bool        // Got claims to be the latest and is smaller than Remembered
	Err        error       // the failed consistency proof, if one was tried
}

func (e *InconsistentError) Error() string {
	what := "it is not consistent with the one remembered (a fork: the log was rewritten)"
	if e.Rollback {
		what = "it is smaller than the one remembered (a rollback)"
	}
	s := fmt.Sprintf("%s: the checkpoint of size %d, root %s: %s, of size %d, root %s",
		e.Origin, e.Got.Size, rootText(e.Got.Root), what, e.Remembered.Size, rootText(e.Remembered.Root))
	if e.Err != nil {
		s += " (the consistency proof between them does not verify)"
	}
	return s
}

func (e *InconsistentError) Unwrap() error { return e.Err }

func rootText(root []byte) string { return base64.StdEncoding.EncodeToString(root) }

// CheckRemembered holds cp, a checkpoint that verified, to the checkpoint
// m remembers of its origin, and remembers cp when it is larger:
//
//   - none remembered: cp is remembered;
//   - the same size: the roots must match;
//   - cp larger: prove must give a consistency proof from the remembered
//     size that verifies, and cp replaces it;
//   - cp smaller: when latest says cp is what the log claims as its latest,
//     it is a rollback, refused whatever a proof says (the log once was
//     larger); otherwise (an older checkpoint, a bundle's) it must be a
//     prefix of the remembered one, proven by prove, and is not
//     remembered.
//
// A checkpoint that is not consistent is an ECONFLICT error wrapping an
// *InconsistentError naming both sizes and roots; nothing is remembered
// then. A proof prove cannot give is its error (with the sizes): it
// cannot be checked now, which is not proof of a fork.
func CheckRemembered(ctx context.Context, m Remembered, cp *Checkpoint, latest bool, prove ProveFunc) error {
	signed, err := m.Load(ctx, cp.Origin)
	if err != nil {
		return err
	}
	if signed == nil {
		return m.Save(ctx, cp.Origin, cp.Note)
	}
	old, err := ParseUnverified(signed)
	if err != nil || old.Origin != cp.Origin {
		return trail.Errorf(trail.EINTERNAL, "tlog: the remembered checkpoint of %s does not parse as one of it (fix or remove it): %v", cp.Origin, err)
	}
	bad := func(rollback bool, err error) error {
		return &trail.Error{Code: trail.ECONFLICT, Message: "tlog: not consistent with the checkpoint remembered",
			Err: &InconsistentError{Origin: cp.Origin, Remembered: old, Got: cp, Rollback: rollback, Err: err}}
	}
	switch {
	case cp.Size == old.Size:
		if !bytes.Equal(cp.Root, old.Root) {
			return bad(false, nil)
		}
		return nil
	case cp.Size < old.Size && latest:
		return bad(true, nil)
	}
	from, to, fromRoot, toRoot := old.Size, cp.Size, old.Root, cp.Root
	if cp.Size < old.Size {
		from, to, fromRoot, toRoot = cp.Size, old.Size, cp.Root, old.Root
	}
	if from > 0 {
		p, err := prove(ctx, from, to)
		if err != nil {
			return fmt.Errorf("tlog: %s: proving size %d consistent with size %d: %w", cp.Origin, from, to, err)
		}
		if err := VerifyConsistency(from, to, p, fromRoot, toRoot); err != nil {
			return bad(false, err)
		}
	}
	if cp.Size < old.Size {
		return nil
	}
	return m.Save(ctx, cp.Origin, cp.Note)
}
