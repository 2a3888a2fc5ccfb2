// Package redact removes secrets from audit events before Trail stores them.
//
// Start with New, then call RedactEvent on each event (trail.Validator does
// this for you when its Redactor field is set):
//
//	r := redact.New(redact.Options{})
//	r.RedactEvent(ev) // ev.Context, ev.Reason, … are cleaned; ev.Redacted lists the paths
//
// Trail's log is tamper-evident: once an event is stored it cannot be edited,
// so a secret that slips through stays on the record for good. Redaction
// therefore runs before anything is stored and errs on the side of removing
// too much. It replaces
//
//   - the whole value of any context key that names a secret (password,
//     token, api_key, cookie, cvv, ssn, card_number, …, and names ending in
//     _password, _secret, _token, _api_key, …) at any depth, whatever its
//     type, but not lookalikes such as token_type or has_password (see
//     SecretKey);
//   - card numbers, masked to their last four digits: in free text whole
//     groups of digits that make 13 to 19 digits passing the Luhn check,
//     and numbers whose value is one (never a window inside a longer run of
//     digits, so a 20-digit number keeps every digit);
//   - secrets named in free text: the value after a secret name and '=' or
//     ':' ("password=hunter2", "X-Api-Key: k-1", `{"token":"t"}`,
//     "?access_token=…"), the word after "is" or "was" ("my password is
//     hunter2"), and a CVV, social security number, PIN or one-time code
//     written next to its name ("cvv 123", "SSN 123-45-6789");
//   - credentials known by their form: bearer tokens and JWTs, cut to a
//     short prefix; Basic credentials; AWS, Google, GitHub, GitLab, Slack,
//     Stripe and npm keys and tokens, cut to their prefix ("ghp_…"); PEM
//     private keys; the password in a URL ("postgres://ann:…@db");
//   - secret-named query parameters in the request path.
//
// Identifiers (actor and target ids, session and request ids) are never
// scanned for card numbers or named secrets: a 16-digit numeric id passes the
// Luhn check one time in ten, and mangling ids would ruin investigations. A
// session id that is itself a credential (a JWT, a bearer token, a known
// token format) is replaced whole.
//
// The event records which paths were redacted (Event.Redacted), never the
// values. With Options.HMACKey set, a secret value becomes a keyed digest
// instead of Redacted, so holders of the key can still tell whether two events
// carried the same value.
//
// A Redactor is immutable once built and safe for concurrent use.
package redact

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/trailaudit/trail"
)

// Redacted replaces a secret value when no HMAC key is configured. It is a
// fixed marker, so a reader of the log sees that something was removed (and
// Event.Redacted says where) without learning anything about it.
const Redacted = "[REDACTED]"

// hmacPrefix starts every keyed digest, naming the algorithm so a reader knows
// how to check a candidate value against it.
const hmacPrefix = "hmac-sha256:"

// Options configure a Redactor. The zero value gives the built-in rules with
// values replaced by Redacted.
type Options struct {
	// Keys are extra context key names whose values are secrets, for what
	// the built-in rules cannot know (an app's own "member_pin_hash", say).
	// They are matched like the built-in names: case-insensitive, with '-',
	// ' ', '.' and camelCase normalized to snake_case, so "X-Member-Code"
	// and "memberCode" both match "member_code". An extra key wins over the
	// built-in allow list, because the caller said so explicitly.
	Keys []string
	// HMACKey, when non-empty, makes secret values (secret-named keys and
	// query parameters) become "hmac-sha256:" + hex(HMAC-SHA256(HMACKey,
	// value)) instead of Redacted, so holders of the key can correlate
	// values across events without ever seeing them, as HashiCorp Vault's
	// audit devices do. Strings are hashed as their bytes, other values as
	// their canonical JSON (RFC 8785). Keep the key secret and long: with it,
	// a short secret such as a PIN can be found by trying every value.
	HMACKey []byte
}

// Redactor removes secrets from events and values. Build one with New; it
// implements trail.Redactor, so it plugs into trail.Validator. The zero value
// behaves like New(Options{}).
type Redactor struct {
	extra   map[string]struct{} // Options.Keys, normalized
	hmacKey []byte
}

// The Redactor is what trail.Validator calls before storing an event.
var _ trail.Redactor = (*Redactor)(nil)

// New returns a Redactor with the built-in rules plus o. It copies o, so the
// caller may reuse its slices.
func New(o Options) *Redactor {
	r := &Redactor{}
	if len(o.Keys) > 0 {
		r.extra = make(map[string]struct{}, len(o.Keys))
		for _, k := range o.Keys {
			if n := string(normalizeKey(nil, k)); n != "" {
				r.extra[n] = struct{}{}
			}
		}
	}
	if len(o.HMACKey) > 0 {
		r.hmacKey = slices.Clone(o.HMACKey)
	}
	return r
}

