package trail

// ParseEventStrict is the several-pass reader the one-pass decoder of
// ParseEvent must agree with (FuzzParseEventSame).
var ParseEventStrict = parseEventStrict

// DecodeEventOnePass reports whether ParseEvent reads data in one pass.
func DecodeEventOnePass(data []byte) bool {
	_, ok := decodeEvent(data, wireForm)
	return ok
}

// UnmarshalCanonicalStrict is the encoding/json reader the one-pass
// decoder of UnmarshalCanonical must agree with
// (FuzzUnmarshalCanonicalSame).
var UnmarshalCanonicalStrict = unmarshalCanonicalStrict

// DecodeCanonicalOnePass reports whether UnmarshalCanonical reads data in
// one pass.
func DecodeCanonicalOnePass(data []byte) bool {
	_, ok := decodeEvent(data, canonicalForm)
	return ok
}

// ContextBound is the bound on the canonical size of ctx, normalized,
// that Prepare holds to Limits.MaxContextBytes before it measures the
// size (normalize's), under the default limits.
func ContextBound(ctx map[string]any) int {
	c := checker{lim: DefaultLimits(), ev: &Event{}}
	_, bound, _ := c.normalize(valuePath{parent: "context"}, ctx, 0)
	return bound
}

// ParseCanonicalNumber is CanonicalNumber without its fast path for
// integers.
var ParseCanonicalNumber = parseCanonicalNumber
