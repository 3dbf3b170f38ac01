//! US tax for payouts, with the figures as data (`rules/tax_us.toml`): whether cash to a payee
//! must wait for a tax form, and the year-end Form 1099-NEC report a brand files for each US
//! payee whose payments in a calendar year reach that year's threshold.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::OnceLock;

use chorus_kit::{Error, ErrorCode};
use serde::Deserialize;

use super::date::Date;
use super::payee::{Country, Payee, TaxForm};

const TAX_US: &str = include_str!("../../rules/tax_us.toml");

/// A broken rules file. The built-in one is checked by the tests, so in service this only
/// comes from a file given in configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("US tax rules: {0}")]
pub struct RulesError(String);

impl From<RulesError> for Error {
    fn from(e: RulesError) -> Self {
        Error::new(ErrorCode::FailedPrecondition, e.to_string()).with_reason("TAX_RULES_INVALID")
    }
}

/// The 1099-NEC reporting threshold for payments made in `first_year..=last_year`.
///
/// From 2027 the $2,000 threshold is inflation-adjusted and the IRS has not published the
/// figure: the data carries the last known value with `provisional` set, and the report says
/// so, until the file is updated.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    pub first_year: i32,
    pub last_year: Option<i32>,
    pub minimum_cents: i64,
    #[serde(default)]
    pub provisional: bool,
    pub source: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    threshold: Vec<Threshold>,
    forms: FormsFile,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FormsFile {
    us_countries: Vec<String>,
    w8_years_after_signing: i32,
}

/// The US rules, read and checked once.
#[derive(Debug, Clone)]
pub struct TaxRules {
    thresholds: Vec<Threshold>,
    us_countries: Vec<Country>,
    w8_years_after_signing: i32,
}

static BUILTIN: OnceLock<Result<TaxRules, RulesError>> = OnceLock::new();

