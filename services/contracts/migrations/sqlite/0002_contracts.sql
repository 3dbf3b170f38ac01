-- Offers, contracts and deliverables, kept whole as protobuf bytes; the columns beside them are
-- what queries select on. Every row carries its tenant (the brand) and its influencer: a brand's
-- queries are scoped by tenant, an influencer's by influencer.
CREATE TABLE offer_templates (
    tenant TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    body BLOB NOT NULL,
    update_time BIGINT NOT NULL,
    PRIMARY KEY (tenant, campaign_id)
);

CREATE TABLE offers (
    id TEXT PRIMARY KEY,                      -- UUIDv7: sorts by creation time
    tenant TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    influencer_id TEXT NOT NULL,
    state INTEGER NOT NULL,
    body BLOB NOT NULL,
    update_time BIGINT NOT NULL,
    expire_time BIGINT NOT NULL,               -- microseconds; open offers expire then
    reminded INTEGER NOT NULL DEFAULT 0        -- 1 once the expiry reminder went out
);
CREATE INDEX offers_due ON offers (campaign_id, state, expire_time);
CREATE INDEX offers_tenant ON offers (tenant, id);
CREATE INDEX offers_influencer ON offers (influencer_id, id);
-- One open or accepted offer per person and campaign (1 = OPEN, 2 = ACCEPTED).
CREATE UNIQUE INDEX offers_live ON offers (tenant, campaign_id, influencer_id) WHERE state IN (1, 2);

CREATE TABLE contracts (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    influencer_id TEXT NOT NULL,
    offer_id TEXT NOT NULL UNIQUE,
    state INTEGER NOT NULL,
    body BLOB NOT NULL,
    update_time BIGINT NOT NULL
);
CREATE INDEX contracts_tenant ON contracts (tenant, id);
CREATE INDEX contracts_influencer ON contracts (influencer_id, id);

CREATE TABLE deliverables (
    contract_id TEXT NOT NULL REFERENCES contracts (id) ON DELETE CASCADE,
    n INTEGER NOT NULL,
    state INTEGER NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (contract_id, n)
);

-- Accepted members of matching's shortlists, as its ShortlistMemberDecided events said, for
-- CreateOffers from a shortlist. A later rejection removes the member.
CREATE TABLE shortlist_members (
    tenant TEXT NOT NULL,
    shortlist TEXT NOT NULL,
    influencer_id TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    segment TEXT NOT NULL,
    PRIMARY KEY (tenant, shortlist, influencer_id)
);
