package trail

import (
	"encoding/binary"
	"time"
	"unicode/utf8"
)

// CanonicalIndex returns what IndexOf gives for the event whose canonical
// bytes (MarshalCanonical) are body, or the error UnmarshalCanonical
// returns for them. Verification derives every stored event's index with
// it, so it reads only the members an index needs: bytes in exactly the
// form MarshalCanonical writes (members in order, no escapes in the
// strings it reads, every other member of the right JSON kind) are read in
// one pass with no decoding of the rest; anything else is left to
// UnmarshalCanonical and IndexOf themselves.
func CanonicalIndex(body []byte) (Index, error) {
	return CanonicalIndexIn(body, string(body))
}

// CanonicalIndexIn is CanonicalIndex of body, whose bytes s holds too
// (s == string(body)): the strings of the Index are slices of s. A caller
// reading many events (verification reads every event of a log) can copy
// a run of them into one string once, instead of an allocation an event.
// An s of another length is ignored.
func CanonicalIndexIn(body []byte, s string) (Index, error) {
	if len(s) != len(body) {
		s = string(body)
	}
	if ix, ok := readIndex(body, s); ok {
		return ix, nil
	}
	ev, err := UnmarshalCanonical(body)
	if err != nil {
		return Index{}, err
	}
	return IndexOf(ev), nil
}

// readIndex reads body as MarshalCanonical writes it. It reports false on
// anything else (which UnmarshalCanonical may still read, or refuse):
// whenever it reports true, UnmarshalCanonical decodes body and IndexOf
// gives the Index it returns (FuzzCanonicalIndex holds it to that).
func readIndex(body []byte, s string) (Index, bool) {
	r := indexReader{b: body, s: s}
	var ix Index
	var v bool
	ok := r.object(eventMembers, func(m int) bool {
		switch eventMembers[m] {
		case "action":
			return r.into(&ix.Action)
		case "actor":
			return r.object(actorMembers, func(m int) bool {
				switch actorMembers[m] {
				case "id":
					return r.into(&ix.ActorID)
				case "type":
					return r.into((*string)(&ix.ActorType))
				case "roles":
					return r.strings()
				}
				return r.skipStr() // email, name
			})
		case "category":
			return r.into(&ix.Category)
		case "context":
			return r.peek('{') && r.skip(0)
		case "correlation_id":
			return r.into(&ix.CorrelationID)
		case "id":
			return r.into(&ix.ID)
		case "occurred_at":
			return r.time(&ix.OccurredAt)
		case "outcome":
			return r.into((*string)(&ix.Outcome))
		case "recorded_at":
			return r.time(&ix.RecordedAt)
		case "redacted":
			return r.strings()
		case "request":
			return r.strs(requestMembers)
		case "scope":
			return r.strs(scopeMembers, &ix.Organization, &ix.Team, &ix.Workspace)
		case "seq":
			return r.uint()
		case "targets":
			return r.array(func() bool {
				var t Target
				if !r.strs(targetMembers, &t.ID, nil, &t.Type) {
					return false
				}
				ix.addTarget(t)
				return true
			})
		case "v":
			v = r.literal("1")
			return v
		case "violations":
			return r.array(func() bool { return r.strs(violationMembers) })
		}
		return r.skipStr() // reason, tenant
	})
	return ix, ok && v && r.i == len(body)
}

// The members of an event and of its parts, in the order MarshalCanonical
// writes them (RFC 8785's).
var (
	eventMembers = []string{"action", "actor", "category", "context", "correlation_id", "id", "occurred_at", "outcome",
		"reason", "recorded_at", "redacted", "request", "scope", "seq", "targets", "tenant", "v", "violations"}
	actorMembers     = []string{"email", "id", "name", "roles", "type"}
	requestMembers   = []string{"ip", "method", "path", "request_id", "session_id", "trace_id", "user_agent"}
	scopeMembers     = []string{"organization", "team", "workspace"}
	targetMembers    = []string{"id", "name", "type"}
	violationMembers = []string{"message", "path", "rule"}
)

// addTarget adds t's type and id to ix's targets unless they are there
// (IndexOf's rule).
func (ix *Index) addTarget(t Target) {
	for _, s := range ix.Targets {
		if s == t {
			return
		}
	}
	ix.Targets = append(ix.Targets, t)
}

// indexReader reads canonical JSON from b at i. Its methods report false,
// and stop, on anything MarshalCanonical does not write.
type indexReader struct {
	b []byte
	i int
	// s holds b's bytes: the strings read are slices of it, so that an
	// event's dozen index strings cost at most one allocation, not one
	// each (verification reads every event of the log through here).
	s string
}

// peek reports whether the next byte is c, without reading it.
func (r *indexReader) peek(c byte) bool { return r.i < len(r.b) && r.b[r.i] == c }

// next reads byte c.
func (r *indexReader) next(c byte) bool {
	if r.peek(c) {
		r.i++
		return true
	}
	return false
}

// object reads an object whose member names are among names, in their
// order and each once, calling member with the index in names of each to
// read its value. An empty object is never written.
func (r *indexReader) object(names []string, member func(int) bool) bool {
	if !r.next('{') {
		return false
	}
	at := 0
	for first := true; ; first = false {
		if r.next('}') {
			return !first
		}
		if !first && !r.next(',') {
			return false
		}
		name, ok := r.str()
		if !ok || !r.next(':') {
			return false
		}
		for at < len(names) && names[at] != name {
			at++
		}
		if at == len(names) || !member(at) {
			return false
		}
		at++
	}
}

// strs reads an object whose members, among names, are all strings: that
// of names[m] into into[m] (where there is one and it is not nil; the
// others are skipped, escapes and all).
func (r *indexReader) strs(names []string, into ...*string) bool {
	return r.object(names, func(m int) bool {
		if m < len(into) && into[m] != nil {
			return r.into(into[m])
		}
		return r.skipStr()
	})
}

