package client_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/client"
	"github.com/trailaudit/trail/memory"
	"github.com/trailaudit/trail/storetest"
)

const testTenant = "acme"

// newTestLocal returns a Local over a fresh in-memory store built as the
// conformance suite builds stores: the built-in catalog and redaction.
func newTestLocal(t *testing.T) (*client.Local, *memory.Store) {
	t.Helper()
	st := memory.New(storetest.Validator(), nil)
	t.Cleanup(func() { st.Close() })
	return client.NewLocal(st, testTenant, trail.Policy{}), st
}

// storedEvents reads the tenant's whole log back.
func storedEvents(t *testing.T, st trail.Store) []*trail.Event {
	t.Helper()
	var out []*trail.Event
	if err := st.Scan(context.Background(), testTenant, 0, 0, func(ev *trail.Event) error {
		out = append(out, ev)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkClean fails unless ev carries every context key its action requires
// and broke no rule.
func checkClean(t *testing.T, ev *trail.Event) {
	t.Helper()
	if len(ev.Violations) != 0 {
		t.Errorf("%s: violations %+v", ev.Action, ev.Violations)
	}
	def, ok := catalog.Default().Resolve(ev.Action)
	if !ok {
		t.Fatalf("%s is not in the catalog", ev.Action)
	}
	for _, k := range def.Context {
		if _, ok := ev.Context[k.Key]; k.Required && !ok {
			t.Errorf("%s: required context key %s missing", ev.Action, k.Key)
		}
	}
}

// storedJSON is v as compact JSON, to compare stored values (json.Number, []any)
// with expectations written as JSON.
func storedJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var (
	testAlice = trail.Actor{Type: trail.ActorUser, ID: "u-alice", Name: "Alice"}
	testEntry = trail.Target{Type: "entry", ID: "e-42"}
)

func numberedIDs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("e-%02d", i+1)
	}
	return out
}

func TestHelpers(t *testing.T) {
	tests := []struct {
		name     string
		record   func(ctx context.Context, rec client.Recorder) error
		action   string
		context  map[string]string // key → its stored value as JSON
		absent   []string          // context keys that must not be there
		targets  []trail.Target
		reason   string
		redacted []string
	}{
		{
			name: "entry approve",
			record: func(ctx context.Context, rec client.Recorder) error {
				return client.EntryAction(ctx, rec, testAlice, testEntry, client.EntryApprove, "Entry meets all requirements", "standard")
			},
			action:  catalog.EntryApproved,
			context: map[string]string{"notes": `"Entry meets all requirements"`, "level": `"standard"`},
			targets: []trail.Target{testEntry},
		},
		{
			name: "entry submit, untyped target, no notes",
			record: func(ctx context.Context, rec client.Recorder) error {
				return client.EntryAction(ctx, rec, testAlice, trail.Target{ID: "e-7"}, client.EntrySubmit, "", "")
			},
			action:  catalog.EntrySubmitted,
			absent:  []string{"notes", "level"},
			targets: []trail.Target{{Type: "entry", ID: "e-7"}},
		},
		{
			name: "entry reject",
			record: func(ctx context.Context, rec client.Recorder) error {
				return client.EntryAction(ctx, rec, testAlice, testEntry, client.EntryReject, "missing receipt", "")
			},
			action:  catalog.EntryRejected,
			context: map[string]string{"notes": `"missing receipt"`},
		},
		{
			name: "entry flag redacts a card number in notes",
			record: func(ctx context.Context, rec client.Recorder) error {
				return client.EntryAction(ctx, rec, testAlice, testEntry, client.EntryFlag, "paid with 4111 1111 1111 1111", "")
			},
			action:   catalog.EntryFlagged,
			context:  map[string]string{"notes": `"paid with ****1111"`},
			redacted: []string{"context.notes"},
		},
		{
			name: "entry unflag",
			record: func(ctx context.Context, rec client.Recorder) error {
				return client.EntryAction(ctx, rec, testAlice, testEntry, client.EntryUnflag, "", "senior")
			},
			action:  catalog.EntryUnflagged,
			context: map[string]string{"level": `"senior"`},
		},
		{
			name: "permission grant",
			record: func(ctx context.Context, rec client.Recorder) error {
				return client.PermissionChange(ctx, rec, testAlice, "u-bob", "workspace.change_entry", true, "Promoted to reviewer role")
			},
			action:  catalog.PermissionGranted,
			context: map[string]string{"permission": `"workspace.change_entry"`, "target_user_id": `"u-bob"`, "reason": `"Promoted to reviewer role"`},
			targets: []trail.Target{{Type: "user", ID: "u-bob"}},
			reason:  "Promoted to reviewer role",
		},
		{
			name: "permission revoke, no reason",
			record: func(ctx context.Context, rec client.Recorder) error {
				return client.PermissionChange(ctx, rec, testAlice, "u-bob", "workspace.change_entry", false, "")
			},
			action:  catalog.PermissionRevoked,
			context: map[string]string{"permission": `"workspace.change_entry"`, "target_user_id": `"u-bob"`},
			absent:  []string{"reason"},
		},
		{
			name: "data export redacts secret filters",
			record: func(ctx context.Context, rec client.Recorder) error {
				return client.DataExport(ctx, rec, testAlice, client.DataExportInfo{
					ExportType:  "entries",
					Filters:     map[string]any{"status": "approved", "date_range": "2024-01", "api_token": "sk_live_abc"},
					ResultCount: 150,
					Format:      "csv",
					Reason:      "Monthly financial report",
					FileSize:    40960,
				})
			},
			action: catalog.DataExported,
			context: map[string]string{
				"export_format": `"csv"`, "data_scope": `"entries"`, "export_reason": `"Monthly financial report"`,
				"file_size": `40960`, "export_type": `"entries"`, "result_count": `150`,
				"filters": `{"api_token":"[REDACTED]","date_range":"2024-01","status":"approved"}`,
			},
			absent:   []string{"format", "reason"},
			reason:   "Monthly financial report",
			redacted: []string{"context.filters.api_token"},
		},
		{
			name: "data export with its own scope",
			record: func(ctx context.Context, rec client.Recorder) error {
				return client.DataExport(ctx, rec, testAlice, client.DataExportInfo{ExportType: "users", Scope: "workspace w-1 members",
					Format: "json", Reason: "backup", FileSize: 0})
			},
			action:  catalog.DataExported,
			context: map[string]string{"data_scope": `"workspace w-1 members"`, "file_size": `0`, "result_count": `0`},
			absent:  []string{"filters"},
			reason:  "backup",
		},
		{
			name: "bulk operation, few ids",
			record: func(ctx context.Context, rec client.Recorder) error {
				return client.BulkOperation(ctx, rec, testAlice, "bulk_approve", []string{"a", "b", "c"}, "auto_approval_eligible")
			},
			action: catalog.BulkOperation,
			context: map[string]string{"operation_type": `"bulk_approve"`, "affected_count": `3`, "sample_ids": `["a","b","c"]`,
				"criteria": `"auto_approval_eligible"`, "ids_sha256": jsonString(sha256Hex("a\nb\nc"))},
			targets: []trail.Target{{Type: "id_set", ID: sha256Hex("a\nb\nc")}},
		},
		{
			name: "bulk operation, no ids",
			record: func(ctx context.Context, rec client.Recorder) error {
				return client.BulkOperation(ctx, rec, testAlice, "bulk_delete", nil, "")
			},
			action:  catalog.BulkOperation,
			context: map[string]string{"affected_count": `0`, "sample_ids": `[]`, "ids_sha256": jsonString(sha256Hex(""))},
			absent:  []string{"criteria"},
		},
		{
			name: "workspace status",
			record: func(ctx context.Context, rec client.Recorder) error {
				return client.StatusChange(ctx, rec, testAlice, trail.Target{Type: "workspace", ID: "w-1"}, "active", "archived", "End of fiscal year")
			},
			action:  catalog.WorkspaceStatusChanged,
			context: map[string]string{"old_status": `"active"`, "new_status": `"archived"`, "reason": `"End of fiscal year"`},
			targets: []trail.Target{{Type: "workspace", ID: "w-1"}},
			reason:  "End of fiscal year",
		},
		{
			name: "entry status",
			record: func(ctx context.Context, rec client.Recorder) error {
				return client.StatusChange(ctx, rec, testAlice, testEntry, "draft", "submitted", "")
			},
			action:  catalog.EntryStatusChanged,
			context: map[string]string{"old_status": `"draft"`, "new_status": `"submitted"`},
			absent:  []string{"reason"},
		},
		{
			name: "organization status",
			record: func(ctx context.Context, rec client.Recorder) error {
				return client.StatusChange(ctx, rec, testAlice, trail.Target{Type: "organization", ID: "o-1"}, "active", "closed", "")
			},
			action: catalog.OrganizationStatusChanged,
		},
		{
			name: "remittance status",
			record: func(ctx context.Context, rec client.Recorder) error {
				return client.StatusChange(ctx, rec, testAlice, trail.Target{Type: "remittance", ID: "r-1"}, "pending", "paid", "")
			},
			action: catalog.RemittanceStatusChanged,
		},
		{
			name: "file upload",
			record: func(ctx context.Context, rec client.Recorder) error {
				return client.FileOperation(ctx, rec, testAlice, client.FileInfo{Name: "receipt.pdf", Size: 2048, ContentType: "application/pdf",
					SHA256: sha256Hex("pdf"), Category: "receipt", Purpose: "Expense documentation"}, client.FileUpload)
			},
			action: catalog.FileUploaded,
			context: map[string]string{"file_name": `"receipt.pdf"`, "file_size": `2048`, "content_type": `"application/pdf"`,
				"sha256": jsonString(sha256Hex("pdf")), "file_category": `"receipt"`, "purpose": `"Expense documentation"`},
			targets: []trail.Target{{Type: "file", ID: sha256Hex("pdf"), Name: "receipt.pdf"}},
		},
		{
			name: "file download",
			record: func(ctx context.Context, rec client.Recorder) error {
				return client.FileOperation(ctx, rec, testAlice, client.FileInfo{Name: "invoice.csv"}, client.FileDownload)
			},
			action:  catalog.FileDownloaded,
			context: map[string]string{"file_name": `"invoice.csv"`},
			absent:  []string{"file_size", "sha256", "file_category", "purpose", "content_type"},
			targets: []trail.Target{{Type: "file", ID: "invoice.csv", Name: "invoice.csv"}},
		},
		{
			name: "file delete",
			record: func(ctx context.Context, rec client.Recorder) error {
				return client.FileOperation(ctx, rec, testAlice, client.FileInfo{Name: "old.png", Size: 10}, client.FileDelete)
			},
			action:  catalog.FileDeleted,
			context: map[string]string{"file_name": `"old.png"`, "file_size": `10`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec, st := newTestLocal(t)
			if err := tc.record(context.Background(), rec); err != nil {
				t.Fatal(err)
			}
			evs := storedEvents(t, st)
			if len(evs) != 1 {
				t.Fatalf("stored %d events, want 1", len(evs))
			}
			ev := evs[0]
			if ev.Action != tc.action {
				t.Errorf("action %s, want %s", ev.Action, tc.action)
			}
			checkClean(t, ev)
			if ev.Actor.ID != testAlice.ID || ev.Actor.Type != testAlice.Type {
				t.Errorf("actor %+v, want %+v", ev.Actor, testAlice)
			}
			for k, want := range tc.context {
				if got := storedJSON(t, ev.Context[k]); got != want {
					t.Errorf("context %s = %s, want %s", k, got, want)
				}
			}
			for _, k := range tc.absent {
				if v, ok := ev.Context[k]; ok {
					t.Errorf("context %s = %v, want it left out", k, v)
				}
			}
			if tc.targets != nil && !slices.Equal(ev.Targets, tc.targets) {
				t.Errorf("targets %+v, want %+v", ev.Targets, tc.targets)
			}
			if ev.Reason != tc.reason {
				t.Errorf("reason %q, want %q", ev.Reason, tc.reason)
			}
			for _, p := range tc.redacted {
				if !slices.Contains(ev.Redacted, p) {
					t.Errorf("redacted %v, want %s among them", ev.Redacted, p)
				}
			}
			if len(tc.redacted) == 0 && len(ev.Redacted) != 0 {
				t.Errorf("redacted %v, want none", ev.Redacted)
			}
		})
	}
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// The sample is exactly the first and last BulkSample ids, and anyone with
// the full list can check it against ids_sha256.
func TestBulkOperationSampling(t *testing.T) {
	for _, n := range []int{1, 2*client.BulkSample - 1, 2 * client.BulkSample, 2*client.BulkSample + 1, 12, 1000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			rec, st := newTestLocal(t)
			all := numberedIDs(n)
			given := slices.Clone(all)
			if err := client.BulkOperation(context.Background(), rec, testAlice, "bulk_approve", given, "due"); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(given, all) {
				t.Fatalf("BulkOperation changed the caller's ids: %v", given)
			}
			ev := storedEvents(t, st)[0]
			checkClean(t, ev)
			want := all
			if n > 2*client.BulkSample {
				want = append(slices.Clone(all[:client.BulkSample]), all[n-client.BulkSample:]...)
			}
			var got []string
			for _, v := range ev.Context["sample_ids"].([]any) {
				got = append(got, v.(string))
			}
			if !slices.Equal(got, want) {
				t.Errorf("sample_ids %v, want %v", got, want)
			}
			if c := storedJSON(t, ev.Context["affected_count"]); c != fmt.Sprint(n) {
				t.Errorf("affected_count %s, want %d", c, n)
			}
			// The target always holds the digest; the context's copy is
			// intact unless redaction took a digit run in it for a card
			// number, and then the event says so.
			digest := sha256Hex(strings.Join(all, "\n"))
			if client.IDsDigest(all) != digest {
				t.Fatalf("IDsDigest %s, want %s", client.IDsDigest(all), digest)
			}
			if want := []trail.Target{{Type: "id_set", ID: digest}}; !slices.Equal(ev.Targets, want) {
				t.Errorf("targets %+v, want %+v", ev.Targets, want)
			}
			if got := ev.Context["ids_sha256"]; got != digest && !slices.Contains(ev.Redacted, "context.ids_sha256") {
				t.Errorf("ids_sha256 %v does not check against the ids, and was not redacted", got)
			}
			tampered := slices.Clone(all)
			tampered[n/2] = "e-forged"
			if client.IDsDigest(tampered) == digest {
				t.Error("a changed list checks against the digest")
			}
		})
	}
}

