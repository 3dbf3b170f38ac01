-- The audit log: security-relevant acts, appended in the transaction of the act itself.
-- Append-only: a trigger refuses every change and removal.
CREATE TABLE audit_events (
    id TEXT PRIMARY KEY,
    event_time BIGINT NOT NULL,
    actor TEXT NOT NULL,
    tenant TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    source TEXT NOT NULL
);
CREATE INDEX audit_events_by_tenant ON audit_events (tenant, id);

CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
