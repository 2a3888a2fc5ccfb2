package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/cobra"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/internal/ledger"
	"github.com/trailaudit/trail/tlog"
)

// keyFile is the signing key's name in the data directory.
const keyFile = "log.key"

// previousSuffix names, beside the signing key's file, the key a rotation
// moves the logs from, while it is under way (trail key rotate).
const previousSuffix = ".previous"

func newKeygenCmd(e *env) *cobra.Command {
	var (
		sf   storeFlags
		name string
		out  string
	)
	cmd := &cobra.Command{
		Use:   "keygen [--name NAME] [--out FILE]",
		Short: "Make a key to sign the log's checkpoints",
		Long: `Keygen makes an Ed25519 key that signs the log's checkpoints, writes it to FILE
(default DATA/log.key; mode 0600; an existing file is never overwritten) and
prints its verifier key: give that to auditors, who check checkpoints,
proofs and exports with it.

NAME begins the origin of every checkpoint the key signs (NAME/trail/TENANT,
a URL without its scheme, as C2SP checkpoints want it); use the service's
host name, e.g. audit.example.com (the default is this machine's). Each
checkpoint is signed under its origin: a witness is given the key of that
name, which trail verifier --tenant TENANT prints. Trail serve and ingest make
a key on first use when there is none, so keygen is for choosing the name, or
for a key kept elsewhere (--signing-key FILE).`,
		Example: `  trail keygen --name audit.example.com
  trail keygen --name audit.example.com --out /etc/trail/log.key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			path := sf.keyPath(e)
			if out != "" {
				path = e.path(out)
			}
			s, err := createKey(path, name)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "wrote the signing key to %s; a tenant's log has the origin %s; its verifier key:\n", path, tlog.Origin(name, "TENANT"))
			if !strings.Contains(name, ".") {
				fmt.Fprintf(e.stderr, "note: the key name %s is not a host name, so origins are not URLs; a name like --name audit.example.com makes them so\n", name)
			}
			fmt.Fprintln(e.stdout, s)
			return nil
		},
	}
	cmd.Flags().StringVar(&sf.data, "data", "trail-data", "data directory the key goes into")
	cmd.Flags().StringVar(&name, "name", defaultKeyName(), "key name, which begins every checkpoint origin: the service's host name, e.g. audit.example.com")
	cmd.Flags().StringVar(&sf.signingKey, "signing-key", "", "the signing key's file, as other commands read it (default DATA/log.key)")
	cmd.Flags().StringVar(&out, "out", "", "file to write the key to (default: --signing-key)")
	return cmd
}

func newVerifierCmd(e *env) *cobra.Command {
	var (
		sf             storeFlags
		tenant, origin string
	)
	cmd := &cobra.Command{
		Use:   "verifier [--tenant TENANT | --origin ORIGIN]",
		Short: "Print the verifier key of the signing key",
		Long: `Verifier prints the verifier key of the key that signs the log's checkpoints
(DATA/log.key, or --signing-key FILE): what auditors need to check
checkpoints, proofs and bundles. It is public; the signing key is not.

With --tenant or --origin it prints the origin of that log, then the same key
named by the origin: what a witness is given for the log (it looks a log's
keys up by its origin, and checks the signature under that name). A tenant's
log has the origin NAME/trail/TENANT; one started before Trail used that form
keeps NAME/TENANT (GET /v1/checkpoint shows a log's): pass it as --origin.`,
		Example: `  trail verifier
  trail verifier --tenant _root     # what witnesses are given: the root log
  trail verifier --tenant acme
  trail verifier --origin audit.example.com/acme`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if tenant != "" && origin != "" {
				return usageError("--tenant and --origin: pass one")
			}
			s, err := loadSigner(sf.keyPath(e), false, e.stderr)
			if err != nil {
				return usageError("%v", err)
			}
			if tenant == "" && origin == "" {
				fmt.Fprintln(e.stdout, s.VerifierKey())
				return nil
			}
			if tenant != "" {
				if m := trail.CheckLog(tenant); m != "" {
					return usageError("--tenant: %s", m)
				}
				origin = tlog.Origin(s.Verifier().Name(), tenant)
			}
			vkey, err := tlog.OriginKey(s.VerifierKey(), origin)
			if err != nil {
				return usageError("--origin: %s", trail.ErrorMessage(err))
			}
			fmt.Fprintf(e.stdout, "%s\n%s\n", origin, vkey)
			return nil
		},
	}
	cmd.Flags().StringVar(&sf.data, "data", "trail-data", "data directory holding log.key")
	cmd.Flags().StringVar(&sf.signingKey, "signing-key", "", "file of the signing key (default DATA/log.key)")
	cmd.Flags().StringVar(&tenant, "tenant", "", "print the origin of the tenant's new log and the key named by it (_root: the root log, the one witnesses cosign)")
	cmd.Flags().StringVar(&origin, "origin", "", "print the key named by ORIGIN (a log's origin), for its witnesses")
	return cmd
}

