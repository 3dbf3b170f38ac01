//! ISO 4217 currencies, for money kept as minor units and a code: which codes are money, and
//! how many decimal places (minor units) each has. One table for every service and the CLI.

/// Currencies whose minor unit is not a hundredth (ISO 4217 list one, 2024): 0, 3 or 4 decimals.
const NOT_TWO: &[(&str, u32)] = &[
    ("BIF", 0),
    ("CLP", 0),
    ("DJF", 0),
    ("GNF", 0),
    ("ISK", 0),
    ("JPY", 0),
    ("KMF", 0),
    ("KRW", 0),
    ("PYG", 0),
    ("RWF", 0),
    ("UGX", 0),
    ("UYI", 0),
    ("VND", 0),
    ("VUV", 0),
    ("XAF", 0),
    ("XOF", 0),
    ("XPF", 0),
    ("BHD", 3),
    ("IQD", 3),
    ("JOD", 3),
    ("KWD", 3),
    ("LYD", 3),
    ("OMR", 3),
    ("TND", 3),
    ("CLF", 4),
    ("UYW", 4),
];

/// Every other active ISO 4217 currency, all with two decimals, and a few recently withdrawn
/// (HRK, SKK, ZWD) that old records may still carry. Precious metals, units of account and
/// test codes (XAU, XDR, XTS, XXX...) are not money here.
const TWO: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN", "BMD", "BND",
    "BOB", "BOV", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHE", "CHF", "CHW", "CNY", "COP", "COU",
    "CRC", "CUC", "CUP", "CVE", "CZK", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL",
    "GHS", "GIP", "GMD", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IRR", "JMD", "KES", "KGS",
    "KHR", "KPW", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP",
    "MRU", "MUR", "MVR", "MWK", "MXN", "MXV", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "PAB", "PEN",
    "PGK", "PHP", "PKR", "PLN", "QAR", "RON", "RSD", "RUB", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE",
    "SLL", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TOP", "TRY", "TTD", "TWD", "TZS",
    "UAH", "USD", "USN", "UYU", "UZS", "VED", "VES", "WST", "XCD", "XCG", "YER", "ZAR", "ZMW", "ZWG", "ZWL", "ZWD",
    "HRK", "SKK",
];

/// Decimal places of `code` (an upper-case ISO 4217 code), or `None` when it is not a
/// currency this table knows.
pub fn minor_digits(code: &str) -> Option<u32> {
    if let Some((_, digits)) = NOT_TWO.iter().find(|(c, _)| *c == code) {
        return Some(*digits);
    }
    TWO.contains(&code).then_some(2)
}

/// Whether `code` is an ISO 4217 currency.
pub fn is_currency(code: &str) -> bool {
    minor_digits(code).is_some()
}

/// Minor units in one major unit of `code` (100 for USD, 1 for JPY, 1,000 for KWD); 100
/// for a code the table does not know.
pub fn minor_per_major(code: &str) -> i64 {
    10i64.pow(minor_digits(code).unwrap_or(2))
}

/// `amount_minor` in major units with the currency's decimals, without grouping or symbol:
/// "1250.00" USD, "1250" JPY, "12.345" KWD.
pub fn decimal(amount_minor: i64, code: &str) -> String {
    let digits = minor_digits(code).unwrap_or(2);
    let scale = 10u64.pow(digits);
    let abs = amount_minor.unsigned_abs();
    let sign = if amount_minor < 0 { "-" } else { "" };
    if digits == 0 {
        format!("{sign}{abs}")
    } else {
        format!("{sign}{}.{:0width$}", abs / scale, abs % scale, width = digits as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_follow_iso_4217() {
        assert_eq!(minor_digits("USD"), Some(2));
        assert_eq!(minor_digits("EUR"), Some(2));
        assert_eq!(minor_digits("JPY"), Some(0));
        assert_eq!(minor_digits("RWF"), Some(0));
        assert_eq!(minor_digits("KWD"), Some(3));
        assert_eq!(minor_digits("IQD"), Some(3));
        assert_eq!(minor_digits("CLF"), Some(4));
        assert_eq!(minor_per_major("JPY"), 1);
        assert_eq!(minor_per_major("KWD"), 1_000);
        assert_eq!(minor_per_major("GBP"), 100);
    }

    #[test]
    fn only_currencies_are_money() {
        for code in ["XYZ", "usd", "US", "USDX", "", "XAU", "XTS", "XXX"] {
            assert!(!is_currency(code), "{code}");
        }
        for code in ["USD", "BRL", "INR", "MXN", "CAD", "AUD", "GBP", "SEK"] {
            assert!(is_currency(code), "{code}");
        }
    }

    #[test]
    fn decimal_writes_the_currency_s_places() {
        assert_eq!(decimal(125_000, "USD"), "1250.00");
        assert_eq!(decimal(1_250, "JPY"), "1250");
        assert_eq!(decimal(12_345, "KWD"), "12.345");
        assert_eq!(decimal(-5, "EUR"), "-0.05");
    }

    #[test]
    fn the_tables_do_not_overlap_or_repeat() {
        let mut all: Vec<&str> = TWO.to_vec();
        all.extend(NOT_TWO.iter().map(|(c, _)| *c));
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n);
        assert!(
            all.iter()
                .all(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()))
        );
    }
}
