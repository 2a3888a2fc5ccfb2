package sqlite

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/lead"
)

var _ trail.Elector = (*Elector)(nil)

// Elector is the SQLite store's trail.Elector: an exclusive lock
// (flock(2)) on the file DB.leader beside the database file. Two
// `trail serve` on one data directory are possible (SQLite lets several
// processes write one database, taking turns), so the lock is what keeps
// the second from running the singleton work too. The kernel drops the
// lock when the process that holds it dies, however it dies; while it
// lives the lock cannot be taken from it, so a Lease is lost only by its
// Release. A follower tries again every Retry. (A data directory on a
// network file system whose flock is not shared between machines is not
// one Trail supports: SQLite's own locking needs the same.)
type Elector struct {
	path  string
	retry time.Duration
	log   *slog.Logger
}

// Elector returns the elector of the processes on db's file. retry is how
// often a follower tries again (0: lead.DefaultRetry); log says why a try
// failed (nil: not said).
func (db *DB) Elector(retry time.Duration, log *slog.Logger) *Elector {
	return &Elector{path: db.path + ".leader", retry: retry, log: log}
}

// Acquire takes the lock, trying every retry until ctx ends.
func (e *Elector) Acquire(ctx context.Context) (trail.Lease, error) {
	return lead.Poll(ctx, e.retry, e.log, e.try)
}

// try takes the lock if no process holds it: a lease, or none (and no
// error) when another holds it.
func (e *Elector) try(context.Context) (trail.Lease, error) {
	f, err := os.OpenFile(e.path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: the leader lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, nil
		}
		return nil, fmt.Errorf("sqlite: lock %s: %w", e.path, err)
	}
	return &fileLease{f: f, sig: lead.NewSignal()}, nil
}

// fileLease is the lock held on the open file.
type fileLease struct {
	f    *os.File
	sig  *lead.Signal
	once sync.Once
	err  error
}

func (l *fileLease) Lost() <-chan struct{} { return l.sig.Lost() }

// Release closes the file, which drops the lock.
func (l *fileLease) Release(context.Context) error {
	l.once.Do(func() {
		l.sig.Lose()
		if err := l.f.Close(); err != nil {
			l.err = fmt.Errorf("sqlite: release the leader lock: %w", err)
		}
	})
	return l.err
}
