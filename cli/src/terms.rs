//! The terms of an offer or a contract as flags, shared by `offers template`, `offers counter`
//! and `contracts amend`: each flag replaces its part of the terms it starts from (the current
//! template, offer or contract), so `--cash "300 USD"` alone changes only the cash. And the
//! terms as people read them, and as JSON.
//!
//! ```text
//! --deliverable instagram:feed-post:2:2027-01-30 --cash "250 USD" --gift-card "50 USD:Amazon"
//! --product "TREATS-1:Dog treats:45 USD:2" --usage organic-social,paid-social --usage-days 90
//! --exclusivity pets:30 --jurisdiction US --review --report reach,impressions:7 --grace-days 3
//! ```

use chorus_proto::contracts::{
    Compensation, DeliverableTerm, Exclusivity, GiftCard, Product, ReportingDuty, Terms, UsageChannel, UsageRights,
};
use chorus_proto::types::{DeliverableKind, Money, Platform};
use comfy_table::{Cell, CellAlignment, Table};
use prost_types::Timestamp;
use serde_json::{Value, json};

use crate::campaigns::parse_money;
use crate::error::Result;
use crate::output::{enum_json, money, money_json, time_json};
use crate::vocab;

/// Written in place of a part to remove it: `--cash none`, `--exclusivity none`.
const NONE: &str = "none";

/// A part of the terms as a flag gives it: a value, or `none` to remove the part.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Part<T>(Option<T>);

/// Parses `none` as the removal of a part, anything else with `parse`.
fn part<T>(input: &str, parse: impl FnOnce(&str) -> Result<T, String>) -> Result<Part<T>, String> {
    if input.trim().eq_ignore_ascii_case(NONE) {
        Ok(Part(None))
    } else {
        parse(input).map(|v| Part(Some(v)))
    }
}

#[derive(clap::Args, Debug, Default, Clone)]
#[command(next_help_heading = "Terms")]
pub(crate) struct TermsArgs {
    /// PLATFORM:KIND:COUNT:DUE, DUE a date (the end of that day, UTC) or an RFC 3339 time:
    /// "instagram:feed-post:2:2027-01-30". Repeatable; replaces every deliverable.
    #[arg(long = "deliverable", value_name = "SPEC", value_parser = parse_deliverable)]
    deliverables: Vec<DeliverableTerm>,
    /// Cash: "250 USD", or "none".
    #[arg(long, value_name = "AMOUNT", value_parser = |s: &str| part(s, |m| parse_money(m).map_err(|e| e.to_string())))]
    cash: Option<Part<Money>>,
    /// A gift card, "AMOUNT:BRAND": "50 USD:Amazon". Repeatable; replaces every gift card.
    #[arg(long = "gift-card", value_name = "SPEC", value_parser = parse_gift_card)]
    gift_cards: Vec<GiftCard>,
    /// A product, "SKU:TITLE:VALUE[:QUANTITY]": "TREATS-1:Dog treats:45 USD:2". Repeatable;
    /// replaces every product.
    #[arg(long = "product", value_name = "SPEC", value_parser = parse_product)]
    products: Vec<Product>,
    /// Where the brand may use the content: organic-social, paid-social, website, email, print,
    /// out-of-home (comma-separated); "none" for nowhere beyond the post.
    #[arg(long, value_delimiter = ',', value_name = "CHANNELS", value_parser = |s: &str| part(s, vocab::parse::<UsageChannel>))]
    usage: Vec<Part<UsageChannel>>,
    /// For how many days the brand may use the content.
    #[arg(long, value_name = "DAYS")]
    usage_days: Option<i32>,
    /// The brand may boost the post with paid media (`--paid-amplification=false` to take it back).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    paid_amplification: Option<bool>,
    /// No competitor in CATEGORY (a niche) for DAYS from activation: "pets:30", or "none".
    #[arg(long, value_name = "CATEGORY:DAYS", value_parser = |s: &str| part(s, parse_exclusivity))]
    exclusivity: Option<Part<Exclusivity>>,
    /// Whose ad-disclosure rules apply: an ISO country code ("US").
    #[arg(long, value_name = "COUNTRY")]
    jurisdiction: Option<String>,
    /// The posts' language ("en"); default the jurisdiction's first.
    #[arg(long, value_name = "LANG")]
    language: Option<String>,
    /// The brand reviews each post before it is approved (`--review=false` to stop).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    review: Option<bool>,
    /// Metrics to report and when, "METRICS:DAYS" after each post: "reach,impressions:7"
    /// (reach, impressions, engagements, saves, shares, story-views, link-clicks,
    /// video-views), or "none".
    #[arg(long, value_name = "METRICS:DAYS", value_parser = |s: &str| part(s, parse_report))]
    report: Option<Part<ReportingDuty>>,
    /// Days after a due date before a missing post breaches the contract (0-60).
    #[arg(long, value_name = "DAYS")]
    grace_days: Option<i32>,
    /// Free text the parties agree on.
    #[arg(long)]
    notes: Option<String>,
}

