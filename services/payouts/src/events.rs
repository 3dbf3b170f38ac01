//! What payouts hears from contracts: an activated contract's compensation is held, an approved
//! deliverable releases its part, a cancelled or breached contract voids what is still held.
//! Each effect commits with its inbox entry, so a redelivered event changes nothing. From the
//! registry it hears `InfluencerDeleted`: the payee is erased (`Payees::erase`). What payouts
//! emits is in proto/chorus/payouts/v1/events.proto.

use chorus_kit::Error;
use chorus_kit::events::{SubscribeOptions, read};
use chorus_kit::runtime::Parts;
use chorus_proto::contracts::{ContractActivated, ContractBreached, ContractCancelled, DeliverableApproved};
use chorus_proto::event::Envelope;
use chorus_proto::registry::InfluencerDeleted;

use crate::payees::Payees;

use crate::shipments::Shipments;
use crate::store::Store;

/// Contracts' topic (proto/chorus/contracts/v1/events.proto).
pub const CONTRACTS_TOPIC: &str = "chorus.contracts";
/// The registry's topic (proto/chorus/registry/v1/events.proto).
pub const REGISTRY_TOPIC: &str = "chorus.registry";
/// The consumer group, and the inbox's name for what it handled.
const GROUP: &str = "payouts";

pub fn declare(parts: &mut Parts, store: Store, shipments: Shipments, payees: Payees) {
    parts.consume(CONTRACTS_TOPIC, GROUP, SubscribeOptions::default(), move |e| {
        let (store, shipments) = (store.clone(), shipments.clone());
        async move { contract_event(&store, &shipments, &e).await }
    });
    // A durable group from the oldest retained event: a deletion published while payouts was
    // down is still applied when it starts.
    parts.consume(REGISTRY_TOPIC, GROUP, SubscribeOptions::default(), move |e| {
        let payees = payees.clone();
        async move { registry_event(&payees, &e).await }
    });
}

/// One event of the registry's: a deleted influencer's payee is erased; the others are not
/// payouts' concern.
pub async fn registry_event(payees: &Payees, e: &Envelope) -> Result<(), Error> {
    let Some(p) = read::<InfluencerDeleted>(e) else {
        return Ok(());
    };
    let p = p?;
    let id = crate::store::id_of(&p.influencer, "influencers");
    if id.is_empty() {
        return Ok(());
    }
    if payees.erase(GROUP, &e.id, id).await? {
        tracing::info!(event = %e.id, "payee erased");
    }
    Ok(())
}

/// One event of contracts', applied.
pub async fn contract_event(store: &Store, shipments: &Shipments, e: &Envelope) -> Result<(), Error> {
    if let Some(p) = read::<ContractActivated>(e) {
        let Some(contract) = p?.contract else {
            return Ok(());
        };
        return store.hold(GROUP, &e.id, &e.tenant, &contract).await;
    }
    if let Some(p) = read::<DeliverableApproved>(e) {
        let p = p?;
        store.release(GROUP, &e.id, &e.tenant, &p).await?;
        // A product delivered before its post is paid once the post is approved.
        return shipments
            .after_release(&e.tenant, crate::store::id_of(&p.contract, "contracts"))
            .await;
    }
    // A contract that ends unpaid voids what is still held.
    let ended = match (read::<ContractCancelled>(e), read::<ContractBreached>(e)) {
        (Some(p), _) => p.map(|p| (p.contract, format!("contract cancelled: {}", p.reason))),
        (_, Some(p)) => p.map(|p| (p.contract, format!("contract breached: {}", p.reason))),
        (None, None) => return Ok(()),
    };
    let (contract, reason) = ended?;
    store.void(GROUP, &e.id, &e.tenant, &contract, &reason).await?;
    Ok(())
}
