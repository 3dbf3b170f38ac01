//! The payee book: each influencer's payment details, shipping address and tax form, kept by
//! the influencer themselves. What identifies or locates a person (legal name, email, payment
//! destinations, address, tax id) is sealed at rest with AES-256-GCM, bound to its row; it is
//! shown back masked, never logged and never put in an event. The runner opens it to pay.

use std::sync::Arc;

use chorus_kit::Error;
use chorus_kit::clock::{Clock, timestamp};
use chorus_kit::storage::Database;
use chorus_proto::payouts::{Address, Method, Payee, PayoutState, TaxForm};
use prost::Message;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::domain::date::Date;
use crate::domain::payee as rules;
use crate::domain::pii::{Binding, PiiKeys, Sealed};
use crate::domain::tax;

/// What is sealed, as one JSON document per payee.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
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

#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct PrivateAddress {
    pub name: String,
    pub line1: String,
    pub line2: String,
    pub city: String,
    pub region: String,
    pub postal_code: String,
    pub country_code: String,
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
}

impl Record {
    /// Why cash cannot be paid to this payee yet, if anything: no destination for the chosen
    /// method, or the tax form the rules require (domain::tax).
    pub fn cash_blocked(&self, today: Date) -> Option<String> {
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

    /// The profile as the payee reads it: private details masked.
    pub fn masked(&self, today: Date) -> Payee {
        let mut p = self.profile.clone();
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
            return Ok(None);
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
        }))
    }

    /// Applies what `patch` sets (non-empty fields) to the payee's profile, checked field by
    /// field; payouts it blocked or that failed on bad details are queued again.
    pub async fn update(&self, influencer_id: &str, patch: &Payee) -> Result<Record, Error> {
        let mut record = self.get(influencer_id).await?.unwrap_or_else(|| Record {
            influencer_id: influencer_id.to_owned(),
            profile: Payee {
                name: format!("payees/{influencer_id}"),
                ..Default::default()
            },
            private: Private::default(),
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
