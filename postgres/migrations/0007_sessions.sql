-- The web UI's sessions (trail.SessionStore). Not events: a row is deleted
-- when its session ends (signed out, its key revoked, or swept once ended).
-- hash is the SHA-256 of the session id, which is never stored. deadline is
-- trail.Session.Deadline, kept beside its parts so that a sweep is one range
-- of an index. Times are Unix nanoseconds, idle nanoseconds.
CREATE TABLE sessions (
	hash       bytea PRIMARY KEY,
	tenant     text COLLATE "C" NOT NULL,
	kind       text NOT NULL,
	key_id     text COLLATE "C" NOT NULL,
	subject    text NOT NULL,
	created_at bigint NOT NULL,
	seen_at    bigint NOT NULL,
	idle       bigint NOT NULL,
	expires_at bigint NOT NULL,
	deadline   bigint NOT NULL
);
CREATE INDEX sessions_key ON sessions (key_id);
CREATE INDEX sessions_deadline ON sessions (deadline);
GRANT SELECT, INSERT, UPDATE, DELETE ON sessions TO trail_app;
