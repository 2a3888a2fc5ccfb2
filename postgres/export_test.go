package postgres

import (
	"fmt"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/internal/ledger"
)

// SchemaVersion is the schema version this build knows, for the tests.
var SchemaVersion = schemaVersion

// ScanChunk is how many events Scan reads per query, for the tests.
const ScanChunk = scanChunk

// SetCopyMin sets the smallest batch written with COPY until the test ends.
func SetCopyMin(t interface{ Cleanup(func()) }, n int) {
	old := copyMin
	copyMin = n
	t.Cleanup(func() { copyMin = old })
}

// SetLogChunk sets how many rows the Log methods read per query until the
// test ends.
func SetLogChunk(t interface{ Cleanup(func()) }, n int) {
	old := logChunk
	logChunk = n
	t.Cleanup(func() { logChunk = old })
}

// WithoutTree makes a DB append without tree hashes or checkpoints, so that
// a benchmark can measure what tamper evidence costs.
func WithoutTree(o *Options) { o.noTree = true }

// EventRow returns the columns of events and the row Append would write
// there for ev at seq, but holding body and hashes as given: what a tamper
// test inserts behind the store's back.
func EventRow(tenant string, seq uint64, ev *trail.Event, body, hashes []byte) ([]string, []any, error) {
	ev = ev.Clone()
	ev.Seq = seq
	id, ok := trail.ParseID(ev.ID)
	if !ok {
		return nil, nil, fmt.Errorf("event id %q is not a UUID", ev.ID)
	}
	var a args
	eventFields(&a, tenant, &ledger.Row{Event: ev, ID: id, Body: body, Hashes: hashes, Index: trail.IndexOf(ev)})
	return eventColumns, a, nil
}

// MaxConns is the size limit of the pool of k, for the tests.
func MaxConns(k *SubjectKeys) int32 { return k.pool.Config().MaxConns }
