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
			return newCopyReader(func(c *binaryCopy) bool {
				if i == n {
					return false
				}
				c.row(2)
				c.int8(int64(i))
				c.text(string(bytes.Repeat([]byte{'x'}, i%300)))
				i++
				return true
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
