//! Product payouts travel as shipments: the brand records the carrier and tracking code (by RPC),
//! the carrier's tracker reports the status (EasyPost's webhook, its HMAC checked and its event
//! id deduplicated, or by RPC). A product counts as paid when it is delivered and its
//! deliverable approved, whichever comes last; a shipment that comes back fails the payout.

use chorus_kit::Error;
use chorus_kit::clock::timestamp;
use chorus_kit::events::outbox::Inbox;
use chorus_proto::payouts::{Method, Payout, PayoutKind, PayoutState, Shipment};
use prost::Message;
use sqlx::Row;

use crate::store::{COLUMNS, Settled, Settlement, Store, Who, payout_of};

/// EasyPost's tracker statuses.
pub const STATUSES: &[&str] = &[
    "unknown",
    "pre_transit",
    "in_transit",
    "out_for_delivery",
    "delivered",
    "available_for_pickup",
    "return_to_sender",
    "failure",
    "cancelled",
    "error",
];

/// The statuses that end a shipment without delivery.
const FAILED: &[&str] = &["return_to_sender", "failure", "cancelled", "error"];

/// The provider name of shipments, for the ledger's clearing account and events.
pub const PROVIDER: &str = "shipment";

#[derive(Debug, Clone)]
pub struct Shipments {
    store: Store,
}

impl Shipments {
    pub fn new(store: Store) -> Self {
        Shipments { store }
    }

    /// Records a carrier, tracking code or status on a product payout, as the brand says.
    pub async fn update(
        &self,
        who: &Who,
        id: &str,
        carrier: &str,
        tracking: &str,
        status: &str,
    ) -> Result<Payout, Error> {
        let payout = self
            .store
            .payout(who, id)
            .await?
            .ok_or_else(|| Error::not_found(format!("payouts/{id}")))?;
        if payout.kind != PayoutKind::Product as i32 {
            return Err(crate::store::precondition(format!(
                "payouts/{id} is not a product payout: only products ship"
            )));
        }
        self.apply(&payout, carrier, tracking, status).await?;
        self.store
            .payout(who, id)
            .await?
            .ok_or_else(|| Error::not_found(format!("payouts/{id}")))
    }

    /// A carrier tracker's event (EasyPost's `tracker.updated`), verified by the caller; each
    /// event id is applied once.
    pub async fn tracker_event(
        &self,
        event_id: &str,
        tracking_code: &str,
        carrier: &str,
        status: &str,
    ) -> Result<bool, Error> {
        let mut tx = self.store.db().pool.begin().await?;
        if !Inbox::first_time(&mut tx, self.store.clock(), "easypost", event_id).await? {
            return Ok(false);
        }
        tx.commit().await?;
        let applied = self.apply_tracker(tracking_code, carrier, status).await;
        if applied.is_err() {
            // Not applied: forget the event id, so the carrier's retry is applied, not skipped.
            sqlx::query("DELETE FROM inbox WHERE consumer = $1 AND event_id = $2")
                .bind("easypost")
                .bind(event_id)
                .execute(&self.store.db().pool)
                .await?;
        }
        let found = applied?;
        if !found {
            tracing::info!(event = event_id, "tracker event for a tracking code no payout has");
        }
        Ok(found)
    }

