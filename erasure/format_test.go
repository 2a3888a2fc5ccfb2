package erasure

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/memory"
)

// EventKey is HMAC-SHA256 of the label, tenant, key id and event under the
// subject's key, whatever the key's length (keyer writes HMAC out for a
// key of one block or less).
func TestEventKey(t *testing.T) {
	for _, n := range []int{0, 1, 32, 63, 64, 65, 200} {
		key := bytes.Repeat([]byte{byte(n + 1)}, n)
		m := hmac.New(sha256.New, key)
		m.Write([]byte("trail erasure event key v1\x00acme\x00" + "0123456789abcdef" + "\x00" + "01a21700-0000-7000-8000-000000000001"))
		want := m.Sum(nil)
		var k keyer
		for range 2 { // and again with the keyer's buffers used
			if got := k.derive(key, "acme", "0123456789abcdef", "01a21700-0000-7000-8000-000000000001"); !bytes.Equal(got, want) {
				t.Errorf("key of %d bytes: %x, want %x", n, got, want)
			}
		}
		if got := EventKey(key, "acme", "0123456789abcdef", "01a21700-0000-7000-8000-000000000001"); !bytes.Equal(got, want) {
			t.Errorf("EventKey, key of %d bytes: %x, want %x", n, got, want)
		}
	}
}

// A key id of 16 lower-case hex digits takes 9 bytes in enc4, any other
// its own bytes and one; each reads back as it was, and ids enc4 cannot
// hold are refused.
func TestKeyID(t *testing.T) {
	for _, tc := range []struct {
		id   string
		size int // bytes in enc4; 0: refused
	}{
		{"0123456789abcdef", 9},
		{"0123456789ABCDEF", 17},
		{"key-1", 6},
		{"0123456789abcde", 16},
		{strings.Repeat("k", 255), 256},
		{strings.Repeat("k", 256), 0},
		{"", 0},
		{"\xff", 0},
	} {
		b, err := appendKeyID([]byte("x"), tc.id)
		if tc.size == 0 {
			if err == nil {
				t.Errorf("%q: made %x, want it refused", tc.id, b)
			}
			continue
		}
		if err != nil || len(b) != 1+tc.size {
			t.Errorf("%q: %x, %v; want %d bytes", tc.id, b, err, tc.size)
			continue
		}
		id, rest, ok := cutKeyID(append(b[1:], "rest"...))
		if !ok || id != tc.id || string(rest) != "rest" {
			t.Errorf("%q read back as %q, %q, %v", tc.id, id, rest, ok)
		}
	}
}

// plain3 holds every field and value Seal writes, and reads back to it;
// what Seal never writes does not read.
func TestPlain3(t *testing.T) {
	ev := &trail.Event{Actor: trail.Actor{Name: "Alice"}, Request: trail.Request{IP: "198.51.100.23"},
		Targets: []trail.Target{{}, {}, {Name: "Bob \"B\" é"}},
		Context: map[string]any{"email": "alice@example.com", "address": map[string]any{"zip": "94105"}, "é": 3.5}}
	var pt []byte
	var err error
	for _, f := range []field{{at: actorName}, {at: actorEmail}, {at: requestIP}, {at: targetName, i: 2},
		{at: contextKey, key: "email"}, {at: contextKey, key: "address"}, {at: contextKey, key: "é"}} {
		if pt, err = appendField(pt, f, ev); err != nil {
			t.Fatal(err)
		}
	}
	vals, ok := values3(pt)
	want := map[string]any{"actor.name": "Alice", "actor.email": "", "request.ip": "198.51.100.23", "targets.2.name": "Bob \"B\" é",
		"context.email": "alice@example.com", "context.address": map[string]any{"zip": "94105"}, "context.é": "3.5"}
	if !ok || len(vals) != len(want) {
		t.Fatalf("read back %v, %v; want %v", vals, ok, want)
	}
	for p, w := range want {
		got := vals[p]
		if m, isMap := w.(map[string]any); isMap {
			if g, _ := got.(map[string]any); g["zip"] != m["zip"] {
				t.Errorf("%s: %v, want %v", p, got, w)
			}
			continue
		}
		if s, isNum := got.(interface{ String() string }); isNum {
			got = s.String() // json.Number
		}
		if got != w {
			t.Errorf("%s: %#v, want %#v", p, got, w)
		}
	}
	for _, bad := range []string{
		"e",                         // no length
		"e\x05abc",                  // shorter than its length
		"e\x80\x00",                 // a length not minimal
		"x\x00",                     // no such field
		"e\x01\xff",                 // not UTF-8
		"e\x00e\x00",                // a path twice
		"t\x01\x00t\x01\x00",        // a target twice
		"c\x01\xffe\x00",            // a key not UTF-8
		"j\x01a\x03\"x\"",           // a string as JSON
		"j\x01a\x03 12",             // JSON after a space
		"j\x01a\x02{x",              // not JSON
		"j\x01a\x00",                // nothing
		"t\x80\x80\x80\x80\x10\x00", // an index too large
		"e\x8f\xff\xff\xff\xff\xff\xff\xff\xff\x01", // a length too large
	} {
		if _, err := parsePlain3([]byte(bad)); err == nil {
			t.Errorf("%q read", bad)
		}
	}
}

