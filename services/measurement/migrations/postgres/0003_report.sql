-- The facts the campaign report needs from other services, kept small and idempotent (each
-- event is applied once through the kit's inbox): who is in which segment and tier and what the
-- plan said they would cost (matching's ShortlistMemberDecided), each deliverable's delivery
-- and disclosure (contracts' events), what was paid (payouts' PayoutPaid and PayoutReversed),
-- and each deliverable's latest post metrics snapshot. With click_rollups and
-- conversion_rollups these are everything a report reads; it never scans raw events.

CREATE TABLE report_members (
    tenant TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    influencer_id TEXT NOT NULL,
    segment TEXT NOT NULL,
    -- chorus.type.v1.Tier; 0 when only a contract named the influencer.
    tier BIGINT NOT NULL,
    -- Matching's expected cost of the candidate, for the plan; currency '' when unknown.
    planned_currency TEXT NOT NULL,
    planned_cost_minor BIGINT NOT NULL,
    -- 1 when the brand accepted them on a shortlist (part of the plan).
    planned BIGINT NOT NULL,
    PRIMARY KEY (tenant, campaign_id, influencer_id)
);

CREATE TABLE report_deliverables (
    tenant TEXT NOT NULL,
    -- "contracts/{c}/deliverables/{n}".
    deliverable TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    influencer_id TEXT NOT NULL,
    approved BIGINT NOT NULL,
    -- Contracts said it was overdue (DeliverableOverdue) before any approval.
    overdue BIGINT NOT NULL,
    -- The approved submission's disclosure verdict was compliant.
    compliant BIGINT NOT NULL,
    PRIMARY KEY (tenant, deliverable)
);
CREATE INDEX report_deliverables_by_campaign ON report_deliverables (tenant, campaign_id);

-- One row per payout; a reversal marks it.
CREATE TABLE report_payouts (
    tenant TEXT NOT NULL,
    payout_id TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    influencer_id TEXT NOT NULL,
    -- 1 cash, 2 gift card, 3 product (at value).
    kind BIGINT NOT NULL,
    currency TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    reversed BIGINT NOT NULL,
    PRIMARY KEY (tenant, payout_id)
);
CREATE INDEX report_payouts_by_campaign ON report_payouts (tenant, campaign_id);

-- The newest snapshot (by observation time) of each deliverable's post metrics.
CREATE TABLE post_rollups (
    tenant TEXT NOT NULL,
    deliverable TEXT NOT NULL,
    observe_time BIGINT NOT NULL,
    reach BIGINT NOT NULL,
    impressions BIGINT NOT NULL,
    -- Likes, comments, saves and shares.
    engagements BIGINT NOT NULL,
    PRIMARY KEY (tenant, deliverable)
);