// RedactEvent removes secrets from ev and appends the JSON paths it replaced
// to ev.Redacted, each once, keeping that list sorted; the values removed are
// never recorded. It is the trail.Redactor method that trail.Validator calls
// before an event is stored, on its own copy of the event. ev's string fields
// are changed in place; ev.Context is replaced by a copy of the maps and
// slices that changed, so maps the caller still holds keep their values.
// Redacting an event twice records the same paths.
//
// It walks ev.Context at any depth (see Value) and scans with Text the free
// text fields: reason, actor.name, targets[i].name, request.user_agent and
// request.path, where it also replaces secret-named query parameters
// ("?token=abc&x=1" becomes "?token=[REDACTED]&x=1"). Identifiers are left
// alone: actor.id, targets[i].id, request.request_id, and request.session_id
// unless it is a credential itself (a JWT, "Bearer …", a known token format
// such as ghp_…): then the whole value is replaced, by Redacted or its keyed
// digest, so that sessions still correlate under an HMAC key.
func (r *Redactor) RedactEvent(ev *trail.Event) {
	if ev == nil {
		return
	}
	w := walker{r: r, stack: make([]seg, 0, 8)}
	if ev.Context != nil {
		w.push(seg{key: "context", root: true})
		v, _ := w.value(ev.Context)
		w.pop()
		if m, ok := v.(map[string]any); ok {
			ev.Context = m
		}
	}
	text := func(path string, s *string) bool {
		out, ok := r.Text(*s)
		if ok {
			*s = out
			if path != "" {
				w.paths = append(w.paths, path)
			}
		}
		return ok
	}
	text("reason", &ev.Reason)
	text("actor.name", &ev.Actor.Name)
	for i := range ev.Targets {
		if text("", &ev.Targets[i].Name) {
			w.paths = append(w.paths, trail.PathKey(trail.PathIndex("targets", i), "name"))
		}
	}
	text("request.user_agent", &ev.Request.UserAgent)
	if id := ev.Request.SessionID; id != "" {
		if _, token := r.scan(id, ruleCredentials); token {
			ev.Request.SessionID = r.replacement(id)
			w.paths = append(w.paths, "request.session_id")
		}
	}
	if out, ok := r.requestPath(ev.Request.Path); ok {
		ev.Request.Path = out
		w.paths = append(w.paths, "request.path")
	}
	if len(w.paths) > 0 {
		ev.Redacted = append(ev.Redacted, w.paths...)
		slices.Sort(ev.Redacted)
		ev.Redacted = slices.Compact(ev.Redacted)
	}
}

// Value redacts one JSON value v found at path (for example "context"), as
// decoded by encoding/json: map[string]any, []any, string, bool, nil, and
// numbers as float64 or json.Number. It returns the redacted value and the
// paths it replaced, sorted, each once; it never modifies v, copying only the
// maps and slices it has to change.
//
// Inside objects, a key that names a secret (SecretKey) has its whole value
// replaced, whatever its type, except null and "" which hide nothing. Other
// strings are scanned with Text. A number is judged by its value: one whose
// exact or canonical value is an integer of 13 to 19 digits passing the Luhn
// check becomes the masked string ("****1111"); any other number is kept,
// every digit, and so is a string that is exactly a JSON number (the
// validator keeps numbers too precise for a double that way). A hex digest
// under a key that names one ("sha256", "file_sha256", "contentHash",
// "commit") is kept whole. A key that itself holds a card number or token is
// masked too, so the stored path does not leak it. Values of other Go types
// are read through their JSON encoding.
func (r *Redactor) Value(path string, v any) (any, []string) {
	w := walker{r: r}
	w.push(seg{key: path, root: true})
	out, _ := w.value(v)
	slices.Sort(w.paths)
	return out, slices.Compact(w.paths)
}

// replacement returns what a secret value v is stored as: Redacted, or with
// an HMAC key its keyed digest.
func (r *Redactor) replacement(v any) string {
	if len(r.hmacKey) == 0 {
		return Redacted
	}
	var b []byte
	if s, ok := v.(string); ok {
		b = []byte(s)
	} else {
		var err error
		if b, err = trail.Canonicalize(v); err != nil {
			if b, err = json.Marshal(v); err != nil {
				return Redacted
			}
		}
	}
	mac := hmac.New(sha256.New, r.hmacKey)
	mac.Write(b)
	return hmacPrefix + hex.EncodeToString(mac.Sum(nil))
}

