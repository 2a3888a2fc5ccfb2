-- Migration 1: the event log with its Merkle tree, its heads, signed
-- checkpoints and idempotency keys; append-only by trigger; the trail_app
-- role.
--
-- Released migrations are never edited: a change of schema is a new file.
--
-- Text columns compare bytewise (COLLATE "C"): Trail matches them only
-- for equality, which every deterministic collation decides by bytes
-- anyway, and a C comparison is a memcmp where a locale's is a strcoll:
-- it makes every index insert of an append cheaper.
--
-- Times are kept as a timestamptz (whole microseconds: Trail writes the
-- time rounded down to one) plus the nanoseconds under the microsecond
-- (0..999) in *_ns: Go keeps
-- nanoseconds, and a range query must give exactly the answer the event's
-- own RecordedAt and OccurredAt give. The pair compares as a row,
-- (recorded_at, recorded_ns) >= ($1, $2), which is exact for every time
-- PostgreSQL can hold, and the timestamptz alone stays readable and usable
-- in SQL by hand. The canonical body keeps the full time and is what reads
-- return.

-- heads is one row per tenant: its last seq, that event's RecordedAt and
-- the right edge of its Merkle tree. Append locks the row (SELECT ... FOR
-- UPDATE): that lock is what makes seq assignment safe across processes,
-- and the edge lets it continue the tree without reading any event.
CREATE TABLE heads (
	tenant      text COLLATE "C" PRIMARY KEY,
	seq         bigint      NOT NULL DEFAULT 0,
	recorded_at timestamptz,             -- NULL while seq = 0
	recorded_ns integer     NOT NULL DEFAULT 0,
	tree        bytea       NOT NULL DEFAULT '' -- hashes of tlog.PeakNodes(seq), 32 bytes each, left to right
);

CREATE TABLE events (
	tenant         text COLLATE "C" NOT NULL,
	seq            bigint           NOT NULL,
	id             uuid             NOT NULL,
	recorded_at    timestamptz      NOT NULL,
	occurred_at    timestamptz      NOT NULL,
	recorded_ns    integer          NOT NULL,
	occurred_ns    integer          NOT NULL,
	action         text COLLATE "C" NOT NULL,
	category       text COLLATE "C" NOT NULL,
	outcome        text COLLATE "C" NOT NULL,
	actor_id       text COLLATE "C" NOT NULL,
	actor_type     text COLLATE "C" NOT NULL,
	organization   text COLLATE "C" NOT NULL,
	workspace      text COLLATE "C" NOT NULL,
	team           text COLLATE "C" NOT NULL,
	correlation_id text COLLATE "C" NOT NULL,
	body           bytea            NOT NULL, -- trail.MarshalCanonical: what reads return, what the tree hashes
	hashes         bytea            NOT NULL, -- trail.Leaf.Hashes: the leaf hash, then the tree nodes it completed
	PRIMARY KEY (tenant, seq),
	CONSTRAINT events_tenant_id UNIQUE (tenant, id)
);
-- Every secondary index ends in seq, so its entries for one value are in
-- log order: a filtered page is an index range read in order, no sort.
CREATE INDEX events_actor ON events (tenant, actor_id, seq);
CREATE INDEX events_action ON events (tenant, action, seq);
CREATE INDEX events_workspace_action ON events (tenant, workspace, action, seq);

-- event_targets has a row per target of an event, for the target filters.
CREATE TABLE event_targets (
	tenant text COLLATE "C" NOT NULL,
	seq    bigint           NOT NULL,
	type   text COLLATE "C" NOT NULL,
	id     text COLLATE "C" NOT NULL
);
CREATE INDEX event_targets_id ON event_targets (tenant, id, type, seq);

-- checkpoints holds every signed checkpoint (tlog.Signer.Sign, a C2SP
-- signed note) of a tenant's tree: one per append, written with its events.
CREATE TABLE checkpoints (
	tenant text COLLATE "C" NOT NULL,
	size   bigint           NOT NULL,
	note   bytea            NOT NULL,
	PRIMARY KEY (tenant, size)
);

CREATE TABLE idempotency (
	tenant      text COLLATE "C" NOT NULL,
	key         text COLLATE "C" NOT NULL,
	fingerprint bytea            NOT NULL, -- trail.BatchFingerprint of the batch as sent
	first_seq   bigint           NOT NULL,
	n           integer          NOT NULL,
	created_at  timestamptz      NOT NULL DEFAULT now(),
	PRIMARY KEY (tenant, key)
);

-- The log is append-only in the database itself. Statement-level triggers
-- fire even when no row matches, so any UPDATE, DELETE or TRUNCATE of the
-- log is refused whoever runs it (an owner could drop the trigger, which
-- is why the application connects as trail_app).
CREATE FUNCTION trail_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'trail: % on % refused: the audit log is append-only', TG_OP, TG_TABLE_NAME
		USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON events
	FOR EACH STATEMENT EXECUTE FUNCTION trail_refuse_change();
CREATE TRIGGER event_targets_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON event_targets
	FOR EACH STATEMENT EXECUTE FUNCTION trail_refuse_change();
CREATE TRIGGER checkpoints_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON checkpoints
	FOR EACH STATEMENT EXECUTE FUNCTION trail_refuse_change();

-- A head only moves forward: an UPDATE that would take a tenant's seq or
-- clock back (and so have the next append collide with stored events, or
-- run RecordedAt backwards), or change its tree without moving its seq,
-- is refused. Heads are never deleted.
CREATE FUNCTION trail_head_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.tenant <> OLD.tenant OR NEW.seq < OLD.seq
		OR (NEW.recorded_at, NEW.recorded_ns) < (OLD.recorded_at, OLD.recorded_ns)
		OR (NEW.seq = OLD.seq AND NEW.tree <> OLD.tree) THEN
		RAISE EXCEPTION 'trail: heads of tenant % may only move forward', OLD.tenant
			USING ERRCODE = 'insufficient_privilege';
	END IF;
	RETURN NEW;
END
$$;
CREATE TRIGGER heads_forward BEFORE UPDATE ON heads
	FOR EACH ROW EXECUTE FUNCTION trail_head_forward();
CREATE TRIGGER heads_kept BEFORE DELETE OR TRUNCATE ON heads
	FOR EACH STATEMENT EXECUTE FUNCTION trail_refuse_change();

-- trail_app is the role production connects as (through a LOGIN role that
-- is a member of it): it may read the log and append to it, and nothing
-- more. Roles belong to the whole cluster, so several schemas or databases
-- migrating at once may race to create it; the loser's error is swallowed.
-- A migrator without CREATEROLE skips it with a notice.
DO $$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'trail_app') THEN
		BEGIN
			CREATE ROLE trail_app NOLOGIN;
		EXCEPTION
			WHEN duplicate_object OR unique_violation THEN
				NULL; -- created meanwhile by another migration
			WHEN insufficient_privilege THEN
				RAISE NOTICE 'trail: cannot create role trail_app (no CREATEROLE); grant its privileges by hand';
		END;
	END IF;
	IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'trail_app') THEN
		EXECUTE format('GRANT USAGE ON SCHEMA %I TO trail_app', current_schema());
		GRANT SELECT, INSERT ON events, event_targets, checkpoints, idempotency TO trail_app;
		GRANT SELECT, INSERT, UPDATE ON heads TO trail_app;
		GRANT SELECT ON schema_migrations TO trail_app;
	END IF;
END
$$;
