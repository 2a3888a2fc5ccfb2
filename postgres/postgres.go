// Package postgres is Trail's server store: a trail.Store in a PostgreSQL
// database, which several Trail processes may share.
//
// Start with Open: it connects a pgx pool, migrates the schema forward (or
// refuses a database newer than the binary) and returns a *DB ready for use.
//
// Each Append is one transaction that locks the tenant's row in heads
// (SELECT ... FOR UPDATE), so appends to one tenant from any number of
// processes take turns and seqs continue with no gap and no reuse; appends to
// different tenants do not wait for each other. Batches of 32 events or
// more are written with COPY, smaller ones with INSERTs pipelined with the
// COMMIT.
//
// The store is a trail.Log: each tenant's events are the leaves of a Merkle
// tree (package tlog). Every event is stored with its tree hashes (the
// hashes column: its leaf hash, then the nodes it completed), the head row
// keeps the tree's right edge (the hashes of its peaks) so that an append
// continues the tree without reading any event, and every append ends with
// a checkpoint of the tree signed with Options.Signer, all in the append's
// transaction. Without a signer the store is read-only.
//
// The DB also keeps API keys and saved custom actions (trail.KeyStore,
// trail.ActionStore), in the same schema. The keys of data subjects
// (package erasure) are kept in that schema too, apart from the events, in
// the subject_keys table. The DB is no trail.SubjectKeyStore: SubjectKeys
// is, which OpenSubjectKeys opens on a pool of its own. A program opens it
// first, builds its erasure.Sealer on it, and then opens the DB with a
// Validator that seals.
//
// The database refuses UPDATE, DELETE and TRUNCATE of events, their targets
// and checkpoints by itself (triggers), and a tenant's head only moves
// forward. In production, connect as a login role that is a member of
// trail_app (GRANT trail_app TO your_login), not as the owner of the tables:
// trail_app, which the first migration creates, may only read the log,
// append to it and move heads, while an owner could drop the triggers. Run
// Open once as the owner to migrate; Open as a trail_app member then finds
// the schema current and changes nothing. Open with a Signer refuses a log
// whose tenants' latest checkpoints another key signed.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/ledger"
	"github.com/trailaudit/trail/tlog"
)

var (
	_ trail.Store   = (*DB)(nil)
	_ ledger.Writer = (*DB)(nil)
	_ trail.Log     = (*DB)(nil)
)

// Options configure a DB. Validator is required.
type Options struct {
	// Validator validates and redacts every event before it is stored.
	Validator *trail.Validator
	// Schema is the PostgreSQL schema that holds Trail's tables (default:
	// the connection string's search_path parameter, else "public"). Open
	// creates it when it is missing and sets it as the search_path of every
	// connection of the pool.
	Schema string
	// MaxBatch is the most events one Append may carry (default 10000); a
	// larger batch is refused with EINVALID before anything is stored, so
	// that one call cannot hold a tenant's log for long.
	MaxBatch int
	// Signer signs the checkpoint every append ends with (trail.Log).
	// Without one the DB is read-only and Append fails; with one, Open
	// refuses a database whose latest checkpoints it did not sign.
	Signer *tlog.Signer
	// Now is the clock (default time.Now); tests set it.
	Now func() time.Time

	noTree bool // benchmarks only: append without the tree or checkpoints
}

