package postgres

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
