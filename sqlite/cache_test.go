package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/storetest"
)

// TestCaches checks that each connection gets the page cache Options say
// (the defaults, and sizes given), that no connection maps the file, and
// that a reader left idle for ReaderIdle is closed, freeing its cache.
func TestCaches(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name                 string
		o                    Options
		writerKiB, readerKiB int64
	}{
		{"defaults", Options{}, DefaultWriterCache >> 10, DefaultReaderCache >> 10},
		{"given", Options{WriterCache: 3 << 20, ReaderCache: 512 << 10, ReaderIdle: 50 * time.Millisecond}, 3 << 10, 512},
		{"under 1 KiB", Options{WriterCache: 100, ReaderCache: 1}, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Validator, tc.o.Signer = storetest.Validator(), storetest.Signer()
			db, err := Open(ctx, filepath.Join(t.TempDir(), "trail.db"), tc.o)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			// A key write connects the key writer.
			_, k, err := trail.NewAPIKey("acme", "", []trail.KeyScope{trail.ScopeRead}, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if err := db.CreateKey(ctx, k); err != nil {
				t.Fatal(err)
			}
			conns := []struct {
				name string
				q    func(string) *sql.Row
				kib  int64
			}{
				{"writer", func(q string) *sql.Row { return db.w.QueryRowContext(ctx, q) }, tc.writerKiB},
				{"reader", func(q string) *sql.Row { return db.r.QueryRowContext(ctx, q) }, tc.readerKiB},
				{"key writer", func(q string) *sql.Row { return db.adb.QueryRowContext(ctx, q) }, tc.readerKiB},
				{"checkpointer", func(q string) *sql.Row { return db.cdb.QueryRowContext(ctx, q) }, tc.readerKiB},
			}
			for _, c := range conns {
				var cache, mmap int64
				if err := c.q("PRAGMA cache_size").Scan(&cache); err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				if err := c.q("PRAGMA mmap_size").Scan(&mmap); err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				if cache != -c.kib || mmap != 0 {
					t.Errorf("%s: cache_size %d, mmap_size %d; want %d (KiB) and 0", c.name, cache, mmap, -c.kib)
				}
			}
			if tc.o.ReaderIdle == 0 {
				return
			}
			for deadline := time.Now().Add(10 * time.Second); db.r.Stats().Idle > 0; time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("readers idle for 10 s are still open (ReaderIdle %v): %+v", tc.o.ReaderIdle, db.r.Stats())
				}
			}
			if n, err := db.Count(ctx, trail.Query{Tenant: "acme"}); err != nil || n != 0 {
				t.Fatalf("Count after the idle readers closed = %d, %v", n, err)
			}
		})
	}
}

func TestCachesRefused(t *testing.T) {
	for _, tc := range []struct {
		o     Options
		field string
	}{
		{Options{WriterCache: -1}, "Options.WriterCache -1"},
		{Options{ReaderCache: -2}, "Options.ReaderCache -2"},
		{Options{ReaderIdle: -time.Second}, "Options.ReaderIdle -1s"},
	} {
		tc.o.Validator = storetest.Validator()
		_, err := Open(context.Background(), filepath.Join(t.TempDir(), "trail.db"), tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("Open with %s = %v, want an error naming it", tc.field, err)
		}
	}
}
