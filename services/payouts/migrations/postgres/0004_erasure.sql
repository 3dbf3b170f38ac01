-- Payees erased on registry's InfluencerDeleted (src/domain/erasure.rs, src/payees.rs). Their
-- `payees` row is deleted; this is what stays. `profile` is the Payee message without any
-- personal data (tax form, its date, whether 1099s applied). `retained` is the identity printed
-- on their filed 1099s (legal name, TIN, address), AES-256-GCM sealed like other PII, kept until
-- `retain_until` (YYYY-MM-DD) for the tax years in `retained_years` ("2025,2026"), then
-- emptied by the payout runs' sweep; all three are '' when nothing is retained.
CREATE TABLE erased_payees (
    influencer_id TEXT PRIMARY KEY,
    pseudonym TEXT NOT NULL,
    profile BYTEA NOT NULL,
    retained TEXT NOT NULL DEFAULT '',
    retained_years TEXT NOT NULL DEFAULT '',
    retain_until TEXT NOT NULL DEFAULT '',
    erase_time BIGINT NOT NULL
);
CREATE INDEX erased_payees_by_retention ON erased_payees (retain_until);