impl TermsArgs {
    /// Whether any part of the terms was given.
    pub(crate) fn is_empty(&self) -> bool {
        self.deliverables.is_empty()
            && self.cash.is_none()
            && self.gift_cards.is_empty()
            && self.products.is_empty()
            && self.usage.is_empty()
            && self.usage_days.is_none()
            && self.paid_amplification.is_none()
            && self.exclusivity.is_none()
            && self.jurisdiction.is_none()
            && self.language.is_none()
            && self.review.is_none()
            && self.report.is_none()
            && self.grace_days.is_none()
            && self.notes.is_none()
    }

    /// `base` with each part the flags give replaced.
    pub(crate) fn apply(self, base: Terms) -> Terms {
        let mut t = base;
        if !self.deliverables.is_empty() {
            t.deliverables = self.deliverables;
        }
        let mut comp = t.compensation.take().unwrap_or_default();
        if let Some(Part(cash)) = self.cash {
            comp.cash = cash;
        }
        if !self.gift_cards.is_empty() {
            comp.gift_cards = self.gift_cards;
        }
        if !self.products.is_empty() {
            comp.products = self.products;
        }
        t.compensation = Some(comp);
        if !self.usage.is_empty() || self.usage_days.is_some() || self.paid_amplification.is_some() {
            let mut usage = t.usage_rights.take().unwrap_or_default();
            if !self.usage.is_empty() {
                usage.channels = self.usage.into_iter().filter_map(|p| p.0).map(i32::from).collect();
            }
            if let Some(days) = self.usage_days {
                usage.days = days;
            }
            if let Some(paid) = self.paid_amplification {
                usage.paid_amplification = paid;
            }
            t.usage_rights = Some(usage);
        }
        if let Some(Part(x)) = self.exclusivity {
            t.exclusivity = x;
        }
        if let Some(j) = self.jurisdiction {
            t.disclosure_jurisdiction = j.trim().to_ascii_uppercase();
        }
        if let Some(l) = self.language {
            t.disclosure_language = l.trim().to_ascii_lowercase();
        }
        if let Some(review) = self.review {
            t.content_review = review;
        }
        if let Some(Part(r)) = self.report {
            t.reporting = r;
        }
        if let Some(days) = self.grace_days {
            t.grace_days = days;
        }
        if let Some(notes) = self.notes {
            t.notes = notes;
        }
        t
    }
}

// ---------------------------------------------------------------- parsers

/// "instagram:feed-post:2:2027-01-30" (or an RFC 3339 time last, which has colons of its own).
pub(crate) fn parse_deliverable(input: &str) -> Result<DeliverableTerm, String> {
    let bad = || {
        format!(
            "deliverable \"{input}\": expected PLATFORM:KIND:COUNT:DUE, for example instagram:feed-post:2:2027-01-30"
        )
    };
    let mut parts = input.trim().splitn(4, ':');
    let (Some(platform), Some(kind), Some(count), Some(due)) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let count = count
        .trim()
        .parse::<i32>()
        .map_err(|_| format!("deliverable \"{input}\": the count \"{count}\" must be a whole number"))?;
    Ok(DeliverableTerm {
        kind: vocab::parse::<DeliverableKind>(kind)? as i32,
        platform: vocab::parse::<Platform>(platform)? as i32,
        count,
        due_time: Some(parse_time(due).map_err(|e| format!("deliverable \"{input}\": {e}"))?),
        brief: String::new(),
    })
}

