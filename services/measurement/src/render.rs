//! The campaign report for people: proto3 JSON of the `CampaignReport` message, CSV (a row per
//! influencer, then per segment, per tier and the campaign), and a self-contained HTML page
//! with inline SVG charts (results by segment with their intervals, spend against results per
//! influencer, clicks and conversions over time). No scripts and no external assets: the page
//! works offline, from a file, and under a strict Content-Security-Policy.

use std::fmt::Write as _;

use std::sync::LazyLock;

use chorus_kit::error::{Error, ErrorCode};
use chorus_proto::measurement::{CampaignReport, DailyCounts, Figures, TestMetric};
use chorus_proto::types::{Money, Tier};
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
use serde_json::Value;

use crate::domain::attribution::rfc3339;

/// One day of the time chart (days since 1970-01-01).
#[derive(Debug, Clone, Copy)]
struct Day {
    day: i64,
    clicks: i64,
    conversions: i64,
}

fn tier_name(t: i32) -> &'static str {
    Tier::try_from(t).map_or("TIER_UNSPECIFIED", |t| t.as_str_name())
}

/// The report in proto3's JSON mapping (lowerCamelCase names, 64-bit integers as strings, enums
/// by name, timestamps in RFC 3339), printed from the message's descriptor so it follows the
/// proto as it changes. Zeros and empty lists are printed, since a report's zero is a figure;
/// unset messages are left out.
pub fn json(r: &CampaignReport) -> Result<Value, Error> {
    static POOL: LazyLock<Result<DescriptorPool, String>> =
        LazyLock::new(|| DescriptorPool::decode(chorus_proto::FILE_DESCRIPTOR_SET).map_err(|e| e.to_string()));
    let pool = POOL
        .as_ref()
        .map_err(|e| Error::new(ErrorCode::Internal, format!("the descriptor set: {e}")))?;
    let name = <CampaignReport as prost::Name>::full_name();
    let descriptor = pool
        .get_message_by_name(&name)
        .ok_or_else(|| Error::new(ErrorCode::Internal, format!("{name} is not in the descriptor set")))?;
    let message = DynamicMessage::decode(descriptor, prost::Message::encode_to_vec(r).as_slice())
        .map_err(|e| Error::internal("read the report back", e))?;
    message
        .serialize_with_options(
            serde_json::value::Serializer,
            &SerializeOptions::new().skip_default_fields(false),
        )
        .map_err(|e| Error::internal("print the report as JSON", e))
}

/// An amount in major units with the currency's decimals ("1730.00"); empty when unset.
fn decimal(m: &Option<Money>) -> String {
    let Some(m) = m else { return String::new() };
    let per = chorus_catalog::money::Currency::parse(&m.currency_code).map_or(100, |c| c.minor_per_major());
    let places = per.max(1).ilog10() as usize;
    if places == 0 {
        return m.amount_minor.to_string();
    }
    let sign = if m.amount_minor < 0 { "-" } else { "" };
    let a = m.amount_minor.unsigned_abs();
    let per = per.unsigned_abs();
    format!("{sign}{}.{:0places$}", a / per, a % per)
}

const CSV_HEADER: [&str; 26] = [
    "row",
    "name",
    "segment",
    "tier",
    "influencers",
    "deliverables",
    "delivered_on_time",
    "disclosure_compliant",
    "reach",
    "impressions",
    "engagements",
    "engagement_rate",
    "clicks",
    "ctr",
    "redemptions",
    "conversions",
    "currency",
    "revenue",
    "cost",
    "cost_cash",
    "cost_gift_cards",
    "cost_products",
    "cost_per_engagement",
    "cpm",
    "roas",
    "earned_media_value",
];

