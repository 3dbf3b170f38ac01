//! What measurement hears. From contracts: an activated contract gets a tracked link for each
//! deliverable and a promo code for its influencer; an approved deliverable starts the
//! measurement duty its terms set (the metrics, due some days after the post), whose
//! `MeasurementOverdue` waits on the kit's timers until a snapshot meets it. From its own
//! timers: the daily IP key rotation, and a campaign's report falling due (`ReportReady`). For
//! the campaign report (store/report.rs): matching's campaigns and shortlist decisions (whose
//! the campaign is, segment, tier, the plan), contracts' deliveries and disclosure verdicts,
//! and payouts' paid and reversed payouts (cost). Each effect commits with its inbox entry, so
//! a redelivered event changes nothing.

use chorus_kit::Error;
use chorus_kit::clock::micros;
use chorus_kit::events::{SubscribeOptions, read};
use chorus_kit::runtime::Parts;
use chorus_proto::contracts::{ContractActivated, DeliverableApproved, DeliverableOverdue, Verdict};
use chorus_proto::event::Envelope;
use chorus_proto::matching::{CampaignChanged, Decision, ShortlistMemberDecided};
use chorus_proto::measurement::{KeyRotationDue, MeasurementDuty, ReportDue, TestMetric};
use chorus_proto::payouts::{PayoutPaid, PayoutReversed};

use std::sync::Arc;

use crate::domain::days::DAY_MICROS;
use crate::report::{self, RateCard};
use crate::store::report::{Decided, Delivery, Paid};
use crate::store::{Store, TIMER_TOPIC, id_of};

/// Contracts' topic (proto/chorus/contracts/v1/events.proto).
pub const CONTRACTS_TOPIC: &str = "chorus.contracts";
/// Matching's topic (proto/chorus/matching/v1/events.proto).
pub const MATCHING_TOPIC: &str = "chorus.matching";
/// Payouts' topic (proto/chorus/payouts/v1/events.proto).
pub const PAYOUTS_TOPIC: &str = "chorus.payouts";
/// The consumer group, and the inbox's name for what it handled.
const GROUP: &str = "measurement";

pub fn declare(parts: &mut Parts, store: Store, rate_card: Arc<RateCard>) {
    let s = store.clone();
    parts.consume(CONTRACTS_TOPIC, GROUP, SubscribeOptions::default(), move |e| {
        let store = s.clone();
        async move { contract_event(&store, &e).await }
    });
    let s = store.clone();
    parts.consume(MATCHING_TOPIC, GROUP, SubscribeOptions::default(), move |e| {
        let store = s.clone();
        async move { matching_event(&store, &e).await }
    });
    let s = store.clone();
    parts.consume(PAYOUTS_TOPIC, GROUP, SubscribeOptions::default(), move |e| {
        let store = s.clone();
        async move { payouts_event(&store, &e).await }
    });
    parts.consume(TIMER_TOPIC, GROUP, SubscribeOptions::default(), move |e| {
        let store = store.clone();
        let rate_card = rate_card.clone();
        async move {
            if let Some(p) = read::<KeyRotationDue>(&e) {
                let day = p?.day;
                store.rotate_ip_keys(day).await?;
            }
            if let Some(p) = read::<ReportDue>(&e) {
                let campaign = p?.campaign;
                report_due(&store, &rate_card, &e.tenant, &campaign).await?;
            }
            Ok(())
        }
    });
}

