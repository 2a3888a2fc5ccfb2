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

// CanonicalBound is the bound on a normalized context's canonical size
// under which the validator does not measure it.
var CanonicalBound = canonicalBound

// ParseCanonicalNumber is CanonicalNumber without its fast path for
// integers.
var ParseCanonicalNumber = parseCanonicalNumber
