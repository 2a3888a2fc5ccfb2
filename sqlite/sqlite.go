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
// The write-ahead log is copied into the database file by a goroutine of
// its own, off the commit path, and kept within Options.MaxWAL
// (walcheckpoint.go).
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
	"log/slog"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/ledger"
	"github.com/trailaudit/trail/tlog"
	msqlite "modernc.org/sqlite" // registers the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"
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
	// (default 8192): a group holding that many is committed before
	// another batch joins it. (One Append larger than that is still one
	// transaction.)
	MaxBatch int
	// MaxWait is how long a group waits for more appends to join before it
	// commits (default 0: it takes the appends that queued up while the
	// previous commit ran, which under load is plenty, and adds no latency
	// to a lone caller). A group is committed sooner when the write-ahead
	// log must be emptied (MaxWAL).
	MaxWait time.Duration
	// Readers is the size of the read connection pool (default 4).
	Readers int
	// WriterCache is the page cache of the writer's connection, in bytes
	// (default 16 MiB, DefaultWriterCache): the index pages a commit
	// touches stay in it from one commit to the next. ReaderCache is each
	// reader connection's (default 2 MiB, DefaultReaderCache). A page
	// cache lives outside Go's heap (the memory limit does not bound it)
	// and, with this driver's allocator, costs about twice its size in
	// resident memory (an 8 KiB slot per 4 KiB page); pages it misses
	// are read from the operating system's file cache. Smaller is less
	// memory for more reads (docs/benchmarks.md, issue 18).
	WriterCache, ReaderCache int64
	// ReaderIdle is how long a reader connection may sit unused before it
	// is closed and its cache freed (default 1 minute): a server that
	// mostly ingests keeps few readers open. A new one is opened on
	// demand.
	ReaderIdle time.Duration
	// Signer signs the checkpoint every commit ends with (trail.Log).
	// Without one the DB is read-only and Append fails; with one, Open
	// refuses a database whose latest checkpoints it did not sign.
	Signer *tlog.Signer
	// Now is the clock (default time.Now); tests set it.
	Now func() time.Time
	// ReadOnly opens the database for reading alone, as a copy on a
	// read-only file system (a mounted backup) can be: nothing is
	// created, migrated or written, and writes fail (EUNAVAILABLE). The
	// database must exist, at the current schema version; Signer must be
	// nil. See readOnly for a copy whose write-ahead log cannot be read.
	ReadOnly bool
	// MaxWAL bounds the write-ahead log, in bytes (default 64 MiB): the
	// log is copied into the database file in the background after
	// commits (walcheckpoint.go), and once it holds more than this the
	// copy waits for readers and resets it (the next commit writes it
	// from its start and cuts the file back to this size).
	MaxWAL int64
	// Logger gets what fails off the append path: a checkpoint of the
	// write-ahead log (default slog.Default()).
	Logger *slog.Logger

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
	g      *group        // the writer's open group, if any (guarded by turn)
	prev   *group        // the group detached last, committing or done (guarded by turn)
	ins    insertStmts   // w's prepared INSERTs (used with w)
	kick   chan struct{} // a batch joined the group: the committer wakes
	stop   chan struct{} // closed by Close: the committer stops
	wdone  chan struct{} // closed when the committer has stopped
	cdb    *sql.DB       // the checkpointer's connection (walcheckpoint.go); nil when read-only
	cpKick chan struct{} // a commit happened: the checkpointer wakes
	cpDone chan struct{} // closed when the checkpointer has stopped
	wal    walStats      // what the checkpointer did (WALStats)
	// pageSize is the database's page size in bytes, a log frame's size.
	pageSize int64
	mu       sync.RWMutex // guards closed
	closed   bool

	hashesStmt *sql.Stmt  // hashesQuery on r
	tids       sync.Map   // tenant name → tid, for reads (tenants are append-only)
	bucketBits int        // of the bucketed indexes, as the schema has them (readBucketBits)
	chunkReads chunkReads // verification's reads, by way (scanChunks)
	scanAhead  int        // chunks ScanLeaves reads at once (0: Readers); benchmarks set it
	notes      []string   // what the migrations this Open ran did (MigrationNotes)
}

// MigrationNotes says what the schema migrations Open ran did that an
// operator should know (none when it ran none, or they changed nothing of
// note): which tenants the custom actions saved before they were per
// tenant were given to.
func (db *DB) MigrationNotes() []string { return slices.Clone(db.notes) }

