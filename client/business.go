package client

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
)

// The business helpers are seed 002's BusinessAuditLogger in Go: each builds
// the event of one catalog action with the context keys the catalog asks of
// it, and records it with rec. An actor left zero is taken from the request
// in ctx (see Middleware), as Record does for every event. A helper refuses
// (EINVALID, recording nothing) only an argument it cannot map to an action;
// a required value left empty is recorded as given, and the store marks the
// event with a missing_key violation (or, in strict mode, refuses it).

// EntryVerb is a step of an entry's review workflow.
type EntryVerb string

// The entry workflow steps, each recorded as its own catalog action.
const (
	EntrySubmit  EntryVerb = "submit"  // entry_submitted
	EntryApprove EntryVerb = "approve" // entry_approved
	EntryReject  EntryVerb = "reject"  // entry_rejected
	EntryFlag    EntryVerb = "flag"    // entry_flagged
	EntryUnflag  EntryVerb = "unflag"  // entry_unflagged
)

var entryActions = map[EntryVerb]string{
	EntrySubmit:  catalog.EntrySubmitted,
	EntryApprove: catalog.EntryApproved,
	EntryReject:  catalog.EntryRejected,
	EntryFlag:    catalog.EntryFlagged,
	EntryUnflag:  catalog.EntryUnflagged,
}

// EntryAction records a step of an entry's workflow (entry_submitted,
// entry_approved, entry_rejected, entry_flagged or entry_unflagged) with the
// reviewer's notes and the review level, each left out when empty. An entry
// target with no type is typed "entry".
func EntryAction(ctx context.Context, rec Recorder, actor trail.Actor, entry trail.Target, action EntryVerb, notes, level string) error {
	name, ok := entryActions[action]
	if !ok {
		return invalidArg("action", fmt.Sprintf("unknown entry action %q: want submit, approve, reject, flag or unflag", action))
	}
	if entry.Type == "" {
		entry.Type = "entry"
	}
	c := map[string]any{}
	setNonEmpty(c, "notes", notes)
	setNonEmpty(c, "level", level)
	return rec.Record(ctx, &trail.Event{Action: name, Actor: actor, Targets: []trail.Target{entry}, Context: c})
}

// PermissionChange records permission granted to (grant) or revoked from
// targetUser: permission_granted or permission_revoked, with the user as
// the target and as context target_user_id. A non-empty reason is both the
// event's Reason and context reason.
func PermissionChange(ctx context.Context, rec Recorder, actor trail.Actor, targetUser, permission string, grant bool, reason string) error {
	name := catalog.PermissionRevoked
	if grant {
		name = catalog.PermissionGranted
	}
	c := map[string]any{"permission": permission, "target_user_id": targetUser}
	setNonEmpty(c, "reason", reason)
	var targets []trail.Target
	if targetUser != "" {
		targets = []trail.Target{{Type: "user", ID: targetUser}}
	}
	return rec.Record(ctx, &trail.Event{Action: name, Actor: actor, Targets: targets, Context: c, Reason: reason})
}

// DataExportInfo describes one data export (seed 002's log_data_export).
type DataExportInfo struct {
	ExportType  string         // what was exported: entries, users, …; context export_type
	Filters     map[string]any // what selected the records; context filters (left out when nil)
	ResultCount int            // records exported; context result_count
	Format      string         // csv, json, pdf…; context export_format (required)
	Reason      string         // why; context export_reason (required) and the event's Reason
	FileSize    int64          // bytes written; context file_size (required)
	Scope       string         // what data was exported; context data_scope (required), ExportType when empty
}

// DataExport records data_exported. The catalog's canonical keys are used
// (export_format, export_reason); seed 002's format and reason, which the
// catalog keeps as optional synonyms, are not written twice.
func DataExport(ctx context.Context, rec Recorder, actor trail.Actor, info DataExportInfo) error {
	scope := info.Scope
	if scope == "" {
		scope = info.ExportType
	}
	c := map[string]any{
		"export_format": info.Format,
		"data_scope":    scope,
		"export_reason": info.Reason,
		"file_size":     info.FileSize,
		"result_count":  info.ResultCount,
	}
	setNonEmpty(c, "export_type", info.ExportType)
	if info.Filters != nil {
		c["filters"] = info.Filters
	}
	return rec.Record(ctx, &trail.Event{Action: catalog.DataExported, Actor: actor, Context: c, Reason: info.Reason})
}

// BulkSample is how many ids BulkOperation keeps from each end of the list:
// sample_ids holds the first BulkSample and the last BulkSample ids, or
// every id when there are at most 2*BulkSample.
const BulkSample = 5

// BulkOperation records bulk_operation over the objects ids, in the order
// given. The log keeps a sample rather than every id (seed 002's "smart
// object sampling"), and a digest that pins down the whole set:
//
//   - affected_count: len(ids)
//   - sample_ids: the first and last BulkSample ids (all of them when
//     len(ids) <= 2*BulkSample)
//   - ids_sha256: IDsDigest(ids), the hex SHA-256 of the ids joined by "\n",
//     so anyone holding the full list can check it is the one recorded
//   - criteria: how the objects were selected, when non-empty
//
// The digest is also the event's one target, of type "id_set": target ids
// are never redacted, while context strings are scanned for card numbers,
// and about 1.5% of hex digests hold a run of digits that passes for one
// (the event's Redacted then lists context.ids_sha256). Querying by that
// target finds the operation from the full list.
func BulkOperation(ctx context.Context, rec Recorder, actor trail.Actor, operationType string, ids []string, criteria string) error {
	digest := IDsDigest(ids)
	c := map[string]any{
		"operation_type": operationType,
		"affected_count": len(ids),
		"sample_ids":     sampleIDs(ids),
		"ids_sha256":     digest,
	}
	setNonEmpty(c, "criteria", criteria)
	set := trail.Target{Type: "id_set", ID: digest}
	return rec.Record(ctx, &trail.Event{Action: catalog.BulkOperation, Actor: actor, Targets: []trail.Target{set}, Context: c})
}

