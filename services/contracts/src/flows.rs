//! What each move writes beside its row: the events other services hear, the reminders and
//! deadlines on the kit's durable timers, and the timers a move makes moot. One function per
//! move, so the consequences of a state change are read in one place.

use chorus_catalog::money::Money;
use chorus_kit::clock::{Clock, micros, timestamp};
use chorus_kit::events::envelope;
use chorus_kit::names::{ContractName, DeliverableName, ResourceName};
use chorus_proto::contracts::*;

use crate::store::{TIMER_TOPIC, TOPIC, Writes};

/// How long before a deadline the reminder goes out, and how long the parties have to sign.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    /// Before an offer's expiry, a signing deadline or a due date (48 hours).
    pub remind_before_micros: i64,
    /// From acceptance to the signing deadline (14 days).
    pub sign_within_micros: i64,
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines {
            remind_before_micros: 48 * 3_600_000_000,
            sign_within_micros: 14 * 86_400_000_000,
        }
    }
}

pub const DAY_MICROS: i64 = 86_400_000_000;

fn timer(clock: &Clock, kind: TimerKind, subject: &str) -> chorus_proto::event::Envelope {
    envelope(
        clock,
        "",
        &TimerFired {
            kind: kind as i32,
            subject: subject.to_owned(),
        },
    )
}

fn reminder(
    clock: &Clock,
    tenant: &str,
    kind: ReminderKind,
    subject: &str,
    campaign: &str,
    influencer: &str,
    due: i64,
) -> chorus_proto::event::Envelope {
    envelope(
        clock,
        tenant,
        &ReminderDue {
            kind: kind as i32,
            subject: subject.to_owned(),
            campaign: campaign.to_owned(),
            influencer: influencer.to_owned(),
            due_time: Some(timestamp(due)),
        },
    )
}

/// The expiry and reminder timers of offers of `campaign` expiring at `expire`: one pair for
/// every offer of a batch, whatever its size.
fn offer_timers(w: &mut Writes, clock: &Clock, d: &Deadlines, campaign: &str, expire: i64) {
    let now = clock.now_micros();
    w.timer(
        format!("offers-expire:{campaign}:{expire}"),
        expire,
        TIMER_TOPIC,
        timer(clock, TimerKind::OffersExpire, campaign),
    );
    w.timer(
        format!("offers-remind:{campaign}:{expire}"),
        (expire - d.remind_before_micros).max(now),
        TIMER_TOPIC,
        timer(clock, TimerKind::OffersRemind, campaign),
    );
}

/// New offers: one OfferSent each (which also sends the invitation) and their timers.
pub fn offers_sent(clock: &Clock, d: &Deadlines, tenant: &str, offers: &[Offer]) -> Writes {
    let mut w = Writes::default();
    let mut expiries: Vec<(String, i64)> = Vec::new();
    for o in offers {
        w.event(envelope(clock, tenant, &OfferSent { offer: Some(o.clone()) }));
        let at = o.expire_time.as_ref().map_or(0, micros);
        if !expiries.iter().any(|(c, e)| *c == o.campaign && *e == at) {
            expiries.push((o.campaign.clone(), at));
        }
    }
    for (campaign, at) in expiries {
        offer_timers(&mut w, clock, d, &campaign, at);
    }
    w
}

pub fn offer_countered(w: &mut Writes, clock: &Clock, d: &Deadlines, tenant: &str, o: &Offer) {
    w.event(envelope(clock, tenant, &OfferCountered { offer: Some(o.clone()) }));
    offer_timers(w, clock, d, &o.campaign, o.expire_time.as_ref().map_or(0, micros));
}

pub fn offer_declined(w: &mut Writes, clock: &Clock, tenant: &str, o: &Offer, by: Party) {
    w.event(envelope(
        clock,
        tenant,
        &OfferDeclined {
            offer: Some(o.clone()),
            declined_by: by as i32,
        },
    ));
}

pub fn offer_expired(w: &mut Writes, clock: &Clock, tenant: &str, o: &Offer) {
    w.event(envelope(clock, tenant, &OfferExpired { offer: Some(o.clone()) }));
}

/// An accepted offer: the event, and the new contract's signing deadline and its reminder.
pub fn offer_accepted(w: &mut Writes, clock: &Clock, d: &Deadlines, tenant: &str, o: &Offer, c: &Contract) {
    w.event(envelope(
        clock,
        tenant,
        &OfferAccepted {
            offer: Some(o.clone()),
            contract: c.name.clone(),
        },
    ));
    let sign_by = c.sign_by_time.as_ref().map_or(0, micros);
    let id = c.name.trim_start_matches("contracts/");
    w.timer(
        format!("contract-sign-by:{id}"),
        sign_by,
        TIMER_TOPIC,
        timer(clock, TimerKind::ContractSignBy, &c.name),
    );
    w.timer(
        format!("contract-remind:{id}"),
        (sign_by - d.remind_before_micros).max(clock.now_micros()),
        TOPIC,
        reminder(
            clock,
            tenant,
            ReminderKind::SignatureDue,
            &c.name,
            &c.campaign,
            &c.influencer,
            sign_by,
        ),
    );
}

