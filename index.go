package trail

import "time"

// Index is the part of an event that queries filter on: what a store keeps
// in columns and rows of its own beside the canonical bytes, so that a
// search need not decode every event. Every store derives it with IndexOf
// from the event it encodes, and nothing else, so a column can always be
// checked against the bytes the log's leaf commits to.
type Index struct {
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

// IndexOf returns what queries filter on in ev.
func IndexOf(ev *Event) Index {
	ix := Index{
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