impl TaxRules {
    /// The rules compiled in from `rules/tax_us.toml`.
    pub fn builtin() -> Result<&'static TaxRules, RulesError> {
        BUILTIN
            .get_or_init(|| TaxRules::from_toml(TAX_US))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Reads a rules file; thresholds must cover consecutive years with no gap or overlap,
    /// only the last open-ended.
    pub fn from_toml(text: &str) -> Result<TaxRules, RulesError> {
        let file: RulesFile = toml::from_str(text).map_err(|e| RulesError(e.to_string()))?;
        check_thresholds(&file.threshold)?;
        let us_countries = file
            .forms
            .us_countries
            .iter()
            .map(|c| {
                Country::parse("forms.us_countries", c).map_err(|_| RulesError(format!("`{c}` is not a country code")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !(1..=10).contains(&file.forms.w8_years_after_signing) {
            return Err(RulesError("forms.w8_years_after_signing must be 1-10".into()));
        }
        Ok(TaxRules {
            thresholds: file.threshold,
            us_countries,
            w8_years_after_signing: file.forms.w8_years_after_signing,
        })
    }

    /// The threshold for payments made in `year`, if the rules reach back that far.
    pub fn threshold(&self, year: i32) -> Option<&Threshold> {
        self.thresholds
            .iter()
            .find(|t| t.first_year <= year && t.last_year.is_none_or(|last| year <= last))
    }

    /// A US payee needs a W-9: one who declares US citizenship or residence, lives at a US
    /// address (states, DC, territories), or has certified US status on a W-9.
    pub fn is_us_payee(&self, payee: &Payee) -> bool {
        payee.us_person
            || matches!(payee.tax_form, TaxForm::W9 { .. })
            || payee.address.as_ref().is_some_and(|a| a.is_in(&self.us_countries))
    }

    /// The last day a W-8 signed on `signed_on` is in effect.
    pub fn w8_valid_through(&self, signed_on: Date) -> Option<Date> {
        Date::new(signed_on.year() + self.w8_years_after_signing, 12, 31)
    }
}

fn check_thresholds(ts: &[Threshold]) -> Result<(), RulesError> {
    let bad = |why: String| Err(RulesError(why));
    let Some(last) = ts.last() else {
        return bad("no thresholds".into());
    };
    if last.last_year.is_some() {
        return bad("the last threshold must be open-ended (no last_year) so every later year has one".into());
    }
    for (i, t) in ts.iter().enumerate() {
        if t.minimum_cents <= 0 {
            return bad(format!("threshold from {} must be positive", t.first_year));
        }
        if let Some(next) = ts.get(i + 1) {
            match t.last_year {
                Some(last) if last >= t.first_year && next.first_year == last + 1 => {}
                _ => {
                    return bad(format!(
                        "threshold from {} must end the year before {} starts",
                        t.first_year, next.first_year
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Why cash to a payee is held. Gift cards and product are not held: the forms gate cash
/// only, as DOMAIN.md asks; they still count toward the 1099 total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldReason {
    /// A US payee without a W-9 (a W-8 does not count for a US person).
    W9Missing,
    /// A W-9 on file but no TIN recorded with it: the form is incomplete.
    TinMissing,
    /// A foreign payee with neither a W-8BEN (individuals) nor a W-8BEN-E (entities).
    ForeignFormMissing,
    /// A foreign payee whose W-8 ran out at the end of the third year after signing.
    ForeignFormExpired { expired_after: Date },
}

impl HoldReason {
    /// The machine-readable reason, for the payout's state and the API.
    pub fn code(&self) -> &'static str {
        match self {
            HoldReason::W9Missing => "W9_MISSING",
            HoldReason::TinMissing => "TIN_MISSING",
            HoldReason::ForeignFormMissing => "W8_MISSING",
            HoldReason::ForeignFormExpired { .. } => "W8_EXPIRED",
        }
    }
}

impl fmt::Display for HoldReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HoldReason::W9Missing => f.write_str("a US payee needs a W-9 on file before cash is paid"),
            HoldReason::TinMissing => f.write_str("the W-9 on file has no taxpayer identification number"),
            HoldReason::ForeignFormMissing => f.write_str(
                "a payee outside the US needs a W-8BEN (individual) or W-8BEN-E (entity) on file before cash is paid",
            ),
            HoldReason::ForeignFormExpired { expired_after } => {
                write!(
                    f,
                    "the W-8 on file expired after {expired_after}; a new one is needed before cash is paid"
                )
            }
        }
    }
}

/// Whether cash to `payee` must wait, and why; `None` means it may be paid. Which forms count:
/// a W-9 with a TIN for a US payee; an unexpired W-8BEN or W-8BEN-E for anyone else.
pub fn cash_hold_reason(rules: &TaxRules, payee: &Payee, today: Date) -> Option<HoldReason> {
    if rules.is_us_payee(payee) {
        return match payee.tax_form {
            TaxForm::W9 { .. } if payee.tax_id.is_none() => Some(HoldReason::TinMissing),
            TaxForm::W9 { .. } => None,
            _ => Some(HoldReason::W9Missing),
        };
    }
    match payee.tax_form {
        TaxForm::W8Ben { signed_on } | TaxForm::W8BenE { signed_on } => {
            let through = rules.w8_valid_through(signed_on)?;
            (today > through).then_some(HoldReason::ForeignFormExpired { expired_after: through })
        }
        // A W-9 makes the payee a US payee (handled above).
        TaxForm::W9 { .. } | TaxForm::Missing => Some(HoldReason::ForeignFormMissing),
    }
}

/// The three ways value reaches a payee. All three are compensation for services: gift cards
/// count at face value, product at its declared (fair market) value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentKind {
    Cash,
    GiftCard,
    Product,
}

/// One payment as the ledger records it once paid (a reversal is a negative amount, dated
/// when reversed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub payee_id: String,
    /// The UTC date the cash left, the card was issued or the product shipped: the year of
    /// payment decides the tax year, whatever year the work was done.
    pub paid_on: Date,
    pub kind: PaymentKind,
    /// ISO 4217.
    pub currency: String,
    pub amount_minor: i64,
}

/// Totals by kind, in the minor unit of one currency.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub cash: i64,
    pub gift_card: i64,
    pub product: i64,
}

impl Totals {
    fn add(&mut self, kind: PaymentKind, amount: i64) {
        let slot = match kind {
            PaymentKind::Cash => &mut self.cash,
            PaymentKind::GiftCard => &mut self.gift_card,
            PaymentKind::Product => &mut self.product,
        };
        *slot = slot.saturating_add(amount);
    }

    pub fn total(&self) -> i64 {
        self.cash.saturating_add(self.gift_card).saturating_add(self.product)
    }
}

/// One 1099-NEC to file: a US payee at or over the year's threshold, in US cents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub payee: Payee,
    pub usd_cents: Totals,
}

impl Row {
    /// Box 1, nonemployee compensation: all three kinds.
    pub fn box1_cents(&self) -> i64 {
        self.usd_cents.total()
    }
}

/// Payments in a currency other than USD, per payee. A 1099 is in dollars and the IRS lets the
/// payer choose the conversion (the rate on the payment date, or a yearly average) but wants
/// it applied consistently; the ledger holds no rates, so these are listed for the brand's
/// tax person to convert and add rather than guessed here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherCurrency {
    pub payee_id: String,
    pub currency: String,
    pub minor: Totals,
}

/// The year's 1099-NEC report for one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YearlyReport {
    pub year: i32,
    pub threshold: Threshold,
    /// Sorted by payee id.
    pub rows: Vec<Row>,
    /// Of US payees only (foreign payees get no 1099), whatever their USD total.
    pub other_currencies: Vec<OtherCurrency>,
    /// Payments whose payee is not among those given: a bug upstream, never silently dropped.
    pub unknown_payees: Vec<String>,
}

