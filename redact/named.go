package redact

import "strings"

// A secret named in free text: "password=hunter2", "X-Api-Key: k-1",
// `{"token": "t"}`, "my password is hunter2", "cvv 123". The name is judged
// as SecretKey judges context keys, over the one to three words before the
// separator, longest first: "api key: k" names api_key, "token type: bearer"
// names the lookalike token_type and stops there.

// stopWords follow "password:" or "password is" in prose without being the
// secret: "password is incorrect", "token: expired". After '=' a value is
// always the secret.
var stopWords = set(
	"a", "an", "the", "not", "no", "too", "now", "being", "still", "also",
	"already", "only", "yes", "ok", "none", "null", "nil",
	"true", "false", "empty", "blank", "missing", "absent", "present",
	"required", "provided", "supplied", "set", "unset", "reset", "changed",
	"updated", "rotated", "revoked", "expired", "invalid", "valid",
	"incorrect", "correct", "wrong", "weak", "strong", "short", "long",
	"sent", "accepted", "rejected", "denied", "failed", "verified",
	"unverified", "enabled", "disabled", "locked", "used", "reused",
	"compromised", "unknown", "same", "different", "unchanged", "pending",
	"ignored", "removed", "deleted", "added", "created", "issued",
	"generated", "refreshed", "hidden", "redacted", "masked", "mismatch",
	"ready", "due", "new", "old",
)

// headerNames take the rest of the line as their value: a Cookie header
// holds every cookie, an Authorization header its scheme and credentials.
var headerNames = set("cookie", "set_cookie", "authorization", "proxy_authorization")

// shape is the form of a value named with no separator but blanks or '#'.
type shape uint8

const (
	shapeNone shape = iota
	shapeCVV        // 3 or 4 digits
	shapeSSN        // a US social security number: 123-45-6789, 123 45 6789, 123456789
	shapeSIN        // a Canadian social insurance number: 123-456-789, 123456789
	shapeCode       // 4 to 8 digits: a PIN or a one-time code
)

// shapedNames are the names whose values are recognized by shape alone:
// "cvv 123", "SSN 123-45-6789", "pin 1234".
var shapedNames = map[string]shape{
	"cvv": shapeCVV, "cvv2": shapeCVV, "cvc": shapeCVV, "cvc2": shapeCVV, "csc": shapeCVV,
	"security_code": shapeCVV, "card_security_code": shapeCVV,
	"card_verification_value": shapeCVV, "card_verification_code": shapeCVV,
	"ssn": shapeSSN, "social_security_number": shapeSSN,
	"sin": shapeSIN, "social_insurance_number": shapeSIN,
	"pin": shapeCode, "otp": shapeCode, "totp": shapeCode, "mfa_code": shapeCode,
	"one_time_code": shapeCode, "one_time_password": shapeCode, "verification_code": shapeCode,
}

// shapeLastWords are the last words of the shaped names (cvv, code,
// number, …), so that a run of digits after any other word is passed over
// before a name is built.
var shapeLastWords = func() map[string]struct{} {
	m := make(map[string]struct{})
	for name := range shapedNames {
		m[name[strings.LastIndexByte(name, '_')+1:]] = struct{}{}
	}
	return m
}()

// shapeLastWord reports whether the word w may end a shaped name.
func shapeLastWord(w string) bool {
	var buf [16]byte
	if len(w) > len(buf) {
		return false
	}
	lower := buf[:0]
	for i := 0; i < len(w); i++ {
		lower = append(lower, toLower(w[i]))
	}
	_, ok := shapeLastWords[strings.TrimRight(string(lower), "._-")]
	return ok
}

// fillers may stand between a shaped name and its value: "SSN no. 123-45-6789".
var fillers = set("no", "no.", "nr", "num", "number")

// isNameByte reports whether c may be part of a name in text.
func isNameByte(c byte) bool { return isWordByte(c) || c == '-' || c == '.' }

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

// wordsBefore finds the words of a name that ends at s[:end]: up to three
// runs of name bytes joined by single spaces, starts[0] the nearest.
func wordsBefore(s string, end int) (starts [3]int, n int) {
	k := end
	for n < len(starts) {
		w := k
		for k > 0 && isNameByte(s[k-1]) {
			k--
		}
		if k == w {
			break
		}
		starts[n] = k
		n++
		if k < 2 || s[k-1] != ' ' || !isNameByte(s[k-2]) {
			break
		}
		k--
	}
	return starts, n
}

