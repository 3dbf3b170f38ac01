-- Notifications to influencers: one row per event made into a message (or found to need none),
-- so a replayed event is not mailed twice. The address is not kept: it stays in the registry.
CREATE TABLE notifications (
    event_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    kind TEXT NOT NULL,               -- offer, reminder, changes_requested, paid
    influencer_id TEXT NOT NULL,
    about TEXT NOT NULL,              -- the offer, contract, deliverable or payout
    outcome TEXT NOT NULL,            -- sent, refused, no_address, moot
    detail TEXT NOT NULL,             -- a refusal's SMTP reply, the address taken out
    at BIGINT NOT NULL                -- microseconds
);
CREATE INDEX notifications_influencer ON notifications (influencer_id, at);
