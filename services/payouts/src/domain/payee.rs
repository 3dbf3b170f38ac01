//! What a payee enters about themselves, parsed once into types that can only hold valid
//! values: where cash goes (a Stripe connected account or a PayPal email), where product is
//! shipped, their US taxpayer identification number and the tax form on file. Every refusal
//! is an INVALID_ARGUMENT naming the field.

use std::fmt;

use chorus_kit::error::too_long;
use chorus_kit::{Error, Violations};

use super::date::Date;

/// Stripe documents ids as opaque strings up to 255 characters.
const MAX_STRIPE_ID: usize = 255;
/// PayPal Payouts' `receiver` for an EMAIL recipient: at most 127 characters.
pub const MAX_PAYPAL_EMAIL: usize = 127;
/// RFC 5321: a local part of at most 64 octets.
const MAX_EMAIL_LOCAL: usize = 64;
pub const MAX_ADDRESS_FIELD: usize = 100;
pub const MAX_POSTAL_CODE: usize = 16;

/// A Stripe Connect account id: `acct_` and letters or digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeAccountId(String);

impl StripeAccountId {
    pub fn parse(field: &str, s: &str) -> Result<Self, Error> {
        let s = s.trim();
        let Some(rest) = s.strip_prefix("acct_") else {
            return Err(Error::invalid_field(
                field,
                "a Stripe connected account id starts with `acct_`",
            ));
        };
        if rest.is_empty() || too_long(s, MAX_STRIPE_ID) || !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(Error::invalid_field(
                field,
                format!("`acct_` must be followed by letters or digits, at most {MAX_STRIPE_ID} characters in all"),
            ));
        }
        Ok(StripeAccountId(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A PayPal receiver email. The check is deliberately plain (one `@`, a dotted domain of
/// letters, digits and hyphens, no spaces): PayPal itself decides whether an account exists.
#[derive(Clone, PartialEq, Eq)]
pub struct PaypalEmail(String);

impl PaypalEmail {
    pub fn parse(field: &str, s: &str) -> Result<Self, Error> {
        let s = s.trim();
        let bad = |why: &str| Err(Error::invalid_field(field, why.to_owned()));
        if s.is_empty() {
            return bad("required");
        }
        if too_long(s, MAX_PAYPAL_EMAIL) {
            return bad("at most 127 characters (PayPal's limit)");
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return bad("an email address has an `@`");
        };
        let local_ok = !local.is_empty()
            && local.len() <= MAX_EMAIL_LOCAL
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"@\"(),:;<>[\\]".contains(&b));
        if !local_ok {
            return bad("the part before `@` is not a valid mailbox");
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
            && labels
                .last()
                .is_some_and(|tld| tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_alphabetic()));
        if !domain_ok {
            return bad("the part after `@` is not a domain name like example.com");
        }
        // Domains are case-insensitive; the local part, strictly, is not: keep it as typed.
        Ok(PaypalEmail(format!("{local}@{}", domain.to_ascii_lowercase())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email is PII: logs and Debug dumps show only its domain.
impl fmt::Debug for PaypalEmail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let domain = self.0.rsplit_once('@').map_or("", |(_, d)| d);
        write!(f, "PaypalEmail(***@{domain})")
    }
}

/// Where a payee's cash goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CashDestination {
    Stripe(StripeAccountId),
    Paypal(PaypalEmail),
}

/// ISO 3166-1 alpha-2 officially assigned codes (249), as one string: two letters each.
const ISO_3166_ALPHA2: &str = "ADAEAFAGAIALAMAOAQARASATAUAWAXAZBABBBDBEBFBGBHBIBJBLBMBNBOBQBRBSBTBVBWBYBZ\
CACCCDCFCGCHCICKCLCMCNCOCRCUCVCWCXCYCZDEDJDKDMDODZECEEEGEHERESETFIFJFKFMFOFRGAGBGDGEGFGGGHGIGLGMGNGP\
GQGRGSGTGUGWGYHKHMHNHRHTHUIDIEILIMINIOIQIRISITJEJMJOJPKEKGKHKIKMKNKPKRKWKYKZLALBLCLILKLRLSLTLULVLYMA\
MCMDMEMFMGMHMKMLMMMNMOMPMQMRMSMTMUMVMWMXMYMZNANCNENFNGNINLNONPNRNUNZOMPAPEPFPGPHPKPLPMPNPRPSPTPWPYQA\
RERORSRURWSASBSCSDSESGSHSISJSKSLSMSNSOSRSSSTSVSXSYSZTCTDTFTGTHTJTKTLTMTNTOTRTTTVTWTZUAUGUMUSUYUZVAVC\
VEVGVIVNVUWFWSYEYTZAZMZW";

/// USPS codes a US address may carry as its state: the states, DC, the territories and the
/// military post offices (AA, AE, AP).
const USPS_STATES: &str = "ALAKAZARCACOCTDEFLGAHIIDILINIAKSKYLAMEMDMAMIMNMSMOMTNENVNHNJNMNYNCNDOHOKORPARISCSDTNTXUTVTVAWAWVWIWY\
DCASGUMPPRVIUMAAAEAP";

fn in_pairs(table: &str, code: &str) -> bool {
    code.len() == 2 && table.as_bytes().chunks_exact(2).any(|c| c == code.as_bytes())
}

/// An ISO 3166-1 alpha-2 country code, upper case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Country([u8; 2]);

impl Country {
    pub const US: Country = Country(*b"US");

    pub fn parse(field: &str, s: &str) -> Result<Self, Error> {
        let code = s.trim().to_ascii_uppercase();
        if !in_pairs(ISO_3166_ALPHA2, &code) {
            return Err(Error::invalid_field(
                field,
                "an ISO 3166-1 alpha-2 country code, like US or DE",
            ));
        }
        let b = code.as_bytes();
        Ok(Country([b[0], b[1]]))
    }

    pub fn code(&self) -> &str {
        // Built only from ASCII letters.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

/// What a payee types for a shipping address, before parsing.
#[derive(Debug, Clone, Default)]
pub struct AddressInput<'a> {
    pub name: &'a str,
    pub line1: &'a str,
    pub line2: &'a str,
    pub city: &'a str,
    pub region: &'a str,
    pub postal_code: &'a str,
    pub country: &'a str,
}

/// A shipping (and tax) address. Name, first line, city and country are always required; a
/// US address also needs a USPS state code and a ZIP (`12345` or `12345-6789`); elsewhere
/// region and postal code are optional because many countries have neither.
#[derive(Clone, PartialEq, Eq)]
pub struct Address {
    pub name: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    pub country: Country,
}

/// An address is PII: Debug shows the country only.
impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({}, [redacted])", self.country.code())
    }
}

impl Address {
    /// Parses every field and names each bad one (`address.postal_code`...) in one error.
    pub fn parse(prefix: &str, input: &AddressInput<'_>) -> Result<Self, Error> {
        let mut v = Violations::new();
        let path = |f: &str| {
            if prefix.is_empty() {
                f.to_owned()
            } else {
                format!("{prefix}.{f}")
            }
        };
        let name = required(&mut v, &path("name"), input.name);
        let line1 = required(&mut v, &path("line1"), input.line1);
        let line2 = optional(&mut v, &path("line2"), input.line2, MAX_ADDRESS_FIELD);
        let city = required(&mut v, &path("city"), input.city);
        let country = v.take(Country::parse(&path("country"), input.country))?;
        let mut region = optional(&mut v, &path("region"), input.region, MAX_ADDRESS_FIELD);
        let mut postal_code = optional(&mut v, &path("postal_code"), input.postal_code, MAX_POSTAL_CODE);
        if country == Some(Country::US) {
            region = region.map(|r| r.to_ascii_uppercase());
            let state_ok = region.as_deref().is_some_and(|r| in_pairs(USPS_STATES, r));
            v.check(
                !state_ok,
                path("region"),
                "a US address needs its USPS state code, like CA or NY",
            );
            let zip_ok = postal_code.as_deref().is_some_and(is_zip);
            v.check(!zip_ok, path("postal_code"), "a US ZIP code is 12345 or 12345-6789");
        } else if let Some(p) = &postal_code {
            let ok = p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ' || b == b'-');
            v.check(!ok, path("postal_code"), "letters, digits, spaces and hyphens only");
            postal_code = Some(p.to_ascii_uppercase());
        }
        v.finish()?;
        let (Some(name), Some(line1), Some(city), Some(country)) = (name, line1, city, country) else {
            return Err(Error::invalid_field(path("name"), "required"));
        };
        Ok(Address {
            name,
            line1,
            line2,
            city,
            region,
            postal_code,
            country,
        })
    }

    pub fn is_in(&self, countries: &[Country]) -> bool {
        countries.contains(&self.country)
    }
}

fn is_zip(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    match b.len() {
        5 => digits(0..5),
        10 => digits(0..5) && b[5] == b'-' && digits(6..10),
        _ => false,
    }
}

fn required(v: &mut Violations, field: &str, s: &str) -> Option<String> {
    let s = s.trim();
    v.check(s.is_empty(), field, "required");
    optional(v, field, s, MAX_ADDRESS_FIELD)
}

fn optional(v: &mut Violations, field: &str, s: &str, max: usize) -> Option<String> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if too_long(s, max) {
        v.add(field, format!("at most {max} characters"));
        return None;
    }
    if s.chars().any(char::is_control) {
        v.add(field, "no control characters");
        return None;
    }
    Some(s.to_owned())
}

/// The three US taxpayer identification numbers a W-9 may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TinKind {
    /// Social Security number (individuals).
    Ssn,
    /// Individual taxpayer identification number (individuals without an SSN).
    Itin,
    /// Employer identification number (businesses, and sole proprietors who have one).
    Ein,
}

impl TinKind {
    pub fn name(self) -> &'static str {
        match self {
            TinKind::Ssn => "SSN",
            TinKind::Itin => "ITIN",
            TinKind::Ein => "EIN",
        }
    }
}

