package sqlite_test

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/sqlite"
	"github.com/trailaudit/trail/storetest"
)

// scanned is one call of a ScanLeavesIndexed fn, copied.
type scanned struct {
	Leaf *trail.Leaf
	Ix   *trail.IndexRow
}

// TestScanLeavesIndexed: the one pass verification reads gives, seq by
// seq, exactly what ScanLeaves and ScanIndex give, over chunk boundaries
// (chunks of 2048 rows, read several at once), a pruned row, deleted rows
// and targets rows left at seqs of no row, inside the log and past it,
// and values holding the bytes its packed reads separate values by.
func TestScanLeavesIndexed(t *testing.T) {
	ctx := context.Background()
	d := newDurable(t)
	s, err := d.Open(t, storetest.Signer())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5000; i += 1000 {
		batch := make([]*trail.Event, 1000)
		for j := range batch {
			batch[j] = storetest.Login(fmt.Sprintf("u-%d", i+j))
		}
		if _, err := s.Append(ctx, "acme", batch, trail.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Append(ctx, "globex", []*trail.Event{storetest.Login("g-1")}, trail.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	doc := trail.Target{Type: "doc", ID: "d-1"}
	tm := d.Tamper.(tamperer)
	for _, tamper := range []func() error{
		func() error { return d.Tamper.Delete(ctx, "acme", 2047, 2051) },
		func() error { return d.Tamper.SetTargets(ctx, "acme", 2049, []trail.Target{doc}) },
		func() error { return d.Tamper.SetTargets(ctx, "acme", 4100, nil) },
		func() error { return d.Tamper.SetBody(ctx, "acme", 3000, []byte{}) },
		func() error {
			return d.Tamper.SetTargets(ctx, "acme", 5003, []trail.Target{doc, {Type: "doc", ID: "d-2"}})
		},
		func() error { return d.Tamper.SetTargets(ctx, "acme", 9000, []trail.Target{doc}) },
		// Values the one pass cannot read packed (a NUL byte inside a
		// value, the separators of the targets rows), and a time stored as
		// text: read as ScanIndex reads them.
		func() error { return d.Tamper.SetColumn(ctx, "acme", 1000, "actor_id", "u-1000\x00x") },
		func() error { return d.Tamper.SetColumn(ctx, "acme", 1001, "correlation_id", "\x00") },
		func() error { return d.Tamper.SetColumn(ctx, "acme", 1002, "recorded_at", "1765000000000000000") },
		func() error { return d.Tamper.SetBody(ctx, "acme", 1004, []byte("{\x00}")) },
		func() error { return d.Tamper.SetHashes(ctx, "acme", 1005, []byte{0, 1, 0}) },
		func() error {
			return d.Tamper.SetTargets(ctx, "acme", 1003, []trail.Target{{Type: "doc\x00", ID: "d\x01"}, {Type: "doc", ID: "d-3\x011004\x00doc\x00d-4"}})
		},
		func() error {
			return d.Tamper.SetTargets(ctx, "acme", 4500, []trail.Target{{Type: "doc\x01", ID: "\x00"}})
		},
		// Values of types the store never writes there: text where it
		// writes blobs and blobs where it writes text, read beneath
		// database/sql as database/sql reads them, and numbers where it
		// writes bytes, left to database/sql (the chunk of seq 1500 is
		// read through it).
		func() error { return d.Tamper.SetColumn(ctx, "acme", 3500, "id", "not an id") },
		func() error {
			return tm.exec(ctx, "acme", func(key func(uint64) int64) [][]any {
				return [][]any{
					{"UPDATE events SET action = CAST(action AS BLOB), body = CAST(body AS TEXT), hashes = CAST(hashes AS TEXT) WHERE key = ?", key(3501)},
					{"UPDATE targets SET type = CAST(type AS BLOB), id = CAST(id AS BLOB) WHERE key = ?", key(3502)},
					{"UPDATE events SET id = 12345, body = 7, hashes = 1.5 WHERE key = ?", key(1500)},
					{"UPDATE events SET pruned = 3 WHERE key = ?", key(3503)},
				}
			})
		},
	} {
		if err := tamper(); err != nil {
			t.Fatal(err)
		}
	}
	r, err := d.Open(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	db := r.(*sqlite.DB)
	defer func() {
		// Both ways of reading a chunk were compared.
		if raw, sql := sqlite.ChunkReads(db); raw == 0 || sql == 0 {
			t.Errorf("chunks read beneath database/sql %d, through it %d: want both", raw, sql)
		}
	}()
	sortTargets := func(ix *trail.IndexRow) {
		slices.SortFunc(ix.Index.Targets, func(a, b trail.Target) int { return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(a.ID, b.ID)) })
	}
	for _, tc := range []struct{ from, to uint64 }{{1, 0}, {0, 0}, {100, 3000}, {2047, 2051}, {2049, 2050}, {4990, 0}, {4990, 6000}, {6000, 0}, {1, 1}} {
		t.Run(fmt.Sprintf("%d-%d", tc.from, tc.to), func(t *testing.T) {
			// Two passes, merged by seq.
			var want []scanned
			err := db.ScanLeaves(ctx, "acme", tc.from, tc.to, func(l trail.Leaf) error {
				want = append(want, scanned{Leaf: &trail.Leaf{Seq: l.Seq, Body: bytes.Clone(l.Body), Hashes: bytes.Clone(l.Hashes)}})
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			i := 0
			err = db.ScanIndex(ctx, "acme", tc.from, tc.to, func(ix trail.IndexRow) error {
				sortTargets(&ix)
				for i < len(want) && want[i].Leaf.Seq < ix.Seq {
					i++
				}
				if i < len(want) && want[i].Leaf.Seq == ix.Seq {
					want[i].Ix = &ix
				} else {
					want = slices.Insert(want, i, scanned{Ix: &ix})
				}
				i++
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			var got []scanned
			err = db.ScanLeavesIndexed(ctx, "acme", tc.from, tc.to, func(l *trail.Leaf, ix *trail.IndexRow) error {
				var c scanned
				if l != nil {
					c.Leaf = &trail.Leaf{Seq: l.Seq, Body: bytes.Clone(l.Body), Hashes: bytes.Clone(l.Hashes)}
				}
				if ix != nil {
					x := *ix
					sortTargets(&x)
					c.Ix = &x
				}
				got = append(got, c)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(want) == 0 && tc.to != 1 {
				t.Fatal("the two passes read nothing: the test checks nothing")
			}
			if reflect.DeepEqual(want, got) {
				return
			}
			if diff := gocmp.Diff(want, got); diff != "" { // slow over thousands of rows: only on failure
				t.Errorf("ScanLeavesIndexed (-two passes +one):\n%s", diff)
			}
		})
	}
}
