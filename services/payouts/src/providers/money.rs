//! Amounts between our minor units (ISO 4217 exponents) and each provider's format: Stripe's
//! integers with its own zero-decimal list, PayPal's decimal strings (exact, no floats) and
//! Tremendous's JSON doubles. One function each way per provider.

use super::ProviderError;

/// Digits after the decimal point in ISO 4217, the unit of every `amount_minor`.
pub fn exponent(currency: &str) -> u32 {
    match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "MGA" | "PYG" | "RWF" | "UGX" | "VND"
        | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        _ => 2,
    }
}

/// Stripe's amount and lower-case currency. Stripe counts zero-decimal currencies in whole
/// units, ISK in hundredths (its backwards-compatible two-decimal form) and three-decimal
/// currencies in thousandths whose last digit must be 0.
pub fn to_stripe(amount_minor: i64, currency: &str) -> Result<(i64, String), ProviderError> {
    check_currency(currency)?;
    let amount = match currency {
        "ISK" => rescale(amount_minor, 0, 2)?,
        "BHD" | "JOD" | "KWD" | "OMR" | "TND" if amount_minor % 10 != 0 => {
            return Err(ProviderError::rejected(format!(
                "stripe needs {currency} amounts ending in 0, got {amount_minor}"
            )));
        }
        _ => amount_minor,
    };
    Ok((amount, currency.to_ascii_lowercase()))
}

/// Our minor units from a Stripe amount and currency (either case).
pub fn from_stripe(amount: i64, currency: &str) -> Result<(i64, String), ProviderError> {
    let currency = currency.to_ascii_uppercase();
    let minor = if currency == "ISK" {
        rescale(amount, 2, 0)?
    } else {
        amount
    };
    Ok((minor, currency))
}

/// PayPal writes no decimals for HUF, JPY and TWD; otherwise the ISO exponent.
fn paypal_exponent(currency: &str) -> u32 {
    match currency {
        "HUF" | "JPY" | "TWD" => 0,
        _ => exponent(currency),
    }
}

/// PayPal's decimal string, e.g. 987 USD -> "9.87", built from integers.
pub fn to_paypal(amount_minor: i64, currency: &str) -> Result<String, ProviderError> {
    check_currency(currency)?;
    if amount_minor < 0 {
        return Err(ProviderError::rejected("a payout amount cannot be negative"));
    }
    let digits = paypal_exponent(currency);
    let value = rescale(amount_minor, exponent(currency), digits)?;
    if digits == 0 {
        return Ok(value.to_string());
    }
    let unit = 10_i64.pow(digits);
    Ok(format!(
        "{}.{:0width$}",
        value / unit,
        value % unit,
        width = digits as usize
    ))
}

/// Our minor units from a PayPal decimal string; refuses more digits than the currency has.
pub fn from_paypal(value: &str, currency: &str) -> Result<i64, ProviderError> {
    let bad = || ProviderError::transient(format!("paypal sent an unreadable amount {value:?} {currency}"));
    let digits = paypal_exponent(currency) as usize;
    let (negative, unsigned) = match value.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, value),
    };
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) || fraction.len() > digits {
        return Err(bad());
    }
    let fraction = format!("{fraction:0<digits$}");
    let whole: i64 = whole.parse().map_err(|_| bad())?;
    let fraction: i64 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().map_err(|_| bad())?
    };
    let scaled = whole
        .checked_mul(10_i64.pow(digits as u32))
        .and_then(|w| w.checked_add(fraction))
        .ok_or_else(bad)?;
    let minor = rescale(scaled, digits as u32, exponent(currency))?;
    Ok(if negative { -minor } else { minor })
}

/// Tremendous's `denomination`, a JSON double in major units. The nearest double to a
/// decimal of at most 3 places prints back as that decimal, and [`from_tremendous`] rounds.
pub fn to_tremendous(amount_minor: i64, currency: &str) -> Result<f64, ProviderError> {
    check_currency(currency)?;
    Ok(amount_minor as f64 / 10_f64.powi(exponent(currency) as i32))
}