// The times a timestamptz holds, with a wide margin (PostgreSQL's own
// range is 4713 BC to 294276 AD). An event outside is refused rather than
// stored with a wrong time.
var (
	minTime = time.Date(-4000, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(200000, 1, 1, 0, 0, 0, 0, time.UTC)
)

// DefaultMaxBatch is Options.MaxBatch when it is left zero.
const DefaultMaxBatch = 10000

// DB is a trail.Store in a PostgreSQL database. It is safe for concurrent
// use, and any number of DBs, in one process or many, may share a database.
type DB struct {
	*appender // Append and AppendOwn: the pipeline, writing through backend
	pool      *pgxpool.Pool
	o         Options

	mu       sync.RWMutex // guards closed against inflight.Add
	closed   bool
	inflight sync.WaitGroup
	notes    []string // what the migrations Open ran did (MigrationNotes)
}

// Open connects to the database named by connString (a PostgreSQL URL or
// keyword/value string, as pgxpool.ParseConfig reads it: pool_max_conns and
// the like are honoured), migrates Trail's schema to the current version and
// returns the store. A database whose schema is newer than this binary is
// refused, and so, with a Signer, is one where a tenant's latest checkpoint
// does not verify under the signer's key.
func Open(ctx context.Context, connString string, o Options) (*DB, error) {
	if o.MaxBatch <= 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	db := &DB{o: o}
	l, err := ledger.New(ledger.Config{Store: "postgres", Validator: o.Validator, Signer: o.Signer, Now: o.Now,
		MinTime: minTime, MaxTime: maxTime, MaxBatch: o.MaxBatch, NoTree: o.noTree}, (*backend)(db))
	if err != nil {
		return nil, err
	}
	pool, schema, notes, err := connect(ctx, connString, o.Schema, 0)
	if err != nil {
		return nil, err
	}
	if o.Signer != nil {
		if err := checkSigner(ctx, pool, o.Signer); err != nil {
			pool.Close()
			return nil, fmt.Errorf("postgres: schema %q: %w", schema, err)
		}
	}
	db.appender, db.pool, db.o.Schema, db.notes = l, pool, schema, notes
	return db, nil
}

// MigrationNotes says what the schema migrations Open ran did that an
// operator should know (none when it ran none, or they changed nothing of
// note): which tenants the custom actions saved before they were per
// tenant were given to.
func (db *DB) MigrationNotes() []string { return slices.Clone(db.notes) }

// connect opens a pool of connections to connString that search only
// schema (default: the connection string's search_path parameter, else
// "public"), and migrates that schema to the current version (see migrate):
// what Open and OpenSubjectKeys share. maxConns, when not zero, bounds the
// pool unless the connection string sets pool_max_conns. It returns the
// pool, the schema and what the migrations it ran said.
func connect(ctx context.Context, connString, schema string, maxConns int32) (*pgxpool.Pool, string, []string, error) {
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		return nil, "", nil, fmt.Errorf("postgres: %w", err)
	}
	if schema == "" {
		// A search_path in the URL (?search_path=trail) names the schema.
		schema = cfg.ConnConfig.RuntimeParams["search_path"]
	}
	if schema == "" {
		schema = "public"
	}
	// Only Trail's schema is searched (pg_catalog always is), so unqualified
	// names in Trail's SQL can only mean Trail's tables.
	cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	if maxConns > 0 && !strings.Contains(connString, "pool_max_conns") {
		cfg.MaxConns = maxConns
		cfg.MinConns = min(cfg.MinConns, maxConns)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, "", nil, fmt.Errorf("postgres: %w", err)
	}
	notes, err := migrate(ctx, pool, schema)
	if err != nil {
		pool.Close()
		return nil, "", nil, err
	}
	return pool, schema, notes, nil
}

// checkSigner refuses a signer that did not sign each tenant's latest
// checkpoint (tlog.Signer.CheckLatest: or, while it rotates, whose previous
// key did), read in one query (an index probe per tenant).
func checkSigner(ctx context.Context, pool *pgxpool.Pool, s *tlog.Signer) error {
	rows, err := pool.Query(ctx, `SELECT h.tenant, c.note FROM heads h CROSS JOIN LATERAL
		(SELECT note FROM checkpoints c WHERE c.tenant = h.tenant ORDER BY size DESC LIMIT 1) c`)
	if err != nil {
		return internal(err, "read checkpoints")
	}
	var (
		tenant string
		note   []byte
	)
	_, err = pgx.ForEachRow(rows, []any{&tenant, &note}, func() error { return s.CheckLatest(tenant, note) })
	return internal(err, "read checkpoints")
}

// Close stops accepting calls, waits for those in flight (appends commit
// first) and closes the pool. Calls after Close fail.
func (db *DB) Close() error {
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return nil
	}
	db.closed = true
	db.mu.Unlock()
	db.inflight.Wait()
	db.pool.Close()
	return nil
}

// enter counts a call in flight, or fails once the store is closed. The
// caller must call db.inflight.Done when it returns.
func (db *DB) enter() error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return trail.Errorf(trail.EUNAVAILABLE, "postgres: the store is closed")
	}
	db.inflight.Add(1)
	return nil
}

// internal wraps a database failure (trail.StoreError): the one place
// this package decides what a failure of PostgreSQL's means to the caller
// (classify).
func internal(err error, what string) error {
	return trail.StoreError("postgres", what, err, classify)
}

// classify returns the code of a failure of PostgreSQL's and what it says,
// for the ones that are no fault of Trail's and pass: the server's disk is
// full (SQLSTATE 53100: ESTORAGEFULL); the server cannot be reached, is
// shutting down or out of resources, or the connection broke
// (EUNAVAILABLE; so is a call after Close, see enter). Anything else is
// EINTERNAL.
func classify(err error) (code, why string) {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "53100": // disk_full
			return trail.ESTORAGEFULL, "the database server's disk is full"
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			strings.HasPrefix(pe.Code, "53"),                           // insufficient resources: out of memory, too many connections
			pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03": // admin_shutdown, crash_shutdown, cannot_connect_now
			return trail.EUNAVAILABLE, "the database server is unavailable (SQLSTATE " + pe.Code + ")"
		}
		return trail.EINTERNAL, ""
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	switch {
	case errors.As(err, &ce), errors.As(err, &ne), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return trail.EUNAVAILABLE, "the database is unreachable"
	}
	return trail.EINTERNAL, ""
}