// createKey writes a new signing key to path (never over an existing file)
// and returns its verifier key.
func createKey(path, name string) (string, error) {
	skey, vkey, err := tlog.GenerateKey(name)
	if err != nil {
		return "", usageError("--name: %v", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	return vkey, writeKeyFile(path, skey+"\n")
}

// writeKeyFile writes a new file of a signing key, mode 0600, and syncs
// it. It never writes over a file.
func writeKeyFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return usageError("%s exists: a log's key is never replaced (a new key would fork its history; trail key rotate moves logs to a new key)", path)
	}
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// loadSigner reads the signing key at path. When there is none and create
// is set, it makes one (first start) and says so on stderr with the
// verifier key. While a rotation is under way (a key in path.previous
// other than path's), the signer is rotating: every checkpoint it signs
// is signed by both keys.
func loadSigner(path string, create bool, stderr io.Writer) (*tlog.Signer, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) && create {
		vkey, cerr := createKey(path, defaultKeyName())
		if cerr != nil {
			return nil, cerr
		}
		fmt.Fprintf(stderr, "trail: made a signing key in %s (keep it; back it up); verifier key: %s\n", path, vkey)
	}
	s, err := readSigner(path)
	if err != nil {
		return nil, err
	}
	prev, err := readSigner(path + previousSuffix)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return s, nil
	case err != nil:
		return nil, err
	case prev.VerifierKey() == s.VerifierKey():
		return s, nil // a rotation that stopped before it wrote the new key
	}
	r, err := s.Rotating(prev)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path+previousSuffix, err)
	}
	return r, nil
}

// readSigner reads one signing key file, which only its owner may read.
func readSigner(path string) (*tlog.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("signing key %s: mode %v lets others read it; chmod 600 it", path, fi.Mode().Perm())
	}
	s, err := tlog.NewSigner(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// defaultKeyName is the host name (as far as a key name allows it), or
// "trail".
func defaultKeyName() string {
	h, _ := os.Hostname()
	h = regexp.MustCompile(`[^A-Za-z0-9.-]+`).ReplaceAllString(strings.ToLower(h), "-")
	if h == "" {
		return "trail"
	}
	return h
}

// trustHelp says, in the help of the commands that check checkpoints,
// which keys they trust.
const trustHelp = `

The verifier keys it trusts come from outside the data directory: --key (a
key, or a file of keys), --trusted-keys FILE (one key per line, # comments)
or TRAIL_VERIFIER_KEY. Without them it trusts the signing key's own
(DATA/log.key) and says so: a key written there by whoever re-signed the log
would pass. A log whose key was rotated (trail key rotate) is followed from
the trusted key to its others through the checkpoints signed by both.`

// trustFlags choose the verifier keys a checking command trusts: given
// from outside the data directory (--key, --trusted-keys, or
// TRAIL_VERIFIER_KEY), else, with a warning, the signing key's own.
type trustFlags struct {
	key  string // a verifier key, or a file of them
	file string // a file of verifier keys
}

func (t *trustFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&t.key, "key", "", "verifier key to trust, or a file of them (default $TRAIL_VERIFIER_KEY, else the signing key's)")
	cmd.Flags().StringVar(&t.file, "trusted-keys", "", "file of verifier keys to trust, one per line (# starts a comment)")
}

