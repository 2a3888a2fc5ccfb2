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
//   - Card numbers: a run of digit groups, single spaces or dashes between
//     them ("4111 1111 1111 1111", "3782-822463-10005"), in which some whole
//     groups in a row hold 13 to 19 digits, start with a digit other than 0
//     and pass the Luhn check, becomes "****" and the card's last four
//     digits: "card 4111 1111 1111 1111 on file" becomes "card ****1111 on
//     file". A card is never a window inside a group, so a longer run of
//     digits ("12345678901234567890") is kept as it is, as are shorter runs
//     (dates, phone numbers, amounts) and runs failing Luhn. Two groups are
//     never read as part of a card: the four digits after "****" (what a
//     masked card leaves), and digits inside a labeled hex digest (see
//     below).
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
//   - Named secrets. Where one to three words before '=' or ':' name a
//     secret as SecretKey judges a key (the longest phrase that is a known
//     name decides, so "token type: bearer" names the lookalike
//     token_type), the value after it is replaced: "password=hunter2",
//     "AWS_SECRET_ACCESS_KEY=…", "?access_token=…&", "X-Api-Key: k-1",
//     `{"api_key": "k-1"}`. A ':' assigns only when a blank follows it or
//     the name or the value is quoted: a bare name:value is a scope or a
//     URN ("api_key:read") and is kept. A value is the inside of its
//     quotes, or runs to a blank or one of & ; , < and quotes, less
//     trailing . ! ? : ) ] } >; after Cookie, Set-Cookie, Authorization
//     and Proxy-Authorization it runs to the end of the line. The word after a secret name and "is"
//     or "was" is replaced too ("my password is hunter2"). After ':', "is"
//     and "was" a word that describes rather than reveals is kept
//     ("password is incorrect", "token: expired"); after '=' nothing is.
//     A Bearer or Basic credential is left to its own rule.
//   - Shapes next to their names, with only blanks, '#' or "no.", "number"
//     between: a CVV (3 or 4 digits after cvv, cvc, csc, security code, …),
//     a US social security number (123-45-6789 or 9 digits after ssn,
//     social security number), a Canadian social insurance number (after
//     sin), a PIN or one-time code (4 to 8 digits after pin, otp,
//     verification code, …): "cvv 123", "SSN 123-45-6789".
//   - Known credential formats, cut to their prefix and an ellipsis: AWS
//     access key ids (AKIA…, ASIA…), Google API keys (AIza…), GitHub
//     tokens (ghp_…, gho_…, ghu_…, ghs_…, ghr_…, github_pat_…), GitLab
//     tokens (glpat-…), Slack tokens (xoxb-…, xoxp-…, xapp-…, …), Stripe
//     keys (sk_live_…, sk_test_…, rk_live_…, whsec_…) and npm tokens
//     (npm_…).
//   - PEM private keys ("-----BEGIN RSA PRIVATE KEY-----" through its END
//     line, or to the end of the text) become [REDACTED].
//   - The password in a URL: "postgres://ann:hunter2@db" becomes
//     "postgres://ann:[REDACTED]@db".
//
// Named secrets and URL passwords become Redacted or, with Options.HMACKey,
// their keyed digest. What is already masked (Redacted, a keyed digest,
// asterisks, a token cut short) is left as it is, so Text run twice changes
// nothing more.
//
// A labeled hex digest is a word of exactly 32, 40, 56, 64, 96 or 128 hex
// digits (MD5 to SHA-512) right after a label (md5, sha, sha1, sha256, …,
// digest, hash, checksum, etag, commit, hmac-sha256) and one to three of
// ':', '=', ' ' or
// a quote: "sha256:3fa4…". Its digits are kept, since masking them would
// corrupt the digest. An unlabeled hex word gets no such exception.
//
// Text returns s itself, without allocating, when there is nothing to mask.
func (r *Redactor) Text(s string) (string, bool) {
	return r.scan(s, allRules)
}

// rules selects what scan looks for.
type rules uint8

const (
	ruleCards       rules = 1 << iota // card numbers
	ruleNamed                         // values named as secrets: password=…, "cvv 123"
	ruleCredentials                   // credentials known by their form: Bearer, JWT, ghp_…, PEM keys, URL passwords
	allRules        = ruleCards | ruleNamed | ruleCredentials
)

