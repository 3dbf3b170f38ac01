//! Reports over payouts: reconciliation against the providers' own records, and the year's
//! 1099-NEC report. Both read payouts and payee profiles; the rules are the providers'
//! `reconcile` and `domain::tax`.

use std::collections::BTreeMap;

use chorus_kit::Error;
use chorus_proto::payouts::*;
use chorus_proto::types::Money;
use sqlx::Row;

use crate::Extra;
use crate::domain::tax::{self, PaymentKind, TinDisplay};
use crate::payees::Record;
use crate::providers::{self, LedgerView, RecordStatus};
use crate::store::{COLUMNS, id_of, payout_of};

/// Payouts sent to a provider in the last 90 days (or of one campaign), against the
/// provider's records: each difference once.
pub async fn reconcile(extra: &Extra, tenant: &str, campaign_id: Option<&str>) -> Result<ReconcileResponse, Error> {
    let now = extra.store.clock().now_micros();
    let since = now - 90 * 86_400_000_000;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS}, influencer_id FROM payouts WHERE tenant = $1 AND ($2 = '' OR campaign_id = $2) \
         AND method IN ($3, $4, $5) AND state IN ($6, $7, $8, $9) AND ($2 <> '' OR submit_time >= $10) ORDER BY id"
    )))
    .bind(tenant)
    .bind(campaign_id.unwrap_or(""))
    .bind(Method::Stripe as i32)
    .bind(Method::Paypal as i32)
    .bind(Method::Tremendous as i32)
    .bind(PayoutState::Submitted as i32)
    .bind(PayoutState::Paid as i32)
    .bind(PayoutState::Failed as i32)
    .bind(PayoutState::Reversed as i32)
    .bind(since)
    .fetch_all(&extra.store.db().pool)
    .await?;
    let mut payees: BTreeMap<String, Option<Record>> = BTreeMap::new();
    let mut views: BTreeMap<i32, Vec<LedgerView>> = BTreeMap::new();
    // Each erased payee's pseudonym: reconciliation is the brand's, and a brand never reads a
    // payee's personal details (the payout and influencer names identify the others).
    let mut whose: BTreeMap<String, String> = BTreeMap::new();
    for r in &rows {
        let p = payout_of(r)?;
        let influencer: String = r.try_get(12)?;
        if !payees.contains_key(&influencer) {
            payees.insert(influencer.clone(), extra.payees.get(&influencer).await?);
        }
        let payee = payees.get(&influencer).and_then(Option::as_ref);
        let destination = match (Method::try_from(p.method), payee) {
            (Ok(Method::Stripe), Some(r)) => r.private.stripe_account.clone(),
            (Ok(Method::Paypal), Some(r)) => r.private.paypal_email.clone(),
            (Ok(Method::Tremendous), Some(r)) => r.private.email.clone(),
            _ => String::new(),
        };
        if let Some(pseudonym) = payee.and_then(Record::pseudonym) {
            whose.insert(id_of(&p.name, "payouts").to_owned(), pseudonym.to_owned());
        }
        let amount = p.amount.clone().unwrap_or_default();
        let status = match PayoutState::try_from(p.state) {
            Ok(PayoutState::Paid) => RecordStatus::Paid,
            Ok(PayoutState::Failed) => RecordStatus::Failed,
            Ok(PayoutState::Reversed) => RecordStatus::Returned,
            _ => RecordStatus::Pending,
        };
        views.entry(p.method).or_default().push(LedgerView {
            payout_id: id_of(&p.name, "payouts").to_owned(),
            reference: (!p.provider_reference.is_empty()).then(|| p.provider_reference.clone()),
            amount_minor: amount.amount_minor,
            currency: amount.currency_code,
            destination,
            status,
        });
    }
    // The providers' records that can be ours: from the first submission compared (the 90
    // days, or the campaign's first) until now. A payout is SUBMITTED, with its time, before
    // the provider is called, so its records are never older than that.
    let mut first = since;
    if campaign_id.is_some() {
        for r in &rows {
            let p = payout_of(r)?;
            if let Some(t) = p.submit_time.as_ref() {
                first = first.min(chorus_kit::clock::micros(t));
            }
        }
    }
    let period = providers::Period::around(first, now);
    let mut answer = ReconcileResponse {
        compared: i32::try_from(rows.len()).unwrap_or(i32::MAX),
        differences: vec![],
    };
    for (method, ours) in views {
        let method = Method::try_from(method).unwrap_or(Method::Unspecified);
        let Some(provider) = extra.providers.of(method) else {
            continue;
        };
        let theirs = provider.records(&ours, &period).await.map_err(|e| {
            Error::new(
                chorus_kit::ErrorCode::Unavailable,
                format!("{} records unavailable: {e}", provider.name()),
            )
        })?;
        for d in providers::reconcile(&ours, &theirs) {
            // The provider account is shared by every tenant: a record of another tenant's
            // payout is theirs to reconcile, not unknown.
            if let providers::Difference::UnknownToUs {
                payout_id: Some(id), ..
            } = &d
                && another_tenants(extra, tenant, id).await?
            {
                continue;
            }
            let mut found = difference(provider.name(), &d);
            if let Some(name) = whose.get(id_of(&found.payout, "payouts")) {
                name.clone_into(&mut found.payee);
            }
            answer.differences.push(found);
        }
    }
    Ok(answer)
}

