package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/pgtest"
	"github.com/trailaudit/trail/postgres"
	"github.com/trailaudit/trail/storetest"
)

// fast are elector timings short enough for tests.
var fast = postgres.ElectorOptions{Retry: 50 * time.Millisecond, Check: 50 * time.Millisecond, PingTimeout: 200 * time.Millisecond}

func TestElector(t *testing.T) {
	grace := 2*fast.Check + fast.PingTimeout
	storetest.RunElector(t, func(t *testing.T) (a, b trail.Elector) {
		schema := pgtest.NewSchema(t)
		// Two stores on one schema: two processes of one deployment.
		return open(t, schema, postgres.Options{}).Elector(fast), open(t, schema, postgres.Options{}).Elector(fast)
	}, fast.Retry+grace+time.Second)
	t.Run("schemas apart", func(t *testing.T) {
		// Each schema is a deployment of its own: both lead.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for range 2 {
			l, err := open(t, pgtest.NewSchema(t), postgres.Options{}).Elector(fast).Acquire(ctx)
			if err != nil {
				t.Fatalf("Acquire in a schema of its own: %v", err)
			}
			defer l.Release(ctx)
		}
	})
}

// TestElectorConnectionKilled: when the leader's lock connection is
// terminated, the leader reports the loss on its own, within Check +
// PingTimeout, and the follower leads only after that, within its retry
// and grace.
func TestElectorConnectionKilled(t *testing.T) {
	schema := pgtest.NewSchema(t)
	ctx := context.Background()
	a, b := open(t, schema, postgres.Options{}).Elector(fast), open(t, schema, postgres.Options{}).Elector(fast)
	la, err := a.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	type led struct {
		l  trail.Lease
		at time.Time
	}
	got := make(chan led, 1)
	go func() {
		lb, err := b.Acquire(ctx)
		if err != nil {
			t.Errorf("the follower's Acquire: %v", err)
		}
		got <- led{lb, time.Now()}
	}()
	time.Sleep(3 * fast.Retry) // the follower is asking
	var n int
	if err := connect(t, schema, nil).QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1 AND pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted)`,
		postgres.LeaderApplication(schema)).Scan(&n); err != nil || n != 1 {
		t.Fatalf("terminating the leader's lock connection: %d terminated, %v", n, err)
	}
	killed := time.Now()
	var lost time.Time
	select {
	case <-la.Lost():
		lost = time.Now()
	case <-time.After(10 * time.Second):
		t.Fatal("the leader did not report its lost lock")
	}
	if d, bound := lost.Sub(killed), fast.Check+fast.PingTimeout+100*time.Millisecond; d > bound {
		t.Errorf("the leader reported the loss %v after its connection was killed; want within %v", d, bound)
	}
	var lb led
	select {
	case lb = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the follower did not take over")
	}
	if lb.l == nil {
		t.FailNow()
	}
	defer lb.l.Release(ctx)
	if !lb.at.After(lost) {
		t.Errorf("the follower led at %v, before the old leader reported its loss at %v: two leaders at once", lb.at, lost)
	}
	if d, bound := lb.at.Sub(killed), fast.Retry+2*fast.Check+fast.PingTimeout+time.Second; d > bound {
		t.Errorf("the follower led %v after the leader's connection was killed; want within %v", d, bound)
	}
	if err := la.Release(ctx); err != nil {
		t.Errorf("Release of a lost lease: %v", err)
	}
}
