package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/erasure"
	"github.com/trailaudit/trail/redact"
	"github.com/trailaudit/trail/sqlite"
	"github.com/trailaudit/trail/tlog"
)

// storeFlags choose where events live: the embedded SQLite database in a
// data directory (the default), or PostgreSQL; and the key that signs the
// log's checkpoints.
type storeFlags struct {
	data       string
	postgres   string
	signingKey string

	cat       *catalog.Catalog // the catalog of the store opened last, with its saved custom actions
	sealer    *erasure.Sealer  // seals personal data on append and opens it on read (see reader)
	closeKeys func() error     // closes the subject key file, when there is one
}

func (f *storeFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.data, "data", "trail-data", "data directory of the embedded SQLite database and the signing key")
	cmd.Flags().StringVar(&f.postgres, "postgres", "", "PostgreSQL connection URL (instead of --data)")
	cmd.Flags().StringVar(&f.signingKey, "signing-key", "", "file of the key that signs checkpoints (default DATA/log.key)")
}

// keyPath returns the signing key's file.
func (f *storeFlags) keyPath(e *env) string {
	if f.signingKey != "" {
		return e.path(f.signingKey)
	}
	return filepath.Join(e.path(f.data), keyFile)
}

// newValidator is the validator every store of the CLI uses: the catalog
// given and the default redactor.
func newValidator(cat *catalog.Catalog) *trail.Validator {
	return &trail.Validator{Actions: cat, Redactor: redact.New(redact.Options{}), Limits: trail.DefaultLimits()}
}

// open opens the chosen store read-only: it can be queried, proved and
// verified, but not appended to, and needs no key.
func (f *storeFlags) open(ctx context.Context, e *env) (trail.Store, error) {
	return f.openWith(ctx, e, nil)
}

// openWriter opens the chosen store to append, signing with the key at
// keyPath, which it generates on first use.
func (f *storeFlags) openWriter(ctx context.Context, e *env) (trail.Store, error) {
	signer, err := loadSigner(f.keyPath(e), true, e.stderr)
	if err != nil {
		return nil, err
	}
	return f.openWith(ctx, e, signer)
}

// openWith opens the chosen store with a catalog holding the built-in
// actions and the custom ones the store keeps (f.cat).
//
// Personal data is sealed under per-subject keys (package erasure): kept in
// PostgreSQL itself, or for SQLite in DATA/subject-keys.db beside the
// events. The store returned gives sealed events; f.reader opens them.
func (f *storeFlags) openWith(ctx context.Context, e *env, signer *tlog.Signer) (trail.Store, error) {
	f.cat = catalog.Default()
	v := newValidator(f.cat)
	var store trail.Store
	var keys trail.SubjectKeyStore
	var err error
	f.closeKeys = func() error { return nil }
	if f.postgres != "" {
		store, err = openPostgres(ctx, f.postgres, v, signer)
		if err == nil {
			keys = store.(trail.SubjectKeyStore)
		}
	} else {
		var kf *erasure.KeyFile
		if kf, err = erasure.OpenKeyFile(ctx, filepath.Join(e.path(f.data), "subject-keys.db")); err != nil {
			return nil, err
		}
		keys, f.closeKeys = kf, kf.Close
		if store, err = sqlite.Open(ctx, filepath.Join(e.path(f.data), "trail.db"), sqlite.Options{Validator: v, Signer: signer}); err != nil {
			kf.Close()
		}
	}
	if err != nil {
		return nil, err
	}
	f.sealer = erasure.NewSealer(keys, f.cat)
	v.Sealer = f.sealer // before any append
	if as, ok := store.(trail.ActionStore); ok {
		saved, err := as.SavedActions(ctx)
		if err == nil {
			for _, a := range saved {
				if err = f.cat.Register(*a); err != nil {
					err = fmt.Errorf("saved custom action %s: %w", a.Name, err)
					break
				}
			}
		}
		if err != nil {
			store.Close()
			return nil, err
		}
	}
	return store, nil
}

// reader returns store reading events with their personal data opened
// (or reading as erased): what commands show people.
func (f *storeFlags) reader(store trail.Store) trail.Store {
	if f.sealer == nil {
		return store
	}
	return erasure.Wrap(store, f.sealer)
}

// verifier returns the verifier of the log's checkpoints: the key given
// (a verifier key, or a file holding one), else the one of the signing key.
func (f *storeFlags) verifier(e *env, given string) (*tlog.Verifier, error) {
	if given != "" {
		return parseVerifier(e, given)
	}
	s, err := loadSigner(f.keyPath(e), false, e.stderr)
	if err != nil {
		return nil, usageError("no verifier key: pass --key VERIFIER (%v)", err)
	}
	return s.Verifier(), nil
}