/// One event of contracts', applied.
pub async fn contract_event(store: &Store, e: &Envelope) -> Result<(), Error> {
    if let Some(p) = read::<ContractActivated>(e) {
        let Some(contract) = p?.contract else {
            return Ok(());
        };
        store.contract_facts(&e.id, &e.tenant, &contract).await?;
        return store.contract_activated(GROUP, &e.id, &e.tenant, &contract).await;
    }
    if let Some(p) = read::<DeliverableOverdue>(e) {
        let p = p?;
        let (campaign, influencer) = (id_of(&p.campaign, "campaigns"), id_of(&p.influencer, "influencers"));
        return store
            .delivery(
                &e.id,
                &e.tenant,
                &p.deliverable,
                campaign,
                influencer,
                Delivery::Overdue,
            )
            .await;
    }
    if let Some(p) = read::<DeliverableApproved>(e) {
        let p = p?;
        let compliant = p
            .submission
            .as_ref()
            .and_then(|s| s.check.as_ref())
            .is_some_and(|c| c.verdict == Verdict::Compliant as i32);
        let (campaign, influencer) = (id_of(&p.campaign, "campaigns"), id_of(&p.influencer, "influencers"));
        store
            .delivery(
                &e.id,
                &e.tenant,
                &p.deliverable,
                campaign,
                influencer,
                Delivery::Approved { compliant },
            )
            .await?;
        let Some(duty) = p.reporting.as_ref().filter(|r| !r.metrics.is_empty()) else {
            return Ok(());
        };
        let posted = p
            .submission
            .as_ref()
            .and_then(|s| s.publish_time.as_ref())
            .or(e.occur_time.as_ref())
            .map_or_else(|| store.clock().now_micros(), micros);
        let due = posted + i64::from(duty.due_days_after_post.clamp(1, 90)) * DAY_MICROS;
        let d = MeasurementDuty {
            deliverable: p.deliverable.clone(),
            contract: p.contract.clone(),
            campaign: p.campaign.clone(),
            influencer: p.influencer.clone(),
            metrics: duty.metrics.clone(),
            ..Default::default()
        };
        return store.add_duty(GROUP, &e.id, &e.tenant, &d, due).await;
    }
    Ok(())
}

/// Matching's campaigns (whose they are) and shortlist decisions: who is in which segment and
/// tier, and the plan.
pub async fn matching_event(store: &Store, e: &Envelope) -> Result<(), Error> {
    if let Some(p) = read::<CampaignChanged>(e) {
        let c = p?.campaign.unwrap_or_default();
        let tenant = if e.tenant.is_empty() { &c.tenant } else { &e.tenant };
        return store.campaign_announced(tenant, id_of(&c.name, "campaigns")).await;
    }
    let Some(p) = read::<ShortlistMemberDecided>(e) else {
        return Ok(());
    };
    let p = p?;
    let accepted = p.decision == Decision::Accepted as i32;
    if !accepted && p.decision != Decision::Rejected as i32 {
        return Ok(());
    }
    let candidate = p.candidate.unwrap_or_default();
    let d = Decided {
        campaign_id: id_of(&p.campaign, "campaigns").to_owned(),
        influencer_id: id_of(&p.influencer, "influencers").to_owned(),
        segment: if p.segment.is_empty() {
            candidate.segment.clone()
        } else {
            p.segment
        },
        tier: candidate.tier,
        accepted,
        planned_cost: candidate.cost.map(|m| (m.currency_code, m.amount_minor)),
    };
    store.shortlist_decided(&e.id, &e.tenant, &d).await
}

/// Payouts' paid and reversed payouts: the campaign's cost, all three kinds at value.
pub async fn payouts_event(store: &Store, e: &Envelope) -> Result<(), Error> {
    if let Some(p) = read::<PayoutPaid>(e) {
        let p = p?;
        let amount = p.amount.unwrap_or_default();
        let paid = Paid {
            payout_id: id_of(&p.payout, "payouts").to_owned(),
            campaign_id: id_of(&p.campaign, "campaigns").to_owned(),
            influencer_id: id_of(&p.influencer, "influencers").to_owned(),
            kind: i64::from(p.kind),
            currency: amount.currency_code,
            amount_minor: amount.amount_minor,
        };
        return store.payout(&e.id, &e.tenant, &paid, false).await;
    }
    if let Some(p) = read::<PayoutReversed>(e) {
        let p = p?;
        let amount = p.amount.unwrap_or_default();
        let reversed = Paid {
            payout_id: id_of(&p.payout, "payouts").to_owned(),
            campaign_id: id_of(&p.campaign, "campaigns").to_owned(),
            influencer_id: id_of(&p.influencer, "influencers").to_owned(),
            kind: 0,
            currency: amount.currency_code,
            amount_minor: amount.amount_minor,
        };
        return store.payout(&e.id, &e.tenant, &reversed, true).await;
    }
    Ok(())
}

/// A campaign's `ReportDue` timer fired: `ReportReady`, with the report's headline (the segment
/// test's sentence for conversions per click), once its duties are all settled (store/ready.rs).
pub async fn report_due(store: &Store, card: &RateCard, tenant: &str, campaign: &str) -> Result<bool, Error> {
    store
        .report_due(tenant, id_of(campaign, "campaigns"), |facts, now| {
            report::build(campaign, facts, TestMetric::Unspecified, card, now)
                .segment_test
                .map(|t| t.sentence)
                .unwrap_or_default()
        })
        .await
}