func TestHelpersRefuseUnknownArguments(t *testing.T) {
	tests := []struct {
		name   string
		record func(ctx context.Context, rec client.Recorder) error
		path   string
		says   string
	}{
		{"entry verb", func(ctx context.Context, rec client.Recorder) error {
			return client.EntryAction(ctx, rec, testAlice, testEntry, "archive", "", "")
		}, "action", `"archive"`},
		{"file op", func(ctx context.Context, rec client.Recorder) error {
			return client.FileOperation(ctx, rec, testAlice, client.FileInfo{Name: "x"}, "rename")
		}, "op", `"rename"`},
		{"status entity", func(ctx context.Context, rec client.Recorder) error {
			return client.StatusChange(ctx, rec, testAlice, trail.Target{Type: "Invoice", ID: "i-1"}, "open", "paid", "")
		}, "entity.type", `"invoice_status_changed"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec, st := newTestLocal(t)
			err := tc.record(context.Background(), rec)
			if trail.ErrorCode(err) != trail.EINVALID {
				t.Fatalf("error %v, want %s", err, trail.EINVALID)
			}
			fe := trail.ErrorFields(err)
			if len(fe) != 1 || fe[0].Path != tc.path || !strings.Contains(fe[0].Message, tc.says) {
				t.Errorf("fields %+v, want %s saying %s", fe, tc.path, tc.says)
			}
			if n := len(storedEvents(t, st)); n != 0 {
				t.Errorf("stored %d events, want none", n)
			}
		})
	}
}

// A helper's event takes what it leaves out (the actor, the request) from
// the request in ctx.
func TestHelpersFillFromRequest(t *testing.T) {
	rec, st := newTestLocal(t)
	ctx := client.WithRequest(context.Background(), client.RequestInfo{
		Request: trail.Request{IP: "203.0.113.7", RequestID: "req-1", Method: "POST", Path: "/entries/e-42/approve"},
		Actor:   testAlice,
		Scope:   trail.Scope{Organization: "o-1", Workspace: "w-1"},
	})
	if err := client.EntryAction(ctx, rec, trail.Actor{}, testEntry, client.EntryApprove, "", ""); err != nil {
		t.Fatal(err)
	}
	ev := storedEvents(t, st)[0]
	checkClean(t, ev)
	if ev.Actor.ID != testAlice.ID || ev.Request.IP != "203.0.113.7" || ev.Request.RequestID != "req-1" || ev.Scope.Workspace != "w-1" {
		t.Errorf("event not filled from the request: actor %+v request %+v scope %+v", ev.Actor, ev.Request, ev.Scope)
	}
}