// seg is one step of a JSON path: an object member, an array index, or the
// root the path starts from.
type seg struct {
	key  string
	idx  int
	kind byte // 'k' member, 'i' index
	root bool
}

// walker redacts one value, keeping the path it is at as a stack of steps so
// that path strings are only built for what it records.
type walker struct {
	r     *Redactor
	stack []seg
	paths []string
}

func (w *walker) push(s seg) {
	if !s.root && s.kind == 0 {
		s.kind = 'k'
	}
	w.stack = append(w.stack, s)
}

func (w *walker) pop() { w.stack = w.stack[:len(w.stack)-1] }

// record notes the current path as redacted.
func (w *walker) record() {
	p := ""
	for _, s := range w.stack {
		switch {
		case s.root:
			p = s.key
		case s.kind == 'i':
			p = trail.PathIndex(p, s.idx)
		default:
			p = trail.PathKey(p, s.key)
		}
	}
	w.paths = append(w.paths, p)
}

// value returns v redacted and whether anything changed.
func (w *walker) value(v any) (any, bool) {
	switch x := v.(type) {
	case nil, bool:
		return v, false
	case string:
		if isNumber(x) {
			return w.numberValue(v, x, false)
		}
		if out, ok := w.r.Text(x); ok {
			w.record()
			return out, true
		}
		return v, false
	case map[string]any:
		return w.object(x)
	case []any:
		return w.array(x)
	case json.Number:
		return w.numberValue(v, string(x), true)
	case float64:
		return w.float(v, x)
	case float32:
		return w.float(v, float64(x))
	case int:
		return w.numberValue(v, strconv.FormatInt(int64(x), 10), false)
	case int64:
		return w.numberValue(v, strconv.FormatInt(x, 10), false)
	case int32:
		return w.numberValue(v, strconv.FormatInt(int64(x), 10), false)
	case uint64:
		return w.numberValue(v, strconv.FormatUint(x, 10), false)
	case uint:
		return w.numberValue(v, strconv.FormatUint(uint64(x), 10), false)
	case uint32:
		return w.numberValue(v, strconv.FormatUint(uint64(x), 10), false)
	case int8, int16, uint8, uint16:
		return v, false // too short to hold anything
	default:
		// A typed Go value (a struct, a map[string]string): judge it by the
		// JSON it would be stored as.
		b, err := json.Marshal(x)
		if err != nil {
			return v, false
		}
		var generic any
		if err := unmarshalNumbers(b, &generic); err != nil {
			return v, false
		}
		if out, changed := w.value(generic); changed {
			return out, true
		}
		return v, false
	}
}

func unmarshalNumbers(b []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	return dec.Decode(v)
}

// numberValue returns the number v, written lit, or the masked string that
// replaces it.
func (w *walker) numberValue(v any, lit string, isJSON bool) (any, bool) {
	if out, ok := w.number(lit, isJSON); ok {
		return out, true
	}
	return v, false
}

// number masks the number written lit when its value is a card number (see
// numberCard): the literal's exact value or, for a JSON number, its
// canonical form, the digits actually stored (4.111111111111111e15 is stored
// as 4111111111111111).
func (w *walker) number(lit string, isJSON bool) (string, bool) {
	last4, ok := numberCard(lit)
	if !ok && isJSON && !shortInteger(lit) {
		if c, err := trail.CanonicalNumber(lit); err == nil && c != lit {
			last4, ok = numberCard(c)
		}
	}
	if !ok {
		return "", false
	}
	w.record()
	return "****" + string(last4[:]), true
}

// shortInteger reports whether lit is an integer of at most 15 digits, which
// canonical form writes as it is.
func shortInteger(lit string) bool {
	digits := strings.TrimPrefix(lit, "-")
	if len(digits) == 0 || len(digits) > 15 {
		return false
	}
	for i := 0; i < len(digits); i++ {
		if !isDigit(digits[i]) {
			return false
		}
	}
	return true
}

func (w *walker) float(v any, f float64) (any, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return v, false
	}
	return w.numberValue(v, strconv.FormatFloat(f, 'g', -1, 64), true)
}

// rename is an object key that holds a secret itself.
type rename struct{ from, to string }

