-- Payouts: one row per part of a contract's compensation (a deliverable's cash, a gift card, a
-- product line). `body` is the Payout as it was made; the columns hold what changes since.
CREATE TABLE payouts (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    contract_id TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    influencer_id TEXT NOT NULL,
    part TEXT NOT NULL,
    deliverable INTEGER NOT NULL,
    state INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    currency TEXT NOT NULL,
    amount BIGINT NOT NULL,
    -- The provider batch it was last submitted in, so a restart resubmits the same batch.
    batch TEXT NOT NULL DEFAULT '',
    -- A submission in flight is leased; a crashed one is taken up again after the lease.
    lease_until BIGINT NOT NULL DEFAULT 0,
    first_attempt BIGINT NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    method INTEGER NOT NULL DEFAULT 0,
    provider_reference TEXT NOT NULL DEFAULT '',
    -- Why it is blocked or failed, or what the carrier said last.
    reason TEXT NOT NULL DEFAULT '',
    approve_time BIGINT NOT NULL DEFAULT 0,
    submit_time BIGINT NOT NULL DEFAULT 0,
    paid_time BIGINT NOT NULL DEFAULT 0,
    -- Carrier, tracking code and status of a product's shipment (a Shipment message).
    shipment BYTEA,
    tracking_code TEXT NOT NULL DEFAULT '',
    body BYTEA NOT NULL,
    update_time BIGINT NOT NULL,
    UNIQUE (tenant, contract_id, part)
);
CREATE INDEX payouts_by_campaign ON payouts (tenant, campaign_id, id);
CREATE INDEX payouts_by_influencer ON payouts (influencer_id, id);
CREATE INDEX payouts_by_state ON payouts (state, lease_until);
CREATE INDEX payouts_by_tracking ON payouts (tracking_code);

-- Payee profiles, one per influencer across tenants. `profile` is the Payee message without its
-- PII; `sealed` is the PII (payment destinations, address, tax id), AES-256-GCM sealed.
CREATE TABLE payees (
    influencer_id TEXT PRIMARY KEY,
    profile BYTEA NOT NULL,
    sealed TEXT NOT NULL,
    update_time BIGINT NOT NULL
);
