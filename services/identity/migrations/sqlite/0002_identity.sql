-- One-time sign-in codes for influencers: only the SHA-256 of a code is kept.
CREATE TABLE invitations (
    code_hash TEXT PRIMARY KEY,
    influencer TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_by TEXT NOT NULL,
    create_time BIGINT NOT NULL,
    expire_time BIGINT NOT NULL,
    use_time BIGINT
);
CREATE INDEX invitations_expiry ON invitations (expire_time);

-- Refresh tokens, used once each (each use returns the next): only their SHA-256 is kept.
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    subject TEXT NOT NULL,
    role TEXT NOT NULL,
    tenant TEXT NOT NULL,
    scopes TEXT NOT NULL,
    expire_time BIGINT NOT NULL
);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expire_time);
