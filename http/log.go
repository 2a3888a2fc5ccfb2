package http

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/tlog"
	"github.com/trailaudit/trail/witness"
)

// latest reads and checks the tenant's latest checkpoint. One that does not
// verify is damage: an internal error, logged.
func (s *Server) latest(r *http.Request, tenant string) (*tlog.Checkpoint, error) {
	note, err := s.c.Store.Checkpoint(r.Context(), tenant)
	if err != nil {
		return nil, err
	}
	cp, err := s.c.Verifier.Open(tenant, note)
	if err != nil {
		s.log.ErrorContext(r.Context(), "the latest checkpoint does not verify: run trail verify", "tenant", tenant, "err", err)
		return nil, trail.Errorf(trail.EINTERNAL, "the log's latest checkpoint does not verify")
	}
	return cp, nil
}

// checkpointDoc is the answer to GET /v1/checkpoint.
type checkpointDoc struct {
	Checkpoint   string         `json:"checkpoint"` // the signed note, C2SP format
	Origin       string         `json:"origin"`
	Size         uint64         `json:"size"`
	Root         []byte         `json:"root"`
	Cosignatures []cosignerTime `json:"cosignatures,omitempty"` // with cosigned=1: the witnesses whose lines the root checkpoint carries
	// Witnessed, with cosigned=1, proves the checkpoint witnessed: its entry in
	// the root log, and the entry's inclusion in a root checkpoint a
	// quorum cosigned.
	Witnessed *witness.RootProof `json:"witnessed,omitempty"`
}

// cosignerTime names a witness whose cosignature a checkpoint carries, and
// when it signed.
type cosignerTime struct {
	Witness string    `json:"witness"`
	Time    time.Time `json:"time"`
}

// checkpoint answers the latest signed checkpoint, or with cosigned=1 the
// latest one witnessed through the root log: the tenant's signed
// checkpoint, its entry in the root log with the entry's inclusion proof,
// and the root checkpoint with a quorum of the witnesses' signature lines
// (c2sp.org/tlog-cosignature), still a signed note. ENOTFOUND when the log
// is not witnessed or no root checkpoint with a quorum holds it yet.
func (s *Server) checkpoint(w http.ResponseWriter, r *http.Request, k *trail.APIKey) error {
	q := r.URL.Query()
	if err := onlyParams(q, "cosigned"); err != nil {
		return err
	}
	switch q.Get("cosigned") {
	case "", "0":
	case "1":
		return s.cosignedCheckpoint(w, r, k.Tenant)
	default:
		return trail.Invalid("bad query", trail.FieldError{Path: "cosigned", Message: "want 1 (or 0)"})
	}
	cp, err := s.latest(r, k.Tenant)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, checkpointDoc{Checkpoint: string(cp.Note), Origin: cp.Origin, Size: cp.Size, Root: cp.Root})
}

func (s *Server) cosignedCheckpoint(w http.ResponseWriter, r *http.Request, tenant string) error {
	if s.c.Witnessing == nil {
		return trail.Errorf(trail.ENOTFOUND, "this server has no witness policy: its checkpoints are not witnessed")
	}
	c, err := s.c.Witnessing.Witnessed(r.Context(), tenant)
	if err != nil {
		if trail.ErrorCode(err) != trail.ENOTFOUND {
			s.log.ErrorContext(r.Context(), "the witnesses' cosignatures do not verify: run trail verify", "tenant", tenant, "err", err)
		}
		return err
	}
	cp, err := s.c.Witnessing.Policy().VerifyTenant(s.c.Verifier, tenant, c)
	if err != nil {
		s.log.ErrorContext(r.Context(), "a witnessed checkpoint does not verify: run trail verify", "tenant", tenant, "err", err)
		return trail.Errorf(trail.EINTERNAL, "the log's witnessed checkpoint does not verify")
	}
	doc := checkpointDoc{Checkpoint: string(c.Note), Origin: cp.Origin, Size: cp.Size, Root: cp.Root,
		Witnessed: c.Root}
	for _, cs := range c.Cosignatures {
		doc.Cosignatures = append(doc.Cosignatures, cosignerTime{Witness: cs.Witness, Time: cs.Time})
	}
	return writeJSON(w, http.StatusOK, doc)
}

// uintParams reads required (and, with a default, optional) unsigned
// integer query parameters.
func uintParams(q url.Values, names ...string) (map[string]uint64, error) {
	out := map[string]uint64{}
	var fe []trail.FieldError
	for _, n := range names {
		v := q.Get(n)
		if v == "" {
			continue
		}
		u, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			fe = append(fe, trail.FieldError{Path: n, Message: "want a whole number"})
		}
		out[n] = u
	}
	if len(fe) > 0 {
		return nil, trail.Invalid("bad query parameters", fe...)
	}
	return out, nil
}

