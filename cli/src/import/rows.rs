//! Reading an import file into influencers: CSV or JSON lines, one row per influencer with one
//! account and optional metrics. A row that does not parse becomes a `BadRow` with its line
//! number and field violations; it never stops the rows after it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Read};
use std::path::Path;

use chorus_proto::registry::{
    Consent, Contact, Influencer, InfluencerStatus, MetricsSnapshot, RateCardEntry, SocialAccount,
};
use chorus_proto::types::{CompensationKind, DeliverableKind, Location, Money, Platform};
use serde_json::Value;

use crate::error::{Result, Violation};
use crate::vocab;

/// Metrics in an import file cover this many days.
const WINDOW_DAYS: i32 = 30;

const RATE_COLUMNS: [(&str, DeliverableKind); 3] = [
    ("rate_post_minor", DeliverableKind::FeedPost),
    ("rate_story_minor", DeliverableKind::Story),
    ("rate_video_minor", DeliverableKind::Video),
];

const METRIC_COLUMNS: [&str; 7] = [
    "followers",
    "following",
    "posts",
    "window_posts",
    "window_likes",
    "window_comments",
    "window_sponsored_posts",
];

const PROFILE_COLUMNS: [&str; 13] = [
    "display_name",
    "platform",
    "handle",
    "url",
    "niches",
    "country",
    "region",
    "city",
    "languages",
    "currency",
    "compensation",
    "email",
    "status",
];

/// A row ready to send.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub(crate) line: u64,
    pub(crate) influencer: Influencer,
    pub(crate) metrics: Option<MetricsSnapshot>,
}

/// A row that could not be parsed here.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BadRow {
    pub(crate) line: u64,
    pub(crate) message: String,
    pub(crate) violations: Vec<Violation>,
}

/// Everything read from one file.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub(crate) rows: Vec<Row>,
    pub(crate) bad: Vec<BadRow>,
    /// Columns or keys that mean nothing to the import; their values are ignored.
    pub(crate) unknown_fields: BTreeSet<String>,
}

/// Reads `path` as CSV or JSON lines, by its extension.
pub(crate) fn read(path: &Path) -> Result<Parsed> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let file = std::fs::File::open(path).map_err(|e| format!("open {}: {e}", path.display()))?;
    match extension.as_str() {
        "csv" => parse_csv(file),
        "jsonl" | "ndjson" | "json" => parse_json_lines(std::io::BufReader::new(file)),
        _ => Err(format!(
            "cannot tell the format of {}: name it .csv, .jsonl, .ndjson or .json",
            path.display()
        )
        .into()),
    }
}

/// A raw value: CSV cells are text; JSON may also give arrays.
#[derive(Debug)]
enum Raw {
    Text(String),
    List(Vec<String>),
}

/// The fields of one row, keyed by lower-case column name.
#[derive(Debug, Default)]
struct Fields(BTreeMap<String, Raw>);

pub(crate) fn parse_csv(reader: impl Read) -> Result<Parsed> {
    let mut csv = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(reader);
    let header: Vec<String> = csv
        .headers()
        .map_err(|e| format!("read the CSV header: {e}"))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').trim().to_ascii_lowercase())
        .collect();
    let mut parsed = Parsed::default();
    note_unknown(&mut parsed.unknown_fields, header.iter());
    let mut record = csv::StringRecord::new();
    loop {
        let line = csv.position().line();
        match csv.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map_or(line, csv::Position::line);
                let fields = Fields(
                    header
                        .iter()
                        .zip(record.iter())
                        .map(|(h, v)| (h.clone(), Raw::Text(v.to_owned())))
                        .collect(),
                );
                parsed.push(line, fields.into_row());
            }
            Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => return Err(e.into()),
            Err(e) => {
                let line = e.position().map_or(line, csv::Position::line);
                parsed.bad.push(BadRow {
                    line,
                    message: csv_message(&e),
                    violations: Vec::new(),
                });
            }
        }
    }
    Ok(parsed)
}

fn csv_message(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("row has {len} fields, the header has {expected_len}")
        }
        csv::ErrorKind::Utf8 { .. } => "row is not valid UTF-8".to_owned(),
        _ => e.to_string(),
    }
}