fn csv_row(kind: &str, name: &str, segment: &str, tier: &str, f: &Figures, currency: &str) -> Vec<String> {
    let mut row = vec![kind.to_owned(), name.to_owned(), segment.to_owned(), tier.to_owned()];
    row.extend(
        [
            f.influencers,
            f.deliverables,
            f.delivered_on_time,
            f.disclosure_compliant,
            f.reach,
            f.impressions,
            f.engagements,
        ]
        .iter()
        .map(i64::to_string),
    );
    row.push(format!("{:.6}", f.engagement_rate));
    row.push(f.clicks.to_string());
    row.push(format!("{:.6}", f.ctr));
    row.push(f.redemptions.to_string());
    row.push(f.conversions.to_string());
    row.push(currency.to_owned());
    for m in [
        &f.revenue,
        &f.cost,
        &f.cost_cash,
        &f.cost_gift_cards,
        &f.cost_products,
        &f.cost_per_engagement,
        &f.cpm,
    ] {
        row.push(decimal(m));
    }
    row.push(format!("{:.4}", f.roas));
    row.push(decimal(&f.earned_media_value));
    row
}

/// One row per influencer, then one per segment, per tier and the campaign's (column `row`
/// says which); money in major units of the report's currency.
pub fn csv(r: &CampaignReport) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_HEADER)?;
    let c = &r.currency_code;
    let empty = Figures::default();
    for i in &r.influencers {
        w.write_record(csv_row(
            "influencer",
            &i.influencer,
            &i.segment,
            tier_name(i.tier),
            i.figures.as_ref().unwrap_or(&empty),
            c,
        ))?;
    }
    for s in &r.segments {
        w.write_record(csv_row(
            "segment",
            &s.segment,
            &s.segment,
            "",
            s.figures.as_ref().unwrap_or(&empty),
            c,
        ))?;
    }
    for t in &r.tiers {
        let name = tier_name(t.tier);
        w.write_record(csv_row("tier", name, "", name, t.figures.as_ref().unwrap_or(&empty), c))?;
    }
    w.write_record(csv_row(
        "campaign",
        &r.campaign,
        "",
        "",
        r.campaign_figures.as_ref().unwrap_or(&empty),
        c,
    ))?;
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Text for HTML and SVG.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const W: f64 = 640.0;
const H: f64 = 260.0;
const PAD: f64 = 48.0;
const COLOURS: [&str; 6] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf"];

/// `v` of 0..max placed on 0..len.
fn scale(v: f64, max: f64, len: f64) -> f64 {
    if max > 0.0 { v / max * len } else { 0.0 }
}

fn percent(v: f64) -> String {
    format!("{:.2}%", v * 100.0)
}

/// Each segment's rate as a dot with its 95% interval as a bar.
fn segment_chart(r: &CampaignReport) -> String {
    let t = r.segment_test.clone().unwrap_or_default();
    let ratio = t.metric != TestMetric::RevenuePerInfluencer as i32;
    let label = |v: f64| if ratio { percent(v) } else { format!("{:.2}", v / 100.0) };
    let rows = t.rates.len().max(1) as f64;
    let height = 40.0 + rows * 36.0;
    let max = t.rates.iter().map(|s| s.ci_high.max(s.rate)).fold(0.0_f64, f64::max) * 1.1;
    let mut s = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" role="img" aria-label="Results by segment"><rect width="100%" height="100%" fill="#ffffff"/>"##
    );
    let left = 140.0;
    let span = W - left - PAD;
    let _ = write!(
        s,
        r##"<line x1="{left}" y1="20" x2="{left}" y2="{}" stroke="#999"/>"##,
        height - 10.0
    );
    for (i, rate) in t.rates.iter().enumerate() {
        let y = 36.0 + i as f64 * 36.0;
        let colour = COLOURS[i % COLOURS.len()];
        let (x0, x1, x) = (
            left + scale(rate.ci_low.max(0.0), max, span),
            left + scale(rate.ci_high.max(0.0), max, span),
            left + scale(rate.rate.max(0.0), max, span),
        );
        let _ = write!(
            s,
            r##"<text x="{}" y="{}" text-anchor="end" font-size="13" font-family="sans-serif">{}</text><line x1="{x0:.1}" y1="{y}" x2="{x1:.1}" y2="{y}" stroke="{colour}" stroke-width="4"/><circle cx="{x:.1}" cy="{y}" r="6" fill="{colour}"/><text x="{:.1}" y="{}" font-size="11" font-family="sans-serif" fill="#333">{} ({} to {})</text>"##,
            left - 8.0,
            y + 4.0,
            esc(&rate.segment),
            x1 + 8.0,
            y + 4.0,
            label(rate.rate),
            label(rate.ci_low),
            label(rate.ci_high),
        );
    }
    s.push_str("</svg>");
    s
}

