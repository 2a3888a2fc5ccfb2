package redact

import "strings"

// credFormat is a credential known by its prefix: the prefix, then min to
// max characters (max 0: no bound) that chars accepts. A match keeps the
// prefix, so a reader sees which kind of credential was there: "ghp_…".
type credFormat struct {
	prefix   string
	chars    func(byte) bool
	min, max int
}

// credFormats are the credentials that announce themselves.
var credFormats = []credFormat{
	{"AKIA", isUpperAlnum, 16, 16},     // AWS access key id
	{"ASIA", isUpperAlnum, 16, 16},     // AWS temporary access key id
	{"AIza", isBase64URL, 35, 35},      // Google API key
	{"ghp_", isAlnum, 30, 0},           // GitHub personal access token
	{"gho_", isAlnum, 30, 0},           // GitHub OAuth token
	{"ghu_", isAlnum, 30, 0},           // GitHub user-to-server token
	{"ghs_", isAlnum, 30, 0},           // GitHub server-to-server token
	{"ghr_", isAlnum, 30, 0},           // GitHub refresh token
	{"github_pat_", isWordByte, 30, 0}, // GitHub fine-grained token
	{"glpat-", isBase64URL, 20, 0},     // GitLab personal access token
	{"xoxb-", isSlackChar, 10, 0},      // Slack bot token
	{"xoxp-", isSlackChar, 10, 0},      // Slack user token
	{"xoxa-", isSlackChar, 10, 0},      // Slack app token
	{"xoxr-", isSlackChar, 10, 0},      // Slack refresh token
	{"xoxs-", isSlackChar, 10, 0},      // Slack session token
	{"xoxe-", isSlackChar, 10, 0},      // Slack rotating token
	{"xapp-", isSlackChar, 10, 0},      // Slack app-level token
	{"sk_live_", isAlnum, 16, 0},       // Stripe secret key
	{"sk_test_", isAlnum, 16, 0},       // Stripe test secret key
	{"rk_live_", isAlnum, 16, 0},       // Stripe restricted key
	{"rk_test_", isAlnum, 16, 0},       // Stripe test restricted key
	{"whsec_", isAlnum, 16, 0},         // Stripe webhook signing secret
	{"npm_", isAlnum, 36, 36},          // npm access token
}

// formatsByFirst indexes credFormats by the first byte of their prefix.
var formatsByFirst = func() (t [256][]credFormat) {
	for _, f := range credFormats {
		t[f.prefix[0]] = append(t[f.prefix[0]], f)
	}
	return t
}()

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isUpperAlnum(c byte) bool { return c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' }

func isSlackChar(c byte) bool { return isAlnum(c) || c == '-' }

// knownFormat matches a credential format at s[i], which must start a word.
// It returns where the credential ends and how much of it to keep.
func knownFormat(s string, i int) (end, keep int, ok bool) {
	if i > 0 && isWordByte(s[i-1]) {
		return 0, 0, false
	}
	for _, f := range formatsByFirst[s[i]] {
		if !strings.HasPrefix(s[i:], f.prefix) {
			continue
		}
		j := i + len(f.prefix)
		for j < len(s) && f.chars(s[j]) {
			j++
		}
		n := j - i - len(f.prefix)
		if n < f.min || f.max > 0 && (n > f.max || j < len(s) && isWordByte(s[j])) {
			continue
		}
		return j, len(f.prefix), true
	}
	return 0, 0, false
}

// privateKey matches a PEM private key at s[i], from "-----BEGIN … PRIVATE
// KEY-----" through its END line, or to the end of s when that is missing.
func privateKey(s string, i int) (end int, ok bool) {
	const begin, endLine, dashes = "-----BEGIN ", "-----END ", "-----"
	if !strings.HasPrefix(s[i:], begin) {
		return 0, false
	}
	j := i + len(begin)
	label := s[j:min(len(s), j+64)]
	k := strings.Index(label, dashes)
	if k < 0 || !strings.Contains(label[:k], "PRIVATE KEY") {
		return 0, false
	}
	j += k + len(dashes)
	e := strings.Index(s[j:], endLine)
	if e < 0 {
		return len(s), true
	}
	j += e + len(endLine)
	if c := strings.Index(s[j:], dashes); c >= 0 {
		return j + c + len(dashes), true
	}
	return len(s), true
}

// urlPassword finds the password in the user info of a URL whose "://"
// starts at s[i]: "postgres://ann:hunter2@db/x" holds "hunter2".
func urlPassword(s string, i int) (start, end int, ok bool) {
	if i == 0 || !isAlnum(s[i-1]) || !strings.HasPrefix(s[i:], "://") {
		return 0, 0, false
	}
	at, colon := -1, -1
	for k := i + 3; k < len(s); k++ {
		c := s[k]
		if isBlank(c) || c == '\n' || c == '\r' || strings.IndexByte("/?#\"'", c) >= 0 {
			break
		}
		switch {
		case c == '@':
			at = k // the last '@' ends the user info: a password may hold one
		case c == ':' && colon < 0 && at < 0:
			colon = k
		}
	}
	if at < 0 || colon < 0 || colon+1 >= at || masked(s[colon+1:at]) {
		return 0, 0, false
	}
	return colon + 1, at, true
}
