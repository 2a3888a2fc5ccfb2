package erasure

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/trailaudit/trail"
)

// The sealed forms a personal field may hold (docs/design.md "GDPR erasure
// without losing integrity"):
//
//	enc4:base64url(KEYID ‖ nonce ‖ AES-256-GCM(event key, nonce, fields))
//	enc3:base64url(KEYID ‖ AES-256-GCM(event key, zero nonce, fields))
//	enc2:KEYID:base64url(nonce ‖ AES-256-GCM(event key, nonce, JSON {path: value}))
//	enc1:KEYID:base64url(nonce ‖ AES-256-GCM(subject key, nonce, JSON {path: value}))
//
// and the references to a blob (ref, ref PATH), the same whatever the
// blob's form. Seal writes enc4 (the tests write enc2 as before, with
// SealAsBefore); every form opens.
//
// enc4 and enc3 are the compact forms (form4, plain3). In both the key
// id is one byte 0 and 8 bytes for an id of 16 lower-case hex digits
// (every store's, trail.NewSubjectKey), else one byte n (1 to 255) and
// the id's n bytes (valid UTF-8, never 16 lower-case hex digits). The
// nonce of enc4 is 12 random bytes (crypto/rand) drawn for each
// blob: an event key is derived from the tenant, the key id and the
// event's id, so whatever a caller seals under one id (the same event
// sealed twice, two events given one id), no key and nonce seal two
// plaintexts but by a chance of 2^-96 a pair. The plaintext is the blob's
// fields one after another (plain3), not JSON. enc3, written for a day
// (the main branch of 7 December 2026), is enc4 with the constant zero as
// its nonce, not stored, which two Seal calls for one event id could
// reuse; it still opens, and is never written.
const (
	prefix4 = "enc4:"
	prefix3 = "enc3:"
	prefix  = "enc2:"
	prefix1 = "enc1:"
	ref     = prefix1 + "^"
)

// nonceSize is the bytes of a blob's nonce, AES-GCM's standard size.
const nonceSize = 12

// zeroNonce is the nonce of every enc3 blob.
var zeroNonce = make([]byte, nonceSize)

// b64 is the encoding of a blob's bytes. enc4 and enc3 are read strictly
// (the unused bits of the last character zero), so one blob has one
// spelling.
var (
	b64       = base64.RawURLEncoding
	b64Strict = base64.RawURLEncoding.Strict()
)

// isSealed reports whether str has one of the sealed prefixes (a blob or
// a reference).
func isSealed(str string) bool {
	return strings.HasPrefix(str, prefix4) || strings.HasPrefix(str, prefix3) || strings.HasPrefix(str, prefix) ||
		strings.HasPrefix(str, prefix1)
}

// sealedBlob is a sealed value parsed: its form (a prefix), its key id, and what
// the AEAD opens (nonce, ciphertext and tag).
type sealedBlob struct {
	version string
	id      string
	nonce   []byte
	ct      []byte
}

// parseBlob reads a sealed value that is not a reference. ok is false for
// any value not in one of the sealed forms.
func parseBlob(v string) (b sealedBlob, ok bool) {
	switch {
	case strings.HasPrefix(v, prefix4) || strings.HasPrefix(v, prefix3):
		version := v[:len(prefix4)]
		enc := v[len(prefix4):]
		data, err := b64Strict.DecodeString(enc)
		if err != nil || b64.EncodedLen(len(data)) != len(enc) { // the decoder skips line breaks
			return sealedBlob{}, false
		}
		id, rest, ok := cutKeyID(data)
		if !ok {
			return sealedBlob{}, false
		}
		nonce := zeroNonce
		if version == prefix4 {
			if len(rest) < nonceSize {
				return sealedBlob{}, false
			}
			nonce, rest = rest[:nonceSize], rest[nonceSize:]
		}
		if len(rest) < 16 { // the tag
			return sealedBlob{}, false
		}
		return sealedBlob{version: version, id: id, nonce: nonce, ct: rest}, true
	case strings.HasPrefix(v, prefix) || strings.HasPrefix(v, prefix1) && !strings.HasPrefix(v, ref):
		id, enc, ok := strings.Cut(v[len(prefix):], ":")
		data, err := b64.DecodeString(enc)
		if !ok || err != nil || len(data) < nonceSize {
			return sealedBlob{}, false
		}
		return sealedBlob{version: v[:len(prefix)], id: id, nonce: data[:nonceSize], ct: data[nonceSize:]}, true
	}
	return sealedBlob{}, false
}

