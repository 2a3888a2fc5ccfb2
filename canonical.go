package trail

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// CanonicalVersion is the format version written into every canonical
// encoding as the member "v". A reader refuses versions it does not know, so
// the format can evolve (for example to carry encrypted personal fields)
// without old bytes ever being read under new rules.
const CanonicalVersion = 1

// MarshalCanonical returns the canonical bytes of ev: its JSON object form,
// with member "v" set to CanonicalVersion, canonicalized per RFC 8785 (JSON
// Canonicalization Scheme): members sorted by UTF-16 code units, no
// insignificant white space, numbers in ECMAScript form, minimal string
// escaping. Empty members are left out.
//
// These are the bytes the tamper-evident log hashes, exactly as stored. Any
// JCS implementation reproduces them from the parsed object, so an auditor
// can check them with tools of their own.
func MarshalCanonical(ev *Event) ([]byte, error) {
	var w canonWriter
	w.b = make([]byte, 0, 512)
	w.event(ev)
	if w.err != nil {
		return nil, w.err
	}
	return w.b, nil
}

// AppendCanonical appends ev's canonical bytes (MarshalCanonical) to dst
// and returns the extended buffer. A caller encoding many events reuses
// one buffer and copies each event's bytes out at their size, where
// MarshalCanonical grows a buffer of its own for each, allocating about
// two and a half times the bytes.
func AppendCanonical(dst []byte, ev *Event) ([]byte, error) {
	w := canonWriter{b: dst}
	w.event(ev)
	if w.err != nil {
		return dst, w.err
	}
	return w.b, nil
}

// UnmarshalCanonical parses bytes made by MarshalCanonical. It refuses an
// unknown format version and unknown members.
//
// Every read path decodes stored bodies with it, so bytes are read in one
// pass by eventDecoder; whatever it does not accept whole (anything not
// as MarshalCanonical writes it, and every refusal) goes to
// unmarshalCanonicalStrict, which decides and words the error.
func UnmarshalCanonical(data []byte) (*Event, error) {
	if ev, ok := decodeEvent(data, canonicalForm); ok {
		return ev, nil
	}
	return unmarshalCanonicalStrict(data)
}