// scanner builds the output of one scan: b holds what is masked so far,
// allocated at the first change, and s[last:] is still to be copied.
type scanner struct {
	r    *Redactor
	s    string
	b    []byte
	last int
}

// emit replaces s[from:to] with repl; from is never before an earlier to.
func (sc *scanner) emit(from, to int, repl ...string) {
	if sc.b == nil {
		sc.b = make([]byte, 0, len(sc.s))
	}
	sc.b = append(sc.b, sc.s[sc.last:from]...)
	for _, x := range repl {
		sc.b = append(sc.b, x...)
	}
	sc.last = to
}

// scan masks what rs selects in s and reports whether it changed anything.
func (r *Redactor) scan(s string, rs rules) (string, bool) {
	sc := scanner{r: r, s: s}
	named, creds := rs&ruleNamed != 0, rs&ruleCredentials != 0
	noJWTBefore := 0 // a JWT cannot start before here: a failed match scanned that far
	for i := 0; i < len(s); {
		c := s[i]
		if !mayStart[c] {
			i++
			continue
		}
		if named {
			next := i
			switch {
			case isDigit(c):
				next = sc.shaped(i)
			case c == '=' || c == ':' && !strings.HasPrefix(s[i:], "://"):
				next = sc.assignment(i)
			case (c == 'i' || c == 'I' || c == 'w' || c == 'W') && i > 0 && isBlank(s[i-1]):
				next = sc.prose(i)
			}
			if next > i {
				i = next
				continue
			}
		}
		if creds {
			switch {
			case c == 'b' || c == 'B':
				if start, end, keep, ok := bearer(s, i); ok {
					sc.emit(start, end, s[start:start+keep], ellipsis)
					i = end
					continue
				}
				if start, end, ok := basic(s, i); ok {
					sc.emit(start, end, Redacted)
					i = end
					continue
				}
			case c == 'e' && i >= noJWTBefore:
				end, ok := jwt(s, i)
				if ok {
					sc.emit(i, end, s[i:i+10], ellipsis)
					i = end
					continue
				}
				// A token starting later in the same segment fails the
				// same way; not trying again keeps the scan linear.
				noJWTBefore = end
			case c == '-':
				if end, ok := privateKey(s, i); ok {
					sc.emit(i, end, Redacted)
					i = end
					continue
				}
			case c == ':':
				if start, end, ok := urlPassword(s, i); ok {
					sc.emit(start, end, r.replacement(s[start:end]))
					i = end
					continue
				}
			}
			if formatsByFirst[c] != nil && (i == 0 || !isWordByte(s[i-1])) {
				if end, keep, ok := knownFormat(s, i); ok {
					sc.emit(i, end, s[i:i+keep], ellipsis)
					i = end
					continue
				}
			}
		}
		if isDigit(c) && rs&ruleCards != 0 {
			i = sc.cards(i)
			continue
		}
		i++
	}
	if sc.b == nil {
		return s, false
	}
	sc.b = append(sc.b, s[sc.last:]...)
	return string(sc.b), true
}

// mayStart marks the bytes at which some rule may match; scan passes over
// the others at once.
var mayStart = func() (t [256]bool) {
	for _, c := range []byte("0123456789=:iIwWbBe-") {
		t[c] = true
	}
	for _, f := range credFormats {
		t[f.prefix[0]] = true
	}
	return t
}()

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// group is one run of consecutive digits, s[start:end]; skip marks a group
// that may not be part of a card.
type group struct {
	start, end int
	skip       bool
}

// cards masks the card numbers in the run of digit groups starting at
// s[i], where a single space or dash separates groups, and returns where
// the run ends. From the left, it masks the longest whole groups in a row
// that make a card, then goes on after them.
func (sc *scanner) cards(i int) int {
	s := sc.s
	var buf [8]group
	gs := buf[:0]
	j := i
	for {
		start := j
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		gs = append(gs, group{start, j, maskRemnant(s, start, j) || inLabeledDigest(s, start, j)})
		if j+1 < len(s) && (s[j] == ' ' || s[j] == '-') && isDigit(s[j+1]) {
			j++
			continue
		}
		break
	}
	for a := 0; a < len(gs); {
		best := -1
		if !gs[a].skip && s[gs[a].start] != '0' {
			n := 0
			for b := a; b < len(gs) && !gs[b].skip; b++ {
				if n += gs[b].end - gs[b].start; n > maxCard {
					break
				}
				if n >= minCard && luhnGroups(s, gs[a:b+1]) {
					best = b
				}
			}
		}
		if best < 0 {
			a++
			continue
		}
		last4 := lastFour(s, gs[a:best+1])
		sc.emit(gs[a].start, gs[best].end, "****", string(last4[:]))
		a = best + 1
	}
	return j
}

