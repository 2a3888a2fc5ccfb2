-- Migration 1: the event log with its Merkle tree, its heads, signed
-- checkpoints and idempotency keys; append-only by trigger; API keys and
-- saved custom actions; the trail_app role.
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
CREATE INDEX events_correlation ON events (tenant, correlation_id, seq) WHERE correlation_id <> '';

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

-- api_keys holds every API key ever created (trail.APIKey), with only a
-- SHA-256 hash of its secret; n is the creation order. Its times are Unix
-- nanoseconds (exact, as Go keeps them; to_timestamp(created_at / 1e9)
-- reads one by hand), and revoked_at is 0 while the key is live. A key is
-- never deleted nor changed, only revoked: revoked_at goes once from 0 to
-- the time of revocation, and nothing else of the row ever moves.
CREATE TABLE api_keys (
	id         text COLLATE "C" PRIMARY KEY,
	n          bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
	tenant     text COLLATE "C" NOT NULL,
	name       text             NOT NULL,
	scopes     text[]           NOT NULL, -- trail.KeyScope
	hash       bytea            NOT NULL,
	created_at bigint           NOT NULL,
	revoked_at bigint           NOT NULL DEFAULT 0
);
CREATE INDEX api_keys_tenant ON api_keys (tenant, n);
CREATE FUNCTION trail_key_revoke_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF OLD.revoked_at <> 0 OR NEW.revoked_at = 0
		OR (NEW.id, NEW.n, NEW.tenant, NEW.name, NEW.scopes, NEW.hash, NEW.created_at)
			IS DISTINCT FROM (OLD.id, OLD.n, OLD.tenant, OLD.name, OLD.scopes, OLD.hash, OLD.created_at) THEN
		RAISE EXCEPTION 'trail: API key % can only be revoked, once', OLD.id
			USING ERRCODE = 'insufficient_privilege';
	END IF;
	RETURN NEW;
END
$$;
CREATE TRIGGER api_keys_revoke_only BEFORE UPDATE ON api_keys
	FOR EACH ROW EXECUTE FUNCTION trail_key_revoke_only();
CREATE TRIGGER api_keys_kept BEFORE DELETE OR TRUNCATE ON api_keys
	FOR EACH STATEMENT EXECUTE FUNCTION trail_refuse_change();

-- custom_actions holds the custom actions registered at run time
-- (trail.ActionStore), in the order saved (n); append-only.
CREATE TABLE custom_actions (
	name       text COLLATE "C" PRIMARY KEY,
	n          bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
	definition bytea            NOT NULL, -- the trail.Action as JSON
	saved_at   bigint           NOT NULL  -- Unix nanoseconds
);
CREATE TRIGGER custom_actions_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON custom_actions
	FOR EACH STATEMENT EXECUTE FUNCTION trail_refuse_change();

-- trail_app is the role production connects as (through a LOGIN role that
-- is a member of it): it may read the log and append to it, create and
-- revoke API keys and save custom actions, and nothing more. Roles belong
-- to the whole cluster, so several schemas or databases migrating at once
-- may race to create it; the loser's error is swallowed. A migrator
-- without CREATEROLE skips it with a notice.
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
		GRANT SELECT, INSERT ON api_keys, custom_actions TO trail_app;
		GRANT UPDATE (revoked_at) ON api_keys TO trail_app;
	END IF;
END
$$;

-- Retention (prune.go). Pruning an event removes its payload and keeps its
-- place in the tree: body becomes NULL, the indexed copies of its
-- descriptive fields (actor_id, organization, workspace, team,
-- correlation_id) become '', its event_targets rows are deleted, and
-- pruned takes the seq of the audit_log_pruned event that records it;
-- tenant, seq, id, times, action, category, outcome, actor_type and hashes
-- never change. The row trigger allows exactly that, once per row, and
-- only when the record is the tenant's head, as it is in the transaction
-- that appends it; audit_log_pruned events themselves are never pruned.
-- An event_targets row may only be deleted once its event is pruned.
-- DELETE and TRUNCATE of events, and UPDATE and TRUNCATE of
-- event_targets, stay refused by statement (the triggers keep their
-- names).
ALTER TABLE events ALTER COLUMN body DROP NOT NULL;
ALTER TABLE events ADD COLUMN pruned bigint; -- seq of the audit_log_pruned event; NULL while the payload is there
CREATE INDEX events_pruned ON events (tenant, seq) WHERE pruned IS NOT NULL;
DROP TRIGGER events_append_only ON events;
CREATE TRIGGER events_append_only BEFORE DELETE OR TRUNCATE ON events
	FOR EACH STATEMENT EXECUTE FUNCTION trail_refuse_change();
