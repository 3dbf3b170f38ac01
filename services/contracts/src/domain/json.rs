//! How contract documents write money and time, in one place: an amount is
//! `{"currency":"USD","amount_minor":12345}` (integers only, so the canonical form needs no
//! number formatting rules), a time is RFC 3339 in UTC with exactly six fractional digits
//! (`2026-04-01T17:00:00.000000Z`): the domain keeps microseconds, so one fixed width writes
//! every value without loss and every value has exactly one spelling.

use chorus_catalog::money::{Currency, Money};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The first instant a document writes: 1970-01-01T00:00:00Z.
pub const MIN_MICROS: i64 = 0;
/// The last instant a four-digit year writes: 9999-12-31T23:59:59.999999Z.
pub const MAX_MICROS: i64 = 253_402_300_799_999_999;

/// `micros` since the epoch as `YYYY-MM-DDTHH:MM:SS.ffffffZ`; times outside
/// [`MIN_MICROS`]..=[`MAX_MICROS`] are clamped to it (the domain never holds one).
pub fn rfc3339(micros: i64) -> String {
    let micros = micros.clamp(MIN_MICROS, MAX_MICROS);
    let whole = prost_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: 0,
    };
    // prost writes whole seconds as "...:SSZ"; the fraction goes before the Z.
    let seconds = whole.to_string();
    let seconds = seconds.strip_suffix('Z').unwrap_or(&seconds);
    format!("{seconds}.{:06}Z", micros.rem_euclid(1_000_000))
}

/// The microseconds of a time written by [`rfc3339`], and only of that spelling.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let t: prost_types::Timestamp = s.parse().ok()?;
    let micros = chorus_kit::clock::micros(&t);
    ((MIN_MICROS..=MAX_MICROS).contains(&micros) && rfc3339(micros) == s).then_some(micros)
}

/// serde for an `i64` of microseconds written as [`rfc3339`].
pub mod time {
    use super::*;

    pub fn serialize<S: Serializer>(micros: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&rfc3339(*micros))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let s = String::deserialize(d)?;
        parse_rfc3339(&s).ok_or_else(|| {
            D::Error::custom(format!(
                "{s:?} is not an RFC 3339 UTC time with six fractional digits (2026-04-01T17:00:00.000000Z)"
            ))
        })
    }
}

#[derive(Serialize)]
struct Amount<'a> {
    currency: &'a str,
    amount_minor: i64,
}

/// serde for a [`Money`] written as `{"currency":"USD","amount_minor":12345}`.
pub mod money {
    use super::*;

    pub fn serialize<S: Serializer>(m: &Money, s: S) -> Result<S::Ok, S::Error> {
        Amount {
            currency: m.currency.code(),
            amount_minor: m.minor,
        }
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Money, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Owned {
            currency: String,
            amount_minor: i64,
        }
        let a = Owned::deserialize(d)?;
        let currency = Currency::parse(&a.currency)
            .ok_or_else(|| D::Error::custom(format!("{:?} is not an ISO 4217 currency code", a.currency)))?;
        Ok(Money::new(currency, a.amount_minor))
    }
}

/// serde for an `Option<Money>`: `null` or an amount as [`money`] writes it.
pub mod optional_money {
    use super::*;

    pub fn serialize<S: Serializer>(m: &Option<Money>, s: S) -> Result<S::Ok, S::Error> {
        match m {
            Some(m) => super::money::serialize(m, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Money>, D::Error> {
        #[derive(Deserialize)]
        struct Wrapped(#[serde(with = "super::money")] Money);
        Ok(Option::<Wrapped>::deserialize(d)?.map(|Wrapped(m)| m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_have_one_spelling_with_six_fractional_digits() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(rfc3339(1_775_062_800_000_000), "2026-04-01T17:00:00.000000Z");
        assert_eq!(rfc3339(1_775_062_800_123_456), "2026-04-01T17:00:00.123456Z");
        assert_eq!(rfc3339(MAX_MICROS), "9999-12-31T23:59:59.999999Z");
        for m in [0, 1, 999_999, 1_775_062_800_123_456, MAX_MICROS] {
            assert_eq!(parse_rfc3339(&rfc3339(m)), Some(m), "{m}");
        }
        for other in [
            "2026-04-01T17:00:00Z",
            "2026-04-01T17:00:00.123Z",
            "2026-04-01T17:00:00.000000+00:00",
            "2026-04-01t17:00:00.000000z",
            "1969-12-31T23:59:59.999999Z",
            "tomorrow",
        ] {
            assert_eq!(parse_rfc3339(other), None, "{other}");
        }
    }

    #[test]
    fn money_is_a_currency_and_integer_minor_units() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct T {
            #[serde(with = "money")]
            a: Money,
            #[serde(with = "optional_money")]
            b: Option<Money>,
        }
        let usd = Currency::parse("USD").unwrap();
        let t = T {
            a: Money::new(usd, 12_345),
            b: None,
        };
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, r#"{"a":{"currency":"USD","amount_minor":12345},"b":null}"#);
        assert_eq!(serde_json::from_str::<T>(&json).unwrap(), t);
        let bad = r#"{"a":{"currency":"usd","amount_minor":1},"b":null}"#;
        assert!(serde_json::from_str::<T>(bad).is_err());
        let float = r#"{"a":{"currency":"USD","amount_minor":1.5},"b":null}"#;
        assert!(serde_json::from_str::<T>(float).is_err());
    }
}