// secretBefore judges the name that ends at s[:j], after blanks and a
// closing quote: whether it names a secret, and whether its value is the rest
// of the line.
func (sc *scanner) secretBefore(j int) (secret, header bool) {
	s := sc.s
	for j > 0 && isBlank(s[j-1]) {
		j--
	}
	if j > 0 && (s[j-1] == '"' || s[j-1] == '\'') {
		j--
		if j > 0 && s[j-1] == '\\' {
			j--
		}
	}
	starts, n := wordsBefore(s, j)
	for m := n; m > 0; m-- {
		var buf [96]byte
		name := normalizeKey(buf[:0], s[starts[m-1]:j])
		switch sc.r.classify(name) {
		case namePublic:
			return false, false
		case nameSecret:
			_, header = headerNames[string(name)]
			return true, header
		}
	}
	return false, false
}

// valueAfter finds the value that starts at s[j:] after blanks: the inside
// of a quoted value ('…', "…", or \"…\" in escaped JSON; to the end of s if
// it is not closed), else up to a blank or one of & ; , < and quotes (with
// toEOL, up to the end of the line), less trailing punctuation.
func valueAfter(s string, j int, toEOL bool) (start, end int, quoted bool) {
	for j < len(s) && isBlank(s[j]) {
		j++
	}
	if j < len(s) && (s[j] == '"' || s[j] == '\'' || s[j] == '\\' && j+1 < len(s) && (s[j+1] == '"' || s[j+1] == '\'')) {
		q := s[j : j+1]
		if s[j] == '\\' {
			q = s[j : j+2]
		}
		start = j + len(q)
		for k := start; k < len(s); k++ {
			if strings.HasPrefix(s[k:], q) {
				return start, k, true
			}
			if s[k] == '\\' && len(q) == 1 {
				k++ // an escaped character, not the closing quote
			}
		}
		return start, len(s), true
	}
	end = j
	for end < len(s) && !endsValue(s[end], toEOL) {
		end++
	}
	for end > j && strings.IndexByte(".!?:)]}>", s[end-1]) >= 0 && !masked(s[j:end]) {
		end--
	}
	return j, end, false
}

// endsValue reports whether c ends an unquoted value.
func endsValue(c byte, toEOL bool) bool {
	if c == '\n' || c == '\r' {
		return true
	}
	if toEOL {
		return false
	}
	return c == ' ' || c == '\t' || strings.IndexByte("&;,<\"'`", c) >= 0
}

// masked reports whether v is what redaction leaves: Redacted, a keyed
// digest, or asterisks.
func masked(v string) bool {
	if v == Redacted || strings.Trim(v, "*") == "" {
		return true
	}
	return len(v) == len(hmacPrefix)+64 && strings.HasPrefix(v, hmacPrefix) && isHexDigest(v[len(hmacPrefix):])
}

// secretValue reports whether s[start:end], named as a secret, is one to
// replace: not empty, not already masked, not a stop word in prose, and not
// a Bearer or Basic credential, which those rules mask.
func (sc *scanner) secretValue(start, end int, quoted, prose bool) bool {
	v := sc.s[start:end]
	if v == "" || masked(v) {
		return false
	}
	if quoted {
		return true
	}
	if prose {
		var buf [16]byte
		if len(v) <= len(buf) {
			lower := buf[:0]
			for i := 0; i < len(v); i++ {
				lower = append(lower, toLower(v[i]))
			}
			if _, ok := stopWords[string(lower)]; ok {
				return false
			}
		}
	}
	return !schemeCredential(sc.s, start)
}

// schemeCredential reports whether s[start:] is "Bearer" or "Basic" and a
// credential that the rule of that scheme masks, or has masked.
func schemeCredential(s string, start int) bool {
	if _, _, _, ok := bearer(s, start); ok {
		return true
	}
	if _, _, ok := basic(s, start); ok {
		return true
	}
	for _, scheme := range [...]string{"bearer", "basic"} {
		if j := start + len(scheme); hasFoldPrefix(s[start:], scheme) && j < len(s) && isBlank(s[j]) {
			// Masked already: "Basic [REDACTED]", "Bearer abcdef…".
			for j < len(s) && isBlank(s[j]) {
				j++
			}
			k := j
			for k < len(s) && isToken68(s[k]) {
				k++
			}
			return strings.HasPrefix(s[j:], Redacted) || strings.HasPrefix(s[k:], ellipsis)
		}
	}
	return false
}

func toLower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// assignment replaces the value after the separator s[i] ('=' or ':') when
// the name before it names a secret. A ':' assigns only when a blank follows
// it or the name or the value is quoted ("password: x", `"password":"x"`):
// a bare name:value is a scope or a URN ("api_key:read"). After ':' stop
// words are kept. It returns where scanning goes on, or i when nothing
// matched.
func (sc *scanner) assignment(i int) int {
	s := sc.s
	colon := s[i] == ':'
	if colon && !(i+1 < len(s) && isBlank(s[i+1]) || quotedBefore(s, i) || i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\'' || s[i+1] == '\\')) {
		return i
	}
	secret, header := sc.secretBefore(i)
	if !secret {
		return i
	}
	start, end, quoted := valueAfter(s, i+1, header)
	if !sc.secretValue(start, end, quoted, colon) {
		return i
	}
	sc.emit(start, end, sc.r.replacement(sc.s[start:end]))
	return end
}

