-- The influencer catalogue. The profile is kept whole as protobuf bytes; the columns beside it
-- are copies that List filters and sorts on.
CREATE TABLE influencers (
    id TEXT PRIMARY KEY,                      -- UUIDv7: sorts by creation time
    display_name TEXT NOT NULL,
    country_code TEXT NOT NULL DEFAULT '',
    region_key TEXT NOT NULL DEFAULT '',      -- lower case, for case-insensitive equality
    city_key TEXT NOT NULL DEFAULT '',
    niches TEXT NOT NULL DEFAULT '',          -- ",fitness,vegan-food,"
    languages TEXT NOT NULL DEFAULT '',       -- ",en-US,es,"
    status INTEGER NOT NULL,
    followers BIGINT NOT NULL DEFAULT 0,      -- of the largest account
    engagement_rate DOUBLE PRECISION NOT NULL DEFAULT 0,
    profile BYTEA NOT NULL,
    create_time BIGINT NOT NULL,              -- microseconds since the epoch
    update_time BIGINT NOT NULL
);
CREATE INDEX influencers_country ON influencers (country_code, id);
CREATE INDEX influencers_city ON influencers (city_key, id);
CREATE INDEX influencers_followers ON influencers (followers, id);
CREATE INDEX influencers_engagement ON influencers (engagement_rate, id);
CREATE INDEX influencers_display_name ON influencers (display_name, id);

-- One row per social account; (platform, handle) is unique across the catalogue.
CREATE TABLE accounts (
    platform INTEGER NOT NULL,
    handle TEXT NOT NULL,
    influencer_id TEXT NOT NULL REFERENCES influencers (id) ON DELETE CASCADE,
    followers BIGINT NOT NULL DEFAULT 0,
    engagement_rate DOUBLE PRECISION NOT NULL DEFAULT 0,
    latest_time BIGINT NOT NULL DEFAULT 0,
    latest BYTEA,                             -- newest MetricsSnapshot
    PRIMARY KEY (platform, handle)
);
CREATE INDEX accounts_influencer ON accounts (influencer_id);
CREATE INDEX accounts_handle ON accounts (handle);

-- Follower history: every snapshot recorded.
CREATE TABLE metrics_snapshots (
    id TEXT PRIMARY KEY,
    influencer_id TEXT NOT NULL REFERENCES influencers (id) ON DELETE CASCADE,
    platform INTEGER NOT NULL,
    handle TEXT NOT NULL,
    observe_time BIGINT NOT NULL,
    snapshot BYTEA NOT NULL
);
CREATE INDEX metrics_snapshots_history ON metrics_snapshots (influencer_id, observe_time DESC, id DESC);

-- AIP-155 request ids of CreateInfluencer.
CREATE TABLE create_requests (
    request_id TEXT PRIMARY KEY,
    influencer_id TEXT NOT NULL REFERENCES influencers (id) ON DELETE CASCADE
);