/// Cost against revenue, one dot per influencer, coloured by segment.
fn spend_chart(r: &CampaignReport) -> String {
    let minor = |m: &Option<Money>| m.as_ref().map_or(0, |m| m.amount_minor) as f64;
    let points: Vec<(f64, f64, &str)> = r
        .influencers
        .iter()
        .filter_map(|i| {
            let f = i.figures.as_ref()?;
            Some((minor(&f.cost), minor(&f.revenue), i.segment.as_str()))
        })
        .collect();
    let max_x = points.iter().map(|p| p.0).fold(0.0, f64::max) * 1.05;
    let max_y = points.iter().map(|p| p.1).fold(0.0, f64::max) * 1.05;
    let segments: Vec<&str> = r.segments.iter().map(|s| s.segment.as_str()).collect();
    let mut s = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" role="img" aria-label="Spend against revenue per influencer"><rect width="100%" height="100%" fill="#ffffff"/><line x1="{PAD}" y1="{}" x2="{}" y2="{}" stroke="#999"/><line x1="{PAD}" y1="10" x2="{PAD}" y2="{}" stroke="#999"/><text x="{}" y="{}" text-anchor="middle" font-size="12" font-family="sans-serif">cost</text><text x="12" y="{}" font-size="12" font-family="sans-serif" transform="rotate(-90 12 {})">revenue</text>"##,
        H - PAD,
        W - 10.0,
        H - PAD,
        H - PAD,
        W / 2.0,
        H - 12.0,
        H / 2.0,
        H / 2.0,
    );
    for (x, y, seg) in &points {
        let colour = segments
            .iter()
            .position(|s| s == seg)
            .map_or("#777777", |i| COLOURS[i % COLOURS.len()]);
        let _ = write!(
            s,
            r#"<circle cx="{:.1}" cy="{:.1}" r="4" fill="{colour}" fill-opacity="0.75"/>"#,
            PAD + scale(*x, max_x, W - PAD - 10.0),
            H - PAD - scale(y.max(0.0), max_y, H - PAD - 10.0),
        );
    }
    for (i, seg) in segments.iter().enumerate() {
        let _ = write!(
            s,
            r#"<circle cx="{}" cy="{}" r="5" fill="{}"/><text x="{}" y="{}" font-size="11" font-family="sans-serif">{}</text>"#,
            PAD + 20.0 + i as f64 * 110.0,
            20.0,
            COLOURS[i % COLOURS.len()],
            PAD + 28.0 + i as f64 * 110.0,
            24.0,
            esc(seg)
        );
    }
    s.push_str("</svg>");
    s
}

