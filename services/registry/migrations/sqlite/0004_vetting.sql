-- Vetting. Per account, the newest samples' aggregates: the sampled followers' and commenters'
-- own data is never kept, only the counts the report needs.
CREATE TABLE vetting_inputs (
    platform INTEGER NOT NULL,
    handle TEXT NOT NULL,
    influencer_id TEXT NOT NULL REFERENCES influencers (id) ON DELETE CASCADE,
    audience_size BIGINT,                     -- followers sampled
    audience_real BIGINT,                     -- of them, classified real
    audience_time BIGINT,                     -- microseconds since the epoch
    comments_total BIGINT,
    comments_emoji BIGINT,
    comments_generic BIGINT,
    comments_duplicate BIGINT,
    comments_short BIGINT,
    comments_time BIGINT,
    PRIMARY KEY (platform, handle)
);
CREATE INDEX vetting_inputs_influencer ON vetting_inputs (influencer_id);

-- Every report computed, newest first per influencer.
CREATE TABLE vetting_reports (
    id TEXT PRIMARY KEY,                      -- UUIDv7
    influencer_id TEXT NOT NULL REFERENCES influencers (id) ON DELETE CASCADE,
    platform INTEGER NOT NULL,
    handle TEXT NOT NULL,
    compute_time BIGINT NOT NULL,
    report BLOB NOT NULL                     -- VettingReport
);
CREATE INDEX vetting_reports_history ON vetting_reports (influencer_id, compute_time DESC, id DESC);

-- The newest report's gist per account (AccountVetting), and the largest account's score and
-- verdict on the influencer row for List's filters. NULL score: not vetted yet.
ALTER TABLE accounts ADD COLUMN vetting BLOB;
ALTER TABLE accounts ADD COLUMN quality_score REAL;
ALTER TABLE accounts ADD COLUMN verdict INTEGER NOT NULL DEFAULT 0;
ALTER TABLE influencers ADD COLUMN quality_score REAL;
ALTER TABLE influencers ADD COLUMN verdict INTEGER NOT NULL DEFAULT 0;
