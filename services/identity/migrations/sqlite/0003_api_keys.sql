-- Partner apps' API keys: only the SHA-256 of a key is kept (it is 178 random bits, so a fast
-- hash is enough; see docs/architecture.md). A rotated key points at its successor and
-- expires at the end of the overlap; a revoked one has its revoke_time.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    visible_prefix TEXT NOT NULL,
    scopes TEXT NOT NULL,
    creator TEXT NOT NULL,
    create_time BIGINT NOT NULL,
    expire_time BIGINT NOT NULL,
    last_use_time BIGINT,
    revoke_time BIGINT,
    successor TEXT
);
CREATE INDEX api_keys_by_tenant ON api_keys (tenant, id);
