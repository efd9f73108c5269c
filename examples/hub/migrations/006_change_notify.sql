-- 006 (issue 13): every committed change of service_configs is announced with NOTIFY, so that every hub
-- replica can serve GET / 304 from memory and drop what a commit elsewhere made old. From a trigger, not
-- from the hub's write path: a direct SQL write, a restore, a seed or another replica's write notifies
-- just the same. PostgreSQL delivers a NOTIFY when (and only if) its transaction commits, in commit order.
-- Idempotent; applies over 001-005. (002 drops triggers it does not know when it is rerun; a rerun runs
-- every later file too, so this one recreates its triggers.)
--
-- Channel `hub_config_changes`, payload (JSON, < 200 bytes):
--   {"schema": <the table's schema>, "service": <name>, "revision": <new revision | null>, "updated_at": <epoch ms | null>}
-- `revision` is null for a hard DELETE; a TRUNCATE sends {"schema": ..., "all": true}. The schema is in the
-- payload because NOTIFY channels are per database, and hubs in other schemas of it must ignore the change.

CREATE OR REPLACE FUNCTION hub_notify_change() RETURNS TRIGGER
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('hub_config_changes', json_build_object(
            'schema', TG_TABLE_SCHEMA, 'service', OLD.service_name, 'revision', NULL, 'updated_at', NULL)::text);
    ELSE
        PERFORM pg_notify('hub_config_changes', json_build_object(
            'schema', TG_TABLE_SCHEMA, 'service', NEW.service_name, 'revision', NEW.revision,
            'updated_at', hub_epoch_ms(NEW.updated_at))::text);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION hub_notify_truncate() RETURNS TRIGGER
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('hub_config_changes', json_build_object('schema', TG_TABLE_SCHEMA, 'all', TRUE)::text);
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS hub_notify_change ON service_configs;
CREATE TRIGGER hub_notify_change AFTER INSERT OR UPDATE OR DELETE ON service_configs
    FOR EACH ROW EXECUTE FUNCTION hub_notify_change();

DROP TRIGGER IF EXISTS hub_notify_truncate ON service_configs;
CREATE TRIGGER hub_notify_truncate AFTER TRUNCATE ON service_configs
    FOR EACH STATEMENT EXECUTE FUNCTION hub_notify_truncate();
