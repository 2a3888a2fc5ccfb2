package sqlite_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/testenv"
	"github.com/trailaudit/trail/sqlite"
	"github.com/trailaudit/trail/storetest"
)

// rawBatch is the rows one Append of a batch wrote: its events rows (in
// sqlite.EventCols order) and its targets rows (key, id, type), in key order.
type rawBatch struct {
	events  [][]driver.Value
	targets [][]driver.Value
	note    []byte // the batch's signed checkpoint
}

// rawBatches appends the batches to a database of their own and reads back
// the rows each Append wrote, to be written again by rawInserter.
func rawBatches(b *testing.B, batches [][]*trail.Event) []rawBatch {
	b.Helper()
	r, err := sql.Open("sqlite", "file:"+storeFile(b, batches)+"?mode=ro")
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	scan := func(q string, cols int, each func(row []driver.Value)) {
		rows, err := r.Query(q)
		if err != nil {
			b.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			vals, ptrs := make([]driver.Value, cols), make([]any, cols)
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				b.Fatal(err)
			}
			each(vals)
		}
		if err := rows.Err(); err != nil {
			b.Fatal(err)
		}
	}
	out := make([]rawBatch, len(batches))
	at := func(key driver.Value) *rawBatch { return &out[int((key.(int64)&(1<<40-1)-1)/int64(len(batches[0])))] }
	scan("SELECT "+strings.Join(sqlite.EventCols, ", ")+" FROM events ORDER BY key", len(sqlite.EventCols), func(row []driver.Value) {
		rb := at(row[0])
		rb.events = append(rb.events, row)
	})
	scan("SELECT key, id, type FROM targets ORDER BY key, id, type", 3, func(row []driver.Value) {
		rb := at(row[0])
		rb.targets = append(rb.targets, row)
	})
	i := 0
	scan("SELECT note FROM checkpoints ORDER BY size", 1, func(row []driver.Value) {
		out[i].note = row[0].([]byte)
		i++
	})
	return out
}