    async fn apply_tracker(&self, tracking_code: &str, carrier: &str, status: &str) -> Result<bool, Error> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM payouts WHERE tracking_code = $1 AND kind = $2 AND state IN ($3, $4, $5, $6)"
        )))
        .bind(tracking_code)
        .bind(PayoutKind::Product as i32)
        .bind(PayoutState::Held as i32)
        .bind(PayoutState::Approved as i32)
        .bind(PayoutState::Submitted as i32)
        .bind(PayoutState::Failed as i32)
        .fetch_all(&self.store.db().pool)
        .await?;
        for r in &rows {
            self.apply(&payout_of(r)?, carrier, "", status).await?;
        }
        Ok(!rows.is_empty())
    }

    async fn apply(&self, payout: &Payout, carrier: &str, tracking: &str, status: &str) -> Result<(), Error> {
        let id = crate::store::id_of(&payout.name, "payouts");
        let state = PayoutState::try_from(payout.state).unwrap_or(PayoutState::Unspecified);
        if matches!(state, PayoutState::Paid | PayoutState::Voided | PayoutState::Reversed) {
            return Err(crate::store::precondition(format!(
                "payouts/{id} is {}: its shipment can no longer change",
                state.as_str_name()
            )));
        }
        let now = self.store.clock().now_micros();
        let mut s = payout.shipment.clone().unwrap_or_default();
        if !carrier.is_empty() {
            s.carrier = carrier.to_owned();
        }
        if !tracking.is_empty() && tracking != s.tracking_code {
            // A new tracking code is a new parcel: the last one's status is not its status.
            s.tracking_code = tracking.to_owned();
            s.status.clear();
            s.status_time = None;
        }
        if !status.is_empty() {
            s.status = status.to_owned();
            s.status_time = Some(timestamp(now));
        }
        // Released and on its way: SUBMITTED; back with the brand: FAILED; delivered: PAID
        // once released (a product delivered before its post is paid at the approval).
        let released = matches!(
            state,
            PayoutState::Approved | PayoutState::Submitted | PayoutState::Failed
        );
        let next = if !released {
            state
        } else if FAILED.contains(&s.status.as_str()) {
            PayoutState::Failed
        } else {
            PayoutState::Submitted
        };
        let reason = if next == PayoutState::Failed {
            format!("shipment {}", s.status)
        } else {
            String::new()
        };
        // A parcel that comes back fails the payout as a provider's refusal does (FAILED with
        // the reason, PayoutFailed): the row is written SUBMITTED and settled as failed.
        let fails = next == PayoutState::Failed && state != PayoutState::Failed;
        let written = if fails { PayoutState::Submitted } else { next };
        sqlx::query(
            "UPDATE payouts SET shipment = $1, tracking_code = $2, state = $3, method = $4, reason = $5, update_time = $6 \
             WHERE id = $7",
        )
        .bind(s.encode_to_vec())
        .bind(&s.tracking_code)
        .bind(written as i32)
        .bind(Method::Shipment as i32)
        .bind(if fails { "" } else { reason.as_str() })
        .bind(now)
        .bind(id)
        .execute(&self.store.db().pool)
        .await?;
        if fails {
            self.settle(id, |_| Settled::Failed {
                reference: s.tracking_code.clone(),
                reason,
            })
            .await?;
        } else if released && s.status == "delivered" {
            self.delivered(id).await?;
        }
        Ok(())
    }

    /// Settles a released, delivered product as paid.
    pub async fn delivered(&self, id: &str) -> Result<(), Error> {
        self.settle(id, |reference| Settled::Paid { reference }).await
    }

    /// Settles a submitted product payout with `outcome` (given its tracking code).
    async fn settle(&self, id: &str, outcome: impl FnOnce(String) -> Settled) -> Result<(), Error> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM payouts WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.store.db().pool)
        .await?;
        let Some(row) = row else {
            return Ok(());
        };
        let payout = payout_of(&row)?;
        let tenant: String = row.try_get(11)?;
        let reference = payout
            .shipment
            .as_ref()
            .map(|s| s.tracking_code.clone())
            .unwrap_or_default();
        self.store
            .settle(
                PROVIDER,
                vec![Settlement {
                    id: id.to_owned(),
                    tenant,
                    payout,
                    outcome: outcome(reference),
                }],
            )
            .await
    }

    /// After an approval: products of `contract_id` already delivered are paid now.
    pub async fn after_release(&self, tenant: &str, contract_id: &str) -> Result<(), Error> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM payouts WHERE tenant = $1 AND contract_id = $2 AND kind = $3 AND state = $4"
        )))
        .bind(tenant)
        .bind(contract_id)
        .bind(PayoutKind::Product as i32)
        .bind(PayoutState::Approved as i32)
        .fetch_all(&self.store.db().pool)
        .await?;
        for r in &rows {
            let p = payout_of(r)?;
            if p.shipment.as_ref().is_some_and(|s: &Shipment| s.status == "delivered") {
                let id = crate::store::id_of(&p.name, "payouts").to_owned();
                sqlx::query("UPDATE payouts SET state = $1 WHERE id = $2 AND state = $3")
                    .bind(PayoutState::Submitted as i32)
                    .bind(&id)
                    .bind(PayoutState::Approved as i32)
                    .execute(&self.store.db().pool)
                    .await?;
                self.delivered(&id).await?;
            }
        }
        Ok(())
    }
}
