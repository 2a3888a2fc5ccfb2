package postgres

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"
	"testing/iotest"
)

// TestCopyReader reads the same rows through buffers of every size
// (testing/iotest.TestReader, one byte at a time, and at once): each gives
// the same COPY data, framed as the binary format says, whatever the
// buffer.
func TestCopyReader(t *testing.T) {
	for _, n := range []int{0, 1, 3, 1000} {
		rows := func() io.Reader {
			i := 0
			return newCopyReader(nil, func(c *binaryCopy) (bool, error) {
				if i == n {
					return false, nil
				}
				c.row(2)
				c.int8(int64(i))
				c.text(string(bytes.Repeat([]byte{'x'}, i%300)))
				i++
				return true, nil
			})
		}
		want := []byte(copySignature + "\x00\x00\x00\x00\x00\x00\x00\x00")
		for i := range n {
			want = binary.BigEndian.AppendUint16(want, 2)
			want = binary.BigEndian.AppendUint32(want, 8)
			want = binary.BigEndian.AppendUint64(want, uint64(i))
			want = binary.BigEndian.AppendUint32(want, uint32(i%300))
			want = append(want, bytes.Repeat([]byte{'x'}, i%300)...)
		}
		want = append(want, 0xff, 0xff)
		if err := iotest.TestReader(rows(), want); err != nil {
			t.Errorf("%d rows: %v", n, err)
		}
		for name, r := range map[string]io.Reader{"one byte at a time": iotest.OneByteReader(rows()), "at once": rows()} {
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%d rows, %s: %d bytes, %v; want %d bytes", n, name, len(got), err, len(want))
			}
		}
	}
}

// TestCopyReaderHoldsLittle reads a megabyte of COPY data in 64 KB reads,
// as the connection does, and checks that the reader never holds more than
// a read and a row of it.
func TestCopyReaderHoldsLittle(t *testing.T) {
	row := bytes.Repeat([]byte{'x'}, 1000)
	i := 0
	r := newCopyReader(nil, func(c *binaryCopy) (bool, error) {
		if i == 1000 {
			return false, nil
		}
		c.row(1)
		c.bytea(row)
		i++
		return true, nil
	})
	p := make([]byte, 65536)
	total := 0
	for {
		n, err := r.Read(p)
		total += n
		if held := cap(r.c.b); held > 2*len(p) {
			t.Fatalf("after %d bytes read the reader holds %d bytes", total, held)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if want := len(copySignature) + 8 + 1000*(2+4+len(row)) + 2; total != want {
		t.Errorf("read %d bytes, want %d", total, want)
	}
}
