-- The platforms an influencer has accounts on, like niches (",1,3,"), so List's platform
-- filter reads the influencer row alone. (PostgreSQL also gets covering indexes here; the
-- single-node catalogue does not need them.)
ALTER TABLE influencers ADD COLUMN platforms TEXT NOT NULL DEFAULT '';
UPDATE influencers SET platforms = (
    SELECT ',' || group_concat(DISTINCT platform) || ',' FROM accounts a WHERE a.influencer_id = influencers.id
) WHERE EXISTS (SELECT 1 FROM accounts a WHERE a.influencer_id = influencers.id);
