package redact

import "strings"

// secretNames are key names (in snake_case) whose values are secrets.
var secretNames = set(
	// passwords and shared secrets
	"password", "passwd", "pwd", "passphrase", "passcode", "passwords",
	"password_hash", "password_confirmation", "secret", "secrets",
	"client_secret", "credentials", "credential", "session_secret",
	"master_key",
	// tokens and keys
	"token", "access_token", "refresh_token", "id_token", "auth_token",
	"session_token", "csrf_token", "api_key", "apikey", "api_keys",
	"api_secret", "private_key", "secret_key", "signing_key",
	"encryption_key", "secret_access_key", "jwt", "code_verifier",
	"authorization_code", "auth_code", "jsessionid", "phpsessid",
	// signed URLs (?sig=, X-Amz-Signature=)
	"sig", "signature",
	// HTTP credentials
	"authorization", "proxy_authorization", "auth", "cookie", "cookies",
	"set_cookie",
	// one-time and second-factor codes
	"otp", "mfa_code", "totp", "one_time_code", "one_time_password",
	"verification_code", "recovery_code", "recovery_codes", "backup_code",
	"backup_codes",
	// payment cards and bank accounts
	"cvv", "cvv2", "cvc", "cvc2", "csc", "security_code",
	"card_security_code", "card_verification_value",
	"card_verification_code", "pin", "card_number", "pan", "credit_card",
	"account_number", "routing_number", "iban",
	// government identifiers
	"ssn", "social_security_number", "social_insurance_number",
	"national_insurance_number",
)

// secretSuffixes make a name secret when it ends with one of them:
// new_password, webhook_secret, github_token, stripe_api_key.
var secretSuffixes = []string{
	"_password", "_passwd", "_passphrase", "_secret", "_token", "_api_key",
	"_apikey", "_private_key", "_secret_key", "_secret_access_key", "_pin",
	"_cvv", "_cvc", "_ssn", "_card_number", "_cookie", "_credentials", "_otp",
	"_cvv2", "_cvc2", "_security_code", "_signature", "_credential",
	"_recovery_code", "_backup_code",
}

// secretSuffixSet is secretSuffixes, for classify's lookups.
var secretSuffixSet = func() map[string]struct{} {
	for _, suf := range secretSuffixes {
		if suf[0] != '_' {
			panic("redact: a secret suffix must start with '_': " + suf)
		}
	}
	return set(secretSuffixes...)
}()

// publicNames look like secrets but hold what an audit record needs: which
// kind of token was issued, how a user signed in, that a password changed,
// the last four digits of a card. They are checked before the rules above.
var publicNames = set(
	"token_type", "token_version", "token_count", "remaining_tokens",
	"tokens_used", "token_id", "token_expires_at", "token_name",
	"mfa", "mfa_method", "auth_method", "authorization_result",
	"session_id", "key_id", "api_key_id", "api_key_name", "api_key_prefix",
	"secret_name", "secret_id",
	"account_mask", "account_last4", "card_last4", "cardholder_name",
	"password_changed", "password_strength", "has_password", "pin_set",
)

func set(names ...string) map[string]struct{} {
	m := make(map[string]struct{}, len(names))
	for _, n := range names {
		m[n] = struct{}{}
	}
	return m
}

// SecretKey reports whether a context key (or query parameter) named name
// holds a secret, so that its whole value must be replaced. The name is
// compared case-insensitively after normalizing it to snake_case: '-', ' '
// and '.' become '_', and camelCase words are split, so "accessToken",
// "X-Api-Key", "client-secret" and "CLIENT_SECRET" are all secret.
//
// A name is secret when it is one of Options.Keys, or else when it is not a
// known lookalike (token_type, mfa_method, has_password, card_last4, …) and
// is a known secret name (password, token, api_key, cvv, security_code, ssn,
// …) or ends with a secret suffix (_password, _secret, _token, _api_key,
// _pin, _signature, …).
func (r *Redactor) SecretKey(name string) bool {
	var buf [64]byte
	return r.classify(normalizeKey(buf[:0], name)) == nameSecret
}

// nameKind is what a normalized name says about the value it names.
type nameKind uint8

const (
	nameUnknown nameKind = iota // an ordinary name
	namePublic                  // a lookalike that names no secret (token_type)
	nameSecret                  // the value is a secret
)

// classify says what the normalized name n names (see SecretKey).
func (r *Redactor) classify(n []byte) nameKind {
	if len(n) == 0 {
		return nameUnknown
	}
	if r != nil && r.extra != nil {
		if _, ok := r.extra[string(n)]; ok {
			return nameSecret
		}
	}
	if _, ok := publicNames[string(n)]; ok {
		return namePublic
	}
	if _, ok := secretNames[string(n)]; ok {
		return nameSecret
	}
	// Every suffix starts with '_': the name's tails from each '_' after
	// its first byte are the only ones that can be one (a lookup each,
	// rather than a comparison with every suffix).
	for i := 1; i < len(n); i++ {
		if n[i] == '_' {
			if _, ok := secretSuffixSet[string(n[i:])]; ok {
				return nameSecret
			}
		}
	}
	return nameUnknown
}

// normalizeKey appends the snake_case form of name to dst: ASCII letters
// lower-cased, '-', ' ', '.' and '_' runs made one '_', a '_' inserted where a
// camelCase word starts ("accessToken" → access_token, "APIKey" → api_key,
// "oauth2Token" → oauth2_token), and no '_' at either end.
func normalizeKey(dst []byte, name string) []byte {
	start := len(dst)
	sep := func() {
		if len(dst) > start && dst[len(dst)-1] != '_' {
			dst = append(dst, '_')
		}
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_' || c == '-' || c == ' ' || c == '.':
			sep()
		case c >= 'A' && c <= 'Z':
			if i > 0 {
				p := name[i-1]
				lowerOrDigit := (p >= 'a' && p <= 'z') || (p >= '0' && p <= '9')
				upperThenLower := p >= 'A' && p <= 'Z' && i+1 < len(name) && name[i+1] >= 'a' && name[i+1] <= 'z'
				if lowerOrDigit || upperThenLower {
					sep()
				}
			}
			dst = append(dst, c+'a'-'A')
		default:
			dst = append(dst, c)
		}
	}
	for len(dst) > start && dst[len(dst)-1] == '_' {
		dst = dst[:len(dst)-1]
	}
	return dst
}

// hasFoldPrefix reports whether s starts with prefix, ignoring ASCII case;
// prefix is lower case.
func hasFoldPrefix(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
