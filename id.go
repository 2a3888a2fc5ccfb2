package trail

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"time"
)

// NewID returns a new UUIDv7 (RFC 9562) for an event recorded at t: 48 bits
// of Unix milliseconds then 74 random bits, so ids sort by time and never
// need coordination between Trail processes.
func NewID(t time.Time) string {
	var u [16]byte
	ms := uint64(t.UnixMilli())
	binary.BigEndian.PutUint64(u[0:8], ms<<16)
	rand.Read(u[6:])            // crypto/rand.Read never returns an error
	u[6] = 0x70 | (u[6] & 0x0f) // version 7
	u[8] = 0x80 | (u[8] & 0x3f) // variant 10
	return FormatID(u)
}

// FormatID writes a 16-byte UUID in its canonical lower-case text form.
func FormatID(u [16]byte) string {
	var s [36]byte
	hex.Encode(s[0:8], u[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], u[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], u[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], u[8:10])
	s[23] = '-'
	hex.Encode(s[24:], u[10:])
	return string(s[:])
}

// ParseID reads a UUID in the text form FormatID writes (either case). Stores
// keep ids as 16 bytes; an id that does not parse names no event.
func ParseID(s string) (u [16]byte, ok bool) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, false
	}
	j := 0
	for _, part := range [...][2]int{{0, 8}, {9, 13}, {14, 18}, {19, 23}, {24, 36}} {
		n, err := hex.Decode(u[j:], []byte(s[part[0]:part[1]]))
		if err != nil {
			return u, false
		}
		j += n
	}
	return u, true
}
