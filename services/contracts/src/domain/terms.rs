//! A contract's terms as the domain holds them: read once from `chorus.contracts.v1.Terms` by
//! [`Terms::parse`], which names every offending field in one INVALID_ARGUMENT, so a `Terms`
//! value is always valid. It is also what the canonical document writes (`document.rs`):
//! enums by readable name, money and times as `json` writes them.

use chorus_catalog::money::{Currency, Money};
use chorus_kit::error::too_long;
use chorus_kit::{Error, Violations};
use chorus_proto::contracts as pb;
use chorus_proto::types as pbt;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::json;

/// Deliverable entries in one set of terms.
pub const MAX_DELIVERABLE_TERMS: usize = 10;
/// Posts of one entry.
pub const MAX_DELIVERABLE_COUNT: u32 = 20;
/// A deliverable's brief, in characters.
pub const MAX_BRIEF: usize = 2_000;
pub const MAX_GIFT_CARDS: usize = 10;
pub const MAX_GIFT_CARD_BRAND: usize = 100;
pub const MAX_PRODUCTS: usize = 20;
pub const MAX_SKU: usize = 64;
pub const MAX_PRODUCT_TITLE: usize = 200;
pub const MAX_QUANTITY: u32 = 100;
pub const MAX_USAGE_DAYS: u32 = 3_650;
/// Usage channels: each of the six at most once.
pub const MAX_USAGE_CHANNELS: usize = 6;
pub const MAX_CATEGORY: usize = 64;
pub const MAX_EXCLUSIVITY_DAYS: u32 = 365;
pub const MAX_METRICS: usize = 8;
pub const MAX_REPORT_DAYS: u32 = 90;
pub const MAX_GRACE_DAYS: u32 = 60;
/// The notes, in characters.
pub const MAX_NOTES: usize = 5_000;
/// Largest single amount: 10^12 minor units (ten billion dollars). With every list at its
/// bound, all amounts together (products times their quantity) stay below 2^53, so every
/// number in a document is exact in any JSON reader and no sum can overflow.
pub const MAX_AMOUNT_MINOR: i64 = 1_000_000_000_000;

/// A closed vocabulary of the terms: written in documents by its snake_case name, read from
/// its protobuf enum (UNSPECIFIED and unknown values are not members).
macro_rules! vocabulary {
    ($(#[$doc:meta])* $name:ident from $proto:path { $($variant:ident => $label:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            /// The member for a protobuf enum value, if it is one.
            pub fn from_proto(value: i32) -> Option<Self> {
                type P = $proto;
                match P::try_from(value).ok()? {
                    $(P::$variant => Some($name::$variant),)+
                    _ => None,
                }
            }

            pub fn to_proto(self) -> $proto {
                type P = $proto;
                match self {
                    $($name::$variant => P::$variant),+
                }
            }

            /// As a person reads it.
            pub fn label(self) -> &'static str {
                match self {
                    $($name::$variant => $label),+
                }
            }
        }
    };
}

vocabulary!(
    /// What a post is.
    DeliverableKind from pbt::DeliverableKind {
        FeedPost => "feed post",
        Story => "story",
        Video => "video",
        ShortVideo => "short video",
        BlogPost => "blog post",
        LiveStream => "live stream",
    }
);

vocabulary!(
    /// Where a post is published.
    Platform from pbt::Platform {
        Instagram => "Instagram",
        Tiktok => "TikTok",
        Youtube => "YouTube",
        X => "X",
        Facebook => "Facebook",
        Twitch => "Twitch",
        Pinterest => "Pinterest",
        Blog => "blog",
    }
);

vocabulary!(
    /// Where the brand may use the content.
    UsageChannel from pb::UsageChannel {
        OrganicSocial => "organic social",
        PaidSocial => "paid social",
        Website => "website",
        Email => "email",
        Print => "print",
        OutOfHome => "out of home",
    }
);

/// A metric the influencer reports; the proto carries these names as strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Reach,
    Impressions,
    Engagements,
    Saves,
    Shares,
    StoryViews,
    LinkClicks,
    VideoViews,
}

impl Metric {
    pub const ALL: [Metric; 8] = [
        Metric::Reach,
        Metric::Impressions,
        Metric::Engagements,
        Metric::Saves,
        Metric::Shares,
        Metric::StoryViews,
        Metric::LinkClicks,
        Metric::VideoViews,
    ];

