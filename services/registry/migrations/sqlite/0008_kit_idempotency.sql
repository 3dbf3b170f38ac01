-- Request ids moved to the kit's idempotency_keys (first answers kept 24 hours, parameters
-- compared); the registry's own table of created ids goes.
DROP TABLE create_requests;
