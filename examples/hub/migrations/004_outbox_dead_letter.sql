-- 004 (issue 10): outbox attempts and dead letters, updated_at monotonic with revision, rollback
-- targets chosen in one place, rollback_config's "service not found" check. Idempotent; applies over
-- 001-003 and over the original schema (after them).

-- A row the relay could not publish is retried on later runs (attempts, last_error); after the relay's
-- limit it is dead-lettered (dead_at): the rows behind it go out, /health reports it.
ALTER TABLE config_outbox ADD COLUMN IF NOT EXISTS attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE config_outbox ADD COLUMN IF NOT EXISTS last_error TEXT;
ALTER TABLE config_outbox ADD COLUMN IF NOT EXISTS dead_at TIMESTAMPTZ;
DROP INDEX IF EXISTS idx_config_outbox_pending;
CREATE INDEX IF NOT EXISTS idx_config_outbox_live ON config_outbox (id) WHERE published_at IS NULL AND dead_at IS NULL;
CREATE INDEX IF NOT EXISTS idx_config_outbox_dead ON config_outbox (dead_at) WHERE dead_at IS NOT NULL;

-- updated_at grows with the revision. NOW() is the start of the transaction: a writer that began
-- before another but took the row lock after it wrote an older updated_at on a newer revision.
-- clock_timestamp() is read once the row is locked; +1 ms keeps epoch-ms values strictly increasing
-- even within one millisecond or when the clock steps back.
CREATE OR REPLACE FUNCTION hub_before_write() RETURNS TRIGGER
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.revision := COALESCE(
            (SELECT max(a.revision) FROM config_audit_log a WHERE a.service_name = NEW.service_name), 0) + 1;
        NEW.created_at := COALESCE(NEW.created_at, NOW());
        NEW.updated_at := GREATEST(clock_timestamp(),
            (SELECT max(a.changed_at) FROM config_audit_log a WHERE a.service_name = NEW.service_name)
                + interval '1 millisecond');
    ELSE
        NEW.revision := OLD.revision + 1;
        NEW.updated_at := GREATEST(clock_timestamp(), OLD.updated_at + interval '1 millisecond');
    END IF;
    RETURN NEW;
END $$;

-- The audit row a rollback restores: by revision, that revision (a 'deleted' row included: its config
-- is the one that was deleted, so restoring it undoes the delete); by version, the newest row with that
-- label whose config differs from what is served (the newest one usually *is* what is served, and
-- restoring it changed nothing). Used by rollback_config() and by the hub's check before it.
CREATE OR REPLACE FUNCTION hub_rollback_target(p_service_name TEXT, p_revision BIGINT, p_version TEXT)
RETURNS TABLE (config_json JSONB, version VARCHAR, revision BIGINT)
LANGUAGE sql STABLE AS $$
    SELECT a.config_json, a.version, a.revision
    FROM config_audit_log a
    WHERE a.service_name = p_service_name
      AND ((p_revision IS NOT NULL AND a.revision = p_revision)
        OR (p_revision IS NULL AND a.version = p_version AND a.action <> 'deleted'
            AND a.config_json IS DISTINCT FROM (
                SELECT s.config_json FROM service_configs s
                WHERE s.service_name = p_service_name AND s.active IS NOT FALSE)))
    ORDER BY a.id DESC
    LIMIT 1
$$;

-- As in 002, but the target comes from hub_rollback_target() and the "not found" check reads FOUND
-- right after the UPDATE (the PERFORM in between reset it, so the check never fired).
CREATE OR REPLACE FUNCTION rollback_config(p_service_name TEXT, p_revision BIGINT, p_version TEXT,
                                           p_changed_by TEXT, p_change_reason TEXT)
RETURNS SETOF service_configs
LANGUAGE plpgsql AS $$
DECLARE
    v_target RECORD;
    v_updated BOOLEAN;
BEGIN
    SELECT t.config_json, t.version INTO v_target FROM hub_rollback_target(p_service_name, p_revision, p_version) t;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no such revision or version for %', p_service_name USING ERRCODE = 'P0002';
    END IF;
    PERFORM set_config('hub.action', 'rollback', true);
    PERFORM set_config('hub.change_reason', COALESCE(p_change_reason, ''), true);
    RETURN QUERY
        UPDATE service_configs s
        SET config_json = v_target.config_json, version = COALESCE(v_target.version, s.version),
            updated_by = p_changed_by, active = TRUE
        WHERE s.service_name = p_service_name
        RETURNING s.*;
    v_updated := FOUND;
    PERFORM set_config('hub.action', '', true);
    IF NOT v_updated THEN
        RAISE EXCEPTION 'service % not found', p_service_name USING ERRCODE = 'P0002';
    END IF;
END $$;