    /// The name the proto and the document use ("story_views").
    pub fn name(self) -> &'static str {
        match self {
            Metric::Reach => "reach",
            Metric::Impressions => "impressions",
            Metric::Engagements => "engagements",
            Metric::Saves => "saves",
            Metric::Shares => "shares",
            Metric::StoryViews => "story_views",
            Metric::LinkClicks => "link_clicks",
            Metric::VideoViews => "video_views",
        }
    }

    pub fn parse(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// `count` posts of `kind` on `platform`, each due by `due_micros`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliverableTerm {
    pub kind: DeliverableKind,
    pub platform: Platform,
    /// 1..=20.
    pub count: u32,
    /// Microseconds since the epoch.
    #[serde(rename = "due_time", with = "json::time")]
    pub due_micros: i64,
    pub brief: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GiftCard {
    pub brand: String,
    #[serde(with = "json::money")]
    pub value: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Product {
    pub sku: String,
    pub title: String,
    /// Per unit.
    #[serde(with = "json::money")]
    pub declared_value: Money,
    /// 1..=100 (the proto's unset is 1).
    pub quantity: u32,
}

/// Cash, gift cards and products, at least one, every amount positive and in one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Compensation {
    #[serde(with = "json::optional_money")]
    pub cash: Option<Money>,
    pub gift_cards: Vec<GiftCard>,
    pub products: Vec<Product>,
}

/// What the brand may do with the content; the proto's unset is the default: nothing beyond
/// the influencer's own post.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageRights {
    pub channels: Vec<UsageChannel>,
    pub days: u32,
    pub paid_amplification: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exclusivity {
    pub category: String,
    pub days: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reporting {
    pub metrics: Vec<Metric>,
    pub due_days_after_post: u32,
}

/// The fields of [`Terms`], as the document writes them (every member present, `null` for
/// what is unset).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    deliverables: Vec<DeliverableTerm>,
    compensation: Compensation,
    usage_rights: UsageRights,
    exclusivity: Option<Exclusivity>,
    disclosure_jurisdiction: String,
    disclosure_language: Option<String>,
    content_review: bool,
    reporting: Option<Reporting>,
    grace_days: u32,
    notes: String,
}

/// Valid terms: only [`Terms::parse`] (and deserializing, which runs it) makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terms {
    body: Body,
    /// The one currency of every amount.
    currency: Currency,
}

/// One post the influencer owes: an entry of the terms expanded by its count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueDeliverable {
    /// 1, 2, ... in the order of the terms' entries.
    pub index: u32,
    pub kind: DeliverableKind,
    pub platform: Platform,
    pub due_micros: i64,
    pub brief: String,
}

impl Terms {
    /// Reads terms sent at request path `field` ("terms", "template.terms"); every offending
    /// field is named, under that path, in one INVALID_ARGUMENT.
    pub fn parse(proto: &pb::Terms, field: &str) -> Result<Terms, Error> {
        let mut p = Parser {
            v: Violations::new(),
            prefix: field,
            currency: None,
        };
        let deliverables = p.deliverables(&proto.deliverables);
        let compensation = p.compensation(proto.compensation.as_ref());
        let usage_rights = p.usage_rights(proto.usage_rights.as_ref());
        let exclusivity = proto.exclusivity.as_ref().and_then(|x| p.exclusivity(x));
        let jurisdiction = &proto.disclosure_jurisdiction;
        p.v.check(
            !(jurisdiction.len() == 2 && jurisdiction.bytes().all(|b| b.is_ascii_uppercase())),
            p.at("disclosure_jurisdiction"),
            "required: ISO 3166-1 alpha-2, two upper-case letters (\"US\")",
        );
        let language = &proto.disclosure_language;
        p.v.check(
            !(language.is_empty() || (language.len() == 2 && language.bytes().all(|b| b.is_ascii_lowercase()))),
            p.at("disclosure_language"),
            "ISO 639-1, two lower-case letters (\"en\"), or empty for the jurisdiction's first language",
        );
        let reporting = proto.reporting.as_ref().map(|r| p.reporting(r));
        let grace_days = p.days(proto.grace_days, 0, MAX_GRACE_DAYS, "grace_days");
        p.v.check(
            too_long(&proto.notes, MAX_NOTES),
            p.at("notes"),
            format!("at most {MAX_NOTES} characters"),
        );
        let Parser { v, currency, .. } = p;
        v.finish()?;
        // No violation means every part was read; the guard keeps this free of panics.
        let (Some(compensation), Some(currency)) = (compensation, currency) else {
            return Err(Error::invalid_field(field, "terms could not be read"));
        };
        Ok(Terms {
            body: Body {
                deliverables,
                compensation,
                usage_rights,
                exclusivity,
                disclosure_jurisdiction: jurisdiction.clone(),
                disclosure_language: (!language.is_empty()).then(|| language.clone()),
                content_review: proto.content_review,
                reporting,
                grace_days,
                notes: proto.notes.clone(),
            },
            currency,
        })
    }

    pub fn to_proto(&self) -> pb::Terms {
        self.body.to_proto()
    }

    /// The one currency of every amount.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// Cash, gift cards' face value and products' declared value times their quantity.
    pub fn total_value(&self) -> Money {
        let c = &self.body.compensation;
        // Each amount is at most MAX_AMOUNT_MINOR, so the sum stays below 2^53: saturating
        // arithmetic only keeps this free of panics.
        let minor = c
            .cash
            .iter()
            .map(|m| m.minor)
            .chain(c.gift_cards.iter().map(|g| g.value.minor))
            .chain(
                c.products
                    .iter()
                    .map(|p| p.declared_value.minor.saturating_mul(i64::from(p.quantity))),
            )
            .fold(0i64, i64::saturating_add);
        Money::new(self.currency, minor)
    }

    /// Every post owed, each entry expanded by its count, in the order of the terms.
    pub fn deliverables(&self) -> Vec<DueDeliverable> {
        self.body
            .deliverables
            .iter()
            .flat_map(|d| std::iter::repeat_n(d, d.count as usize))
            .zip(1..)
            .map(|(d, index)| DueDeliverable {
                index,
                kind: d.kind,
                platform: d.platform,
                due_micros: d.due_micros,
                brief: d.brief.clone(),
            })
            .collect()
    }