/// `id` is a payout of a tenant other than `tenant`.
async fn another_tenants(extra: &Extra, tenant: &str, id: &str) -> Result<bool, Error> {
    let owner: Option<String> = sqlx::query_scalar("SELECT tenant FROM payouts WHERE id = $1")
        .bind(id)
        .fetch_optional(&extra.store.db().pool)
        .await?;
    Ok(owner.is_some_and(|t| t != tenant))
}

fn difference(provider: &str, d: &providers::Difference) -> Difference {
    use providers::Difference as D;
    let payout = |id: &str| format!("payouts/{id}");
    let (payout, kind, reference, detail) = match d {
        D::MissingAtProvider { payout_id } => (
            payout(payout_id),
            "missing_at_provider",
            String::new(),
            "we sent it; the provider has no record".to_owned(),
        ),
        D::UnknownToUs {
            reference,
            payout_id,
            amount_minor,
            currency,
            destination,
        } => (
            payout_id.as_deref().map(payout).unwrap_or_default(),
            "unknown_to_us",
            reference.clone(),
            format!(
                "the provider moved {amount_minor} {currency} minor units to {destination}; no payout of ours asked"
            ),
        ),
        D::AmountDiffers {
            payout_id,
            reference,
            ours,
            theirs,
        } => (
            payout(payout_id),
            "amount_differs",
            reference.clone(),
            format!("ours {ours}, theirs {theirs} (minor units)"),
        ),
        D::CurrencyDiffers {
            payout_id,
            reference,
            ours,
            theirs,
        } => (
            payout(payout_id),
            "currency_differs",
            reference.clone(),
            format!("ours {ours}, theirs {theirs}"),
        ),
        D::StatusDiffers {
            payout_id,
            reference,
            ours,
            theirs,
        } => (
            payout(payout_id),
            "status_differs",
            reference.clone(),
            format!("ours {ours:?}, theirs {theirs:?}"),
        ),
        D::DestinationDiffers {
            payout_id, reference, ..
        } => (
            payout(payout_id),
            "destination_differs",
            reference.clone(),
            "the provider paid another destination than the payee's".to_owned(),
        ),
        D::PaidTwice { payout_id, references } => (
            payout(payout_id),
            "paid_twice",
            references.join(" "),
            format!("{} records moved money", references.len()),
        ),
    };
    Difference {
        payout,
        kind: kind.to_owned(),
        provider: provider.to_owned(),
        provider_reference: reference,
        detail,
        payee: String::new(),
    }
}

/// The year's 1099-NEC report: the tenant's payouts paid in `year` (cash, gift cards at face
/// value, products at declared value), per payee, those at or over the year's threshold.
pub async fn tax_report(extra: &Extra, tenant: &str, year: i32, unmasked: bool) -> Result<GetTaxReportResponse, Error> {
    let rules = tax::TaxRules::builtin()?;
    let threshold = rules
        .threshold(year)
        .ok_or_else(|| Error::invalid_field("year", format!("no 1099-NEC threshold is known for {year}")))?
        .clone();
    let rows = sqlx::query(
        "SELECT influencer_id, kind, currency, amount, paid_time FROM payouts WHERE tenant = $1 AND state = $2",
    )
    .bind(tenant)
    .bind(PayoutState::Paid as i32)
    .fetch_all(&extra.store.db().pool)
    .await?;
    let mut payments = Vec::new();
    let mut payees = BTreeMap::new();
    let today = crate::payees::today(extra.store.clock().now_micros());
    for r in &rows {
        let influencer: String = r.try_get(0)?;
        let paid_time: i64 = r.try_get(4)?;
        let paid_on = crate::payees::today(paid_time);
        if paid_on.year() != year {
            continue;
        }
        let kind = match PayoutKind::try_from(r.try_get::<i32, _>(1)?) {
            Ok(PayoutKind::GiftCard) => PaymentKind::GiftCard,
            Ok(PayoutKind::Product) => PaymentKind::Product,
            _ => PaymentKind::Cash,
        };
        if !payees.contains_key(&influencer)
            && let Some(record) = extra.payees.get(&influencer).await?
        {
            // An erased payee prints their retained identity for a year still kept, else
            // their pseudonym (domain::erasure).
            payees.insert(influencer.clone(), record.tax_payee(year, today));
        }
        payments.push(tax::Payment {
            payee_id: influencer,
            paid_on,
            kind,
            currency: r.try_get(2)?,
            amount_minor: r.try_get(3)?,
        });
    }
    let payees: Vec<_> = payees.into_values().collect();
    let report = tax::yearly_report(rules, year, &payees, &payments)?;
    let csv = tax::to_csv(&report, if unmasked { TinDisplay::Full } else { TinDisplay::Masked })?;
    Ok(GetTaxReportResponse {
        year,
        threshold: Some(Money {
            currency_code: "USD".into(),
            amount_minor: threshold.minimum_cents,
        }),
        csv: csv.into_bytes(),
        rows: i32::try_from(report.rows.len()).unwrap_or(i32::MAX),
    })
}
