package trail

import (
	"cmp"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
)

// encoding/json reads a document more loosely than other JSON parsers do: a
// member given twice takes its last value, member names match struct
// fields in any case, and invalid UTF-8 or a lone surrogate escape become
// U+FFFD. A parser in front of Trail that reads the same bytes otherwise
// (the first value wins, names are exact, the bytes are kept) would see
// another event than the one Trail stores. checkMembers refuses every such
// document before it is decoded, so an event means one thing.

// shape is what may stand at one place of a document: the exact member
// names of an object decoded into a struct (names nil: an object of free
// names, such as the context) and the shape of each member or element.
type shape struct {
	names map[string]*shape // nil: any name; its value has shape free
	elem  *shape            // of an array's elements; nil: free
}

// free is the shape of a free JSON value: any member names, each once.
var free = &shape{}

// shapeOf returns the shape of values of type t decoded by encoding/json.
func shapeOf(t reflect.Type) *shape {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		s := &shape{names: map[string]*shape{}}
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !f.IsExported() || name == "-" {
				continue
			}
			s.names[name] = shapeOf(f.Type)
		}
		return s
	case reflect.Slice, reflect.Array:
		return &shape{elem: shapeOf(t.Elem())}
	}
	return free
}

// wireShape is the shape of an event's wire form.
var wireShape = sync.OnceValue(func() *shape { return shapeOf(reflect.TypeFor[wireEvent]()) })

// member returns the shape of member name of an object of shape s, or
// nil when s does not have it.
func (s *shape) member(name string) *shape {
	if s.names == nil {
		return free
	}
	return s.names[name]
}

// element returns the shape of an array's elements.
func (s *shape) element() *shape {
	if s.elem == nil {
		return free
	}
	return s.elem
}

// exactName returns the member of s that name matches in another case,
// or "".
func (s *shape) exactName(name string) string {
	for n := range s.names {
		if strings.EqualFold(n, name) {
			return n
		}
	}
	return ""
}

// memberChecker walks one document that json.Valid accepts and gathers the
// field errors of what it would decode to loosely. Its recursion is bounded
// by the depth ParseEvent allows.
type memberChecker struct {
	data []byte
	i    int
	errs []FieldError
}

// checkMembers returns the field errors of data, a valid JSON document to
// be decoded with shape s: duplicate members, names not exactly those of s,
// invalid UTF-8 and lone surrogate escapes, each at its path.
func checkMembers(data []byte, s *shape) []FieldError {
	c := &memberChecker{data: data}
	c.value("", s)
	return c.errs
}

func (c *memberChecker) fail(path, msg string) {
	c.errs = append(c.errs, FieldError{Path: path, Message: msg})
}

func (c *memberChecker) space() {
	for c.i < len(c.data) {
		switch c.data[c.i] {
		case ' ', '\t', '\n', '\r', ',', ':':
			c.i++
		default:
			return
		}
	}
}

// value checks the value at c.i, at path, to be decoded with shape s.
func (c *memberChecker) value(path string, s *shape) {
	c.space()
	switch c.data[c.i] {
	case '{':
		c.object(path, s)
	case '[':
		c.i++
		for n := 0; ; n++ {
			c.space()
			if c.data[c.i] == ']' {
				c.i++
				return
			}
			c.value(PathIndex(path, n), s.element())
		}
	case '"':
		if _, _, msg := c.str(); msg != "" {
			c.fail(path, msg)
		}
	default: // a number, true, false or null
		for c.i < len(c.data) && !strings.ContainsRune(" \t\n\r,:]}", rune(c.data[c.i])) {
			c.i++
		}
	}
}

func (c *memberChecker) object(path string, s *shape) {
	c.i++
	seen := map[string]int{}
	for {
		c.space()
		if c.data[c.i] == '}' {
			c.i++
			return
		}
		raw, escaped, msg := c.str()
		name := decodeName(raw, escaped)
		at := PathKey(path, name)
		seen[name]++
		ms := s.member(name)
		switch {
		case msg != "":
			c.fail(at, "member name: "+msg)
		case ms == nil && seen[name] == 1:
			if exact := s.exactName(name); exact != "" {
				c.fail(at, fmt.Sprintf("unknown field (member names are exact: %q)", exact))
			} else {
				c.fail(at, "unknown field")
			}
		case ms != nil && seen[name] == 2:
			c.fail(at, "duplicate member")
		}
		c.value(at, cmp.Or(ms, free))
	}
}

// The messages of a string that would not decode to what it holds.
const (
	msgInvalidUTF8   = "not valid UTF-8"
	msgLoneSurrogate = `a lone surrogate escape (\ud800 to \udfff not in a pair) is not a character`
)

// str reads the string at c.i and returns it as it stands in the
// document, whether it holds escapes, and, when it would not decode to
// exactly what it holds, what is wrong with it.
func (c *memberChecker) str() (raw []byte, escaped bool, msg string) {
	start := c.i
	c.i++
	for c.data[c.i] != '"' {
		switch b := c.data[c.i]; {
		case b == '\\' && c.data[c.i+1] == 'u':
			escaped = true
			r := hex4(c.data[c.i+2:])
			c.i += 6
			if !utf16.IsSurrogate(r) {
				continue
			}
			if c.i+6 <= len(c.data) && c.data[c.i] == '\\' && c.data[c.i+1] == 'u' &&
				utf16.DecodeRune(r, hex4(c.data[c.i+2:])) != utf8.RuneError {
				c.i += 6 // a pair: one character
				continue
			}
			msg = cmp.Or(msg, msgLoneSurrogate)
		case b == '\\':
			escaped = true
			c.i += 2
		case b < utf8.RuneSelf:
			c.i++
		default:
			r, size := utf8.DecodeRune(c.data[c.i:])
			if r == utf8.RuneError && size == 1 {
				msg = cmp.Or(msg, msgInvalidUTF8)
			}
			c.i += size
		}
	}
	c.i++
	return c.data[start:c.i], escaped, msg
}

// decodeName returns the member name raw, a string as str read it.
func decodeName(raw []byte, escaped bool) string {
	if !escaped {
		return string(raw[1 : len(raw)-1])
	}
	var name string
	json.Unmarshal(raw, &name) // cannot fail: json.Valid accepted the document
	return name
}

// hex4 reads the four hex digits of a \u escape.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// CheckMembers returns the field errors of data, a JSON document to be
// decoded into v (a pointer to a struct) by encoding/json: members given
// twice, names not exactly v's json names (in another case), invalid
// UTF-8 and lone surrogate escapes, each at its path. It is what
// ParseEvent refuses, for any body decoded into a struct; data that is not
// valid JSON has none (the decoder refuses it).
func CheckMembers(data []byte, v any) []FieldError {
	if !json.Valid(data) {
		return nil
	}
	return checkMembers(data, shapeOf(reflect.TypeOf(v)))
}
