//! The payee book: each influencer's payment details, shipping address and tax form, kept by
//! the influencer themselves. What identifies or locates a person (legal name, email, payment
//! destinations, address, tax id) is sealed at rest with AES-256-GCM, bound to its row; it is
//! shown back masked, never logged and never put in an event. The runner opens it to pay.
//!
//! Erasure (registry's `InfluencerDeleted`, rules in `domain::erasure`): the profile and its
//! sealed details are deleted; what stays is a row in `erased_payees` with the payee's stable
//! pseudonym and, while the law keeps it, the identity printed on their 1099s, sealed like any
//! PII and dropped once its `retain_until` has passed (each payout run drops what expired, and
//! reports never print an expired one). Payouts still owed to an erased payee are BLOCKED with
//! "payee erased": nothing is sent to a destination that is gone.

use std::sync::Arc;

use chorus_kit::Error;
use chorus_kit::clock::{Clock, timestamp};
use chorus_kit::events::outbox::Inbox;
use chorus_kit::storage::Database;
use chorus_proto::payouts::{Address, Method, Payee, PayoutState, TaxForm};
use prost::Message;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::domain::date::Date;
use crate::domain::erasure;
use crate::domain::payee as rules;
use crate::domain::pii::{Binding, PiiKeys, Sealed};
use crate::domain::tax;

/// What is sealed, as one JSON document per payee. Its Debug shows which fields are set, never
/// their values, so a stray log line cannot leak them.
#[derive(Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct Private {
    pub legal_name: String,
    pub email: String,
    pub stripe_account: String,
    pub paypal_email: String,
    pub address: Option<PrivateAddress>,
    pub tax_id: String,
    /// "SSN", "ITIN" or "EIN".
    pub tin_kind: String,
}

#[derive(Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct PrivateAddress {
    pub name: String,
    pub line1: String,
    pub line2: String,
    pub city: String,
    pub region: String,
    pub postal_code: String,
    pub country_code: String,
}

impl std::fmt::Debug for Private {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |v: &str| if v.is_empty() { "empty" } else { "[redacted]" };
        f.debug_struct("Private")
            .field("legal_name", &set(&self.legal_name))
            .field("email", &set(&self.email))
            .field("stripe_account", &set(&self.stripe_account))
            .field("paypal_email", &set(&self.paypal_email))
            .field("address", &self.address)
            .field("tax_id", &set(&self.tax_id))
            .field("tin_kind", &self.tin_kind)
            .finish()
    }
}

impl std::fmt::Debug for PrivateAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The country alone identifies nobody and explains tax and shipping decisions.
        f.debug_struct("PrivateAddress")
            .field("country_code", &self.country_code)
            .finish_non_exhaustive()
    }
}

impl PrivateAddress {
    fn input(&self) -> rules::AddressInput<'_> {
        rules::AddressInput {
            name: &self.name,
            line1: &self.line1,
            line2: &self.line2,
            city: &self.city,
            region: &self.region,
            postal_code: &self.postal_code,
            country: &self.country_code,
        }
    }
}

/// A payee as the runner sees it: the public profile and the opened private part.
#[derive(Debug, Clone)]
pub struct Record {
    pub influencer_id: String,
    pub profile: Payee,
    pub private: Private,
    /// Set once the payee is erased: `private` is then empty.
    pub erased: Option<Erased>,
}

/// What stays of an erased payee.
#[derive(Clone)]
pub struct Erased {
    /// Shown in place of the name in statements and reports.
    pub pseudonym: String,
    /// The identity printed on their filed 1099s, while retention lasts.
    pub retained: Option<Retained>,
}

/// The identity kept for filed 1099s (name, TIN, address: the tax-relevant part of
/// [`Private`], the rest empty), with the years it is kept for.
#[derive(Clone)]
pub struct Retained {
    pub identity: Private,
    pub years: Vec<i32>,
    pub retain_until: Date,
}

/// Kept for the law, not for logs: Debug shows the years and the date only.
impl std::fmt::Debug for Retained {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Retained {{ years: {:?}, retain_until: {}, identity: [redacted] }}",
            self.years, self.retain_until
        )
    }
}

impl std::fmt::Debug for Erased {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Erased {{ pseudonym: {}, retained: {:?} }}",
            self.pseudonym, self.retained
        )
    }
}

/// The message payouts still owed to an erased payee are blocked with.
pub const ERASED: &str = "payee erased";

