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

use crate::domain::payee as rules;
use crate::domain::pii::PiiKeys;
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
    pub fn cash_blocked(&self) -> Option<String> {
        let method = Method::try_from(self.profile.cash_method).unwrap_or(Method::Unspecified);
        let destination = match method {
            Method::Stripe if !self.private.stripe_account.is_empty() => true,
            Method::Paypal if !self.private.paypal_email.is_empty() => true,
            Method::Stripe => return Some("no Stripe account on file".into()),
            Method::Paypal => return Some("no PayPal email on file".into()),
            _ => false,
        };
        if !destination {
            return Some("no cash method chosen (Stripe or PayPal)".into());
        }
        tax::cash_hold_reason(&self.tax_status()).map(|r| r.to_string())
    }

    /// Why a gift card cannot be sent yet: it goes to the payee's email.
    pub fn gift_card_blocked(&self) -> Option<String> {
        self.private.email.is_empty().then(|| "no email on file for the gift card".into())
    }

    pub fn tax_status(&self) -> tax::TaxStatus {
        tax::TaxStatus {
            form: match TaxForm::try_from(self.profile.tax_form).unwrap_or(TaxForm::Missing) {
                TaxForm::W9 => rules::TaxForm::W9,
                TaxForm::W8ben => rules::TaxForm::W8Ben,
                TaxForm::W8benE => rules::TaxForm::W8BenE,
                _ => rules::TaxForm::Missing,
            },
            country: self.profile.tax_country.clone(),
            address_country: self.private.address.as_ref().map(|a| a.country_code.clone()).unwrap_or_default(),
        }
    }

    /// The profile as the payee reads it: private details masked.
    pub fn masked(&self) -> Payee {
        let mut p = self.profile.clone();
        p.legal_name = self.private.legal_name.clone();
        p.email = mask_email(&self.private.email);
        p.stripe_account = mask_tail(&self.private.stripe_account, 4);
        p.paypal_email = mask_email(&self.private.paypal_email);
        p.tax_id = if self.private.tax_id.is_empty() { String::new() } else { rules::mask_tin(&self.private.tax_id) };
        p.shipping_address = self.private.address.as_ref().map(|a| Address {
            city: a.city.clone(),
            country_code: a.country_code.clone(),
            ..Default::default()
        });
        p.cash_blocked_reason = self.cash_blocked().unwrap_or_default();
        p
    }
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
    let tail: String = s.chars().rev().take(keep).collect::<Vec<_>>().into_iter().rev().collect();
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

    fn aad(influencer_id: &str) -> String {
        format!("payees/{influencer_id}/private")
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
        let opened = self.keys.open(&sealed, Self::aad(influencer_id).as_bytes())?;
        let private: Private =
            serde_json::from_slice(opened.expose()).map_err(|e| Error::internal("read a payee's sealed details", e))?;
        Ok(Some(Record { influencer_id: influencer_id.to_owned(), profile, private }))
    }

    /// Applies what `patch` sets (non-empty fields) to the payee's profile, checked field by
    /// field; payouts it blocked or that failed on bad details are queued again.
    pub async fn update(&self, influencer_id: &str, patch: &Payee) -> Result<Record, Error> {
        let mut record = self.get(influencer_id).await?.unwrap_or_else(|| Record {
            influencer_id: influencer_id.to_owned(),
            profile: Payee { name: format!("payees/{influencer_id}"), ..Default::default() },
            private: Private::default(),
        });
        apply(&mut record, patch)?;
        let now = self.clock.now_micros();
        record.profile.update_time = Some(timestamp(now));
        let json = serde_json::to_vec(&record.private).map_err(|e| Error::internal("write a payee's details", e))?;
        let sealed = self.keys.seal(&json, Self::aad(influencer_id).as_bytes())?;
        let mut tx = self.db.pool.begin().await?;
        sqlx::query("DELETE FROM payees WHERE influencer_id = $1")
            .bind(influencer_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO payees (influencer_id, profile, sealed, update_time) VALUES ($1, $2, $3, $4)")
            .bind(influencer_id)
            .bind(record.profile.encode_to_vec())
            .bind(sealed)
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
fn apply(r: &mut Record, patch: &Payee) -> Result<(), Error> {
    let mut v = chorus_kit::Violations::new();
    let p = &mut r.private;
    if !patch.legal_name.is_empty() {
        v.check(patch.legal_name.chars().count() > 200, "payee.legal_name", "at most 200 characters");
        p.legal_name = patch.legal_name.trim().to_owned();
    }
    if !patch.email.is_empty() {
        if let Some(e) = v.take(rules::Email::parse(&patch.email).map_err(|e| e.nest("payee.email")))? {
            p.email = e.as_str().to_owned();
        }
    }
    if !patch.stripe_account.is_empty() {
        if let Some(a) = v.take(rules::StripeAccount::parse(&patch.stripe_account).map_err(|e| e.nest("payee.stripe_account")))? {
            p.stripe_account = a.as_str().to_owned();
        }
    }
    if !patch.paypal_email.is_empty() {
        if let Some(e) = v.take(rules::Email::parse(&patch.paypal_email).map_err(|e| e.nest("payee.paypal_email")))? {
            p.paypal_email = e.as_str().to_owned();
        }
    }
    if let Some(a) = &patch.shipping_address {
        let parsed = rules::ShippingAddress::parse(&rules::AddressInput {
            name: a.name.clone(),
            line1: a.line1.clone(),
            line2: a.line2.clone(),
            city: a.city.clone(),
            region: a.region.clone(),
            postal_code: a.postal_code.clone(),
            country: a.country_code.clone(),
        })
        .map_err(|e| e.nest("payee.shipping_address"));
        if let Some(a) = v.take(parsed)? {
            p.address = Some(PrivateAddress {
                name: a.name.clone(),
                line1: a.line1.clone(),
                line2: a.line2.clone(),
                city: a.city.clone(),
                region: a.region.clone(),
                postal_code: a.postal_code.clone(),
                country_code: a.country.clone(),
            });
        }
    }
    if !patch.tax_id.is_empty() {
        if let Some(t) = v.take(rules::TaxId::parse(&patch.tax_id).map_err(|e| e.nest("payee.tax_id")))? {
            p.tax_id = t.digits().to_owned();
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
    if !patch.tax_country.is_empty() {
        let ok = patch.tax_country.len() == 2 && patch.tax_country.bytes().all(|b| b.is_ascii_uppercase());
        v.check(!ok, "payee.tax_country", "ISO 3166-1 alpha-2, upper case (\"US\")");
        r.profile.tax_country = patch.tax_country.clone();
    }
    v.finish()
}