/// A date ("2027-01-30": the end of that day, UTC) or an RFC 3339 time.
pub(crate) fn parse_time(input: &str) -> Result<Timestamp, String> {
    let s = input.trim();
    let bad = || format!("\"{s}\" is neither a date (2027-01-30) nor an RFC 3339 time (2027-01-30T17:00:00Z)");
    if s.len() == 10 && !s.contains('T') {
        let mut ymd = s.split('-');
        let (Some(y), Some(m), Some(d), None) = (ymd.next(), ymd.next(), ymd.next(), ymd.next()) else {
            return Err(bad());
        };
        let (y, m, d) = (
            y.parse().map_err(|_| bad())?,
            m.parse().map_err(|_| bad())?,
            d.parse().map_err(|_| bad())?,
        );
        return Timestamp::date_time(y, m, d, 23, 59, 59).map_err(|_| bad());
    }
    s.parse::<Timestamp>().map_err(|_| bad())
}

/// "50 USD:Amazon".
pub(crate) fn parse_gift_card(input: &str) -> Result<GiftCard, String> {
    let (value, brand) = input
        .split_once(':')
        .ok_or_else(|| format!("gift card \"{input}\": expected AMOUNT:BRAND, for example \"50 USD:Amazon\""))?;
    Ok(GiftCard {
        value: Some(money_of(value, "gift card", input)?),
        brand: brand.trim().to_owned(),
    })
}

/// "SKU:TITLE:VALUE[:QUANTITY]"; a title may hold colons of its own.
pub(crate) fn parse_product(input: &str) -> Result<Product, String> {
    let bad = || {
        format!(
            "product \"{input}\": expected SKU:TITLE:VALUE[:QUANTITY], for example \"TREATS-1:Dog treats:45 USD:2\""
        )
    };
    let mut parts: Vec<&str> = input.split(':').collect();
    let quantity = match parts.last().map(|q| q.trim().parse::<i32>()) {
        Some(Ok(q)) if parts.len() >= 4 => {
            parts.pop();
            q
        }
        _ => 0,
    };
    if parts.len() < 3 {
        return Err(bad());
    }
    let value = parts.pop().ok_or_else(bad)?;
    let sku = parts.remove(0).trim().to_owned();
    Ok(Product {
        sku,
        title: parts.join(":").trim().to_owned(),
        declared_value: Some(money_of(value, "product", input)?),
        quantity,
    })
}

fn money_of(amount: &str, what: &str, input: &str) -> Result<Money, String> {
    parse_money(amount).map_err(|e| format!("{what} \"{input}\": {e}"))
}

/// "WHAT:DAYS" as (WHAT, DAYS); `what` and `example` name the flag's value in errors.
fn with_days<'a>(input: &'a str, what: &str, example: &str) -> Result<(&'a str, i32), String> {
    let (head, days) = input
        .rsplit_once(':')
        .ok_or_else(|| format!("{what} \"{input}\": expected {example}"))?;
    let days = days
        .trim()
        .parse()
        .map_err(|_| format!("{what} \"{input}\": the days \"{days}\" must be a whole number"))?;
    Ok((head, days))
}

/// "pets:30".
pub(crate) fn parse_exclusivity(input: &str) -> Result<Exclusivity, String> {
    let (category, days) = with_days(input, "exclusivity", "CATEGORY:DAYS, for example \"pets:30\"")?;
    Ok(Exclusivity {
        category: category.trim().to_owned(),
        days,
    })
}