CREATE FUNCTION trail_event_prune_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF OLD.pruned IS NOT NULL OR NEW.pruned IS NULL OR NEW.pruned <= OLD.seq OR OLD.action = 'audit_log_pruned'
		OR (NEW.tenant, NEW.seq, NEW.id, NEW.recorded_at, NEW.recorded_ns, NEW.occurred_at, NEW.occurred_ns,
			NEW.action, NEW.category, NEW.outcome, NEW.actor_type, NEW.hashes)
			IS DISTINCT FROM (OLD.tenant, OLD.seq, OLD.id, OLD.recorded_at, OLD.recorded_ns, OLD.occurred_at, OLD.occurred_ns,
			OLD.action, OLD.category, OLD.outcome, OLD.actor_type, OLD.hashes)
		OR NEW.body IS NOT NULL OR NEW.actor_id <> '' OR NEW.organization <> '' OR NEW.workspace <> ''
		OR NEW.team <> '' OR NEW.correlation_id <> ''
		OR NOT EXISTS (SELECT FROM events r WHERE r.tenant = OLD.tenant AND r.seq = NEW.pruned
			AND r.action = 'audit_log_pruned' AND r.pruned IS NULL)
		OR NEW.pruned IS DISTINCT FROM (SELECT h.seq FROM heads h WHERE h.tenant = OLD.tenant) THEN
		RAISE EXCEPTION 'trail: UPDATE on events refused: the audit log is append-only (retention may only remove a payload once, in the transaction of its audit_log_pruned record)'
			USING ERRCODE = 'insufficient_privilege';
	END IF;
	RETURN NEW;
END
$$;
CREATE TRIGGER events_prune_only BEFORE UPDATE ON events
	FOR EACH ROW EXECUTE FUNCTION trail_event_prune_only();
DROP TRIGGER event_targets_append_only ON event_targets;
CREATE TRIGGER event_targets_append_only BEFORE UPDATE OR TRUNCATE ON event_targets
	FOR EACH STATEMENT EXECUTE FUNCTION trail_refuse_change();
CREATE FUNCTION trail_target_of_pruned() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NOT EXISTS (SELECT FROM events e WHERE e.tenant = OLD.tenant AND e.seq = OLD.seq AND e.pruned IS NOT NULL) THEN
		RAISE EXCEPTION 'trail: DELETE on event_targets refused: the audit log is append-only'
			USING ERRCODE = 'insufficient_privilege';
	END IF;
	RETURN OLD;
END
$$;
CREATE TRIGGER event_targets_pruned_only BEFORE DELETE ON event_targets
	FOR EACH ROW EXECUTE FUNCTION trail_target_of_pruned();

-- holds keeps legal holds (trail.HoldStore, holds.go), n in the order
-- placed, times in Unix nanoseconds. A hold is never deleted nor changed,
-- only released: released_at goes once from 0 to the time.
CREATE TABLE holds (
	tenant      text COLLATE "C" NOT NULL,
	id          text COLLATE "C" NOT NULL,
	n           bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
	filter      jsonb            NOT NULL, -- trail.HoldFilter
	reason      text             NOT NULL,
	created_by  text             NOT NULL,
	created_at  bigint           NOT NULL,
	released_at bigint           NOT NULL DEFAULT 0,
	PRIMARY KEY (tenant, id)
);
CREATE FUNCTION trail_hold_release_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF OLD.released_at <> 0 OR NEW.released_at = 0
		OR (NEW.tenant, NEW.id, NEW.n, NEW.filter, NEW.reason, NEW.created_by, NEW.created_at)
			IS DISTINCT FROM (OLD.tenant, OLD.id, OLD.n, OLD.filter, OLD.reason, OLD.created_by, OLD.created_at) THEN
		RAISE EXCEPTION 'trail: legal hold % can only be released, once', OLD.id
			USING ERRCODE = 'insufficient_privilege';
	END IF;
	RETURN NEW;
END
$$;
CREATE TRIGGER holds_release_only BEFORE UPDATE ON holds
	FOR EACH ROW EXECUTE FUNCTION trail_hold_release_only();
CREATE TRIGGER holds_kept BEFORE DELETE OR TRUNCATE ON holds
	FOR EACH STATEMENT EXECUTE FUNCTION trail_refuse_change();

-- trail_app may prune (the columns retention clears, and the targets rows
-- of pruned events) and place and release holds.
DO $$
BEGIN
	IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'trail_app') THEN
		GRANT UPDATE (body, actor_id, organization, workspace, team, correlation_id, pruned) ON events TO trail_app;
		GRANT DELETE ON event_targets TO trail_app;
		GRANT SELECT, INSERT ON holds TO trail_app;
		GRANT UPDATE (released_at) ON holds TO trail_app;
	END IF;
END
$$;
