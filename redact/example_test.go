package redact_test

import (
	"fmt"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/redact"
)

// Redacting an event before it is stored: secret-named keys lose their
// values, card numbers and bearer tokens in free text are masked, and the
// event lists the paths that were replaced, never the values.
func Example() {
	r := redact.New(redact.Options{})
	ev := &trail.Event{
		Action:  "user_login_failed",
		Actor:   trail.Actor{ID: "u-1", Type: trail.ActorUser},
		Request: trail.Request{Path: "/login?token=abc123&next=/home"},
		Reason:  "card 4111 1111 1111 1111 declined",
		Context: map[string]any{
			"password":   "hunter2",
			"mfa_method": "totp", // a lookalike: kept
			"headers":    map[string]any{"Authorization": "Bearer abcdef0123456789"},
			"note":       "retry with Bearer abcdef0123456789",
		},
	}
	r.RedactEvent(ev)
	fmt.Println(ev.Context["password"], ev.Context["mfa_method"], ev.Context["headers"])
	fmt.Println(ev.Context["note"])
	fmt.Println(ev.Reason)
	fmt.Println(ev.Request.Path)
	for _, p := range ev.Redacted {
		fmt.Println("redacted", p)
	}
	// Output:
	// [REDACTED] totp map[Authorization:[REDACTED]]
	// retry with Bearer abcdef…
	// card ****1111 declined
	// /login?token=[REDACTED]&next=/home
	// redacted context.headers.Authorization
	// redacted context.note
	// redacted context.password
	// redacted reason
	// redacted request.path
}

// With an HMAC key, a secret becomes a keyed digest: the same value always
// gives the same digest, so holders of the key can tell that two events
// carried the same value without either event holding it.
func ExampleOptions_hmac() {
	r := redact.New(redact.Options{HMACKey: []byte("keep this key secret")})
	a, _ := r.Value("context", map[string]any{"api_key": "sk_live_123"})
	b, _ := r.Value("context", map[string]any{"api_key": "sk_live_123"})
	fmt.Println(a.(map[string]any)["api_key"] == b.(map[string]any)["api_key"])
	fmt.Println(a.(map[string]any)["api_key"].(string)[:12])
	// Output:
	// true
	// hmac-sha256:
}

func ExampleRedactor_Text() {
	r := redact.New(redact.Options{})
	for _, s := range []string{
		"paid with 4111-1111-1111-1111",
		"call +1 415 555 2671 before 2024-01-15",
		"Authorization: Basic dXNlcjpwYXNzd29yZA==",
		"login failed: password=hunter2 user=ann",
		"my password is hunter2, the old one was reset",
		"password is incorrect",
		"callback https://app.example/cb?access_token=ya29.a0Af&state=x",
		"AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG",
		"cvv 123, SSN 123-45-6789",
		"deployed with ghp_aB3aB3aB3aB3aB3aB3aB3aB3aB3aB3aB3aB3",
		"order ref 12345678901234567890",
	} {
		out, changed := r.Text(s)
		fmt.Println(changed, out)
	}
	// Output:
	// true paid with ****1111
	// false call +1 415 555 2671 before 2024-01-15
	// true Authorization: Basic [REDACTED]
	// true login failed: password=[REDACTED] user=ann
	// true my password is [REDACTED], the old one was reset
	// false password is incorrect
	// true callback https://app.example/cb?access_token=[REDACTED]&state=x
	// true AWS_SECRET_ACCESS_KEY=[REDACTED]
	// true cvv [REDACTED], SSN [REDACTED]
	// true deployed with ghp_…
	// false order ref 12345678901234567890
}

func ExampleRedactor_SecretKey() {
	r := redact.New(redact.Options{Keys: []string{"member_code"}})
	for _, k := range []string{"accessToken", "X-Api-Key", "token_type", "has_password", "memberCode"} {
		fmt.Println(k, r.SecretKey(k))
	}
	// Output:
	// accessToken true
	// X-Api-Key true
	// token_type false
	// has_password false
	// memberCode true
}