/// "reach,impressions:7".
pub(crate) fn parse_report(input: &str) -> Result<ReportingDuty, String> {
    let (metrics, due_days_after_post) =
        with_days(input, "report", "METRICS:DAYS, for example \"reach,impressions:7\"")?;
    Ok(ReportingDuty {
        metrics: metrics
            .split(',')
            .map(|m| m.trim().to_ascii_lowercase().replace(['-', ' '], "_"))
            .filter(|m| !m.is_empty())
            .collect(),
        due_days_after_post,
    })
}

// ---------------------------------------------------------------- reading

/// The terms as lines of "part: value", each after `indent`, for `get` commands.
pub(crate) fn lines(t: Option<&Terms>, indent: &str) -> Vec<String> {
    let t = t.cloned().unwrap_or_default();
    let mut out = Vec::new();
    for d in &t.deliverables {
        out.push(format!(
            "deliverable: {} {} on {}, due {}",
            d.count,
            vocab::label::<DeliverableKind>(d.kind),
            vocab::label::<Platform>(d.platform),
            crate::output::time(d.due_time.as_ref())
        ));
    }
    out.push(format!("compensation: {}", compensation(t.compensation.as_ref())));
    let usage = t.usage_rights.clone().unwrap_or_default();
    let channels: Vec<String> = usage
        .channels
        .iter()
        .map(|c| vocab::label::<UsageChannel>(*c))
        .collect();
    out.push(format!(
        "usage: {}{}",
        if channels.is_empty() {
            "the post only".to_owned()
        } else {
            format!("{} for {} days", channels.join(", "), usage.days)
        },
        if usage.paid_amplification {
            ", paid amplification"
        } else {
            ""
        }
    ));
    if let Some(x) = &t.exclusivity {
        out.push(format!(
            "exclusivity: no competitor in {} for {} days",
            x.category, x.days
        ));
    }
    out.push(format!(
        "disclosure: rules of {}{}; {}",
        t.disclosure_jurisdiction,
        if t.disclosure_language.is_empty() {
            String::new()
        } else {
            format!(" in {}", t.disclosure_language)
        },
        if t.content_review {
            "the brand reviews each post"
        } else {
            "no content review"
        }
    ));
    if let Some(r) = &t.reporting {
        out.push(format!(
            "reporting: {} within {} days of each post",
            r.metrics.join(", ").replace('_', " "),
            r.due_days_after_post
        ));
    }
    out.push(format!("grace: {} days after a due date", t.grace_days));
    if !t.notes.is_empty() {
        out.push(format!("notes: {}", t.notes));
    }
    out.into_iter().map(|l| format!("{indent}{l}")).collect()
}

/// "$250.00 USD cash, 50.00 EUR Amazon gift card, 2 × Dog treats (TREATS-1, $45.00 USD each)".
pub(crate) fn compensation(c: Option<&Compensation>) -> String {
    let Some(c) = c else {
        return "-".to_owned();
    };
    let mut parts = Vec::new();
    if let Some(cash) = &c.cash {
        parts.push(format!("{} cash", money(cash)));
    }
    for g in &c.gift_cards {
        parts.push(format!(
            "{} {} gift card",
            g.value.as_ref().map(money).unwrap_or_default(),
            g.brand
        ));
    }
    for p in &c.products {
        parts.push(format!(
            "{} × {} ({}, {} each)",
            p.quantity.max(1),
            p.title,
            p.sku,
            p.declared_value.as_ref().map(money).unwrap_or_default()
        ));
    }
    if parts.is_empty() {
        "-".to_owned()
    } else {
        parts.join(", ")
    }
}

/// One offer or contract as `offers list` and `contracts list` show it.
pub(crate) struct Listed<'a> {
    pub(crate) name: &'a str,
    pub(crate) influencer: &'a str,
    pub(crate) state: String,
    pub(crate) version: i32,
    pub(crate) terms: Option<&'a Terms>,
    /// The last column's time (the offer's expiry, the contract's last change).
    pub(crate) time: Option<&'a Timestamp>,
}

/// What `offers list` and `contracts list` list.
pub(crate) trait Listable {
    /// What one is called: the first column's heading, and (with an "s") the JSON's key.
    const WHAT: &'static str;
    /// The heading of the last column, the row's time.
    const WHEN: &'static str;
    fn json(&self) -> Value;
    fn row(&self) -> Listed<'_>;
}

