//! Erasure of a payee that keeps what the law keeps: the ledger lines and amounts stay under
//! the payee's opaque id and a stable pseudonym; contact and payment details go at once; the
//! name, TIN and address printed on a filed 1099 stay only until their retention ends.
//!
//! Retention: the IRS asks payers to keep copies of filed information returns, or the means to
//! rebuild them, for at least 3 years from their due date, 4 when backup withholding was
//! imposed (General Instructions for Certain Information Returns). Chorus keeps 4 in every
//! case: a 1099-NEC for year Y is due 31 January of Y+1, so its data is kept to 31 January Y+5.

use chorus_kit::config::Secret;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::date::Date;
use super::payee::{Address, Payee, TaxForm, TaxId};
use super::tax::TaxRules;

/// Years after a return's due date that its data is kept.
pub const RETENTION_YEARS: i32 = 4;

/// The identity printed on the 1099s a payee received, kept until `retain_until`, then dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct RetainedTaxRecord {
    pub legal_name: String,
    pub tax_id: Option<TaxId>,
    pub address: Option<Address>,
    /// The 1099-NEC tax years filed for this payee.
    pub years: Vec<i32>,
    pub retain_until: Date,
}

/// Kept for the law, not for logs: Debug shows the years and the date only.
impl std::fmt::Debug for RetainedTaxRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RetainedTaxRecord {{ years: {:?}, retain_until: {}, identity: [redacted] }}",
            self.years, self.retain_until
        )
    }
}

/// A payee after erasure: nothing that identifies the person except a retained tax record
/// while the law requires it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasedPayee {
    /// The ledger's key: a random id that identifies nobody once the profile is gone. Kept so
    /// ledger lines and contract amounts still add up.
    pub id: String,
    /// What statements and exports show in place of the name, e.g. `payee-3f9a0c12d4e5b6a7`.
    pub pseudonym: String,
    /// Which form was on file and when signed (no personal data): explains past holds.
    pub tax_form: TaxForm,
    /// Whether 1099s applied (a US person): no personal data, needed to read past reports.
    pub us_person: bool,
    pub retained_tax_record: Option<RetainedTaxRecord>,
}

/// The pseudonym of a payee: HMAC-SHA256 of tenant and id under a service key, so it is the
/// same every time (erasing twice changes nothing, lines stay linked) yet cannot be turned
/// back into the id by hashing candidate ids without the key.
pub fn pseudonym(key: &Secret<Vec<u8>>, tenant: &str, payee_id: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key.expose()) else {
        return String::from("payee-erased");
    };
    mac.update(&(tenant.len() as u64).to_be_bytes());
    mac.update(tenant.as_bytes());
    mac.update(payee_id.as_bytes());
    let digest = mac.finalize().into_bytes();
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("payee-{hex}")
}

/// Erases `payee` as of `today`. `reported_years` are the tax years a 1099-NEC was filed for
/// (from the yearly reports); their identity data stays while any is within retention.
pub fn erase(payee: &Payee, tenant: &str, key: &Secret<Vec<u8>>, reported_years: &[i32], today: Date) -> ErasedPayee {
    ErasedPayee {
        id: payee.id.clone(),
        pseudonym: pseudonym(key, tenant, &payee.id),
        tax_form: payee.tax_form,
        us_person: payee.us_person,
        retained_tax_record: retained(payee, reported_years, today),
    }
}

impl RetainedTaxRecord {
    /// Whether a 1099-NEC for `year` may print this identity on `today`: the year was filed
    /// (or is still to be filed) and its retention has not ended. Otherwise the report shows
    /// the pseudonym only.
    pub fn covers(&self, year: i32, today: Date) -> bool {
        prints_identity(&self.years, self.retain_until, year, today)
    }
}

/// The rule of [`RetainedTaxRecord::covers`] over its stored parts.
pub fn prints_identity(years: &[i32], kept_until: Date, year: i32, today: Date) -> bool {
    years.contains(&year) && today <= kept_until && retain_until(year).is_some_and(|d| today <= d)
}

/// The tax years whose 1099-NEC names this payee: a US payee's years whose USD total reached
/// that year's threshold in some tenant (each tenant files its own). `paid` holds one
/// `(year, USD cents)` per tenant and year. A year whose threshold is not known is kept: it
/// is safer to keep an identity a little longer than to lose one a return needs. The current
/// year counts too: its return is filed next January.
pub fn reported_years(rules: &TaxRules, us_payee: bool, paid: &[(i32, i64)]) -> Vec<i32> {
    if !us_payee {
        return Vec::new();
    }
    let mut years: Vec<i32> = paid
        .iter()
        .filter(|(year, cents)| rules.threshold(*year).is_none_or(|t| *cents >= t.minimum_cents))
        .map(|(year, _)| *year)
        .collect();
    years.sort_unstable();
    years.dedup();
    years
}

/// The last day a 1099-NEC for `year` must be kept: 31 January of year + 1 + retention.
pub fn retain_until(year: i32) -> Option<Date> {
    Date::new(year + 1 + RETENTION_YEARS, 1, 31)
}

