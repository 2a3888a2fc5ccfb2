// Package stream delivers tenants' logs to outside receivers (a SIEM, a
// message bus, a webhook) so that the receiver can check it got all of it,
// in order, as Trail recorded it.
//
// A Sink is a consumer of one tenant's log: it reads in seq order from a
// cursor kept in the store (trail.CursorStore), delivers at least once
// through a Transport, and moves its cursor only after the receiver has
// acknowledged. It delivers only what a signed checkpoint covers, and sends
// that checkpoint with the messages (at intervals, and whenever it has
// caught up), so a receiver holding Trail's verifier key can find a gap, a
// reordering or a changed byte (a Checker does this). A stream is in
// Trail's JSON or in OCSF 1.3 (Encoding). A receiver
// that is down is retried with backoff and jitter for as long as it takes;
// a message it refuses for good stops the sink (an audit stream must not
// have silent holes), unless the sink skips (Config.Skip): then the
// refused event is recorded as skipped and sent as a stand-in, its seq and
// leaf hash marked skipped, so the hole is in the open and the receiver's
// tree still checks.
//
// Start with New, a Transport (NewWebhook here; natsjs.New for NATS
// JetStream) and Sink.Run. A receiver checks what it got with a Checker.
package stream

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Record is one event of a tenant's log as streamed: its seq and its stored
// bytes (the canonical form its leaf hash is of), or, for an event
// retention pruned or one the receiver refused and the sink skipped, the
// leaf hash that stands for it.
type Record struct {
	Seq      uint64
	Body     []byte // nil when pruned or skipped
	LeafHash []byte // set only when pruned or skipped
	Skipped  bool   // a stand-in for an event the receiver refused (Config.Skip)
}

// Message is one delivery: records of one tenant in seq order, with no gap
// from the last message, and optionally the tenant's latest signed
// checkpoint, which covers every record delivered so far or runs ahead of
// them (the records up to its size follow).
type Message struct {
	Sink       string
	Tenant     string
	Records    []Record
	Checkpoint []byte // a C2SP signed note; nil when the message has none
	Size       uint64 // the checkpoint's tree size
}

// ID names m for deduplication: the same records (or the same checkpoint)
// of the same sink always get the same ID, so a redelivery can be told.
func (m *Message) ID() string {
	if len(m.Records) == 0 {
		return fmt.Sprintf("%s.%s.cp%d", m.Sink, m.Tenant, m.Size)
	}
	if len(m.Records) == 1 && m.Records[0].Skipped {
		return fmt.Sprintf("%s.%s.%d.skipped", m.Sink, m.Tenant, m.Records[0].Seq) // not the ID of the message refused
	}
	return fmt.Sprintf("%s.%s.%d-%d", m.Sink, m.Tenant, m.Records[0].Seq, m.Records[len(m.Records)-1].Seq)
}

// Line is one line of a stream's NDJSON: an event, a pruned event's leaf
// hash, or a checkpoint. Every line names its tenant; an event's names its
// seq. It is what the transports send (in an OCSF stream, for pruned
// events and checkpoints: see Encoding) and what a Checker reads.
type Line struct {
	Tenant     string          `json:"tenant"`
	Seq        uint64          `json:"seq,omitempty"`
	Event      json.RawMessage `json:"event,omitempty"`     // the stored bytes, verbatim
	Pruned     bool            `json:"pruned,omitempty"`    // retention removed the event's bytes
	Skipped    bool            `json:"skipped,omitempty"`   // the receiver refused the event and the sink skipped it (recorded in the log)
	LeafHash   []byte          `json:"leaf_hash,omitempty"` // a pruned or skipped event's leaf hash
	Checkpoint string          `json:"checkpoint,omitempty"`
}

// Lines returns m as lines: its records in order, then its checkpoint.
func (m *Message) Lines() []Line {
	out := make([]Line, 0, len(m.Records)+1)
	for _, r := range m.Records {
		l := Line{Tenant: m.Tenant, Seq: r.Seq, Event: r.Body}
		if r.Body == nil {
			l.Pruned, l.Skipped, l.LeafHash = !r.Skipped, r.Skipped, r.LeafHash
		}
		out = append(out, l)
	}
	if m.Checkpoint != nil {
		out = append(out, Line{Tenant: m.Tenant, Checkpoint: string(m.Checkpoint)})
	}
	return out
}

// NDJSON returns m as newline-delimited JSON, one Line each.
func (m *Message) NDJSON() []byte {
	var b []byte
	for _, l := range m.Lines() {
		b = append(append(b, marshalLine(&l)...), '\n')
	}
	return b
}

// Refused is the error of a receiver that refused a message for good (a
// webhook's 4xx, a message too large for the bus): the sink stops rather
// than skip it, unless it is configured to skip (Config.Skip).
type Refused struct {
	Reason string
}

func (e *Refused) Error() string { return "stream: the receiver refused the message: " + e.Reason }

// IsRefused reports whether err is, or wraps, a Refused.
func IsRefused(err error) bool {
	var r *Refused
	return errors.As(err, &r)
}
