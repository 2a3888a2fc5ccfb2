-- Consumers' positions in the tenants' logs (trail.CursorStore): a stream's
-- sink, a detection rule. Not events: updated in place, only forward.
CREATE TABLE cursors (
	name       text COLLATE "C" NOT NULL,
	tenant     text COLLATE "C" NOT NULL,
	seq        bigint NOT NULL,
	updated_at bigint NOT NULL, -- Unix nanoseconds
	PRIMARY KEY (name, tenant)
);
GRANT SELECT, INSERT, UPDATE ON cursors TO trail_app;