// Open opens (creating if needed) the database at path, migrates it to the
// current schema and starts its writer. The directory is created too.
// With Options.ReadOnly it opens an existing database and writes nothing.
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
	if o.MaxWAL <= 0 {
		o.MaxWAL = 64 << 20
	}
	if err := o.defaultCaches(); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	// temp_store(MEMORY) keeps savepoint sub-journals off the disk. The
	// page caches are set per connection (WriterCache, ReaderCache), and
	// there is no memory map (mmap_size stays 0): page caches live outside
	// Go's heap, and they are most of what `trail serve` keeps resident
	// beyond it (docs/benchmarks.md).
	pragmas := []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(1)", "temp_store(MEMORY)"}
	var params url.Values // of the URI: none, or those of a read-only open
	if o.ReadOnly {
		if o.Signer != nil {
			return nil, errors.New("sqlite: Options.ReadOnly with a Signer: a read-only database takes no appends")
		}
		var err error
		if params, err = readOnly(ctx, path); err != nil {
			return nil, err
		}
		pragmas = []string{"busy_timeout(10000)", "foreign_keys(1)", "temp_store(MEMORY)", "query_only(1)"}
	} else if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	// The writer's connections begin IMMEDIATE transactions, and leave
	// checkpoints to the checkpointer (walcheckpoint.go); a log reset by
	// a checkpoint is cut back to MaxWAL when it is reused.
	wpragmas := append(slices.Clone(pragmas), cacheSize(o.WriterCache))
	if !o.ReadOnly {
		wpragmas = append(wpragmas, "wal_autocheckpoint(0)", fmt.Sprintf("journal_size_limit(%d)", o.MaxWAL))
	}
	writer := dsn(path, params, wpragmas) + "&_txlock=immediate"
	wdb, err := sql.Open("sqlite", writer)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	wdb.SetMaxOpenConns(1)
	db := &DB{path: path, o: o, wdb: wdb,
		turn: make(chan struct{}, 1), kick: make(chan struct{}, 1), stop: make(chan struct{}), wdone: make(chan struct{}),
		cpKick: make(chan struct{}, 1), cpDone: make(chan struct{}), ins: insertStmts{}}
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
		if db.cdb != nil {
			db.cdb.Close()
		}
		return nil, err
	}
	if db.w, err = wdb.Conn(ctx); err != nil {
		return fail(fmt.Errorf("sqlite: open %s: %w", path, err))
	}
	if o.ReadOnly {
		err = checkVersion(ctx, db.w)
	} else {
		db.notes, err = migrate(ctx, db.w, o.Logger)
	}
	if err != nil {
		return fail(fmt.Errorf("sqlite: %s: %w", path, err))
	}
	if db.bucketBits, err = readBucketBits(ctx, db.w); err != nil {
		return fail(fmt.Errorf("sqlite: %s: %w", path, err))
	}
	if o.Signer != nil {
		if err := checkSigner(ctx, db.w, o.Signer); err != nil {
			return fail(fmt.Errorf("sqlite: %s: %w", path, err))
		}
	}
	if db.r, err = sql.Open("sqlite", dsn(path, params, append(slices.Clone(pragmas), "query_only(1)", cacheSize(o.ReaderCache)))); err != nil {
		return fail(fmt.Errorf("sqlite: %w", err))
	}
	db.r.SetMaxOpenConns(o.Readers)
	db.r.SetMaxIdleConns(o.Readers)
	db.r.SetConnMaxIdleTime(o.ReaderIdle)
	if db.hashesStmt, err = db.r.PrepareContext(ctx, hashesQuery); err != nil {
		return fail(fmt.Errorf("sqlite: %w", err))
	}
	// Key and action writes are rare and small; they take their own
	// connection rather than the writer's (see keys.go), connected on
	// first use.
	// Its cache is a reader's: it writes a few rows now and then.
	if db.adb, err = sql.Open("sqlite", dsn(path, params, withCache(wpragmas, o.ReaderCache))+"&_txlock=immediate"); err != nil {
		return fail(fmt.Errorf("sqlite: %w", err))
	}
	db.adb.SetMaxOpenConns(1)
	if err := db.w.QueryRowContext(ctx, "PRAGMA page_size").Scan(&db.pageSize); err != nil {
		return fail(internal(err, "read the page size"))
	}
	if o.ReadOnly {
		close(db.cpDone)
	} else {
		// The checkpointer's connection waits restartWait at most.
		checkpointer := dsn(path, params, checkpointerPragmas(withCache(wpragmas, o.ReaderCache)))
		if db.cdb, err = sql.Open("sqlite", checkpointer); err != nil {
			return fail(fmt.Errorf("sqlite: %w", err))
		}
		db.cdb.SetMaxOpenConns(1)
		go db.walCheckpointer()
	}
	go db.committer()
	return db, nil
}

