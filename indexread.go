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
		switch m {
		case evAction:
			return r.into(&ix.Action)
		case evActor:
			return r.object(actorMembers, func(m int) bool {
				switch m {
				case acID:
					return r.into(&ix.ActorID)
				case acType:
					return r.into((*string)(&ix.ActorType))
				case acRoles:
					return r.strings()
				}
				return r.skipStr() // email, name
			})
		case evCategory:
			return r.into(&ix.Category)
		case evContext:
			return r.peek('{') && r.skip(0)
		case evCorrelationID:
			return r.into(&ix.CorrelationID)
		case evID:
			return r.into(&ix.ID)
		case evOccurredAt:
			return r.time(&ix.OccurredAt)
		case evOutcome:
			return r.into((*string)(&ix.Outcome))
		case evRecordedAt:
			return r.time(&ix.RecordedAt)
		case evRedacted:
			return r.strings()
		case evRequest:
			return r.strs(requestMembers)
		case evScope:
			return r.strs(scopeMembers, &ix.Organization, &ix.Team, &ix.Workspace)
		case evSeq:
			return r.uint()
		case evTargets:
			return r.array(func() bool {
				var t Target
				if !r.strs(targetMembers, &t.ID, nil, &t.Type) {
					return false
				}
				ix.addTarget(t)
				return true
			})
		case evV:
			v = r.literal("1")
			return v
		case evViolations:
			return r.array(func() bool { return r.strs(violationMembers) })
		}
		return r.skipStr() // reason, tenant
	})
	return ix, ok && v && r.i == len(body)
}

// The members of an event, by their place in eventMembers.
const (
	evAction = iota
	evActor
	evCategory
	evContext
	evCorrelationID
	evID
	evOccurredAt
	evOutcome
	evReason
	evRecordedAt
	evRedacted
	evRequest
	evScope
	evSeq
	evTargets
	evTenant
	evV
	evViolations
)

// The members of an actor, by their place in actorMembers.
const (
	acEmail = iota
	acID
	acName
	acRoles
	acType
)

// The members of an event and of its parts, in the order MarshalCanonical
// writes them (RFC 8785's), each as its bytes there: the name quoted, then
// the colon.
var (
	eventMembers = memberNames("action", "actor", "category", "context", "correlation_id", "id", "occurred_at", "outcome",
		"reason", "recorded_at", "redacted", "request", "scope", "seq", "targets", "tenant", "v", "violations")
	actorMembers     = memberNames("email", "id", "name", "roles", "type")
	requestMembers   = memberNames("ip", "method", "path", "request_id", "session_id", "trace_id", "user_agent")
	scopeMembers     = memberNames("organization", "team", "workspace")
	targetMembers    = memberNames("id", "name", "type")
	violationMembers = memberNames("message", "path", "rule")
)

// memberName is a member name as an object's member starts in canonical
// JSON, `"name":` (q), with its first 16 bytes as two words (w, zero past
// q's end) and the masks of q's bytes in them (m), so that most names are
// matched by two compares of words.
type memberName struct {
	q    string
	w, m [2]uint64
}

// memberNames returns the memberName of each name.
func memberNames(names ...string) []memberName {
	out := make([]memberName, len(names))
	for i, n := range names {
		q := `"` + n + `":`
		var b, mask [16]byte
		copy(b[:], q)
		for j := range min(len(q), len(mask)) {
			mask[j] = 0xff
		}
		out[i] = memberName{q: q,
			w: [2]uint64{binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])},
			m: [2]uint64{binary.LittleEndian.Uint64(mask[:8]), binary.LittleEndian.Uint64(mask[8:])}}
	}
	return out
}

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

// object reads an object whose member names are among names (each
// `"name":`, memberNames), in their order and each once, calling member
// with the index in names of each to read its value. A name is matched by
// its bytes: one written with an escape is not read here, as str reads no
// escape. An empty object is never written.
func (r *indexReader) object(names []memberName, member func(int) bool) bool {
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
		for at < len(names) && !r.name(&names[at]) {
			at++
		}
		if at == len(names) || !member(at) {
			return false
		}
		at++
	}
}

// name reads the member name n when the bytes at r.i are it.
func (r *indexReader) name(n *memberName) bool {
	rest := r.b[r.i:]
	if len(rest) < len(n.q) {
		return false
	}
	if len(rest) >= 16 {
		if binary.LittleEndian.Uint64(rest)&n.m[0] != n.w[0] || binary.LittleEndian.Uint64(rest[8:])&n.m[1] != n.w[1] ||
			(len(n.q) > 16 && string(rest[16:len(n.q)]) != n.q[16:]) {
			return false
		}
	} else if string(rest[:len(n.q)]) != n.q {
		return false
	}
	r.i += len(n.q)
	return true
}

