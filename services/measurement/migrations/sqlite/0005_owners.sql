-- Who owns each campaign and contract measurement has heard of, so that a tenant's writes
-- cannot land under another tenant's names (store.rs, `claim`). The owning service's events
-- say so (announced = 1: matching's campaigns, contracts' contracts); a name no event has
-- named yet belongs to the first tenant that writes under it (announced = 0), until an event
-- says otherwise.
CREATE TABLE owners (
    -- 'campaign' or 'contract'.
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    announced BIGINT NOT NULL,
    PRIMARY KEY (kind, id)
);
INSERT OR IGNORE INTO owners (kind, id, tenant, announced)
    SELECT DISTINCT 'campaign', campaign_id, tenant, 1 FROM report_members;
INSERT OR IGNORE INTO owners (kind, id, tenant, announced)
    SELECT DISTINCT 'campaign', campaign_id, tenant, 0 FROM links;
INSERT OR IGNORE INTO owners (kind, id, tenant, announced)
    SELECT DISTINCT 'campaign', campaign_id, tenant, 0 FROM promo_codes;
INSERT OR IGNORE INTO owners (kind, id, tenant, announced)
    SELECT DISTINCT 'campaign', campaign_id, tenant, 0 FROM campaign_settings;
INSERT OR IGNORE INTO owners (kind, id, tenant, announced)
    SELECT DISTINCT 'contract', contract_id, tenant, 1 FROM duties;

-- Leak detection's country rule (src/domain/leaks.rs): each order's country, and per promo
-- code the redemptions by country, bumped with the conversions.
ALTER TABLE conversions ADD COLUMN country TEXT NOT NULL DEFAULT '';
CREATE TABLE promo_code_countries (
    tenant TEXT NOT NULL,
    promo_code_id TEXT NOT NULL,
    country TEXT NOT NULL,
    redemptions BIGINT NOT NULL,
    PRIMARY KEY (tenant, promo_code_id, country)
);

-- Campaigns whose ReportReady was published (once each).
CREATE TABLE reports_ready (
    tenant TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    ready_time BIGINT NOT NULL,
    PRIMARY KEY (tenant, campaign_id)
);