/// A US TIN: nine digits that pass the issuer's documented ranges. Debug and `masked` show
/// the last four digits only; `full` is for the tax filing and nothing else.
#[derive(Clone, PartialEq, Eq)]
pub struct TaxId {
    kind: TinKind,
    digits: [u8; 9],
}

impl fmt::Debug for TaxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TaxId({}, {})", self.kind.name(), self.masked())
    }
}

impl TaxId {
    /// Accepts the digits with or without the usual hyphens or spaces.
    pub fn parse(field: &str, kind: TinKind, s: &str) -> Result<Self, Error> {
        let raw: Vec<u8> = s.bytes().filter(|b| !matches!(b, b'-' | b' ')).collect();
        if raw.len() != 9 || !raw.iter().all(u8::is_ascii_digit) {
            return Err(Error::invalid_field(field, format!("an {} is 9 digits", kind.name())));
        }
        let mut digits = [0u8; 9];
        for (d, r) in digits.iter_mut().zip(&raw) {
            *d = r - b'0';
        }
        let id = TaxId { kind, digits };
        match kind.check(&id) {
            Ok(()) => Ok(id),
            Err(why) => Err(Error::invalid_field(field, why)),
        }
    }

    pub fn kind(&self) -> TinKind {
        self.kind
    }

    fn number(&self, r: std::ops::Range<usize>) -> u32 {
        self.digits[r].iter().fold(0, |n, &d| n * 10 + u32::from(d))
    }

