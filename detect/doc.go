// Package detect runs detection rules over tenants' logs and records what
// they find as alerts in the log itself.
//
// Rules are data, in the Sigma format (https://sigmahq.io): detection
// rules (selections of Trail's event fields and a condition) and Sigma
// correlation rules (event_count and value_count over a timespan, grouped
// by fields), in the subset docs/design.md describes; ParseRules refuses
// the rest, naming the field. A few detections the subset cannot express
// are Go rules of the built-in set (Builtin).
//
// An Engine runs one Set over one tenant's log in seq order from a cursor
// of its own (trail.CursorStore, "detect." + the set's name), so a restart
// resumes and a set run under a new name (with Config.Since) reads the log
// from a time or from seq 1. Each match is an alert_raised event, one of
// Trail's own records, appended through ledger.Writer: it names the rule,
// its window and the seqs of its evidence, and reaches the stream sinks
// like any event.
//
// Start with Builtin (or ParseRules and NewSet), New and Engine.Run.
package detect
