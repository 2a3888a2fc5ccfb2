package stream

import (
	"bytes"
	"encoding/json"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/export"
)

// Encoding is how a stream's lines are written: Trail's own Line (the zero
// Encoding), or, with OCSF set, each event as an OCSF 1.3 event (the
// export's mapping, export.MarshalOCSF) whose metadata names its tenant
// (tenant_uid) and seq (sequence) and whose unmapped.trail_event carries
// its stored bytes verbatim. In an OCSF stream a pruned event and a
// checkpoint stay Trail Lines (OCSF has no class for either), in the same
// stream, so a Checker checks an OCSF stream as it checks Trail's
// (Checker.Check reads both).
type Encoding struct {
	OCSF bool
	// Actions resolves action names for the OCSF mapping (class,
	// category, severity); nil maps from what the events carry.
	Actions trail.ActionResolver
}

// Line returns l encoded, one line without its newline. An event whose
// stored bytes do not decode, or claim another seq, cannot be mapped to
// OCSF: the log is broken there, and the error is final (Final).
func (e Encoding) Line(l *Line) ([]byte, error) {
	if e.OCSF && l.Event != nil {
		ev, err := trail.UnmarshalCanonical(l.Event)
		if err != nil {
			return nil, brokenLog("stream: tenant %s: the event at seq %d does not decode (run trail verify): %v", l.Tenant, l.Seq, err)
		}
		if ev.Seq != l.Seq {
			return nil, brokenLog("stream: tenant %s: the event at seq %d says it is seq %d (run trail verify)", l.Tenant, l.Seq, ev.Seq)
		}
		ev.Tenant = l.Tenant
		b, err := export.MarshalOCSF(ev, e.Actions, l.Event)
		if err != nil {
			return nil, brokenLog("stream: tenant %s: the event at seq %d: %v", l.Tenant, l.Seq, err)
		}
		return b, nil
	}
	return marshalLine(l), nil
}

// NDJSON returns m's lines encoded, each followed by a newline.
func (e Encoding) NDJSON(m *Message) ([]byte, error) {
	var b []byte
	for _, l := range m.Lines() {
		j, err := e.Line(&l)
		if err != nil {
			return nil, err
		}
		b = append(append(b, j...), '\n')
	}
	return b, nil
}

// marshalLine encodes l without escaping HTML: the escaping would change
// an event's stored bytes (a "<" or "&" in them), which a receiver hashes.
func marshalLine(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err) // a Line always encodes: its Event is valid JSON from the store
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}
