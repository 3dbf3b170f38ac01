-- Campaigns and shortlists, kept whole as protobuf bytes; the columns beside them are what
-- queries select on. Every row carries its tenant and every query is scoped by it.
CREATE TABLE campaigns (
    id TEXT PRIMARY KEY,                      -- UUIDv7: sorts by creation time
    tenant TEXT NOT NULL,
    status INTEGER NOT NULL,
    body BLOB NOT NULL,
    create_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL
);
CREATE INDEX campaigns_tenant ON campaigns (tenant, id);

-- AIP-155 request ids of CreateCampaign, per tenant.
CREATE TABLE campaign_requests (
    tenant TEXT NOT NULL,
    request_id TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    PRIMARY KEY (tenant, request_id)
);

CREATE TABLE shortlists (
    id TEXT PRIMARY KEY,
    campaign_id TEXT NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    tenant TEXT NOT NULL,
    body BLOB NOT NULL,
    create_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL
);
CREATE INDEX shortlists_campaign ON shortlists (campaign_id, id);

-- Who is on which shortlist, so erasing a person finds every shortlist that names them.
CREATE TABLE shortlist_members (
    shortlist_id TEXT NOT NULL REFERENCES shortlists (id) ON DELETE CASCADE,
    influencer_id TEXT NOT NULL,
    PRIMARY KEY (shortlist_id, influencer_id)
);
CREATE INDEX shortlist_members_influencer ON shortlist_members (influencer_id);

-- People the brand rejected on a shortlist: every later match of the campaign leaves them out,
-- whatever another shortlist says of them.
CREATE TABLE rejections (
    campaign_id TEXT NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    shortlist_id TEXT NOT NULL,
    influencer_id TEXT NOT NULL,
    PRIMARY KEY (campaign_id, shortlist_id, influencer_id)
);

-- Exclusive contracts in force (the hook contracts will feed): an influencer under one in a
-- category is left out of matches whose brief names that category.
CREATE TABLE exclusivities (
    influencer_id TEXT NOT NULL,
    category TEXT NOT NULL,
    end_time BIGINT NOT NULL,                 -- microseconds since the epoch
    PRIMARY KEY (influencer_id, category)
);