// quotedBefore reports whether a closing quote ends the name before s[i],
// after blanks: `"password": …`.
func quotedBefore(s string, i int) bool {
	for i > 0 && isBlank(s[i-1]) {
		i--
	}
	return i > 0 && (s[i-1] == '"' || s[i-1] == '\'')
}

// prose replaces the word after "is" or "was" at s[i] when the name before it
// names a secret: "my password is hunter2". Stop words are kept. It returns
// where scanning goes on, or i when nothing matched.
func (sc *scanner) prose(i int) int {
	s := sc.s
	n := 0
	switch {
	case hasFoldPrefix(s[i:], "is"):
		n = 2
	case hasFoldPrefix(s[i:], "was"):
		n = 3
	}
	if n == 0 || i == 0 || !isBlank(s[i-1]) || i+n >= len(s) || !isBlank(s[i+n]) {
		return i
	}
	if secret, _ := sc.secretBefore(i); !secret {
		return i
	}
	start, end, quoted := valueAfter(s, i+n, false)
	if !sc.secretValue(start, end, quoted, true) {
		return i
	}
	sc.emit(start, end, sc.r.replacement(s[start:end]))
	return end
}

// shaped replaces the run of digits at s[i] when a shaped name stands right
// before it, with only blanks, '#' or a filler word between, and the run has
// the name's shape: "cvv 123", "SSN 123-45-6789". It returns where the run
// ends, or i when nothing matched.
func (sc *scanner) shaped(i int) int {
	s := sc.s
	k := i
	for k > 0 && (isBlank(s[k-1]) || s[k-1] == '#') {
		k--
	}
	if k == i {
		return i
	}
	sh, public := shapeNamed(s, k)
	if sh == shapeNone && !public {
		// "SSN no. 123-45-6789": the name stands before a filler word.
		if starts, n := wordsBefore(s, k); n > 0 && k-starts[0] <= 6 {
			var buf [8]byte
			w := buf[:0]
			for p := starts[0]; p < k; p++ {
				w = append(w, toLower(s[p]))
			}
			if _, ok := fillers[string(w)]; ok && starts[0] > 0 && isBlank(s[starts[0]-1]) {
				sh, _ = shapeNamed(s, starts[0]-1)
			}
		}
	}
	end, ok := shapeAt(s, i, sh)
	if !ok {
		return i
	}
	sc.emit(i, end, sc.r.replacement(s[i:end]))
	return end
}

// shapeNamed finds the shaped name that ends at s[:end], longest first, or
// whether a public lookalike ("pin set") stops the search.
func shapeNamed(s string, end int) (sh shape, public bool) {
	starts, n := wordsBefore(s, end)
	if n == 0 || !shapeLastWord(s[starts[0]:end]) {
		return shapeNone, false
	}
	for m := n; m > 0; m-- {
		var buf [96]byte
		name := normalizeKey(buf[:0], s[starts[m-1]:end])
		if _, ok := publicNames[string(name)]; ok {
			return shapeNone, true
		}
		if sh, ok := shapedNames[string(name)]; ok {
			return sh, false
		}
	}
	return shapeNone, false
}

// shapeAt reports whether the run of digit groups at s[i] has shape sh, and
// where it ends.
func shapeAt(s string, i int, sh shape) (end int, ok bool) {
	if sh == shapeNone {
		return i, false
	}
	var lens [4]int
	n := 0
	j := i
	for {
		start := j
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		if n == len(lens) {
			return j, false
		}
		lens[n] = j - start
		n++
		if j+1 < len(s) && (s[j] == ' ' || s[j] == '-') && isDigit(s[j+1]) {
			j++
			continue
		}
		break
	}
	if j < len(s) && isWordByte(s[j]) {
		return j, false
	}
	g := lens[:n]
	switch sh {
	case shapeCVV:
		ok = n == 1 && g[0] >= 3 && g[0] <= 4
	case shapeCode:
		ok = n == 1 && g[0] >= 4 && g[0] <= 8
	case shapeSSN:
		ok = n == 1 && g[0] == 9 || n == 3 && g[0] == 3 && g[1] == 2 && g[2] == 4
	case shapeSIN:
		ok = n == 1 && g[0] == 9 || n == 3 && g[0] == 3 && g[1] == 3 && g[2] == 3
	}
	return j, ok
}