/// Prints a page of offers or contracts: JSON (`{"offers": [...], "next_page_token"}`), or a
/// table.
pub(crate) fn print_page<T: Listable>(json: bool, items: &[T], next_page_token: &str) -> Result<()> {
    if json {
        let mut page = serde_json::Map::new();
        page.insert(format!("{}s", T::WHAT), items.iter().map(T::json).collect());
        page.insert("next_page_token".to_owned(), json!(next_page_token));
        return crate::output::print_json(&Value::Object(page));
    }
    outln!("{}", listing::<T>(items));
    Ok(())
}

fn listing<T: Listable>(items: &[T]) -> Table {
    let mut t = crate::output::table(&[T::WHAT, "influencer", "state", "version", "compensation", T::WHEN]);
    for r in items.iter().map(T::row) {
        t.add_row(vec![
            Cell::new(r.name),
            Cell::new(r.influencer),
            Cell::new(r.state),
            Cell::new(r.version).set_alignment(CellAlignment::Right),
            Cell::new(compensation(r.terms.and_then(|t| t.compensation.as_ref()))),
            Cell::new(crate::output::time(r.time)),
        ]);
    }
    t
}

pub(crate) fn terms_json(t: &Terms) -> Value {
    let c = t.compensation.clone().unwrap_or_default();
    json!({
        "deliverables": t.deliverables.iter().map(|d| json!({
            "kind": enum_json::<DeliverableKind>(d.kind),
            "platform": enum_json::<Platform>(d.platform),
            "count": d.count,
            "due_time": time_json(d.due_time.as_ref()),
            "brief": d.brief,
        })).collect::<Vec<_>>(),
        "compensation": {
            "cash": money_json(c.cash.as_ref()),
            "gift_cards": c.gift_cards.iter().map(|g| json!({
                "value": money_json(g.value.as_ref()), "brand": g.brand,
            })).collect::<Vec<_>>(),
            "products": c.products.iter().map(|p| json!({
                "sku": p.sku, "title": p.title,
                "declared_value": money_json(p.declared_value.as_ref()), "quantity": p.quantity,
            })).collect::<Vec<_>>(),
        },
        "usage_rights": t.usage_rights.as_ref().map(|u: &UsageRights| json!({
            "channels": u.channels.iter().map(|c| enum_json::<UsageChannel>(*c)).collect::<Vec<_>>(),
            "days": u.days,
            "paid_amplification": u.paid_amplification,
        })),
        "exclusivity": t.exclusivity.as_ref().map(|x| json!({"category": x.category, "days": x.days})),
        "disclosure_jurisdiction": t.disclosure_jurisdiction,
        "disclosure_language": t.disclosure_language,
        "content_review": t.content_review,
        "reporting": t.reporting.as_ref().map(|r| json!({
            "metrics": r.metrics, "due_days_after_post": r.due_days_after_post,
        })),
        "grace_days": t.grace_days,
        "notes": t.notes,
    })
}

/// The terms flags of a command line, for tests.
#[cfg(test)]
#[derive(clap::Parser, Debug)]
struct Flags {
    #[command(flatten)]
    terms: TermsArgs,
}

