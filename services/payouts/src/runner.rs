//! The payout run: approved payouts go to their provider, and their outcomes come back into the
//! ledger. A payout is marked SUBMITTED (with a lease and its batch) and committed *before* the
//! provider is called, and the provider gets an idempotency key derived from the payout's id;
//! so a process killed at any step resubmits the same batch after the lease, the provider
//! answers with the first payment, and nobody is paid twice. A payout is PAID only on the
//! provider's final status; a product is paid when its shipment is delivered.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chorus_kit::Error;
use chorus_proto::payouts::*;
use sqlx::Row;
use tokio_util::sync::CancellationToken;

use crate::payees::{Payees, Record};
use crate::providers::paypal::PayPal;
use crate::providers::stripe::Stripe;
use crate::providers::tremendous::Tremendous;
use crate::providers::{Destination, Outcome, PayoutOrder, Provider, ProviderError, ProvidersConfig};
use crate::store::{Settled, Settlement, Store, payout_of};

/// Payouts per provider call at most (PayPal takes 15,000 per batch).
const BATCH: usize = 5_000;
/// Payouts in flight taken up by one run at most: whole batches.
const IN_FLIGHT: usize = 4 * BATCH;

/// The providers, by method.
#[derive(Debug, Clone, Default)]
pub struct Providers {
    pub stripe: Option<Arc<Stripe>>,
    pub paypal: Option<Arc<PayPal>>,
    pub tremendous: Option<Arc<Tremendous>>,
}

impl Providers {
    /// The configured providers' clients.
    pub fn new(config: &ProvidersConfig) -> Result<Providers, Error> {
        let refused = |e: ProviderError| Error::invalid_field("CHORUS_PROVIDERS", e.to_string());
        Ok(Providers {
            stripe: config
                .stripe
                .clone()
                .map(Stripe::new)
                .transpose()
                .map_err(refused)?
                .map(Arc::new),
            paypal: config
                .paypal
                .clone()
                .map(PayPal::new)
                .transpose()
                .map_err(refused)?
                .map(Arc::new),
            tremendous: config
                .tremendous
                .clone()
                .map(Tremendous::new)
                .transpose()
                .map_err(refused)?
                .map(Arc::new),
        })
    }

