// Package natsjs is a stream.Transport to NATS JetStream.
package natsjs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/trailaudit/trail/stream"
)

var _ stream.Transport = (*Transport)(nil)

// Transport publishes each line of a message (an event, a pruned or
// skipped event's leaf hash, a checkpoint), in its stream.Encoding (Trail's
// Line, or an event as OCSF), as one message on subject Prefix + "." + tenant
// of a NATS JetStream stream, with the event's id as Nats-Msg-Id (so the
// stream drops a redelivery within its duplicate window) and headers
// Trail-Tenant, Trail-Seq and Trail-Kind (event, pruned, skipped, checkpoint). A
// message is acknowledged when JetStream has acknowledged every line, in
// order. A line larger than the server's maximum payload refuses the
// message for good; every other failure is retried.
type Transport struct {
	js     jetstream.JetStream
	prefix string
	enc    stream.Encoding
}

// New returns the transport publishing through nc under prefix
// (for example "trail.events"; the stream must capture prefix + ".>"),
// each line in enc.
func New(nc *nats.Conn, prefix string, enc stream.Encoding) (*Transport, error) {
	if prefix == "" || strings.ContainsAny(prefix, " \t*>") || strings.HasSuffix(prefix, ".") {
		return nil, fmt.Errorf("stream: NATS subject prefix %q: want tokens separated by dots, no wildcards", prefix)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("stream: %w", err)
	}
	return &Transport{js: js, prefix: prefix, enc: enc}, nil
}

// Send publishes m's lines and waits for their acknowledgements.
func (j *Transport) Send(ctx context.Context, m *stream.Message) error {
	if m.Tenant == "" || strings.ContainsAny(m.Tenant, " \t.*>") {
		return &stream.Refused{Reason: fmt.Sprintf("tenant %q cannot be a NATS subject token", m.Tenant)}
	}
	subject := j.prefix + "." + m.Tenant
	futures := make([]jetstream.PubAckFuture, 0, len(m.Records)+1)
	for _, l := range m.Lines() {
		data, err := j.enc.Line(&l)
		if err != nil {
			return err // the log is broken at this event: final
		}
		msg := nats.NewMsg(subject)
		msg.Data = data
		msg.Header.Set("Trail-Tenant", m.Tenant)
		id, kind := "", "event"
		switch {
		case l.Checkpoint != "":
			id, kind = fmt.Sprintf("%s.%s.cp%d", m.Sink, m.Tenant, m.Size), "checkpoint"
		case l.Pruned:
			id, kind = fmt.Sprintf("%s.%d.pruned", m.Tenant, l.Seq), "pruned"
		case l.Skipped:
			id, kind = fmt.Sprintf("%s.%s.%d.skipped", m.Sink, m.Tenant, l.Seq), "skipped"
		default:
			var ev struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(l.Event, &ev); err != nil || ev.ID == "" {
				return &stream.Refused{Reason: fmt.Sprintf("the event at seq %d has no id", l.Seq)}
			}
			id = ev.ID
		}
		if l.Seq != 0 {
			msg.Header.Set("Trail-Seq", strconv.FormatUint(l.Seq, 10))
		}
		msg.Header.Set("Trail-Kind", kind)
		f, err := j.js.PublishMsgAsync(msg, jetstream.WithMsgID(id))
		if err != nil {
			return j.failed(err)
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return j.failed(err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (j *Transport) failed(err error) error {
	if errors.Is(err, nats.ErrMaxPayload) {
		return &stream.Refused{Reason: err.Error()}
	}
	return fmt.Errorf("stream: NATS: %w", err)
}