/// Clicks and conversions per day, each line on its own scale.
fn time_chart(daily: &[DailyCounts]) -> String {
    let days: Vec<Day> = daily
        .iter()
        .map(|d| Day {
            day: d.day_start_time.as_ref().map_or(0, |t| t.seconds.div_euclid(86_400)),
            clicks: d.clicks,
            conversions: d.conversions,
        })
        .collect();
    let mut s = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" role="img" aria-label="Clicks and conversions over time"><rect width="100%" height="100%" fill="#ffffff"/><line x1="{PAD}" y1="{}" x2="{}" y2="{}" stroke="#999"/>"##,
        H - PAD,
        W - 10.0,
        H - PAD
    );
    if days.is_empty() {
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle" font-size="13" font-family="sans-serif">no clicks or conversions yet</text></svg>"#,
            W / 2.0,
            H / 2.0
        );
        return s;
    }
    let (first, last) = (days[0].day, days[days.len() - 1].day);
    let span = (last - first).max(1) as f64;
    let x = |d: i64| {
        if last == first {
            W / 2.0
        } else {
            PAD + (d - first) as f64 / span * (W - PAD - 20.0)
        }
    };
    for (series, colour, name) in [(0, COLOURS[0], "clicks"), (1, COLOURS[1], "conversions")] {
        let value = |d: &Day| (if series == 0 { d.clicks } else { d.conversions }) as f64;
        let max = days.iter().map(value).fold(0.0, f64::max);
        let pts: Vec<String> = days
            .iter()
            .map(|d| format!("{:.1},{:.1}", x(d.day), H - PAD - scale(value(d), max, H - PAD - 30.0)))
            .collect();
        let _ = write!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#,
            pts.join(" ")
        );
        for p in &pts {
            if let Some((cx, cy)) = p.split_once(',') {
                let _ = write!(s, r#"<circle cx="{cx}" cy="{cy}" r="3" fill="{colour}"/>"#);
            }
        }
        let _ = write!(
            s,
            r#"<text x="{}" y="18" font-size="11" font-family="sans-serif" fill="{colour}">{name} (max {max})</text>"#,
            PAD + 10.0 + f64::from(series) * 160.0
        );
    }
    let day_label = |d: i64| rfc3339(d * 86_400_000_000).chars().take(10).collect::<String>();
    let _ = write!(
        s,
        r#"<text x="{PAD}" y="{}" font-size="11" font-family="sans-serif">{}</text><text x="{}" y="{}" text-anchor="end" font-size="11" font-family="sans-serif">{}</text></svg>"#,
        H - PAD + 16.0,
        day_label(first),
        W - 20.0,
        H - PAD + 16.0,
        day_label(last)
    );
    s
}

fn figures_table(rows: &[(String, &Figures)]) -> String {
    let mut s = String::from(
        "<table><thead><tr><th></th><th>influencers</th><th>on time</th><th>disclosed</th><th>reach</th><th>impressions</th><th>engagements</th><th>clicks</th><th>CTR</th><th>conversions</th><th>revenue</th><th>cost</th><th>CPM</th><th>ROAS</th><th>earned media</th></tr></thead><tbody>",
    );
    for (name, f) in rows {
        let _ = write!(
            s,
            "<tr><th>{}</th><td>{}</td><td>{}/{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{}</td></tr>",
            esc(name),
            f.influencers,
            f.delivered_on_time,
            f.deliverables,
            f.disclosure_compliant,
            f.reach,
            f.impressions,
            f.engagements,
            f.clicks,
            percent(f.ctr),
            f.conversions,
            decimal(&f.revenue),
            decimal(&f.cost),
            decimal(&f.cpm),
            f.roas,
            decimal(&f.earned_media_value),
        );
    }
    s.push_str("</tbody></table>");
    s
}

