-- Custom actions per tenant (trail.ActionStore): tenant_actions, in the
-- order saved (n). custom_actions, of the actions saved when the catalog
-- was shared by every tenant, stays as it was (append-only) and is read no
-- more: each of its actions is given to the tenant whose log records its
-- registration (admin_config_changed of config_key action:NAME, found in
-- the canonical body) and to every tenant whose log holds an event of it,
-- so no tenant that used one loses it. One no log names goes to no tenant;
-- migrationNotes (schema.go) says what this did.
CREATE TABLE tenant_actions (
	n          bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
	tenant     text COLLATE "C" NOT NULL,
	name       text COLLATE "C" NOT NULL,
	definition bytea            NOT NULL, -- the trail.Action as JSON
	saved_at   bigint           NOT NULL, -- Unix nanoseconds
	PRIMARY KEY (tenant, name)
);
CREATE TRIGGER tenant_actions_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON tenant_actions
	FOR EACH STATEMENT EXECUTE FUNCTION trail_refuse_change();
INSERT INTO tenant_actions (tenant, name, definition, saved_at)
SELECT h.tenant, c.name, c.definition, c.saved_at FROM custom_actions c CROSS JOIN heads h
WHERE EXISTS (SELECT FROM events e WHERE e.tenant = h.tenant AND e.action = c.name)
	OR EXISTS (SELECT FROM events e WHERE e.tenant = h.tenant AND e.action = 'admin_config_changed'
		AND position(convert_to('"config_key":"action:' || c.name || '"', 'UTF8') IN coalesce(e.body, '')) > 0)
ORDER BY c.n, h.tenant;
GRANT SELECT, INSERT ON tenant_actions TO trail_app;