// blobForm writes sealed blobs in one form: Seal writes form4 (the tests
// write enc2 as before with SealAsBefore, export_test.go).
type blobForm interface {
	// appendPlain appends the plaintext of ev's fields (one subject's).
	appendPlain(dst []byte, ev *trail.Event, fields []field) ([]byte, error)
	// appendHead appends what a blob's bytes start with, before its nonce.
	appendHead(dst []byte, id string) ([]byte, error)
	// appendBlob appends the text of the blob of key id whose bytes are
	// sealed (the head, the nonce, the ciphertext and its tag).
	appendBlob(dst []byte, id string, sealed []byte) []byte
}

// form4 writes enc4 blobs (the compact form, with its nonce).
type form4 struct{}

func (form4) appendPlain(dst []byte, ev *trail.Event, fields []field) ([]byte, error) {
	var err error
	for _, f := range fields {
		if dst, err = appendField(dst, f, ev); err != nil {
			return nil, fmt.Errorf("erasure: %s: %w", f.path, err)
		}
	}
	return dst, nil
}

func (form4) appendHead(dst []byte, id string) ([]byte, error) { return appendKeyID(dst, id) }

func (form4) appendBlob(dst []byte, _ string, sealed []byte) []byte { return appendBlob4(dst, sealed) }

// appendBlob4 appends the enc4 value of a key id and its sealed bytes
// (nonce, ciphertext and tag); sealed starts with the key id
// (appendKeyID).
func appendBlob4(dst, sealed []byte) []byte {
	return b64.AppendEncode(append(dst, prefix4...), sealed)
}

// appendKeyID appends id as an enc4 (or enc3) blob starts with it.
func appendKeyID(dst []byte, id string) ([]byte, error) {
	if hexID(id) {
		dst = append(dst, 0)
		return hex.AppendDecode(dst, []byte(id))
	}
	if id == "" || len(id) > 255 || !utf8.ValidString(id) {
		return nil, fmt.Errorf("erasure: key id %q: not 1 to 255 bytes of UTF-8", id)
	}
	return append(append(dst, byte(len(id))), id...), nil
}

// cutKeyID reads the key id an enc4 or enc3 blob starts with, and returns the rest.
func cutKeyID(data []byte) (id string, rest []byte, ok bool) {
	if len(data) == 0 {
		return "", nil, false
	}
	n := int(data[0])
	if n == 0 {
		if len(data) < 9 {
			return "", nil, false
		}
		return hex.EncodeToString(data[1:9]), data[9:], true
	}
	if len(data) < 1+n {
		return "", nil, false
	}
	id = string(data[1 : 1+n])
	if hexID(id) || !utf8.ValidString(id) { // Seal writes those as 8 bytes; and ids are text
		return "", nil, false
	}
	return id, data[1+n:], true
}