    fn last4(&self) -> String {
        self.digits[5..].iter().map(|d| char::from(b'0' + d)).collect()
    }

    /// `***-**-1234` for an SSN or ITIN, `**-***1234` for an EIN.
    pub fn masked(&self) -> String {
        match self.kind {
            TinKind::Ein => format!("**-***{}", self.last4()),
            TinKind::Ssn | TinKind::Itin => format!("***-**-{}", self.last4()),
        }
    }

    /// The whole number in its usual layout (`123-45-6789`, `12-3456789`).
    pub fn full(&self) -> String {
        let s: String = self.digits.iter().map(|d| char::from(b'0' + d)).collect();
        match self.kind {
            TinKind::Ein => format!("{}-{}", &s[..2], &s[2..]),
            TinKind::Ssn | TinKind::Itin => format!("{}-{}-{}", &s[..3], &s[3..5], &s[5..]),
        }
    }
}

impl TinKind {
    /// The ranges the issuers document as never assigned.
    fn check(self, id: &TaxId) -> Result<(), &'static str> {
        let area = id.number(0..3);
        let group = id.number(3..5);
        let serial = id.number(5..9);
        match self {
            // SSA: no area 000, 666 or 900-999, no group 00, no serial 0000.
            TinKind::Ssn if area == 0 || area == 666 || area >= 900 => Err("an SSN never starts with 000, 666 or 9"),
            TinKind::Ssn if group == 0 => Err("an SSN never has 00 as its middle two digits"),
            TinKind::Ssn if serial == 0 => Err("an SSN never ends with 0000"),
            // IRS: an ITIN starts with 9 and its 4th-5th digits are 50-65, 70-88, 90-92 or 94-99.
            TinKind::Itin if id.digits[0] != 9 => Err("an ITIN starts with 9"),
            TinKind::Itin if !matches!(group, 50..=65 | 70..=88 | 90..=92 | 94..=99) => {
                Err("an ITIN's 4th and 5th digits are 50-65, 70-88, 90-92 or 94-99")
            }
            // IRS: the EIN prefixes assigned by its campuses and online.
            TinKind::Ein if !is_ein_prefix(id.number(0..2)) => Err("not an EIN prefix the IRS assigns"),
            _ => Ok(()),
        }
    }
}