    /// The cash released as each post of [`Terms::deliverables`] is approved: split evenly,
    /// the last taking the remainder, so the releases add up to the cash exactly (zeros when
    /// there is no cash).
    pub fn cash_releases(&self) -> Vec<Money> {
        let n = self.body.deliverables.iter().map(|d| i64::from(d.count)).sum::<i64>();
        let cash = self.body.compensation.cash.map_or(0, |m| m.minor);
        let each = cash.checked_div(n).unwrap_or(0);
        (0..n)
            .map(|i| {
                let minor = if i + 1 == n { cash - each * (n - 1) } else { each };
                Money::new(self.currency, minor)
            })
            .collect()
    }

    /// The entries as written (not expanded).
    pub fn deliverable_terms(&self) -> &[DeliverableTerm] {
        &self.body.deliverables
    }

    pub fn compensation(&self) -> &Compensation {
        &self.body.compensation
    }

    pub fn usage_rights(&self) -> &UsageRights {
        &self.body.usage_rights
    }

    pub fn exclusivity(&self) -> Option<&Exclusivity> {
        self.body.exclusivity.as_ref()
    }

    /// ISO 3166-1 alpha-2 ("US").
    pub fn disclosure_jurisdiction(&self) -> &str {
        &self.body.disclosure_jurisdiction
    }

    /// ISO 639-1 ("en"); `None` means the jurisdiction's first language.
    pub fn disclosure_language(&self) -> Option<&str> {
        self.body.disclosure_language.as_deref()
    }

    pub fn content_review(&self) -> bool {
        self.body.content_review
    }

    pub fn reporting(&self) -> Option<&Reporting> {
        self.body.reporting.as_ref()
    }

    pub fn grace_days(&self) -> u32 {
        self.body.grace_days
    }

    pub fn notes(&self) -> &str {
        &self.body.notes
    }
}

impl Body {
    fn to_proto(&self) -> pb::Terms {
        let b = self;
        pb::Terms {
            deliverables: b
                .deliverables
                .iter()
                .map(|d| pb::DeliverableTerm {
                    kind: d.kind.to_proto() as i32,
                    platform: d.platform.to_proto() as i32,
                    count: to_i32(d.count),
                    due_time: Some(chorus_kit::clock::timestamp(d.due_micros)),
                    brief: d.brief.clone(),
                })
                .collect(),
            compensation: Some(pb::Compensation {
                cash: b.compensation.cash.map(Money::to_proto),
                gift_cards: b
                    .compensation
                    .gift_cards
                    .iter()
                    .map(|g| pb::GiftCard {
                        value: Some(g.value.to_proto()),
                        brand: g.brand.clone(),
                    })
                    .collect(),
                products: b
                    .compensation
                    .products
                    .iter()
                    .map(|p| pb::Product {
                        sku: p.sku.clone(),
                        title: p.title.clone(),
                        declared_value: Some(p.declared_value.to_proto()),
                        quantity: to_i32(p.quantity),
                    })
                    .collect(),
            }),
            usage_rights: Some(pb::UsageRights {
                channels: b.usage_rights.channels.iter().map(|c| c.to_proto() as i32).collect(),
                days: to_i32(b.usage_rights.days),
                paid_amplification: b.usage_rights.paid_amplification,
            }),
            exclusivity: b.exclusivity.as_ref().map(|x| pb::Exclusivity {
                category: x.category.clone(),
                days: to_i32(x.days),
            }),
            disclosure_jurisdiction: b.disclosure_jurisdiction.clone(),
            disclosure_language: b.disclosure_language.clone().unwrap_or_default(),
            content_review: b.content_review,
            reporting: b.reporting.as_ref().map(|r| pb::ReportingDuty {
                metrics: r.metrics.iter().map(|m| m.name().to_owned()).collect(),
                due_days_after_post: to_i32(r.due_days_after_post),
            }),
            grace_days: to_i32(b.grace_days),
            notes: b.notes.clone(),
        }
    }
}

impl Serialize for Terms {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.body.serialize(s)
    }
}

/// Reading terms from a document runs [`Terms::parse`], so a document cannot carry terms the
/// API would refuse; and they must be written as `parse` writes them (a quantity of 1, not 0).
impl<'de> Deserialize<'de> for Terms {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Terms, D::Error> {
        let body = Body::deserialize(d)?;
        let terms = Terms::parse(&body.to_proto(), "terms").map_err(|e| {
            let problems: Vec<String> = e
                .violations()
                .iter()
                .map(|v| format!("{}: {}", v.field, v.description))
                .collect();
            D::Error::custom(format!("invalid terms: {}", problems.join("; ")))
        })?;
        if terms.body != body {
            return Err(D::Error::custom("terms not in their canonical form"));
        }
        Ok(terms)
    }
}

fn to_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Reads the parts of a `Terms`, collecting violations; a part is `None` (or left out of a
/// list) when it has one.
struct Parser<'a> {
    v: Violations,
    prefix: &'a str,
    /// The currency of the first amount read, and where it was.
    currency: Option<Currency>,
}

