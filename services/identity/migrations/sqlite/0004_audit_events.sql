-- The audit log: security-relevant acts, appended in the transaction of the act itself.
-- Append-only: triggers refuse every change and removal.
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

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
