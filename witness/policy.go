// Package witness has Trail's checkpoints cosigned by witnesses
// (c2sp.org/tlog-witness, c2sp.org/tlog-cosignature): independent
// services that cosign a checkpoint only when it is consistent with every
// checkpoint of the log they cosigned before, so that a log rolled back or
// forked, even by whoever holds its signing key, is refused by them.
//
// A Policy names the witnesses and how many of them must cosign (ParsePolicy
// reads its file). A Witnesser keeps the root log, whose entries are the
// tenants' checkpoints, and at a bounded cadence submits its checkpoints
// to them, verifies and keeps their cosignatures (trail.CosignatureStore)
// and raises an alert when one refuses. A tenant's checkpoint is witnessed
// by its entry's inclusion in a root checkpoint a quorum cosigned:
// Policy.Witnessed builds that chain, and Policy.VerifyTenant is the one
// check of it: the API and trail verify use it.
package witness

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/trailaudit/trail"
)

// Witness is one witness of a Policy: its name (the name of its key, as
// its cosignature lines carry it), its Ed25519 cosignature/v1 key and the
// URL its tlog-witness API is served under (add-checkpoint is URL +
// "/add-checkpoint").
type Witness struct {
	Name string
	VKey string // NAME+HASH+BASE64(0x04 || key), as the witness prints it
	URL  string

	key  ed25519.PublicKey
	hash uint32
}

// Policy is the witnesses a checkpoint is submitted to and how many of
// them must cosign it (Quorum, 1 to len(Witnesses)) for it to count as
// witnessed.
type Policy struct {
	Witnesses []*Witness
	Quorum    int
}

// algCosignatureV1 is the signature type byte of an Ed25519
// cosignature/v1 key (c2sp.org/tlog-cosignature).
const algCosignatureV1 = 0x04

// ParsePolicy reads a witness policy, in the style of C2SP's policy files:
// one statement per line, blank lines and # comments (whole lines, or after
// a statement) skipped:
//
//	witness NAME VKEY URL   a witness: its name, verifier key and URL
//	quorum K                how many of the witnesses must cosign (1 to n)
//
// Each witness is named once and has its own key; quorum comes once. It
// fails (EINVALID, naming the line) on anything else.
func ParsePolicy(text string) (*Policy, error) {
	p := &Policy{}
	quorumLine := 0
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		if c := strings.Index(line, "#"); c >= 0 {
			line = line[:c]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "witness":
			if len(f) != 4 {
				return nil, lineErr(n, "want: witness NAME VKEY URL")
			}
			w, err := parseWitness(f[1], f[2], f[3])
			if err != nil {
				return nil, lineErr(n, "%v", err)
			}
			for _, o := range p.Witnesses {
				if o.Name == w.Name {
					return nil, lineErr(n, "witness %s is named twice", w.Name)
				}
				if o.key.Equal(w.key) {
					return nil, lineErr(n, "witness %s has the key of witness %s", w.Name, o.Name)
				}
			}
			p.Witnesses = append(p.Witnesses, w)
		case "quorum":
			if len(f) != 2 {
				return nil, lineErr(n, "want: quorum K")
			}
			if quorumLine != 0 {
				return nil, lineErr(n, "a second quorum (the first is on line %d)", quorumLine)
			}
			k, err := strconv.Atoi(f[1])
			if err != nil || k < 1 || f[1] != strconv.Itoa(k) {
				return nil, lineErr(n, "quorum %q: want a whole number of witnesses, at least 1", f[1])
			}
			p.Quorum, quorumLine = k, n
		default:
			return nil, lineErr(n, "unknown statement %q: want witness or quorum", trunc(f[0]))
		}
	}
	switch {
	case len(p.Witnesses) == 0:
		return nil, trail.Errorf(trail.EINVALID, "witness policy: no witness")
	case quorumLine == 0:
		return nil, trail.Errorf(trail.EINVALID, "witness policy: no quorum line (quorum K: how many of the %d witnesses must cosign)", len(p.Witnesses))
	case p.Quorum > len(p.Witnesses):
		return nil, lineErr(quorumLine, "quorum %d is more than the %d witnesses named", p.Quorum, len(p.Witnesses))
	}
	return p, nil
}

func lineErr(n int, format string, args ...any) error {
	return trail.Errorf(trail.EINVALID, "witness policy: line %d: %s", n, fmt.Sprintf(format, args...))
}

