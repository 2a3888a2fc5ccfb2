package trail

// ParseEventStrict is the several-pass reader the one-pass decoder of
// ParseEvent must agree with (FuzzParseEventSame).
var ParseEventStrict = parseEventStrict

// DecodeEventOnePass reports whether ParseEvent reads data in one pass.
func DecodeEventOnePass(data []byte) bool {
	_, ok := decodeEvent(data)
	return ok
}