/// The IRS's list of valid EIN prefixes ("How EINs are assigned and valid EIN prefixes").
fn is_ein_prefix(p: u32) -> bool {
    matches!(p, 1..=6 | 10..=16 | 20..=27 | 30..=48 | 50..=68 | 71..=77 | 80..=88 | 90..=95 | 98 | 99)
}

/// The US tax form a payee has on file and the date they signed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaxForm {
    /// W-9: a US person certifies their TIN. Does not expire.
    W9 {
        signed_on: Date,
    },
    /// W-8BEN: a foreign individual certifies foreign status.
    W8Ben {
        signed_on: Date,
    },
    /// W-8BEN-E: a foreign entity certifies foreign status.
    W8BenE {
        signed_on: Date,
    },
    Missing,
}

impl TaxForm {
    /// From the form's name (`W-9`, `W-8BEN`, `W-8BEN-E`, or empty for none) and the signature
    /// date, which must be a real date no later than today.
    pub fn parse(field: &str, form: &str, signed_on: &str, today: Date) -> Result<Self, Error> {
        let make: fn(Date) -> TaxForm = match form.trim().to_ascii_uppercase().replace(['-', ' '], "").as_str() {
            "" | "MISSING" => return Ok(TaxForm::Missing),
            "W9" => |d| TaxForm::W9 { signed_on: d },
            "W8BEN" => |d| TaxForm::W8Ben { signed_on: d },
            "W8BENE" => |d| TaxForm::W8BenE { signed_on: d },
            _ => {
                return Err(Error::invalid_field(
                    format!("{field}.form"),
                    "one of W-9, W-8BEN, W-8BEN-E",
                ));
            }
        };
        let signed_field = format!("{field}.signed_on");
        let date =
            Date::parse(signed_on.trim()).ok_or_else(|| Error::invalid_field(&signed_field, "a date as YYYY-MM-DD"))?;
        if date > today {
            return Err(Error::invalid_field(
                signed_field,
                "a form cannot be signed in the future",
            ));
        }
        Ok(make(date))
    }

    pub fn name(&self) -> &'static str {
        match self {
            TaxForm::W9 { .. } => "W-9",
            TaxForm::W8Ben { .. } => "W-8BEN",
            TaxForm::W8BenE { .. } => "W-8BEN-E",
            TaxForm::Missing => "none",
        }
    }

    pub fn signed_on(&self) -> Option<Date> {
        match *self {
            TaxForm::W9 { signed_on } | TaxForm::W8Ben { signed_on } | TaxForm::W8BenE { signed_on } => Some(signed_on),
            TaxForm::Missing => None,
        }
    }
}

/// Everything the payouts service keeps about a payee, decrypted. `us_person` is what the payee
/// declared (citizen or resident alien), which the W-9 then certifies.
#[derive(Clone, PartialEq, Eq)]
pub struct Payee {
    pub id: String,
    /// The name for the 1099 (line 1 of the W-9), not necessarily the display name.
    pub legal_name: String,
    pub us_person: bool,
    pub address: Option<Address>,
    pub cash_destination: Option<CashDestination>,
    pub tax_id: Option<TaxId>,
    pub tax_form: TaxForm,
}