fn signed_event(c: &Contract) -> ContractSigned {
    ContractSigned {
        contract: c.name.clone(),
        campaign: c.campaign.clone(),
        influencer: c.influencer.clone(),
        signature: c.signatures.last().cloned(),
        state: c.state,
    }
}

pub fn contract_signed(w: &mut Writes, clock: &Clock, tenant: &str, c: &Contract) {
    w.event(envelope(clock, tenant, &signed_event(c)));
}

/// The deliverables an activated contract owes, from its terms.
pub fn deliverables_of(c: &Contract, terms: &crate::domain::terms::Terms) -> Vec<Deliverable> {
    let Some(contract) = ContractName::parse(&c.name) else {
        return Vec::new();
    };
    terms
        .deliverables()
        .into_iter()
        .map(|due| Deliverable {
            name: DeliverableName::new(contract.clone(), due.index).to_string(),
            kind: due.kind.to_proto() as i32,
            platform: due.platform.to_proto() as i32,
            due_time: Some(timestamp(due.due_micros)),
            state: DeliverableState::Pending as i32,
            ..Default::default()
        })
        .collect()
}

fn deliverable_keys(name: &str) -> [String; 3] {
    let key = name.trim_start_matches("contracts/").replace("/deliverables/", ":");
    [
        format!("deliverable-remind:{key}"),
        format!("deliverable-due:{key}"),
        format!("deliverable-grace:{key}"),
    ]
}

/// The second signature: the contract is active. Its signing timers go; each deliverable gets
/// a reminder and a due date; payouts holds the compensation; matching hears of exclusivity.
#[allow(clippy::too_many_arguments)]
pub fn contract_activated(
    w: &mut Writes,
    clock: &Clock,
    d: &Deadlines,
    tenant: &str,
    c: &Contract,
    total_value: Money,
    deliverables: Vec<Deliverable>,
    exclusivity: Option<&Exclusivity>,
) {
    let id = c.name.trim_start_matches("contracts/");
    w.cancel.push(format!("contract-sign-by:{id}"));
    w.cancel.push(format!("contract-remind:{id}"));
    w.event(envelope(clock, tenant, &signed_event(c)));
    w.event(envelope(
        clock,
        tenant,
        &ContractActivated {
            contract: Some(c.clone()),
            total_value: Some(total_value.to_proto()),
        },
    ));
    let now = clock.now_micros();
    if let Some(x) = exclusivity {
        w.event(envelope(
            clock,
            tenant,
            &ExclusivityStarted {
                influencer: c.influencer.clone(),
                category: x.category.clone(),
                start_time: Some(timestamp(now)),
                end_time: Some(timestamp(now + i64::from(x.days) * DAY_MICROS)),
                contract: c.name.clone(),
            },
        ));
    }
    for dl in deliverables {
        let due = dl.due_time.as_ref().map_or(0, micros);
        let [remind, due_key, _] = deliverable_keys(&dl.name);
        w.timer(
            remind,
            (due - d.remind_before_micros).max(now),
            TOPIC,
            reminder(
                clock,
                tenant,
                ReminderKind::DeliverableDue,
                &dl.name,
                &c.campaign,
                &c.influencer,
                due,
            ),
        );
        w.timer(
            due_key,
            due.max(now),
            TIMER_TOPIC,
            timer(clock, TimerKind::DeliverableDue, &dl.name),
        );
        w.deliverables.push(dl);
    }
}

/// Timers of a contract that ended: nothing is due any more.
pub fn contract_ended(w: &mut Writes, c: &Contract, deliverables: &[Deliverable]) {
    let id = c.name.trim_start_matches("contracts/");
    w.cancel.push(format!("contract-sign-by:{id}"));
    w.cancel.push(format!("contract-remind:{id}"));
    for dl in deliverables {
        w.cancel.extend(deliverable_keys(&dl.name));
    }
}

pub fn contract_cancelled(
    w: &mut Writes,
    clock: &Clock,
    tenant: &str,
    c: &Contract,
    was_active: bool,
    deliverables: &[Deliverable],
) {
    contract_ended(w, c, deliverables);
    w.event(envelope(
        clock,
        tenant,
        &ContractCancelled {
            contract: c.name.clone(),
            campaign: c.campaign.clone(),
            influencer: c.influencer.clone(),
            reason: c.reason.clone(),
            was_active,
        },
    ));
}

