//! Payouts' storage: payout rows and the ledger transfers that move their value, written in one
//! transaction with the events they cause (the kit's outbox) and, for events they answer, the
//! inbox entry that makes a redelivery harmless.

use chorus_kit::clock::{Clock, timestamp};
use chorus_kit::events::envelope;
use chorus_kit::events::outbox::{Inbox, Outbox};
use chorus_kit::idempotency::Claim;
use chorus_kit::storage::{Backend, Database};
use chorus_kit::{Error, ErrorCode};
use chorus_proto::contracts::{Contract, DeliverableApproved};
use chorus_proto::event::Envelope;
use chorus_proto::payouts::*;
use chorus_proto::types::Money;
use prost::Message;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::accounts;
use crate::compensation::{self, Part};
use crate::ledger::{Ledger, TransferKind as Kind, TransferResult, TransferSpec};

/// Payouts' topic.
pub const TOPIC: &str = "chorus.payouts";

/// Who reads: a brand sees its tenant's payouts, an influencer their own.
#[derive(Debug, Clone)]
pub enum Who {
    Brand(String),
    Influencer(String),
}

impl Who {
    fn scope(&self) -> (&'static str, &str) {
        match self {
            Who::Brand(t) => ("tenant", t),
            Who::Influencer(i) => ("influencer_id", i),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Store {
    db: Database,
    outbox: Outbox,
    clock: Clock,
}

/// The columns every payout query reads, in [`payout_of`]'s order.
pub(crate) const COLUMNS: &str = "body, state, method, provider_reference, reason, attempts, approve_time, submit_time, \
                       paid_time, shipment, update_time, tenant";

impl Store {
    pub fn new(db: Database, outbox: Outbox, clock: Clock) -> Self {
        Store { db, outbox, clock }
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn backend(&self) -> Backend {
        self.db.backend
    }

    pub fn db(&self) -> &Database {
        &self.db
    }

    fn now(&self) -> i64 {
        self.clock.now_micros()
    }

    /// A contract became active: each part of its compensation is held on the campaign's
    /// budget (products on its inventory), all or nothing. Answers CompensationHeld, or
    /// CompensationHoldFailed naming the shortfall (the parts are kept as REQUESTED).
    pub async fn hold(&self, consumer: &str, event_id: &str, tenant: &str, contract: &Contract) -> Result<(), Error> {
        let Some((currency, parts)) = compensation::parts(contract) else {
            return Ok(());
        };
        let now = self.now();
        let mut tx = self.db.pool.begin().await?;
        if !Inbox::first_time(&mut tx, &self.clock, consumer, event_id).await? {
            return Ok(());
        }
        let contract_id = id_of(&contract.name, "contracts");
        let campaign_id = id_of(&contract.campaign, "campaigns");
        let influencer_id = id_of(&contract.influencer, "influencers");
        let budget = accounts::budget(tenant, campaign_id, &currency);
        let inventory = accounts::inventory(tenant, campaign_id, &currency);
        let payable = accounts::payable(tenant, influencer_id, &currency);
        Ledger::create_accounts(
            &mut tx,
            self.backend(),
            now,
            &[
                accounts::funding(tenant, &currency),
                budget.clone(),
                inventory.clone(),
                payable.clone(),
            ],
        )
        .await?;
        let ids: Vec<String> = parts.iter().map(|_| uuid::Uuid::now_v7().to_string()).collect();
        let pieces: Vec<(&str, PayoutKind, i64)> = parts
            .iter()
            .zip(&ids)
            .map(|(p, id)| (id.as_str(), p.kind, p.amount))
            .collect();
        let holds = hold_chain(
            tenant,
            &pieces,
            &currency,
            &budget.id,
            &inventory.id,
            &payable.id,
            &contract.name,
        );
        let results = Ledger::create_transfers(&mut tx, self.backend(), now, &holds).await?;
        let failure = results
            .iter()
            .find(|r| !r.is_ok() && !matches!(r, TransferResult::LinkedEventFailed));
        let cash_like: i64 = parts
            .iter()
            .filter(|p| p.kind != PayoutKind::Product)
            .map(|p| p.amount)
            .sum();
        // What the whole contract lacks, not the first refused part: the brand funds that.
        let (state, reason, short) = match failure {
            None => (PayoutState::Held, String::new(), 0),
            Some(f) => {
                let budget_now = Ledger::accounts(&mut tx, tenant, std::slice::from_ref(&budget.id)).await?;
                let available = budget_now
                    .first()
                    .map_or(0, |b| b.credits_posted - b.debits_posted - b.debits_pending);
                let short = (cash_like - available).max(shortfall(f).unwrap_or(0));
                let shown = |minor| display(&currency, minor);
                let reason = format!(
                    "not funded: the campaign budget has {} available, the contract needs {}: short by {}",
                    shown(available),
                    shown(cash_like),
                    shown(short)
                );
                (PayoutState::Requested, reason, short)
            }
        };
        let mut made = Vec::with_capacity(parts.len());
        for (p, id) in parts.iter().zip(&ids) {
            let payout = new_payout(id, contract, p, &currency, now);
            insert_payout(
                &mut tx,
                tenant,
                contract_id,
                campaign_id,
                influencer_id,
                p,
                &payout,
                state,
                &reason,
                now,
            )
            .await?;
            made.push(payout.name);
        }
        let total: i64 = parts.iter().map(|p| p.amount).sum();
        let event = match failure {
            None => envelope(
                &self.clock,
                tenant,
                &CompensationHeld {
                    contract: contract.name.clone(),
                    campaign: contract.campaign.clone(),
                    influencer: contract.influencer.clone(),
                    amount: Some(money(&currency, total)),
                    payouts: made,
                },
            ),
            Some(_) => envelope(
                &self.clock,
                tenant,
                &CompensationHoldFailed {
                    contract: contract.name.clone(),
                    campaign: contract.campaign.clone(),
                    amount: Some(money(&currency, cash_like)),
                    shortfall: Some(money(&currency, short)),
                    reason: reason.clone(),
                },
            ),
        };
        self.commit_with(tx, vec![event]).await
    }

    /// Several activations of one tenant, as [`Store::hold`] applies each, in one transaction:
    /// one inbox statement, one ledger call opening the accounts and one making every hold,
    /// one multi-row insert of the payouts. Only for a batch whose holds all succeed: when one
    /// is refused (a budget short) nothing is written and the answer is false, so the caller
    /// applies the events one by one and each refusal is named as `hold` names it.
    pub async fn hold_many(&self, consumer: &str, tenant: &str, events: &[(&str, &Contract)]) -> Result<bool, Error> {
        let now = self.now();
        let owed: Vec<(&str, &Contract, String, Vec<Part>)> = events
            .iter()
            .filter_map(|(id, c)| compensation::parts(c).map(|(currency, parts)| (*id, *c, currency, parts)))
            .collect();
        if owed.is_empty() {
            return Ok(true);
        }
        let mut tx = self.db.pool.begin().await?;
        let ids: Vec<&str> = owed.iter().map(|(id, ..)| *id).collect();
        let fresh = Inbox::first_times(&mut tx, &self.clock, consumer, &ids).await?;
        let mut accounts = Vec::new();
        let mut holds = Vec::new();
        let mut rows = Vec::new();
        let mut events_out = Vec::new();
        for (event_id, contract, currency, parts) in &owed {
            if !fresh.contains(*event_id) {
                continue;
            }
            let campaign_id = id_of(&contract.campaign, "campaigns");
            let influencer_id = id_of(&contract.influencer, "influencers");
            let budget = accounts::budget(tenant, campaign_id, currency);
            let inventory = accounts::inventory(tenant, campaign_id, currency);
            let payable = accounts::payable(tenant, influencer_id, currency);
            let ids: Vec<String> = parts.iter().map(|_| uuid::Uuid::now_v7().to_string()).collect();
            let pieces: Vec<(&str, PayoutKind, i64)> = parts
                .iter()
                .zip(&ids)
                .map(|(p, id)| (id.as_str(), p.kind, p.amount))
                .collect();
            holds.extend(hold_chain(
                tenant,
                &pieces,
                currency,
                &budget.id,
                &inventory.id,
                &payable.id,
                &contract.name,
            ));
            accounts.extend([accounts::funding(tenant, currency), budget, inventory, payable]);
            let mut made = Vec::with_capacity(parts.len());
            for (p, id) in parts.iter().zip(&ids) {
                let payout = new_payout(id, contract, p, currency, now);
                made.push(payout.name.clone());
                rows.push((*contract, p, payout));
            }
            events_out.push(envelope(
                &self.clock,
                tenant,
                &CompensationHeld {
                    contract: contract.name.clone(),
                    campaign: contract.campaign.clone(),
                    influencer: contract.influencer.clone(),
                    amount: Some(money(currency, parts.iter().map(|p| p.amount).sum())),
                    payouts: made,
                },
            ));
        }
        Ledger::create_accounts(&mut tx, self.backend(), now, &accounts).await?;
        let results = Ledger::create_transfers(&mut tx, self.backend(), now, &holds).await?;
        if results.iter().any(|r| !r.is_ok()) {
            return Ok(false);
        }
        for chunk in rows.chunks(PAYOUT_ROWS_PER_STATEMENT) {
            insert_payouts(&mut tx, tenant, chunk, now).await?;
        }
        self.commit_with(tx, events_out).await?;
        Ok(true)
    }

    /// A deliverable was approved: its cash (and, for the last one, the gift cards and
    /// products) is posted from the hold to the influencer's payable account and the payouts
    /// are approved for the next run.
    pub async fn release(
        &self,
        consumer: &str,
        event_id: &str,
        tenant: &str,
        a: &DeliverableApproved,
    ) -> Result<(), Error> {
        let now = self.now();
        let mut tx = self.db.pool.begin().await?;
        if !Inbox::first_time(&mut tx, &self.clock, consumer, event_id).await? {
            return Ok(());
        }
        let contract_id = id_of(&a.contract, "contracts");
        let rows = sqlx::query(
            "SELECT id, part, amount, currency, state FROM payouts WHERE tenant = $1 AND contract_id = $2 \
             AND state = $3 AND (part = $4 OR ($5 AND part NOT LIKE 'cash:%'))",
        )
        .bind(tenant)
        .bind(contract_id)
        .bind(PayoutState::Held as i32)
        .bind(format!("cash:{}", a.index))
        .bind(a.r#final)
        .fetch_all(&mut *tx)
        .await?;
        let mut posts = Vec::new();
        let mut released = Vec::new();
        for r in &rows {
            let id: String = r.try_get(0)?;
            let part: String = r.try_get(1)?;
            let held: i64 = r.try_get(2)?;
            let currency: String = r.try_get(3)?;
            posts.push(release_spec(tenant, &id, &part, held, &currency, a));
            released.push(id);
        }
        let results = Ledger::create_transfers(&mut tx, self.backend(), now, &posts).await?;
        for (id, r) in released.iter().zip(&results) {
            if !r.is_ok() && !matches!(r, TransferResult::Exists) {
                return Err(ledger_refused("release a hold", r));
            }
            sqlx::query("UPDATE payouts SET state = $1, approve_time = $2, update_time = $2 WHERE id = $3")
                .bind(PayoutState::Approved as i32)
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        self.commit_with(tx, Vec::new()).await
    }

    /// Several approvals of one tenant, as [`Store::release`] applies each, in one
    /// transaction: one inbox statement, one read of the held payouts, one ledger call posting
    /// every release, one update. When the ledger refuses one (or two approvals would release
    /// the same payout) nothing is written and the answer is false: the caller applies them
    /// one by one.
    pub async fn release_many(
        &self,
        consumer: &str,
        tenant: &str,
        approvals: &[(&str, &DeliverableApproved)],
    ) -> Result<bool, Error> {
        if approvals.is_empty() {
            return Ok(true);
        }
        let now = self.now();
        let mut tx = self.db.pool.begin().await?;
        let ids: Vec<&str> = approvals.iter().map(|(id, _)| *id).collect();
        let fresh = Inbox::first_times(&mut tx, &self.clock, consumer, &ids).await?;
        let todo: Vec<&DeliverableApproved> = approvals
            .iter()
            .filter(|(id, _)| fresh.contains(*id))
            .map(|(_, a)| *a)
            .collect();
        let contracts: std::collections::BTreeSet<&str> =
            todo.iter().map(|a| id_of(&a.contract, "contracts")).collect();
        let contracts: Vec<&str> = contracts.into_iter().collect();
        // (contract id, payout id, part, amount held, currency) of every held payout.
        let mut held: Vec<(String, String, String, i64, String)> = Vec::new();
        for chunk in contracts.chunks(1_000) {
            let sql = format!(
                "SELECT contract_id, id, part, amount, currency FROM payouts WHERE tenant = $1 AND state = $2 \
                 AND contract_id IN ({})",
                (3..3 + chunk.len())
                    .map(|i| format!("${i}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(tenant)
                .bind(PayoutState::Held as i32);
            for c in chunk {
                q = q.bind(*c);
            }
            for r in q.fetch_all(&mut *tx).await? {
                held.push((
                    r.try_get(0)?,
                    r.try_get(1)?,
                    r.try_get(2)?,
                    r.try_get(3)?,
                    r.try_get(4)?,
                ));
            }
        }
        let mut posts = Vec::new();
        let mut released: Vec<String> = Vec::new();
        for a in &todo {
            let contract_id = id_of(&a.contract, "contracts");
            let cash_part = format!("cash:{}", a.index);
            for (_, id, part, amount, currency) in held.iter().filter(|(c, _, part, ..)| {
                c == contract_id && (*part == cash_part || (a.r#final && !part.starts_with("cash:")))
            }) {
                if released.contains(id) {
                    return Ok(false);
                }
                posts.push(release_spec(tenant, id, part, *amount, currency, a));
                released.push(id.clone());
            }
        }
        let results = Ledger::create_transfers(&mut tx, self.backend(), now, &posts).await?;
        if results
            .iter()
            .any(|r| !r.is_ok() && !matches!(r, TransferResult::Exists))
        {
            return Ok(false);
        }
        for chunk in released.chunks(1_000) {
            let sql = format!(
                "UPDATE payouts SET state = $1, approve_time = $2, update_time = $2 WHERE id IN ({})",
                (3..3 + chunk.len())
                    .map(|i| format!("${i}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(PayoutState::Approved as i32)
                .bind(now);
            for id in chunk {
                q = q.bind(id.as_str());
            }
            q.execute(&mut *tx).await?;
        }
        self.commit_with(tx, Vec::new()).await?;
        Ok(true)
    }

    /// The contract ended before these payouts were released: their holds are voided.
    pub async fn void(
        &self,
        consumer: &str,
        event_id: &str,
        tenant: &str,
        contract: &str,
        reason: &str,
    ) -> Result<(), Error> {
        let now = self.now();
        let mut tx = self.db.pool.begin().await?;
        if !Inbox::first_time(&mut tx, &self.clock, consumer, event_id).await? {
            return Ok(());
        }
        let contract_id = id_of(contract, "contracts");
        let rows = sqlx::query(
            "SELECT id, state, currency FROM payouts WHERE tenant = $1 AND contract_id = $2 AND state IN ($3, $4)",
        )
        .bind(tenant)
        .bind(contract_id)
        .bind(PayoutState::Held as i32)
        .bind(PayoutState::Requested as i32)
        .fetch_all(&mut *tx)
        .await?;
        let mut voids = Vec::new();
        for r in &rows {
            let id: String = r.try_get(0)?;
            let state: i32 = r.try_get(1)?;
            if state == PayoutState::Held as i32 {
                voids.push(TransferSpec {
                    id: format!("void.{id}"),
                    tenant: tenant.to_owned(),
                    debit_account: String::new(),
                    credit_account: String::new(),
                    amount: 0,
                    currency: r.try_get(2)?,
                    kind: Kind::VoidPending {
                        pending_id: format!("hold.{id}"),
                    },
                    linked: false,
                    code: "void".into(),
                    reference: contract.to_owned(),
                });
            }
            sqlx::query("UPDATE payouts SET state = $1, reason = $2, update_time = $3 WHERE id = $4")
                .bind(PayoutState::Voided as i32)
                .bind(reason)
                .bind(now)
                .bind(&id)
                .execute(&mut *tx)
                .await?;
        }
        for r in Ledger::create_transfers(&mut tx, self.backend(), now, &voids).await? {
            if !r.is_ok() && !matches!(r, TransferResult::Exists) {
                return Err(ledger_refused("void a hold", &r));
            }
        }
        self.commit_with(tx, Vec::new()).await
    }

    /// A deposit into a campaign's budget, answered with the transfer and the budget.
    pub async fn fund(
        &self,
        tenant: &str,
        campaign_id: &str,
        deposit_id: &str,
        amount: &Money,
        source: &str,
        claim: &Claim,
    ) -> Result<FundCampaignResponse, Error> {
        let now = self.now();
        let currency = amount.currency_code.as_str();
        let mut tx = self.db.pool.begin().await?;
        let funding = accounts::funding(tenant, currency);
        let budget = accounts::budget(tenant, campaign_id, currency);
        Ledger::create_accounts(&mut tx, self.backend(), now, &[funding.clone(), budget.clone()]).await?;
        let spec = TransferSpec {
            id: format!("deposit.{deposit_id}"),
            tenant: tenant.to_owned(),
            debit_account: funding.id.clone(),
            credit_account: budget.id.clone(),
            amount: amount.amount_minor,
            currency: currency.to_owned(),
            kind: Kind::Single,
            linked: false,
            code: "deposit".into(),
            reference: source.to_owned(),
        };
        let results = Ledger::create_transfers(&mut tx, self.backend(), now, std::slice::from_ref(&spec)).await?;
        match results.first() {
            Some(TransferResult::Created | TransferResult::Exists) => {}
            Some(r) => return Err(precondition(r.message())),
            None => {
                return Err(Error::new(
                    ErrorCode::Internal,
                    "fund a campaign: the ledger answered nothing",
                ));
            }
        }
        let account = Ledger::accounts(&mut tx, tenant, std::slice::from_ref(&budget.id))
            .await?
            .into_iter()
            .next();
        let response = FundCampaignResponse {
            transfer: Some(crate::api::transfer_of(&spec, now)),
            budget: account.as_ref().map(crate::api::account_of),
        };
        claim.record(&mut tx, &response).await?;
        tx.commit().await?;
        self.rehold(tenant, campaign_id, currency).await?;
        Ok(response)
    }

    /// After a deposit: contracts left unfunded on this campaign are held now, oldest first,
    /// each all or nothing, as far as the budget goes; each held says CompensationHeld.
    async fn rehold(&self, tenant: &str, campaign_id: &str, currency: &str) -> Result<(), Error> {
        let now = self.now();
        let mut tx = self.db.pool.begin().await?;
        let rows = sqlx::query(
            "SELECT contract_id, id, kind, amount, influencer_id, body FROM payouts WHERE tenant = $1 AND campaign_id = $2 \
             AND currency = $3 AND state = $4 ORDER BY contract_id, part",
        )
        .bind(tenant)
        .bind(campaign_id)
        .bind(currency)
        .bind(PayoutState::Requested as i32)
        .fetch_all(&mut *tx)
        .await?;
        // Per contract: its payouts' ids, kinds and amounts, and one of its payouts.
        let mut contracts: Vec<(String, Vec<Piece>, Payout)> = Vec::new();
        for r in &rows {
            let contract_id: String = r.try_get(0)?;
            let piece = (
                r.try_get::<String, _>(1)?,
                PayoutKind::try_from(r.try_get::<i32, _>(2)?).unwrap_or(PayoutKind::Cash),
                r.try_get::<i64, _>(3)?,
            );
            match contracts.last_mut() {
                Some((c, pieces, _)) if *c == contract_id => pieces.push(piece),
                _ => {
                    let body: Vec<u8> = r.try_get(5)?;
                    let payout = Payout::decode(body.as_slice()).map_err(|e| Error::internal("decode payout", e))?;
                    contracts.push((contract_id, vec![piece], payout));
                }
            }
        }
        if contracts.is_empty() {
            return Ok(());
        }
        let budget = accounts::budget(tenant, campaign_id, currency);
        let inventory = accounts::inventory(tenant, campaign_id, currency);
        let mut events = Vec::new();
        for (_, pieces, sample) in &contracts {
            let influencer_id = id_of(&sample.influencer, "influencers");
            let payable = accounts::payable(tenant, influencer_id, currency);
            let refs: Vec<(&str, PayoutKind, i64)> = pieces.iter().map(|(id, k, a)| (id.as_str(), *k, *a)).collect();
            let chain = hold_chain(
                tenant,
                &refs,
                currency,
                &budget.id,
                &inventory.id,
                &payable.id,
                &sample.contract,
            );
            let results = Ledger::create_transfers(&mut tx, self.backend(), now, &chain).await?;
            if !results
                .iter()
                .all(|r| matches!(r, TransferResult::Created | TransferResult::Exists))
            {
                continue;
            }
            for (id, _, _) in pieces {
                sqlx::query("UPDATE payouts SET state = $1, reason = '', update_time = $2 WHERE id = $3")
                    .bind(PayoutState::Held as i32)
                    .bind(now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            events.push(envelope(
                &self.clock,
                tenant,
                &CompensationHeld {
                    contract: sample.contract.clone(),
                    campaign: sample.campaign.clone(),
                    influencer: sample.influencer.clone(),
                    amount: Some(money(currency, pieces.iter().map(|p| p.2).sum())),
                    payouts: pieces.iter().map(|p| format!("payouts/{}", p.0)).collect(),
                },
            ));
        }
        self.commit_with(tx, events).await
    }

    pub async fn payout(&self, who: &Who, id: &str) -> Result<Option<Payout>, Error> {
        let (column, value) = who.scope();
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM payouts WHERE id = $1 AND {column} = $2"
        )))
        .bind(id)
        .bind(value)
        .fetch_optional(&self.db.pool)
        .await?;
        row.as_ref().map(payout_of).transpose()
    }

    /// Payouts newest first, filtered; `after` is the last id of the previous page.
    pub async fn payouts(
        &self,
        who: &Who,
        filter: &Filter,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Payout>, Error> {
        let (column, value) = who.scope();
        let mut sql = format!("SELECT {COLUMNS} FROM payouts WHERE {column} = $1");
        let mut binds: Vec<String> = vec![value.to_owned()];
        for (col, v) in [
            ("campaign_id", &filter.campaign_id),
            ("contract_id", &filter.contract_id),
            ("influencer_id", &filter.influencer_id),
        ] {
            if let Some(v) = v {
                binds.push(v.clone());
                sql.push_str(&format!(" AND {col} = ${}", binds.len()));
            }
        }
        if let Some(after) = after {
            binds.push(after.to_owned());
            sql.push_str(&format!(" AND id < ${}", binds.len()));
        }
        if let Some(state) = filter.state {
            sql.push_str(&format!(" AND state = {}", state as i32));
        }
        sql.push_str(&format!(" ORDER BY id DESC LIMIT {limit}"));
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in binds {
            q = q.bind(b);
        }
        q.fetch_all(&self.db.pool).await?.iter().map(payout_of).collect()
    }

    /// Records provider outcomes: a paid payout moves from payable to the provider's clearing account
    /// and says PayoutPaid; a failed one stays owed (payable keeps it), FAILED with the reason
    /// until the payee fixes their details, and says PayoutFailed; a pending one keeps its
    /// reference and is asked about again after its lease.
    pub async fn settle(&self, provider: &str, settled: Vec<Settlement>) -> Result<(), Error> {
        let now = self.clock.now_micros();
        let mut tx = self.db.pool.begin().await?;
        let mut transfers = Vec::new();
        let mut events = Vec::new();
        let mut made = std::collections::BTreeSet::new();
        for t in &settled {
            let s = &t.outcome;
            let amount = t.payout.amount.clone().unwrap_or_default();
            let (state, reference, reason, paid_time) = match s {
                Settled::Paid { reference } => (PayoutState::Paid, reference, "", now),
                Settled::Failed { reference, reason } => (PayoutState::Failed, reference, reason.as_str(), 0),
                Settled::Pending { reference, reason } => (PayoutState::Submitted, reference, reason.as_str(), 0),
            };
            let done = sqlx::query(
                "UPDATE payouts SET state = $1, provider_reference = CASE WHEN $2 = '' THEN provider_reference ELSE $2 END, \
                 reason = $3, paid_time = $4, lease_until = CASE WHEN $1 = $5 THEN lease_until ELSE 0 END, update_time = $6 \
                 WHERE id = $7 AND state = $5",
            )
            .bind(state as i32)
            .bind(reference)
            .bind(reason)
            .bind(paid_time)
            .bind(PayoutState::Submitted as i32)
            .bind(now)
            .bind(&t.id)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                continue;
            }
            match s {
                Settled::Paid { .. } => {
                    let influencer_id = id_of(&t.payout.influencer, "influencers");
                    let payable = accounts::payable(&t.tenant, influencer_id, &amount.currency_code);
                    let clearing = accounts::clearing(&t.tenant, provider, &amount.currency_code);
                    if made.insert(clearing.id.clone() + &t.tenant) {
                        Ledger::create_accounts(&mut tx, self.backend(), now, std::slice::from_ref(&clearing)).await?;
                    }
                    transfers.push(TransferSpec {
                        id: format!("paid.{}", t.id),
                        tenant: t.tenant.clone(),
                        debit_account: payable.id,
                        credit_account: clearing.id,
                        amount: amount.amount_minor,
                        currency: amount.currency_code.clone(),
                        kind: Kind::Single,
                        linked: false,
                        code: "payout".into(),
                        reference: t.payout.name.clone(),
                    });
                    events.push(envelope(
                        &self.clock,
                        &t.tenant,
                        &PayoutPaid {
                            payout: t.payout.name.clone(),
                            contract: t.payout.contract.clone(),
                            campaign: t.payout.campaign.clone(),
                            influencer: t.payout.influencer.clone(),
                            deliverable: t.payout.deliverable.clone(),
                            kind: t.payout.kind,
                            amount: Some(amount),
                            provider: provider.to_owned(),
                        },
                    ));
                }
                Settled::Failed { reason, .. } => events.push(envelope(
                    &self.clock,
                    &t.tenant,
                    &PayoutFailed {
                        payout: t.payout.name.clone(),
                        contract: t.payout.contract.clone(),
                        campaign: t.payout.campaign.clone(),
                        influencer: t.payout.influencer.clone(),
                        amount: Some(amount),
                        provider: provider.to_owned(),
                        reason: reason.clone(),
                    },
                )),
                Settled::Pending { .. } => {}
            }
        }
        for r in Ledger::create_transfers(&mut tx, self.backend(), now, &transfers).await? {
            if !matches!(r, TransferResult::Created | TransferResult::Exists) {
                return Err(ledger_refused("record paid payouts", &r));
            }
        }
        self.commit_with(tx, events).await
    }

    /// A paid payout taken back by its provider: the money returns from the provider's
    /// clearing account to the campaign's budget; PayoutReversed.
    pub async fn reversed(&self, tenant: &str, payout: &Payout, provider: &str, reason: &str) -> Result<(), Error> {
        let now = self.now();
        let id = id_of(&payout.name, "payouts");
        let amount = payout.amount.clone().unwrap_or_default();
        let currency = amount.currency_code.as_str();
        let clearing = accounts::clearing(tenant, provider, currency);
        let budget = accounts::budget(tenant, id_of(&payout.campaign, "campaigns"), currency);
        let mut tx = self.db.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE payouts SET state = $1, reason = $2, update_time = $3 WHERE id = $4 AND tenant = $5 AND state = $6",
        )
        .bind(PayoutState::Reversed as i32)
        .bind(reason)
        .bind(now)
        .bind(id)
        .bind(tenant)
        .bind(PayoutState::Paid as i32)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(precondition(format!("payouts/{id} is no longer paid")));
        }
        let spec = TransferSpec {
            id: format!("reversal.{id}"),
            tenant: tenant.to_owned(),
            debit_account: clearing.id,
            credit_account: budget.id,
            amount: amount.amount_minor,
            currency: currency.to_owned(),
            kind: Kind::Single,
            linked: false,
            code: "reversal".into(),
            reference: payout.name.clone(),
        };
        match Ledger::create_transfers(&mut tx, self.backend(), now, std::slice::from_ref(&spec))
            .await?
            .first()
        {
            Some(TransferResult::Created | TransferResult::Exists) => {}
            Some(r) => return Err(precondition(r.message())),
            None => {
                return Err(Error::new(
                    ErrorCode::Internal,
                    "reverse a payout: the ledger answered nothing",
                ));
            }
        }
        let event = envelope(
            &self.clock,
            tenant,
            &PayoutReversed {
                payout: payout.name.clone(),
                contract: payout.contract.clone(),
                campaign: payout.campaign.clone(),
                influencer: payout.influencer.clone(),
                amount: Some(amount),
                reason: reason.to_owned(),
            },
        );
        self.commit_with(tx, vec![event]).await
    }

    /// Commits `tx` with `events`, and wakes the relay.
    pub(crate) async fn commit_with(
        &self,
        mut tx: sqlx::Transaction<'static, sqlx::Any>,
        events: Vec<Envelope>,
    ) -> Result<(), Error> {
        if !events.is_empty() {
            self.outbox.add_many(&mut tx, TOPIC, &events).await?;
        }
        tx.commit().await?;
        if !events.is_empty() {
            self.outbox.committed();
        }
        Ok(())
    }
}

/// What became of a submitted payout.
#[derive(Debug, Clone)]
pub enum Settled {
    Paid {
        reference: String,
    },
    /// Not final yet; `reason` says why when the provider or the transport says (UNCLAIMED).
    Pending {
        reference: String,
        reason: String,
    },
    Failed {
        reference: String,
        reason: String,
    },
}

/// A payout and what its provider (or carrier) said of it.
#[derive(Debug, Clone)]
pub struct Settlement {
    pub id: String,
    pub tenant: String,
    pub payout: Payout,
    pub outcome: Settled,
}

/// What ListPayouts filters on, beside the caller.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub campaign_id: Option<String>,
    pub contract_id: Option<String>,
    pub influencer_id: Option<String>,
    pub state: Option<PayoutState>,
}

/// The holds of one contract's payouts: cash and gift cards on the budget, products on the
/// inventory, each for the influencer's payable account, linked so they all succeed or none.
fn hold_chain(
    tenant: &str,
    pieces: &[(&str, PayoutKind, i64)],
    currency: &str,
    budget: &str,
    inventory: &str,
    payable: &str,
    contract: &str,
) -> Vec<TransferSpec> {
    pieces
        .iter()
        .enumerate()
        .map(|(i, (id, kind, amount))| TransferSpec {
            id: format!("hold.{id}"),
            tenant: tenant.to_owned(),
            debit_account: if *kind == PayoutKind::Product {
                inventory
            } else {
                budget
            }
            .to_owned(),
            credit_account: payable.to_owned(),
            amount: *amount,
            currency: currency.to_owned(),
            kind: Kind::Pending,
            linked: i + 1 < pieces.len(),
            code: "hold".into(),
            reference: contract.to_owned(),
        })
        .collect()
}

/// The transfer that posts payout `id`'s hold (`held` of `currency`) on approval `a`. Cash
/// releases what the contract says this deliverable releases, never more than the hold; the
/// two agree by construction (compensation::cash_releases).
fn release_spec(
    tenant: &str,
    id: &str,
    part: &str,
    held: i64,
    currency: &str,
    a: &DeliverableApproved,
) -> TransferSpec {
    let amount = match (&a.cash_release, part.starts_with("cash:")) {
        (Some(m), true) if m.amount_minor > 0 => m.amount_minor.min(held),
        _ => held,
    };
    if amount != held {
        tracing::warn!(payout = %id, held, amount, "release differs from the hold; posting the release");
    }
    TransferSpec {
        id: format!("release.{id}"),
        tenant: tenant.to_owned(),
        debit_account: String::new(),
        credit_account: String::new(),
        amount,
        currency: currency.to_owned(),
        kind: Kind::PostPending {
            pending_id: format!("hold.{id}"),
        },
        linked: false,
        code: "release".into(),
        reference: a.deliverable.clone(),
    }
}

/// A payout's id, kind and amount: what its hold needs.
type Piece = (String, PayoutKind, i64);

/// FAILED_PRECONDITION with `message`.
pub(crate) fn precondition(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::FailedPrecondition, message)
}

/// The ledger refused what the service's own bookkeeping asked: a bug, logged whole.
fn ledger_refused(context: &str, r: &TransferResult) -> Error {
    tracing::error!(reason = r.reason(), detail = %r.message(), "{context}: the ledger refused");
    Error::new(
        ErrorCode::Internal,
        format!("{context}: the ledger refused ({})", r.reason()),
    )
}

/// What a refused hold lacked, when the budget was short.
fn shortfall(r: &TransferResult) -> Option<i64> {
    match r {
        TransferResult::InsufficientFunds { shortfall, .. } => Some(*shortfall),
        _ => None,
    }
}

/// "USD 150.00", as people read money.
fn display(currency: &str, minor: i64) -> String {
    match chorus_catalog::money::Currency::parse(currency) {
        Some(c) => chorus_catalog::money::Money::new(c, minor).to_string(),
        None => format!("{minor} {currency} minor units"),
    }
}

fn money(currency: &str, minor: i64) -> Money {
    Money {
        currency_code: currency.to_owned(),
        amount_minor: minor,
    }
}

/// The id in a resource name ("contracts/abc" -> "abc"); the name itself when it has no prefix.
pub fn id_of<'a>(name: &'a str, collection: &str) -> &'a str {
    name.strip_prefix(collection)
        .and_then(|r| r.strip_prefix('/'))
        .unwrap_or(name)
}

fn new_payout(id: &str, contract: &Contract, p: &Part, currency: &str, now: i64) -> Payout {
    Payout {
        name: format!("payouts/{id}"),
        contract: contract.name.clone(),
        campaign: contract.campaign.clone(),
        influencer: contract.influencer.clone(),
        deliverable: format!("{}/deliverables/{}", contract.name, p.deliverable),
        kind: p.kind as i32,
        amount: Some(money(currency, p.amount)),
        gift_card_brand: if p.kind == PayoutKind::GiftCard {
            p.label.clone()
        } else {
            String::new()
        },
        shipment: (p.kind == PayoutKind::Product).then(|| Shipment {
            sku: p.label.clone(),
            title: p.title.clone(),
            quantity: p.quantity,
            declared_value: Some(money(currency, p.unit_value)),
            ..Default::default()
        }),
        create_time: Some(timestamp(now)),
        ..Default::default()
    }
}

/// Payouts per multi-row insert (14 parameters each).
const PAYOUT_ROWS_PER_STATEMENT: usize = 500;

/// Freshly held payouts of `tenant`, each with its contract and part, in one statement.
async fn insert_payouts(
    conn: &mut AnyConnection,
    tenant: &str,
    rows: &[(&Contract, &Part, Payout)],
    now: i64,
) -> Result<(), Error> {
    let sql = format!(
        "INSERT INTO payouts (id, tenant, contract_id, campaign_id, influencer_id, part, deliverable, state, kind, \
         currency, amount, reason, body, update_time) VALUES {}",
        chorus_kit::storage::placeholders(rows.len(), 14, 1)
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (contract, p, payout) in rows {
        let currency = payout
            .amount
            .as_ref()
            .map(|m| m.currency_code.clone())
            .unwrap_or_default();
        q = q
            .bind(id_of(&payout.name, "payouts").to_owned())
            .bind(tenant.to_owned())
            .bind(id_of(&contract.name, "contracts").to_owned())
            .bind(id_of(&contract.campaign, "campaigns").to_owned())
            .bind(id_of(&contract.influencer, "influencers").to_owned())
            .bind(p.key.clone())
            .bind(p.deliverable)
            .bind(PayoutState::Held as i32)
            .bind(p.kind as i32)
            .bind(currency)
            .bind(p.amount)
            .bind(String::new())
            .bind(payout.encode_to_vec())
            .bind(now);
    }
    q.execute(conn).await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn insert_payout(
    conn: &mut AnyConnection,
    tenant: &str,
    contract_id: &str,
    campaign_id: &str,
    influencer_id: &str,
    p: &Part,
    payout: &Payout,
    state: PayoutState,
    reason: &str,
    now: i64,
) -> Result<(), Error> {
    let currency = payout
        .amount
        .as_ref()
        .map(|m| m.currency_code.clone())
        .unwrap_or_default();
    sqlx::query(
        "INSERT INTO payouts (id, tenant, contract_id, campaign_id, influencer_id, part, deliverable, state, kind, \
         currency, amount, reason, body, update_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(id_of(&payout.name, "payouts"))
    .bind(tenant)
    .bind(contract_id)
    .bind(campaign_id)
    .bind(influencer_id)
    .bind(&p.key)
    .bind(p.deliverable)
    .bind(state as i32)
    .bind(p.kind as i32)
    .bind(currency)
    .bind(p.amount)
    .bind(reason)
    .bind(payout.encode_to_vec())
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// A payout as stored: its body as made, overlaid with the columns that change.
pub fn payout_of(r: &AnyRow) -> Result<Payout, Error> {
    let body: Vec<u8> = r.try_get(0)?;
    let mut p = Payout::decode(body.as_slice()).map_err(|e| Error::internal("decode payout", e))?;
    p.state = r.try_get(1)?;
    p.method = r.try_get(2)?;
    p.provider_reference = r.try_get(3)?;
    let reason: String = r.try_get(4)?;
    if p.state == PayoutState::Failed as i32 {
        p.failure_reason = reason;
    } else if [PayoutState::Blocked, PayoutState::Requested, PayoutState::Submitted]
        .iter()
        .any(|s| p.state == *s as i32)
    {
        // For a submitted payout: why it is still pending (PayPal's UNCLAIMED, a provider
        // that did not answer), the only place the proto has for it.
        p.blocked_reason = reason;
    }
    p.attempts = r.try_get(5)?;
    let at = |i: usize| -> Result<Option<prost_types::Timestamp>, Error> {
        let v: i64 = r.try_get(i)?;
        Ok((v > 0).then(|| timestamp(v)))
    };
    p.approve_time = at(6)?;
    p.submit_time = at(7)?;
    p.paid_time = at(8)?;
    let shipment: Option<Vec<u8>> = r.try_get(9)?;
    if let Some(s) = shipment {
        p.shipment = Some(Shipment::decode(s.as_slice()).map_err(|e| Error::internal("decode shipment", e))?);
    }
    p.update_time = at(10)?;
    Ok(p)
}
