package trail

import (
	"context"
	"time"
)

// RetentionRule says how long a kind of event is kept before retention
// removes its payload. Exactly one of Action, Category and Compliance
// selects the events; a rule on an action wins over one on its category,
// which wins over one on a compliance tag; the catalog's retention class of
// each action is the default.
type RetentionRule struct {
	Name       string `json:"name"`
	Action     string `json:"action,omitempty"`
	Category   string `json:"category,omitempty"`
	Compliance string `json:"compliance,omitempty"`
	Days       int    `json:"days"`
}

// HoldFilter selects the events a legal hold covers. Zero fields do not
// narrow it: an empty filter holds the whole tenant.
type HoldFilter struct {
	ActorID  string    `json:"actor_id,omitempty"`
	TargetID string    `json:"target_id,omitempty"`
	From     time.Time `json:"from,omitzero"`  // recorded at or after
	Until    time.Time `json:"until,omitzero"` // recorded before
}

// Hold is a legal hold: while it stands (ReleasedAt zero), the events it
// covers are never purged and its subjects never erased.
type Hold struct {
	ID         string     `json:"id"`
	Tenant     string     `json:"tenant"`
	Filter     HoldFilter `json:"filter"`
	Reason     string     `json:"reason"`
	CreatedBy  string     `json:"created_by"`
	CreatedAt  time.Time  `json:"created_at"`
	ReleasedAt time.Time  `json:"released_at,omitzero"`
}

// Active reports whether h still stands.
func (h *Hold) Active() bool { return h.ReleasedAt.IsZero() }

// Covers reports whether h, while active, covers ev.
func (h *Hold) Covers(ev *Event) bool {
	f := h.Filter
	if !h.Active() || ev.Tenant != "" && ev.Tenant != h.Tenant {
		return false
	}
	if f.ActorID != "" && ev.Actor.ID != f.ActorID {
		return false
	}
	if !f.From.IsZero() && ev.RecordedAt.Before(f.From) || !f.Until.IsZero() && !ev.RecordedAt.Before(f.Until) {
		return false
	}
	if f.TargetID == "" {
		return true
	}
	for _, t := range ev.Targets {
		if t.ID == f.TargetID {
			return true
		}
	}
	return false
}

// HoldStore keeps legal holds, in the store's database.
//
// Contract: PlaceHold refuses an existing ID (ECONFLICT); ReleaseHold sets
// ReleasedAt once and returns ENOTFOUND for an unknown hold; Holds lists a
// tenant's holds in the order they were placed, released ones included.
type HoldStore interface {
	PlaceHold(ctx context.Context, h *Hold) error
	ReleaseHold(ctx context.Context, tenant, id string, at time.Time) error
	Holds(ctx context.Context, tenant string) ([]*Hold, error)
}

// The times stores keep as Unix nanoseconds (keys, holds) lie between
// these: 1970 to 2262.
var (
	nsTimeMin = time.Unix(0, 0)
	nsTimeMax = time.Unix(0, 1<<63-1)
)

// CheckTime returns the field error of a time a store keeps as Unix
// nanoseconds (an API key's or hold's times) that is zero or outside 1970
// to 2262, or nil.
func CheckTime(path string, t time.Time) *FieldError {
	switch {
	case t.IsZero():
		return &FieldError{Path: path, Message: "required"}
	case !t.After(nsTimeMin) || t.After(nsTimeMax):
		return &FieldError{Path: path, Message: "outside the years the store holds (1970 to 2262)"}
	}
	return nil
}

// PrepareHold checks a hold to be placed and returns a copy with its times
// in UTC and a zero CreatedAt set to now: what every HoldStore's PlaceHold
// does first.
func PrepareHold(h *Hold, now time.Time) (*Hold, error) {
	if h == nil {
		return nil, Invalid("bad legal hold", FieldError{Path: "id", Message: "required"})
	}
	c := *h
	if c.CreatedAt.IsZero() {
		c.CreatedAt = now
	}
	c.CreatedAt = c.CreatedAt.UTC()
	c.Filter = c.Filter.UTC()
	var fe []FieldError
	if c.ID == "" || len(c.ID) > MaxNameLen {
		fe = append(fe, FieldError{Path: "id", Message: "required, at most 128 bytes"})
	}
	if m := CheckTenant(c.Tenant); m != "" {
		fe = append(fe, FieldError{Path: "tenant", Message: m})
	}
	if f := CheckTime("created_at", c.CreatedAt); f != nil {
		fe = append(fe, *f)
	}
	if !c.ReleasedAt.IsZero() {
		fe = append(fe, FieldError{Path: "released_at", Message: "a hold is placed standing; ReleaseHold releases it"})
	}
	if !c.Filter.From.IsZero() && !c.Filter.Until.IsZero() && !c.Filter.From.Before(c.Filter.Until) {
		fe = append(fe, FieldError{Path: "filter.until", Message: "must be after filter.from"})
	}
	if len(fe) > 0 {
		return nil, Invalid("bad legal hold", fe...)
	}
	return &c, nil
}

// UTC returns f with its times in UTC (zero times stay zero).
func (f HoldFilter) UTC() HoldFilter {
	if !f.From.IsZero() {
		f.From = f.From.UTC()
	}
	if !f.Until.IsZero() {
		f.Until = f.Until.UTC()
	}
	return f
}
