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
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

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
//
// A bundle of a window of recorded_at (WriteWindow) proves that it leaves
// no event of the window out. Its header carries
//
//	"window":{"since":T1,"until":T2}
//
// (RFC 3339; since left out: from the log's start), and its event lines are
// every seq from the event just before the window to the event just after
// it, those two marked "boundary":"before" and "boundary":"after". As
// recorded_at never decreases along seq (a store's contract, and checked
// here), an event recorded before T1 at seq A and one recorded at or after
// T2 at seq B, with A+1 .. B-1 all recorded in [T1, T2), leave no room for
// another event of the window. With no event before the window its first
// line is seq 1; with none after it among the checkpoint's, its last line
// is the checkpoint's size, and the window is complete among the events
// the checkpoint covers.
//
// An event line whose event holds sealed personal data (package erasure)
// may carry, for the subjects not erased,
//
//	"openings":{"KEYID":"<base64>",...},"opened":<the event in clear>
//
// the event's own keys, which open its sealed bytes and no other event's,
// and the event as they open it, erased values reading "[erased]". A
// verifier given an OpenFunc opens the leaf's bytes with the openings and
// holds opened to what they open to: the cleartext shown is then what was
// recorded.

// BundleFormat is the format member of a bundle's first line. Readers
// refuse any other, so that the format can change without old readers
// misreading new bundles.
const BundleFormat = "trail-bundle/v1"

// MaxBundleLine bounds the length of a bundle line VerifyBundle reads, so
// that a hostile bundle cannot make it buffer without limit.
const MaxBundleLine = 16 << 20

// bundleHeader is a bundle's first line.
type bundleHeader struct {
	Format     string        `json:"format"`
	Tenant     string        `json:"tenant"`
	Checkpoint string        `json:"checkpoint"`
	Window     *bundleWindow `json:"window,omitempty"`
}

// bundleWindow is the window of recorded_at a bundle holds all of.
type bundleWindow struct {
	Since time.Time `json:"since,omitzero"` // zero: from the log's start
	Until time.Time `json:"until"`
}

// The boundary lines of a window bundle.
const (
	boundaryBefore = "before"
	boundaryAfter  = "after"
)

// bundleEvent is a bundle's event line.
type bundleEvent struct {
	Seq      uint64            `json:"seq"`
	Event    json.RawMessage   `json:"event"`
	Proof    [][]byte          `json:"proof"`
	Boundary string            `json:"boundary,omitempty"` // in a window bundle: before or after
	Openings map[string][]byte `json:"openings,omitempty"` // the event's keys, by key id
	Opened   json.RawMessage   `json:"opened,omitempty"`   // the event as they open it
}

// BundleOpener gives a bundle's event lines their openings (erasure.Sealer
// implements it).
type BundleOpener interface {
	// Opening returns the openings of a stored event (its own keys, by key
	// id) and the event as they open it (canonical JSON); opened is nil
	// when the event holds nothing sealed.
	Opening(ctx context.Context, tenant string, body []byte) (openings map[string][]byte, opened []byte, err error)
}

// OpenFunc opens a stored event with openings as a verifier does, holding
// nothing else: the event as they open it (canonical JSON), nil when it
// holds nothing sealed (erasure.OpenLeaf). For an event holding values no
// opening can open (sealed before per-event keys), it returns the event as
// far as it opens, those values still sealed, with an error wrapping
// ErrUnopenable.
type OpenFunc func(tenant string, body []byte, openings map[string][]byte) ([]byte, error)

// ErrUnopenable is wrapped by an OpenFunc's error for an event holding
// values that no opening can open: sealed before Trail sealed under
// per-event keys, under the data subject's key itself, which opens every
// one of the subject's events and so is never handed out in a bundle. A
// verifier says so (BundleReport.Unopenable); it is no damage.
var ErrUnopenable = errors.New("values sealed before per-event keys: no opening can be handed out for them")

// appendLine appends e as a bundle line. It writes the line by hand, so
// that the event's bytes come out verbatim (encoding/json would re-encode
// them, and escape HTML by default).
func (e *bundleEvent) appendLine(buf []byte) []byte {
	buf = append(buf, `{"seq":`...)
	buf = strconv.AppendUint(buf, e.Seq, 10)
	if e.Boundary != "" {
		buf = append(buf, `,"boundary":"`...)
		buf = append(buf, e.Boundary...)
		buf = append(buf, '"')
	}
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
	buf = append(buf, ']')
	if e.Opened != nil {
		buf = append(buf, `,"openings":{`...)
		for i, id := range slices.Sorted(maps.Keys(e.Openings)) {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = strconv.AppendQuote(buf, id)
			buf = append(buf, `:"`...)
			buf = base64.StdEncoding.AppendEncode(buf, e.Openings[id])
			buf = append(buf, '"')
		}
		buf = append(buf, `},"opened":`...)
		buf = append(buf, e.Opened...)
	}
	return append(buf, "}\n"...)
}

