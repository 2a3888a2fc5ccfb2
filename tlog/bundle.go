package tlog

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/trailaudit/trail"
)

// A bundle is an offline, verifiable export of some of a tenant's events:
// newline-delimited JSON whose first line is
//
//	{"format":"trail-bundle/v1","tenant":T,"checkpoint":"<signed note>"}
//
// and each further line one event, in increasing seq order,
//
//	{"seq":N,"event":<stored bytes>,"proof":["<base64>",...]}
//
// where event holds the stored canonical bytes verbatim and proof is the
// inclusion proof of leaf N-1 in the checkpoint's tree. Anyone holding the
// verifier key checks a bundle with VerifyBundle, or with any RFC 6962 and
// C2SP signed-note implementation, and needs nothing else.

// BundleFormat is the format member of a bundle's first line. Readers
// refuse any other, so that the format can change without old readers
// misreading new bundles.
const BundleFormat = "trail-bundle/v1"

// MaxBundleLine bounds the length of a bundle line VerifyBundle reads, so
// that a hostile bundle cannot make it buffer without limit.
const MaxBundleLine = 16 << 20

// bundleHeader is a bundle's first line.
type bundleHeader struct {
	Format     string `json:"format"`
	Tenant     string `json:"tenant"`
	Checkpoint string `json:"checkpoint"`
}

// bundleEvent is a bundle's event line.
type bundleEvent struct {
	Seq   uint64          `json:"seq"`
	Event json.RawMessage `json:"event"`
	Proof [][]byte        `json:"proof"`
}

// appendLine appends e as a bundle line. It writes the line by hand, so
// that the event's bytes come out verbatim (encoding/json would re-encode
// them, and escape HTML by default).
func (e *bundleEvent) appendLine(buf []byte) []byte {
	buf = append(buf, `{"seq":`...)
	buf = strconv.AppendUint(buf, e.Seq, 10)
	buf = append(buf, `,"event":`...)
	buf = append(buf, e.Event...)
	buf = append(buf, `,"proof":[`...)
	for i, p := range e.Proof {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, '"')
		buf = base64.StdEncoding.AppendEncode(buf, p)
		buf = append(buf, '"')
	}
	return append(buf, "]}\n"...)
}

// BundleWriter writes a bundle of a tenant's events proven against one
// checkpoint. Call Add for each event, in increasing seq order, then Flush.
type BundleWriter struct {
	w      *bufio.Writer
	l      trail.Log
	tenant string
	cp     *Checkpoint
	prev   uint64 // seq of the last event added
	line   []byte // reused line buffer
}

