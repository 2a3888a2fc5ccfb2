package stream

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

var _ Transport = (*Syslog)(nil)

// Syslog sends each line of a message (an event, a pruned event's leaf
// hash, a checkpoint) as one RFC 5424 message over TCP with octet counting
// (RFC 6587), or over TLS (RFC 5425): facility log audit (13), severity
// informational, APP-NAME trail, MSGID event, pruned or checkpoint,
// structured data [trail@32473 tenant="…" seq="…"] and the Line's JSON as
// MSG. TCP has no acknowledgement of its own: a message counts as delivered
// once written and flushed, and after any error the connection is made
// again and the whole message resent (receivers see a redelivery, which
// stream.Checker tells apart). 32473 is the private enterprise number RFC
// 5612 reserves for documentation: SD-IDs with it are valid, and no one's.
type Syslog struct {
	addr     string
	tls      *tls.Config
	hostname string
	dial     time.Duration

	mu   sync.Mutex
	conn net.Conn
	w    *bufio.Writer
}

// SyslogOptions configure a Syslog.
type SyslogOptions struct {
	// TLS, when set, makes the connection TLS (RFC 5425).
	TLS *tls.Config
	// Hostname is the HOSTNAME field (default: os.Hostname).
	Hostname string
	// DialTimeout bounds a connection attempt (default 10s).
	DialTimeout time.Duration
}

// NewSyslog returns the transport to the collector at addr (host:port).
func NewSyslog(addr string, o SyslogOptions) (*Syslog, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("stream: syslog address %q: %w", addr, err)
	}
	if o.Hostname == "" {
		o.Hostname, _ = os.Hostname()
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 10 * time.Second
	}
	return &Syslog{addr: addr, tls: o.TLS, hostname: sdSafe(o.Hostname, 255), dial: o.DialTimeout}, nil
}

// Send writes m's lines as syslog messages.
func (s *Syslog) Send(ctx context.Context, m *Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.connect(ctx); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok {
		s.conn.SetWriteDeadline(dl)
	} else {
		s.conn.SetWriteDeadline(time.Now().Add(time.Minute))
	}
	for _, l := range m.Lines() {
		msg := s.format(&l)
		if _, err := fmt.Fprintf(s.w, "%d %s", len(msg), msg); err != nil {
			return s.broken(err)
		}
	}
	if err := s.w.Flush(); err != nil {
		return s.broken(err)
	}
	return nil
}

func (s *Syslog) connect(ctx context.Context) error {
	if s.conn != nil {
		return nil
	}
	d := &net.Dialer{Timeout: s.dial}
	var c net.Conn
	var err error
	if s.tls != nil {
		c, err = (&tls.Dialer{NetDialer: d, Config: s.tls}).DialContext(ctx, "tcp", s.addr)
	} else {
		c, err = d.DialContext(ctx, "tcp", s.addr)
	}
	if err != nil {
		return fmt.Errorf("stream: syslog: %w", err)
	}
	s.conn, s.w = c, bufio.NewWriterSize(c, 64<<10)
	return nil
}

// broken drops the connection after a failed write: the next Send makes a
// new one and sends its message whole.
func (s *Syslog) broken(err error) error {
	s.conn.Close()
	s.conn, s.w = nil, nil
	return fmt.Errorf("stream: syslog: %w", err)
}

// Close closes the connection.
func (s *Syslog) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn, s.w = nil, nil
	return err
}

// format returns l as one RFC 5424 message. Its TIMESTAMP is the event's
// recorded_at (now for a checkpoint, a pruned or a skipped event).
func (s *Syslog) format(l *Line) []byte {
	msgid, ts := "event", time.Now().UTC()
	switch {
	case l.Checkpoint != "":
		msgid = "checkpoint"
	case l.Pruned:
		msgid = "pruned"
	case l.Skipped:
		msgid = "skipped"
	default:
		var ev struct {
			RecordedAt time.Time `json:"recorded_at"`
		}
		if json.Unmarshal(l.Event, &ev) == nil && !ev.RecordedAt.IsZero() {
			ts = ev.RecordedAt.UTC()
		}
	}
	sd := `[trail@32473 tenant="` + sdEscape(l.Tenant) + `"`
	if l.Seq != 0 {
		sd += ` seq="` + strconv.FormatUint(l.Seq, 10) + `"`
	}
	sd += "]"
	body := marshalLine(l)
	const pri = 13*8 + 6 // log audit, informational
	return fmt.Appendf(nil, "<%d>1 %s %s trail - %s %s %s", pri, ts.Format("2006-01-02T15:04:05.000000Z07:00"), s.hostname, msgid, sd, body)
}

// sdEscape escapes a PARAM-VALUE (RFC 5424 §6.3.3).
func sdEscape(v string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, `]`, `\]`).Replace(v)
}

// sdSafe makes a header field printable US-ASCII without spaces, at most
// n long ("-" when empty).
func sdSafe(v string, n int) string {
	v = strings.Map(func(r rune) rune {
		if r <= ' ' || r > '~' {
			return -1
		}
		return r
	}, v)
	if v == "" {
		return "-"
	}
	return v[:min(len(v), n)]
}
