-- Tenants' own detection rule files (trail.RuleStore): Sigma YAML by name.
-- Not events: a row is replaced when its file is put again and deleted when
-- it is removed (package detect records each change in the tenant's log).
CREATE TABLE rules (
	tenant     text COLLATE "C" NOT NULL,
	name       text COLLATE "C" NOT NULL,
	yaml       text NOT NULL,
	created_at bigint NOT NULL, -- Unix nanoseconds
	created_by text NOT NULL,
	PRIMARY KEY (tenant, name)
);
GRANT SELECT, INSERT, UPDATE, DELETE ON rules TO trail_app;