impl Record {
    /// Why cash cannot be paid to this payee yet, if anything: no destination for the chosen
    /// method, or the tax form the rules require (domain::tax).
    pub fn cash_blocked(&self, today: Date) -> Option<String> {
        if self.erased.is_some() {
            return Some(ERASED.into());
        }
        match Method::try_from(self.profile.cash_method).unwrap_or(Method::Unspecified) {
            Method::Stripe if self.private.stripe_account.is_empty() => {
                return Some("no Stripe account on file".into());
            }
            Method::Paypal if self.private.paypal_email.is_empty() => return Some("no PayPal email on file".into()),
            Method::Stripe | Method::Paypal => {}
            _ => return Some("no cash method chosen (Stripe or PayPal)".into()),
        }
        let rules = match tax::TaxRules::builtin() {
            Ok(r) => r,
            Err(e) => return Some(format!("tax rules unavailable: {e}")),
        };
        tax::cash_hold_reason(rules, &self.domain(), today).map(|r| r.to_string())
    }

    /// Why a gift card cannot be sent yet: it goes to the payee's email.
    pub fn gift_card_blocked(&self) -> Option<String> {
        if self.erased.is_some() {
            return Some(ERASED.into());
        }
        self.private
            .email
            .is_empty()
            .then(|| "no email on file for the gift card".into())
    }

    /// The payee as the tax rules read it. Stored values were checked when written, so a
    /// value that no longer parses is left out rather than failing the run.
    pub fn domain(&self) -> rules::Payee {
        let address = self
            .private
            .address
            .as_ref()
            .and_then(|a| rules::Address::parse("address", &a.input()).ok());
        let tax_id =
            tin_kind(&self.private.tin_kind).and_then(|k| rules::TaxId::parse("tax_id", k, &self.private.tax_id).ok());
        let signed = Date::parse(&self.profile.tax_form_signed_on);
        let tax_form = match (
            TaxForm::try_from(self.profile.tax_form).unwrap_or(TaxForm::Missing),
            signed,
        ) {
            (TaxForm::W9, Some(d)) => rules::TaxForm::W9 { signed_on: d },
            (TaxForm::W8ben, Some(d)) => rules::TaxForm::W8Ben { signed_on: d },
            (TaxForm::W8benE, Some(d)) => rules::TaxForm::W8BenE { signed_on: d },
            _ => rules::TaxForm::Missing,
        };
        rules::Payee {
            id: self.influencer_id.clone(),
            legal_name: self.private.legal_name.clone(),
            us_person: self.profile.us_person || self.profile.tax_country == "US",
            address,
            cash_destination: None,
            tax_id,
            tax_form,
        }
    }

    /// Who statements and reports name: the legal name, or the pseudonym once erased.
    /// The pseudonym, once the payee is erased.
    pub fn pseudonym(&self) -> Option<&str> {
        self.erased.as_ref().map(|e| e.pseudonym.as_str())
    }

    pub fn display_name(&self) -> &str {
        match &self.erased {
            Some(e) => &e.pseudonym,
            None => &self.private.legal_name,
        }
    }

    /// The payee as the year's 1099-NEC report reads it. An erased payee prints the identity
    /// kept for that year while its retention lasts (`domain::erasure`), else the pseudonym
    /// with no TIN or address.
    pub fn tax_payee(&self, year: i32, today: Date) -> rules::Payee {
        let Some(erased) = &self.erased else {
            return self.domain();
        };
        let covered = erased
            .retained
            .as_ref()
            .filter(|r| erasure::prints_identity(&r.years, r.retain_until, year, today));
        match covered {
            Some(r) => Record {
                private: r.identity.clone(),
                erased: None,
                ..self.clone()
            }
            .domain(),
            None => {
                let mut p = self.domain();
                p.legal_name = erased.pseudonym.clone();
                p
            }
        }
    }

    /// The profile as the payee reads it: private details masked.
    pub fn masked(&self, today: Date) -> Payee {
        let mut p = self.profile.clone();
        if let Some(e) = &self.erased {
            p.pseudonym = e.pseudonym.clone();
            p.cash_blocked_reason = ERASED.into();
            return p;
        }
        p.legal_name = self.private.legal_name.clone();
        p.email = mask_email(&self.private.email);
        p.stripe_account = mask_tail(&self.private.stripe_account, 4);
        p.paypal_email = mask_email(&self.private.paypal_email);
        p.tax_id = self.domain().tax_id.map(|t| t.masked()).unwrap_or_default();
        p.shipping_address = self.private.address.as_ref().map(|a| Address {
            city: a.city.clone(),
            country_code: a.country_code.clone(),
            ..Default::default()
        });
        p.cash_blocked_reason = self.cash_blocked(today).unwrap_or_default();
        p
    }
}

