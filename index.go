package trail

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Index is the part of an event that reads select on: what a store keeps
// in columns and rows of its own beside the canonical bytes, so that a
// search need not decode every event. Every store derives it with IndexOf
// from the event it encodes, and nothing else, so a column can always be
// checked against the bytes the log's leaf commits to (tlog.Verify does,
// through Log.ScanIndex).
type Index struct {
	ID            string // Get's key
	RecordedAt    time.Time
	OccurredAt    time.Time
	Action        string
	Category      string
	Outcome       Outcome
	ActorID       string
	ActorType     ActorType
	Organization  string
	Workspace     string
	Team          string
	CorrelationID string
	// Targets are the event's targets by type and id, each pair once, in
	// the order the event first names them (a target listed twice is one
	// row). Names are not indexed.
	Targets []Target
}

// IndexOf returns what reads select on in ev.
func IndexOf(ev *Event) Index {
	ix := Index{
		ID:         ev.ID,
		RecordedAt: ev.RecordedAt, OccurredAt: ev.OccurredAt,
		Action: ev.Action, Category: ev.Category, Outcome: ev.Outcome,
		ActorID: ev.Actor.ID, ActorType: ev.Actor.Type,
		Organization: ev.Scope.Organization, Workspace: ev.Scope.Workspace, Team: ev.Scope.Team,
		CorrelationID: ev.CorrelationID,
	}
	for _, t := range ev.Targets {
		key := Target{Type: t.Type, ID: t.ID}
		seen := false
		for _, s := range ix.Targets {
			if s == key {
				seen = true
				break
			}
		}
		if !seen {
			ix.Targets = append(ix.Targets, key)
		}
	}
	return ix
}

// IndexRow is what a store keeps for reads beside one seq of a tenant's
// log, as stored (Log.ScanIndex): nothing in it has been checked.
type IndexRow struct {
	Seq uint64
	// Index holds the row's columns and its targets rows, the targets in
	// no particular order and every stored row once (a row stored twice
	// is listed twice). The columns are zero when NoEvent is set.
	Index Index
	// Pruned reports that the store marks the row's payload removed by
	// retention: its reads skip the event. The columns pruning clears are
	// then empty in a sound log, and it has no targets rows.
	Pruned bool
	// NoEvent reports targets rows at Seq where the store holds no event
	// row.
	NoEvent bool
}

// SeqTarget is one targets row as a store keeps it: the seq of its event,
// the target's type and id.
type SeqTarget struct {
	Seq    uint64
	Target Target
}

// WithTargets adds each of targets (in seq order) to the row of its seq in
// rows (a store's index rows of a run of seqs, in seq order), or to a
// NoEvent row of its own where rows has none, and returns rows: how a
// store that keeps targets in a table of their own builds ScanIndex's
// rows.
func WithTargets(rows []IndexRow, targets []SeqTarget) []IndexRow {
	i := 0
	for _, t := range targets {
		for i < len(rows) && rows[i].Seq < t.Seq {
			i++
		}
		if i == len(rows) || rows[i].Seq != t.Seq {
			rows = slices.Insert(rows, i, IndexRow{Seq: t.Seq, NoEvent: true})
		}
		rows[i].Index.Targets = append(rows[i].Index.Targets, t.Target)
	}
	return rows
}

// ErrIndex is in the chain of the error a store's read returns when a row
// its index selected holds an event that does not match what the read
// asked for: the index disagrees with the stored bytes (tlog.Verify says
// where).
var ErrIndex = errors.New("the store's index disagrees with the event's stored bytes")

// indexError is the EINTERNAL error of a read that selected seq for a
// filter (or key) the event there does not match.
func indexError(seq uint64, filter string) error {
	return &Error{Code: EINTERNAL, Err: ErrIndex,
		Message: fmt.Sprintf("the event at seq %d does not match the %s the read asked for: the store's index disagrees with its stored bytes (run trail verify)", seq, filter)}
}

// Confirm is what every store runs on each event its Query decodes from a
// row its index selected: an event that fails one of
// q's filters is an EINTERNAL error naming its seq and the filter (wrapping
// ErrIndex), never a row returned nor one silently skipped, since a column
// or targets row was changed behind the store's back. A row an edit hid
// from the search cannot be seen here; tlog.Verify finds both.
func (q *Query) Confirm(ev *Event) error {
	f := q.mismatch(ev)
	if f == "" && q.OpenAttempts && (ev.Outcome != OutcomeAttempted || ev.CorrelationID == "") {
		f = "open_attempts"
	}
	if f != "" {
		return indexError(ev.Seq, f+" filter")
	}
	return nil
}

// ConfirmKey is Confirm for a read by key: Get (by id; seq 0) or GetSeq (by
// seq; id "").
func ConfirmKey(ev *Event, tenant, id string, seq uint64) error {
	switch {
	case ev.Tenant != tenant:
		return indexError(ev.Seq, "tenant")
	case id != "" && !strings.EqualFold(ev.ID, id):
		return indexError(ev.Seq, "id")
	case seq != 0 && ev.Seq != seq:
		return indexError(ev.Seq, "seq")
	}
	return nil
}