pub fn contract_expired(w: &mut Writes, clock: &Clock, tenant: &str, c: &Contract) {
    contract_ended(w, c, &[]);
    w.event(envelope(
        clock,
        tenant,
        &ContractExpired {
            contract: c.name.clone(),
            campaign: c.campaign.clone(),
            influencer: c.influencer.clone(),
        },
    ));
}

pub fn contract_breached(
    w: &mut Writes,
    clock: &Clock,
    tenant: &str,
    c: &Contract,
    missed: &str,
    deliverables: &[Deliverable],
) {
    contract_ended(w, c, deliverables);
    w.event(envelope(
        clock,
        tenant,
        &ContractBreached {
            contract: c.name.clone(),
            campaign: c.campaign.clone(),
            influencer: c.influencer.clone(),
            reason: c.reason.clone(),
            deliverable: missed.to_owned(),
        },
    ));
}

pub fn contract_unfunded(
    w: &mut Writes,
    clock: &Clock,
    tenant: &str,
    c: &Contract,
    shortfall: Option<chorus_proto::types::Money>,
) {
    w.event(envelope(
        clock,
        tenant,
        &ContractUnfunded {
            contract: c.name.clone(),
            campaign: c.campaign.clone(),
            influencer: c.influencer.clone(),
            reason: c.reason.clone(),
            shortfall,
        },
    ));
}

pub fn deliverable_submitted(w: &mut Writes, clock: &Clock, tenant: &str, c: &Contract, dl: &Deliverable) {
    w.event(envelope(
        clock,
        tenant,
        &DeliverableSubmitted {
            deliverable: dl.name.clone(),
            contract: c.name.clone(),
            campaign: c.campaign.clone(),
            influencer: c.influencer.clone(),
            submission: dl.submissions.last().cloned(),
            state: dl.state,
        },
    ));
}

/// The brand's review sent a post back: the influencer hears what to change.
pub fn deliverable_changes_requested(w: &mut Writes, clock: &Clock, tenant: &str, c: &Contract, dl: &Deliverable) {
    w.event(envelope(
        clock,
        tenant,
        &DeliverableChangesRequested {
            deliverable: dl.name.clone(),
            contract: c.name.clone(),
            campaign: c.campaign.clone(),
            influencer: c.influencer.clone(),
            reason: dl.change_reason.clone(),
        },
    ));
}

/// An approval releases the deliverable's share of the cash (and, with the last one, the
/// rest); its timers go; the contract completes when nothing is left.
#[allow(clippy::too_many_arguments)]
pub fn deliverable_approved(
    w: &mut Writes,
    clock: &Clock,
    tenant: &str,
    c: &mut Contract,
    deliverables: &[Deliverable],
    approved: &Deliverable,
    releases: &[Money],
    reporting: Option<ReportingDuty>,
) {
    w.cancel.extend(deliverable_keys(&approved.name));
    let index = deliverables.iter().position(|d| d.name == approved.name).unwrap_or(0);
    let complete = deliverables
        .iter()
        .all(|d| d.state == DeliverableState::Approved as i32);
    w.event(envelope(
        clock,
        tenant,
        &DeliverableApproved {
            deliverable: approved.name.clone(),
            contract: c.name.clone(),
            campaign: c.campaign.clone(),
            influencer: c.influencer.clone(),
            index: index as i32 + 1,
            total: deliverables.len() as i32,
            cash_release: releases.get(index).map(|m| m.to_proto()),
            r#final: complete,
            submission: approved.submissions.last().cloned(),
            segment: c.segment.clone(),
            reporting,
        },
    ));
    if crate::domain::lifecycle::complete_contract(c, deliverables, clock.now()) {
        w.event(envelope(
            clock,
            tenant,
            &ContractCompleted {
                contract: c.name.clone(),
                campaign: c.campaign.clone(),
                influencer: c.influencer.clone(),
            },
        ));
    }
}

/// The due date passed with nothing approved: the warning, and the breach at the end of the
/// grace period.
pub fn deliverable_overdue(
    w: &mut Writes,
    clock: &Clock,
    tenant: &str,
    c: &Contract,
    dl: &Deliverable,
    grace_days: i32,
) {
    let due = dl.due_time.as_ref().map_or(0, micros);
    let grace_end = (due + i64::from(grace_days) * DAY_MICROS).max(clock.now_micros());
    w.event(envelope(
        clock,
        tenant,
        &DeliverableOverdue {
            deliverable: dl.name.clone(),
            contract: c.name.clone(),
            campaign: c.campaign.clone(),
            influencer: c.influencer.clone(),
            due_time: dl.due_time,
            grace_end_time: Some(timestamp(grace_end)),
        },
    ));
    let [_, _, grace] = deliverable_keys(&dl.name);
    w.timer(
        grace,
        grace_end,
        TIMER_TOPIC,
        timer(clock, TimerKind::DeliverableGraceEnd, &dl.name),
    );
}