// IDsDigest is the ids_sha256 BulkOperation records: the lower-case hex
// SHA-256 of the ids, in order, joined by "\n" (no trailing newline; the
// empty list hashes the empty string). Ids holding a newline would make the
// joined form ambiguous: keep them out of bulk operations.
func IDsDigest(ids []string) string {
	h := sha256.New()
	for i, id := range ids {
		if i > 0 {
			h.Write([]byte{'\n'})
		}
		h.Write([]byte(id))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// sampleIDs returns the first and last BulkSample ids, or all of them when
// there are no more than 2*BulkSample, as JSON array elements.
func sampleIDs(ids []string) []any {
	pick := ids
	if len(ids) > 2*BulkSample {
		pick = append(ids[:BulkSample:BulkSample], ids[len(ids)-BulkSample:]...)
	}
	out := make([]any, len(pick))
	for i, id := range pick {
		out[i] = id
	}
	return out
}

// statusActions maps an entity type to the catalog action for a change of
// its status.
var statusActions = map[string]string{
	"entry":        catalog.EntryStatusChanged,
	"workspace":    catalog.WorkspaceStatusChanged,
	"organization": catalog.OrganizationStatusChanged,
	"remittance":   catalog.RemittanceStatusChanged,
}

// StatusChange records the change of entity's status from oldStatus to
// newStatus: <type>_status_changed for entities of type entry, workspace,
// organization or remittance. Another type is refused (EINVALID): register
// an action for it (catalog.Register, with old_status and new_status keys)
// and Record it directly. A non-empty reason is both the event's Reason and
// context reason.
func StatusChange(ctx context.Context, rec Recorder, actor trail.Actor, entity trail.Target, oldStatus, newStatus, reason string) error {
	name, ok := statusActions[entity.Type]
	if !ok {
		return invalidArg("entity.type", fmt.Sprintf("no status-change action for entity type %q (entry, workspace, organization and remittance have one); "+
			"register a custom action such as %q with old_status and new_status keys and Record it directly", entity.Type, customStatusName(entity.Type)))
	}
	c := map[string]any{"old_status": oldStatus, "new_status": newStatus}
	setNonEmpty(c, "reason", reason)
	return rec.Record(ctx, &trail.Event{Action: name, Actor: actor, Targets: []trail.Target{entity}, Context: c, Reason: reason})
}

// customStatusName suggests an action name for an entity type's status
// changes.
func customStatusName(typ string) string {
	n := strings.Trim(strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return '_'
	}, typ), "_")
	if n == "" {
		n = "thing"
	}
	return n + "_status_changed"
}

// FileInfo describes a file an operation handled.
type FileInfo struct {
	Name        string // original file name; context file_name (required)
	Size        int64  // bytes; context file_size, left out when 0 (unknown)
	ContentType string // MIME type; context content_type
	SHA256      string // hex digest of the content; context sha256, and the target's id when set
	Category    string // receipt, invoice, …; context file_category
	Purpose     string // why the file was handled; context purpose
}

// FileOp is what was done to a file.
type FileOp string

// The file operations, each recorded as its own catalog action.
const (
	FileUpload   FileOp = "upload"   // file_uploaded
	FileDownload FileOp = "download" // file_downloaded
	FileDelete   FileOp = "delete"   // file_deleted
)

var fileActions = map[FileOp]string{
	FileUpload:   catalog.FileUploaded,
	FileDownload: catalog.FileDownloaded,
	FileDelete:   catalog.FileDeleted,
}

// FileOperation records a file uploaded, downloaded or deleted. The file is
// the event's target (type "file", id its SHA-256 when known, otherwise its
// name); its fields go into the context, each left out when empty.
func FileOperation(ctx context.Context, rec Recorder, actor trail.Actor, f FileInfo, op FileOp) error {
	name, ok := fileActions[op]
	if !ok {
		return invalidArg("op", fmt.Sprintf("unknown file operation %q: want upload, download or delete", op))
	}
	c := map[string]any{"file_name": f.Name}
	if f.Size != 0 {
		c["file_size"] = f.Size
	}
	setNonEmpty(c, "content_type", f.ContentType)
	setNonEmpty(c, "sha256", f.SHA256)
	setNonEmpty(c, "file_category", f.Category)
	setNonEmpty(c, "purpose", f.Purpose)
	var targets []trail.Target
	if id := cmp.Or(f.SHA256, f.Name); id != "" {
		targets = []trail.Target{{Type: "file", ID: id, Name: f.Name}}
	}
	return rec.Record(ctx, &trail.Event{Action: name, Actor: actor, Targets: targets, Context: c})
}

func setNonEmpty(c map[string]any, key, v string) {
	if v != "" {
		c[key] = v
	}
}

func invalidArg(path, msg string) error {
	return trail.Invalid("bad argument", trail.FieldError{Path: path, Message: msg})
}
