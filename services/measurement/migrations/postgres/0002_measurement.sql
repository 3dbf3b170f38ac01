-- Measurement's tables on PostgreSQL. Clicks, conversions and refunds are append-only events
-- partitioned by UTC day (`day`: days since 1970-01-01); the service creates each day's
-- partition before its first write (store.rs, `ensure_partitions`), and dropping an old
-- partition is how raw events are retired. A unique index of a partitioned table must include
-- the partition key, so the keys that make an order, a refund or a webhook count once live in
-- `dedup_keys`, written in the same transaction as the event. Reports read the rollups, which
-- the same writes keep, never the raw events.

CREATE TABLE campaign_settings (
    tenant TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    destination_url TEXT NOT NULL,
    attribution_window_hours BIGINT NOT NULL,
    audience_country TEXT NOT NULL,
    update_time BIGINT NOT NULL,
    PRIMARY KEY (tenant, campaign_id)
);

CREATE TABLE links (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    code TEXT NOT NULL UNIQUE,
    campaign_id TEXT NOT NULL,
    influencer_id TEXT NOT NULL,
    -- "contracts/{c}/deliverables/{n}", or '' for a link of the influencer's own.
    deliverable TEXT NOT NULL,
    segment TEXT NOT NULL,
    -- '' follows the campaign's destination (campaign_settings).
    destination_url TEXT NOT NULL,
    utm_source TEXT NOT NULL,
    utm_medium TEXT NOT NULL,
    utm_campaign TEXT NOT NULL,
    utm_content TEXT NOT NULL,
    clicks BIGINT NOT NULL DEFAULT 0,
    create_time BIGINT NOT NULL
);
CREATE UNIQUE INDEX links_one_per_deliverable ON links (tenant, influencer_id, deliverable) WHERE deliverable <> '';
CREATE INDEX links_by_tenant ON links (tenant, id);

CREATE TABLE promo_codes (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    code TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    influencer_id TEXT NOT NULL,
    contract_id TEXT NOT NULL,
    segment TEXT NOT NULL,
    single_use BIGINT NOT NULL,
    redemptions BIGINT NOT NULL DEFAULT 0,
    create_time BIGINT NOT NULL
);
CREATE UNIQUE INDEX promo_codes_code ON promo_codes (tenant, code);

CREATE TABLE clicks (
    day BIGINT NOT NULL,
    id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    link_id TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    influencer_id TEXT NOT NULL,
    click_time BIGINT NOT NULL,
    country TEXT NOT NULL,
    device BIGINT NOT NULL,
    referrer TEXT NOT NULL,
    bot BIGINT NOT NULL,
    ip_hash TEXT NOT NULL,
    PRIMARY KEY (day, id)
) PARTITION BY RANGE (day);
CREATE INDEX clicks_by_link ON clicks (link_id, click_time);

CREATE TABLE conversions (
    day BIGINT NOT NULL,
    id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    order_id TEXT NOT NULL,
    source BIGINT NOT NULL,
    shop_domain TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    influencer_id TEXT NOT NULL,
    segment TEXT NOT NULL,
    method BIGINT NOT NULL,
    reason TEXT NOT NULL,
    promo_code_id TEXT NOT NULL,
    click_id TEXT NOT NULL,
    link_id TEXT NOT NULL,
    currency TEXT NOT NULL,
    revenue_minor BIGINT NOT NULL,
    order_time BIGINT NOT NULL,
    record_time BIGINT NOT NULL,
    PRIMARY KEY (day, id)
) PARTITION BY RANGE (day);
CREATE INDEX conversions_by_tenant ON conversions (tenant, id);

CREATE TABLE refunds (
    day BIGINT NOT NULL,
    id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    conversion_id TEXT NOT NULL,
    refund_id TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    record_time BIGINT NOT NULL,
    PRIMARY KEY (day, id)
) PARTITION BY RANGE (day);
CREATE INDEX refunds_by_conversion ON refunds (conversion_id);

-- What makes an event count once: (tenant, 'order', order id) -> the conversion, and
-- 'refund', 'shopify-webhook', 'shopify-event' keys. Not partitioned, so it is unique.
CREATE TABLE dedup_keys (
    tenant TEXT NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    -- The event it made: "conversions/{id}" for an order.
    target TEXT NOT NULL,
    record_time BIGINT NOT NULL,
    PRIMARY KEY (tenant, kind, key)
);

-- Per influencer and day, kept by the click flush and the conversion writes.
CREATE TABLE click_rollups (
    tenant TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    influencer_id TEXT NOT NULL,
    day BIGINT NOT NULL,
    clicks BIGINT NOT NULL,
    bot_clicks BIGINT NOT NULL,
    PRIMARY KEY (tenant, campaign_id, influencer_id, day)
);

CREATE TABLE conversion_rollups (
    tenant TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    influencer_id TEXT NOT NULL,
    day BIGINT NOT NULL,
    currency TEXT NOT NULL,
    conversions BIGINT NOT NULL,
    redemptions BIGINT NOT NULL,
    revenue_minor BIGINT NOT NULL,
    refunded_minor BIGINT NOT NULL,
    PRIMARY KEY (tenant, campaign_id, influencer_id, day, currency)
);

-- The day keys the IP hash is made with; rotated (made and destroyed) by a daily timer.
CREATE TABLE ip_keys (
    day BIGINT PRIMARY KEY,
    key_bytes BYTEA NOT NULL
);

CREATE TABLE post_metrics (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    deliverable TEXT NOT NULL,
    observe_time BIGINT NOT NULL,
    -- PostMetricsSnapshot, protobuf.
    body BYTEA NOT NULL,
    record_time BIGINT NOT NULL
);
CREATE INDEX post_metrics_by_deliverable ON post_metrics (tenant, deliverable, observe_time);

CREATE TABLE duties (
    tenant TEXT NOT NULL,
    deliverable TEXT NOT NULL,
    contract_id TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    influencer_id TEXT NOT NULL,
    -- Comma-separated metric names.
    metrics TEXT NOT NULL,
    due_time BIGINT NOT NULL,
    met_time BIGINT,
    PRIMARY KEY (tenant, deliverable)
);