/// Parses terms flags, for tests.
#[cfg(test)]
pub(crate) fn flags(flags: &[&str]) -> TermsArgs {
    use clap::Parser;
    Flags::try_parse_from(std::iter::once("t").chain(flags.iter().copied()))
        .unwrap()
        .terms
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    use super::flags as args;
    type T = Flags;

    fn usd(amount_minor: i64) -> Money {
        Money {
            currency_code: "USD".to_owned(),
            amount_minor,
        }
    }

    #[test]
    fn deliverables_parse_with_a_due_date_or_time() {
        let d = parse_deliverable("instagram:feed-post:2:2027-01-30").unwrap();
        assert_eq!(d.platform, Platform::Instagram as i32);
        assert_eq!(d.kind, DeliverableKind::FeedPost as i32);
        assert_eq!(d.count, 2);
        assert_eq!(d.due_time.unwrap().to_string(), "2027-01-30T23:59:59Z");
        let d = parse_deliverable("tiktok:short-video:1:2027-02-01T17:30:00Z").unwrap();
        assert_eq!(d.due_time.unwrap().to_string(), "2027-02-01T17:30:00Z");
        let d = parse_deliverable("youtube:video:1:2027-02-01T09:00:00-05:00").unwrap();
        assert_eq!(d.due_time.unwrap().to_string(), "2027-02-01T14:00:00Z");
        for (bad, says) in [
            ("instagram:feed-post:2", "expected PLATFORM:KIND:COUNT:DUE"),
            ("instagram:feed-post:two:2027-01-30", "the count \"two\""),
            ("myspace:feed-post:1:2027-01-30", "unknown platform"),
            ("instagram:tweet:1:2027-01-30", "unknown deliverable kind"),
            ("instagram:feed-post:1:2027-02-30", "neither a date"),
            ("instagram:feed-post:1:tomorrow", "neither a date"),
        ] {
            let err = parse_deliverable(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn gift_cards_and_products_parse_with_their_money() {
        let g = parse_gift_card("50 USD:Amazon").unwrap();
        assert_eq!((g.value.unwrap(), g.brand.as_str()), (usd(5_000), "Amazon"));
        assert!(parse_gift_card("50 USD").unwrap_err().contains("AMOUNT:BRAND"));
        assert!(
            parse_gift_card("lots:Amazon")
                .unwrap_err()
                .contains("gift card \"lots:Amazon\"")
        );

        let p = parse_product("TREATS-1:Dog treats:45 USD").unwrap();
        assert_eq!(
            (p.sku.as_str(), p.title.as_str(), p.quantity),
            ("TREATS-1", "Dog treats", 0)
        );
        assert_eq!(p.declared_value, Some(usd(4_500)));
        let p = parse_product("TREATS-1:Dog treats: the big bag:12.50 EUR:3").unwrap();
        assert_eq!(p.title, "Dog treats: the big bag");
        assert_eq!(p.quantity, 3);
        assert_eq!(p.declared_value.unwrap().amount_minor, 1_250);
        assert!(
            parse_product("TREATS-1:45 USD")
                .unwrap_err()
                .contains("SKU:TITLE:VALUE")
        );
        assert!(
            parse_product("TREATS-1:Dog treats:cheap")
                .unwrap_err()
                .contains("amount")
        );
    }

    #[test]
    fn money_keeps_the_currency_digits() {
        assert_eq!(parse_money("250 USD").unwrap(), usd(25_000));
        assert_eq!(parse_money("$19.99").unwrap(), usd(1_999));
        assert_eq!(parse_money("5000 jpy").unwrap().amount_minor, 5_000);
        assert!(
            parse_money("1.234 USD")
                .unwrap_err()
                .to_string()
                .contains("2 decimal places")
        );
        assert!(
            parse_money("250")
                .unwrap_err()
                .to_string()
                .contains("a number and a currency")
        );
    }

    #[test]
    fn exclusivity_and_reporting_parse_or_are_removed() {
        let x = parse_exclusivity("pets:30").unwrap();
        assert_eq!((x.category.as_str(), x.days), ("pets", 30));
        assert_eq!(part("None", parse_exclusivity), Ok(Part(None)));
        assert!(parse_exclusivity("pets").unwrap_err().contains("CATEGORY:DAYS"));
        assert!(parse_exclusivity("pets:month").unwrap_err().contains("whole number"));

        let r = parse_report("reach, Story-Views:7").unwrap();
        assert_eq!(r.metrics, ["reach", "story_views"]);
        assert_eq!(r.due_days_after_post, 7);
        assert_eq!(part("none", parse_report), Ok(Part(None)));
        assert_eq!(part("reach:1", parse_report).unwrap().0.unwrap().metrics, ["reach"]);
        assert!(parse_report("reach").unwrap_err().contains("METRICS:DAYS"));
    }

    #[test]
    fn flags_replace_only_what_they_give() {
        let base = args(&[
            "--deliverable",
            "instagram:feed-post:2:2027-01-30",
            "--cash",
            "250 USD",
            "--gift-card",
            "50 USD:Amazon",
            "--usage",
            "organic-social,paid-social",
            "--usage-days",
            "90",
            "--paid-amplification",
            "--exclusivity",
            "pets:30",
            "--jurisdiction",
            "us",
            "--review",
            "--report",
            "reach,impressions:7",
            "--grace-days",
            "3",
        ])
        .apply(Terms::default());
        let u = base.usage_rights.clone().unwrap();
        assert_eq!(
            u.channels,
            [UsageChannel::OrganicSocial as i32, UsageChannel::PaidSocial as i32]
        );
        assert_eq!((u.days, u.paid_amplification), (90, true));
        assert_eq!(base.disclosure_jurisdiction, "US");
        assert!(base.content_review);
        assert_eq!(base.grace_days, 3);

        let counter = args(&["--cash", "300 USD", "--exclusivity", "none", "--review=false"]);
        assert!(!counter.is_empty());
        let t = counter.apply(base.clone());
        let c = t.compensation.clone().unwrap();
        assert_eq!(c.cash, Some(usd(30_000)));
        assert_eq!(c.gift_cards, base.compensation.clone().unwrap().gift_cards, "kept");
        assert_eq!(t.deliverables, base.deliverables, "kept");
        assert_eq!(t.exclusivity, None);
        assert!(!t.content_review);
        assert_eq!(t.usage_rights, base.usage_rights, "kept");

        assert!(args(&[]).is_empty());
        assert_eq!(args(&[]).apply(base.clone()), base);
        let removed = args(&["--cash", "none", "--usage", "none"]).apply(base);
        assert_eq!(removed.compensation.unwrap().cash, None);
        assert!(removed.usage_rights.unwrap().channels.is_empty());
        let err = T::try_parse_from(["t", "--cash", "lots"]).unwrap_err().to_string();
        assert!(err.contains("amount \"lots\""), "{err}");
        // A bare --review never takes the next word as its value.
        let t = T::try_parse_from(["t", "--review", "--grace-days", "2"]).unwrap().terms;
        assert_eq!(t.review, Some(true));
    }

    #[test]
    fn terms_read_as_lines_and_json() {
        let t = args(&[
            "--deliverable",
            "instagram:feed-post:2:2027-01-30",
            "--cash",
            "250 USD",
            "--product",
            "TREATS-1:Dog treats:45 USD:2",
            "--exclusivity",
            "pets:30",
            "--jurisdiction",
            "US",
            "--report",
            "reach,story-views:7",
        ])
        .apply(Terms::default());
        assert_eq!(
            lines(Some(&t), ""),
            [
                "deliverable: 2 feed post on instagram, due 2027-01-30T23:59:59Z",
                "compensation: $250.00 USD cash, 2 × Dog treats (TREATS-1, $45.00 USD each)",
                "usage: the post only",
                "exclusivity: no competitor in pets for 30 days",
                "disclosure: rules of US; no content review",
                "reporting: reach, story views within 7 days of each post",
                "grace: 0 days after a due date",
            ]
        );
        assert_eq!(lines(None, "  ")[0], "  compensation: -");
        let v = terms_json(&t);
        assert_eq!(v["deliverables"][0]["kind"], "DELIVERABLE_KIND_FEED_POST");
        assert_eq!(v["deliverables"][0]["due_time"], "2027-01-30T23:59:59Z");
        assert_eq!(
            v["compensation"]["cash"],
            json!({"currency_code": "USD", "amount_minor": 25000})
        );
        assert_eq!(v["compensation"]["products"][0]["quantity"], 2);
        assert_eq!(v["exclusivity"], json!({"category": "pets", "days": 30}));
        assert_eq!(v["usage_rights"], Value::Null);
        assert_eq!(compensation(None), "-");
    }
}