// strs reads an object whose members, among names, are all strings: that
// of names[m] into into[m] (where there is one and it is not nil; the
// others are skipped, escapes and all).
func (r *indexReader) strs(names []memberName, into ...*string) bool {
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
	b := r.b
	start, ascii := r.i, true
	i := start
	for ; len(b)-i >= 8 && plainWord(binary.LittleEndian.Uint64(b[i:])); i += 8 {
	}
	for ; i < len(b); i++ {
		c := b[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			continue
		}
		switch {
		case c == '"':
			if !ascii && !utf8.Valid(b[start:i]) {
				return "", false
			}
			r.i = i + 1
			return r.s[start:i], true
		case c < utf8.RuneSelf: // a control character or an escape
			return "", false
		}
		ascii = false
	}
	return "", false
}

// plainWord reports whether the 8 bytes of x are all printable ASCII other
// than '"' and '\\': bytes a string holds as they are, 8 at a time (a
// string's other bytes are read one by one).
func plainWord(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	zero := func(x uint64) uint64 { return (x - ones) &^ x & highs } // a byte of x is 0
	return (x-ones*0x20)&^x&highs|zero(x^(ones*'"'))|zero(x^(ones*'\\'))|x&highs == 0
}

// time reads a timestamp into t as a time.Time reads its JSON: the form
// FormatTime writes by canonicalTime, any other by time.Time itself.
func (r *indexReader) time(t *time.Time) bool {
	start := r.i
	s, ok := r.str()
	if !ok {
		return false
	}
	if at, ok := canonicalTime(s); ok {
		*t = at
	} else if t.UnmarshalJSON(r.b[start:r.i]) != nil {
		return false
	}
	return !t.IsZero()
}

// canonicalTime reads s when it is in the form FormatTime writes,
// 2006-01-02T15:04:05Z with 1 to 9 digits of a second after a '.' before
// the Z or none, every field in range (no leap second, as time has none),
// to the instant time.Time's UnmarshalJSON reads from it. It also reads
// trailing zeros of a second, which FormatTime does not write, to the
// same instant time reads. It reports false for any other text, which
// may still be RFC 3339 that time reads (an offset, more digits, lower
// case): a caller leaves that to time.
func canonicalTime(s string) (time.Time, bool) {
	const short = len("2006-01-02T15:04:05Z")
	if len(s) < short || len(s) > short+10 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
		s[len(s)-1] != 'Z' {
		return time.Time{}, false
	}
	ok := true
	two := func(i int) int { // the number of the two digits at s[i:]
		hi, lo := s[i]-'0', s[i+1]-'0'
		if hi > 9 || lo > 9 {
			ok = false
		}
		return int(hi)*10 + int(lo)
	}
	year, month, day := two(0)*100+two(2), two(5), two(8)
	hour, minute, sec := two(11), two(14), two(17)
	nsec := 0
	if frac := s[19 : len(s)-1]; frac != "" {
		if len(frac) < 2 || frac[0] != '.' {
			return time.Time{}, false
		}
		for i := 1; i < 10; i++ { // 9 digits, those past frac's end 0
			d := byte(0)
			if i < len(frac) {
				if d = frac[i] - '0'; d > 9 {
					ok = false
				}
			}
			nsec = nsec*10 + int(d)
		}
	}
	if !ok || month < 1 || month > 12 || day < 1 || day > daysIn(month, year) || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	secs := civilDays(year, month, day)*86400 + int64(hour*3600+minute*60+sec)
	return time.Unix(secs, int64(nsec)).UTC(), true
}

// civilDays returns the days from 1970-01-01 to a date of the proleptic
// Gregorian calendar (month 1 to 12, day in range), as time counts them:
// Howard Hinnant's days_from_civil, whose years start on March 1.
func civilDays(year, month, day int) int64 {
	if month <= 2 {
		year--
	}
	era := year
	if era < 0 {
		era -= 399
	}
	era /= 400
	yoe := year - era*400                     // 0 to 399
	doy := (153*((month+9)%12)+2)/5 + day - 1 // 0 to 365, from March 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy    // 0 to 146096
	const toEpoch = 719468                    // days from 0000-03-01 to 1970-01-01
	return int64(era)*146097 + int64(doe) - toEpoch
}

// daysIn returns the number of days of month (1 to 12) of year in the
// proleptic Gregorian calendar, as time has it.
func daysIn(month, year int) int {
	switch {
	case month == 2 && year%4 == 0 && (year%100 != 0 || year%400 == 0):
		return 29
	case month == 2:
		return 28
	case month == 4 || month == 6 || month == 9 || month == 11:
		return 30
	}
	return 31
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
	b := r.b
	i := r.i + 1 // past the opening quote
	for ; len(b)-i >= 8 && plainWord(binary.LittleEndian.Uint64(b[i:])); i += 8 {
	}
	for ; i < len(b); i++ {
		c := b[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		switch {
		case c == '"':
			r.i = i + 1
			return true
		case c < 0x20 || i+1 == len(b):
			return false
		}
		i++ // the byte after the backslash
		switch b[i] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		case 'u':
			if len(b)-i <= 4 {
				return false
			}
			for _, h := range b[i+1 : i+5] {
				if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
					return false
				}
			}
			i += 4
		default:
			return false
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
