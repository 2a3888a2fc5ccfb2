package trail

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// PageLimit turns a requested page size into the one to use.
func PageLimit(n int) (int, error) {
	switch {
	case n == 0:
		return DefaultPageSize, nil
	case n < 0 || n > MaxPageSize:
		return 0, Invalid("bad query", FieldError{Path: "limit", Message: fmt.Sprintf("must be 1 to %d", MaxPageSize)})
	}
	return n, nil
}

// EncodeCursor makes the opaque cursor that resumes a scan after seq in the
// given direction. It names a position in the log, not an offset, so pages
// stay stable while new events arrive.
func EncodeCursor(seq uint64, desc bool) string {
	dir := "a"
	if desc {
		dir = "d"
	}
	return base64.RawURLEncoding.EncodeToString([]byte("v1:" + dir + ":" + strconv.FormatUint(seq, 10)))
}

// DecodeCursor reads a cursor made by EncodeCursor for the same direction;
// it returns 0 for the empty cursor.
func DecodeCursor(c string, desc bool) (uint64, error) {
	if c == "" {
		return 0, nil
	}
	bad := Invalid("bad query", FieldError{Path: "cursor", Message: "not a cursor from this query"})
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, bad
	}
	parts := strings.Split(string(raw), ":")
	dir := "a"
	if desc {
		dir = "d"
	}
	if len(parts) != 3 || parts[0] != "v1" || parts[1] != dir {
		return 0, bad
	}
	seq, err := strconv.ParseUint(parts[2], 10, 64)
	if err != nil || seq == 0 {
		return 0, bad
	}
	return seq, nil
}