// BundleWriter writes a bundle of a tenant's events proven against one
// checkpoint. Call Add for each event, in increasing seq order, then Flush.
type BundleWriter struct {
	w      *bufio.Writer
	l      trail.Log
	opener BundleOpener // nil: no openings
	tenant string
	cp     *Checkpoint
	prev   uint64 // seq of the last event added
	line   []byte // reused line buffer
}

// NewBundleWriter starts a bundle of tenant's events on w, proven against
// checkpoint (opened from tenant's log, typically its latest), and writes
// its first line. The proofs are read from l.
func NewBundleWriter(w io.Writer, l trail.Log, tenant string, checkpoint *Checkpoint) (*BundleWriter, error) {
	return newBundleWriter(w, l, tenant, checkpoint, nil, nil)
}

func newBundleWriter(w io.Writer, l trail.Log, tenant string, checkpoint *Checkpoint, window *bundleWindow, opener BundleOpener) (*BundleWriter, error) {
	if checkpoint == nil || !strings.HasSuffix(checkpoint.Origin, "/"+tenant) {
		return nil, trail.Errorf(trail.EINVALID, "tlog: bundle: want a checkpoint of tenant %s", tenant)
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(bundleHeader{Format: BundleFormat, Tenant: tenant, Checkpoint: string(checkpoint.Note), Window: window}); err != nil {
		return nil, fmt.Errorf("tlog: bundle: %w", err)
	}
	return &BundleWriter{w: bw, l: l, opener: opener, tenant: tenant, cp: checkpoint}, nil
}

// Add writes leaf (a row of the tenant's log, as ScanLeaves gives it) with
// its inclusion proof, which it reads from the log. It keeps nothing of
// leaf. It refuses (EINVALID) a seq of 0, above the checkpoint's size, or
// not above the previous one's, and a body that is not one line of JSON.
func (b *BundleWriter) Add(ctx context.Context, leaf trail.Leaf) error {
	return b.add(ctx, leaf, "")
}

func (b *BundleWriter) add(ctx context.Context, leaf trail.Leaf, boundary string) error {
	switch {
	case leaf.Seq == 0 || leaf.Seq > b.cp.Size:
		return trail.Errorf(trail.EINVALID, "tlog: bundle: seq %d is outside the checkpoint's tree of size %d", leaf.Seq, b.cp.Size)
	case leaf.Seq <= b.prev:
		return trail.Errorf(trail.EINVALID, "tlog: bundle: seq %d after seq %d: add events in increasing seq order", leaf.Seq, b.prev)
	case len(leaf.Body) == 0:
		return trail.Errorf(trail.EINVALID, "tlog: bundle: the event of seq %d was pruned by retention: a bundle cannot show it", leaf.Seq)
	case !json.Valid(leaf.Body) || bytes.IndexByte(leaf.Body, '\n') >= 0:
		return trail.Errorf(trail.EINVALID, "tlog: bundle: the stored event of seq %d is not one line of JSON", leaf.Seq)
	}
	p, err := InclusionProof(ctx, b.l, b.tenant, leaf.Seq-1, b.cp.Size)
	if err != nil {
		return fmt.Errorf("tlog: bundle: seq %d: %w", leaf.Seq, err)
	}
	e := bundleEvent{Seq: leaf.Seq, Event: leaf.Body, Proof: p, Boundary: boundary}
	if b.opener != nil {
		if e.Openings, e.Opened, err = b.opener.Opening(ctx, b.tenant, leaf.Body); err != nil {
			return fmt.Errorf("tlog: bundle: seq %d: %w", leaf.Seq, err)
		}
		if e.Opened != nil && (!json.Valid(e.Opened) || bytes.IndexByte(e.Opened, '\n') >= 0) {
			return trail.Errorf(trail.EINTERNAL, "tlog: bundle: the opened event of seq %d is not one line of JSON", leaf.Seq)
		}
	}
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

// WriteWindow writes to w a bundle of every event of tenant's log recorded
// in [since, until) (since zero: from the log's start) among those
// checkpoint covers, with the proof that none is left out: the events just
// before and just after the window, and every seq between them (see the
// format above). It finds the window's seqs from the recorded_at the store
// keeps (Log.ScanIndex, a binary search: recorded_at never decreases along
// seq); VerifyBundle checks them against the events' bytes. It returns the
// number of events in the window. It refuses (EINVALID) an until not after
// since, and a window or boundary holding an event retention pruned.
func WriteWindow(ctx context.Context, w io.Writer, l trail.Log, tenant string, checkpoint *Checkpoint, since, until time.Time) (int, error) {
	return writeWindow(ctx, w, l, tenant, checkpoint, since, until, nil)
}

func writeWindow(ctx context.Context, w io.Writer, l trail.Log, tenant string, checkpoint *Checkpoint, since, until time.Time, opener BundleOpener) (int, error) {
	if until.IsZero() || !until.After(since) {
		return 0, trail.Invalid("bad window", trail.FieldError{Path: "until", Message: "want a time after since"})
	}
	bw, err := newBundleWriter(w, l, tenant, checkpoint, &bundleWindow{Since: since.UTC(), Until: until.UTC()}, opener)
	if err != nil {
		return 0, err
	}
	size := checkpoint.Size
	first := uint64(1) // the first seq of the window
	if !since.IsZero() {
		if first, err = firstRecordedAt(ctx, l, tenant, size, since); err != nil {
			return 0, err
		}
	}
	end, err := firstRecordedAt(ctx, l, tenant, size, until) // the seq after the window's last
	if err != nil {
		return 0, err
	}
	if end < first {
		return 0, trail.Errorf(trail.EINTERNAL, "tlog: bundle: the stored recorded_at decreases between seqs %d and %d (run trail verify)", end, first)
	}
	err = l.ScanLeaves(ctx, tenant, max(first-1, 1), min(end, size)+1, func(leaf trail.Leaf) error {
		boundary := ""
		switch leaf.Seq {
		case first - 1:
			boundary = boundaryBefore
		case end:
			boundary = boundaryAfter
		}
		return bw.add(ctx, leaf, boundary)
	})
	if err == nil && size > 0 && bw.prev != min(end, size) {
		err = trail.Errorf(trail.ENOTFOUND, "tlog: bundle: the log holds rows up to seq %d of the window's %d (run trail verify)", bw.prev, min(end, size))
	}
	if err != nil {
		return 0, fmt.Errorf("tlog: bundle: %w", err)
	}
	return int(end - first), bw.Flush()
}

// WriteBundle writes to w the bundle of tenant q.Tenant's events that q
// selects among those checkpoint covers (paging aside): a window bundle
// (WriteWindow) when q filters by nothing but recorded_at
// (trail.Query.WindowOnly), which then must have RecordedBefore (the log as
// it stands: callers set it to now); else a selection of the events q
// matches, which proves each event it holds but not that none is left
// out. With opener, each event line of an event holding sealed personal
// data carries its openings. It returns the number of events written and
// whether the bundle is a window.
func WriteBundle(ctx context.Context, w io.Writer, s trail.Store, checkpoint *Checkpoint, q trail.Query, opener BundleOpener) (n int, window bool, err error) {
	if q.WindowOnly() {
		n, err := writeWindow(ctx, w, s, q.Tenant, checkpoint, q.RecordedAfter, q.RecordedBefore, opener)
		return n, true, err
	}
	bw, err := newBundleWriter(w, s, q.Tenant, checkpoint, nil, opener)
	if err != nil {
		return 0, false, err
	}
	q.Limit, q.Descending, q.Cursor = trail.MaxPageSize, false, ""
	for {
		page, err := s.Query(ctx, q)
		if err != nil {
			return n, false, fmt.Errorf("tlog: bundle: %w", err)
		}
		for _, ev := range page.Events {
			if ev.Seq > checkpoint.Size {
				continue // appended after the checkpoint: not provable against it
			}
			found := false
			err := s.ScanLeaves(ctx, q.Tenant, ev.Seq, ev.Seq+1, func(l trail.Leaf) error {
				found = true
				return bw.Add(ctx, l)
			})
			if err == nil && !found {
				err = trail.Errorf(trail.ENOTFOUND, "tlog: bundle: seq %d is missing from the log (run trail verify)", ev.Seq)
			}
			if err != nil {
				return n, false, err
			}
			n++
		}
		if page.Next == "" {
			return n, false, bw.Flush()
		}
		q.Cursor = page.Next
	}
}

// firstRecordedAt returns the first seq of tenant's log up to size whose
// recorded_at is at t or after (size+1 when none is).
func firstRecordedAt(ctx context.Context, l trail.Log, tenant string, size uint64, t time.Time) (uint64, error) {
	lo, hi := uint64(1), size+1
	for lo < hi {
		mid := lo + (hi-lo)/2
		var at time.Time
		found := false
		err := l.ScanIndex(ctx, tenant, mid, mid+1, func(x trail.IndexRow) error {
			at, found = x.Index.RecordedAt, x.Seq == mid && !x.NoEvent
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("tlog: bundle: %w", err)
		}
		if !found {
			return 0, trail.Errorf(trail.ENOTFOUND, "tlog: bundle: no index values at seq %d (run trail verify)", mid)
		}
		if at.Before(t) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo, nil
}

// BundleReport is the result of VerifyBundle: the checkpoint the bundle
// is proven against, how many events it holds, and the damage found.
type BundleReport struct {
	Tenant string `json:"tenant"`
	Size   uint64 `json:"size"`
	Root   []byte `json:"root"`
	Events int    `json:"events"` // event lines, boundaries included
	// Opened counts the event lines whose event in clear was checked: what
	// their openings open their leaves' sealed bytes to (VerifyBundleOpen).
	Opened int `json:"opened,omitempty"`
	// Unopenable lists (up to MaxDamage) the seqs of the event lines
	// whose values sealed before per-event keys cannot be opened from the
	// bundle (ErrUnopenable): shown sealed, as the leaf holds them; what
	// else they hold in clear was checked. Unopened counts them all.
	Unopenable []uint64      `json:"unopenable,omitempty"`
	Unopened   int           `json:"unopened,omitempty"`
	Window     *BundleWindow `json:"window,omitempty"` // nil: a selection of events, not a complete window
	Damage     []Damage      `json:"damage,omitempty"` // sorted by Seq; at most MaxDamage
}

// BundleWindow is what VerifyBundle found of a window bundle.
type BundleWindow struct {
	Since time.Time `json:"since,omitzero"` // zero: from the log's start
	Until time.Time `json:"until"`
	// First and Last are the seqs of the window's events (Last = First-1
	// when it holds none).
	First uint64 `json:"first"`
	Last  uint64 `json:"last"`
	// Complete reports that the bundle has no damage: every event of the
	// checkpoint's tree recorded in [Since, Until) is in it.
	Complete bool `json:"complete"`
}

// OK reports whether no damage was found.
func (r *BundleReport) OK() bool { return len(r.Damage) == 0 }

// windowCheck follows the event lines of a window bundle: they must be
// every seq from the event before the window (or seq 1) to the event after
// it (or the checkpoint's size), recorded_at never decreasing, the window's
// events inside it and the boundaries just outside.
type windowCheck struct {
	w        *BundleWindow
	size     uint64
	next     uint64    // the seq the next line must hold
	prevAt   time.Time // recorded_at of the line before
	lines    int
	after    bool // the after boundary was read
	inWindow bool // a line of the window was read
}

func newWindowCheck(w *bundleWindow, size uint64) *windowCheck {
	return &windowCheck{w: &BundleWindow{Since: w.Since, Until: w.Until, First: 1}, size: size, next: 1}
}

// line checks event line n.
func (c *windowCheck) line(d *damages, n int, e *bundleEvent) {
	c.lines++
	at, err := recordedAt(e.Event)
	if err != nil {
		d.add(Changed, e.Seq, "line %d: the event's recorded_at cannot be read: %v", n, err)
	}
	if at.Before(c.prevAt) {
		d.add(Reordered, e.Seq, "line %d: recorded_at %s is before the line before's %s: recorded_at never decreases along seq", n, stamp(at), stamp(c.prevAt))
	}
	c.prevAt = at
	if c.after {
		d.add(Extra, e.Seq, "line %d comes after the event after the window", n)
		return
	}
	switch e.Boundary {
	case boundaryBefore:
		switch {
		case c.lines > 1:
			d.add(Reordered, e.Seq, "line %d: the event before the window is not the first event line", n)
		case c.w.Since.IsZero():
			d.add(Extra, e.Seq, "line %d: an event before a window that starts with the log", n)
		case !at.Before(c.w.Since):
			d.add(Missing, e.Seq, "line %d: the event before the window (seq %d) was recorded at %s, inside it: the events before it may be left out", n, e.Seq, stamp(at))
		}
		c.next = e.Seq + 1
		c.w.First = e.Seq + 1
		return
	case boundaryAfter:
		c.after = true
		c.seq(d, n, e.Seq)
		if at.Before(c.w.Until) {
			d.add(Missing, e.Seq, "line %d: the event after the window (seq %d) was recorded at %s, inside it: the events after it may be left out", n, e.Seq, stamp(at))
		}
		return
	case "":
	default:
		d.add(Extra, e.Seq, "line %d: boundary %q is neither before nor after", n, e.Boundary)
	}
	c.inWindow = true
	c.seq(d, n, e.Seq)
	if at.Before(c.w.Since) || !at.Before(c.w.Until) {
		d.add(Extra, e.Seq, "line %d: the event was recorded at %s, outside the window [%s, %s)", n, stamp(at), stamp(c.w.Since), stamp(c.w.Until))
	}
	c.w.Last = e.Seq
}

// seq checks that line n holds the next seq.
func (c *windowCheck) seq(d *damages, n int, seq uint64) {
	if seq > c.next {
		d.add(Missing, c.next, "line %d holds seq %d: seqs %d to %d of the window are not in the bundle", n, seq, c.next, seq-1)
	}
	c.next = max(c.next, seq+1)
}

// end checks what follows the last line, and returns the window.
func (c *windowCheck) end(d *damages) *BundleWindow {
	if !c.inWindow {
		c.w.Last = c.w.First - 1
	}
	if !c.after && c.next <= c.size {
		d.add(Missing, c.next, "the bundle ends at seq %d with no event after the window, but the checkpoint covers %d: seqs %d to %d may be left out",
			c.next-1, c.size, c.next, c.size)
	}
	return c.w
}

// recordedAt reads an event's recorded_at from its canonical bytes.
func recordedAt(body []byte) (time.Time, error) {
	ix, err := trail.CanonicalIndex(body)
	if err != nil {
		return time.Time{}, err
	}
	return ix.RecordedAt, nil
}

// stamp formats a time for a damage report.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "the start"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

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
//
// A window bundle's report has a Window, Complete when no damage was found.
// There, besides: a seq of the window not in the bundle, a boundary
// recorded inside the window (the events beyond it may be left out), and
// a bundle that ends short of the checkpoint's size with no event after the
// window are Missing; an event of the window recorded outside it, a line
// after the event after the window, and a boundary before a window that
// starts with the log are Extra; a recorded_at below the line before's, or
// a before boundary that is not the first line, is Reordered. A boundary in
// a bundle with no window is unreadable.
func VerifyBundle(r io.Reader, v *Verifier) (*BundleReport, error) {
	return VerifyBundleOpen(r, v, nil)
}

// VerifyBundleOpen verifies a bundle as VerifyBundle does, and holds each
// event line's opened event to what open makes of its stored event and its
// openings: one that differs, or whose openings do not open it, is Changed
// (the cleartext shown is not what was recorded). Without open, opened
// events are not checked.
func VerifyBundleOpen(r io.Reader, v *Verifier, open OpenFunc) (*BundleReport, error) {
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
	var window *windowCheck
	if h.Window != nil {
		if !h.Window.Until.After(h.Window.Since) {
			return nil, lineError(n, errors.New("the window's until is not after its since"))
		}
		window = newWindowCheck(h.Window, cp.Size)
	}
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
		if e.Opened != nil && open != nil {
			switch got, err := open(h.Tenant, e.Event, e.Openings); {
			case errors.Is(err, ErrUnopenable) && bytes.Equal(got, e.Opened):
				rep.Unopened++
				if len(rep.Unopenable) < MaxDamage {
					rep.Unopenable = append(rep.Unopenable, e.Seq)
				}
			case err != nil:
				d.add(Changed, e.Seq, "line %d: its openings do not open the event: %v", n, err)
			case !bytes.Equal(got, e.Opened):
				d.add(Changed, e.Seq, "line %d: the event in clear is not what the event's sealed bytes open to with its openings", n)
			default:
				rep.Opened++
			}
		}
		if window != nil {
			window.line(&d, n, &e)
		} else if e.Boundary != "" {
			return nil, lineError(n, errors.New("a boundary in a bundle with no window"))
		}
		prev = max(prev, e.Seq)
	}
	if err := sc.Err(); err != nil {
		return nil, scanError(sc, n+1)
	}
	if window != nil {
		rep.Window = window.end(&d)
	}
	rep.Damage = d.sorted()
	if rep.Window != nil {
		rep.Window.Complete = rep.OK()
	}
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
