-- List walks an index in the requested order and filters as it goes. With every filter column
-- in the index (INCLUDE), the walk never reads the table: a first page of "nano in Austin, by
-- followers" went from 70 ms to 3 ms over 1M rows (docs/performance.md). The same index by id
-- (create_time order) was tried and dropped: with per-call plans it did not help, and it cost
-- import time. The platforms an
-- influencer has accounts on become a column like niches (",1,3,"), so the platform filter
-- is one more included column instead of a lookup in accounts per row.
ALTER TABLE influencers ADD COLUMN IF NOT EXISTS platforms TEXT NOT NULL DEFAULT '';
UPDATE influencers i SET platforms = a.platforms
FROM (
    SELECT influencer_id, ',' || string_agg(DISTINCT platform::text, ',') || ',' AS platforms
    FROM accounts GROUP BY influencer_id
) a
WHERE a.influencer_id = i.id AND i.platforms <> a.platforms;
DROP INDEX IF EXISTS influencers_followers;
CREATE INDEX IF NOT EXISTS influencers_followers_cover ON influencers (followers, id)
    INCLUDE (platforms, country_code, region_key, city_key, niches, languages, status, engagement_rate, quality_score, verdict);