pub(crate) fn parse_json_lines(mut reader: impl BufRead) -> Result<Parsed> {
    let mut parsed = Parsed::default();
    let mut buf = Vec::new();
    let mut line = 0;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        line += 1;
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Value>(&buf) {
            Ok(Value::Object(map)) => {
                note_unknown(&mut parsed.unknown_fields, map.keys());
                let fields = map
                    .into_iter()
                    .filter_map(|(k, v)| json_raw(v).map(|raw| (k.to_ascii_lowercase(), raw)));
                parsed.push(line, Fields(fields.collect()).into_row());
            }
            Ok(other) => parsed.bad.push(BadRow {
                line,
                message: format!(
                    "expected one JSON object per line, found {}",
                    if other.is_array() { "an array" } else { "a plain value" }
                ),
                violations: Vec::new(),
            }),
            Err(e) => parsed.bad.push(BadRow {
                line,
                message: json_message(&e),
                violations: Vec::new(),
            }),
        }
    }
    Ok(parsed)
}

/// serde's message with the column instead of "line 1": the row already names its line.
fn json_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let what = text.split(" at line ").next().unwrap_or(&text);
    format!("not JSON: {what} at column {}", e.column())
}

/// JSON values as raw text; null means absent. Nested objects are kept as text so that the
/// field's parser reports them.
fn json_raw(value: Value) -> Option<Raw> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(Raw::Text(s)),
        Value::Array(items) => Some(Raw::List(
            items
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                })
                .collect(),
        )),
        other => Some(Raw::Text(other.to_string())),
    }
}

fn note_unknown<'a>(unknown: &mut BTreeSet<String>, names: impl Iterator<Item = &'a String>) {
    let known = |n: &str| {
        PROFILE_COLUMNS.contains(&n) || METRIC_COLUMNS.contains(&n) || RATE_COLUMNS.iter().any(|(c, _)| *c == n)
    };
    unknown.extend(names.map(|n| n.to_ascii_lowercase()).filter(|n| !known(n)));
}

impl Parsed {
    fn push(&mut self, line: u64, row: Result<(Influencer, Option<MetricsSnapshot>), Vec<Violation>>) {
        match row {
            Ok((influencer, metrics)) => self.rows.push(Row {
                line,
                influencer,
                metrics,
            }),
            Err(violations) => self.bad.push(BadRow {
                line,
                message: "invalid row".to_owned(),
                violations,
            }),
        }
    }
}

impl Fields {
    /// Trimmed text, None when absent or blank.
    fn text(&self, key: &str) -> Option<String> {
        match self.0.get(key)? {
            Raw::Text(s) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
            Raw::List(items) => Some(items.join(";")).filter(|s| !s.is_empty()),
        }
    }

