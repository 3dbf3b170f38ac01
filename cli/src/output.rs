//! What commands print: comfy tables and human formats (money, counts, rates, times) by
//! default, or JSON built by hand from the prost messages with `--json` (enums by proto name,
//! money as {currency_code, amount_minor}, times as RFC 3339).

use chorus_proto::registry::{
    AccountMetrics, AgeBucket, EngagementDenominator, Influencer, InfluencerStatus, MetricsSnapshot, SocialAccount,
    Verdict, VettingFlag,
};
use chorus_proto::types::{CompensationKind, DeliverableKind, Money, Platform, Tier};
use comfy_table::{Table, presets};
use prost_types::Timestamp;
use serde_json::{Value, json};

use crate::error::{Result, Violation};
use crate::vocab::{self, ProtoEnum};

/// Writes one line to stdout. A closed pipe ends the process with success (the reader has
/// what it wanted); any other failure to write is an error.
pub(crate) fn line(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: writing output: {e}");
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------- human formats

/// "$1,250.00 USD" for dollars, "12.50 EUR" otherwise, honouring the currency's minor digits.
pub(crate) fn money(m: &Money) -> String {
    let code = m.currency_code.as_str();
    let digits = minor_digits(code);
    let abs = m.amount_minor.unsigned_abs();
    let scale = 10u64.pow(digits);
    let whole = group_thousands(abs / scale);
    let amount = if digits == 0 {
        whole
    } else {
        format!("{whole}.{:0width$}", abs % scale, width = digits as usize)
    };
    let sign = if m.amount_minor < 0 { "-" } else { "" };
    match code {
        "USD" => format!("{sign}${amount} USD"),
        "" => format!("{sign}{amount}"),
        _ => format!("{sign}{amount} {code}"),
    }
}

/// Digits after the decimal point for an ISO 4217 code (2 when unknown).
pub(crate) fn minor_digits(code: &str) -> u32 {
    chorus_catalog::currency::minor_digits(code).unwrap_or(2)
}

/// 12345 -> "12,345".
pub(crate) fn count(n: i64) -> String {
    let grouped = group_thousands(n.unsigned_abs());
    if n < 0 { format!("-{grouped}") } else { grouped }
}

fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A fraction as a percentage: 0.061 -> "6.1%", 0.0045 -> "0.45%".
pub(crate) fn percent(rate: f64) -> String {
    if rate != 0.0 && rate.abs() < 0.01 {
        format!("{:.2}%", rate * 100.0)
    } else {
        format!("{:.1}%", rate * 100.0)
    }
}

/// RFC 3339 in UTC, or "-" when absent.
pub(crate) fn time(t: Option<&Timestamp>) -> String {
    t.map_or_else(|| "-".to_owned(), Timestamp::to_string)
}

/// Engagement rates with their denominators: "6.1% of followers, 9.8% of reach".
pub(crate) fn engagement(metrics: Option<&AccountMetrics>) -> String {
    let rates: Vec<String> = metrics
        .map(|m| &m.engagement_rates[..])
        .unwrap_or_default()
        .iter()
        .map(|r| {
            format!(
                "{} of {}",
                percent(r.rate),
                vocab::label::<EngagementDenominator>(r.denominator)
            )
        })
        .collect();
    if rates.is_empty() {
        "-".to_owned()
    } else {
        rates.join(", ")
    }
}

/// The account a list row shows: the one with the most followers.
pub(crate) fn top_account(influencer: &Influencer) -> Option<&SocialAccount> {
    influencer.accounts.iter().max_by_key(|a| followers(a).unwrap_or(-1))
}

pub(crate) fn followers(account: &SocialAccount) -> Option<i64> {
    account.metrics.as_ref()?.latest.as_ref().map(|s| s.followers)
}

/// An empty table with a header, in the one style every command uses.
pub(crate) fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(presets::UTF8_FULL_CONDENSED)
        .set_header(header.to_vec());
    table
}

