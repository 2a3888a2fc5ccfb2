package testenv

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// LogResets is a slog.Handler for a SQLite store's Options.Logger in a
// benchmark: it counts the resets of the write-ahead log the store logs
// at Debug ("sqlite: RESTART checkpoint"), those a reader kept from
// finishing (busy), and the time they held the writer (held).
type LogResets struct {
	mu      sync.Mutex
	n, busy int
	held    time.Duration
}

func (h *LogResets) Enabled(context.Context, slog.Level) bool { return true }
func (h *LogResets) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *LogResets) WithGroup(string) slog.Handler            { return h }

func (h *LogResets) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "sqlite: RESTART checkpoint" {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n++
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "busy":
			if a.Value.Bool() {
				h.busy++
			}
		case "held":
			h.held += a.Value.Duration()
		}
		return true
	})
	return nil
}

// Held is the time the resets so far held the writer.
func (h *LogResets) Held() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.held
}

func (h *LogResets) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return fmt.Sprintf("%d RESTARTs (%d busy) held the writer %v", h.n, h.busy, h.held.Round(time.Millisecond))
}
