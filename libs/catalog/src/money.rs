//! Money: an integer count of a currency's minor units and the currency, never a float and
//! never a bare string. Every service reads `chorus.type.v1.Money` through [`Money::from_proto`]
//! (which names the offending subfield) and does arithmetic on [`Money`], which refuses to mix
//! currencies or overflow.

use std::fmt;

use crate::currency;

/// An ISO 4217 currency this catalogue knows (upper case, three letters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

impl Currency {
    /// The currency with code `code`, when the catalogue knows it (case matters: "USD").
    pub fn parse(code: &str) -> Option<Self> {
        let bytes: [u8; 3] = code.as_bytes().try_into().ok()?;
        currency::is_currency(code).then_some(Currency(bytes))
    }

    pub fn code(&self) -> &str {
        // Only ever built from a known code, which is ASCII.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }

    /// Minor units in one major unit: 100 for USD, 1 for JPY, 1,000 for KWD.
    pub fn minor_per_major(&self) -> i64 {
        currency::minor_per_major(self.code())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An amount of one currency, in minor units (cents for USD, yen for JPY).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    pub currency: Currency,
    pub minor: i64,
}

/// What is wrong with a `chorus.type.v1.Money`, by subfield.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoneyError {
    /// `currency_code` is empty or not an ISO 4217 code the catalogue knows.
    Currency(String),
    /// Amounts of two currencies were combined.
    Mixed(Currency, Currency),
    /// The result does not fit in 64 bits of minor units.
    Overflow,
}

impl MoneyError {
    /// The subfield of a `Money` message at fault (`currency_code` or `amount_minor`).
    pub fn field(&self) -> &'static str {
        match self {
            MoneyError::Currency(_) | MoneyError::Mixed(..) => "currency_code",
            MoneyError::Overflow => "amount_minor",
        }
    }
}

impl fmt::Display for MoneyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MoneyError::Currency(c) if c.is_empty() => f.write_str("required: an ISO 4217 code such as USD"),
            MoneyError::Currency(c) => write!(f, "{c:?} is not an ISO 4217 currency code (upper case, e.g. USD)"),
            MoneyError::Mixed(a, b) => write!(f, "cannot combine {a} with {b}"),
            MoneyError::Overflow => f.write_str("the amount does not fit in 64-bit minor units"),
        }
    }
}

impl std::error::Error for MoneyError {}

impl Money {
    pub fn new(currency: Currency, minor: i64) -> Self {
        Money { currency, minor }
    }

    pub fn zero(currency: Currency) -> Self {
        Money { currency, minor: 0 }
    }

    /// The amount a message holds, once its currency is known.
    pub fn from_proto(m: &chorus_proto::types::Money) -> Result<Self, MoneyError> {
        let currency =
            Currency::parse(&m.currency_code).ok_or_else(|| MoneyError::Currency(m.currency_code.clone()))?;
        Ok(Money {
            currency,
            minor: m.amount_minor,
        })
    }

    pub fn to_proto(self) -> chorus_proto::types::Money {
        chorus_proto::types::Money {
            currency_code: self.currency.code().to_owned(),
            amount_minor: self.minor,
        }
    }

    /// `self + other`, in one currency.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same(other)?;
        let minor = self.minor.checked_add(other.minor).ok_or(MoneyError::Overflow)?;
        Ok(Money { minor, ..self })
    }

    /// `self - other`, in one currency.
    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same(other)?;
        let minor = self.minor.checked_sub(other.minor).ok_or(MoneyError::Overflow)?;
        Ok(Money { minor, ..self })
    }

    /// The sum of `amounts` in `currency` (zero when there are none).
    pub fn sum(currency: Currency, amounts: impl IntoIterator<Item = Money>) -> Result<Money, MoneyError> {
        amounts.into_iter().try_fold(Money::zero(currency), Money::checked_add)
    }

    fn same(self, other: Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::Mixed(self.currency, other.currency))
        }
    }
}

impl fmt::Display for Money {
    /// "USD 1250.00", "JPY 1250", "KWD 12.345".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}",
            self.currency,
            currency::decimal(self.minor, self.currency.code())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(minor: i64) -> Money {
        Money::new(Currency::parse("USD").unwrap(), minor)
    }

    #[test]
    fn only_known_upper_case_codes_are_currencies() {
        assert_eq!(Currency::parse("USD").unwrap().code(), "USD");
        for bad in ["", "usd", "US", "USDX", "XYZ", "ÜSD"] {
            assert!(Currency::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn a_message_is_read_once_and_written_back_unchanged() {
        let m = chorus_proto::types::Money {
            currency_code: "JPY".into(),
            amount_minor: 1250,
        };
        let money = Money::from_proto(&m).unwrap();
        assert_eq!(money.to_proto(), m);
        assert_eq!(money.to_string(), "JPY 1250");
        assert_eq!(
            Money::new(Currency::parse("KWD").unwrap(), 12_345).to_string(),
            "KWD 12.345"
        );
        assert_eq!(usd(125_000).to_string(), "USD 1250.00");
        let bad = Money::from_proto(&chorus_proto::types::Money {
            currency_code: "usd".into(),
            amount_minor: 1,
        })
        .unwrap_err();
        assert_eq!(bad.field(), "currency_code");
        assert!(bad.to_string().contains("\"usd\""), "{bad}");
    }

    #[test]
    fn arithmetic_keeps_to_one_currency_and_never_wraps() {
        assert_eq!(usd(700).checked_sub(usd(250)), Ok(usd(450)));
        assert_eq!(Money::sum(usd(0).currency, [usd(1), usd(2), usd(3)]), Ok(usd(6)));
        let eur = Money::new(Currency::parse("EUR").unwrap(), 1);
        assert!(matches!(usd(1).checked_add(eur), Err(MoneyError::Mixed(..))));
        assert_eq!(usd(i64::MAX).checked_add(usd(1)), Err(MoneyError::Overflow));
        assert_eq!(usd(i64::MIN).checked_sub(usd(1)), Err(MoneyError::Overflow));
    }
}