// trust is the keys a command trusts and where they came from.
type trust struct {
	v    *tlog.Verifier
	from string // the flag, file or variable; "" for the signing key's
	path string // the signing key's file, when from is ""
}

// String says which keys are trusted and where they came from; for the
// signing key's own, what that does not prove.
func (t *trust) String() string {
	ids := make([]string, 0, len(t.v.Keys()))
	for _, k := range t.v.Keys() {
		ids = append(ids, tlog.KeyID(k))
	}
	keys := "key " + strings.Join(ids, ", ")
	if len(ids) > 1 {
		keys = "keys " + strings.Join(ids, ", ")
	}
	if t.from == "" {
		return fmt.Sprintf("trusting %s, found beside the data (%s): a key written there by someone who re-signed the log would pass; pass --key", keys, t.path)
	}
	return fmt.Sprintf("trusting %s from %s", keys, t.from)
}

// resolve returns the keys to trust: those of --key and --trusted-keys;
// else those of TRAIL_VERIFIER_KEY; else, when sf is not nil, the signing
// key's (and its previous key's, while it rotates). A key or file that
// does not parse is a usage error naming where it came from, and so is
// finding no key at all.
func (t *trustFlags) resolve(e *env, sf *storeFlags) (*trust, error) {
	var text, from []string
	add := func(given, name string, fileOnly bool) error {
		b, err := os.ReadFile(e.path(given))
		switch {
		case err == nil:
			text, from = append(text, string(b)), append(from, name+" "+given)
		case fileOnly:
			return usageError("%s: %v", name, err)
		default:
			text, from = append(text, given), append(from, name)
		}
		return nil
	}
	if t.key != "" {
		if err := add(t.key, "--key", false); err != nil {
			return nil, err
		}
	}
	if t.file != "" {
		if err := add(t.file, "--trusted-keys", true); err != nil {
			return nil, err
		}
	}
	if env, ok := e.lookupEnv("TRAIL_VERIFIER_KEY"); ok && env != "" && len(text) == 0 {
		if err := add(env, "TRAIL_VERIFIER_KEY", false); err != nil {
			return nil, err
		}
	}
	if len(text) > 0 {
		v, err := tlog.ParseVerifiers(strings.Join(text, "\n"))
		if err != nil {
			return nil, usageError("%s: %s", strings.Join(from, " and "), trail.ErrorMessage(err))
		}
		return &trust{v: v, from: strings.Join(from, " and ")}, nil
	}
	if sf == nil {
		return nil, usageError("no verifier key: pass --key VERIFIER, --trusted-keys FILE or set TRAIL_VERIFIER_KEY")
	}
	path := sf.keyPath(e)
	s, err := loadSigner(path, false, e.stderr)
	if err != nil {
		return nil, usageError("no verifier key: pass --key VERIFIER (%v)", err)
	}
	return &trust{v: s.Verifier(), path: path}, nil
}

func newKeyCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Rotate the key that signs the log's checkpoints",
		Long: `Key manages the key that signs the log's checkpoints (trail keygen makes the
first one; API keys are trail keys).`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newKeyRotateCmd(e))
	return cmd
}