// inclusionDoc is the answer to GET /v1/proofs/inclusion.
type inclusionDoc struct {
	Seq        uint64          `json:"seq"`
	LeafIndex  uint64          `json:"leaf_index"`
	TreeSize   uint64          `json:"tree_size"`
	LeafHash   []byte          `json:"leaf_hash"`
	Proof      [][]byte        `json:"proof"`
	Event      json.RawMessage `json:"event,omitempty"`      // the stored bytes the leaf hash is of (to a key with the read scope)
	Pruned     bool            `json:"pruned,omitempty"`     // retention removed the event's bytes; its leaf hash stays
	Checkpoint string          `json:"checkpoint,omitempty"` // the latest signed checkpoint, when tree_size is its size
}

// inclusion proves the event at seq is in the tree of size (default: the
// latest checkpoint's, which the answer then carries; a client that saved
// an older checkpoint asks for its size and checks against its root). The
// proof is tlog.ProveInclusion's, checked before it is answered, an older
// size's through the stored tree's consistency with the latest signed
// root. The event's stored bytes come with it to a key that may read
// events; an event retention pruned is proven by its stored leaf hash. A
// proof the log cannot give is damage: logged, and answered as an
// internal error.
func (s *Server) inclusion(w http.ResponseWriter, r *http.Request, k *trail.APIKey) error {
	q := r.URL.Query()
	if err := onlyParams(q, "seq", "size"); err != nil {
		return err
	}
	p, err := uintParams(q, "seq", "size")
	if err != nil {
		return err
	}
	seq, size := p["seq"], p["size"]
	if seq == 0 {
		return trail.Invalid("bad query parameters", trail.FieldError{Path: "seq", Message: "required: the seq of the event to prove (1 or more)"})
	}
	cp, err := s.latest(r, k.Tenant)
	if err != nil {
		return err
	}
	if size == 0 {
		size = cp.Size
	}
	in, err := tlog.ProveInclusion(r.Context(), s.c.Store, k.Tenant, cp, seq, size)
	var damage *tlog.DamageError
	switch {
	case errors.As(err, &damage):
		s.log.ErrorContext(r.Context(), "an inclusion proof cannot be given: run trail verify", "tenant", k.Tenant, "seq", seq, "size", size, "err", err)
		return trail.Errorf(trail.EINTERNAL, "the log cannot prove seq %d: it is damaged (%s at seq %d)", seq, damage.Kind, damage.Seq)
	case trail.ErrorCode(err) == trail.EINVALID && trail.ErrorFields(err) != nil:
		return trail.Invalid("bad query parameters", trail.ErrorFields(err)...)
	case err != nil:
		return err
	}
	doc := inclusionDoc{Seq: in.Seq, LeafIndex: in.Index, TreeSize: in.Size, LeafHash: in.LeafHash, Proof: in.Proof, Pruned: in.Pruned}
	if in.Size == cp.Size {
		doc.Checkpoint = string(cp.Note)
	}
	if k.Has(trail.ScopeRead) {
		doc.Event = in.Body
	}
	if err := s.audit(r, k, viewedProof("seq", map[string]any{"seq": seq, "tree_size": doc.TreeSize})); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, doc)
}

// consistencyDoc is the answer to GET /v1/proofs/consistency.
type consistencyDoc struct {
	From       uint64   `json:"from"`
	To         uint64   `json:"to"`
	Proof      [][]byte `json:"proof"`
	Checkpoint string   `json:"checkpoint,omitempty"` // the latest signed checkpoint, when to is its size
}

// consistency proves the tree of size to (default: the latest checkpoint's)
// extends the tree of size from.
func (s *Server) consistency(w http.ResponseWriter, r *http.Request, k *trail.APIKey) error {
	q := r.URL.Query()
	if err := onlyParams(q, "from", "to"); err != nil {
		return err
	}
	p, err := uintParams(q, "from", "to")
	if err != nil {
		return err
	}
	if !q.Has("from") {
		return trail.Invalid("bad query parameters", trail.FieldError{Path: "from", Message: "required: the size of the older tree"})
	}
	cp, err := s.latest(r, k.Tenant)
	if err != nil {
		return err
	}
	doc := consistencyDoc{From: p["from"], To: p["to"]}
	if doc.To == 0 {
		doc.To, doc.Checkpoint = cp.Size, string(cp.Note)
	}
	if doc.From > doc.To || doc.To > cp.Size {
		return trail.Invalid("bad query parameters", trail.FieldError{Path: "to",
			Message: "want from <= to <= the latest checkpoint's size (" + strconv.FormatUint(cp.Size, 10) + ")"})
	}
	if doc.Proof, err = tlog.ConsistencyProof(r.Context(), s.c.Store, k.Tenant, doc.From, doc.To); err != nil {
		return err
	}
	if err := s.audit(r, k, viewedProof("tree", map[string]any{"from": doc.From, "to": doc.To})); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, doc)
}