// Defaults of Options' page caches (WriterCache, ReaderCache, ReaderIdle),
// chosen by measuring `trail serve`'s resident memory under ingest and the
// query benchmarks (docs/benchmarks.md, issue 18).
const (
	DefaultWriterCache = 16 << 20
	DefaultReaderCache = 2 << 20
	DefaultReaderIdle  = time.Minute
)

// defaultCaches fills in the page cache options left zero and refuses
// negative ones.
func (o *Options) defaultCaches() error {
	for _, c := range []struct {
		name string
		v    *int64
		def  int64
	}{{"WriterCache", &o.WriterCache, DefaultWriterCache}, {"ReaderCache", &o.ReaderCache, DefaultReaderCache}} {
		switch {
		case *c.v < 0:
			return fmt.Errorf("sqlite: Options.%s %d: want a size in bytes (0: the default, %d)", c.name, *c.v, c.def)
		case *c.v == 0:
			*c.v = c.def
		}
	}
	switch {
	case o.ReaderIdle < 0:
		return fmt.Errorf("sqlite: Options.ReaderIdle %v: want a duration (0: the default, %v)", o.ReaderIdle, DefaultReaderIdle)
	case o.ReaderIdle == 0:
		o.ReaderIdle = DefaultReaderIdle
	}
	return nil
}

// cacheSize is the pragma giving a connection a page cache of about
// bytes (in KiB, as a negative cache_size says; at least 1 KiB).
func cacheSize(bytes int64) string {
	return fmt.Sprintf("cache_size(-%d)", max(bytes>>10, 1))
}

// withCache is pragmas with their cache_size replaced by one of bytes.
func withCache(pragmas []string, bytes int64) []string {
	return replacePragma(pragmas, cacheSize(bytes))
}

// replacePragma is pragmas with the one of by's name replaced by by (the
// driver runs a DSN's pragmas in turn, and for some only the first
// counts, so a pragma is replaced rather than added).
func replacePragma(pragmas []string, by string) []string {
	name, _, _ := strings.Cut(by, "(")
	out := slices.Clone(pragmas)
	for i, p := range out {
		if strings.HasPrefix(p, name+"(") {
			out[i] = by
		}
	}
	return out
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
	db.settle()
	<-db.turn
	close(db.stop)
	<-db.wdone
	<-db.cpDone
	err := errors.Join(db.hashesStmt.Close(), db.ins.close(), db.w.Close(), db.wdb.Close(), db.r.Close(), db.adb.Close())
	if db.cdb != nil {
		err = errors.Join(err, db.cdb.Close())
	}
	return err
}

// Path returns the database file's path.
func (db *DB) Path() string { return db.path }

// internal wraps a database failure (trail.StoreError): the one place
// this package decides what a failure of SQLite's means to the caller
// (classify).
func internal(err error, what string) error {
	return trail.StoreError("sqlite", what, err, classify)
}

// classify returns the code of a failure of SQLite's and what it says,
// for the ones that are no fault of Trail's and pass: a full disk or
// database (ESTORAGEFULL, when SQLite cannot grow the file or its
// write-ahead log), a database that cannot be opened, written or read
// (EUNAVAILABLE). Anything else is EINTERNAL.
func classify(err error) (code, why string) {
	var se *msqlite.Error
	if !errors.As(err, &se) {
		return trail.EINTERNAL, ""
	}
	switch se.Code() & 0xff { // the primary code of an extended one
	case sqlite3.SQLITE_FULL:
		return trail.ESTORAGEFULL, "the database or the disk is full"
	case sqlite3.SQLITE_IOERR:
		return trail.EUNAVAILABLE, "the disk failed (I/O error)"
	case sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM:
		return trail.EUNAVAILABLE, "the database cannot be written (read-only)"
	case sqlite3.SQLITE_CANTOPEN:
		return trail.EUNAVAILABLE, "the database file cannot be opened"
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return trail.EUNAVAILABLE, "the database is busy (locked by another process)"
	case sqlite3.SQLITE_NOMEM:
		return trail.EUNAVAILABLE, "out of memory"
	}
	return trail.EINTERNAL, ""
}
