// Command scale grows one Trail SQLite database through a list of sizes
// and, at each, times the appends that bring it there: how the append rate
// changes as the database grows (issue 18, section 3). bench/scale.sh runs
// it with the sqlite package's query and verification benchmarks on the
// same file at each size, so the three curves come from one database.
//
// The database is signed with storetest's key and validated as the
// conformance suite does, so the sqlite benchmarks' -trail.bigdb can open
// it.
//
//	go run ./bench/scale -db /tmp/scale.db -sizes 10000,100000,1000000
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/bench/sample"
	"github.com/trailaudit/trail/sqlite"
	"github.com/trailaudit/trail/storetest"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("scale", flag.ContinueOnError)
	path := fs.String("db", "", "the database to grow (created when missing; kept)")
	sizesFlag := fs.String("sizes", "10000,100000,1000000", "comma-separated sizes, ascending, in events")
	window := fs.Int("window", 10000, "events timed before each size is reached")
	batch := fs.Int("batch", 1000, "events per timed Append")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *path == "" {
		return fmt.Errorf("-db: want the database's path")
	}
	sizes, err := parseSizes(*sizesFlag)
	if err != nil {
		return fmt.Errorf("-sizes: %w", err)
	}
	if *window <= 0 || *batch <= 0 {
		return fmt.Errorf("-window and -batch: want positive numbers, got %d and %d", *window, *batch)
	}
	db, err := sqlite.Open(ctx, *path, sqlite.Options{Validator: storetest.Validator(), Signer: storetest.Signer()})
	if err != nil {
		return err
	}
	g := &grower{db: db, s: sample.New(42)}
	n, err := db.Count(ctx, trail.Query{Tenant: "acme"})
	if err != nil {
		return errors.Join(err, db.Close())
	}
	g.n = int(n)
	for _, size := range sizes {
		if size <= g.n {
			continue
		}
		// Grow untimed, in large batches, to the start of the window, then
		// time the window's appends.
		if _, err := g.grow(ctx, max(g.n, size-*window), 5000); err != nil {
			return errors.Join(err, db.Close())
		}
		took, err := g.grow(ctx, size, *batch)
		if err != nil {
			return errors.Join(err, db.Close())
		}
		timed := min(*window, size)
		file, err := os.Stat(*path)
		if err != nil {
			return errors.Join(err, db.Close())
		}
		wal := int64(0)
		if fi, err := os.Stat(*path + "-wal"); err == nil {
			wal = fi.Size()
		}
		fmt.Fprintf(out, "size %d: %.0f events/s (the last %d appended in batches of %d), %.0f bytes per event in the file, %.0f with its WAL\n",
			size, float64(timed)/took.Seconds(), timed, *batch, float64(file.Size())/float64(size), float64(file.Size()+wal)/float64(size))
	}
	return db.Close()
}

// grower appends sample events to db, counting them.
type grower struct {
	db *sqlite.DB
	s  *sample.Sample
	n  int // events in the database
}

// grow appends batches of size until the database holds to events and
// returns how long the appends took.
func (g *grower) grow(ctx context.Context, to, size int) (time.Duration, error) {
	var took time.Duration
	for g.n < to {
		b := g.s.Batch(min(size, to-g.n), time.Now())
		t0 := time.Now()
		if _, err := g.db.Append(ctx, "acme", b, trail.AppendOptions{}); err != nil {
			return 0, fmt.Errorf("append at %d events: %w", g.n, err)
		}
		took += time.Since(t0)
		g.n += len(b)
	}
	return took, nil
}

func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive number of events", f)
		}
		if len(out) > 0 && n <= out[len(out)-1] {
			return nil, fmt.Errorf("%d after %d: want ascending sizes", n, out[len(out)-1])
		}
		out = append(out, n)
	}
	return out, nil
}
