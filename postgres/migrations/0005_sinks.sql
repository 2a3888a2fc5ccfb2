-- The sinks' configurations (trail.SinkStore), in the order put (n). Not
-- events: a row is deleted when its sink is removed (its cursor stays).
-- secret is a webhook's signing key, which the sink needs in clear to sign.
CREATE TABLE sinks (
	n          bigint GENERATED ALWAYS AS IDENTITY,
	tenant     text COLLATE "C" NOT NULL,
	name       text COLLATE "C" NOT NULL,
	kind       text NOT NULL,
	url        text NOT NULL,
	address    text NOT NULL,
	secret     text NOT NULL,
	format     text NOT NULL,
	tls        boolean NOT NULL,
	subject    text NOT NULL,
	created_at bigint NOT NULL, -- Unix nanoseconds
	created_by text NOT NULL,
	PRIMARY KEY (tenant, name)
);
GRANT SELECT, INSERT, DELETE ON sinks TO trail_app;
