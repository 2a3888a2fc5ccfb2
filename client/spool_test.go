package client

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

// frames returns n event frames with payloads p0, p1, … and their offsets.
func testFrames(n int) ([]byte, []int) {
	var b []byte
	var offs []int
	for i := range n {
		offs = append(offs, len(b))
		b = appendFrame(b, recEvent, uint64(i+1), fmt.Appendf(nil, `{"p":%d}`, i))
	}
	return b, offs
}

func seqsOf(recs []spoolRecord) []uint64 {
	var out []uint64
	for _, r := range recs {
		out = append(out, r.seq)
	}
	return out
}

func TestFrameRoundTrip(t *testing.T) {
	b := appendFrame(nil, recBatch, 42, []byte(`{"first":1}`))
	rec, n, st := parseFrame(b)
	if st != frameOK || n != len(b) || rec.kind != recBatch || rec.seq != 42 || string(rec.payload) != `{"first":1}` {
		t.Fatalf("parseFrame = %+v, %d, %v", rec, n, st)
	}
	for i := range len(b) {
		if _, _, st := parseFrame(b[:i]); st != frameShort {
			t.Errorf("a frame cut to %d bytes: status %v, want short", i, st)
		}
	}
}

// scanFrames skips damage and keeps the good records around it.
func TestScanFrames(t *testing.T) {
	const n = 6
	for _, tc := range []struct {
		name     string
		damage   func(b []byte, offs []int) []byte
		wantSeqs []uint64
		wantBad  int  // corrupt stretches reported
		wantTail bool // the scan ends before the data does
	}{
		{"clean", func(b []byte, _ []int) []byte { return b }, []uint64{1, 2, 3, 4, 5, 6}, 0, false},
		{"payload byte", func(b []byte, o []int) []byte { b[o[3]-2] ^= 1; return b }, []uint64{1, 2, 4, 5, 6}, 1, false},
		{"length", func(b []byte, o []int) []byte { b[o[2]+4] ^= 0xFF; return b }, []uint64{1, 2, 4, 5, 6}, 1, false},
		{"length huge", func(b []byte, o []int) []byte { b[o[2]+7] = 0x7F; return b }, []uint64{1, 2, 4, 5, 6}, 1, false},
		{"magic", func(b []byte, o []int) []byte { b[o[0]] = 0; return b }, []uint64{2, 3, 4, 5, 6}, 1, false},
		{"checksum", func(b []byte, o []int) []byte { b[o[4]+8] ^= 0x80; return b }, []uint64{1, 2, 3, 4, 6}, 1, false},
		{"two records zeroed", func(b []byte, o []int) []byte { clear(b[o[1]:o[3]]); return b }, []uint64{1, 4, 5, 6}, 1, false},
		{"torn tail", func(b []byte, o []int) []byte { return b[:len(b)-3] }, []uint64{1, 2, 3, 4, 5}, 0, true},
		{"torn header", func(b []byte, o []int) []byte { return b[:o[5]+5] }, []uint64{1, 2, 3, 4, 5}, 0, true},
		{"zeros after", func(b []byte, o []int) []byte { return append(b, make([]byte, 100)...) }, []uint64{1, 2, 3, 4, 5, 6}, 0, true},
		{"last record corrupt", func(b []byte, o []int) []byte { b[len(b)-1] ^= 1; return b }, []uint64{1, 2, 3, 4, 5}, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, offs := testFrames(n)
			b = tc.damage(b, offs)
			sc := scanFrames(b, 0)
			if got := seqsOf(sc.recs); !slices.Equal(got, tc.wantSeqs) {
				t.Errorf("records %v, want %v", got, tc.wantSeqs)
			}
			if len(sc.bad) != tc.wantBad {
				t.Errorf("damage %v, want %d stretches", sc.bad, tc.wantBad)
			}
			if tail := sc.end < int64(len(b)); tail != tc.wantTail {
				t.Errorf("tail at %d of %d, want tail %v", sc.end, len(b), tc.wantTail)
			}
			for i, r := range sc.recs {
				if want := fmt.Sprintf(`{"p":%d}`, r.seq-1); string(r.payload) != want {
					t.Errorf("record %d: payload %s, want %s", i, r.payload, want)
				}
			}
		})
	}
}

func readSpool(t *testing.T, sp *spool) []spoolRecord {
	t.Helper()
	rd := sp.newReader()
	var out []spoolRecord
	for {
		rec, ok, err := rd.next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return out
		}
		out = append(out, rec)
	}
}