pub fn from_tremendous(denomination: f64, currency: &str) -> i64 {
    (denomination * 10_f64.powi(exponent(currency) as i32)).round() as i64
}

/// An amount from `from` to `to` decimal digits; refuses to drop non-zero digits.
fn rescale(amount: i64, from: u32, to: u32) -> Result<i64, ProviderError> {
    let overflow = || ProviderError::rejected(format!("amount {amount} is out of range"));
    if to >= from {
        return amount.checked_mul(10_i64.pow(to - from)).ok_or_else(overflow);
    }
    let unit = 10_i64.pow(from - to);
    if amount % unit != 0 {
        return Err(ProviderError::rejected(format!(
            "amount {amount} has more precision than the provider takes"
        )));
    }
    Ok(amount / unit)
}

fn check_currency(currency: &str) -> Result<(), ProviderError> {
    if currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Ok(());
    }
    Err(ProviderError::Config(format!(
        "not an ISO 4217 currency code: {currency:?}"
    )))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn stripe_amounts_follow_its_currency_rules() {
        assert_eq!(to_stripe(1000, "USD").unwrap(), (1000, "usd".to_owned()));
        assert_eq!(to_stripe(500, "JPY").unwrap(), (500, "jpy".to_owned()));
        assert_eq!(to_stripe(500, "ISK").unwrap(), (50_000, "isk".to_owned()));
        assert_eq!(to_stripe(12_340, "KWD").unwrap(), (12_340, "kwd".to_owned()));
        assert!(matches!(to_stripe(12_345, "KWD"), Err(ProviderError::Rejected { .. })));
        assert!(matches!(to_stripe(1, "usd"), Err(ProviderError::Config(_))));
        assert_eq!(from_stripe(50_000, "isk").unwrap(), (500, "ISK".to_owned()));
        assert_eq!(from_stripe(400, "usd").unwrap(), (400, "USD".to_owned()));
    }

    #[test]
    fn paypal_strings_are_exact() {
        assert_eq!(to_paypal(987, "USD").unwrap(), "9.87");
        assert_eq!(to_paypal(5, "USD").unwrap(), "0.05");
        assert_eq!(to_paypal(1_000_000_000_001, "USD").unwrap(), "10000000000.01");
        assert_eq!(to_paypal(500, "JPY").unwrap(), "500");
        assert_eq!(to_paypal(1_500, "HUF").unwrap(), "15");
        assert!(matches!(to_paypal(1_550, "HUF"), Err(ProviderError::Rejected { .. })));
        assert_eq!(to_paypal(1_234, "KWD").unwrap(), "1.234");
        assert_eq!(from_paypal("9.87", "USD").unwrap(), 987);
        assert_eq!(from_paypal("9.8", "USD").unwrap(), 980);
        assert_eq!(from_paypal("10000000000.01", "USD").unwrap(), 1_000_000_000_001);
        assert_eq!(from_paypal("15", "HUF").unwrap(), 1_500);
        assert_eq!(from_paypal("-0.25", "USD").unwrap(), -25);
        for bad in ["9.876", "", ".5", "9,87", "1e3", "abc"] {
            assert!(from_paypal(bad, "USD").is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn paypal_round_trips_every_cent_up_to_a_million() {
        for minor in (0..100_000_000_i64).step_by(9_973).chain(0..1_000) {
            assert_eq!(from_paypal(&to_paypal(minor, "USD").unwrap(), "USD").unwrap(), minor);
        }
    }

    #[test]
    fn tremendous_doubles_round_trip_and_print_as_decimals() {
        assert_eq!(
            serde_json::json!(to_tremendous(2_500, "USD").unwrap()).to_string(),
            "25.0"
        );
        assert_eq!(
            serde_json::json!(to_tremendous(1_999, "USD").unwrap()).to_string(),
            "19.99"
        );
        for minor in (0..100_000_000_i64).step_by(7_919).chain(0..1_000) {
            assert_eq!(from_tremendous(to_tremendous(minor, "USD").unwrap(), "USD"), minor);
        }
        assert_eq!(from_tremendous(0.1 + 0.2, "USD"), 30);
    }
}
