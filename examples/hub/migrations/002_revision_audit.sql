-- 002: per-service revision, audit rows written by triggers, exactly one audit row per change
-- (a rollback included), get_config_history() and rollback_config(). Idempotent, and applies over the
-- original schema: columns are added IF NOT EXISTS, the original triggers and function overloads are
-- replaced (the original rollback_config wrote two audit rows per rollback).

ALTER TABLE service_configs ADD COLUMN IF NOT EXISTS revision BIGINT NOT NULL DEFAULT 1;
ALTER TABLE service_configs ADD COLUMN IF NOT EXISTS active BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE config_audit_log ADD COLUMN IF NOT EXISTS revision BIGINT;

-- One audit row per revision of a service (rows from before this migration have no revision).
CREATE UNIQUE INDEX IF NOT EXISTS uq_config_audit_service_revision
    ON config_audit_log (service_name, revision) WHERE revision IS NOT NULL;

-- The triggers on service_configs are ours: drop any other (the original timestamp and audit triggers),
-- and every overload of the helper functions whose signature is not ours.
DO $$
DECLARE r RECORD;
BEGIN
    FOR r IN
        SELECT t.tgname FROM pg_trigger t
        WHERE t.tgrelid = 'service_configs'::regclass AND NOT t.tgisinternal
          AND t.tgname NOT IN ('hub_before_write', 'hub_after_write', 'hub_after_delete')
    LOOP
        EXECUTE format('DROP TRIGGER %I ON service_configs', r.tgname);
    END LOOP;
    FOR r IN
        SELECT p.oid::regprocedure AS sig FROM pg_proc p
        WHERE p.pronamespace = current_schema()::regnamespace
          AND ((p.proname = 'get_config_history' AND oidvectortypes(p.proargtypes) <> 'text, integer')
            OR (p.proname = 'rollback_config' AND oidvectortypes(p.proargtypes) <> 'text, bigint, text, text, text'))
    LOOP
        EXECUTE format('DROP FUNCTION %s', r.sig);
    END LOOP;
END $$;

CREATE OR REPLACE FUNCTION hub_epoch_ms(ts TIMESTAMPTZ) RETURNS BIGINT
LANGUAGE sql IMMUTABLE AS $$ SELECT floor(extract(epoch FROM ts) * 1000)::BIGINT $$;

-- BEFORE: the revision grows by one on every change, whatever the write path.
CREATE OR REPLACE FUNCTION hub_before_write() RETURNS TRIGGER
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.revision := COALESCE(
            (SELECT max(a.revision) FROM config_audit_log a WHERE a.service_name = NEW.service_name), 0) + 1;
        NEW.created_at := COALESCE(NEW.created_at, NOW());
        NEW.updated_at := NOW();
    ELSE
        NEW.revision := OLD.revision + 1;
        NEW.updated_at := NOW();
    END IF;
    RETURN NEW;
END $$;

-- AFTER: one audit row and one outbox row, in the transaction of the change.
-- The action is 'rollback' when rollback_config() says so (transaction-local setting hub.action).
CREATE OR REPLACE FUNCTION hub_after_write() RETURNS TRIGGER
LANGUAGE plpgsql AS $$
DECLARE
    v_action TEXT := NULLIF(current_setting('hub.action', true), '');
    v_reason TEXT := NULLIF(current_setting('hub.change_reason', true), '');
BEGIN
    IF v_action IS NULL THEN
        v_action := CASE
            WHEN TG_OP = 'INSERT' THEN 'created'
            WHEN OLD.active AND NOT NEW.active THEN 'deleted'
            WHEN NOT OLD.active AND NEW.active THEN 'created'
            ELSE 'updated' END;
    END IF;
    INSERT INTO config_audit_log (service_name, config_json, version, action, changed_by, changed_at, change_reason, revision)
    VALUES (NEW.service_name, NEW.config_json, NEW.version, v_action, NEW.updated_by, NEW.updated_at, v_reason, NEW.revision);
    INSERT INTO config_outbox (service_name, revision, action, payload)
    VALUES (NEW.service_name, NEW.revision, v_action, jsonb_build_object(
        'service_name', NEW.service_name,
        'config', NEW.config_json,
        'version', NEW.version,
        'updated_at', hub_epoch_ms(NEW.updated_at),
        'updated_by', NEW.updated_by,
        'revision', NEW.revision,
        'action', v_action));
    RETURN NEW;
END $$;

-- A hard DELETE (not done by the hub, which deletes softly) is audited too.
CREATE OR REPLACE FUNCTION hub_after_delete() RETURNS TRIGGER
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO config_audit_log (service_name, config_json, version, action, changed_by, changed_at, change_reason, revision)
    VALUES (OLD.service_name, OLD.config_json, OLD.version, 'deleted', COALESCE(current_user::TEXT, 'system'), NOW(),
            NULLIF(current_setting('hub.change_reason', true), ''), OLD.revision + 1);
    RETURN OLD;
END $$;

CREATE OR REPLACE FUNCTION get_config_history(p_service_name TEXT, p_limit INTEGER DEFAULT 10)
RETURNS TABLE (id BIGINT, version VARCHAR, action VARCHAR, changed_by VARCHAR, changed_at TIMESTAMPTZ,
               change_reason TEXT, config_json JSONB, revision BIGINT)
LANGUAGE sql STABLE AS $$
    SELECT a.id, a.version, a.action, a.changed_by, a.changed_at, a.change_reason, a.config_json, a.revision
    FROM config_audit_log a
    WHERE a.service_name = p_service_name
    ORDER BY a.id DESC
    LIMIT LEAST(GREATEST(COALESCE(p_limit, 10), 1), 100)
$$;

-- Roll a service back to the config of an earlier revision (or, when p_revision is NULL, the newest
-- audit row with version p_version). One UPDATE, so exactly one audit row, with action 'rollback'.
CREATE OR REPLACE FUNCTION rollback_config(p_service_name TEXT, p_revision BIGINT, p_version TEXT,
                                           p_changed_by TEXT, p_change_reason TEXT)
RETURNS SETOF service_configs
LANGUAGE plpgsql AS $$
DECLARE
    v_target RECORD;
BEGIN
    SELECT a.config_json, a.version INTO v_target
    FROM config_audit_log a
    WHERE a.service_name = p_service_name AND a.action <> 'deleted'
      AND ((p_revision IS NOT NULL AND a.revision = p_revision)
        OR (p_revision IS NULL AND a.version = p_version))
    ORDER BY a.id DESC
    LIMIT 1;
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
    PERFORM set_config('hub.action', '', true);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'service % not found', p_service_name USING ERRCODE = 'P0002';
    END IF;
END $$;