func newKeyRotateCmd(e *env) *cobra.Command {
	var sf storeFlags
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Move every tenant's log to a new signing key",
		Long: `Rotate makes a new signing key of the same name and moves every tenant's log
to it. It keeps the old key in FILE.previous (FILE is the signing key's file,
default DATA/log.key) and writes the new key to FILE; then it records
signing_key_rotated in each tenant's log, whose checkpoint is signed by both
keys and names both: a verifier that trusts either key follows the log from
one to the other, and trail verify prints the chain. Last, it deletes
FILE.previous: later checkpoints are signed by the new key alone, and one
signed by the old key is damage.

Stop every trail serve and trail ingest of the store first, and give them the
new key before they start again. A rotation interrupted is finished by
running rotate again; until then, the stores sign with both keys.

It prints the new verifier key: give it to the auditors (those who trust the
old key need not change anything).`,
		Example: `  trail key rotate
  trail key rotate --postgres "$TRAIL_POSTGRES" --signing-key /etc/trail/log.key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return rotateKey(cmd.Context(), e, &sf)
		},
	}
	sf.register(cmd)
	return cmd
}

// rotateKey rotates the signing key at sf's key path, in steps that each
// leave the files in a state the next run finishes from: the old key
// copied to FILE.previous; the new key written to FILE (through a rename);
// each tenant's rotation record appended by a store that signs with both
// (loadSigner makes it rotating); FILE.previous deleted.
func rotateKey(ctx context.Context, e *env, sf *storeFlags) error {
	path := sf.keyPath(e)
	prevPath := path + previousSuffix
	cur, err := readSigner(path)
	if err != nil {
		return usageError("%v", err)
	}
	prev, err := readSigner(prevPath)
	if errors.Is(err, fs.ErrNotExist) {
		b, rerr := os.ReadFile(path)
		if rerr != nil {
			return usageError("%v", rerr)
		}
		if err = writeKeyFile(prevPath, string(b)); err == nil {
			prev, err = cur, syncDir(filepath.Dir(path))
		}
	}
	if err != nil {
		return &exitError{code: exitFound, err: err}
	}
	if prev.VerifierKey() == cur.VerifierKey() {
		if err := replaceKey(path, cur.Verifier().Name()); err != nil {
			return &exitError{code: exitFound, err: err}
		}
	}
	d, err := sf.open(ctx, e, true)
	if err != nil {
		return &exitError{code: exitFound, err: err}
	}
	defer d.Close()
	old, next := d.Signer.Previous(), d.Signer
	if old == nil {
		return &exitError{code: exitFound, err: fmt.Errorf("%s: the rotation lost its previous key", prevPath)}
	}
	var done []string
	for _, tenant := range d.Signer.Unrotated() {
		res, err := d.Writer.AppendOwn(ctx, tenant, ledger.Records(&trail.Event{Action: catalog.SigningKeyRotated, Actor: cliActor(),
			Context: map[string]any{"previous_verifier_key": old.VerifierKey(), "verifier_key": next.VerifierKey()}}))
		if err != nil {
			return &exitError{code: exitFound, err: fmt.Errorf("tenant %s: %w (run trail key rotate again to finish)", tenant, err)}
		}
		done = append(done, fmt.Sprintf("%s at size %d", tenant, res.Events[0].Seq))
	}
	if err := d.Close(); err != nil {
		return &exitError{code: exitFound, err: err}
	}
	if err := os.Remove(prevPath); err != nil {
		return &exitError{code: exitFound, err: err}
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return &exitError{code: exitFound, err: err}
	}
	if len(done) == 0 {
		done = []string{"none waited"}
	}
	fmt.Fprintf(e.stderr, "rotated from %s to %s (%s); the rotation checkpoints are signed by both, the old key is deleted; the new verifier key:\n",
		tlog.KeyID(old.VerifierKey()), tlog.KeyID(next.VerifierKey()), strings.Join(done, ", "))
	fmt.Fprintln(e.stdout, next.VerifierKey())
	return nil
}

// replaceKey writes a new signing key named name over the one at path,
// through a file beside it renamed into place, so that path always holds a
// whole key.
func replaceKey(path, name string) error {
	tmp := path + ".new"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if _, err := createKey(tmp, name); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// syncDir makes the directory's entries (a file created, renamed or
// removed) durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