/// Builds the report for payments made in `year`. Foreign payees (no US address, not a US
/// person, no W-9) get no 1099-NEC and are left out; a US payee without a W-9 is still
/// reported, with an empty TIN the filer must chase (backup withholding applies).
pub fn yearly_report(
    rules: &TaxRules,
    year: i32,
    payees: &[Payee],
    payments: &[Payment],
) -> Result<YearlyReport, RulesError> {
    let threshold = rules
        .threshold(year)
        .ok_or_else(|| RulesError(format!("no 1099-NEC threshold for {year}")))?
        .clone();
    let by_id: HashMap<&str, &Payee> = payees.iter().map(|p| (p.id.as_str(), p)).collect();
    let mut usd: BTreeMap<&str, Totals> = BTreeMap::new();
    let mut other: BTreeMap<(&str, &str), Totals> = BTreeMap::new();
    let mut unknown: BTreeMap<&str, ()> = BTreeMap::new();
    for p in payments.iter().filter(|p| p.paid_on.year() == year) {
        let Some(payee) = by_id.get(p.payee_id.as_str()) else {
            unknown.insert(&p.payee_id, ());
            continue;
        };
        if !rules.is_us_payee(payee) {
            continue;
        }
        if p.currency.eq_ignore_ascii_case("USD") {
            usd.entry(&p.payee_id).or_default().add(p.kind, p.amount_minor);
        } else {
            other
                .entry((&p.payee_id, &p.currency))
                .or_default()
                .add(p.kind, p.amount_minor);
        }
    }
    let rows = usd
        .into_iter()
        .filter(|(_, t)| t.total() >= threshold.minimum_cents)
        .filter_map(|(id, t)| {
            by_id.get(id).map(|p| Row {
                payee: (*p).clone(),
                usd_cents: t,
            })
        })
        .collect();
    let other_currencies = other
        .into_iter()
        .map(|((id, cur), t)| OtherCurrency {
            payee_id: id.to_owned(),
            currency: cur.to_ascii_uppercase(),
            minor: t,
        })
        .collect();
    Ok(YearlyReport {
        year,
        threshold,
        rows,
        other_currencies,
        unknown_payees: unknown.into_keys().map(str::to_owned).collect(),
    })
}