// FuzzParseBlob: no string makes the reading of a sealed value fail, and an
// enc4 or enc3 value read is the one spelling of its bytes (an enc3 one
// with the zero nonce).
func FuzzParseBlob(f *testing.F) {
	f.Add("enc4:AAEjRWeJq83vAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("enc4:BWtleS0xAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("enc4:AAEjRWeJq83vAAAAAAAAAAAAAAAAAAAAAA") // no room for a nonce
	f.Add("enc3:AAEjRWeJq83vAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("enc3:BWtleS0xAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("enc2:0123456789abcdef:AAAAAAAAAAAAAAAA")
	f.Add("enc1:0123456789abcdef:AAAAAAAAAAAAAAAA")
	f.Add("enc1:^actor.name")
	f.Add("enc4:")
	f.Add("enc3:")
	f.Fuzz(func(t *testing.T, v string) {
		b, ok := parseBlob(v)
		if !ok || b.version != prefix4 && b.version != prefix3 {
			return
		}
		sealed, err := appendKeyID(nil, b.id)
		if err != nil {
			t.Fatalf("%q read with key id %q, which the compact forms cannot hold: %v", v, b.id, err)
		}
		if len(b.nonce) != nonceSize {
			t.Fatalf("%q read with a nonce of %d bytes", v, len(b.nonce))
		}
		if b.version == prefix4 {
			sealed = append(sealed, b.nonce...)
		} else if !bytes.Equal(b.nonce, zeroNonce) {
			t.Fatalf("%q read with the nonce %x, not enc3's zero", v, b.nonce)
		}
		if again := b.version + b64.EncodeToString(append(sealed, b.ct...)); again != v {
			t.Errorf("%q read, and written back as %q", v, again)
		}
	})
}

// decodeWhole reads a 'j' value in one pass where plain3's reader checked
// it with json.Valid and then decoded it: it must refuse what json.Valid
// refuses, and decode what it accepts as the decoder did.
func TestDecodeWhole(t *testing.T) {
	for _, tc := range []string{
		`12`, `12 `, "12\n", ` 12`, `{"a":[1,2.5,null]}`, `[true,false]`, `-0.5e3`,
		``, ` `, `1 2`, `01`, `{}x`, `[1]]`, `{"a":}`, `tru`, `nul`, `{"a":1}{}`, `[1,]`, "\"\xff\"", `-`, `1.`,
		strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
	} {
		got, ok := decodeWhole([]byte(tc))
		if want := json.Valid([]byte(tc)); ok != want {
			t.Errorf("%.40q: decodeWhole %v, json.Valid %v", tc, ok, want)
		}
		if ok {
			var want any
			if err := newDecoder([]byte(tc)).Decode(&want); err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("%q: decoded %#v, want %#v (%v)", tc, got, want, err)
			}
		}
	}
}

// FuzzDecodeWhole: decodeWhole accepts exactly what json.Valid accepts.
func FuzzDecodeWhole(f *testing.F) {
	for _, seed := range []string{`12`, `{"a":[1,"x"]}`, `1 2`, `01`, `[1]]`, ` `, `{"a":1}{}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, ok := decodeWhole(b); ok != json.Valid(b) {
			t.Errorf("%q: decodeWhole %v, json.Valid %v", b, ok, !ok)
		}
	})
}

// FuzzPlain3: no plaintext makes plain3's reader fail other than by saying
// so, and one it reads is written back byte for byte.
func FuzzPlain3(f *testing.F) {
	for _, seed := range []string{
		"e\x11alice@example.com" + "i\x0d198.51.100.23",
		"n\x05Alice" + "t\x00\x03Bob" + "c\x05email\x01x",
		"j\x07address\x0e{\"zip\":\"9410\"}" + "j\x05phone\x0a4155550100",
		"e\x80\x00",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, pt []byte) {
		entries, err := parsePlain3(pt)
		if err != nil {
			return
		}
		var again []byte
		for _, e := range entries {
			again = appendEntry(again, e)
		}
		if !bytes.Equal(again, pt) {
			t.Errorf("%q read, and written back as %q", pt, again)
		}
		if _, ok := values3(pt); !ok {
			t.Errorf("%q read, but its values not", pt)
		}
	})
}

// An event key is derived from the event's id, so no call sequence may
// seal two plaintexts under one key and nonce: sealing one id again, with
// other data or the same, in another call to Seal, gives another nonce.
func TestSealNonceNotReused(t *testing.T) {
	ctx := context.Background()
	s := NewSealer(memory.NewSubjectKeys(), nil)
	id := trail.NewID(time.Now())
	seen := map[string]string{} // nonce → the plaintext's email
	for _, email := range []string{"alice@example.com", "bob@example.com", "alice@example.com"} {
		ev := &trail.Event{ID: id, Actor: trail.Actor{Type: trail.ActorUser, ID: "u-1", Email: email}}
		if err := s.Seal(ctx, "acme", []*trail.Event{ev}); err != nil {
			t.Fatal(err)
		}
		b, ok := parseBlob(ev.Actor.Email)
		if !ok || b.version != prefix4 {
			t.Fatalf("sealed to %q, want an enc4 blob", ev.Actor.Email)
		}
		if prev, dup := seen[string(b.nonce)]; dup {
			t.Errorf("event %s sealed with %s and then with %s under one key and nonce %x", id, prev, email, b.nonce)
		}
		seen[string(b.nonce)] = email
	}
}