// into reads a string (str) into dst.
func (r *indexReader) into(dst *string) bool {
	s, ok := r.str()
	*dst = s
	return ok
}

// skipStr reads a string the index does not need, escapes and all.
func (r *indexReader) skipStr() bool { return r.peek('"') && r.skipString() }

// array reads a non-empty array, calling elem to read each element.
func (r *indexReader) array(elem func() bool) bool {
	if !r.next('[') {
		return false
	}
	for first := true; ; first = false {
		if r.next(']') {
			return !first
		}
		if (!first && !r.next(',')) || !elem() {
			return false
		}
	}
}

// strings reads a non-empty array of strings.
func (r *indexReader) strings() bool {
	return r.array(r.skipStr)
}

// str reads a string that holds no escape: what MarshalCanonical writes for
// it is then its bytes, which must be valid UTF-8.
func (r *indexReader) str() (string, bool) {
	if !r.next('"') {
		return "", false
	}
	start, ascii := r.i, true
	for r.i += plain(r.b[r.i:]); r.i < len(r.b); r.i++ {
		switch c := r.b[r.i]; {
		case c == '"':
			s := r.b[start:r.i]
			r.i++
			if !ascii && !utf8.Valid(s) {
				return "", false
			}
			return r.s[start : start+len(s)], true
		case c == '\\' || c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", false
}

// time reads a timestamp into t as a time.Time reads its JSON.
func (r *indexReader) time(t *time.Time) bool {
	start := r.i
	if _, ok := r.str(); !ok {
		return false
	}
	return t.UnmarshalJSON(r.b[start:r.i]) == nil && !t.IsZero()
}

// uint reads a number of a uint64: digits, the first not 0.
func (r *indexReader) uint() bool {
	start := r.i
	var n uint64
	for ; r.i < len(r.b) && '0' <= r.b[r.i] && r.b[r.i] <= '9'; r.i++ {
		d := uint64(r.b[r.i] - '0')
		if n > (1<<64-1-d)/10 {
			return false
		}
		n = n*10 + d
	}
	return r.i > start && r.b[start] != '0'
}

// literal reads lit.
func (r *indexReader) literal(lit string) bool {
	if len(r.b)-r.i < len(lit) || string(r.b[r.i:r.i+len(lit)]) != lit {
		return false
	}
	r.i += len(lit)
	return true
}

// plain returns how many bytes at the start of b, in whole words of 8, are
// printable ASCII other than '"' and '\\': what a string holds but for
// the few bytes that need a closer look.
func plain(b []byte) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	zero := func(x uint64) uint64 { return (x - ones) &^ x & highs } // a byte of x is 0
	n := 0
	for ; len(b)-n >= 8; n += 8 {
		x := binary.LittleEndian.Uint64(b[n:])
		if (x-ones*0x20)&^x&highs|zero(x^(ones*'"'))|zero(x^(ones*'\\'))|x&highs != 0 {
			break
		}
	}
	return n
}

// maxSkipDepth bounds the nesting skip follows: deeper values are left to
// UnmarshalCanonical (Limits keep context far shallower).
const maxSkipDepth = 64

// skip reads one JSON value of any kind, as RFC 8259 has it, at nesting
// depth.
func (r *indexReader) skip(depth int) bool {
	if depth > maxSkipDepth || r.i >= len(r.b) {
		return false
	}
	switch c := r.b[r.i]; {
	case c == '{':
		r.i++
		for first := true; ; first = false {
			if r.next('}') {
				return true
			}
			if !first && !r.next(',') {
				return false
			}
			if !r.peek('"') || !r.skipString() || !r.next(':') || !r.skip(depth+1) {
				return false
			}
		}
	case c == '[':
		r.i++
		for first := true; ; first = false {
			if r.next(']') {
				return true
			}
			if (!first && !r.next(',')) || !r.skip(depth+1) {
				return false
			}
		}
	case c == '"':
		return r.skipString()
	case c == 't':
		return r.literal("true")
	case c == 'f':
		return r.literal("false")
	case c == 'n':
		return r.literal("null")
	default:
		return r.number()
	}
}

// skipString reads a string with any escapes RFC 8259 allows.
func (r *indexReader) skipString() bool {
	r.i++ // the opening quote
	for r.i < len(r.b) {
		r.i += plain(r.b[r.i:])
		if r.i == len(r.b) {
			return false
		}
		c := r.b[r.i]
		r.i++
		switch {
		case c == '"':
			return true
		case c < 0x20:
			return false
		case c == '\\':
			if r.i >= len(r.b) {
				return false
			}
			e := r.b[r.i]
			r.i++
			switch e {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(r.b)-r.i < 4 {
					return false
				}
				for _, h := range r.b[r.i : r.i+4] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return false
					}
				}
				r.i += 4
			default:
				return false
			}
		}
	}
	return false
}

// number reads a JSON number.
func (r *indexReader) number() bool {
	digits := func() int {
		start := r.i
		for r.i < len(r.b) && '0' <= r.b[r.i] && r.b[r.i] <= '9' {
			r.i++
		}
		return r.i - start
	}
	r.next('-')
	if r.next('0') {
		if r.peek('0') || (r.i < len(r.b) && '1' <= r.b[r.i] && r.b[r.i] <= '9') {
			return false
		}
	} else if digits() == 0 {
		return false
	}
	if r.next('.') && digits() == 0 {
		return false
	}
	if r.next('e') || r.next('E') {
		if !r.next('+') {
			r.next('-')
		}
		if digits() == 0 {
			return false
		}
	}
	return true
}