// hexID reports whether id is 16 lower-case hex digits (8 bytes in enc4 and enc3).
func hexID(id string) bool {
	if len(id) != 16 {
		return false
	}
	for i := range len(id) {
		if c := id[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// The plaintext of an enc4 or enc3 blob (plain3) is its fields one after another,
// each a code naming the field, then the value's length (a minimal
// uvarint) and bytes:
//
//	'n' actor.name, 'e' actor.email, 'i' request.ip   a string
//	't' uvarint(i): targets.i.name                     a string
//	'c' uvarint(len) key: context.key                  a string
//	'j' uvarint(len) key: context.key                  any other JSON value (encoding/json's)
//
// Strings are valid UTF-8, a path appears once, and a 'j' value is valid
// JSON that is not a string and starts with no space; a plaintext that is anything else opens to
// nothing (it was not sealed by Seal), so that one blob has one plaintext.
const (
	codeActorName  = 'n'
	codeActorEmail = 'e'
	codeRequestIP  = 'i'
	codeTarget     = 't'
	codeContext    = 'c'
	codeContextRaw = 'j'
)

// entry is one field of a plain3 plaintext, as stored.
type entry struct {
	code  byte
	index int    // codeTarget
	key   string // codeContext, codeContextRaw
	value []byte
	json  any // codeContextRaw: value decoded (decodeWhole), when parsePlain3 read it
}

// path is the field's path, as Sealer.candidates names it.
func (e entry) path() string {
	switch e.code {
	case codeActorName:
		return "actor.name"
	case codeActorEmail:
		return "actor.email"
	case codeRequestIP:
		return "request.ip"
	case codeTarget:
		return "targets." + strconv.Itoa(e.index) + ".name"
	}
	return "context." + e.key
}

// appendEntry appends e in plain3.
func appendEntry(dst []byte, e entry) []byte {
	return append(appendHead(dst, e, len(e.value)), e.value...)
}

// appendHead appends e's code, index or key, and the length n of its
// value: all of e in plain3 but the value's bytes.
func appendHead(dst []byte, e entry, n int) []byte {
	dst = append(dst, e.code)
	switch e.code {
	case codeTarget:
		dst = binary.AppendUvarint(dst, uint64(e.index))
	case codeContext, codeContextRaw:
		dst = append(binary.AppendUvarint(dst, uint64(len(e.key))), e.key...)
	}
	return binary.AppendUvarint(dst, uint64(n))
}

// appendField appends field f of ev in plain3.
func appendField(dst []byte, f field, ev *trail.Event) ([]byte, error) {
	e := entry{index: f.i, key: f.key}
	switch f.at {
	case actorName:
		e.code = codeActorName
	case actorEmail:
		e.code = codeActorEmail
	case requestIP:
		e.code = codeRequestIP
	case targetName:
		e.code = codeTarget
	default:
		v := ev.Context[f.key]
		str, ok := v.(string)
		if ok {
			return append(appendHead(dst, entry{code: codeContext, key: f.key}, len(str)), str...), nil
		}
		j, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		return appendEntry(dst, entry{code: codeContextRaw, key: f.key, value: j}), nil
	}
	str := f.str(ev)
	return append(appendHead(dst, e, len(str)), str...), nil
}

var errPlain3 = errors.New("erasure: not a plaintext Seal writes")

// parsePlain3 reads a plain3 plaintext into its entries, checking
// everything the form says.
func parsePlain3(pt []byte) ([]entry, error) {
	var out []entry
	seen := map[string]bool{}
	for len(pt) > 0 {
		e := entry{code: pt[0]}
		pt = pt[1:]
		var ok bool
		switch e.code {
		case codeActorName, codeActorEmail, codeRequestIP:
		case codeTarget:
			var i uint64
			if i, pt, ok = uvarint(pt); !ok || i > math.MaxInt32 {
				return nil, errPlain3
			}
			e.index = int(i)
		case codeContext, codeContextRaw:
			var key []byte
			if key, pt, ok = lengthPrefixed(pt); !ok || !utf8.Valid(key) {
				return nil, errPlain3
			}
			e.key = string(key)
		default:
			return nil, errPlain3
		}
		if e.value, pt, ok = lengthPrefixed(pt); !ok {
			return nil, errPlain3
		}
		if e.code == codeContextRaw {
			// Decoded here, once: decodeWhole refuses what json.Valid does.
			if len(e.value) == 0 || !strings.ContainsRune("{[tfn-0123456789", rune(e.value[0])) {
				return nil, errPlain3
			}
			if e.json, ok = decodeWhole(e.value); !ok {
				return nil, errPlain3
			}
		} else if !utf8.Valid(e.value) {
			return nil, errPlain3
		}
		if p := e.path(); seen[p] {
			return nil, errPlain3
		} else {
			seen[p] = true
		}
		out = append(out, e)
	}
	return out, nil
}

// uvarint reads a minimal uvarint.
func uvarint(b []byte) (uint64, []byte, bool) {
	v, n := binary.Uvarint(b)
	if n <= 0 || n != len(binary.AppendUvarint(nil, v)) {
		return 0, nil, false
	}
	return v, b[n:], true
}

// lengthPrefixed reads a uvarint length and that many bytes.
func lengthPrefixed(b []byte) (data, rest []byte, ok bool) {
	n, b, ok := uvarint(b)
	if !ok || n > uint64(len(b)) {
		return nil, nil, false
	}
	return b[:n], b[n:], true
}

// values3 returns what a plain3 plaintext opens each path to: strings as
// they are, other JSON values decoded as the store's reads decode them
// (numbers as json.Number).
func values3(pt []byte) (map[string]any, bool) {
	entries, err := parsePlain3(pt)
	if err != nil {
		return nil, false
	}
	vals := make(map[string]any, len(entries))
	for _, e := range entries {
		if e.code == codeContextRaw {
			vals[e.path()] = e.json
		} else {
			vals[e.path()] = string(e.value)
		}
	}
	return vals, true
}

// valuesJSON returns what the plaintext of an enc1 or enc2 blob (a JSON
// object of paths) opens each path to.
func valuesJSON(pt []byte) (map[string]any, bool) {
	var vals map[string]any
	if newDecoder(pt).Decode(&vals) != nil {
		return nil, false
	}
	return vals, true
}

// newDecoder returns a decoder of b giving numbers as json.Number, as the
// store's reads return them.
func newDecoder(b []byte) *json.Decoder {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec
}

// decodeWhole decodes b, which must be one JSON value and nothing after it
// but space: it accepts what json.Valid accepts, and nothing else, so that
// a value is read in one pass, not checked and then decoded.
func decodeWhole(b []byte) (any, bool) {
	dec := newDecoder(b)
	var v any
	if dec.Decode(&v) != nil {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false
	}
	return v, true
}

// values returns what b's plaintext pt opens each path to, as its form
// writes it.
func (b sealedBlob) values(pt []byte) (map[string]any, bool) {
	if b.version == prefix4 || b.version == prefix3 {
		return values3(pt)
	}
	return valuesJSON(pt)
}

// eventKeyLabel starts what an event key is derived from (EventKey).
const eventKeyLabel = "trail erasure event key v1\x00"

// keyer derives event keys (EventKey) without allocating, into buffers it
// keeps: one per goroutine.
type keyer struct {
	block [sha256.BlockSize]byte
	msg   []byte
	key   [sha256.Size]byte
}

// derive returns EventKey(key, tenant, id, event), valid until the next
// call: HMAC-SHA256 (RFC 2104) written out, for a key of at most one block.
func (k *keyer) derive(key []byte, tenant, id, event string) []byte {
	if len(key) > sha256.BlockSize {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(eventKeyLabel + tenant + "\x00" + id + "\x00" + event))
		return m.Sum(k.key[:0])
	}
	k.block = [sha256.BlockSize]byte{}
	copy(k.block[:], key)
	for i := range k.block {
		k.block[i] ^= 0x36
	}
	k.msg = append(append(k.msg[:0], k.block[:]...), eventKeyLabel...)
	k.msg = append(append(append(append(append(k.msg, tenant...), 0), id...), 0), event...)
	inner := sha256.Sum256(k.msg)
	for i := range k.block {
		k.block[i] ^= 0x36 ^ 0x5c
	}
	k.msg = append(append(k.msg[:0], k.block[:]...), inner[:]...)
	k.key = sha256.Sum256(k.msg)
	return k.key[:]
}

// appendAAD appends the associated data of a blob: its tenant, key id and
// event, so that a blob moved to another event does not open.
func appendAAD(dst []byte, tenant, id, event string) []byte {
	return append(append(append(append(append(dst, tenant...), 0), id...), 0), event...)
}