/// Prints a JSON value for scripts.
pub(crate) fn print_json(value: &Value) -> Result<()> {
    outln!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Prints one thing: as JSON for scripts, else as lines for people.
pub(crate) fn show(json: bool, as_json: impl FnOnce() -> Value, as_lines: impl FnOnce() -> Vec<String>) -> Result<()> {
    if json {
        return print_json(&as_json());
    }
    for line in as_lines() {
        outln!("{line}");
    }
    Ok(())
}

// ---------------------------------------------------------------- JSON

/// A proto enum value by its proto name; the raw number when this build does not know it.
pub(crate) fn enum_json<E: ProtoEnum>(value: i32) -> Value {
    vocab::proto_name::<E>(value).map_or_else(|| json!(value), |name| json!(name))
}

fn enums_json<E: ProtoEnum>(values: &[i32]) -> Value {
    Value::Array(values.iter().map(|v| enum_json::<E>(*v)).collect())
}

pub(crate) fn money_json(m: Option<&Money>) -> Value {
    m.map_or(
        Value::Null,
        |m| json!({"currency_code": m.currency_code, "amount_minor": m.amount_minor}),
    )
}

pub(crate) fn time_json(t: Option<&Timestamp>) -> Value {
    t.map_or(Value::Null, |t| json!(t.to_string()))
}

pub(crate) fn violations_json(violations: &[Violation]) -> Value {
    violations
        .iter()
        .map(|v| json!({"field": v.field, "description": v.description}))
        .collect()
}

pub(crate) fn influencer_json(i: &Influencer) -> Value {
    json!({
        "name": i.name,
        "display_name": i.display_name,
        "status": enum_json::<InfluencerStatus>(i.status),
        "accounts": i.accounts.iter().map(account_json).collect::<Vec<_>>(),
        "niches": i.niches,
        "location": i.location.as_ref().map(|l| json!({
            "country_code": l.country_code, "region": l.region, "city": l.city,
        })),
        "languages": i.languages,
        "audience": i.audience.as_ref().map(|a| json!({
            "age_buckets": a.age_buckets.iter().map(|b| json!({
                "bucket": enum_json::<AgeBucket>(b.bucket), "share": b.share,
            })).collect::<Vec<_>>(),
            "gender": a.gender.as_ref().map(|g| json!({"female": g.female, "male": g.male, "other": g.other})),
            "top_countries": a.top_countries.iter().map(|c| json!({
                "country_code": c.country_code, "share": c.share,
            })).collect::<Vec<_>>(),
        })),
        "rate_card": i.rate_card.iter().map(|r| json!({
            "kind": enum_json::<DeliverableKind>(r.kind), "price": money_json(r.price.as_ref()),
        })).collect::<Vec<_>>(),
        "compensation_accepted": enums_json::<CompensationKind>(&i.compensation_accepted),
        "contact": i.contact.as_ref().map(|c| json!({"email": c.email, "phone": c.phone})),
        "consent": i.consent.as_ref().map(|c| json!({
            "contact_allowed": c.contact_allowed,
            "data_processing_allowed": c.data_processing_allowed,
            "consent_time": time_json(c.consent_time.as_ref()),
        })),
        "create_time": time_json(i.create_time.as_ref()),
        "update_time": time_json(i.update_time.as_ref()),
    })
}

fn account_json(a: &SocialAccount) -> Value {
    json!({
        "platform": enum_json::<Platform>(a.platform),
        "handle": a.handle,
        "url": a.url,
        "metrics": a.metrics.as_ref().map(|m| json!({
            "latest": m.latest.as_ref().map(snapshot_json),
            "engagement_rates": m.engagement_rates.iter().map(|r| json!({
                "denominator": enum_json::<EngagementDenominator>(r.denominator), "rate": r.rate,
            })).collect::<Vec<_>>(),
            "tier": enum_json::<Tier>(m.tier),
            "sponsored_share": m.sponsored_share,
        })),
        "vetting": a.vetting.as_ref().map(|v| json!({
            "quality_score": v.quality_score,
            "verdict": enum_json::<Verdict>(v.verdict),
            "flags": enums_json::<VettingFlag>(&v.flags),
            "report": v.report,
            "compute_time": time_json(v.compute_time.as_ref()),
        })),
    })
}

pub(crate) fn snapshot_json(s: &MetricsSnapshot) -> Value {
    json!({
        "platform": enum_json::<Platform>(s.platform),
        "handle": s.handle,
        "observe_time": time_json(s.observe_time.as_ref()),
        "followers": s.followers,
        "following": s.following,
        "posts": s.posts,
        "window_days": s.window_days,
        "window_posts": s.window_posts,
        "window_likes": s.window_likes,
        "window_comments": s.window_comments,
        "window_sponsored_posts": s.window_sponsored_posts,
        "window_reach": s.window_reach,
        "window_impressions": s.window_impressions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chorus_proto::registry::{EngagementRate, RateCardEntry};

    fn usd(amount_minor: i64) -> Money {
        Money {
            currency_code: "USD".to_owned(),
            amount_minor,
        }
    }

    #[test]
    fn money_formats_by_currency() {
        assert_eq!(money(&usd(10_000)), "$100.00 USD");
        assert_eq!(money(&usd(5)), "$0.05 USD");
        assert_eq!(money(&usd(-150)), "-$1.50 USD");
        assert_eq!(money(&usd(123_456_789)), "$1,234,567.89 USD");
        let eur = Money {
            currency_code: "EUR".to_owned(),
            amount_minor: 1250,
        };
        assert_eq!(money(&eur), "12.50 EUR");
        let jpy = Money {
            currency_code: "JPY".to_owned(),
            amount_minor: 5000,
        };
        assert_eq!(money(&jpy), "5,000 JPY");
        let kwd = Money {
            currency_code: "KWD".to_owned(),
            amount_minor: 1500,
        };
        assert_eq!(money(&kwd), "1.500 KWD");
        assert_eq!(money(&usd(i64::MIN)), "-$92,233,720,368,547,758.08 USD");
    }

    #[test]
    fn counts_rates_and_times_read_well() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(-1_234_567), "-1,234,567");
        assert_eq!(percent(0.061), "6.1%");
        assert_eq!(percent(0.0045), "0.45%");
        assert_eq!(percent(0.0), "0.0%");
        let t = Timestamp {
            seconds: 1_735_787_045,
            nanos: 0,
        };
        assert_eq!(time(Some(&t)), "2025-01-02T03:04:05Z");
        assert_eq!(time(None), "-");
    }

    #[test]
    fn engagement_names_its_denominator() {
        let metrics = AccountMetrics {
            engagement_rates: vec![EngagementRate {
                denominator: EngagementDenominator::Followers as i32,
                rate: 0.061,
            }],
            ..Default::default()
        };
        assert_eq!(engagement(Some(&metrics)), "6.1% of followers");
        assert_eq!(engagement(None), "-");
    }

    #[test]
    fn influencer_json_uses_proto_names_and_money_objects() {
        let influencer = Influencer {
            name: "influencers/x".to_owned(),
            status: InfluencerStatus::Active as i32,
            accounts: vec![SocialAccount {
                platform: Platform::Instagram as i32,
                handle: "maya".to_owned(),
                ..Default::default()
            }],
            rate_card: vec![RateCardEntry {
                kind: DeliverableKind::FeedPost as i32,
                price: Some(usd(10_000)),
            }],
            compensation_accepted: vec![CompensationKind::GiftCard as i32, 42],
            ..Default::default()
        };
        let v = influencer_json(&influencer);
        assert_eq!(v["status"], "INFLUENCER_STATUS_ACTIVE");
        assert_eq!(v["accounts"][0]["platform"], "PLATFORM_INSTAGRAM");
        assert_eq!(v["rate_card"][0]["kind"], "DELIVERABLE_KIND_FEED_POST");
        assert_eq!(
            v["rate_card"][0]["price"],
            json!({"currency_code": "USD", "amount_minor": 10000})
        );
        assert_eq!(v["compensation_accepted"], json!(["COMPENSATION_KIND_GIFT_CARD", 42]));
        assert_eq!(v["create_time"], Value::Null);
    }
}
