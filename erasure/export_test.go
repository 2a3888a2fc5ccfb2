package erasure

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/trailaudit/trail"
)

// SealAsBefore makes s seal in enc2, the form of the blobs sealed before
// enc4, so that tests can make such events and check they open as before.
func SealAsBefore(s *Sealer) { s.form = form2{} }

// form2 writes enc2 blobs, as Seal did before the compact forms:
// enc2:KEYID:base64url(nonce ‖ AES-256-GCM(event key, nonce, JSON {path: value})).
type form2 struct{}

func (form2) appendPlain(dst []byte, ev *trail.Event, fields []field) ([]byte, error) {
	var err error
	for n, f := range fields {
		sep := byte(',')
		if n == 0 {
			sep = '{'
		}
		if dst, err = appendJSON(append(appendString(append(dst, sep), f.path), ':'), f.get(ev)); err != nil {
			return nil, fmt.Errorf("erasure: %s: %w", f.path, err)
		}
	}
	return append(dst, '}'), nil
}

func (form2) appendHead(dst []byte, _ string) ([]byte, error) { return dst, nil }

func (form2) appendBlob(dst []byte, id string, sealed []byte) []byte {
	return b64.AppendEncode(append(append(append(dst, prefix...), id...), ':'), sealed)
}

// appendJSON appends v as JSON.
func appendJSON(b []byte, v any) ([]byte, error) {
	if str, ok := v.(string); ok {
		return appendString(b, str), nil
	}
	j, err := json.Marshal(v)
	return append(b, j...), err
}

// appendString appends str as a JSON string: as it is when it is plain
// ASCII with nothing to escape, else as encoding/json writes it.
func appendString(b []byte, str string) []byte {
	for i := 0; i < len(str); i++ {
		if c := str[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			j, _ := json.Marshal(str) // a string always marshals
			return append(b, j...)
		}
	}
	b = append(b, '"')
	b = append(b, str...)
	return append(b, '"')
}
