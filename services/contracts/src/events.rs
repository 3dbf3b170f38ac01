//! What contracts hears: matching's shortlist decisions (for offers from a shortlist), payouts'
//! failed holds (the contract is unfunded), its own timers (expiries, due dates, grace periods),
//! and, for the influencers' notifications (`notify::send`), its own events (offers, reminders,
//! changes requested) and payouts' PayoutPaid. What it emits is `flows`'; the event messages
//! are in proto/chorus/contracts/v1/events.proto.

use std::sync::Arc;

use chorus_kit::Error;
use chorus_kit::clock::micros;
use chorus_kit::events::{SubscribeOptions, read};
use chorus_kit::idempotency::Claim;
use chorus_kit::names::{ContractName, DeliverableName, ResourceName};
use chorus_kit::runtime::Parts;
use chorus_proto::contracts::{
    Contract, ContractState, Deliverable, Funding, ReminderDue, ReminderKind, TimerFired, TimerKind,
};
use chorus_proto::event::Envelope;
use chorus_proto::matching::{Decision, ShortlistMemberDecided};
use chorus_proto::payouts::{CompensationHeld, CompensationHoldFailed};

use crate::domain::lifecycle;
use crate::flows::{self, Deadlines};
use crate::notify::send::Notifications;
use crate::store::{Member, Store, TIMER_TOPIC, TOPIC, Who, Writes, id_of};

/// Matching's topic (proto/chorus/matching/v1/events.proto).
pub const MATCHING_TOPIC: &str = "chorus.matching";
/// Payouts' topic (proto/chorus/payouts/v1/events.proto).
pub const PAYOUTS_TOPIC: &str = "chorus.payouts";

/// Every consumer contracts runs, declared on the runtime.
pub fn declare(parts: &mut Parts, store: Store, deadlines: Deadlines, notifications: Notifications) {
    let s = store.clone();
    parts.consume(MATCHING_TOPIC, "contracts", SubscribeOptions::default(), move |e| {
        let s = s.clone();
        async move { shortlist_decision(&s, &e).await }
    });
    let s = store.clone();
    parts.consume(PAYOUTS_TOPIC, "contracts", SubscribeOptions::default(), move |e| {
        let s = s.clone();
        async move {
            hold_failed(&s, &e).await?;
            held(&s, &e).await
        }
    });
    let s = store.clone();
    parts.consume(TIMER_TOPIC, "contracts", SubscribeOptions::default(), move |e| {
        let s = s.clone();
        async move { timer_fired(&s, &deadlines, &e).await }
    });
    // The group kept its name from when it only sent invitations: a new name would start a
    // new group at the oldest retained event and mail those again.
    let notifications = Arc::new(notifications);
    let n = notifications.clone();
    parts.consume(TOPIC, "contracts-invitations", SubscribeOptions::default(), move |e| {
        let n = n.clone();
        async move { n.handle(&e).await }
    });
    // Payouts' PayoutPaid. Started at the end: payouts pays only what contracts approved after
    // this group existed, and a deployment that adds it does not mail every past payout.
    let start_at_end = SubscribeOptions {
        start_at_end: true,
        ..SubscribeOptions::default()
    };
    parts.consume(PAYOUTS_TOPIC, "contracts-notifications", start_at_end, move |e| {
        let n = notifications.clone();
        async move { n.handle(&e).await }
    });
}

async fn shortlist_decision(store: &Store, e: &Envelope) -> Result<(), Error> {
    let Some(p) = read::<ShortlistMemberDecided>(e) else {
        return Ok(());
    };
    let p = p?;
    let influencer_id = id_of(&p.influencer, "influencers").to_owned();
    let member = (p.decision == Decision::Accepted as i32).then(|| Member {
        influencer_id: influencer_id.clone(),
        segment: p.segment.clone(),
    });
    store
        .member_decided(
            "contracts-shortlists",
            &e.id,
            &e.tenant,
            &p.shortlist,
            id_of(&p.campaign, "campaigns"),
            member,
            &influencer_id,
        )
        .await
}

/// Payouts could not hold a contract's compensation: the contract is marked unfunded and the
/// brand told (ContractUnfunded). A repeat changes nothing.
async fn hold_failed(store: &Store, e: &Envelope) -> Result<(), Error> {
    let Some(p) = read::<CompensationHoldFailed>(e) else {
        return Ok(());
    };
    let p = p?;
    let Some(name) = ContractName::parse(&p.contract) else {
        tracing::warn!(contract = %p.contract, "hold failed for a malformed contract name");
        return Ok(());
    };
    let clock = store.clock().clone();
    let result = store
        .change_contract(
            &Who::System,
            name.id(),
            &Claim::none(),
            |c, tenant, _, w| {
                if c.funding == Funding::Unfunded as i32 {
                    return Ok(false);
                }
                c.funding = Funding::Unfunded as i32;
                c.reason = p.reason.clone();
                flows::contract_unfunded(w, &clock, tenant, c, p.shortfall.clone());
                Ok(true)
            },
            |c, _| c.clone(),
        )
        .await;
    ignore_unknown(result)
}

