// Package sqlite is Trail's embedded store: a trail.Store in one SQLite
// database file, with no server to run. It uses modernc.org/sqlite (pure Go,
// no cgo), the WAL journal and synchronous=FULL, so an acknowledged event
// survives a crash or a power cut.
//
// Start with Open. All appends share one writer connection, whose open
// transaction gathers concurrent Append calls (group commit): each caller
// is answered only after the commit its events rode in, and one fsync serves
// them all. Appends run Trail's one pipeline (internal/ledger); this
// package is its backend (append.go).
//
// The DB also keeps API keys and saved custom actions (trail.KeyStore,
// trail.ActionStore; keys.go says how their writes are serialized). The
// keys of data subjects (package erasure) are not in it: SubjectKeys keeps
// them in a file of their own (DATA/subject-keys.db beside DATA/trail.db),
// which OpenSubjectKeys opens, so that the events' file and its backups
// never hold a key. A program opens it first, builds its erasure.Sealer on
// it, and then opens the DB with a Validator that seals.
//
// The database refuses UPDATE and DELETE on events by itself (triggers) but
// for the one change retention makes (Prune: a payload cleared, its tree
// hashes kept, with a purge record appended in the same transaction), and
// its schema is versioned: Open migrates an older database forward and
// refuses one newer than the binary.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/ledger"
	"github.com/trailaudit/trail/tlog"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

var (
	_ trail.Store    = (*DB)(nil)
	_ trail.Log      = (*DB)(nil)
	_ ledger.Writer  = (*DB)(nil)
	_ ledger.Backend = (*backend)(nil)
)

// Options configure a DB. Validator is required.
type Options struct {
	// Validator validates and redacts every event before it is stored.
	Validator *trail.Validator
	// MaxBatch bounds how many events one group commit gathers
	// (default 8192). A single Append larger than that commits alone.
	MaxBatch int
	// MaxWait is how long the writer waits for more appends to join a
	// commit that is not full (default 0: it takes what queued up during
	// the previous commit, which under load is plenty, and adds no latency
	// to a lone caller).
	MaxWait time.Duration
	// Readers is the size of the read connection pool (default 4).
	Readers int
	// Signer signs the checkpoint every commit ends with (trail.Log).
	// Without one the DB is read-only and Append fails; with one, Open
	// refuses a database whose latest checkpoints it did not sign.
	Signer *tlog.Signer
	// Now is the clock (default time.Now); tests set it.
	Now func() time.Time

	noTree bool // benchmarks only: append without the tree or checkpoints
}

// DB is a trail.Store in one SQLite file. It is safe for concurrent use; use
// one DB per file per process. (Other processes may read the file, as
// `trail query` does while `trail serve` runs; only one may write.)
type DB struct {
	*appender // Append and AppendOwn: the pipeline, writing through backend (append.go)
	path      string
	o         Options
	w         *sql.Conn // the writer's connection, used only by who holds turn
	wdb       *sql.DB
	r         *sql.DB // readers
	adb       *sql.DB // one connection for API key and action writes (keys.go)

	turn   chan struct{} // holds one token while a batch or the committer uses w
	g      *group        // the writer's open transaction, if any (guarded by turn)
	kick   chan struct{} // a batch joined the group: the committer wakes
	stop   chan struct{} // closed by Close: the committer stops
	wdone  chan struct{} // closed when the committer has stopped
	mu     sync.RWMutex  // guards closed
	closed bool

	hashesStmt *sql.Stmt // hashesQuery on r
	tids       sync.Map  // tenant name → tid, for reads (tenants are append-only)
	scanAhead  int       // chunks ScanLeaves reads at once (0: Readers); benchmarks set it
}

