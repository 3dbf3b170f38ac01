//! What measurement hears. From contracts: an activated contract gets a tracked link for each
//! deliverable and a promo code for its influencer; an approved deliverable starts the
//! measurement duty its terms set (the metrics, due some days after the post), whose
//! `MeasurementOverdue` waits on the kit's timers until a snapshot meets it. From its own
//! timers: the daily IP key rotation. Each effect commits with its inbox entry, so a
//! redelivered event changes nothing.

use chorus_kit::Error;
use chorus_kit::clock::micros;
use chorus_kit::events::{SubscribeOptions, read};
use chorus_kit::runtime::Parts;
use chorus_proto::contracts::{ContractActivated, DeliverableApproved};
use chorus_proto::event::Envelope;
use chorus_proto::measurement::{KeyRotationDue, MeasurementDuty};

use crate::domain::days::DAY_MICROS;
use crate::store::{Store, TIMER_TOPIC};

/// Contracts' topic (proto/chorus/contracts/v1/events.proto).
pub const CONTRACTS_TOPIC: &str = "chorus.contracts";
/// The consumer group, and the inbox's name for what it handled.
const GROUP: &str = "measurement";

pub fn declare(parts: &mut Parts, store: Store) {
    let s = store.clone();
    parts.consume(CONTRACTS_TOPIC, GROUP, SubscribeOptions::default(), move |e| {
        let store = s.clone();
        async move { contract_event(&store, &e).await }
    });
    parts.consume(TIMER_TOPIC, GROUP, SubscribeOptions::default(), move |e| {
        let store = store.clone();
        async move {
            if let Some(p) = read::<KeyRotationDue>(&e) {
                let day = p?.day;
                store.rotate_ip_keys(day).await?;
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
        return store.contract_activated(GROUP, &e.id, &e.tenant, &contract).await;
    }
    if let Some(p) = read::<DeliverableApproved>(e) {
        let p = p?;
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
