package witness

import (
	"strings"
	"testing"

	"github.com/trailaudit/trail"
)

// Two cosignature/v1 verifier keys (NAME+HASH+BASE64(0x04 || key)), as litewitness prints them.
const (
	vkey1 = "w1.trail.test+23d9ac8c+BM7MFQfcHd1ylZUcKQiI8JWtuQRNG3PWlubfBl1oO9T8"
	vkey2 = "w2.trail.test+9a64b264+BGt5xX5qCVI5KCwEgY6WES8/A6QAG6l6VkwjhSo/HqX8"
)

func TestParsePolicy(t *testing.T) {
	w1 := "witness w1.trail.test " + vkey1 + " https://w1.example.com/witness/"
	w2 := "witness w2.trail.test " + vkey2 + " http://127.0.0.1:7380"
	tests := []struct {
		name, text string
		err        string // "" for a valid policy
		quorum     int
		urls       []string
	}{
		{"TwoOfTwo", "# witnesses\n" + w1 + "\n" + w2 + "  # local\n\nquorum 2\n", "", 2, []string{"https://w1.example.com/witness", "http://127.0.0.1:7380"}},
		{"OneOfTwo", w1 + "\n" + w2 + "\nquorum 1", "", 1, nil},
		{"NoWitness", "quorum 1\n", "no witness", 0, nil},
		{"NoQuorum", w1 + "\n", "no quorum line", 0, nil},
		{"QuorumTooLarge", w1 + "\nquorum 2\n", "line 2: quorum 2 is more than the 1 witnesses", 0, nil},
		{"QuorumZero", w1 + "\nquorum 0\n", "line 2: quorum \"0\"", 0, nil},
		{"QuorumNotANumber", w1 + "\nquorum +1\n", "line 2: quorum \"+1\"", 0, nil},
		{"TwoQuorums", w1 + "\nquorum 1\nquorum 1\n", "line 3: a second quorum (the first is on line 2)", 0, nil},
		{"UnknownStatement", w1 + "\nlog example.com\nquorum 1\n", "line 2: unknown statement \"log\"", 0, nil},
		{"MissingURL", "witness w1.trail.test " + vkey1 + "\nquorum 1\n", "line 1: want: witness NAME VKEY URL", 0, nil},
		{"NameNotKeyName", "witness other " + vkey1 + " https://w1.example.com\nquorum 1\n", "line 1: witness other: its verifier key is named \"w1.trail.test\"", 0, nil},
		{"BadHash", "witness w1.trail.test " + strings.Replace(vkey1, "23d9ac8c", "23d9ac8d", 1) + " https://w1.example.com\nquorum 1\n", "line 1: witness w1.trail.test: verifier key: its hash", 0, nil},
		{"NoteKeyNotCosignature", "witness trail.test trail.test+fa5f69eb+ATCDyE41Jp1ItjRsbGsBa6vV0Cc/fCj4dWkdeXZ3mQrg https://w.example.com\nquorum 1\n", "key type 0x01: want 0x04", 0, nil},
		{"BadURL", "witness w1.trail.test " + vkey1 + " ftp://w1.example.com\nquorum 1\n", "line 1: witness w1.trail.test: URL \"ftp://w1.example.com\"", 0, nil},
		{"SameNameTwice", w1 + "\n" + w1 + "\nquorum 1\n", "line 2: witness w1.trail.test is named twice", 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePolicy(tc.text)
			if tc.err != "" {
				if trail.ErrorCode(err) != trail.EINVALID || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want EINVALID containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Quorum != tc.quorum || len(p.Witnesses) != 2 {
				t.Fatalf("policy %s, want quorum %d of 2", p, tc.quorum)
			}
			for i, u := range tc.urls {
				if p.Witnesses[i].URL != u {
					t.Errorf("witness %d: URL %s, want %s", i, p.Witnesses[i].URL, u)
				}
			}
		})
	}
}

// FuzzParsePolicy holds ParsePolicy to a policy that makes sense or an
// EINVALID error, and to the same policy from its own statements.
func FuzzParsePolicy(f *testing.F) {
	f.Add("witness w1.trail.test " + vkey1 + " https://w1.example.com\nwitness w2.trail.test " + vkey2 + " http://127.0.0.1:1\nquorum 2\n")
	f.Add("quorum 1\n# c\nwitness w1.trail.test " + vkey1 + " https://w1.example.com # c\n")
	f.Add("witness \x00 a b\nquorum 99999999999999999999\n")
	f.Fuzz(func(t *testing.T, text string) {
		p, err := ParsePolicy(text)
		if err != nil {
			if trail.ErrorCode(err) != trail.EINVALID {
				t.Fatalf("err %v is not EINVALID", err)
			}
			return
		}
		if p.Quorum < 1 || p.Quorum > len(p.Witnesses) {
			t.Fatalf("quorum %d of %d witnesses", p.Quorum, len(p.Witnesses))
		}
		var b strings.Builder
		names := map[string]bool{}
		for _, w := range p.Witnesses {
			if names[w.Name] || len(w.key) != 32 {
				t.Fatalf("witness %s twice, or its key is not read", w.Name)
			}
			names[w.Name] = true
			b.WriteString("witness " + w.Name + " " + w.VKey + " " + w.URL + "\n")
		}
		again, err := ParsePolicy(b.String() + "quorum " + strings.TrimSpace(strings.Fields(p.String())[0]) + "\n")
		if err != nil || again.String() != p.String() {
			t.Fatalf("the policy's own statements read as %v, %v; want %s", again, err, p)
		}
	})
}