// trunc keeps an echo of input short.
func trunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// parseWitness reads one witness statement's fields.
func parseWitness(name, vkey, rawURL string) (*Witness, error) {
	if !validName(name) {
		return nil, fmt.Errorf("witness name %q: want a key name (no spaces or '+')", trunc(name))
	}
	key, hash, err := parseVKey(vkey)
	if err != nil {
		return nil, fmt.Errorf("witness %s: verifier key: %v", name, err)
	}
	if kn, _, _ := strings.Cut(vkey, "+"); kn != name {
		return nil, fmt.Errorf("witness %s: its verifier key is named %q: the name is what its cosignatures carry", name, trunc(kn))
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("witness %s: URL %q: want http:// or https:// and a host, no user, query or fragment", name, trunc(rawURL))
	}
	return &Witness{Name: name, VKey: vkey, URL: strings.TrimSuffix(u.String(), "/"), key: key, hash: hash}, nil
}

// validName applies signed-note's rules for key names.
func validName(name string) bool {
	return name != "" && utf8.ValidString(name) && strings.IndexFunc(name, unicode.IsSpace) < 0 && !strings.Contains(name, "+")
}

// parseVKey reads an Ed25519 cosignature/v1 verifier key: NAME+HASH+BASE64,
// HASH being the first four bytes of SHA-256(NAME || "\n" || 0x04 || key)
// in hex.
func parseVKey(vkey string) (ed25519.PublicKey, uint32, error) {
	f := strings.SplitN(vkey, "+", 3)
	if len(f) != 3 || !validName(f[0]) || len(f[1]) != 8 {
		return nil, 0, fmt.Errorf("want NAME+HASH+KEY")
	}
	h, err := strconv.ParseUint(f[1], 16, 32)
	if err != nil {
		return nil, 0, fmt.Errorf("want NAME+HASH+KEY (HASH: 8 hex digits)")
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(f[2])
	if err != nil || len(raw) != 1+ed25519.PublicKeySize {
		return nil, 0, fmt.Errorf("want NAME+HASH+KEY (KEY: base64 of 33 bytes)")
	}
	if raw[0] != algCosignatureV1 {
		return nil, 0, fmt.Errorf("key type 0x%02x: want 0x04, an Ed25519 cosignature/v1 key (c2sp.org/tlog-cosignature)", raw[0])
	}
	if keyHash(f[0], raw) != uint32(h) {
		return nil, 0, fmt.Errorf("its hash %s is not that of its name and key", f[1])
	}
	return ed25519.PublicKey(raw[1:]), uint32(h), nil
}

func keyHash(name string, typedKey []byte) uint32 {
	h := sha256.New()
	h.Write([]byte(name + "\n"))
	h.Write(typedKey)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// Names returns the witnesses' names, in the policy's order.
func (p *Policy) Names() []string {
	out := make([]string, len(p.Witnesses))
	for i, w := range p.Witnesses {
		out[i] = w.Name
	}
	return out
}

// String describes p for messages: "2 of 3 (w1, w2, w3)".
func (p *Policy) String() string {
	return fmt.Sprintf("%d of %d (%s)", p.Quorum, len(p.Witnesses), strings.Join(p.Names(), ", "))
}

// cosignature reads a signature line of w's ("— NAME BASE64\n", with or
// without the newline) over the checkpoint text (its note text: the lines
// before the blank line, each ending in a newline) and returns the time
// it was signed. ok is false when the line is not w's (another name or key
// hash); err is set when it is w's and does not verify.
func (w *Witness) cosignature(text []byte, line string) (at time.Time, ok bool, err error) {
	line = strings.TrimSuffix(line, "\n")
	rest, found := strings.CutPrefix(line, "— "+w.Name+" ")
	if !found {
		return time.Time{}, false, nil
	}
	raw, derr := base64.StdEncoding.DecodeString(rest)
	if derr != nil || len(raw) < 4 || binary.BigEndian.Uint32(raw) != w.hash {
		return time.Time{}, false, nil
	}
	raw = raw[4:]
	if len(raw) != 8+ed25519.SignatureSize {
		return time.Time{}, true, fmt.Errorf("witness %s: a cosignature of %d bytes, want %d (timestamp and Ed25519 signature)", w.Name, len(raw), 8+ed25519.SignatureSize)
	}
	ts := binary.BigEndian.Uint64(raw)
	msg := fmt.Appendf(nil, "cosignature/v1\ntime %d\n%s", ts, text)
	if ts > 1<<62 || !ed25519.Verify(w.key, msg, raw[8:]) {
		return time.Time{}, true, fmt.Errorf("witness %s: its cosignature does not verify under its key", w.Name)
	}
	return time.Unix(int64(ts), 0).UTC(), true, nil
}

// noteText splits a signed note into its text (through the newline before
// the blank line) and its signature lines.
func noteText(note []byte) (text []byte, sigs []string, err error) {
	i := bytes.LastIndex(note, []byte("\n\n"))
	if i < 0 || !bytes.HasSuffix(note, []byte("\n")) {
		return nil, nil, trail.Errorf(trail.EINVALID, "witness: not a signed note")
	}
	for _, l := range strings.Split(string(note[i+2:len(note)-1]), "\n") {
		sigs = append(sigs, l+"\n")
	}
	return note[:i+1], sigs, nil
}