// Open opens (creating if needed) the database at path, migrates it to the
// current schema and starts its writer. The directory is created too.
func Open(ctx context.Context, path string, o Options) (*DB, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 8192
	}
	if o.Readers <= 0 {
		o.Readers = 4
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	// temp_store(MEMORY) keeps savepoint sub-journals off the disk. The
	// writer's page cache (32 MB) holds the hot index pages a busy log
	// touches each commit; readers get 8 MB each, and no memory map: page
	// caches live outside Go's heap, and they are most of what `trail
	// serve` keeps resident (docs/benchmarks.md).
	pragmas := url.Values{"_pragma": {"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(1)",
		"temp_store(MEMORY)"}}
	wq := url.Values{"_txlock": {"immediate"}, "_pragma": append(slices.Clone(pragmas["_pragma"]), "cache_size(-32768)")}
	wdb, err := sql.Open("sqlite", "file:"+path+"?"+wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	wdb.SetMaxOpenConns(1)
	db := &DB{path: path, o: o, wdb: wdb,
		turn: make(chan struct{}, 1), kick: make(chan struct{}, 1), stop: make(chan struct{}), wdone: make(chan struct{})}
	l, err := ledger.New(ledger.Config{Store: "sqlite", Validator: o.Validator, Signer: o.Signer, Now: o.Now,
		MinTime: time.Unix(0, math.MinInt64), MaxTime: time.Unix(0, math.MaxInt64), MaxSeq: maxSeq, NoTree: o.noTree}, (*backend)(db))
	if err != nil {
		wdb.Close()
		return nil, err
	}
	db.appender = l
	fail := func(err error) (*DB, error) {
		if db.w != nil {
			db.w.Close()
		}
		wdb.Close()
		if db.r != nil {
			db.r.Close()
		}
		if db.adb != nil {
			db.adb.Close()
		}
		return nil, err
	}
	if db.w, err = wdb.Conn(ctx); err != nil {
		return fail(fmt.Errorf("sqlite: open %s: %w", path, err))
	}
	if err := migrate(ctx, db.w); err != nil {
		return fail(fmt.Errorf("sqlite: %s: %w", path, err))
	}
	if o.Signer != nil {
		if err := checkSigner(ctx, db.w, o.Signer); err != nil {
			return fail(fmt.Errorf("sqlite: %s: %w", path, err))
		}
	}
	rq := url.Values{"_pragma": append(pragmas["_pragma"], "query_only(1)", "cache_size(-8192)")}
	if db.r, err = sql.Open("sqlite", "file:"+path+"?"+rq.Encode()); err != nil {
		return fail(fmt.Errorf("sqlite: %w", err))
	}
	db.r.SetMaxOpenConns(o.Readers)
	db.r.SetMaxIdleConns(o.Readers)
	if db.hashesStmt, err = db.r.PrepareContext(ctx, hashesQuery); err != nil {
		return fail(fmt.Errorf("sqlite: %w", err))
	}
	// Key and action writes are rare and small; they take their own
	// connection rather than the writer's (see keys.go), connected on
	// first use.
	if db.adb, err = sql.Open("sqlite", "file:"+path+"?"+wq.Encode()); err != nil {
		return fail(fmt.Errorf("sqlite: %w", err))
	}
	db.adb.SetMaxOpenConns(1)
	go db.committer()
	return db, nil
}

// checkSigner refuses a signer that did not sign each tenant's latest
// checkpoint (tlog.Signer.CheckLatest: or, while it rotates, whose previous
// key did).
func checkSigner(ctx context.Context, c *sql.Conn, s *tlog.Signer) error {
	rows, err := c.QueryContext(ctx, `SELECT t.name, c.note FROM tenants t
		JOIN checkpoints c ON c.tid = t.tid AND c.size = (SELECT max(size) FROM checkpoints WHERE tid = t.tid)`)
	if err != nil {
		return internal(err, "read checkpoints")
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var note []byte
		if err := rows.Scan(&name, &note); err != nil {
			return internal(err, "read checkpoints")
		}
		if err := s.CheckLatest(name, note); err != nil {
			return err
		}
	}
	return internal(rows.Err(), "read checkpoints")
}

// Close stops accepting appends, commits those written into the open
// group, and closes the database.
func (db *DB) Close() error {
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return nil
	}
	db.closed = true
	db.mu.Unlock()
	// Batches in the open group are answered when it commits; no batch
	// joins after this.
	db.turn <- struct{}{}
	if db.g != nil {
		db.commitGroup()
	}
	<-db.turn
	close(db.stop)
	<-db.wdone
	return errors.Join(db.hashesStmt.Close(), db.w.Close(), db.wdb.Close(), db.r.Close(), db.adb.Close())
}

// Path returns the database file's path.
func (db *DB) Path() string { return db.path }

// internal wraps a database failure as EINTERNAL, leaving coded errors and
// context errors as they are.
func internal(err error, what string) error {
	var te *trail.Error
	if err == nil || errors.As(err, &te) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &trail.Error{Code: trail.EINTERNAL, Message: "sqlite: " + what, Err: err}
}
