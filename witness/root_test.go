package witness

import (
	"bytes"
	"testing"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/storetest"
	"github.com/trailaudit/trail/tlog"
)

// parseEntry reads a root entry from a proof handed to VerifyTenant
// (outside input): it never panics, and what it accepts has a root hash
// of the tree's hash size and makes a tenant note again that holds it.
func FuzzParseEntry(f *testing.F) {
	note, err := storetest.Signer().Sign("acme", 5, bytes.Repeat([]byte{7}, trail.HashSize))
	if err != nil {
		f.Fatal(err)
	}
	ev, _, err := rootEntry(note)
	if err != nil {
		f.Fatal(err)
	}
	ev.Tenant, ev.Seq, ev.ID = trail.RootTenant, 1, "01a23c07-dd5a-7b02-ac75-63fc569f9061"
	ev.RecordedAt, ev.OccurredAt = time.Unix(1e9, 0).UTC(), time.Unix(1e9, 0).UTC()
	ev.Category, ev.Outcome = "audit", trail.OutcomeSuccess
	body, err := trail.MarshalCanonical(ev)
	if err != nil {
		f.Fatal(err)
	}
	e, err := parseEntry(body)
	if err != nil || e.size != 5 || !bytes.Equal(e.note(tlog.Origin(storetest.Signer().Verifier().Name(), "acme")), note) {
		f.Fatalf("the seed entry: %+v, %v; want the note made again:\n%s", e, err, note)
	}
	f.Add(body)
	f.Add([]byte(`{"v":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := parseEntry(b)
		if err != nil {
			return
		}
		if len(e.root) != trail.HashSize {
			t.Fatalf("accepted a root hash of %d bytes", len(e.root))
		}
		if !bytes.Contains(e.note("o"), []byte("\n\n")) {
			t.Fatalf("a note without its signature block")
		}
	})
}