/// How the CSV shows TINs. Masked by default: the file is mailed, shared and opened on laptops,
/// and most of its uses (checking who gets a 1099, reconciling totals) need no full number.
/// Only the copy that feeds the actual filing (IRS IRIS or FIRE, or the brand's tax software)
/// needs `Full`, and the caller must ask for it explicitly (and, in the API, hold the scope).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TinDisplay {
    #[default]
    Masked,
    Full,
}

const CSV_HEADER: [&str; 18] = [
    "Tax year",
    "Payee ID",
    "Recipient name",
    "TIN type",
    "Recipient TIN",
    "Address line 1",
    "Address line 2",
    "City",
    "State",
    "ZIP code",
    "Country",
    "Cash (USD)",
    "Gift cards at face value (USD)",
    "Product at declared value (USD)",
    "Total paid (USD)",
    "Box 1 Nonemployee compensation (USD)",
    "Reporting threshold (USD)",
    "Threshold status",
];

/// The report as CSV for a tax person: one line per 1099-NEC, dollars with cents.
pub fn to_csv(report: &YearlyReport, tin: TinDisplay) -> Result<String, Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let fail = |e: csv::Error| Error::internal("write 1099 report", e);
    w.write_record(CSV_HEADER).map_err(fail)?;
    let status = if report.threshold.provisional {
        "provisional: not yet published by the IRS"
    } else {
        "published"
    };
    for row in &report.rows {
        w.write_record(csv_line(report, row, tin, status)).map_err(fail)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Error::internal("write 1099 report", e.into_error()))?;
    String::from_utf8(bytes).map_err(|e| Error::internal("write 1099 report", e))
}

fn csv_line(report: &YearlyReport, row: &Row, tin: TinDisplay, status: &str) -> Vec<String> {
    let p = &row.payee;
    let a = p.address.as_ref();
    let text = |s: Option<&str>| cell(s.unwrap_or(""));
    let (tin_type, tin_value) = match (&p.tax_id, tin) {
        (Some(id), TinDisplay::Full) => (id.kind().name(), id.full()),
        (Some(id), TinDisplay::Masked) => (id.kind().name(), id.masked()),
        (None, _) => ("", String::new()),
    };
    vec![
        report.year.to_string(),
        cell(&p.id),
        cell(&p.legal_name),
        tin_type.to_owned(),
        tin_value,
        text(a.map(|a| a.line1.as_str())),
        text(a.and_then(|a| a.line2.as_deref())),
        text(a.map(|a| a.city.as_str())),
        text(a.and_then(|a| a.region.as_deref())),
        text(a.and_then(|a| a.postal_code.as_deref())),
        text(a.map(|a| a.country.code())),
        dollars(row.usd_cents.cash),
        dollars(row.usd_cents.gift_card),
        dollars(row.usd_cents.product),
        dollars(row.usd_cents.total()),
        dollars(row.box1_cents()),
        dollars(report.threshold.minimum_cents),
        status.to_owned(),
    ]
}

/// Payee-typed text opened in a spreadsheet: a leading `=`, `+`, `-` or `@` would run as a
/// formula (CSV injection), so such a cell starts with an apostrophe instead.
fn cell(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    }
}