impl Parser<'_> {
    fn at(&self, sub: &str) -> String {
        if self.prefix.is_empty() {
            sub.to_owned()
        } else {
            format!("{}.{sub}", self.prefix)
        }
    }

    /// A list bound: one violation on the list, and the entries to check one by one.
    fn bounded<'t, T>(&mut self, list: &'t [T], min: usize, max: usize, field: &str) -> &'t [T] {
        if list.len() < min {
            self.v.add(self.at(field), format!("at least {min}"));
        } else if list.len() > max {
            self.v.add(self.at(field), format!("at most {max}"));
        }
        &list[..list.len().min(max)]
    }

    /// A text of 1..=max characters (not only white space).
    fn text(&mut self, s: &str, max: usize, field: &str) -> Option<String> {
        if s.trim().is_empty() {
            self.v.add(self.at(field), "required");
            None
        } else if too_long(s, max) {
            self.v.add(self.at(field), format!("at most {max} characters"));
            None
        } else {
            Some(s.to_owned())
        }
    }

    fn days(&mut self, n: i32, min: u32, max: u32, field: &str) -> u32 {
        match u32::try_from(n) {
            Ok(d) if (min..=max).contains(&d) => d,
            _ => {
                self.v.add(self.at(field), format!("from {min} to {max}"));
                0
            }
        }
    }

    /// A positive amount in the terms' one currency.
    fn amount(&mut self, m: Option<&pbt::Money>, field: &str) -> Option<Money> {
        let Some(m) = m else {
            self.v.add(self.at(field), "required");
            return None;
        };
        let currency = Currency::parse(&m.currency_code);
        match (currency, self.currency) {
            (None, _) => {
                let got = if too_long(&m.currency_code, 8) {
                    String::new()
                } else {
                    format!(" (got {:?})", m.currency_code)
                };
                self.v.add(
                    self.at(&format!("{field}.currency_code")),
                    format!("required: an ISO 4217 currency, upper case{got}"),
                );
            }
            (Some(c), Some(first)) if c != first => self.v.add(
                self.at(&format!("{field}.currency_code")),
                format!("every amount of the terms is in one currency: {first}, not {c}"),
            ),
            (Some(c), _) => self.currency = Some(c),
        }
        let in_range = (1..=MAX_AMOUNT_MINOR).contains(&m.amount_minor);
        if !in_range {
            self.v.add(
                self.at(&format!("{field}.amount_minor")),
                format!("must be positive, at most {MAX_AMOUNT_MINOR}"),
            );
        }
        match currency {
            Some(c) if in_range && self.currency == Some(c) => Some(Money::new(c, m.amount_minor)),
            _ => None,
        }
    }

    fn deliverables(&mut self, list: &[pb::DeliverableTerm]) -> Vec<DeliverableTerm> {
        let mut out = Vec::new();
        for (i, d) in self
            .bounded(list, 1, MAX_DELIVERABLE_TERMS, "deliverables")
            .iter()
            .enumerate()
        {
            let at = format!("deliverables[{i}]");
            let kind = DeliverableKind::from_proto(d.kind);
            if kind.is_none() {
                self.v.add(
                    self.at(&format!("{at}.kind")),
                    format!("required, a known kind (got {})", d.kind),
                );
            }
            let platform = Platform::from_proto(d.platform);
            if platform.is_none() {
                self.v.add(
                    self.at(&format!("{at}.platform")),
                    format!("required, a known platform (got {})", d.platform),
                );
            }
            let count = u32::try_from(d.count)
                .ok()
                .filter(|c| (1..=MAX_DELIVERABLE_COUNT).contains(c));
            if count.is_none() {
                self.v.add(
                    self.at(&format!("{at}.count")),
                    format!("from 1 to {MAX_DELIVERABLE_COUNT}"),
                );
            }
            let due = match &d.due_time {
                None => {
                    self.v.add(self.at(&format!("{at}.due_time")), "required");
                    None
                }
                Some(t) if !(0..1_000_000_000).contains(&t.nanos) => {
                    self.v
                        .add(self.at(&format!("{at}.due_time.nanos")), "from 0 to 999,999,999");
                    None
                }
                Some(t) => {
                    let micros = chorus_kit::clock::micros(t);
                    let ok = (json::MIN_MICROS..=json::MAX_MICROS).contains(&micros);
                    if !ok {
                        self.v.add(
                            self.at(&format!("{at}.due_time")),
                            "from 1970-01-01 to 9999-12-31 (UTC)",
                        );
                    }
                    ok.then_some(micros)
                }
            };
            if too_long(&d.brief, MAX_BRIEF) {
                self.v.add(
                    self.at(&format!("{at}.brief")),
                    format!("at most {MAX_BRIEF} characters"),
                );
            }
            if let (Some(kind), Some(platform), Some(count), Some(due_micros)) = (kind, platform, count, due) {
                out.push(DeliverableTerm {
                    kind,
                    platform,
                    count,
                    due_micros,
                    brief: d.brief.clone(),
                });
            }
        }
        out
    }

    fn compensation(&mut self, c: Option<&pb::Compensation>) -> Option<Compensation> {
        let Some(c) = c else {
            self.v.add(self.at("compensation"), "required");
            return None;
        };
        if c.cash.is_none() && c.gift_cards.is_empty() && c.products.is_empty() {
            self.v
                .add(self.at("compensation"), "at least one of cash, gift_cards and products");
        }
        let cash = c.cash.as_ref().and_then(|m| self.amount(Some(m), "compensation.cash"));
        let mut gift_cards = Vec::new();
        for (i, g) in self
            .bounded(&c.gift_cards, 0, MAX_GIFT_CARDS, "compensation.gift_cards")
            .iter()
            .enumerate()
        {
            let at = format!("compensation.gift_cards[{i}]");
            let value = self.amount(g.value.as_ref(), &format!("{at}.value"));
            let brand = self.text(&g.brand, MAX_GIFT_CARD_BRAND, &format!("{at}.brand"));
            if let (Some(value), Some(brand)) = (value, brand) {
                gift_cards.push(GiftCard { brand, value });
            }
        }
        let mut products = Vec::new();
        for (i, p) in self
            .bounded(&c.products, 0, MAX_PRODUCTS, "compensation.products")
            .iter()
            .enumerate()
        {
            let at = format!("compensation.products[{i}]");
            let sku = self.text(&p.sku, MAX_SKU, &format!("{at}.sku"));
            let title = self.text(&p.title, MAX_PRODUCT_TITLE, &format!("{at}.title"));
            let declared_value = self.amount(p.declared_value.as_ref(), &format!("{at}.declared_value"));
            let quantity = match p.quantity {
                0 => Some(1),
                q => u32::try_from(q).ok().filter(|q| (1..=MAX_QUANTITY).contains(q)),
            };
            if quantity.is_none() {
                self.v.add(
                    self.at(&format!("{at}.quantity")),
                    format!("from 1 to {MAX_QUANTITY} (unset means 1)"),
                );
            }
            if let (Some(sku), Some(title), Some(declared_value), Some(quantity)) =
                (sku, title, declared_value, quantity)
            {
                products.push(Product {
                    sku,
                    title,
                    declared_value,
                    quantity,
                });
            }
        }
        Some(Compensation {
            cash,
            gift_cards,
            products,
        })
    }

    fn usage_rights(&mut self, u: Option<&pb::UsageRights>) -> UsageRights {
        let Some(u) = u else {
            return UsageRights::default();
        };
        let days = self.days(u.days, 0, MAX_USAGE_DAYS, "usage_rights.days");
        let mut channels = Vec::new();
        for (i, &c) in self
            .bounded(&u.channels, 0, MAX_USAGE_CHANNELS, "usage_rights.channels")
            .iter()
            .enumerate()
        {
            let field = format!("usage_rights.channels[{i}]");
            match UsageChannel::from_proto(c) {
                None => self.v.add(self.at(&field), format!("a known channel (got {c})")),
                Some(channel) if channels.contains(&channel) => self.v.add(self.at(&field), "listed twice"),
                Some(channel) => channels.push(channel),
            }
        }
        UsageRights {
            channels,
            days,
            paid_amplification: u.paid_amplification,
        }
    }

    fn exclusivity(&mut self, x: &pb::Exclusivity) -> Option<Exclusivity> {
        // A niche id, written as matching writes exclusivity categories.
        let slug = !x.category.is_empty()
            && !too_long(&x.category, MAX_CATEGORY)
            && x.category
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        self.v.check(
            !slug,
            self.at("exclusivity.category"),
            format!("1 to {MAX_CATEGORY} lower-case letters, digits and dashes, a niche such as \"pets\""),
        );
        let days = self.days(x.days, 1, MAX_EXCLUSIVITY_DAYS, "exclusivity.days");
        slug.then(|| Exclusivity {
            category: x.category.clone(),
            days,
        })
    }

    fn reporting(&mut self, r: &pb::ReportingDuty) -> Reporting {
        let mut metrics = Vec::new();
        for (i, name) in self
            .bounded(&r.metrics, 1, MAX_METRICS, "reporting.metrics")
            .iter()
            .enumerate()
        {
            let field = self.at(&format!("reporting.metrics[{i}]"));
            match Metric::parse(name) {
                None => {
                    let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
                    self.v.add(field, format!("one of {}", names.join(", ")));
                }
                Some(m) if metrics.contains(&m) => self.v.add(field, "listed twice"),
                Some(m) => metrics.push(m),
            }
        }
        let due_days_after_post = self.days(
            r.due_days_after_post,
            1,
            MAX_REPORT_DAYS,
            "reporting.due_days_after_post",
        );
        Reporting {
            metrics,
            due_days_after_post,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::{APRIL_1, at, terms, usd};

    fn fields(err: &Error) -> Vec<&str> {
        err.violations().iter().map(|v| v.field.as_str()).collect()
    }

    /// `change` applied to valid terms is refused with exactly one violation, on `field`.
    fn refused(field: &str, change: impl FnOnce(&mut pb::Terms)) {
        let mut t = terms();
        change(&mut t);
        let err = Terms::parse(&t, "terms").expect_err(field);
        assert_eq!(err.code(), chorus_kit::ErrorCode::InvalidArgument);
        assert_eq!(fields(&err), [field], "{:?}", err.violations());
    }

    fn accepted(change: impl FnOnce(&mut pb::Terms)) -> Terms {
        let mut t = terms();
        change(&mut t);
        Terms::parse(&t, "terms").unwrap()
    }

    fn comp(t: &mut pb::Terms) -> &mut pb::Compensation {
        t.compensation.as_mut().unwrap()
    }

    fn u(t: &mut pb::Terms) -> &mut pb::UsageRights {
        t.usage_rights.as_mut().unwrap()
    }

    fn x(t: &mut pb::Terms) -> &mut pb::Exclusivity {
        t.exclusivity.as_mut().unwrap()
    }

    fn r(t: &mut pb::Terms) -> &mut pb::ReportingDuty {
        t.reporting.as_mut().unwrap()
    }

    fn entry(kind: pbt::DeliverableKind, count: i32) -> pb::DeliverableTerm {
        pb::DeliverableTerm {
            kind: kind as i32,
            platform: pbt::Platform::Youtube as i32,
            count,
            due_time: at(APRIL_1),
            brief: String::new(),
        }
    }

    #[test]
    fn valid_terms_survive_the_proto_unchanged() {
        let parsed = Terms::parse(&terms(), "terms").unwrap();
        assert_eq!(parsed.to_proto(), terms());
        assert_eq!(parsed.currency().code(), "USD");
        assert_eq!(parsed.disclosure_language(), Some("en"));
        assert_eq!(
            parsed.usage_rights().channels,
            [UsageChannel::OrganicSocial, UsageChannel::PaidSocial]
        );
        assert_eq!(
            parsed.reporting().unwrap().metrics,
            [Metric::Reach, Metric::Engagements]
        );
    }

    #[test]
    fn unset_parts_take_their_defaults() {
        let t = accepted(|t| {
            t.usage_rights = None;
            t.exclusivity = None;
            t.reporting = None;
            t.disclosure_language.clear();
            comp(t).products[0].quantity = 0;
        });
        assert_eq!(t.usage_rights(), &UsageRights::default());
        assert_eq!(t.exclusivity(), None);
        assert_eq!(t.reporting(), None);
        assert_eq!(t.disclosure_language(), None);
        assert_eq!(t.compensation().products[0].quantity, 1);
    }

    #[test]
    fn deliverable_rules() {
        refused("terms.deliverables", |t| t.deliverables.clear());
        refused("terms.deliverables", |t| {
            t.deliverables = vec![entry(pbt::DeliverableKind::Video, 1); 11];
        });
        refused("terms.deliverables[1].kind", |t| t.deliverables[1].kind = 0);
        refused("terms.deliverables[1].kind", |t| t.deliverables[1].kind = 99);
        refused("terms.deliverables[0].platform", |t| t.deliverables[0].platform = 0);
        refused("terms.deliverables[0].count", |t| t.deliverables[0].count = 0);
        refused("terms.deliverables[0].count", |t| t.deliverables[0].count = 21);
        refused("terms.deliverables[0].count", |t| t.deliverables[0].count = -1);
        refused("terms.deliverables[0].due_time", |t| t.deliverables[0].due_time = None);
        refused("terms.deliverables[0].due_time", |t| {
            t.deliverables[0].due_time = at(-1)
        });
        refused("terms.deliverables[0].due_time", |t| {
            t.deliverables[0].due_time = at(253_402_300_800);
        });
        refused("terms.deliverables[0].due_time.nanos", |t| {
            t.deliverables[0].due_time.as_mut().unwrap().nanos = 1_000_000_000;
        });
        refused("terms.deliverables[0].brief", |t| {
            t.deliverables[0].brief = "x".repeat(2_001)
        });
        accepted(|t| {
            t.deliverables = vec![entry(pbt::DeliverableKind::Video, 20); 10];
            t.deliverables[0].brief = "é".repeat(2_000);
        });
    }

    #[test]
    fn compensation_rules() {
        refused("terms.compensation", |t| t.compensation = None);
        refused("terms.compensation", |t| *comp(t) = pb::Compensation::default());
        refused("terms.compensation.cash.amount_minor", |t| comp(t).cash = usd(0));
        refused("terms.compensation.cash.amount_minor", |t| comp(t).cash = usd(-5));
        refused("terms.compensation.cash.amount_minor", |t| {
            comp(t).cash = usd(MAX_AMOUNT_MINOR + 1);
        });
        refused("terms.compensation.cash.currency_code", |t| {
            comp(t).cash.as_mut().unwrap().currency_code = "usd".into();
        });
        refused("terms.compensation.cash.currency_code", |t| {
            comp(t).cash.as_mut().unwrap().currency_code = "XYZ".into();
        });
        // The first amount names the currency; the next one in another is at fault.
        refused("terms.compensation.gift_cards[0].value.currency_code", |t| {
            comp(t).gift_cards[0].value.as_mut().unwrap().currency_code = "EUR".into();
        });
        refused("terms.compensation.products[0].declared_value.currency_code", |t| {
            comp(t).products[0].declared_value.as_mut().unwrap().currency_code = "JPY".into();
        });
        refused("terms.compensation.gift_cards[0].value", |t| {
            comp(t).gift_cards[0].value = None
        });
        refused("terms.compensation.gift_cards[0].value.amount_minor", |t| {
            comp(t).gift_cards[0].value = usd(0);
        });
        refused("terms.compensation.gift_cards[0].brand", |t| {
            comp(t).gift_cards[0].brand.clear()
        });
        refused("terms.compensation.gift_cards[0].brand", |t| {
            comp(t).gift_cards[0].brand = "b".repeat(101);
        });
        refused("terms.compensation.gift_cards", |t| {
            let card = comp(t).gift_cards[0].clone();
            comp(t).gift_cards = vec![card; 11];
        });
        refused("terms.compensation.products[0].sku", |t| {
            comp(t).products[0].sku = " ".into()
        });
        refused("terms.compensation.products[0].sku", |t| {
            comp(t).products[0].sku = "s".repeat(65)
        });
        refused("terms.compensation.products[0].title", |t| {
            comp(t).products[0].title.clear()
        });
        refused("terms.compensation.products[0].title", |t| {
            comp(t).products[0].title = "t".repeat(201);
        });
        refused("terms.compensation.products[0].declared_value", |t| {
            comp(t).products[0].declared_value = None;
        });
        refused("terms.compensation.products[0].declared_value.amount_minor", |t| {
            comp(t).products[0].declared_value = usd(0);
        });
        refused("terms.compensation.products[0].quantity", |t| {
            comp(t).products[0].quantity = 101
        });
        refused("terms.compensation.products[0].quantity", |t| {
            comp(t).products[0].quantity = -1
        });
        refused("terms.compensation.products", |t| {
            let product = comp(t).products[0].clone();
            comp(t).products = vec![product; 21];
        });
        // Any one kind is enough, in any currency.
        let gift_only = accepted(|t| {
            let c = comp(t);
            c.cash = None;
            c.products.clear();
            c.gift_cards[0].value.as_mut().unwrap().currency_code = "JPY".into();
        });
        assert_eq!(gift_only.currency().code(), "JPY");
    }

    #[test]
    fn usage_exclusivity_disclosure_reporting_grace_and_notes_rules() {
        refused("terms.usage_rights.days", |t| u(t).days = 3_651);
        refused("terms.usage_rights.days", |t| u(t).days = -1);
        refused("terms.usage_rights.channels[1]", |t| u(t).channels[1] = 0);
        refused("terms.usage_rights.channels[1]", |t| {
            let first = u(t).channels[0];
            u(t).channels[1] = first;
        });
        refused("terms.usage_rights.channels", |t| {
            u(t).channels = (1..=7).map(|c| c.min(6)).collect()
        });
        accepted(|t| u(t).channels = (1..=6).collect());

        refused("terms.exclusivity.category", |t| x(t).category.clear());
        refused("terms.exclusivity.category", |t| x(t).category = "c".repeat(65));
        refused("terms.exclusivity.category", |t| x(t).category = "Pet Food".into());
        refused("terms.exclusivity.days", |t| x(t).days = 0);
        refused("terms.exclusivity.days", |t| x(t).days = 366);

        refused("terms.disclosure_jurisdiction", |t| t.disclosure_jurisdiction.clear());
        refused("terms.disclosure_jurisdiction", |t| {
            t.disclosure_jurisdiction = "us".into()
        });
        refused("terms.disclosure_jurisdiction", |t| {
            t.disclosure_jurisdiction = "USA".into()
        });
        refused("terms.disclosure_language", |t| t.disclosure_language = "EN".into());
        refused("terms.disclosure_language", |t| t.disclosure_language = "en-US".into());

        refused("terms.reporting.metrics", |t| r(t).metrics.clear());
        refused("terms.reporting.metrics", |t| {
            r(t).metrics = Metric::ALL
                .iter()
                .chain(&[Metric::Reach])
                .map(|m| m.name().into())
                .collect();
        });
        refused("terms.reporting.metrics[1]", |t| r(t).metrics[1] = "likes".into());
        refused("terms.reporting.metrics[1]", |t| r(t).metrics[1] = "reach".into());
        refused("terms.reporting.due_days_after_post", |t| r(t).due_days_after_post = 0);
        refused("terms.reporting.due_days_after_post", |t| r(t).due_days_after_post = 91);
        accepted(|t| r(t).metrics = Metric::ALL.iter().map(|m| m.name().into()).collect());

        refused("terms.grace_days", |t| t.grace_days = 61);
        refused("terms.grace_days", |t| t.grace_days = -1);
        refused("terms.notes", |t| t.notes = "n".repeat(5_001));
        accepted(|t| t.notes = "ñ".repeat(5_000));
    }

    #[test]
    fn every_offending_field_is_named_at_once_under_the_request_path() {
        let mut t = terms();
        t.deliverables[0].count = 0;
        t.deliverables[1].platform = 0;
        comp(&mut t).cash = usd(0);
        comp(&mut t).gift_cards[0].value.as_mut().unwrap().currency_code = "EUR".into();
        comp(&mut t).products[0].sku.clear();
        t.exclusivity.as_mut().unwrap().days = 0;
        t.disclosure_jurisdiction = "usa".into();
        t.grace_days = 100;
        let err = Terms::parse(&t, "template.terms").unwrap_err();
        assert_eq!(
            fields(&err),
            [
                "template.terms.deliverables[0].count",
                "template.terms.deliverables[1].platform",
                "template.terms.compensation.cash.amount_minor",
                "template.terms.compensation.gift_cards[0].value.currency_code",
                "template.terms.compensation.products[0].sku",
                "template.terms.exclusivity.days",
                "template.terms.disclosure_jurisdiction",
                "template.terms.grace_days",
            ]
        );
        let status: tonic::Status = err.into();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(
            status.message().contains("template.terms.grace_days"),
            "{}",
            status.message()
        );
    }

    #[test]
    fn total_value_counts_products_by_quantity() {
        let t = Terms::parse(&terms(), "terms").unwrap();
        // 250.00 cash + 50.00 gift card + 2 x 39.99 product.
        assert_eq!(t.total_value(), Money::new(t.currency(), 25_000 + 5_000 + 2 * 3_999));
        let largest = accepted(|t| {
            let c = comp(t);
            c.cash = usd(MAX_AMOUNT_MINOR);
            c.gift_cards = vec![c.gift_cards[0].clone(); MAX_GIFT_CARDS];
            c.gift_cards.iter_mut().for_each(|g| g.value = usd(MAX_AMOUNT_MINOR));
            c.products = vec![c.products[0].clone(); MAX_PRODUCTS];
            c.products.iter_mut().for_each(|p| {
                p.declared_value = usd(MAX_AMOUNT_MINOR);
                p.quantity = 100;
            });
        });
        assert!(largest.total_value().minor < 1 << 53);
    }

    #[test]
    fn deliverables_expand_by_count_in_order() {
        let t = Terms::parse(&terms(), "terms").unwrap();
        let due: Vec<(u32, DeliverableKind, Platform, i64)> = t
            .deliverables()
            .into_iter()
            .map(|d| (d.index, d.kind, d.platform, d.due_micros))
            .collect();
        let april_1 = APRIL_1 * 1_000_000;
        let april_8 = april_1 + 7 * 86_400 * 1_000_000;
        assert_eq!(
            due,
            [
                (1, DeliverableKind::FeedPost, Platform::Instagram, april_1),
                (2, DeliverableKind::FeedPost, Platform::Instagram, april_1),
                (3, DeliverableKind::Story, Platform::Tiktok, april_8),
            ]
        );
        assert_eq!(t.deliverables()[0].brief, "Show the bottle on a morning run");
    }

    #[test]
    fn cash_releases_split_evenly_and_sum_exactly() {
        let t = Terms::parse(&terms(), "terms").unwrap();
        let minor: Vec<i64> = t.cash_releases().iter().map(|m| m.minor).collect();
        assert_eq!(minor, [8_333, 8_333, 8_334]);
        let no_cash = accepted(|t| comp(t).cash = None);
        let minor: Vec<i64> = no_cash.cash_releases().iter().map(|m| m.minor).collect();
        assert_eq!(minor, [0, 0, 0]);
        assert!(no_cash.cash_releases().iter().all(|m| m.currency.code() == "USD"));
        for cash in [1, 2, 199, 1_000_001] {
            let t = accepted(|t| {
                comp(t).cash = usd(cash);
                t.deliverables[0].count = 7;
            });
            let releases = t.cash_releases();
            assert_eq!(releases.len(), 8);
            assert_eq!(releases.iter().map(|m| m.minor).sum::<i64>(), cash);
            assert!(releases.iter().all(|m| m.minor >= 0));
        }
    }

    #[test]
    fn the_document_form_uses_readable_names_and_reads_back() {
        let t = Terms::parse(&terms(), "terms").unwrap();
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(json["deliverables"][1]["kind"], "story");
        assert_eq!(json["deliverables"][1]["platform"], "tiktok");
        assert_eq!(json["deliverables"][0]["due_time"], "2026-04-01T17:00:00.000000Z");
        assert_eq!(json["usage_rights"]["channels"][0], "organic_social");
        assert_eq!(json["reporting"]["metrics"][1], "engagements");
        assert_eq!(
            json["compensation"]["products"][0]["declared_value"]["amount_minor"],
            3_999
        );
        assert_eq!(serde_json::from_value::<Terms>(json.clone()).unwrap(), t);

        let mut zero = json.clone();
        zero["compensation"]["products"][0]["quantity"] = 0.into();
        let err = serde_json::from_value::<Terms>(zero).unwrap_err().to_string();
        assert!(err.contains("canonical form"), "{err}");
        let mut bad = json;
        bad["grace_days"] = 61.into();
        bad["deliverables"][0]["count"] = 0.into();
        let err = serde_json::from_value::<Terms>(bad).unwrap_err().to_string();
        assert!(err.contains("terms.deliverables[0].count: from 1 to 20"), "{err}");
        assert!(err.contains("terms.grace_days"), "{err}");
    }

    #[test]
    fn vocabularies_map_every_proto_value() {
        for v in 1..=6 {
            assert_eq!(DeliverableKind::from_proto(v).map(|k| k.to_proto() as i32), Some(v));
            assert_eq!(UsageChannel::from_proto(v).map(|c| c.to_proto() as i32), Some(v));
        }
        for v in 1..=8 {
            assert_eq!(Platform::from_proto(v).map(|p| p.to_proto() as i32), Some(v));
        }
        assert_eq!(Platform::from_proto(0), None);
        assert_eq!(Platform::from_proto(9), None);
        assert_eq!(serde_json::to_value(Platform::Youtube).unwrap(), "youtube");
        assert_eq!(serde_json::to_value(UsageChannel::OutOfHome).unwrap(), "out_of_home");
        for m in Metric::ALL {
            assert_eq!(serde_json::to_value(m).unwrap(), m.name());
            assert_eq!(Metric::parse(m.name()), Some(m));
        }
    }
}