// unmarshalCanonicalStrict is UnmarshalCanonical with encoding/json: the
// reference the one-pass decoder must agree with, Event for Event and
// refusal for refusal (FuzzUnmarshalCanonicalSame).
func unmarshalCanonicalStrict(data []byte) (*Event, error) {
	var wire struct {
		Event
		V *int `json:"v"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	err := dec.Decode(&wire)
	if err == nil && wire.V != nil && *wire.V == CanonicalVersion {
		ev := wire.Event
		return &ev, nil
	}
	// Only on failure, a second look says whether the version is the
	// cause (a newer format may have members this build does not know).
	var probe struct {
		V *int `json:"v"`
	}
	if perr := json.Unmarshal(data, &probe); perr == nil {
		switch {
		case probe.V == nil:
			return nil, fmt.Errorf("canonical event: no format version")
		case *probe.V != CanonicalVersion:
			return nil, fmt.Errorf("canonical event: format version %d is not supported (this build reads %d)", *probe.V, CanonicalVersion)
		}
	}
	return nil, fmt.Errorf("canonical event: %w", err)
}

// Canonicalize returns the RFC 8785 canonical form of a JSON value built of
// map[string]any, []any, string, bool, nil, json.Number and Go numbers. Other
// Go values are first passed through encoding/json.
func Canonicalize(v any) ([]byte, error) {
	var w canonWriter
	w.value(v, 0)
	if w.err != nil {
		return nil, w.err
	}
	return w.b, nil
}

// canonWriter writes canonical JSON. It stops at the first error.
type canonWriter struct {
	b   []byte // not a bytes.Buffer: appending is a third cheaper than its Write methods
	err error
	n   int // members written in the current object
}

// maxCanonDepth bounds recursion when canonicalizing untrusted values; the
// validator enforces a much smaller context depth.
const maxCanonDepth = 64

// event writes ev's members in sorted order. The order below is the RFC 8785
// order of the member names, which a test checks against the generic encoder.
func (w *canonWriter) event(ev *Event) {
	w.b = append(w.b, '{')
	w.n = 0
	w.str("action", ev.Action)
	if !ev.Actor.isZero() {
		w.key("actor")
		w.b = append(w.b, '{')
		n := w.n
		w.n = 0
		w.str("email", ev.Actor.Email)
		w.str("id", ev.Actor.ID)
		w.str("name", ev.Actor.Name)
		w.strs("roles", ev.Actor.Roles)
		w.str("type", string(ev.Actor.Type))
		w.b = append(w.b, '}')
		w.n = n
	}
	w.str("category", ev.Category)
	if len(ev.Context) > 0 {
		w.key("context")
		w.value(ev.Context, 1)
	}
	w.str("correlation_id", ev.CorrelationID)
	w.str("id", ev.ID)
	w.time("occurred_at", ev.OccurredAt)
	w.str("outcome", string(ev.Outcome))
	w.str("reason", ev.Reason)
	w.time("recorded_at", ev.RecordedAt)
	w.strs("redacted", ev.Redacted)
	if ev.Request != (Request{}) {
		r := ev.Request
		w.key("request")
		w.b = append(w.b, '{')
		n := w.n
		w.n = 0
		w.str("ip", r.IP)
		w.str("method", r.Method)
		w.str("path", r.Path)
		w.str("request_id", r.RequestID)
		w.str("session_id", r.SessionID)
		w.str("trace_id", r.TraceID)
		w.str("user_agent", r.UserAgent)
		w.b = append(w.b, '}')
		w.n = n
	}
	if ev.Scope != (Scope{}) {
		s := ev.Scope
		w.key("scope")
		w.b = append(w.b, '{')
		n := w.n
		w.n = 0
		w.str("organization", s.Organization)
		w.str("team", s.Team)
		w.str("workspace", s.Workspace)
		w.b = append(w.b, '}')
		w.n = n
	}
	if ev.Seq != 0 {
		w.key("seq")
		w.b = strconv.AppendUint(w.b, ev.Seq, 10)
	}
	if len(ev.Targets) > 0 {
		w.key("targets")
		w.b = append(w.b, '[')
		for i, t := range ev.Targets {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.b = append(w.b, '{')
			n := w.n
			w.n = 0
			w.str("id", t.ID)
			w.str("name", t.Name)
			w.str("type", t.Type)
			w.b = append(w.b, '}')
			w.n = n
		}
		w.b = append(w.b, ']')
	}
	w.str("tenant", ev.Tenant)
	w.key("v")
	w.b = strconv.AppendInt(w.b, CanonicalVersion, 10)
	if len(ev.Violations) > 0 {
		w.key("violations")
		w.b = append(w.b, '[')
		for i, v := range ev.Violations {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.b = append(w.b, '{')
			n := w.n
			w.n = 0
			w.str("message", v.Message)
			w.str("path", v.Path)
			w.str("rule", v.Rule)
			w.b = append(w.b, '}')
			w.n = n
		}
		w.b = append(w.b, ']')
	}
	w.b = append(w.b, '}')
}

func (a Actor) isZero() bool {
	return a.ID == "" && a.Type == "" && a.Name == "" && a.Email == "" && len(a.Roles) == 0
}

// key writes a member name of the event's own, preceded by a comma when it
// is not the first. The names are lower-case ASCII and need no escaping,
// so they are written as they are (a context's keys go through quote).
func (w *canonWriter) key(k string) {
	if w.n > 0 {
		w.b = append(w.b, ',')
	}
	w.n++
	w.b = append(w.b, '"')
	w.b = append(w.b, k...)
	w.b = append(w.b, `":`...)
}

// str writes a string member, or nothing when s is empty.
func (w *canonWriter) str(k, s string) {
	if s == "" {
		return
	}
	w.key(k)
	w.quote(s)
}

// strs writes a list-of-strings member, or nothing when it is empty.
func (w *canonWriter) strs(k string, ss []string) {
	if len(ss) == 0 {
		return
	}
	w.key(k)
	w.b = append(w.b, '[')
	for i, s := range ss {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.quote(s)
	}
	w.b = append(w.b, ']')
}

// time writes a timestamp member as RFC 3339 in UTC with as many fractional
// digits as it needs, or nothing when t is zero.
func (w *canonWriter) time(k string, t time.Time) {
	if t.IsZero() {
		return
	}
	w.key(k)
	w.b = append(w.b, '"')
	w.b = appendTime(w.b, t)
	w.b = append(w.b, '"')
}

// FormatTime formats t the way Trail writes timestamps everywhere: RFC 3339,
// UTC, with only the fractional digits needed.
func FormatTime(t time.Time) string {
	return string(appendTime(nil, t))
}

// appendTime appends FormatTime's text of t to dst.
func appendTime(dst []byte, t time.Time) []byte {
	return t.UTC().AppendFormat(dst, time.RFC3339Nano)
}

// quote writes s as a JSON string per RFC 8785: only '"', '\\' and control
// characters are escaped; invalid UTF-8 is written as U+FFFD.
func (w *canonWriter) quote(s string) {
	const hex = "0123456789abcdef"
	w.b = append(w.b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			w.b = append(w.b, s[start:i]...)
			switch c {
			case '"', '\\':
				w.b = append(w.b, '\\')
				w.b = append(w.b, c)
			case '\b':
				w.b = append(w.b, `\b`...)
			case '\f':
				w.b = append(w.b, `\f`...)
			case '\n':
				w.b = append(w.b, `\n`...)
			case '\r':
				w.b = append(w.b, `\r`...)
			case '\t':
				w.b = append(w.b, `\t`...)
			default:
				w.b = append(w.b, `\u00`...)
				w.b = append(w.b, hex[c>>4])
				w.b = append(w.b, hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			w.b = append(w.b, s[start:i]...)
			w.b = append(w.b, "\uFFFD"...)
			i++
			start = i
			continue
		}
		i += size
	}
	w.b = append(w.b, s[start:]...)
	w.b = append(w.b, '"')
}

// value writes any JSON value canonically.
func (w *canonWriter) value(v any, depth int) {
	if w.err != nil {
		return
	}
	if depth > maxCanonDepth {
		w.err = fmt.Errorf("canonical JSON: nested deeper than %d", maxCanonDepth)
		return
	}
	switch x := v.(type) {
	case nil:
		w.b = append(w.b, "null"...)
	case bool:
		if x {
			w.b = append(w.b, "true"...)
		} else {
			w.b = append(w.b, "false"...)
		}
	case string:
		w.quote(x)
	case json.Number:
		s, err := CanonicalNumber(string(x))
		if err != nil {
			w.err = err
			return
		}
		w.b = append(w.b, s...)
	case float64:
		w.float(x)
	case float32:
		w.float(float64(x))
	case int:
		w.float(float64(x))
	case int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		w.float(toFloat(x))
	case map[string]any:
		var small [16]string
		keys := sortedKeys(&small, x, true)
		w.b = append(w.b, '{')
		for i, k := range keys {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.quote(k)
			w.b = append(w.b, ':')
			w.value(x[k], depth+1)
		}
		w.b = append(w.b, '}')
	case []any:
		w.b = append(w.b, '[')
		for i, e := range x {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.value(e, depth+1)
		}
		w.b = append(w.b, ']')
	default:
		// Any other Go value: take its encoding/json form, then canonicalize that.
		j, err := json.Marshal(x)
		if err != nil {
			w.err = fmt.Errorf("canonical JSON: %w", err)
			return
		}
		var generic any
		dec := json.NewDecoder(bytes.NewReader(j))
		dec.UseNumber()
		if err := dec.Decode(&generic); err != nil {
			w.err = fmt.Errorf("canonical JSON: %w", err)
			return
		}
		w.value(generic, depth+1)
	}
}

func toFloat(v any) float64 {
	switch x := v.(type) {
	case int8:
		return float64(x)
	case int16:
		return float64(x)
	case int32:
		return float64(x)
	case int64:
		return float64(x)
	case uint:
		return float64(x)
	case uint8:
		return float64(x)
	case uint16:
		return float64(x)
	case uint32:
		return float64(x)
	case uint64:
		return float64(x)
	}
	panic("unreachable")
}

func (w *canonWriter) float(f float64) {
	s, err := formatES6(f)
	if err != nil {
		w.err = err
		return
	}
	w.b = append(w.b, s...)
}

// formatES6 formats f as ECMAScript's Number.prototype.toString does, which
// is what RFC 8785 prescribes for numbers.
func formatES6(f float64) (string, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "", fmt.Errorf("canonical JSON: %v is not a JSON number", f)
	}
	if f == 0 {
		return "0", nil // also for -0
	}
	format := byte('f')
	if a := math.Abs(f); a < 1e-6 || a >= 1e21 {
		format = 'e'
	}
	s := strconv.FormatFloat(f, format, -1, 64)
	if format == 'e' {
		// Go writes e-07 and e+21; ECMAScript writes e-7 and e+21.
		if n := len(s); n >= 4 && s[n-4] == 'e' && s[n-2] == '0' {
			s = s[:n-2] + s[n-1:]
		}
	}
	return s, nil
}

// CanonicalNumber returns the RFC 8785 form of a JSON number literal.
func CanonicalNumber(lit string) (string, error) {
	if canonicalInteger(lit) {
		return lit, nil // what the double's shortest form writes: the same digits
	}
	return parseCanonicalNumber(lit)
}

// parseCanonicalNumber is CanonicalNumber the long way: the literal parsed
// as a double, written in its shortest form.
func parseCanonicalNumber(lit string) (string, error) {
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil {
		return "", fmt.Errorf("canonical JSON: number %q: %w", lit, err)
	}
	return formatES6(f)
}

// canonicalInteger reports whether lit is an integer literal of at most 15
// digits (exact as a double) in canonical form: no leading zero, no "-0".
// Most numbers in contexts are; parsing and formatting each of them again,
// in validation and in every encoding, was most of what numbers cost.
func canonicalInteger(lit string) bool {
	digits := strings.TrimPrefix(lit, "-")
	if len(digits) == 0 || len(digits) > 15 || (digits[0] == '0' && (len(digits) > 1 || len(lit) > 1)) {
		return false
	}
	for i := range len(digits) {
		if digits[i] < '0' || digits[i] > '9' {
			return false
		}
	}
	return true
}

// NumberExact reports whether the JSON number literal lit keeps its exact
// value in canonical form. RFC 8785 numbers are IEEE 754 doubles, so an
// integer beyond 2^53 or a decimal with too many digits would silently change;
// the validator stores such numbers as strings instead.
func NumberExact(lit string) bool {
	if canonicalInteger(lit) { // a short integer in canonical form is exact
		return true
	}
	canon, err := CanonicalNumber(lit)
	if err != nil {
		return false
	}
	a, ok1 := new(big.Rat).SetString(lit)
	b, ok2 := new(big.Rat).SetString(canon)
	return ok1 && ok2 && a.Cmp(b) == 0
}

// sortedKeys returns m's keys in order, in buf's array when they fit:
// most maps of an event are small, so their keys sort on the stack, with
// no allocation. The order is Go's string order (bytes), or with utf16
// RFC 8785's (sortKeysUTF16).
func sortedKeys(buf *[16]string, m map[string]any, utf16 bool) []string {
	keys := buf[:0]
	for k := range m {
		keys = append(keys, k)
	}
	if utf16 {
		sortKeysUTF16(keys)
	} else {
		slices.Sort(keys)
	}
	return keys
}

// sortKeysUTF16 sorts member names by their UTF-16 code units, as RFC 8785
// requires. For names without characters beyond the BMP this equals byte
// order, which is the fast path.
func sortKeysUTF16(keys []string) {
	slices.SortFunc(keys, compareUTF16) // not sort.Slice: no allocation per map
}

// compareUTF16 orders a and b by their UTF-16 code units.
func compareUTF16(a, b string) int {
	ascii := true
	for i := 0; i < len(a) && ascii; i++ {
		ascii = a[i] < utf8.RuneSelf
	}
	for i := 0; i < len(b) && ascii; i++ {
		ascii = b[i] < utf8.RuneSelf
	}
	if ascii {
		return strings.Compare(a, b)
	}
	return slices.Compare(utf16.Encode([]rune(a)), utf16.Encode([]rune(b)))
}
