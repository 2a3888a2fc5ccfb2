package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/lead"
)

var _ trail.Elector = (*Elector)(nil)

// ElectorOptions tune an Elector. Zero fields take the defaults.
type ElectorOptions struct {
	// Retry is how often a follower asks for the lock again (default
	// lead.DefaultRetry, 5s).
	Retry time.Duration
	// Check is how often the leader pings its lock's connection (default
	// 1s), and PingTimeout how long a ping may take before the connection
	// counts as broken (default 2s).
	Check, PingTimeout time.Duration
	Logger             *slog.Logger // says why a try failed; nil: not said
}

// Elector is the PostgreSQL store's trail.Elector: a session-level advisory
// lock (pg_try_advisory_lock) on a key made from the schema's name, held by
// a connection of its own, opened for it and never part of the pool (a
// pooled connection would carry the lock to whoever used it next, and be
// closed or reset under it).
//
// The server drops the lock when that session ends: a leader killed, its
// connection cut or terminated. The leader cannot learn of that from the
// server, so it pings the connection every Check; a ping that fails or
// takes PingTimeout loses the lease. Its session ended at t, the leader
// has lost its lease by t + Check + PingTimeout (the next ping, and its
// timeout). A follower that takes the lock — at t at the earliest — waits
// Grace = 2×Check + PingTimeout (a Check's margin for timers) with the lock
// held before it returns the lease, and pings once more: so the new
// leader starts after the old one was told to stop. What the old one had
// in flight when told (an append already sent) finishes or is rolled back
// within its own statement; it is no new work.
//
// A connection cut without the server noticing (a network partition)
// leaves the lock held by a session the server still believes in: the
// leader stops on its failed ping, and nobody leads until the server's
// TCP keepalive (tcp_keepalives_idle and the like) ends the session.
// Leadership is never doubled by that, only delayed.
type Elector struct {
	cfg *pgx.ConnConfig
	key int64
	o   ElectorOptions
}

// Elector returns the elector of the processes sharing db's schema.
func (db *DB) Elector(o ElectorOptions) *Elector {
	if o.Check <= 0 {
		o.Check = time.Second
	}
	if o.PingTimeout <= 0 {
		o.PingTimeout = 2 * time.Second
	}
	cfg := db.pool.Config().ConnConfig.Copy()
	// Who holds the lock shows in pg_stat_activity.
	cfg.RuntimeParams["application_name"] = LeaderApplication(db.o.Schema)
	return &Elector{cfg: cfg, key: leaderKey(db.o.Schema), o: o}
}

// LeaderApplication is the application_name of the connection that holds
// (or asks for) schema's leader lock: pg_stat_activity shows which
// process leads.
func LeaderApplication(schema string) string { return "trail leader " + schema }

// leaderKey is the advisory lock key of schema's leader: advisory locks
// are per database, and each schema is a deployment of its own.
func leaderKey(schema string) int64 {
	h := sha256.Sum256([]byte("trail leader\x00" + schema))
	return int64(binary.BigEndian.Uint64(h[:8]))
}

// Grace is how long a follower holds the lock before it leads (see
// Elector).
func (e *Elector) Grace() time.Duration { return 2*e.o.Check + e.o.PingTimeout }

// Acquire takes the lock, asking every Retry until ctx ends.
func (e *Elector) Acquire(ctx context.Context) (trail.Lease, error) {
	return lead.Poll(ctx, e.o.Retry, e.o.Logger, e.try)
}

// try opens a connection and takes the lock on it: a lease, or none (and
// no error) when another session holds it.
func (e *Elector) try(ctx context.Context) (trail.Lease, error) {
	conn, err := pgx.ConnectConfig(ctx, e.cfg.Copy())
	if err != nil {
		return nil, fmt.Errorf("postgres: connect for the leader lock: %w", err)
	}
	closeConn := func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.o.PingTimeout)
		conn.Close(cctx)
		cancel()
	}
	var got bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", e.key).Scan(&got); err != nil || !got {
		closeConn()
		if err != nil {
			return nil, fmt.Errorf("postgres: take the leader lock: %w", err)
		}
		return nil, nil
	}
	t := time.NewTimer(e.Grace())
	select {
	case <-ctx.Done():
		t.Stop()
		closeConn() // the session's end drops the lock
		return nil, ctx.Err()
	case <-t.C:
	}
	if err := e.ping(ctx, conn); err != nil {
		closeConn()
		return nil, fmt.Errorf("postgres: the leader lock's connection: %w", err)
	}
	l := &lockLease{e: e, conn: conn, sig: lead.NewSignal(), stop: make(chan struct{}), done: make(chan struct{})}
	go l.watch()
	return l, nil
}

func (e *Elector) ping(ctx context.Context, conn *pgx.Conn) error {
	pctx, cancel := context.WithTimeout(ctx, e.o.PingTimeout)
	defer cancel()
	return conn.Ping(pctx)
}

// lockLease is the lock held by conn, which only watch uses.
type lockLease struct {
	e    *Elector
	conn *pgx.Conn
	sig  *lead.Signal
	stop chan struct{} // closed by Release
	done chan struct{} // closed when watch has returned
	once sync.Once
	err  error // of the unlock
}

func (l *lockLease) Lost() <-chan struct{} { return l.sig.Lost() }

// watch pings every Check until a ping fails (the lease is lost) or
// Release; then it unlocks (if the connection still works) and closes the
// connection.
func (l *lockLease) watch() {
	defer close(l.done)
	t := time.NewTicker(l.e.o.Check)
	defer t.Stop()
	ctx := context.Background()
	for {
		select {
		case <-l.stop:
			l.sig.Lose()
			uctx, cancel := context.WithTimeout(ctx, l.e.o.PingTimeout)
			if _, err := l.conn.Exec(uctx, "SELECT pg_advisory_unlock($1)", l.e.key); err != nil {
				l.err = fmt.Errorf("postgres: release the leader lock (its session's end drops it): %w", err)
			}
			l.conn.Close(uctx)
			cancel()
			return
		case <-t.C:
			if err := l.e.ping(ctx, l.conn); err != nil {
				l.sig.Lose()
				if l.e.o.Logger != nil {
					l.e.o.Logger.Warn("postgres: the leader lock's connection broke", "err", err)
				}
				cctx, cancel := context.WithTimeout(ctx, l.e.o.PingTimeout)
				l.conn.Close(cctx)
				cancel()
				<-l.stop
				return
			}
		}
	}
}

// Release unlocks and closes the lock's connection.
func (l *lockLease) Release(context.Context) error {
	l.once.Do(func() { close(l.stop) })
	<-l.done
	return l.err
}
