package sqlite

// WithoutTree makes a DB append without tree hashes or checkpoints, so that
// a benchmark can measure what tamper evidence costs.
func WithoutTree(o *Options) { o.noTree = true }

// SetScanAhead sets how many chunks ScanLeaves reads at once.
func SetScanAhead(db *DB, n int) { db.scanAhead = n }

// Migration returns the SQL of migration i (i+1 is the version it makes).
func Migration(i int) string { return migrations[i] }

// ChunkReads returns how many chunks ScanLeavesIndexed has read beneath
// database/sql, and how many through it.
func ChunkReads(db *DB) (raw, sql int64) { return db.chunkReads.raw.Load(), db.chunkReads.sql.Load() }

// EventCols are the columns of events an append writes, in the order its
// INSERTs bind them.
var EventCols = eventCols

// RowsPerInsert is how many rows one of an append's INSERTs carries at
// most.
const RowsPerInsert = rowsPerInsert

// InsertQuery is the statement an append's INSERTs use to insert n rows
// of cols columns, after head ("INSERT INTO t (a, b)").
func InsertQuery(head string, cols, n int) string { return multiInsert{head, cols}.query(n) }
