-- Subject keys for GDPR erasure (package erasure): one AES-256 key per data
-- subject, apart from the events it protects. Unlike everything else here,
-- rows are deleted: erasing a subject deletes its keys.
CREATE TABLE subject_keys (
	tenant     text COLLATE "C" NOT NULL,
	id         text COLLATE "C" NOT NULL,
	subject    text COLLATE "C" NOT NULL,
	key        bytea NOT NULL,
	created_at bigint NOT NULL, -- Unix nanoseconds
	PRIMARY KEY (tenant, id)
);
CREATE INDEX subject_keys_subject ON subject_keys (tenant, subject, created_at);
GRANT SELECT, INSERT, DELETE ON subject_keys TO trail_app;
