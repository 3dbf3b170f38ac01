-- Webhook endpoints, per tenant. event_types is ',a,b,' (empty: every type). The secret signs
-- every delivery; after a rotation previous_secret signs beside it until its expire time.
-- failing_since is the first failed attempt since the last success (the disable rule).
CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    url TEXT NOT NULL,
    description TEXT NOT NULL,
    event_types TEXT NOT NULL,
    disabled BIGINT NOT NULL,
    disabled_reason TEXT NOT NULL,
    disable_time BIGINT,
    secret TEXT NOT NULL,
    previous_secret TEXT,
    previous_secret_expire_time BIGINT,
    failing_since BIGINT,
    create_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL
);
CREATE INDEX webhook_endpoints_by_tenant ON webhook_endpoints (tenant, id);

-- One event for one endpoint: its body rendered once, its state (1 pending, 2 succeeded,
-- 3 failed), the attempts of its current schedule and when the next is due. A worker claims
-- due rows with a lease, so replicas never send one twice at once.
CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    body BLOB NOT NULL,
    state BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_time BIGINT,
    lease_until BIGINT,
    create_time BIGINT NOT NULL,
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_time) WHERE state = 1;

-- Every POST of a delivery, replays included.
CREATE TABLE webhook_attempts (
    delivery_id TEXT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    attempt_time BIGINT NOT NULL,
    status_code BIGINT NOT NULL,
    error TEXT NOT NULL,
    duration_ms BIGINT NOT NULL,
    PRIMARY KEY (delivery_id, seq)
);
