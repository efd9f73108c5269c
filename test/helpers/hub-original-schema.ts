/**
 * The original Python hub's schema (`03-create-service-configs.sql`), reconstructed from DESIGN §3 and
 * the progress report: the tables, a timestamp trigger, an audit trigger, get_config_history() and a
 * rollback_config() that writes two audit rows per rollback (its own insert plus the update trigger).
 * Migration tests create this first, with rows, and then apply the hub's migrations over it.
 */
export const ORIGINAL_SCHEMA_SQL = `
CREATE TABLE service_configs (
    service_name VARCHAR(100) PRIMARY KEY CHECK (service_name ~ '^[a-z0-9-]+$'),
    config_json  JSONB NOT NULL CHECK (jsonb_typeof(config_json) = 'object'),
    version      VARCHAR(20) NOT NULL DEFAULT '1.0.0',
    created_at   TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at   TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    created_by   VARCHAR(100) DEFAULT 'system',
    updated_by   VARCHAR(100) DEFAULT 'system',
    description  TEXT,
    tags         TEXT[],
    active       BOOLEAN DEFAULT TRUE
);

CREATE TABLE config_audit_log (
    id            SERIAL PRIMARY KEY,
    service_name  VARCHAR(100) NOT NULL,
    config_json   JSONB NOT NULL,
    version       VARCHAR(20),
    action        VARCHAR(20) NOT NULL CHECK (action IN ('created', 'updated', 'deleted', 'rollback')),
    changed_by    VARCHAR(100),
    changed_at    TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    change_reason TEXT
);
CREATE INDEX idx_audit_service_name ON config_audit_log (service_name);

CREATE OR REPLACE FUNCTION update_service_configs_updated_at() RETURNS TRIGGER AS $$
BEGIN
    NEW.updated_at = NOW();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER trigger_update_service_configs_updated_at
    BEFORE UPDATE ON service_configs
    FOR EACH ROW EXECUTE FUNCTION update_service_configs_updated_at();

CREATE OR REPLACE FUNCTION log_config_change() RETURNS TRIGGER AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO config_audit_log (service_name, config_json, version, action, changed_by)
        VALUES (NEW.service_name, NEW.config_json, NEW.version, 'created', NEW.created_by);
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO config_audit_log (service_name, config_json, version, action, changed_by)
        VALUES (NEW.service_name, NEW.config_json, NEW.version, 'updated', NEW.updated_by);
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER trigger_log_config_change
    AFTER INSERT OR UPDATE ON service_configs
    FOR EACH ROW EXECUTE FUNCTION log_config_change();

CREATE OR REPLACE FUNCTION get_config_history(p_service_name VARCHAR, p_limit INTEGER DEFAULT 10)
RETURNS TABLE (version VARCHAR, action VARCHAR, changed_by VARCHAR, changed_at TIMESTAMPTZ, config_json JSONB) AS $$
BEGIN
    RETURN QUERY SELECT a.version, a.action, a.changed_by, a.changed_at, a.config_json
    FROM config_audit_log a WHERE a.service_name = p_service_name
    ORDER BY a.changed_at DESC LIMIT p_limit;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION rollback_config(p_service_name VARCHAR, p_version VARCHAR, p_changed_by VARCHAR DEFAULT 'system')
RETURNS BOOLEAN AS $$
DECLARE v_config JSONB;
BEGIN
    SELECT config_json INTO v_config FROM config_audit_log
    WHERE service_name = p_service_name AND version = p_version ORDER BY changed_at DESC LIMIT 1;
    IF v_config IS NULL THEN RETURN FALSE; END IF;
    UPDATE service_configs SET config_json = v_config, version = p_version, updated_by = p_changed_by
    WHERE service_name = p_service_name;
    INSERT INTO config_audit_log (service_name, config_json, version, action, changed_by, change_reason)
    VALUES (p_service_name, v_config, p_version, 'rollback', p_changed_by, 'Rollback to version ' || p_version);
    RETURN TRUE;
END;
$$ LANGUAGE plpgsql;

INSERT INTO service_configs (service_name, config_json, version, description, tags)
VALUES ('legacy-service', '{"operational": {"batch_size": 100}}', '1.0.0', 'from the original hub', ARRAY['legacy']);
UPDATE service_configs SET config_json = '{"operational": {"batch_size": 150}}', version = '1.1.0', updated_by = 'api-user'
WHERE service_name = 'legacy-service';
`;