func openTestSpool(t *testing.T, dir string, segSize int64) *spool {
	t.Helper()
	sp, err := openSpool(dir, segSize, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

// Concurrent appends share fsyncs, and everything appended reads back in
// seq order across segment rotations.
func TestSpoolAppendAndRead(t *testing.T) {
	dir := t.TempDir()
	sp := openTestSpool(t, dir, 4<<10)
	const workers, each = 16, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if _, err := sp.appendSync(recEvent, fmt.Appendf(nil, `{"w":%d,"i":%d}`, w, i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	recs := readSpool(t, sp)
	if len(recs) != workers*each {
		t.Fatalf("read %d records, want %d", len(recs), workers*each)
	}
	for i, r := range recs {
		if r.seq != uint64(i+1) {
			t.Fatalf("record %d has seq %d", i, r.seq)
		}
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) < 3 {
		t.Errorf("%d segments, want rotation", len(segs))
	}
	// Acknowledging deletes the delivered segments but the active one.
	if err := sp.setAck(uint64(workers * each)); err != nil {
		t.Fatal(err)
	}
	if segs, _ := filepath.Glob(filepath.Join(dir, "*.seg")); len(segs) != 1 {
		t.Errorf("after the ack: segments %v, want the active one", segs)
	}
	if err := sp.close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, ackName))
	if err != nil || !bytes.Contains(b, fmt.Appendf(nil, `"acked":%d`, workers*each)) {
		t.Fatalf("ack file %q, %v", b, err)
	}
	// Reopened: nothing pending, seqs continue.
	sp = openTestSpool(t, dir, 4<<10)
	defer sp.close()
	if rep := sp.recovery(); rep.Pending != 0 || rep.OpenBatch != "" || rep.Acked != workers*each {
		t.Errorf("recovery %+v", rep)
	}
	seq, err := sp.appendSync(recEvent, []byte(`{}`))
	if err != nil || seq != workers*each+1 {
		t.Errorf("next seq %d (%v), want %d", seq, err, workers*each+1)
	}
}

// Recovery finds the batch that was open at the crash (the last batch
// record not covered by the ack pointer) and what is pending after it.
func TestSpoolRecoverBatches(t *testing.T) {
	ev := func(sp *spool) uint64 {
		s, err := sp.appendSync(recEvent, []byte(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	batch := func(sp *spool, b batchRecord) {
		p, _ := json.Marshal(b)
		if _, err := sp.appendSync(recBatch, p); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name        string
		write       func(sp *spool)
		wantOpen    string
		wantAcked   uint64
		wantPending int
	}{
		{"no batch", func(sp *spool) { ev(sp); ev(sp) }, "", 0, 2},
		{"open batch", func(sp *spool) {
			ev(sp)
			ev(sp)
			batch(sp, batchRecord{First: 1, Last: 2, Key: "k1"})
			ev(sp)
		}, "k1", 0, 3},
		{"acked batch", func(sp *spool) {
			ev(sp)
			ev(sp)
			batch(sp, batchRecord{First: 1, Last: 2, Key: "k1"})
			ev(sp)
			sp.setAck(2)
		}, "", 2, 1},
		{"ack pointer lags: the later batch implies the earlier", func(sp *spool) {
			ev(sp)
			ev(sp)
			batch(sp, batchRecord{First: 1, Last: 2, Key: "k1"})
			ev(sp) // 4
			ev(sp) // 5
			batch(sp, batchRecord{First: 4, Last: 5, Key: "k2"})
		}, "k2", 3, 2},
		{"superseded: refused event skipped", func(sp *spool) {
			ev(sp)
			ev(sp)
			ev(sp)
			batch(sp, batchRecord{First: 1, Last: 3, Key: "k1"})
			batch(sp, batchRecord{First: 1, Last: 3, Key: "k2", Skip: []uint64{2}})
		}, "k2", 0, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			sp := openTestSpool(t, dir, 1<<20)
			tc.write(sp)
			if err := sp.close(); err != nil {
				t.Fatal(err)
			}
			sp = openTestSpool(t, dir, 1<<20)
			defer sp.close()
			rep := sp.recovery()
			if rep.OpenBatch != tc.wantOpen || rep.Acked != tc.wantAcked || rep.Pending != tc.wantPending {
				t.Errorf("recovery: open %q, acked %d, pending %d; want %q, %d, %d", rep.OpenBatch, rep.Acked, rep.Pending, tc.wantOpen, tc.wantAcked, tc.wantPending)
			}
		})
	}
}

// A torn tail is cut at open, and the records before it are kept.
func TestSpoolTornTail(t *testing.T) {
	dir := t.TempDir()
	sp := openTestSpool(t, dir, 1<<20)
	for range 5 {
		if _, err := sp.appendSync(recEvent, []byte(`{"x":1}`)); err != nil {
			t.Fatal(err)
		}
	}
	sp.close()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	path := segs[len(segs)-1]
	data, _ := os.ReadFile(path)
	// A crash mid-write: part of a sixth frame.
	torn := appendFrame(nil, recEvent, 6, []byte(`{"x":1}`))
	data = append(data, torn[:len(torn)-4]...)
	os.WriteFile(path, data, 0o600)

	sp = openTestSpool(t, dir, 1<<20)
	defer sp.close()
	rep := sp.recovery()
	if len(rep.Truncated) != 1 || rep.Truncated[0].Length != int64(len(torn)-4) || len(rep.Corrupt) != 0 || rep.Pending != 5 {
		t.Errorf("recovery %+v", rep)
	}
	if fi, _ := os.Stat(path); fi.Size() != int64(len(data)-len(torn)+4) {
		t.Errorf("segment is %d bytes after recovery", fi.Size())
	}
	if got := seqsOf(readSpool(t, sp)); !slices.Equal(got, []uint64{1, 2, 3, 4, 5}) {
		t.Errorf("read back %v", got)
	}
	if seq, _ := sp.appendSync(recEvent, []byte(`{}`)); seq != 6 {
		t.Errorf("next seq %d, want 6", seq)
	}
}
