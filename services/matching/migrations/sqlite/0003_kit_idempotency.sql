-- Request ids moved to the kit's idempotency_keys (first answers kept 24 hours, parameters
-- compared); matching's own table of created campaigns goes.
DROP TABLE campaign_requests;
