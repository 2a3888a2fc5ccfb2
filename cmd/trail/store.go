package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/erasure"
	"github.com/trailaudit/trail/internal/ledger"
	"github.com/trailaudit/trail/memory"
	"github.com/trailaudit/trail/postgres"
	"github.com/trailaudit/trail/redact"
	"github.com/trailaudit/trail/sqlite"
	"github.com/trailaudit/trail/tlog"
	"github.com/trailaudit/trail/witness"
)

// storeFlags choose where events live: the embedded SQLite database in a
// data directory (the default), or PostgreSQL; and the key that signs the
// log's checkpoints.
type storeFlags struct {
	data       string
	postgres   string
	signingKey string
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
// given, the default redactor, and sealer for personal data.
func newValidator(cat *catalog.Catalog, sealer trail.Sealer) *trail.Validator {
	return &trail.Validator{Actions: cat, Redactor: redact.New(redact.Options{}), Sealer: sealer, Limits: trail.DefaultLimits()}
}

// backend is what each store package's DB is: the log, Trail's own path
// into it, and the API keys, legal holds, custom actions, sinks, rule files and
// cursors it keeps.
type backend interface {
	trail.Store
	ledger.Writer
	trail.KeyStore
	trail.HoldStore
	trail.ActionStore
	trail.TenantLister
	// MigrationNotes says what the schema migrations its open ran did.
	MigrationNotes() []string
	trail.SessionStore
	trail.SinkStore
	trail.CursorStore
	trail.RuleStore
	trail.CosignatureStore
}

var (
	_ backend = (*sqlite.DB)(nil)
	_ backend = (*postgres.DB)(nil)
)

// deployment is one opened Trail: a store and everything wired on it,
// opened once (storeFlags.open) and closed once (Close). Every command
// takes what it needs from it; nothing discovers a capability at run time.
type deployment struct {
	Store   trail.Store        // the log as stored: personal data sealed
	Reader  trail.Store        // Store with personal data opened (or reading as erased): what people are shown
	Writer  ledger.Writer      // Trail's own records: holds, erasures, prunes
	Keys    trail.KeyStore     // API keys
	Holds   trail.HoldStore    // legal holds
	Actions trail.ActionStore  // saved custom actions
	Tenants trail.TenantLister // the tenants' logs
	Sinks   trail.SinkStore    // the sinks' configurations
	Rules   trail.RuleStore    // tenants' own detection rule files
	Cursors trail.CursorStore  // consumers' positions in the logs (sinks, detection rule sets)
	Sealer  *erasure.Sealer    // seals on append, opens on read, erases
	Catalog *catalog.Catalog   // the built-in actions, and each tenant's saved ones in its view (For)
	Signer  *tlog.Signer       // signs checkpoints; nil when opened read-only
	Witness witness.Store      // the log and the witnesses' cosignatures of its checkpoints

	Sessions trail.SessionStore // the web UI's sessions

	// WAL is what SQLite's checkpointer did to the write-ahead log
	// (exported on serve's /metrics); nil for PostgreSQL.
	WAL func() sqlite.WALStats

	// Elector elects, among the processes sharing the store, the one
	// that runs the singleton work (serve: the root log and witnessing,
	// the rules, the sinks), timed by o (SQLite's takes Retry and Logger;
	// zero fields: the defaults).
	Elector func(o postgres.ElectorOptions) trail.Elector

	closers []func() error // in the order to close
}

// Close closes the store, then the subject keys. Closing again does
// nothing.
func (d *deployment) Close() error {
	var errs []error
	for _, c := range d.closers {
		errs = append(errs, c())
	}
	d.closers = nil
	return errors.Join(errs...)
}

// access is what a command does with the store.
type access int

const (
	// readLog reads alone (query, verify, prove, checkpoint, export):
	// nothing is opened for writing, so a read-only copy of the data
	// directory (a mounted backup) will do, and no signing key is needed.
	readLog access = iota
	// manageKeys writes API keys and appends nothing: no signing key.
	manageKeys
	// appendLog appends, signing with the key at keyPath (made on first
	// use).
	appendLog
)

// open opens the chosen store: to append when write (appendLog), else
// read-only (readLog).
func (f *storeFlags) open(ctx context.Context, e *env, write bool) (*deployment, error) {
	if write {
		return f.openFor(ctx, e, appendLog)
	}
	return f.openFor(ctx, e, readLog)
}

// openFor opens the chosen store for a.
//
// The wiring, in order: the subject keys (kept in PostgreSQL itself, or for
// SQLite in DATA/subject-keys.db beside the events); the sealer over them;
// the validator with the sealer; the store; then the custom actions the
// store saved, registered in the catalog before anything is appended.
func (f *storeFlags) openFor(ctx context.Context, e *env, a access) (*deployment, error) {
	d := &deployment{Catalog: catalog.Default()}
	if a == appendLog {
		var err error
		if d.Signer, err = loadSigner(f.keyPath(e), true, e.stderr); err != nil {
			return nil, err
		}
	}
	if err := f.wire(ctx, e, d, a); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

func (f *storeFlags) wire(ctx context.Context, e *env, d *deployment, a access) error {
	var keys trail.SubjectKeyStore
	var db backend
	var notes []string // what the migrations run by these opens did
	if f.postgres != "" {
		pk, err := postgres.OpenSubjectKeys(ctx, f.postgres)
		if err != nil {
			return err
		}
		notes = pk.MigrationNotes() // the first open migrates
		keys, d.closers = pk, append(d.closers, pk.Close)
		d.Sealer = erasure.NewSealer(keys, d.Catalog)
		pg, err := postgres.Open(ctx, f.postgres, postgres.Options{Validator: newValidator(d.Catalog, d.Sealer), Signer: d.Signer})
		if err != nil {
			return err
		}
		db = pg
		d.Elector = func(o postgres.ElectorOptions) trail.Elector { return pg.Elector(o) }
	} else {
		dir := e.path(f.data)
		if a == readLog {
			// A read opens nothing for writing and so creates nothing: a
			// directory with no database is a mistake (a typo in --data),
			// said as such rather than as an empty log.
			if _, err := os.Stat(filepath.Join(dir, "trail.db")); errors.Is(err, fs.ErrNotExist) {
				return &noDataError{dir: f.data}
			}
		}
		kf, err := openSubjectKeys(ctx, e, filepath.Join(dir, "subject-keys.db"), a == readLog)
		if err != nil {
			return err
		}
		keys, d.closers = kf, append(d.closers, kf.Close)
		d.Sealer = erasure.NewSealer(keys, d.Catalog)
		lite, err := sqlite.Open(ctx, filepath.Join(dir, "trail.db"), sqlite.Options{Validator: newValidator(d.Catalog, d.Sealer), Signer: d.Signer,
			ReadOnly: a == readLog})
		if err != nil {
			return err
		}
		db = lite
		d.Elector = func(o postgres.ElectorOptions) trail.Elector { return lite.Elector(o.Retry, o.Logger) }
		d.WAL = lite.WALStats
	}
	// The store closes before the keys its appends seal with.
	d.closers = append([]func() error{db.Close}, d.closers...)
	d.Store, d.Writer, d.Keys, d.Holds, d.Actions, d.Tenants, d.Sinks, d.Cursors = db, db, db, db, db, db, db, db
	d.Rules, d.Sessions = db, db
	d.Witness = db
	d.Reader = erasure.Wrap(db, d.Sealer)
	// What the migrations these opens ran did, said once.
	for _, note := range append(notes, db.MigrationNotes()...) {
		fmt.Fprintf(e.stderr, "trail: migration: %s\n", note)
	}
	saved, err := db.SavedActions(ctx)
	if err != nil {
		return err
	}
	for _, sa := range saved {
		if err := d.Catalog.For(sa.Tenant).Register(*sa.Action); err != nil {
			return fmt.Errorf("saved custom action %s of tenant %s: %w", sa.Action.Name, sa.Tenant, err)
		}
	}
	return nil
}

// noDataError is the error of a read where --data names no Trail data.
type noDataError struct{ dir string }

func (e *noDataError) Error() string {
	return fmt.Sprintf("no Trail data in %s (no trail.db there): check --data or TRAIL_DATA", e.dir)
}

// subjectKeys is a store of subject keys that can be closed.
type subjectKeys interface {
	trail.SubjectKeyStore
	Close() error
}

// openSubjectKeys opens the SQLite subject-key file at path; read-only
// when readOnly, and then a file that is missing (a copy of the events
// alone, as the design asks keys to be backed up apart) is no error: the
// personal data reads as erased, and stderr says why.
func openSubjectKeys(ctx context.Context, e *env, path string, readOnly bool) (subjectKeys, error) {
	if !readOnly {
		return sqlite.OpenSubjectKeys(ctx, path)
	}
	kf, err := sqlite.OpenSubjectKeysReadOnly(ctx, path)
	if trail.ErrorCode(err) == trail.ENOTFOUND {
		fmt.Fprintf(e.stderr, "trail: no %s: personal data reads as [erased]\n", path)
		return noKeys{memory.NewSubjectKeys()}, nil
	}
	return kf, err
}

// noKeys is an empty key store, closed by doing nothing.
type noKeys struct{ trail.SubjectKeyStore }

func (noKeys) Close() error { return nil }