fn tin_kind(s: &str) -> Option<rules::TinKind> {
    match s {
        "SSN" => Some(rules::TinKind::Ssn),
        "ITIN" => Some(rules::TinKind::Itin),
        "EIN" => Some(rules::TinKind::Ein),
        _ => None,
    }
}

/// Which TIN a number is, as written: an EIN is written `12-3456789`, an ITIN starts with 9,
/// anything else of nine digits is an SSN.
fn guess_tin_kind(s: &str) -> rules::TinKind {
    let t = s.trim();
    if t.len() == 10 && t.as_bytes().get(2) == Some(&b'-') {
        rules::TinKind::Ein
    } else if t.starts_with('9') {
        rules::TinKind::Itin
    } else {
        rules::TinKind::Ssn
    }
}

/// Today (UTC) from unix micros.
pub fn today(micros: i64) -> Date {
    Date::from_unix_seconds(micros.div_euclid(1_000_000)).unwrap_or(Date::EPOCH)
}

fn mask_email(e: &str) -> String {
    match e.split_once('@') {
        Some((user, domain)) => format!("{}***@{domain}", user.chars().next().unwrap_or('*')),
        None => String::new(),
    }
}

fn mask_tail(s: &str, keep: usize) -> String {
    if s.is_empty() {
        return String::new();
    }
    let tail: String = s
        .chars()
        .rev()
        .take(keep)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("***{tail}")
}

#[derive(Debug, Clone)]
pub struct Payees {
    db: Database,
    keys: Arc<PiiKeys>,
    clock: Clock,
}

impl Payees {
    pub fn new(db: Database, keys: Arc<PiiKeys>, clock: Clock) -> Self {
        Payees { db, keys, clock }
    }

    fn binding(influencer_id: &str) -> Binding<'_> {
        Binding {
            tenant: "",
            payee: influencer_id,
            field: "private",
        }
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub async fn get(&self, influencer_id: &str) -> Result<Option<Record>, Error> {
        let row = sqlx::query("SELECT profile, sealed FROM payees WHERE influencer_id = $1")
            .bind(influencer_id)
            .fetch_optional(&self.db.pool)
            .await?;
        let Some(row) = row else {
            return self.erased(influencer_id).await;
        };
        let profile: Vec<u8> = row.try_get(0)?;
        let sealed: String = row.try_get(1)?;
        let profile = Payee::decode(profile.as_slice()).map_err(|e| Error::internal("decode payee", e))?;
        let opened = self
            .keys
            .open(&Sealed::from_stored(sealed), Self::binding(influencer_id))?;
        let private: Private =
            serde_json::from_str(opened.expose()).map_err(|e| Error::internal("read a payee's sealed details", e))?;
        Ok(Some(Record {
            influencer_id: influencer_id.to_owned(),
            profile,
            private,
            erased: None,
        }))
    }

