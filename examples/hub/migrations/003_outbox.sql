-- 003: the transactional outbox (written by hub_after_write in the transaction of the change) and
-- the triggers. A relay publishes pending rows with FOR UPDATE SKIP LOCKED, so two replicas never
-- publish one row at the same time.
CREATE TABLE IF NOT EXISTS config_outbox (
    id           BIGSERIAL PRIMARY KEY,
    service_name VARCHAR(100) NOT NULL,
    revision     BIGINT       NOT NULL,
    action       VARCHAR(20)  NOT NULL,
    payload      JSONB        NOT NULL,
    created_at   TIMESTAMPTZ  NOT NULL DEFAULT NOW(),
    published_at TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS idx_config_outbox_pending ON config_outbox (id) WHERE published_at IS NULL;
CREATE INDEX IF NOT EXISTS idx_config_outbox_service_revision ON config_outbox (service_name, revision);

CREATE OR REPLACE TRIGGER hub_before_write
    BEFORE INSERT OR UPDATE ON service_configs
    FOR EACH ROW EXECUTE FUNCTION hub_before_write();
CREATE OR REPLACE TRIGGER hub_after_write
    AFTER INSERT OR UPDATE ON service_configs
    FOR EACH ROW EXECUTE FUNCTION hub_after_write();
CREATE OR REPLACE TRIGGER hub_after_delete
    AFTER DELETE ON service_configs
    FOR EACH ROW EXECUTE FUNCTION hub_after_delete();

-- The audit trail is append-only.
CREATE OR REPLACE FUNCTION hub_audit_append_only() RETURNS TRIGGER
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'config_audit_log is append-only' USING ERRCODE = '42501';
END $$;
CREATE OR REPLACE TRIGGER hub_audit_append_only
    BEFORE UPDATE OR DELETE ON config_audit_log
    FOR EACH ROW EXECUTE FUNCTION hub_audit_append_only();
CREATE OR REPLACE TRIGGER hub_audit_no_truncate
    BEFORE TRUNCATE ON config_audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION hub_audit_append_only();
