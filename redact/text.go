package redact

import (
	"encoding/base64"
	"strings"
	"unicode/utf8"
)

// Card numbers (PANs) are 13 to 19 digits long (ISO/IEC 7812).
const (
	minCard = 13
	maxCard = 19
)

// ellipsis ends a token cut short, so a reader sees it was cut.
const ellipsis = "…"

// Text masks the secrets it can recognize in free text, and reports whether it
// changed anything. It is what RedactEvent applies to the reason, names, user
// agent, request path and every context string.
//
//   - Card numbers: a run of digits, single spaces or dashes between them
//     allowed, containing any 13 to 19 consecutive digits that pass the Luhn
//     check, becomes "****" and the run's last four digits: "card 4111 1111
//     1111 1111 on file" becomes "card ****1111 on file". Shorter runs
//     (dates, phone numbers, amounts), runs failing Luhn, and runs inside
//     a hex digest (32 or more hex digits with a letter, a whole word) are
//     kept.
//   - "Bearer <token>" (any case) keeps the first 6 characters of the token
//     and an ellipsis: "Bearer abcdef…". Words shorter than 8 characters
//     after "bearer" are left alone, and a token shorter than 12 keeps only
//     half its characters.
//   - JSON Web Tokens (three base64url segments separated by dots, the first
//     starting "eyJ") keep their first 10 characters and an ellipsis.
//   - "Basic <base64 credentials>" becomes "Basic [REDACTED]". The
//     credentials must decode to "user:password" or look like base64 (a
//     digit, '+', '/' or '=' in 8 or more characters), so that "upgraded
//     from Basic plan" is left alone.
//
// Text returns s itself, without allocating, when there is nothing to mask.
func (r *Redactor) Text(s string) (string, bool) {
	var b []byte     // the output, allocated at the first change
	last := 0        // s[last:i] is still to be copied to b
	noJWTBefore := 0 // a JWT cannot start before here: a failed match scanned that far
	emit := func(from, to int, repl ...string) {
		if b == nil {
			b = make([]byte, 0, len(s))
		}
		b = append(b, s[last:from]...)
		for _, x := range repl {
			b = append(b, x...)
		}
		last = to
	}
	for i := 0; i < len(s); {
		switch c := s[i]; c {
		case '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			end, card, last4 := digitRun(s, i)
			// Digits inside a hex digest are not a card number: a SHA-256
			// in hex holds a Luhn-valid run of 13 or more digits about
			// once in 65, and masking it would corrupt the digest.
			if card && !inHexDigest(s, i, end) {
				emit(i, end, "****", string(last4[:]))
			}
			i = end
			continue
		case 'b', 'B':
			if start, end, keep, ok := bearer(s, i); ok {
				emit(start, end, s[start:start+keep], ellipsis)
				i = end
				continue
			}
			if start, end, ok := basic(s, i); ok {
				emit(start, end, Redacted)
				i = end
				continue
			}
		case 'e':
			if i >= noJWTBefore {
				end, ok := jwt(s, i)
				if ok {
					emit(i, end, s[i:i+10], ellipsis)
					i = end
					continue
				}
				// A token starting later in the same segment fails the
				// same way; not trying again keeps Text linear.
				noJWTBefore = end
			}
		}
		i++
	}
	if b == nil {
		return s, false
	}
	b = append(b, s[last:]...)
	return string(b), true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// inHexDigest reports whether s[i:end] lies inside a run of 32 or more hex
// digits holding a letter: an MD5, SHA-1 or SHA-256 digest written in hex.
func inHexDigest(s string, i, end int) bool {
	lo, hi := i, end
	for lo > 0 && isHex(s[lo-1]) {
		lo--
	}
	for hi < len(s) && isHex(s[hi]) {
		hi++
	}
	if hi-lo < 32 || hi < len(s) && isWordByte(s[hi]) || lo > 0 && isWordByte(s[lo-1]) {
		return false
	}
	letter := false
	for k := lo; k < hi; k++ {
		if !isHex(s[k]) {
			return false // the run has separators: not one hex word
		}
		letter = letter || !isDigit(s[k])
	}
	return letter
}

// isWordByte reports whether c continues a word (an ASCII letter or
// digit, or an underscore).
func isWordByte(c byte) bool { return isHex(c) || c|0x20 >= 'g' && c|0x20 <= 'z' || c == '_' }

// digitRun scans the run of digits starting at s[i], where single spaces or
// dashes may separate digits. It returns where the run ends, whether any 13
// to 19 consecutive digits in it pass the Luhn check, and its last four
// digits.
func digitRun(s string, i int) (end int, card bool, last4 [4]byte) {
	var ring [maxCard]byte // the last maxCard digits, digit n at ring[n%maxCard]
	n := 0
	j := i
	for {
		ring[n%maxCard] = s[j] - '0'
		n++
		if !card && n >= minCard {
			card = luhnWindowEndingAt(&ring, n)
		}
		j++
		if j < len(s) && isDigit(s[j]) {
			continue
		}
		if j+1 < len(s) && (s[j] == ' ' || s[j] == '-') && isDigit(s[j+1]) {
			j++
			continue
		}
		break
	}
	if card {
		for k := range 4 {
			last4[k] = '0' + ring[(n-4+k)%maxCard]
		}
	}
	return j, card, last4
}

// luhnWindowEndingAt reports whether some window of 13 to 19 digits ending
// with the n-th digit of the run (n >= 13) passes the Luhn check. The ring
// holds the last 19 digits.
func luhnWindowEndingAt(ring *[maxCard]byte, n int) bool {
	sum := 0
	for k := 0; k < maxCard && k < n; k++ {
		d := int(ring[(n-1-k)%maxCard])
		if k%2 == 1 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		if k+1 >= minCard && sum%10 == 0 {
			return true
		}
	}
	return false
}

// isToken68 reports whether c may appear in an HTTP token68 credential
// (RFC 9110), before its '=' padding.
func isToken68(c byte) bool {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'
}

// credential finds the credential after the auth scheme ending at s[i]: one
// or more blanks, then a run of chars accepted by ok, then '=' padding. It
// returns the credential's bounds, or start == end when there is none.
func credential(s string, i int, ok func(byte) bool) (start, end int) {
	j := i
	for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
		j++
	}
	if j == i {
		return i, i
	}
	start = j
	for j < len(s) && ok(s[j]) {
		j++
	}
	if j == start {
		return start, start
	}
	for j < len(s) && s[j] == '=' {
		j++
	}
	return start, j
}