fn dollars(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    format!("{sign}{}.{:02}", c / 100, c % 100)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::domain::payee::{Address, AddressInput, TaxId, TinKind};

    fn day(s: &str) -> Date {
        Date::parse(s).unwrap()
    }

    fn rules() -> &'static TaxRules {
        TaxRules::builtin().unwrap()
    }

    fn us_payee(id: &str) -> Payee {
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
            id: id.to_owned(),
            legal_name: format!("Legal {id}"),
            us_person: true,
            address: Some(Address::parse("address", &input).unwrap()),
            cash_destination: None,
            tax_id: Some(TaxId::parse("tin", TinKind::Ssn, "123-45-6789").unwrap()),
            tax_form: TaxForm::W9 {
                signed_on: day("2025-01-10"),
            },
        }
    }

    fn foreign_payee(id: &str) -> Payee {
        let input = AddressInput {
            name: "Jonas",
            line1: "Hauptstr. 1",
            city: "Berlin",
            postal_code: "10115",
            country: "DE",
            ..AddressInput::default()
        };
        Payee {
            us_person: false,
            address: Some(Address::parse("address", &input).unwrap()),
            tax_id: None,
            tax_form: TaxForm::W8Ben {
                signed_on: day("2025-01-10"),
            },
            ..us_payee(id)
        }
    }

    fn pay(payee: &str, on: &str, kind: PaymentKind, currency: &str, minor: i64) -> Payment {
        Payment {
            payee_id: payee.to_owned(),
            paid_on: day(on),
            kind,
            currency: currency.to_owned(),
            amount_minor: minor,
        }
    }

    fn cash(payee: &str, on: &str, cents: i64) -> Payment {
        pay(payee, on, PaymentKind::Cash, "USD", cents)
    }

    fn reported(year: i32, payees: &[Payee], payments: &[Payment]) -> Vec<(String, i64)> {
        let r = yearly_report(rules(), year, payees, payments).unwrap();
        r.rows
            .iter()
            .map(|row| (row.payee.id.clone(), row.box1_cents()))
            .collect()
    }

    #[test]
    fn thresholds_per_payment_year_come_from_the_data() {
        let t = |y| rules().threshold(y).unwrap();
        assert_eq!((t(2024).minimum_cents, t(2025).minimum_cents), (60_000, 60_000));
        assert_eq!((t(2026).minimum_cents, t(2026).provisional), (200_000, false));
        // Not yet published: the last known value, flagged.
        assert_eq!((t(2027).minimum_cents, t(2027).provisional), (200_000, true));
        assert!(t(2031).provisional);
        assert!(rules().threshold(1999).is_none());
    }

    #[test]
    fn just_under_and_at_the_2025_threshold() {
        let payees = [us_payee("a"), us_payee("b")];
        let payments = [
            cash("a", "2025-03-01", 59_999),
            cash("b", "2025-03-01", 50_000),
            cash("b", "2025-11-30", 10_000),
        ];
        assert_eq!(reported(2025, &payees, &payments), [("b".to_owned(), 60_000)]);
    }

    #[test]
    fn just_under_and_at_the_2026_threshold() {
        let payees = [us_payee("a"), us_payee("b")];
        let payments = [cash("a", "2026-06-01", 199_999), cash("b", "2026-06-01", 200_000)];
        assert_eq!(reported(2026, &payees, &payments), [("b".to_owned(), 200_000)]);
    }

    #[test]
    fn the_year_of_payment_decides() {
        let payees = [us_payee("a")];
        // $700 paid on the last day of 2025 is reported for 2025 ($600 threshold); the same paid
        // a day later falls in 2026 and stays under $2,000.
        let late = [cash("a", "2025-12-31", 70_000)];
        assert_eq!(reported(2025, &payees, &late), [("a".to_owned(), 70_000)]);
        assert!(reported(2026, &payees, &late).is_empty());
        let early = [cash("a", "2026-01-01", 70_000)];
        assert!(reported(2025, &payees, &early).is_empty());
        assert!(reported(2026, &payees, &early).is_empty());
    }

    #[test]
    fn product_at_declared_value_and_gift_cards_count() {
        let payees = [us_payee("a")];
        let payments = [
            cash("a", "2026-02-01", 150_000),
            pay("a", "2026-03-01", PaymentKind::GiftCard, "USD", 20_000),
            pay("a", "2026-04-01", PaymentKind::Product, "USD", 30_000),
        ];
        let r = yearly_report(rules(), 2026, &payees, &payments).unwrap();
        assert_eq!(r.rows.len(), 1);
        assert_eq!(
            r.rows[0].usd_cents,
            Totals {
                cash: 150_000,
                gift_card: 20_000,
                product: 30_000
            }
        );
        assert_eq!(r.rows[0].box1_cents(), 200_000);
        // Without the product the cash and card stay under.
        assert!(reported(2026, &payees, &payments[..2]).is_empty());
    }

    #[test]
    fn a_reversal_in_the_year_reduces_the_total() {
        let payees = [us_payee("a")];
        let payments = [cash("a", "2025-02-01", 70_000), cash("a", "2025-02-20", -20_000)];
        assert!(reported(2025, &payees, &payments).is_empty());
    }

    #[test]
    fn foreign_payees_get_no_1099() {
        let payees = [foreign_payee("de")];
        let r = yearly_report(rules(), 2025, &payees, &[cash("de", "2025-05-01", 5_000_000)]).unwrap();
        assert!(r.rows.is_empty() && r.other_currencies.is_empty());
    }

    #[test]
    fn other_currencies_are_listed_not_converted() {
        let payees = [us_payee("a"), us_payee("b")];
        let payments = [
            pay("a", "2026-05-01", PaymentKind::Cash, "EUR", 500_000),
            pay("a", "2026-06-01", PaymentKind::Product, "EUR", 10_000),
            cash("b", "2026-05-01", 250_000),
            pay("b", "2026-05-02", PaymentKind::GiftCard, "CAD", 5_000),
        ];
        let r = yearly_report(rules(), 2026, &payees, &payments).unwrap();
        // a has no USD at all: no row, however large the euros.
        assert_eq!(r.rows.iter().map(|x| x.payee.id.as_str()).collect::<Vec<_>>(), ["b"]);
        assert_eq!(r.rows[0].box1_cents(), 250_000);
        assert_eq!(
            r.other_currencies,
            [
                OtherCurrency {
                    payee_id: "a".into(),
                    currency: "EUR".into(),
                    minor: Totals {
                        cash: 500_000,
                        gift_card: 0,
                        product: 10_000
                    }
                },
                OtherCurrency {
                    payee_id: "b".into(),
                    currency: "CAD".into(),
                    minor: Totals {
                        cash: 0,
                        gift_card: 5_000,
                        product: 0
                    }
                },
            ]
        );
    }

    #[test]
    fn unknown_payees_are_listed() {
        let r = yearly_report(rules(), 2025, &[], &[cash("ghost", "2025-01-01", 1)]).unwrap();
        assert_eq!(r.unknown_payees, ["ghost"]);
    }

    #[test]
    fn cash_is_held_until_the_right_form_is_on_file() {
        let today = day("2026-06-01");
        let hold = |p: &Payee| cash_hold_reason(rules(), p, today);
        assert_eq!(hold(&us_payee("a")), None);
        assert_eq!(
            hold(&Payee {
                tax_form: TaxForm::Missing,
                ..us_payee("a")
            }),
            Some(HoldReason::W9Missing)
        );
        // A W-8 does not count for a US person, nor for anyone at a US address.
        let w8 = TaxForm::W8Ben {
            signed_on: day("2025-01-01"),
        };
        assert_eq!(
            hold(&Payee {
                tax_form: w8,
                ..us_payee("a")
            }),
            Some(HoldReason::W9Missing)
        );
        assert_eq!(
            hold(&Payee {
                tax_form: w8,
                us_person: false,
                ..us_payee("a")
            }),
            Some(HoldReason::W9Missing)
        );
        // A US person abroad is still a US payee.
        assert_eq!(
            hold(&Payee {
                us_person: true,
                tax_form: w8,
                ..foreign_payee("x")
            }),
            Some(HoldReason::W9Missing)
        );
        assert_eq!(
            hold(&Payee {
                tax_id: None,
                ..us_payee("a")
            }),
            Some(HoldReason::TinMissing)
        );
        assert_eq!(hold(&foreign_payee("de")), None);
        let entity = TaxForm::W8BenE {
            signed_on: day("2023-12-31"),
        };
        assert_eq!(
            hold(&Payee {
                tax_form: entity,
                ..foreign_payee("de")
            }),
            None
        );
        assert_eq!(
            hold(&Payee {
                tax_form: TaxForm::Missing,
                ..foreign_payee("de")
            }),
            Some(HoldReason::ForeignFormMissing)
        );
        // Signed in 2022: in effect through 31 Dec 2025.
        let old = Payee {
            tax_form: TaxForm::W8Ben {
                signed_on: day("2022-07-01"),
            },
            ..foreign_payee("de")
        };
        assert_eq!(cash_hold_reason(rules(), &old, day("2025-12-31")), None);
        let expired = cash_hold_reason(rules(), &old, day("2026-01-01")).unwrap();
        assert_eq!(
            expired,
            HoldReason::ForeignFormExpired {
                expired_after: day("2025-12-31")
            }
        );
        assert_eq!(expired.code(), "W8_EXPIRED");
        assert!(HoldReason::W9Missing.to_string().contains("W-9"));
        // A Puerto Rico address is a US address.
        let pr_input = AddressInput {
            name: "Luis",
            line1: "1 Calle Sol",
            city: "San Juan",
            region: "PR",
            postal_code: "00901",
            country: "PR",
            ..AddressInput::default()
        };
        let pr = Payee {
            us_person: false,
            tax_form: TaxForm::Missing,
            address: Some(Address::parse("", &pr_input).unwrap()),
            ..us_payee("pr")
        };
        assert_eq!(hold(&pr), Some(HoldReason::W9Missing));
    }

    #[test]
    fn csv_for_a_tax_person_masks_tins_unless_asked() {
        let mut tricky = us_payee("b");
        tricky.legal_name = "=HYPERLINK(\"http://x\")".into();
        let payees = [us_payee("a"), tricky];
        let payments = [
            cash("a", "2026-02-01", 150_000),
            pay("a", "2026-04-01", PaymentKind::Product, "USD", 50_099),
            cash("b", "2026-02-01", 300_000),
        ];
        let report = yearly_report(rules(), 2026, &payees, &payments).unwrap();
        let masked = to_csv(&report, TinDisplay::default()).unwrap();
        let mut lines = masked.lines();
        assert!(
            lines
                .next()
                .unwrap()
                .starts_with("Tax year,Payee ID,Recipient name,TIN type,Recipient TIN,")
        );
        assert_eq!(
            lines.next().unwrap(),
            "2026,a,Legal a,SSN,***-**-6789,1 Main St,,Austin,TX,78701,US,1500.00,0.00,500.99,2000.99,2000.99,2000.00,published"
        );
        assert!(
            lines.next().unwrap().starts_with("2026,b,\"'=HYPERLINK("),
            "formula neutralised"
        );
        assert!(!masked.contains("123-45-6789"));
        let full = to_csv(&report, TinDisplay::Full).unwrap();
        assert!(full.contains(",SSN,123-45-6789,"));
        let provisional = yearly_report(rules(), 2027, &payees, &[cash("a", "2027-01-05", 200_000)]).unwrap();
        assert!(
            to_csv(&provisional, TinDisplay::Masked)
                .unwrap()
                .contains("provisional")
        );
    }

    #[test]
    fn broken_rules_are_refused_with_the_reason() {
        let forms = "[forms]\nus_countries = [\"US\"]\nw8_years_after_signing = 3\n";
        let gap = format!(
            "[[threshold]]\nfirst_year = 2000\nlast_year = 2024\nminimum_cents = 1\nsource = \"x\"\n\
             [[threshold]]\nfirst_year = 2026\nminimum_cents = 1\nsource = \"x\"\n{forms}"
        );
        assert!(
            TaxRules::from_toml(&gap)
                .unwrap_err()
                .to_string()
                .contains("must end the year before 2026")
        );
        let closed =
            format!("[[threshold]]\nfirst_year = 2000\nlast_year = 2030\nminimum_cents = 1\nsource = \"x\"\n{forms}");
        assert!(
            TaxRules::from_toml(&closed)
                .unwrap_err()
                .to_string()
                .contains("open-ended")
        );
        let zero = format!("[[threshold]]\nfirst_year = 2000\nminimum_cents = 0\nsource = \"x\"\n{forms}");
        assert!(TaxRules::from_toml(&zero).unwrap_err().to_string().contains("positive"));
        let country = "[[threshold]]\nfirst_year = 2000\nminimum_cents = 1\nsource = \"x\"\n[forms]\nus_countries = [\"USA\"]\nw8_years_after_signing = 3\n";
        assert!(TaxRules::from_toml(country).unwrap_err().to_string().contains("USA"));
        assert_eq!(dollars(-1), "-0.01");
    }
}
