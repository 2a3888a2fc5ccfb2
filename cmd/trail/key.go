package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/cobra"
	"github.com/trailaudit/trail/tlog"
)

// keyFile is the signing key's name in the data directory.
const keyFile = "log.key"

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

NAME begins the origin of every checkpoint the key signs (NAME/TENANT); use
the service's host name. Trail serve and ingest make a key on first use when
there is none, so keygen is for choosing the name, or for a key kept
elsewhere (--signing-key FILE).`,
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
			fmt.Fprintf(e.stderr, "wrote the signing key to %s; its verifier key:\n", path)
			fmt.Fprintln(e.stdout, s)
			return nil
		},
	}
	cmd.Flags().StringVar(&sf.data, "data", "trail-data", "data directory the key goes into")
	cmd.Flags().StringVar(&name, "name", defaultKeyName(), "key name, which begins every checkpoint origin")
	cmd.Flags().StringVar(&sf.signingKey, "signing-key", "", "the signing key's file, as other commands read it (default DATA/log.key)")
	cmd.Flags().StringVar(&out, "out", "", "file to write the key to (default: --signing-key)")
	return cmd
}

func newVerifierCmd(e *env) *cobra.Command {
	var sf storeFlags
	cmd := &cobra.Command{
		Use:   "verifier",
		Short: "Print the verifier key of the signing key",
		Long: `Verifier prints the verifier key of the key that signs the log's checkpoints
(DATA/log.key, or --signing-key FILE): what auditors need to check
checkpoints, proofs and bundles. It is public; the signing key is not.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := loadSigner(sf.keyPath(e), false, e.stderr)
			if err != nil {
				return usageError("%v", err)
			}
			fmt.Fprintln(e.stdout, s.VerifierKey())
			return nil
		},
	}
	cmd.Flags().StringVar(&sf.data, "data", "trail-data", "data directory holding log.key")
	cmd.Flags().StringVar(&sf.signingKey, "signing-key", "", "file of the signing key (default DATA/log.key)")
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
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return "", usageError("%s exists: a log's key is never replaced (a new key would fork its history)", path)
	}
	if err != nil {
		return "", err
	}
	if _, err := fmt.Fprintln(f, skey); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", err
	}
	return vkey, f.Close()
}

// loadSigner reads the signing key at path. When there is none and create
// is set, it makes one (first start) and says so on stderr with the
// verifier key.
func loadSigner(path string, create bool, stderr io.Writer) (*tlog.Signer, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		vkey, cerr := createKey(path, defaultKeyName())
		if cerr != nil {
			return nil, cerr
		}
		fmt.Fprintf(stderr, "trail: made a signing key in %s (keep it; back it up); verifier key: %s\n", path, vkey)
		b, err = os.ReadFile(path)
	}
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

// parseVerifier reads a verifier key given on the command line, or from the
// file it names.
func parseVerifier(e *env, given string) (*tlog.Verifier, error) {
	if b, err := os.ReadFile(e.path(given)); err == nil {
		given = string(b)
	}
	v, err := tlog.NewVerifier(given)
	if err != nil {
		return nil, usageError("--key: %v", err)
	}
	return v, nil
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