// maskRemnant reports whether the group s[start:end] is the last four digits
// of a masked card ("****1111"), which is never read as part of a card, so
// that masking twice changes nothing.
func maskRemnant(s string, start, end int) bool {
	return end-start == 4 && start >= 4 && s[start-4:start] == "****"
}

// luhnGroups reports whether the digits of gs, read as one number, pass the
// Luhn check.
func luhnGroups(s string, gs []group) bool {
	sum, k := 0, 0
	for g := len(gs) - 1; g >= 0; g-- {
		for p := gs[g].end - 1; p >= gs[g].start; p-- {
			d := int(s[p] - '0')
			if k%2 == 1 {
				if d *= 2; d > 9 {
					d -= 9
				}
			}
			sum += d
			k++
		}
	}
	return sum%10 == 0
}

// lastFour returns the last four digits of gs.
func lastFour(s string, gs []group) (last4 [4]byte) {
	k := 3
	for g := len(gs) - 1; g >= 0 && k >= 0; g-- {
		for p := gs[g].end - 1; p >= gs[g].start && k >= 0; p-- {
			last4[k] = s[p]
			k--
		}
	}
	return last4
}

// digestLabels name a hex digest in text (lower case): "sha256:…",
// "commit 3fa4…". Keys ending in one of them do the same for a context value
// (see digestKey).
var digestLabels = set(
	"md5", "sha", "sha1", "sha224", "sha256", "sha384", "sha512",
	"sha-1", "sha-224", "sha-256", "sha-384", "sha-512",
	"digest", "hash", "checksum", "etag", "commit",
	"hmac-sha256", // what a keyed redaction leaves (hmacPrefix)
)

// isDigestLen reports whether n hex digits are an MD5 (32), SHA-1 (40),
// SHA-224 (56), SHA-256 (64), SHA-384 (96) or SHA-512 (128) digest.
func isDigestLen(n int) bool {
	switch n {
	case 32, 40, 56, 64, 96, 128:
		return true
	}
	return false
}

// isHexDigest reports whether s is exactly one hex digest.
func isHexDigest(s string) bool {
	if !isDigestLen(len(s)) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			return false
		}
	}
	return true
}

// inLabeledDigest reports whether s[i:end] lies inside a labeled hex digest:
// a whole hex word of a digest's length, right after a digest label and one
// to three of ':', '=', ' ' or a quote.
func inLabeledDigest(s string, i, end int) bool {
	const longest = 128
	lo, hi := i, end
	for lo > 0 && isHex(s[lo-1]) && end-lo < longest {
		lo--
	}
	for hi < len(s) && isHex(s[hi]) && hi-lo <= longest {
		hi++
	}
	if !isDigestLen(hi-lo) || hi < len(s) && isWordByte(s[hi]) || lo > 0 && isWordByte(s[lo-1]) {
		return false
	}
	k := lo
	for k > 0 && lo-k < 3 && strings.IndexByte(":= \"'", s[k-1]) >= 0 {
		k--
	}
	if k == lo {
		return false
	}
	end = k
	for k > 0 && (isWordByte(s[k-1]) || s[k-1] == '-') && end-k < 12 {
		k--
	}
	if k > 0 && (isWordByte(s[k-1]) || s[k-1] == '-') {
		return false
	}
	var buf [12]byte
	label := buf[:0]
	for p := k; p < end; p++ {
		label = append(label, s[p]|0x20)
	}
	_, ok := digestLabels[string(label)]
	return ok
}

// isWordByte reports whether c continues a word (an ASCII letter or
// digit, or an underscore).
func isWordByte(c byte) bool { return isHex(c) || c|0x20 >= 'g' && c|0x20 <= 'z' || c == '_' }

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