/// The legal name is PII: a Debug dump (a log line, a panic) shows the rest, each part
/// redacted by its own type.
impl fmt::Debug for Payee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Payee")
            .field("id", &self.id)
            .field("legal_name", &"[redacted]")
            .field("us_person", &self.us_person)
            .field("address", &self.address)
            .field("cash_destination", &self.cash_destination)
            .field("tax_id", &self.tax_id)
            .field("tax_form", &self.tax_form)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn fields(e: Error) -> Vec<String> {
        e.violations().iter().map(|v| v.field.clone()).collect()
    }

    #[test]
    fn stripe_account_ids() {
        assert_eq!(
            StripeAccountId::parse("f", " acct_1Nv0FGQ9RKHgCVdK ").unwrap().as_str(),
            "acct_1Nv0FGQ9RKHgCVdK"
        );
        for bad in [
            "",
            "acct_",
            "1Nv0FGQ9RKHgCVdK",
            "acct_1Nv0-FGQ",
            "cus_123",
            "acct_ab cd",
        ] {
            let e = StripeAccountId::parse("destination.stripe_account", bad).unwrap_err();
            assert_eq!(fields(e), ["destination.stripe_account"], "{bad}");
        }
        assert!(StripeAccountId::parse("f", &format!("acct_{}", "a".repeat(250))).is_ok());
        assert!(StripeAccountId::parse("f", &format!("acct_{}", "a".repeat(251))).is_err());
    }

    #[test]
    fn paypal_emails() {
        let e = PaypalEmail::parse("f", "Ana.Lopez+nano@Example.COM").unwrap();
        assert_eq!(e.as_str(), "Ana.Lopez+nano@example.com");
        assert_eq!(format!("{e:?}"), "PaypalEmail(***@example.com)");
        for bad in [
            "",
            "ana",
            "ana@",
            "@example.com",
            "ana@example",
            "ana@exa mple.com",
            "ana@-x.com",
            "a..b@x.com",
            "ana@x.c0m",
            "a b@x.com",
        ] {
            assert_eq!(
                fields(PaypalEmail::parse("destination.paypal_email", bad).unwrap_err()),
                ["destination.paypal_email"],
                "{bad}"
            );
        }
        let at_limit = format!("{}@{}.com", "a".repeat(60), "b".repeat(62));
        assert_eq!(at_limit.len(), 127);
        assert!(PaypalEmail::parse("f", &at_limit).is_ok());
        let over = format!("{}@{}.com", "a".repeat(60), "b".repeat(63));
        assert!(
            PaypalEmail::parse("f", &over).unwrap_err().violations()[0]
                .description
                .contains("127")
        );
    }

    #[test]
    fn countries_are_the_assigned_iso_codes() {
        assert_eq!(ISO_3166_ALPHA2.len(), 249 * 2);
        assert_eq!(Country::parse("c", "de").unwrap().code(), "DE");
        for bad in ["", "XX", "UK", "USA", "U"] {
            assert!(Country::parse("c", bad).is_err(), "{bad}");
        }
    }

    fn us(zip: &str, state: &str) -> AddressInput<'static> {
        AddressInput {
            name: "Ana Lopez",
            line1: "1 Main St",
            city: "Austin",
            region: Box::leak(state.to_owned().into_boxed_str()),
            postal_code: Box::leak(zip.to_owned().into_boxed_str()),
            country: "us",
            ..AddressInput::default()
        }
    }

    #[test]
    fn us_addresses_need_a_state_and_a_zip() {
        let a = Address::parse("address", &us("78701-1234", "tx")).unwrap();
        assert_eq!((a.region.as_deref(), a.country), (Some("TX"), Country::US));
        assert_eq!(format!("{a:?}"), "Address(US, [redacted])");
        assert!(Address::parse("address", &us("78701", "PR")).is_ok());
        for (zip, state, field) in [
            ("7870", "TX", "address.postal_code"),
            ("78701-12", "TX", "address.postal_code"),
            ("7870A", "TX", "address.postal_code"),
            ("", "TX", "address.postal_code"),
            ("78701", "", "address.region"),
            ("78701", "XX", "address.region"),
        ] {
            assert_eq!(
                fields(Address::parse("address", &us(zip, state)).unwrap_err()),
                [field],
                "{zip} {state}"
            );
        }
    }

    #[test]
    fn every_missing_field_is_named_at_once() {
        let e = Address::parse(
            "address",
            &AddressInput {
                line2: &"x".repeat(101),
                country: "ZZ",
                ..AddressInput::default()
            },
        )
        .unwrap_err();
        assert_eq!(
            fields(e),
            [
                "address.name",
                "address.line1",
                "address.line2",
                "address.city",
                "address.country"
            ]
        );
    }

    #[test]
    fn foreign_addresses_may_lack_region_and_postal_code() {
        let input = AddressInput {
            name: "Jonas",
            line1: "Hauptstr. 1",
            city: "Berlin",
            postal_code: "10115",
            country: "DE",
            ..AddressInput::default()
        };
        let a = Address::parse("", &input).unwrap();
        assert_eq!((a.region, a.postal_code.as_deref()), (None, Some("10115")));
        let hk = AddressInput {
            name: "Wing",
            line1: "1 Queen's Rd",
            city: "Hong Kong",
            country: "HK",
            ..AddressInput::default()
        };
        assert!(Address::parse("", &hk).is_ok());
    }

    #[test]
    fn ssns_outside_the_issued_ranges_are_refused() {
        let ssn = TaxId::parse("tin", TinKind::Ssn, "123-45-6789").unwrap();
        assert_eq!(
            (ssn.masked(), ssn.full()),
            ("***-**-6789".to_owned(), "123-45-6789".to_owned())
        );
        assert_eq!(format!("{ssn:?}"), "TaxId(SSN, ***-**-6789)");
        assert!(TaxId::parse("tin", TinKind::Ssn, "123 45 6789").is_ok());
        for (bad, why) in [
            ("000-12-3456", "000"),
            ("666-12-3456", "666"),
            ("900-12-3456", "9"),
            ("123-00-4567", "00"),
            ("123-45-0000", "0000"),
            ("123-45-678", "9 digits"),
            ("123-45-67890", "9 digits"),
            ("12a-45-6789", "9 digits"),
        ] {
            let e = TaxId::parse("tax_id", TinKind::Ssn, bad).unwrap_err();
            assert_eq!(e.violations()[0].field, "tax_id");
            assert!(
                e.violations()[0].description.contains(why),
                "{bad}: {}",
                e.violations()[0].description
            );
        }
    }

    #[test]
    fn itins_and_eins() {
        assert_eq!(
            TaxId::parse("t", TinKind::Itin, "912-70-1234").unwrap().masked(),
            "***-**-1234"
        );
        for bad in [
            "812-70-1234",
            "912-66-1234",
            "912-89-1234",
            "912-93-1234",
            "912-49-1234",
        ] {
            assert!(TaxId::parse("t", TinKind::Itin, bad).is_err(), "{bad}");
        }
        let ein = TaxId::parse("t", TinKind::Ein, "12-3456789").unwrap();
        assert_eq!(
            (ein.masked(), ein.full()),
            ("**-***6789".to_owned(), "12-3456789".to_owned())
        );
        for bad in [
            "00-1234567",
            "07-1234567",
            "17-1234567",
            "49-1234567",
            "69-1234567",
            "70-1234567",
            "89-1234567",
            "96-1234567",
        ] {
            assert!(TaxId::parse("t", TinKind::Ein, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_payee_dump_shows_no_pii() {
        let input = AddressInput {
            name: "Ana Lopez",
            line1: "1 Main St",
            city: "Austin",
            region: "TX",
            postal_code: "78701",
            country: "US",
            ..AddressInput::default()
        };
        let p = Payee {
            id: "p1".into(),
            legal_name: "Ana Lopez".into(),
            us_person: true,
            address: Some(Address::parse("", &input).unwrap()),
            cash_destination: Some(CashDestination::Paypal(
                PaypalEmail::parse("e", "ana.l@example.com").unwrap(),
            )),
            tax_id: Some(TaxId::parse("t", TinKind::Ssn, "123-45-6789").unwrap()),
            tax_form: TaxForm::Missing,
        };
        let shown = format!("{p:?}");
        for pii in ["Ana", "Lopez", "Main", "Austin", "78701", "ana.l", "123-45", "12345"] {
            assert!(!shown.contains(pii), "{pii} in {shown}");
        }
        assert!(shown.contains("p1") && shown.contains("***-**-6789"), "{shown}");
    }

    #[test]
    fn tax_forms_with_their_signature_date() {
        let today = Date::new(2026, 3, 1).unwrap();
        let w9 = TaxForm::parse("tax_form", "W-9", "2026-01-15", today).unwrap();
        assert_eq!(
            w9,
            TaxForm::W9 {
                signed_on: Date::new(2026, 1, 15).unwrap()
            }
        );
        assert_eq!(
            TaxForm::parse("tax_form", "w-8ben-e", "2025-12-01", today)
                .unwrap()
                .name(),
            "W-8BEN-E"
        );
        assert_eq!(
            TaxForm::parse("tax_form", "W8BEN", "2025-12-01", today).unwrap().name(),
            "W-8BEN"
        );
        assert_eq!(TaxForm::parse("tax_form", "", "", today).unwrap(), TaxForm::Missing);
        assert_eq!(
            fields(TaxForm::parse("tax_form", "1099", "2026-01-01", today).unwrap_err()),
            ["tax_form.form"]
        );
        assert_eq!(
            fields(TaxForm::parse("tax_form", "W-9", "2026-02-30", today).unwrap_err()),
            ["tax_form.signed_on"]
        );
        assert_eq!(
            fields(TaxForm::parse("tax_form", "W-9", "2026-03-02", today).unwrap_err()),
            ["tax_form.signed_on"]
        );
    }
}
