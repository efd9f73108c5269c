-- 005 (issue 11, docs/fleet.md): the fleet. Instances that report (written behind, batched, by every
-- replica; expired rows are filtered on read and deleted now and then), the consumer schemas they
-- uploaded (content-addressed: the hash is the key), and the override a forced write records in its
-- audit row. Idempotent; applies over 001-004 and over the original schema (after them).

CREATE TABLE IF NOT EXISTS config_instances (
    service_name   VARCHAR(100) NOT NULL,
    instance_id    VARCHAR(64)  NOT NULL,
    host           VARCHAR(255) NOT NULL,
    pid            BIGINT       NOT NULL,
    client_version VARCHAR(40)  NOT NULL,
    revision       BIGINT,
    source         VARCHAR(20),
    stale          BOOLEAN      NOT NULL DEFAULT FALSE,
    last_error     VARCHAR(40),
    schema_hash    CHAR(64),
    last_seen      TIMESTAMPTZ  NOT NULL,
    expires_at     TIMESTAMPTZ  NOT NULL,
    PRIMARY KEY (service_name, instance_id)
);
CREATE INDEX IF NOT EXISTS idx_config_instances_live ON config_instances (service_name, expires_at);

CREATE TABLE IF NOT EXISTS config_schemas (
    hash       CHAR(64)    PRIMARY KEY,
    body       JSONB       NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    CONSTRAINT config_schema_hash_format CHECK (hash ~ '^[0-9a-f]{64}$')
);

-- A write forced past its consumers' schemas (?force=true) records what it overrode.
ALTER TABLE config_audit_log ADD COLUMN IF NOT EXISTS override JSONB;

-- As in 002, and the override: the transaction-local setting hub.override (JSON, set by the hub in the
-- write's transaction before the change) goes into the audit row.
CREATE OR REPLACE FUNCTION hub_after_write() RETURNS TRIGGER
LANGUAGE plpgsql AS $$
DECLARE
    v_action TEXT := NULLIF(current_setting('hub.action', true), '');
    v_reason TEXT := NULLIF(current_setting('hub.change_reason', true), '');
    v_override JSONB := NULLIF(current_setting('hub.override', true), '')::JSONB;
BEGIN
    IF v_action IS NULL THEN
        v_action := CASE
            WHEN TG_OP = 'INSERT' THEN 'created'
            WHEN OLD.active AND NOT NEW.active THEN 'deleted'
            WHEN NOT OLD.active AND NEW.active THEN 'created'
            ELSE 'updated' END;
    END IF;
    INSERT INTO config_audit_log (service_name, config_json, version, action, changed_by, changed_at, change_reason, revision, override)
    VALUES (NEW.service_name, NEW.config_json, NEW.version, v_action, NEW.updated_by, NEW.updated_at, v_reason, NEW.revision, v_override);
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