/// Payouts held the compensation, possibly after the brand funded a contract left unfunded:
/// the contract is marked funded. A repeat changes nothing.
async fn held(store: &Store, e: &Envelope) -> Result<(), Error> {
    let Some(p) = read::<CompensationHeld>(e) else {
        return Ok(());
    };
    let p = p?;
    let Some(name) = ContractName::parse(&p.contract) else {
        tracing::warn!(contract = %p.contract, "held for a malformed contract name");
        return Ok(());
    };
    let result = store
        .change_contract(
            &Who::System,
            name.id(),
            &Claim::none(),
            |c, _, _, _| {
                if c.funding == Funding::Held as i32 {
                    return Ok(false);
                }
                // The reason said why it was unfunded; that is over.
                if c.funding == Funding::Unfunded as i32 {
                    c.reason.clear();
                }
                c.funding = Funding::Held as i32;
                Ok(true)
            },
            |c, _| c.clone(),
        )
        .await;
    ignore_unknown(result)
}

/// A timer for something this service no longer has (erased) is not an error.
fn ignore_unknown<T>(r: Result<T, Error>) -> Result<(), Error> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.code() == chorus_kit::ErrorCode::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

async fn timer_fired(store: &Store, deadlines: &Deadlines, e: &Envelope) -> Result<(), Error> {
    let Some(p) = read::<TimerFired>(e) else {
        return Ok(());
    };
    let p = p?;
    let clock = store.clock().clone();
    let now = clock.now_micros();
    match TimerKind::try_from(p.kind).unwrap_or(TimerKind::Unspecified) {
        TimerKind::OffersExpire => {
            for id in store.due_offers(id_of(&p.subject, "campaigns"), now, false).await? {
                let r = store
                    .change_offer(
                        &Who::System,
                        &id,
                        &Claim::none(),
                        |o, tenant, w| {
                            if lifecycle::expire_offer(o, clock.now()) {
                                flows::offer_expired(w, &clock, tenant, o);
                            }
                            Ok(None)
                        },
                        |o, _| o.clone(),
                    )
                    .await;
                ignore_unknown(r)?;
            }
            Ok(())
        }
        TimerKind::OffersRemind => {
            let ids = store
                .due_offers(
                    id_of(&p.subject, "campaigns"),
                    now + deadlines.remind_before_micros,
                    true,
                )
                .await?;
            let mut events = Vec::with_capacity(ids.len());
            for id in &ids {
                if let Some(o) = store.offer(&Who::System, id).await? {
                    events.push(chorus_kit::events::envelope(
                        &clock,
                        &e.tenant,
                        &ReminderDue {
                            kind: ReminderKind::OfferExpiring as i32,
                            subject: o.name.clone(),
                            campaign: o.campaign.clone(),
                            influencer: o.influencer.clone(),
                            due_time: o.expire_time,
                        },
                    ));
                }
            }
            store.reminded("contracts-reminders", &e.id, &ids, events).await
        }
        TimerKind::ContractSignBy => {
            let Some(name) = ContractName::parse(&p.subject) else {
                return Ok(());
            };
            let r = store
                .change_contract(
                    &Who::System,
                    name.id(),
                    &Claim::none(),
                    |c, tenant, _, w| {
                        let due = c.sign_by_time.as_ref().map_or(0, micros);
                        if due > clock.now_micros() || !lifecycle::expire_contract(c, clock.now()) {
                            return Ok(false);
                        }
                        flows::contract_expired(w, &clock, tenant, c);
                        Ok(true)
                    },
                    |c, _| c.clone(),
                )
                .await;
            ignore_unknown(r)
        }
        TimerKind::DeliverableDue | TimerKind::DeliverableGraceEnd => {
            let Some(name) = DeliverableName::parse(&p.subject) else {
                return Ok(());
            };
            let grace_end = p.kind == TimerKind::DeliverableGraceEnd as i32;
            let target = name.to_string();
            let r = store
                .change_contract(
                    &Who::System,
                    name.contract().id(),
                    &Claim::none(),
                    |c, tenant, deliverables, w| {
                        deliverable_deadline(c, tenant, deliverables, w, &clock, &target, grace_end)
                    },
                    |c, _| c.clone(),
                )
                .await;
            ignore_unknown(r)
        }
        TimerKind::Unspecified => Ok(()),
    }
}

/// A deliverable's due date (overdue: a warning and the grace timer) or the end of its grace
/// period (the contract is breached), unless it was approved meanwhile.
fn deliverable_deadline(
    c: &mut Contract,
    tenant: &str,
    deliverables: &mut [Deliverable],
    w: &mut Writes,
    clock: &chorus_kit::clock::Clock,
    target: &str,
    grace_end: bool,
) -> Result<bool, Error> {
    let grace_days = c.terms.as_ref().map_or(0, |t| t.grace_days);
    let Some(d) = deliverables.iter_mut().find(|d| d.name == target) else {
        return Ok(false);
    };
    if grace_end {
        if !lifecycle::missed(c, d) {
            return Ok(false);
        }
        let missed = d.name.clone();
        let reason = format!("{missed} was not delivered by the end of its grace period");
        lifecycle::breach_contract(c, &reason, clock.now());
        flows::contract_breached(w, clock, tenant, c, &missed, deliverables);
        return Ok(true);
    }
    if !lifecycle::mark_overdue(c, d) {
        return Ok(false);
    }
    let d = d.clone();
    flows::deliverable_overdue(w, clock, tenant, c, &d, grace_days);
    Ok(c.state == ContractState::Active as i32)
}