func (w *walker) object(m map[string]any) (any, bool) {
	var out map[string]any // copied on first change
	var renames []rename
	for k, e := range m {
		if mk, ok := w.r.Text(k); ok {
			renames = append(renames, rename{k, mk})
			continue
		}
		secret := w.r.SecretKey(k)
		if !secret && digestValue(k, e) {
			continue
		}
		w.push(seg{key: k})
		nv, changed := w.member(secret, e)
		w.pop()
		if changed {
			if out == nil {
				out = cloneMap(m)
			}
			out[k] = nv
		}
	}
	if len(renames) > 0 {
		if out == nil {
			out = cloneMap(m)
		}
		// Sorted, so that keys masked to the same text get the same
		// suffixes every time.
		slices.SortFunc(renames, func(a, b rename) int { return strings.Compare(a.from, b.from) })
		for _, rn := range renames {
			delete(out, rn.from)
		}
		for _, rn := range renames {
			to := rn.to
			for n := 2; ; n++ {
				if _, taken := out[to]; !taken {
					break
				}
				to = rn.to + "~" + strconv.Itoa(n)
			}
			w.push(seg{key: to})
			w.record()
			// Judged by both names, to be safe whichever one looks secret.
			nv, _ := w.member(w.r.SecretKey(rn.from) || w.r.SecretKey(to), m[rn.from])
			w.pop()
			out[to] = nv
		}
	}
	if out == nil {
		return m, false
	}
	return out, true
}

// digestValue reports whether e, the value of key k, is a hex digest that the
// key names as one ("sha256", "file_sha256", "contentHash", "commit"): its
// digits are kept whole, as a labeled digest's are in text.
func digestValue(k string, e any) bool {
	d, ok := e.(string)
	if !ok || !isHexDigest(d) {
		return false
	}
	words := strings.Split(string(normalizeKey(nil, k)), "_")
	last := words[len(words)-1]
	if _, ok := digestLabels[last]; ok {
		return true
	}
	if len(words) > 1 { // "sha_256", the snake_case of "sha-256"
		_, ok := digestLabels[words[len(words)-2]+"-"+last]
		return ok
	}
	return false
}

// cloneMap copies m, sized so that replacing members does not grow it.
func cloneMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// member redacts the value e of an object member, at the current path,
// replacing it whole when its key names a secret.
func (w *walker) member(secret bool, e any) (any, bool) {
	if !secret {
		return w.value(e)
	}
	if e == nil || e == "" {
		return e, false // nothing to hide; replacing it would claim a secret was there
	}
	w.record()
	if len(w.r.hmacKey) == 0 {
		return redactedValue, true
	}
	return w.r.replacement(e), true
}

// redactedValue is Redacted as an interface value, boxed once.
var redactedValue any = Redacted

func (w *walker) array(a []any) (any, bool) {
	var out []any
	for i, e := range a {
		w.push(seg{idx: i, kind: 'i'})
		nv, changed := w.value(e)
		w.pop()
		if changed {
			if out == nil {
				out = slices.Clone(a)
			}
			out[i] = nv
		}
	}
	if out == nil {
		return a, false
	}
	return out, true
}

// requestPath redacts a request path: the values of secret-named parameters in
// its query and fragment (OAuth's implicit flow puts access_token there), then
// whatever Text finds.
func (r *Redactor) requestPath(p string) (string, bool) {
	out, changed := r.queryParams(p)
	if t, ok := r.Text(out); ok {
		return t, true
	}
	return out, changed
}

func (r *Redactor) queryParams(p string) (string, bool) {
	start := strings.IndexAny(p, "?#")
	if start < 0 || !strings.Contains(p[start:], "=") {
		return p, false
	}
	var b strings.Builder
	last := 0
	// Parameters are separated by '&' or ';'; '?' and '#' start new ones
	// (a fragment, or a query inside a single-page app's fragment route).
	i := start + 1
	for i <= len(p) {
		end := i
		for end < len(p) && !isParamSep(p[end]) {
			end++
		}
		param := p[i:end]
		if eq := strings.IndexByte(param, '='); eq > 0 && eq < len(param)-1 {
			key, val := param[:eq], param[eq+1:]
			if r.SecretKey(queryUnescape(strings.TrimSuffix(key, "[]"))) {
				b.WriteString(p[last : i+eq+1])
				b.WriteString(r.replacement(queryUnescape(val)))
				last = end
			}
		}
		i = end + 1
	}
	if last == 0 {
		return p, false
	}
	b.WriteString(p[last:])
	return b.String(), true
}

func isParamSep(c byte) bool { return c == '&' || c == ';' || c == '?' || c == '#' }

// queryUnescape decodes %XX escapes and '+' as in a query string, leaving
// malformed escapes as they are.
func queryUnescape(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			b = append(b, ' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}
