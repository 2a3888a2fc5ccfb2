-- The witnesses' cosignatures of the tenants' checkpoints
-- (trail.CosignatureStore), each verified before it is kept. Evidence:
-- trail_app may only read and insert them, and nobody changes one.
CREATE TABLE cosignatures (
	tenant    text COLLATE "C" NOT NULL,
	size      bigint NOT NULL,
	witness   text COLLATE "C" NOT NULL,
	signed_at bigint NOT NULL, -- the cosignature's timestamp, Unix seconds
	line      text NOT NULL,   -- the note signature line
	note      bytea NOT NULL,  -- the signed checkpoint it cosigns
	PRIMARY KEY (tenant, size, witness)
);
GRANT SELECT, INSERT ON cosignatures TO trail_app;
CREATE TRIGGER cosignatures_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON cosignatures
	FOR EACH STATEMENT EXECUTE FUNCTION trail_refuse_change();