    pub fn of(&self, method: Method) -> Option<Arc<dyn Provider>> {
        match method {
            Method::Stripe => self.stripe.clone().map(|p| p as Arc<dyn Provider>),
            Method::Paypal => self.paypal.clone().map(|p| p as Arc<dyn Provider>),
            Method::Tremendous => self.tremendous.clone().map(|p| p as Arc<dyn Provider>),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Runner {
    store: Store,
    payees: Payees,
    providers: Providers,
    /// How long a submission holds its payouts before another run takes them up (the process
    /// that sent it died, or the provider answered nothing); also how long a pending payout
    /// waits before it is asked about again.
    lease: Duration,
}

/// Payee records opened during one run, by influencer id (None: no profile).
type Opened = BTreeMap<String, Option<Record>>;

/// One payout taken up for submission.
#[derive(Debug, Clone)]
struct Taken {
    id: String,
    /// The batch it was first sent in: a resubmission sends the same one.
    batch: String,
    tenant: String,
    payout: Payout,
    order: PayoutOrder,
}

impl Runner {
    pub fn new(store: Store, payees: Payees, providers: Providers, lease: Duration) -> Self {
        Runner {
            store,
            payees,
            providers,
            lease,
        }
    }

    /// Runs every `interval` until stopped.
    pub async fn run(self, interval: Duration, stop: CancellationToken) -> Result<(), Error> {
        loop {
            if let Err(e) = self.run_once(None, None).await {
                tracing::warn!(error = %e.detail(), "payout run failed; retrying at the next");
            }

            tokio::select! {
                () = stop.cancelled() => return Ok(()),
                () = tokio::time::sleep(interval) => {}
            }
        }
    }

    /// One run over a tenant's (or every tenant's) campaign: new approvals are submitted,
    /// abandoned submissions resumed, pending ones asked about.
    pub async fn run_once(&self, tenant: Option<&str>, campaign_id: Option<&str>) -> Result<RunPayoutsResponse, Error> {
        // Erased payees' tax identities whose retention ended are dropped (domain::erasure).
        let dropped = self.payees.drop_expired_retention().await?;
        if dropped > 0 {
            tracing::info!(
                payees = dropped,
                "retained tax identities dropped at the end of retention"
            );
        }
        let mut answer = RunPayoutsResponse::default();
        // Each payee's details are opened once per run, for both passes.
        let mut payees = Opened::default();
        self.take_approved(tenant, campaign_id, &mut payees, &mut answer)
            .await?;
        // Everything in flight whose lease ran out, grouped by the batch it was sent in.
        let now = self.store.clock().now_micros();
        let due = self.in_flight(tenant, campaign_id, now, &mut payees).await?;
        // Those the provider answered once (a reference) are asked about; the others are sent
        // again exactly as they were first sent: their whole batch, none of which was recorded
        // (a batch's outcomes are recorded together).
        let (known, unanswered): (Vec<Taken>, Vec<Taken>) =
            due.into_iter().partition(|t| !t.payout.provider_reference.is_empty());
        let mut batches: BTreeMap<(String, i32), Vec<Taken>> = BTreeMap::new();
        for t in unanswered {
            batches.entry((t.batch.clone(), t.payout.method)).or_default().push(t);
        }
        for ((_, method), batch) in batches {
            answer.submitted += i32::try_from(batch.len()).unwrap_or(i32::MAX);
            self.submit(
                Method::try_from(method).unwrap_or(Method::Unspecified),
                batch,
                &mut answer,
            )
            .await?;
        }
        let mut by_method: BTreeMap<i32, Vec<Taken>> = BTreeMap::new();
        for t in known {
            by_method.entry(t.payout.method).or_default().push(t);
        }
        for (method, polled) in by_method {
            self.poll(
                Method::try_from(method).unwrap_or(Method::Unspecified),
                polled,
                &mut answer,
            )
            .await?;
        }
        Ok(answer)
    }

    /// Approved cash and gift card payouts whose payee is ready become SUBMITTED in batches
    /// (committed before any provider call); the others are BLOCKED with the reason.
    async fn take_approved(
        &self,
        tenant: Option<&str>,
        campaign_id: Option<&str>,
        payees: &mut Opened,
        answer: &mut RunPayoutsResponse,
    ) -> Result<(), Error> {
        let rows = sqlx::query(
            "SELECT id, influencer_id, kind, reason FROM payouts WHERE state IN ($1, $6) AND kind IN ($2, $3) \
             AND ($4 = '' OR tenant = $4) AND ($5 = '' OR campaign_id = $5) AND NOT (state = $6 AND reason = $7) \
             ORDER BY id LIMIT 20000",
        )
        .bind(PayoutState::Approved as i32)
        .bind(PayoutKind::Cash as i32)
        .bind(PayoutKind::GiftCard as i32)
        .bind(tenant.unwrap_or(""))
        .bind(campaign_id.unwrap_or(""))
        // Blocked ones are looked at again each run: a provider configured since, a form
        // filed, are enough to pay them. Not those of an erased payee: nothing brings a
        // destination back (payees::ERASED), so they stay as they are, unread.
        .bind(PayoutState::Blocked as i32)
        .bind(crate::payees::ERASED)
        .fetch_all(&self.store.db().pool)
        .await?;
        let today = crate::payees::today(self.store.clock().now_micros());
        let mut go: BTreeMap<i32, Vec<String>> = BTreeMap::new();
        let mut blocked: Vec<(String, String)> = Vec::new();
        for r in &rows {
            let id: String = r.try_get(0)?;
            let influencer: String = r.try_get(1)?;
            let kind: i32 = r.try_get(2)?;
            if !payees.contains_key(&influencer) {
                let p = self.payees.get(&influencer).await?;
                payees.insert(influencer.clone(), p);
            }
            let payee = payees.get(&influencer).and_then(Option::as_ref);
            let (method, reason) = match (payee, kind == PayoutKind::Cash as i32) {
                (None, _) => (Method::Unspecified, Some("no payee profile yet".to_owned())),
                (Some(p), true) => (
                    Method::try_from(p.profile.cash_method).unwrap_or(Method::Unspecified),
                    p.cash_blocked(today),
                ),
                (Some(p), false) => (Method::Tremendous, p.gift_card_blocked()),
            };
            let reason = reason.or_else(|| {
                self.providers
                    .of(method)
                    .is_none()
                    .then(|| format!("no {method:?} provider configured"))
            });
            let was: String = r.try_get(3)?;
            match reason {
                // Still blocked for the same reason: nothing to write.
                Some(reason) if reason == was => answer.blocked += 1,
                Some(reason) => blocked.push((id, reason)),
                None => go.entry(method as i32).or_default().push(id),
            }
        }
        let now = self.store.clock().now_micros();
        let mut tx = self.store.db().pool.begin().await?;
        for (id, reason) in &blocked {
            sqlx::query(
                "UPDATE payouts SET state = $1, reason = $2, update_time = $3 WHERE id = $4 AND state IN ($5, $1)",
            )
            .bind(PayoutState::Blocked as i32)
            .bind(reason)
            .bind(now)
            .bind(id)
            .bind(PayoutState::Approved as i32)
            .execute(&mut *tx)
            .await?;
        }
        answer.blocked += i32::try_from(blocked.len()).unwrap_or(i32::MAX);
        for (method, ids) in go {
            for chunk in ids.chunks(BATCH) {
                let batch = uuid::Uuid::now_v7().simple().to_string();
                for id in chunk {
                    // Leased already expired, so the in-flight pass right after takes it up. A
                    // payout approved again after it failed is a new submission: the reference of
                    // the failed one is dropped, or the run would only ask about that one again.
                    sqlx::query(
                        "UPDATE payouts SET state = $1, method = $2, batch = $3, lease_until = 0, reason = '', \
                         provider_reference = '', first_attempt = $4, submit_time = $4, update_time = $4 \
                         WHERE id = $5 AND state IN ($6, $7)",
                    )
                    .bind(PayoutState::Submitted as i32)
                    .bind(method)
                    .bind(&batch)
                    .bind(now)
                    .bind(id)
                    .bind(PayoutState::Approved as i32)
                    .bind(PayoutState::Blocked as i32)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Submitted payouts nobody holds a lease on: leased now to this run.
    async fn in_flight(
        &self,
        tenant: Option<&str>,
        campaign_id: Option<&str>,
        now: i64,
        payees: &mut Opened,
    ) -> Result<Vec<Taken>, Error> {
        let lease = now + i64::try_from(self.lease.as_micros()).unwrap_or(i64::MAX);
        let mut tx = self.store.db().pool.begin().await?;
        // The claims below write after this SELECT read; on SQLite a reader cannot become a
        // writer once another run has written (SQLITE_BUSY at once, the busy timeout does not
        // apply), so this transaction is made the writer first and a concurrent run waits.
        crate::ledger::take_write_lock(&mut tx, self.store.backend()).await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {}, id, batch, first_attempt, influencer_id FROM payouts WHERE state = $1 AND lease_until < $2 \
             AND kind IN ($3, $4) AND ($5 = '' OR tenant = $5) AND ($6 = '' OR campaign_id = $6) \
             ORDER BY batch, id LIMIT {IN_FLIGHT}",
            crate::store::COLUMNS
        )))
        .bind(PayoutState::Submitted as i32)
        .bind(now)
        .bind(PayoutKind::Cash as i32)
        .bind(PayoutKind::GiftCard as i32)
        .bind(tenant.unwrap_or(""))
        .bind(campaign_id.unwrap_or(""))
        .fetch_all(&mut *tx)
        .await?;
        // A batch is sent again whole or not at all (PayPal names a batch by what is in it):
        // when the page is full its last batch may be cut, so it waits for the next run.
        let mut rows = rows;
        if rows.len() >= IN_FLIGHT {
            let last: Option<String> = rows.last().map(|r| r.try_get(13)).transpose()?;
            let whole = rows
                .iter()
                .take_while(|r| r.try_get::<String, _>(13).ok() != last)
                .count();
            rows.truncate(whole.max(1));
        }
        let mut taken = Vec::with_capacity(rows.len());
        for r in &rows {
            let payout = payout_of(r)?;
            let tenant: String = r.try_get(11)?;
            let id: String = r.try_get(12)?;
            let batch: String = r.try_get(13)?;
            let first_attempt: i64 = r.try_get(14)?;
            let influencer: String = r.try_get(15)?;
            let claimed = sqlx::query(
                "UPDATE payouts SET lease_until = $1, attempts = attempts + 1 WHERE id = $2 AND state = $3 AND lease_until < $4",
            )
            .bind(lease)
            .bind(&id)
            .bind(PayoutState::Submitted as i32)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if claimed.rows_affected() != 1 {
                continue;
            }
            if !payees.contains_key(&influencer) {
                let p = self.payees.get(&influencer).await?;
                payees.insert(influencer.clone(), p);
            }
            let Some(Some(payee)) = payees.get(&influencer) else {
                continue;
            };
            let Some(order) = order_of(&id, &tenant, &payout, payee, first_attempt) else {
                continue;
            };
            taken.push(Taken {
                id,
                batch,
                tenant,
                payout,
                order,
            });
        }
        tx.commit().await?;
        Ok(taken)
    }

    /// Sends one batch to its provider and records the outcomes, in one transaction.
    async fn submit(&self, method: Method, batch: Vec<Taken>, answer: &mut RunPayoutsResponse) -> Result<(), Error> {
        let Some(provider) = self.providers.of(method) else {
            return Ok(());
        };
        let orders: Vec<PayoutOrder> = batch.iter().map(|t| t.order.clone()).collect();
        let outcomes = provider.submit(&orders, self.store.clock().now_micros()).await;
        self.record(provider.name(), batch, outcomes, answer).await
    }

    /// Asks the provider where payouts it answered before stand (PayPal's pending items).
    async fn poll(&self, method: Method, polled: Vec<Taken>, answer: &mut RunPayoutsResponse) -> Result<(), Error> {
        let Some(provider) = self.providers.of(method) else {
            return Ok(());
        };
        let mut outcomes = Vec::with_capacity(polled.len());
        for t in &polled {
            outcomes.push(provider.status(&t.order, Some(&t.payout.provider_reference)).await);
        }
        self.record(provider.name(), polled, outcomes, answer).await
    }

    async fn record(
        &self,
        provider: &str,
        batch: Vec<Taken>,
        outcomes: Vec<Result<Outcome, ProviderError>>,
        answer: &mut RunPayoutsResponse,
    ) -> Result<(), Error> {
        let mut settled = Vec::with_capacity(batch.len());
        for (t, outcome) in batch.into_iter().zip(outcomes) {
            let s = match outcome {
                Ok(Outcome::Paid { reference }) => Settled::Paid { reference },
                Ok(Outcome::Pending { reference, reason }) => Settled::Pending {
                    reference,
                    reason: reason.unwrap_or_default(),
                },
                Ok(Outcome::Failed { reference, reason }) => Settled::Failed {
                    reference: reference.unwrap_or_default(),
                    reason,
                },
                Ok(Outcome::Returned { reference, reason }) => Settled::Failed {
                    reference,
                    reason: format!("returned: {reason}"),
                },
                Err(ProviderError::Rejected { reason }) => Settled::Failed {
                    reference: String::new(),
                    reason,
                },
                Err(e) => {
                    // Transient or our configuration: nothing is known; the lease runs out and
                    // a later run sends it again under the same keys.
                    tracing::warn!(payout = %t.id, provider, error = %e, "payout not submitted; will retry");
                    Settled::Pending {
                        reference: String::new(),
                        reason: e.to_string(),
                    }
                }
            };
            match &s {
                Settled::Paid { .. } => answer.paid += 1,
                Settled::Pending { .. } => answer.pending += 1,
                Settled::Failed { .. } => answer.failed += 1,
            }
            settled.push(Settlement {
                id: t.id,
                tenant: t.tenant,
                payout: t.payout,
                outcome: s,
            });
        }
        self.store.settle(provider, settled).await
    }
}

/// The provider order of a payout, to the payee's destination; None when the payee's details
/// no longer allow it (the payout waits for them).
fn order_of(id: &str, tenant: &str, p: &Payout, payee: &Record, first_attempt: i64) -> Option<PayoutOrder> {
    let amount = p.amount.clone().unwrap_or_default();
    let destination = match (Method::try_from(p.method).ok()?, PayoutKind::try_from(p.kind).ok()?) {
        (Method::Stripe, PayoutKind::Cash) => Destination::StripeAccount(payee.private.stripe_account.clone()),
        (Method::Paypal, PayoutKind::Cash) => Destination::PayPal {
            email: payee.private.paypal_email.clone(),
        },
        (Method::Tremendous, PayoutKind::GiftCard) => Destination::GiftCard {
            name: payee.private.legal_name.clone(),
            email: payee.private.email.clone(),
            product: p.gift_card_brand.clone(),
        },
        _ => return None,
    };
    Some(PayoutOrder {
        payout_id: id.to_owned(),
        tenant: tenant.to_owned(),
        amount_minor: amount.amount_minor,
        currency: amount.currency_code,
        destination,
        description: format!("Chorus payout for {}", p.deliverable),
        first_attempt_at: first_attempt,
    })
}
