-- 001: the original tables (DESIGN §3). Idempotent: a database that already holds them keeps its rows.
CREATE TABLE IF NOT EXISTS service_configs (
    service_name VARCHAR(100) PRIMARY KEY,
    config_json  JSONB        NOT NULL,
    version      VARCHAR(20)  NOT NULL DEFAULT '1.0.0',
    created_at   TIMESTAMPTZ  NOT NULL DEFAULT NOW(),
    updated_at   TIMESTAMPTZ  NOT NULL DEFAULT NOW(),
    created_by   VARCHAR(100) DEFAULT 'system',
    updated_by   VARCHAR(100) DEFAULT 'system',
    description  TEXT,
    tags         TEXT[]       DEFAULT '{}',
    active       BOOLEAN      NOT NULL DEFAULT TRUE,
    CONSTRAINT service_name_format CHECK (service_name ~ '^[a-z0-9-]+$'),
    CONSTRAINT config_is_object CHECK (jsonb_typeof(config_json) = 'object')
);

CREATE TABLE IF NOT EXISTS config_audit_log (
    id            BIGSERIAL PRIMARY KEY,
    service_name  VARCHAR(100) NOT NULL,
    config_json   JSONB        NOT NULL,
    version       VARCHAR(20),
    action        VARCHAR(20)  NOT NULL,
    changed_by    VARCHAR(100),
    changed_at    TIMESTAMPTZ  NOT NULL DEFAULT NOW(),
    change_reason TEXT
);

CREATE INDEX IF NOT EXISTS idx_config_audit_service ON config_audit_log (service_name, changed_at DESC);
