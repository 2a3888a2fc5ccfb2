package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/sample"
	"github.com/trailaudit/trail/sqlite"
	"github.com/trailaudit/trail/storetest"
)

// TestWALBounded checks that the write-ahead log is checkpointed off the
// commit path and kept within Options.MaxWAL: once the appends stop, the
// background checkpointer copies it into the file and empties it, and the
// events read back, after a reopen too.
func TestWALBounded(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "trail.db")
	o := sqlite.Options{Validator: storetest.Validator(), Signer: storetest.Signer(), MaxWAL: 256 << 10}
	db, err := sqlite.Open(ctx, path, o)
	if err != nil {
		t.Fatal(err)
	}
	s := sample.New(5)
	const batches, size = 8, 300
	for range batches {
		if _, err := db.Append(ctx, "acme", s.Batch(size, time.Now()), trail.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var wal int64
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		fi, err := os.Stat(path + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		if wal = fi.Size(); wal == 0 || time.Now().After(deadline) {
			break
		}
	}
	if wal != 0 {
		t.Errorf("the write-ahead log holds %d bytes 10 s after the last commit, over MaxWAL %d: it was not checkpointed and emptied", wal, o.MaxWAL)
	}
	if n, err := db.Count(ctx, trail.Query{Tenant: "acme"}); err != nil || n != batches*size {
		t.Fatalf("Count = %d, %v; want %d", n, err, batches*size)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if db, err = sqlite.Open(ctx, path, o); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if n, err := db.Count(ctx, trail.Query{Tenant: "acme"}); err != nil || n != batches*size {
		t.Fatalf("after reopen: Count = %d, %v; want %d", n, err, batches*size)
	}
}