// bearer matches "Bearer <token>" at s[i] and says how much of the token to
// keep.
func bearer(s string, i int) (start, end, keep int, ok bool) {
	if !hasFoldPrefix(s[i:], "bearer") {
		return 0, 0, 0, false
	}
	start, end = credential(s, i+len("bearer"), isToken68)
	n := end - start
	if n < 8 {
		return 0, 0, 0, false // "bearer of", "Bearer token": words, not tokens
	}
	keep = 6
	if n < 12 {
		keep = n / 2
	}
	return start, end, keep, true
}

func isBase64(c byte) bool {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' || c == '/'
}

// basic matches "Basic <credentials>" at s[i].
func basic(s string, i int) (start, end int, ok bool) {
	if !hasFoldPrefix(s[i:], "basic") {
		return 0, 0, false
	}
	start, end = credential(s, i+len("basic"), isBase64)
	cred := s[start:end]
	if len(cred) < 4 {
		return 0, 0, false
	}
	if userPassword(cred) {
		return start, end, true
	}
	if len(cred) >= 8 && strings.ContainsAny(cred, "0123456789+/=") {
		return start, end, true
	}
	return 0, 0, false
}

// userPassword reports whether cred is base64 of printable "user:password".
func userPassword(cred string) bool {
	enc := base64.StdEncoding
	if len(cred)%4 != 0 {
		enc = base64.RawStdEncoding
		cred = strings.TrimRight(cred, "=")
	}
	dec, err := enc.DecodeString(cred)
	if err != nil || !utf8.Valid(dec) {
		return false
	}
	colon := false
	for _, c := range dec {
		if c < 0x20 || c == 0x7f {
			return false
		}
		colon = colon || c == ':'
	}
	return colon
}

func isBase64URL(c byte) bool {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_'
}

// jwt matches a JSON Web Token at s[i]: "eyJ…" (base64url of `{"`), then two
// more dot-separated base64url segments, the last possibly empty (an
// unsecured JWT). Further non-empty segments (a JWE has five) are taken too.
// It returns where the token ends or, when there is none, how far it scanned
// (where the first segment ends).
func jwt(s string, i int) (end int, ok bool) {
	if !strings.HasPrefix(s[i:], "eyJ") {
		return i, false
	}
	j := i + 3
	for j < len(s) && isBase64URL(s[j]) {
		j++
	}
	first := j
	if j-i < 10 {
		return first, false // too short to be a JWT header
	}
	for seg := 2; ; seg++ {
		if j >= len(s) || s[j] != '.' {
			if seg > 3 {
				return j, true
			}
			return first, false
		}
		k := j + 1
		for k < len(s) && isBase64URL(s[k]) {
			k++
		}
		switch {
		case seg == 2 && k == j+1:
			return first, false // the payload may not be empty
		case seg > 3 && k == j+1:
			return j, true // a full stop after the token
		}
		j = k
	}
}