    /// A list: a JSON array, or text separated by ";".
    fn list(&self, key: &str) -> Vec<String> {
        let items: Vec<String> = match self.0.get(key) {
            None => Vec::new(),
            Some(Raw::Text(s)) => s.split(';').map(str::to_owned).collect(),
            Some(Raw::List(items)) => items.clone(),
        };
        items
            .into_iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// A non-negative whole number, None when absent.
    fn count(&self, key: &str, errors: &mut Vec<Violation>) -> Option<i64> {
        let text = self.text(key)?;
        match text.parse::<i64>() {
            Ok(n) if n >= 0 => Some(n),
            _ => {
                errors.push(Violation::new(key, format!("\"{text}\" is not a whole number >= 0")));
                None
            }
        }
    }

    fn required(&self, key: &str, errors: &mut Vec<Violation>) -> String {
        self.text(key).unwrap_or_else(|| {
            errors.push(Violation::new(key, "required"));
            String::new()
        })
    }

    fn into_row(self) -> Result<(Influencer, Option<MetricsSnapshot>), Vec<Violation>> {
        let mut errors = Vec::new();
        let display_name = self.required("display_name", &mut errors);
        let platform = match self.text("platform") {
            None => {
                errors.push(Violation::new("platform", "required"));
                Platform::Unspecified
            }
            Some(p) => vocab::parse::<Platform>(&p).unwrap_or_else(|e| {
                errors.push(Violation::new("platform", e));
                Platform::Unspecified
            }),
        };
        let handle = self.required("handle", &mut errors);
        let handle = handle.trim_start_matches('@').to_ascii_lowercase();
        if handle.chars().any(char::is_whitespace) {
            errors.push(Violation::new("handle", "must not contain spaces"));
        }
        let url = self.text("url").unwrap_or_default();
        if !(url.is_empty() || url.starts_with("https://") || url.starts_with("http://")) {
            errors.push(Violation::new("url", "must start with https:// or http://"));
        }
        let country_code = self.text("country").unwrap_or_default().to_ascii_uppercase();
        if !(country_code.is_empty() || is_letters(&country_code, 2)) {
            errors.push(Violation::new(
                "country",
                "must be an ISO 3166-1 alpha-2 code such as US",
            ));
        }
        let currency = self
            .text("currency")
            .unwrap_or_else(|| "USD".to_owned())
            .to_ascii_uppercase();
        if !is_letters(&currency, 3) {
            errors.push(Violation::new("currency", "must be an ISO 4217 code such as USD"));
        }
        let rate_card = RATE_COLUMNS
            .iter()
            .filter_map(|(column, kind)| {
                let amount_minor = self.count(column, &mut errors)?;
                Some(RateCardEntry {
                    kind: *kind as i32,
                    price: Some(Money {
                        currency_code: currency.clone(),
                        amount_minor,
                    }),
                })
            })
            .collect();
        let compensation_accepted = self
            .list("compensation")
            .iter()
            .filter_map(|k| {
                vocab::parse::<CompensationKind>(k)
                    .map_err(|e| errors.push(Violation::new("compensation", e)))
                    .ok()
            })
            .map(i32::from)
            .collect();
        let email = self.text("email").unwrap_or_default();
        if !email.is_empty() && !email.contains('@') {
            errors.push(Violation::new("email", "is not an email address"));
        }
        // blank leaves the status to the server rather than forcing one here
        let status = self.text("status").map_or(InfluencerStatus::Unspecified, |s| {
            vocab::parse::<InfluencerStatus>(&s).unwrap_or_else(|e| {
                errors.push(Violation::new("status", e));
                InfluencerStatus::Unspecified
            })
        });
        let metrics = self.metrics(platform, &handle, &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        let influencer = Influencer {
            display_name,
            accounts: vec![SocialAccount {
                platform: platform as i32,
                handle,
                url,
                metrics: None,
                vetting: None,
            }],
            niches: self.list("niches").iter().map(|n| n.to_ascii_lowercase()).collect(),
            location: Some(Location {
                country_code,
                region: self.text("region").unwrap_or_default(),
                city: self.text("city").unwrap_or_default(),
            }),
            languages: self.list("languages"),
            rate_card,
            compensation_accepted,
            contact: (!email.is_empty()).then(|| Contact {
                email,
                phone: String::new(),
            }),
            consent: None::<Consent>,
            status: status as i32,
            ..Default::default()
        };
        Ok((influencer, metrics))
    }

    /// A snapshot when any metrics column is filled; followers is then required.
    fn metrics(&self, platform: Platform, handle: &str, errors: &mut Vec<Violation>) -> Option<MetricsSnapshot> {
        if METRIC_COLUMNS.iter().all(|c| self.text(c).is_none()) {
            return None;
        }
        let mut count = |key: &str| self.count(key, errors).unwrap_or_default();
        let snapshot = MetricsSnapshot {
            platform: platform as i32,
            handle: handle.to_owned(),
            observe_time: Some(std::time::SystemTime::now().into()),
            followers: count("followers"),
            following: count("following"),
            posts: count("posts"),
            window_days: WINDOW_DAYS,
            window_posts: count("window_posts"),
            window_likes: count("window_likes"),
            window_comments: count("window_comments"),
            window_sponsored_posts: count("window_sponsored_posts"),
            window_reach: None,
            window_impressions: None,
        };
        if self.text("followers").is_none() {
            errors.push(Violation::new("followers", "required when other metrics are given"));
        }
        if snapshot.window_sponsored_posts > snapshot.window_posts {
            errors.push(Violation::new("window_sponsored_posts", "must not exceed window_posts"));
        }
        Some(snapshot)
    }
}

/// Exactly `n` ASCII letters, as in country and currency codes.
fn is_letters(code: &str, n: usize) -> bool {
    code.len() == n && code.chars().all(|c| c.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "\
display_name,platform,handle,url,niches,country,region,city,languages,rate_post_minor,rate_story_minor,rate_video_minor,currency,compensation,email,status,followers,window_posts,window_likes,window_comments
Maya Lopez,instagram,@MayaEats,https://instagram.com/mayaeats,food;vegan-food,us,TX,Austin,en;es,10000,4300,11400,,cash;gift_card,maya@example.com,active,4200,12,3000,150
Bad Row,myspace,,,,USA,,,,-5,,,,barter,,,,,,
Tom,tiktok,tomtech,,tech,GB,ENG,London,en,,,,GBP,product,,,,,,
";

    #[test]
    fn csv_rows_parse_into_influencers_and_snapshots() {
        let parsed = parse_csv(CSV.as_bytes()).unwrap();
        assert_eq!(parsed.rows.len(), 2);
        let maya = &parsed.rows[0];
        assert_eq!(maya.line, 2);
        let i = &maya.influencer;
        assert_eq!(i.display_name, "Maya Lopez");
        assert_eq!(i.accounts[0].platform, Platform::Instagram as i32);
        assert_eq!(i.accounts[0].handle, "mayaeats");
        assert_eq!(i.niches, ["food", "vegan-food"]);
        assert_eq!(i.languages, ["en", "es"]);
        let location = i.location.as_ref().unwrap();
        assert_eq!(
            (location.country_code.as_str(), location.city.as_str()),
            ("US", "Austin")
        );
        assert_eq!(i.rate_card.len(), 3);
        assert_eq!(i.rate_card[1].kind, DeliverableKind::Story as i32);
        assert_eq!(i.rate_card[1].price.as_ref().unwrap().amount_minor, 4300);
        assert_eq!(i.rate_card[1].price.as_ref().unwrap().currency_code, "USD");
        assert_eq!(
            i.compensation_accepted,
            [CompensationKind::Cash as i32, CompensationKind::GiftCard as i32]
        );
        assert_eq!(i.status, InfluencerStatus::Active as i32);
        let m = maya.metrics.as_ref().unwrap();
        assert_eq!(
            (m.followers, m.window_posts, m.window_likes, m.window_days),
            (4200, 12, 3000, 30)
        );
        assert_eq!(m.handle, "mayaeats");

        let tom = &parsed.rows[1];
        assert_eq!(tom.line, 4);
        assert!(tom.metrics.is_none());
        assert_eq!(tom.influencer.status, InfluencerStatus::Unspecified as i32);
        assert!(tom.influencer.rate_card.is_empty());
    }

    #[test]
    fn a_bad_csv_row_is_reported_with_its_line_and_fields() {
        let parsed = parse_csv(CSV.as_bytes()).unwrap();
        assert_eq!(parsed.bad.len(), 1);
        let bad = &parsed.bad[0];
        assert_eq!(bad.line, 3);
        let fields: Vec<&str> = bad.violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            ["platform", "handle", "country", "rate_post_minor", "compensation"]
        );
    }

    #[test]
    fn a_short_csv_record_fails_alone() {
        let text = "display_name,platform,handle\nA,instagram,a\nB,instagram\nC,tiktok,c\n";
        let parsed = parse_csv(text.as_bytes()).unwrap();
        assert_eq!(parsed.rows.iter().map(|r| r.line).collect::<Vec<_>>(), [2, 4]);
        assert_eq!(parsed.bad[0].line, 3);
        assert!(parsed.bad[0].message.contains("2 fields"), "{}", parsed.bad[0].message);
    }

    #[test]
    fn metrics_need_followers_and_unknown_columns_are_noted() {
        let text = "display_name,platform,handle,window_posts,notes\nA,instagram,a,10,hi\n";
        let parsed = parse_csv(text.as_bytes()).unwrap();
        assert_eq!(parsed.bad[0].violations[0].field, "followers");
        assert_eq!(parsed.unknown_fields.iter().collect::<Vec<_>>(), ["notes"]);
    }

    #[test]
    fn json_lines_accept_arrays_and_report_bad_lines() {
        let text = r#"{"display_name":"Ana","platform":"youtube","handle":"ana","niches":["travel","food"],"languages":["es"],"compensation":["product"],"followers":1500,"window_posts":4}

not json
[1,2]
{"display_name":"Bo","platform":"instagram","handle":"bo","followers":-1}
{"display_name":"Cy","platform":"tiktok","handle":"cy","niches":"diy;art","rate_post_minor":2500}
"#;
        let parsed = parse_json_lines(text.as_bytes()).unwrap();
        assert_eq!(parsed.rows.len(), 2);
        let ana = &parsed.rows[0].influencer;
        assert_eq!(ana.niches, ["travel", "food"]);
        assert_eq!(ana.compensation_accepted, [CompensationKind::Product as i32]);
        assert_eq!(parsed.rows[0].metrics.as_ref().unwrap().followers, 1500);
        assert_eq!(parsed.rows[1].line, 6);
        assert_eq!(parsed.rows[1].influencer.niches, ["diy", "art"]);
        let bad: Vec<u64> = parsed.bad.iter().map(|b| b.line).collect();
        assert_eq!(bad, [3, 4, 5]);
        assert_eq!(parsed.bad[0].message, "not JSON: expected ident at column 2");
        assert!(parsed.bad[1].message.contains("an array"));
        assert_eq!(parsed.bad[2].violations[0].field, "followers");
    }
}
