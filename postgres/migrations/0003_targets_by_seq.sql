-- Verification (tlog.Verify through Log.ScanIndex) reads each event's
-- event_targets rows by seq, planted rows with no event too, in log order:
-- this index serves it (event_targets_id serves the target filters).
CREATE INDEX event_targets_seq ON event_targets (tenant, seq);