/// The page: the headline sentence, three charts and the figures' tables.
pub fn html(r: &CampaignReport) -> String {
    let t = r.segment_test.clone().unwrap_or_default();
    let empty = Figures::default();
    let campaign = r.campaign_figures.as_ref().unwrap_or(&empty);
    let segments: Vec<(String, &Figures)> = r
        .segments
        .iter()
        .map(|s| (s.segment.clone(), s.figures.as_ref().unwrap_or(&empty)))
        .chain(std::iter::once(("campaign".to_owned(), campaign)))
        .collect();
    let influencers: Vec<(String, &Figures)> = r
        .influencers
        .iter()
        .map(|i| {
            (
                format!("{} ({})", i.influencer.trim_start_matches("influencers/"), i.segment),
                i.figures.as_ref().unwrap_or(&empty),
            )
        })
        .collect();
    let metric = TestMetric::try_from(t.metric).map_or("", |m| m.as_str_name());
    let through = r
        .data_through_time
        .as_ref()
        .map(|t| rfc3339(chorus_kit::clock::micros(t)))
        .unwrap_or_default();
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>Campaign report: {campaign_name}</title>
<style>body{{font-family:sans-serif;margin:24px;color:#222;background:#fff}}h1{{font-size:20px}}h2{{font-size:16px;margin-top:28px}}.headline{{font-size:17px;padding:12px;background:#f3f6fa;border-left:4px solid #1f77b4}}table{{border-collapse:collapse;font-size:12px}}td,th{{border:1px solid #ddd;padding:3px 6px;text-align:right}}tbody th{{text-align:left}}.note{{color:#555;font-size:12px}}</style>
</head><body>
<h1>Campaign report: {campaign_name}</h1>
<p class="note">Data through {through}. Money in {currency}. Earned media value priced with rate card {card}, shown apart and never added to revenue.</p>
<p class="headline">{sentence}</p>
<h2>Results by segment ({metric}, 95% intervals)</h2>
{segment_chart}
<h2>Spend against revenue per influencer</h2>
{spend_chart}
<h2>Clicks and conversions over time</h2>
{time_chart}
<h2>Segments</h2>
{segment_table}
<h2>Influencers</h2>
{influencer_table}
</body></html>
"#,
        campaign_name = esc(&r.campaign),
        through = esc(&through),
        currency = esc(&r.currency_code),
        card = esc(&r.rate_card_version),
        sentence = esc(&t.sentence),
        metric = esc(metric),
        segment_chart = segment_chart(r),
        spend_chart = spend_chart(r),
        time_chart = time_chart(&r.daily),
        segment_table = figures_table(&segments),
        influencer_table = figures_table(&influencers),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_the_proto3_mapping_with_zeros_printed() {
        let r = CampaignReport {
            campaign: "campaigns/0190a0b0-0000-7000-8000-000000000001".into(),
            campaign_figures: Some(Figures {
                clicks: 1200,
                ctr: 0.25,
                ..Default::default()
            }),
            daily: vec![DailyCounts {
                day_start_time: Some(prost_types::Timestamp {
                    seconds: 86_400,
                    nanos: 0,
                }),
                clicks: 3,
                conversions: 0,
            }],
            ..Default::default()
        };
        let v = json(&r).unwrap();
        assert_eq!(v["campaign"], r.campaign);
        assert_eq!(v["campaignFigures"]["clicks"], "1200", "int64 as a string");
        assert_eq!(v["campaignFigures"]["ctr"], 0.25);
        assert_eq!(v["campaignFigures"]["conversions"], "0", "a zero is a figure");
        assert!(
            v["campaignFigures"].get("revenue").is_none(),
            "unset messages are left out"
        );
        assert!(v.get("segmentTest").is_none());
        assert_eq!(v["daily"][0]["dayStartTime"], "1970-01-02T00:00:00Z");
        assert_eq!(v["influencers"], serde_json::json!([]));
    }

    #[test]
    fn amounts_print_in_major_units() {
        let m = |c: &str, minor: i64| {
            Some(Money {
                currency_code: c.into(),
                amount_minor: minor,
            })
        };
        assert_eq!(decimal(&m("USD", 173_000)), "1730.00");
        assert_eq!(decimal(&m("USD", -5)), "-0.05");
        assert_eq!(decimal(&m("JPY", 1_234)), "1234");
        assert_eq!(decimal(&None), "");
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            esc(r#"<b>"Tom's" & co</b>"#),
            "&lt;b&gt;&quot;Tom&#39;s&quot; &amp; co&lt;/b&gt;"
        );
    }
}