// storeFile makes a store's file in a folder of the benchmark's, with
// the batches appended to tenant acme, and closes it.
func storeFile(b *testing.B, batches [][]*trail.Event) string {
	b.Helper()
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "trail.db")
	db, err := sqlite.Open(ctx, path, sqlite.Options{Validator: storetest.Validator(), Signer: storetest.Signer()})
	if err != nil {
		b.Fatal(err)
	}
	for _, batch := range batches {
		if _, err := db.Append(ctx, "acme", batch, trail.AppendOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

// rawInserter writes rawBatches into a database made by sqlite.Open (the
// same schema, indexes and triggers), through modernc's driver as an
// application would write SQLite itself: one IMMEDIATE transaction a
// batch, its events and targets rows in multi-row INSERTs of as many rows
// as an append's (sqlite.RowsPerInsert) prepared once and bound straight
// to the driver, the tenant's size and the
// checkpoint row, durable (WAL, synchronous=FULL) with SQLite's own
// automatic checkpoints and the writer's page cache. Nothing is validated,
// redacted, encoded, hashed or signed: it is what the rows alone cost.
// Batches written again get keys after the last and fresh ids. The
// indexes named in drop are dropped first.
func rawInserter(b *testing.B, drop ...string) func(rb rawBatch) error {
	b.Helper()
	ctx := context.Background()
	w, err := sql.Open("sqlite", "file:"+storeFile(b, nil)+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=cache_size(-16384)&_txlock=immediate")
	if err != nil {
		b.Fatal(err)
	}
	w.SetMaxOpenConns(1)
	b.Cleanup(func() { w.Close() })
	conn, err := w.Conn(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	if _, err := conn.ExecContext(ctx, "INSERT INTO tenants (tid, name) VALUES (1, 'acme')"); err != nil {
		b.Fatal(err)
	}
	for _, ix := range drop {
		if _, err := conn.ExecContext(ctx, "DROP INDEX "+ix); err != nil {
			b.Fatal(err)
		}
	}
	stmts := map[string]driver.Stmt{}
	b.Cleanup(func() {
		for _, st := range stmts {
			st.Close()
		}
	})
	multi := func(dc any, table string, cols []string, rows [][]driver.Value, row func(i int, v []driver.Value) []driver.Value) error {
		args := make([]driver.NamedValue, 0, sqlite.RowsPerInsert*len(cols))
		for i := 0; i < len(rows); {
			k := sqlite.RowsPerInsert
			for k > len(rows)-i {
				k /= 2
			}
			q := sqlite.InsertQuery("INSERT INTO "+table+" ("+strings.Join(cols, ", ")+")", len(cols), k)
			st := stmts[q]
			if st == nil {
				var err error
				if st, err = dc.(driver.ConnPrepareContext).PrepareContext(ctx, q); err != nil {
					return err
				}
				stmts[q] = st
			}
			args = args[:0]
			for j := i; j < i+k; j++ {
				for _, v := range row(j, rows[j]) {
					args = append(args, driver.NamedValue{Ordinal: len(args) + 1, Value: v})
				}
			}
			if _, err := st.(driver.StmtExecContext).ExecContext(ctx, args); err != nil {
				return err
			}
			i += k
		}
		return nil
	}
	const tid = int64(1) << 40
	var size, ids int64 // the log's size, ids made
	row := make([]driver.Value, len(sqlite.EventCols))
	return func(rb rawBatch) error {
		shift := size - (rb.events[0][0].(int64) - tid - 1) // renumbering
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		err = conn.Raw(func(dc any) error {
			err := multi(dc, "events", sqlite.EventCols, rb.events, func(_ int, v []driver.Value) []driver.Value {
				copy(row, v)
				row[0] = v[0].(int64) + shift
				ids++
				id := slices.Clone(v[1].([]byte)) // time-ordered, as a UUIDv7's
				binary.BigEndian.PutUint64(id, uint64(ids))
				row[1] = id
				return row
			})
			if err != nil {
				return fmt.Errorf("events: %w", err)
			}
			err = multi(dc, "targets", []string{"key", "id", "type"}, rb.targets, func(_ int, v []driver.Value) []driver.Value {
				return []driver.Value{v[0].(int64) + shift, v[1], v[2]}
			})
			if err != nil {
				return fmt.Errorf("targets: %w", err)
			}
			return nil
		})
		size += int64(len(rb.events))
		if err == nil {
			_, err = tx.ExecContext(ctx, "INSERT INTO checkpoints (tid, size, note) VALUES (1, ?, ?)", size, rb.note)
		}
		if err == nil {
			_, err = tx.ExecContext(ctx, "UPDATE tenants SET size = ? WHERE tid = 1", size)
		}
		if err != nil {
			tx.Rollback()
			return err
		}
		return tx.Commit()
	}
}

// bundleInserter writes rawBatches into a table of one row per bundle of
// 64 events (each event's values length-prefixed, one after another, in
// one blob), with no index, in the same durable transactions as
// rawInserter's, checkpoint and size rows included: what a layout of
// several events a row would cost the rows alone.
func bundleInserter(b *testing.B) func(rb rawBatch) error {
	b.Helper()
	ctx := context.Background()
	w, err := sql.Open("sqlite", "file:"+filepath.Join(b.TempDir(), "bundles.db")+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=cache_size(-16384)&_txlock=immediate")
	if err != nil {
		b.Fatal(err)
	}
	w.SetMaxOpenConns(1)
	b.Cleanup(func() { w.Close() })
	if _, err := w.Exec(`CREATE TABLE bundles (key INTEGER PRIMARY KEY, n INTEGER NOT NULL, rows BLOB NOT NULL);
		CREATE TABLE checkpoints (size INTEGER PRIMARY KEY, note BLOB NOT NULL);
		CREATE TABLE tenants (tid INTEGER PRIMARY KEY, size INTEGER NOT NULL);
		INSERT INTO tenants VALUES (1, 0)`); err != nil {
		b.Fatal(err)
	}
	const perBundle = 64
	var size int64
	var buf []byte
	return func(rb rawBatch) error {
		tx, err := w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		st, err := tx.PrepareContext(ctx, "INSERT INTO bundles (key, n, rows) VALUES (?, ?, ?)")
		if err != nil {
			return err
		}
		defer st.Close()
		for i := 0; i < len(rb.events); i += perBundle {
			evs := rb.events[i:min(i+perBundle, len(rb.events))]
			buf = buf[:0]
			for _, ev := range evs {
				for _, v := range ev {
					switch v := v.(type) {
					case int64:
						buf = binary.AppendVarint(buf, v)
					case []byte:
						buf = binary.AppendUvarint(buf, uint64(len(v)))
						buf = append(buf, v...)
					case string:
						buf = binary.AppendUvarint(buf, uint64(len(v)))
						buf = append(buf, v...)
					}
				}
			}
			if _, err := st.ExecContext(ctx, size+int64(i)+1, len(evs), buf); err != nil {
				return err
			}
		}
		size += int64(len(rb.events))
		if _, err := tx.ExecContext(ctx, "INSERT INTO checkpoints (size, note) VALUES (?, ?)", size, rb.note); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE tenants SET size = ? WHERE tid = 1", size); err != nil {
			return err
		}
		return tx.Commit()
	}
}

// secondaryIndexes are the indexes of events and targets beyond their
// keys, as BenchmarkIndexCost drops them.
var secondaryIndexes = []string{"events_id", "events_actor", "events_action", "events_workspace_action", "events_correlation", "targets_id"}

// BenchmarkAppendVsRawInsert alternates an Append of 1000 events with an
// insert of the rows an Append of the same events wrote, pre-built, into
// the same schema through the same driver (rawInserter), and into the
// same tables without their secondary indexes ("bare"), and into bundles
// of 64 events a row with no index (bundleInserter), so all four see the
// same moment of the machine; the order rotates. It reports each rate and
// append/raw-%, the share of the rows' own cost Append reaches (of the
// summed times, and the median of the iterations' ratios): how much of an
// append is Trail, how much the rows and indexes SQLite must write, how
// much the rows alone, and how much fewer rows would. CPU is the process's, so the background
// checkpoints of one arm may fall in another's time; the wall-clock
// ratios are the figures.
func BenchmarkAppendVsRawInsert(b *testing.B) {
	db := benchDB(b, sqlite.Options{})
	batches := sampleBatches(16, 1000)
	rows := rawBatches(b, batches)
	raw, bare, bundled := rawInserter(b), rawInserter(b, secondaryIndexes...), bundleInserter(b)
	ctx := context.Background()
	var took, cpu [4]time.Duration // Append, raw, bare, bundled
	var ratios []float64
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		var t [4]time.Duration
		for j := range 4 {
			k := (i + j) % 4
			t0, c0 := time.Now(), testenv.CPUTime()
			var err error
			switch k {
			case 0:
				_, err = db.Append(ctx, "acme", batches[i%len(batches)], trail.AppendOptions{})
			case 1:
				err = raw(rows[i%len(rows)])
			case 2:
				err = bare(rows[i%len(rows)])
			default:
				err = bundled(rows[i%len(rows)])
			}
			if err != nil {
				b.Fatal(err)
			}
			t[k] = time.Since(t0)
			took[k] += t[k]
			cpu[k] += testenv.CPUTime() - c0
		}
		ratios = append(ratios, t[1].Seconds()/t[0].Seconds())
	}
	slices.Sort(ratios)
	n := float64(b.N * 1000)
	for k, name := range []string{"append", "raw", "bare", "bundled"} {
		b.ReportMetric(n/took[k].Seconds(), name+"-events/s")
		b.ReportMetric(float64(cpu[k].Microseconds())/n, name+"-cpu-µs/event")
	}
	b.ReportMetric(100*took[1].Seconds()/took[0].Seconds(), "append/raw-%")
	b.ReportMetric(100*ratios[len(ratios)/2], "append/raw-median-%")
	b.ReportMetric(0, "ns/op")
}