// NewBundleWriter starts a bundle of tenant's events on w, proven against
// checkpoint (opened from tenant's log, typically its latest), and writes
// its first line. The proofs are read from l.
func NewBundleWriter(w io.Writer, l trail.Log, tenant string, checkpoint *Checkpoint) (*BundleWriter, error) {
	if checkpoint == nil || !strings.HasSuffix(checkpoint.Origin, "/"+tenant) {
		return nil, trail.Errorf(trail.EINVALID, "tlog: bundle: want a checkpoint of tenant %s", tenant)
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(bundleHeader{Format: BundleFormat, Tenant: tenant, Checkpoint: string(checkpoint.Note)}); err != nil {
		return nil, fmt.Errorf("tlog: bundle: %w", err)
	}
	return &BundleWriter{w: bw, l: l, tenant: tenant, cp: checkpoint}, nil
}

// Add writes leaf (a row of the tenant's log, as ScanLeaves gives it) with
// its inclusion proof, which it reads from the log. It keeps nothing of
// leaf. It refuses (EINVALID) a seq of 0, above the checkpoint's size, or
// not above the previous one's, and a body that is not one line of JSON.
func (b *BundleWriter) Add(ctx context.Context, leaf trail.Leaf) error {
	switch {
	case leaf.Seq == 0 || leaf.Seq > b.cp.Size:
		return trail.Errorf(trail.EINVALID, "tlog: bundle: seq %d is outside the checkpoint's tree of size %d", leaf.Seq, b.cp.Size)
	case leaf.Seq <= b.prev:
		return trail.Errorf(trail.EINVALID, "tlog: bundle: seq %d after seq %d: add events in increasing seq order", leaf.Seq, b.prev)
	case !json.Valid(leaf.Body) || bytes.IndexByte(leaf.Body, '\n') >= 0:
		return trail.Errorf(trail.EINVALID, "tlog: bundle: the stored event of seq %d is not one line of JSON", leaf.Seq)
	}
	p, err := InclusionProof(ctx, b.l, b.tenant, leaf.Seq-1, b.cp.Size)
	if err != nil {
		return fmt.Errorf("tlog: bundle: seq %d: %w", leaf.Seq, err)
	}
	e := bundleEvent{Seq: leaf.Seq, Event: leaf.Body, Proof: p}
	b.line = e.appendLine(b.line[:0])
	if _, err := b.w.Write(b.line); err != nil {
		return fmt.Errorf("tlog: bundle: %w", err)
	}
	b.prev = leaf.Seq
	return nil
}

// Flush writes out what Add buffered.
func (b *BundleWriter) Flush() error {
	if err := b.w.Flush(); err != nil {
		return fmt.Errorf("tlog: bundle: %w", err)
	}
	return nil
}

// BundleReport is the result of VerifyBundle: the checkpoint the bundle
// is proven against, how many events it holds, and the damage found.
type BundleReport struct {
	Tenant string   `json:"tenant"`
	Size   uint64   `json:"size"`
	Root   []byte   `json:"root"`
	Events int      `json:"events"`
	Damage []Damage `json:"damage,omitempty"` // sorted by Seq; at most MaxDamage
}

// OK reports whether no damage was found.
func (r *BundleReport) OK() bool { return len(r.Damage) == 0 }

// VerifyBundle checks a bundle read from r with v. It returns an error
// (EINVALID, naming the line) only for a bundle it cannot read: a line that
// is not the JSON it should be or longer than MaxBundleLine, and for a
// checkpoint no key v trusts signed: it cannot be checked, and the error
// holds an *UntrustedError. Damage goes in the report: a checkpoint whose
// signature by v's key does not verify for the bundle's tenant is
// BadSignature (the events are then checked against its unverified root);
// per event line, a seq given twice (on consecutive lines) or outside the
// checkpoint's tree is Extra, a seq below the line before's is Reordered,
// an inclusion proof that does not verify is Changed, and an event that
// claims another seq than its line's is Reordered.
func VerifyBundle(r io.Reader, v *Verifier) (*BundleReport, error) {
	if v == nil {
		return nil, trail.Errorf(trail.EINVALID, "tlog: bundle: no verifier key")
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxBundleLine)
	n := 1
	if !sc.Scan() {
		return nil, scanError(sc, n)
	}
	var h bundleHeader
	if err := decodeLine(sc.Bytes(), &h); err != nil {
		return nil, lineError(n, err)
	}
	if h.Format != BundleFormat {
		return nil, lineError(n, fmt.Errorf("format %q, want %q", h.Format, BundleFormat))
	}
	var d damages
	cp, err := v.Open(h.Tenant, []byte(h.Checkpoint))
	if errors.As(err, new(*UntrustedError)) {
		return nil, trail.Errorf(trail.EINVALID, "tlog: bundle of tenant %s: %w", h.Tenant, err)
	}
	if err != nil {
		if cp, err = ParseUnverified([]byte(h.Checkpoint)); err != nil {
			return nil, lineError(n, err)
		}
		d.add(BadSignature, cp.Size, "the bundle's checkpoint (size %d) is not signed by %s for tenant %s", cp.Size, v.Name(), h.Tenant)
	}
	rep := &BundleReport{Tenant: h.Tenant, Size: cp.Size, Root: cp.Root}
	var prev uint64
	for sc.Scan() {
		n++
		var e bundleEvent
		if err := decodeLine(sc.Bytes(), &e); err != nil {
			return nil, lineError(n, err)
		}
		if e.Seq == 0 || e.Event == nil || e.Proof == nil {
			return nil, lineError(n, errors.New("want an event line with a seq above 0, an event and a proof"))
		}
		rep.Events++
		switch claim, ok := claimedSeq(e.Event); {
		case e.Seq == prev:
			d.add(Extra, e.Seq, "line %d repeats seq %d", n, e.Seq)
		case e.Seq < prev:
			d.add(Reordered, e.Seq, "line %d holds seq %d after seq %d", n, e.Seq, prev)
		case e.Seq > cp.Size:
			d.add(Extra, e.Seq, "line %d: seq %d is outside the checkpoint's tree of size %d", n, e.Seq, cp.Size)
		case VerifyInclusion(LeafHash(e.Event), e.Seq-1, cp.Size, e.Proof, cp.Root) != nil:
			d.add(Changed, e.Seq, "line %d: the event's inclusion proof does not verify", n)
		case !ok:
			d.add(Reordered, e.Seq, "line %d holds an event with no top-level seq under seq %d", n, e.Seq)
		case claim != e.Seq:
			d.add(Reordered, e.Seq, "line %d holds the event of seq %d under seq %d", n, claim, e.Seq)
		}
		prev = max(prev, e.Seq)
	}
	if err := sc.Err(); err != nil {
		return nil, scanError(sc, n+1)
	}
	rep.Damage = d.sorted()
	return rep, nil
}

// decodeLine decodes one bundle line into v, refusing unknown members and
// anything after the value.
func decodeLine(line []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if len(bytes.TrimSpace(line[dec.InputOffset():])) > 0 {
		return errors.New("data after the JSON value")
	}
	return nil
}

// lineError is the error for an unreadable line n of a bundle.
func lineError(n int, err error) error {
	return trail.Errorf(trail.EINVALID, "tlog: bundle: line %d: %w", n, err)
}

// scanError is the error for a scan of line n that stopped: too long, a
// read error, or (for line 1) an empty bundle.
func scanError(sc *bufio.Scanner, n int) error {
	switch err := sc.Err(); {
	case errors.Is(err, bufio.ErrTooLong):
		return lineError(n, fmt.Errorf("longer than %d bytes", MaxBundleLine))
	case err != nil:
		return fmt.Errorf("tlog: bundle: line %d: %w", n, err)
	default:
		return lineError(n, errors.New("empty bundle: no header line"))
	}
}