fn retained(payee: &Payee, reported_years: &[i32], today: Date) -> Option<RetainedTaxRecord> {
    let mut years: Vec<i32> = reported_years
        .iter()
        .copied()
        .filter(|&y| retain_until(y).is_some_and(|d| d >= today))
        .collect();
    years.sort_unstable();
    years.dedup();
    let until = retain_until(*years.last()?)?;
    Some(RetainedTaxRecord {
        legal_name: payee.legal_name.clone(),
        tax_id: payee.tax_id.clone(),
        address: payee.address.clone(),
        years,
        retain_until: until,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::domain::payee::{AddressInput, CashDestination, PaypalEmail, TinKind};

    fn payee() -> Payee {
        let input = AddressInput {
            name: "Ana Lopez",
            line1: "1 Main St",
            city: "Austin",
            region: "TX",
            postal_code: "78701",
            country: "US",
            ..AddressInput::default()
        };
        Payee {
            id: "0190c0de-0000-7000-8000-000000000001".into(),
            legal_name: "Ana Lopez".into(),
            us_person: true,
            address: Some(Address::parse("", &input).unwrap()),
            cash_destination: Some(CashDestination::Paypal(
                PaypalEmail::parse("e", "ana@example.com").unwrap(),
            )),
            tax_id: Some(TaxId::parse("t", TinKind::Ssn, "123-45-6789").unwrap()),
            tax_form: TaxForm::W9 {
                signed_on: Date::new(2025, 1, 2).unwrap(),
            },
        }
    }

    fn key(b: u8) -> Secret<Vec<u8>> {
        Secret::new(vec![b; 32])
    }

    #[test]
    fn pseudonyms_are_stable_keyed_and_per_tenant() {
        let p = pseudonym(&key(1), "t1", "p1");
        assert_eq!(p, pseudonym(&key(1), "t1", "p1"));
        assert!(p.starts_with("payee-") && p.len() == "payee-".len() + 16, "{p}");
        assert_ne!(p, pseudonym(&key(2), "t1", "p1"));
        assert_ne!(p, pseudonym(&key(1), "t2", "p1"));
        assert_ne!(p, pseudonym(&key(1), "t1", "p2"));
        assert_ne!(pseudonym(&key(1), "t1", "p1"), pseudonym(&key(1), "t1p", "1"));
    }

    #[test]
    fn contact_and_payment_details_go_the_ledger_key_stays() {
        let today = Date::new(2026, 6, 1).unwrap();
        let e = erase(&payee(), "t1", &key(1), &[], today);
        assert_eq!(e.id, payee().id);
        assert_eq!(e.pseudonym, pseudonym(&key(1), "t1", &payee().id));
        assert_eq!(e.retained_tax_record, None);
        let shown = format!("{e:?}");
        for pii in ["Ana", "Main St", "Austin", "example.com", "6789"] {
            assert!(!shown.contains(pii), "{pii} in {shown}");
        }
        // Erasing again gives the same record.
        assert_eq!(erase(&payee(), "t1", &key(1), &[], today), e);
    }

    #[test]
    fn filed_1099_data_stays_for_four_years_after_the_due_date() {
        // The 2025 return is due 31 Jan 2026: kept to 31 Jan 2030.
        assert_eq!(retain_until(2025), Date::new(2030, 1, 31));
        let on = |y, m, d| Date::new(y, m, d).unwrap();
        let e = erase(&payee(), "t1", &key(1), &[2025, 2024, 2025], on(2026, 6, 1));
        let kept = e.retained_tax_record.unwrap();
        assert!(!format!("{kept:?}").contains("Ana"));
        assert_eq!((kept.years, kept.retain_until), (vec![2024, 2025], on(2030, 1, 31)));
        assert_eq!(
            (kept.legal_name.as_str(), kept.tax_id.unwrap().full()),
            ("Ana Lopez", "123-45-6789".to_owned())
        );
        // 2024's return is past retention on 1 Feb 2029, 2025's is not.
        let kept = erase(&payee(), "t1", &key(1), &[2024, 2025], on(2029, 2, 1))
            .retained_tax_record
            .unwrap();
        assert_eq!(kept.years, [2025]);
        // After the last one, nothing is kept.
        assert_eq!(
            erase(&payee(), "t1", &key(1), &[2024, 2025], on(2030, 2, 1)).retained_tax_record,
            None
        );
    }

    #[test]
    fn a_retained_identity_prints_only_for_its_years_and_until_retention_ends() {
        let on = |y, m, d| Date::new(y, m, d).unwrap();
        let kept = erase(&payee(), "t1", &key(1), &[2025], on(2026, 6, 1))
            .retained_tax_record
            .unwrap();
        assert!(kept.covers(2025, on(2026, 6, 1)));
        assert!(kept.covers(2025, on(2030, 1, 31)));
        assert!(!kept.covers(2025, on(2030, 2, 1)), "retention ended");
        assert!(!kept.covers(2024, on(2026, 6, 1)), "no return was filed for 2024");
    }

    #[test]
    fn reported_years_are_a_us_payees_years_at_or_over_the_threshold() {
        let rules = TaxRules::builtin().unwrap();
        // $600 in 2025 is reported, $599.99 is not; 2026's threshold is $2,000.
        let paid = [
            (2025, 60_000),
            (2025, 59_999),
            (2024, 59_999),
            (2026, 199_999),
            (2026, 200_000),
        ];
        assert_eq!(reported_years(rules, true, &paid), [2025, 2026]);
        assert_eq!(
            reported_years(rules, true, &[(2024, 59_999), (2026, 199_999)]),
            Vec::<i32>::new()
        );
        // No 1099-NEC for a foreign payee.
        assert_eq!(reported_years(rules, false, &paid), Vec::<i32>::new());
        // A year without a known threshold is kept.
        assert_eq!(reported_years(rules, true, &[(1999, 1)]), [1999]);
    }
}