    fn retained_binding(influencer_id: &str) -> Binding<'_> {
        Binding {
            tenant: "",
            payee: influencer_id,
            field: "retained",
        }
    }

    /// An erased payee as records show it, or None when `influencer_id` was never erased. A
    /// retained identity past its retention is left out even before the sweep drops it.
    async fn erased(&self, influencer_id: &str) -> Result<Option<Record>, Error> {
        let row = sqlx::query(
            "SELECT pseudonym, profile, retained, retained_years, retain_until FROM erased_payees WHERE influencer_id = $1",
        )
        .bind(influencer_id)
        .fetch_optional(&self.db.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let pseudonym: String = row.try_get(0)?;
        let profile: Vec<u8> = row.try_get(1)?;
        let sealed: String = row.try_get(2)?;
        let years: String = row.try_get(3)?;
        let until: String = row.try_get(4)?;
        let profile = Payee::decode(profile.as_slice()).map_err(|e| Error::internal("decode payee", e))?;
        let today = today(self.clock.now_micros());
        let retained = match Date::parse(&until) {
            Some(retain_until) if !sealed.is_empty() && today <= retain_until => {
                let opened = self
                    .keys
                    .open(&Sealed::from_stored(sealed), Self::retained_binding(influencer_id))?;
                let identity: Private = serde_json::from_str(opened.expose())
                    .map_err(|e| Error::internal("read a payee's retained tax identity", e))?;
                Some(Retained {
                    identity,
                    years: years.split(',').filter_map(|y| y.parse().ok()).collect(),
                    retain_until,
                })
            }
            _ => None,
        };
        Ok(Some(Record {
            influencer_id: influencer_id.to_owned(),
            profile,
            private: Private::default(),
            erased: Some(Erased { pseudonym, retained }),
        }))
    }

    /// Erases `influencer_id` (registry's `InfluencerDeleted`, event `event_id` of `consumer`):
    /// their profile and sealed details go; their pseudonym, tax form and, while the law keeps
    /// it, the identity printed on their 1099s stay (`domain::erasure`); what is still owed to
    /// them is BLOCKED as "payee erased". All in one transaction with the inbox entry; erasing
    /// an erased payee, or a replayed event, changes nothing. False when nothing was done.
    pub async fn erase(&self, consumer: &str, event_id: &str, influencer_id: &str) -> Result<bool, Error> {
        let key = self
            .keys
            .pseudonym_key()
            .ok_or_else(|| Error::new(chorus_kit::ErrorCode::Internal, "erase a payee: no PII key"))?;
        let now = self.clock.now_micros();
        let today = today(now);
        let current = self.get(influencer_id).await?;
        // Already erased, or someone payouts never knew (most of the registry's deletions):
        // only the inbox entry is written.
        let known = match &current {
            Some(r) => r.erased.is_none(),
            None => self.has_payouts(influencer_id).await?,
        };
        if !known {
            let mut tx = self.db.pool.begin().await?;
            Inbox::first_time(&mut tx, &self.clock, consumer, event_id).await?;
            tx.commit().await?;
            return Ok(false);
        }
        let record = current.unwrap_or_else(|| Record {
            influencer_id: influencer_id.to_owned(),
            profile: Payee {
                name: format!("payees/{influencer_id}"),
                ..Default::default()
            },
            private: Private::default(),
            erased: None,
        });
        let domain = record.domain();
        let rules = tax::TaxRules::builtin()?;
        let paid = self.paid_per_tenant_year(influencer_id).await?;
        let years = erasure::reported_years(rules, rules.is_us_payee(&domain), &paid);
        let erased = erasure::erase(&domain, "", key, &years, today);
        let (sealed, retained_years, retain_until) = match &erased.retained_tax_record {
            Some(kept) => {
                let identity = Private {
                    legal_name: record.private.legal_name.clone(),
                    address: record.private.address.clone(),
                    tax_id: record.private.tax_id.clone(),
                    tin_kind: record.private.tin_kind.clone(),
                    ..Private::default()
                };
                let json = serde_json::to_string(&identity)
                    .map_err(|e| Error::internal("write a retained tax identity", e))?;
                let sealed = self.keys.seal(&json, Self::retained_binding(influencer_id))?;
                let years: Vec<String> = kept.years.iter().map(i32::to_string).collect();
                (
                    sealed.as_str().to_owned(),
                    years.join(","),
                    kept.retain_until.to_string(),
                )
            }
            None => (String::new(), String::new(), String::new()),
        };
        // What stays of the profile: no name, contact, destination or address; the tax form
        // and whether 1099s applied explain past holds and reports.
        let profile = Payee {
            name: record.profile.name.clone(),
            tax_form: record.profile.tax_form,
            tax_form_signed_on: record.profile.tax_form_signed_on.clone(),
            us_person: erased.us_person,
            update_time: Some(timestamp(now)),
            ..Default::default()
        };
        let mut tx = self.db.pool.begin().await?;
        if !Inbox::first_time(&mut tx, &self.clock, consumer, event_id).await? {
            return Ok(false);
        }
        let inserted = sqlx::query(
            "INSERT INTO erased_payees (influencer_id, pseudonym, profile, retained, retained_years, retain_until, erase_time)              VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (influencer_id) DO NOTHING",
        )
        .bind(influencer_id)
        .bind(&erased.pseudonym)
        .bind(profile.encode_to_vec())
        .bind(&sealed)
        .bind(&retained_years)
        .bind(&retain_until)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            // Another delivery erased them meanwhile.
            tx.commit().await?;
            return Ok(false);
        }
        sqlx::query("DELETE FROM payees WHERE influencer_id = $1")
            .bind(influencer_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE payouts SET state = $1, reason = $2, update_time = $3 WHERE influencer_id = $4 AND state IN ($5, $1, $6)",
        )
        .bind(PayoutState::Blocked as i32)
        .bind(ERASED)
        .bind(now)
        .bind(influencer_id)
        .bind(PayoutState::Approved as i32)
        .bind(PayoutState::Failed as i32)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn has_payouts(&self, influencer_id: &str) -> Result<bool, Error> {
        let any: Option<String> = sqlx::query_scalar("SELECT id FROM payouts WHERE influencer_id = $1 LIMIT 1")
            .bind(influencer_id)
            .fetch_optional(&self.db.pool)
            .await?;
        Ok(any.is_some())
    }

    /// USD paid to `influencer_id`, per tenant and year of payment: what decides which 1099s
    /// named them.
    async fn paid_per_tenant_year(&self, influencer_id: &str) -> Result<Vec<(i32, i64)>, Error> {
        let rows = sqlx::query(
            "SELECT tenant, currency, amount, paid_time FROM payouts WHERE influencer_id = $1 AND state = $2",
        )
        .bind(influencer_id)
        .bind(PayoutState::Paid as i32)
        .fetch_all(&self.db.pool)
        .await?;
        let mut totals: std::collections::BTreeMap<(String, i32), i64> = Default::default();
        for r in &rows {
            let currency: String = r.try_get(1)?;
            if !currency.eq_ignore_ascii_case("USD") {
                continue;
            }
            let year = today(r.try_get::<i64, _>(3)?).year();
            *totals.entry((r.try_get(0)?, year)).or_default() += r.try_get::<i64, _>(2)?;
        }
        Ok(totals.into_iter().map(|((_, year), cents)| (year, cents)).collect())
    }

    /// Drops the retained tax identities whose retention ended before today; what is left of
    /// those payees is their pseudonym. Each payout run calls it.
    pub async fn drop_expired_retention(&self) -> Result<u64, Error> {
        let today = today(self.clock.now_micros()).to_string();
        let done = sqlx::query(
            "UPDATE erased_payees SET retained = '', retained_years = '', retain_until = '' \
             WHERE retain_until <> '' AND retain_until < $1",
        )
        .bind(today)
        .execute(&self.db.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Applies what `patch` sets (non-empty fields) to the payee's profile, checked field by
    /// field; payouts it blocked or that failed on bad details are queued again.
    pub async fn update(&self, influencer_id: &str, patch: &Payee) -> Result<Record, Error> {
        let found = self.get(influencer_id).await?;
        if found.as_ref().is_some_and(|r| r.erased.is_some()) {
            return Err(crate::store::precondition(format!(
                "payees/{influencer_id} is erased: an erased payee has no profile to update"
            )));
        }
        let mut record = found.unwrap_or_else(|| Record {
            influencer_id: influencer_id.to_owned(),
            profile: Payee {
                name: format!("payees/{influencer_id}"),
                ..Default::default()
            },
            private: Private::default(),
            erased: None,
        });
        apply(&mut record, patch, today(self.clock.now_micros()))?;
        let now = self.clock.now_micros();
        record.profile.update_time = Some(timestamp(now));
        let json = serde_json::to_string(&record.private).map_err(|e| Error::internal("write a payee's details", e))?;
        let sealed = self.keys.seal(&json, Self::binding(influencer_id))?;
        let mut tx = self.db.pool.begin().await?;
        sqlx::query("DELETE FROM payees WHERE influencer_id = $1")
            .bind(influencer_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO payees (influencer_id, profile, sealed, update_time) VALUES ($1, $2, $3, $4)")
            .bind(influencer_id)
            .bind(record.profile.encode_to_vec())
            .bind(sealed.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE payouts SET state = $1, reason = '', update_time = $2 WHERE influencer_id = $3 AND state IN ($4, $5)")
            .bind(PayoutState::Approved as i32)
            .bind(now)
            .bind(influencer_id)
            .bind(PayoutState::Blocked as i32)
            .bind(PayoutState::Failed as i32)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(record)
    }
}

/// Checks and applies the non-empty fields of `patch`; every bad field is named at once.
fn apply(r: &mut Record, patch: &Payee, today: Date) -> Result<(), Error> {
    let mut v = chorus_kit::Violations::new();
    let p = &mut r.private;
    if !patch.legal_name.is_empty() {
        v.check(
            patch.legal_name.chars().count() > 200,
            "payee.legal_name",
            "at most 200 characters",
        );
        p.legal_name = patch.legal_name.trim().to_owned();
    }
    if !patch.email.is_empty()
        && let Some(e) = v.take(rules::PaypalEmail::parse("payee.email", &patch.email))?
    {
        p.email = e.as_str().to_owned();
    }
    if !patch.stripe_account.is_empty()
        && let Some(a) = v.take(rules::StripeAccountId::parse(
            "payee.stripe_account",
            &patch.stripe_account,
        ))?
    {
        p.stripe_account = a.as_str().to_owned();
    }
    if !patch.paypal_email.is_empty()
        && let Some(e) = v.take(rules::PaypalEmail::parse("payee.paypal_email", &patch.paypal_email))?
    {
        p.paypal_email = e.as_str().to_owned();
    }
    if let Some(a) = &patch.shipping_address {
        // The recipient defaults to the legal name, given now or on file.
        let name = [a.name.trim(), patch.legal_name.trim(), p.legal_name.as_str()]
            .into_iter()
            .find(|n| !n.is_empty())
            .unwrap_or_default()
            .to_owned();
        let given = PrivateAddress {
            name,
            line1: a.line1.trim().to_owned(),
            line2: a.line2.trim().to_owned(),
            city: a.city.trim().to_owned(),
            region: a.region.trim().to_owned(),
            postal_code: a.postal_code.trim().to_owned(),
            country_code: a.country_code.trim().to_owned(),
        };
        if v.take(rules::Address::parse("payee.shipping_address", &given.input()))?
            .is_some()
        {
            p.address = Some(given);
        }
    }
    if !patch.tax_id.is_empty() {
        let kind = guess_tin_kind(&patch.tax_id);
        if let Some(t) = v.take(rules::TaxId::parse("payee.tax_id", kind, &patch.tax_id))? {
            p.tax_id = t.full();
            p.tin_kind = kind.name().to_owned();
        }
    }
    match Method::try_from(patch.cash_method) {
        Ok(Method::Unspecified) => {}
        Ok(m @ (Method::Stripe | Method::Paypal)) => r.profile.cash_method = m as i32,
        _ => v.add("payee.cash_method", "METHOD_STRIPE or METHOD_PAYPAL"),
    }
    match TaxForm::try_from(patch.tax_form) {
        Ok(TaxForm::Unspecified) => {}
        Ok(f) => r.profile.tax_form = f as i32,
        Err(_) => v.add("payee.tax_form", "unknown form"),
    }
    if !patch.tax_form_signed_on.is_empty() {
        match Date::parse(patch.tax_form_signed_on.trim()) {
            Some(d) if d <= today => r.profile.tax_form_signed_on = d.to_string(),
            Some(_) => v.add("payee.tax_form_signed_on", "a form cannot be signed in the future"),
            None => v.add("payee.tax_form_signed_on", "a date as YYYY-MM-DD"),
        }
    }
    let has_form = !matches!(
        TaxForm::try_from(r.profile.tax_form),
        Ok(TaxForm::Unspecified | TaxForm::Missing) | Err(_)
    );
    v.check(
        has_form && r.profile.tax_form_signed_on.is_empty(),
        "payee.tax_form_signed_on",
        "required with a tax form: the date it was signed",
    );
    if patch.us_person {
        r.profile.us_person = true;
    }
    if !patch.tax_country.is_empty()
        && v.take(rules::Country::parse("payee.tax_country", &patch.tax_country))?
            .is_some()
    {
        r.profile.tax_country = patch.tax_country.trim().to_owned();
    }
    v.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_private_details_shows_no_value() {
        let p = Private {
            legal_name: "Ana Lima".into(),
            email: "ana@example.com".into(),
            stripe_account: "acct_1Nv0FGQ9RKHgCVdK".into(),
            paypal_email: "ana.pay@example.com".into(),
            address: Some(PrivateAddress {
                name: "Ana Lima".into(),
                line1: "12 Rua Augusta".into(),
                city: "Austin".into(),
                postal_code: "78701".into(),
                country_code: "US".into(),
                ..Default::default()
            }),
            tax_id: "123-45-6789".into(),
            tin_kind: "SSN".into(),
        };
        let shown = format!("{p:?} {p:#?}");
        for secret in ["Ana", "ana@", "acct_", "ana.pay", "Augusta", "Austin", "78701", "6789"] {
            assert!(!shown.contains(secret), "{secret} leaked in {shown}");
        }
        assert!(shown.contains("[redacted]") && shown.contains("SSN") && shown.contains("US"));
    }
}
