//! What payouts hears from contracts: an activated contract's compensation is held, an approved
//! deliverable releases its part, a cancelled or breached contract voids what is still held.
//! Each effect commits with its inbox entry, so a redelivered event changes nothing. From the
//! registry it hears `InfluencerDeleted`: the payee is erased (`Payees::erase`). What payouts
//! emits is in proto/chorus/payouts/v1/events.proto.

use chorus_kit::Error;
use chorus_kit::events::{SubscribeOptions, is, read};
use chorus_kit::runtime::Parts;
use chorus_proto::contracts::{Contract, ContractActivated, ContractBreached, ContractCancelled, DeliverableApproved};
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

/// Contracts' events handled together at most, when that many are waiting.
const BATCH: usize = 256;

pub fn declare(parts: &mut Parts, store: Store, shipments: Shipments, payees: Payees) {
    let (one, many) = ((store.clone(), shipments.clone()), (store, shipments));
    parts.consume_batched(
        CONTRACTS_TOPIC,
        GROUP,
        SubscribeOptions::default(),
        BATCH,
        move |e| {
            let (store, shipments) = one.clone();
            async move { contract_event(&store, &shipments, &e).await }
        },
        move |events| {
            let (store, shipments) = many.clone();
            async move { contract_events(&store, &shipments, &events).await }
        },
    );
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

/// Contracts' events in order, each answered on its own. A run of activations and approvals
/// of one tenant is applied in two transactions: every hold first ([`Store::hold_many`]), then
/// every release ([`Store::release_many`]), which keeps each contract's order (its activation
/// comes before its approvals). When a run cannot go together (a budget short, a failed write)
/// its events are applied one by one, so every event still gets its own answer. Other events
/// (cancellations, breaches) are applied one by one, in their place.
pub async fn contract_events(store: &Store, shipments: &Shipments, events: &[Envelope]) -> Vec<Result<(), Error>> {
    let batched = |e: &Envelope| is::<ContractActivated>(e) || is::<DeliverableApproved>(e);
    let mut answers = Vec::with_capacity(events.len());
    let mut rest = events;
    while let Some(first) = rest.first() {
        let run = match batched(first) {
            true => rest
                .iter()
                .take_while(|e| e.tenant == first.tenant && batched(e))
                .count(),
            false => 1,
        };
        let (run, after) = rest.split_at(run);
        rest = after;
        if run.len() < 2 {
            answers.push(contract_event(store, shipments, first).await);
            continue;
        }
        let (holds, releases): (Vec<&Envelope>, Vec<&Envelope>) = run.iter().partition(|e| is::<ContractActivated>(e));
        if !hold_run(store, &holds).await {
            for e in run {
                answers.push(contract_event(store, shipments, e).await);
            }
            continue;
        }
        let released = release_run(store, &releases).await;
        for e in run {
            let answer = match (is::<ContractActivated>(e), &released) {
                (true, _) => Ok(()),
                (false, Some(_)) => after_release(shipments, e).await,
                (false, None) => contract_event(store, shipments, e).await,
            };
            answers.push(answer);
        }
    }
    answers
}

/// What follows a release: a product delivered before its post is paid once the post is
/// approved.
async fn after_release(shipments: &Shipments, e: &Envelope) -> Result<(), Error> {
    let Some(a) = read::<DeliverableApproved>(e) else {
        return Ok(());
    };
    shipments
        .after_release(&e.tenant, crate::store::id_of(&a?.contract, "contracts"))
        .await
}

/// Holds activations of one tenant at once; false when nothing was written and they must go
/// one by one.
async fn hold_run(store: &Store, run: &[&Envelope]) -> bool {
    let Some(tenant) = run.first().map(|e| e.tenant.as_str()) else {
        return true;
    };
    let decoded: Vec<Option<ContractActivated>> = run
        .iter()
        .map(|e| read::<ContractActivated>(e).and_then(Result::ok))
        .collect();
    let contracts: Vec<(&str, &Contract)> = run
        .iter()
        .zip(&decoded)
        .filter_map(|(e, a)| Some((e.id.as_str(), a.as_ref()?.contract.as_ref()?)))
        .collect();
    if contracts.len() != run.len() {
        return false;
    }
    match store.hold_many(GROUP, tenant, &contracts).await {
        Ok(done) => done,
        Err(e) => {
            tracing::warn!(error = %e.detail(), events = run.len(), "holding a batch failed; holding one by one");
            false
        }
    }
}

/// Releases approvals of one tenant at once: Some when done, None when nothing was written and
/// they must go one by one.
async fn release_run(store: &Store, run: &[&Envelope]) -> Option<()> {
    let tenant = run.first().map(|e| e.tenant.as_str())?;
    let decoded: Vec<DeliverableApproved> = run
        .iter()
        .filter_map(|e| read::<DeliverableApproved>(e).and_then(Result::ok))
        .collect();
    if decoded.len() != run.len() {
        return None;
    }
    let approvals: Vec<(&str, &DeliverableApproved)> = run.iter().map(|e| e.id.as_str()).zip(&decoded).collect();
    match store.release_many(GROUP, tenant, &approvals).await {
        Ok(true) => Some(()),
        Ok(false) => None,
        Err(e) => {
            tracing::warn!(error = %e.detail(), events = run.len(), "releasing a batch failed; releasing one by one");
            None
        }
    }
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
