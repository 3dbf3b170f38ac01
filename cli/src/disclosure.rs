//! `chorus disclosure check "caption" --jurisdiction US --connection free-product`: whether a
//! caption, story or video discloses its ad as the jurisdiction's rules require, finding by
//! finding with the text each rests on, the guidance and the fix.
//! `chorus disclosure rules`: the rule sets the contracts service knows.
//!
//! ```text
//! chorus disclosure check "Loving these shoes #running #fitness #ad #marathon" \
//!   --jurisdiction US --connection cash --brand Voltra
//! chorus disclosure check "" --jurisdiction GB --connection free-product --kind story \
//!   --frame "Ad: new shoes" --frame "look at the grip"
//! chorus disclosure check "Unboxing" --jurisdiction FR --connection cash --kind video --spoken --on-screen --at-start
//! ```

use chorus_proto::contracts::{
    CheckDisclosureRequest, CheckDisclosureResponse, Connection, Finding, ListRuleSetsRequest, Media, Prominence,
    RuleSet, Severity, Span, Verdict, VideoDisclosure,
};
use chorus_proto::types::{DeliverableKind, Platform};
use serde_json::{Value, json};

use crate::client::ConnectArgs;
use crate::error::Result;
use crate::output::{self, enum_json};
use crate::vocab;

#[derive(clap::Subcommand, Debug)]
pub(crate) enum Command {
    /// Check a caption (or story frames, or a video) against a jurisdiction's disclosure rules.
    Check(Box<CheckArgs>),
    /// The rule sets: jurisdiction, language, version, sources and labels.
    Rules,
}

#[derive(clap::Args, Debug)]
pub(crate) struct CheckArgs {
    /// The caption, description or transcript (may be empty for a story given by --frame).
    text: String,
    /// ISO 3166-1 country whose rules apply: US, GB, DE, FR, ES.
    #[arg(long)]
    jurisdiction: String,
    /// ISO 639-1 language of the text ("en", "de"); detected when absent.
    #[arg(long, default_value = "")]
    language: String,
    /// A material connection: cash, gift-card, free-product, hosted-experience, affiliate,
    /// discount-code, contest-entry, family-or-friend, employment, ownership. None: nothing to
    /// disclose.
    #[arg(long = "connection", value_parser = vocab::parse::<Connection>)]
    connections: Vec<Connection>,
    /// Where it is posted; decides how much shows before "more".
    #[arg(long, default_value = "instagram", value_parser = vocab::parse::<Platform>)]
    platform: Platform,
    /// A brand name or handle ("Voltra", "@voltra"), to recognise brand-named tags.
    #[arg(long = "brand")]
    brands: Vec<String>,
    /// The brand asked for the post, approved it or controlled what it says.
    #[arg(long)]
    conditions: bool,
    /// The platform's paid-partnership label was switched on.
    #[arg(long)]
    platform_label: bool,
    /// feed-post (default), story, video, short-video, blog-post or live-stream.
    #[arg(long, value_parser = vocab::parse::<DeliverableKind>)]
    kind: Option<DeliverableKind>,
    /// The text of a story frame, in order (repeat for each frame).
    #[arg(long = "frame")]
    frames: Vec<String>,
    /// Video: the disclosure is said aloud.
    #[arg(long)]
    spoken: bool,
    /// Video: the disclosure is shown on screen.
    #[arg(long)]
    on_screen: bool,
    /// Video: it is said or shown at the start.
    #[arg(long)]
    at_start: bool,
    /// Video: it is repeated through the video or stream.
    #[arg(long)]
    repeated: bool,
    /// Video: how the on-screen label looks: clear or small-or-low-contrast.
    #[arg(long, value_parser = vocab::parse::<Prominence>)]
    prominence: Option<Prominence>,
}

impl CheckArgs {
    fn request(&self) -> CheckDisclosureRequest {
        let video = matches!(
            self.kind,
            Some(DeliverableKind::Video | DeliverableKind::ShortVideo | DeliverableKind::LiveStream)
        )
        .then(|| VideoDisclosure {
            spoken: self.spoken,
            on_screen: self.on_screen,
            at_start: self.at_start,
            repeated: self.repeated,
            prominence: self.prominence.map_or(0, |p| p as i32),
        });
        let media = (self.kind.is_some() || !self.frames.is_empty()).then(|| Media {
            kind: self.kind.unwrap_or(if self.frames.is_empty() {
                DeliverableKind::FeedPost
            } else {
                DeliverableKind::Story
            }) as i32,
            frames: self.frames.clone(),
            video,
        });
        CheckDisclosureRequest {
            text: self.text.clone(),
            platform: self.platform as i32,
            jurisdiction: self.jurisdiction.trim().to_ascii_uppercase(),
            language: self.language.trim().to_ascii_lowercase(),
            connections: self.connections.iter().map(|c| *c as i32).collect(),
            conditions_attached: self.conditions,
            brand_names: self.brands.clone(),
            platform_label_used: self.platform_label,
            media,
        }
    }
}

pub(crate) async fn run(command: Command, connect: &ConnectArgs, json: bool) -> Result<()> {
    let mut client = connect.disclosure().await?;
    match command {
        Command::Check(args) => {
            let response = client.check_disclosure(args.request()).await?.into_inner();
            if json {
                output::print_json(&check_json(&response))?;
            } else {
                for line in render_check(&response) {
                    outln!("{line}");
                }
            }
        }
        Command::Rules => {
            let sets = client
                .list_rule_sets(ListRuleSetsRequest {})
                .await?
                .into_inner()
                .rule_sets;
            if json {
                output::print_json(&Value::Array(sets.iter().map(rule_set_json).collect()))?;
            } else {
                for line in render_rule_sets(&sets) {
                    outln!("{line}");
                }
            }
        }
    }
    Ok(())
}

fn verdict_label(v: i32) -> &'static str {
    match Verdict::try_from(v) {
        Ok(Verdict::Compliant) => "COMPLIANT",
        Ok(Verdict::NonCompliant) => "NON-COMPLIANT",
        Ok(Verdict::NeedsReview) => "NEEDS REVIEW",
        _ => "UNKNOWN",
    }
}

fn severity_label(s: i32) -> &'static str {
    match Severity::try_from(s) {
        Ok(Severity::Violation) => "VIOLATION",
        Ok(Severity::Warning) => "WARNING",
        Ok(Severity::Note) => "NOTE",
        _ => "FINDING",
    }
}

/// `"#ad" at 130..133` or `"Look at the grip" in frames[1] at 0..16`.
fn span_label(s: &Span) -> String {
    let place = if s.field.is_empty() {
        String::new()
    } else {
        format!(" in {}", s.field)
    };
    format!("{:?}{place} at {}..{}", s.quote, s.start, s.end)
}

/// The verdict, then each finding: severity, rule, the quoted span with its position, the
/// reason, the fix and the guidance.
pub(crate) fn render_check(r: &CheckDisclosureResponse) -> Vec<String> {
    let detected = if r.language_detected { ", detected" } else { "" };
    let mut out = vec![
        format!("verdict: {}", verdict_label(r.verdict)),
        format!(
            "rule set {} (version {}), language {}{detected}; {} characters show before \"more\"",
            r.rule_set, r.rule_set_version, r.language, r.visible_chars
        ),
    ];
    for f in &r.findings {
        out.push(String::new());
        out.push(finding_heading(f));
        out.push(format!("  why: {}", f.reason));
        if !f.suggestion.is_empty() {
            out.push(format!("  fix: {}", f.suggestion));
        }
        if !f.citation.is_empty() {
            out.push(format!("  see: {}", f.citation));
        }
    }
    if !r.labels.is_empty() {
        out.push(String::new());
        let labels: Vec<String> = r.labels.iter().map(span_label).collect();
        out.push(format!("labels found: {}", labels.join(", ")));
    }
    out
}

fn finding_heading(f: &Finding) -> String {
    let span = f
        .span
        .as_ref()
        .map(|s| format!("  {}", span_label(s)))
        .unwrap_or_default();
    format!("{:<9}  {}{span}", severity_label(f.severity), f.rule_id)
}

fn span_json(s: &Span) -> Value {
    json!({"field": s.field, "start": s.start, "end": s.end, "quote": s.quote})
}

fn check_json(r: &CheckDisclosureResponse) -> Value {
    json!({
        "verdict": enum_json::<Verdict>(r.verdict),
        "rule_set": r.rule_set,
        "rule_set_version": r.rule_set_version,
        "language": r.language,
        "language_detected": r.language_detected,
        "visible_chars": r.visible_chars,
        "findings": r.findings.iter().map(|f| json!({
            "rule_id": f.rule_id,
            "severity": enum_json::<Severity>(f.severity),
            "span": f.span.as_ref().map(span_json),
            "reason": f.reason,
            "citation": f.citation,
            "suggestion": f.suggestion,
        })).collect::<Vec<_>>(),
        "labels": r.labels.iter().map(span_json).collect::<Vec<_>>(),
    })
}

fn rule_set_json(s: &RuleSet) -> Value {
    json!({
        "name": s.name, "jurisdiction": s.jurisdiction, "language": s.language, "version": s.version,
        "sources": s.sources, "labels": s.labels, "ambiguous_labels": s.ambiguous_labels,
    })
}

/// One block per rule set: its name and version, its sources, its labels.
pub(crate) fn render_rule_sets(sets: &[RuleSet]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, s) in sets.iter().enumerate() {
        if i > 0 {
            out.push(String::new());
        }
        out.push(format!(
            "{}  ({} {}, version {})",
            s.name, s.jurisdiction, s.language, s.version
        ));
        for source in &s.sources {
            out.push(format!("  source:    {source}"));
        }
        out.push(format!("  labels:    {}", s.labels.join(", ")));
        out.push(format!("  not alone: {}", s.ambiguous_labels.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[test]
    fn flags_build_the_request() {
        let cli = Cli::try_parse_from([
            "chorus",
            "check",
            "Loving these",
            "--jurisdiction",
            "gb",
            "--connection",
            "free-product",
            "--connection",
            "cash",
            "--brand",
            "Voltra",
            "--conditions",
            "--platform-label",
            "--kind",
            "story",
            "--frame",
            "Ad: one",
            "--frame",
            "two",
        ])
        .unwrap();
        let Command::Check(args) = cli.command else {
            panic!("check")
        };
        let r = args.request();
        assert_eq!(r.jurisdiction, "GB");
        assert_eq!(r.connections, [Connection::FreeProduct as i32, Connection::Cash as i32]);
        assert!(r.conditions_attached && r.platform_label_used);
        assert_eq!(r.platform, Platform::Instagram as i32);
        let media = r.media.unwrap();
        assert_eq!(media.kind, DeliverableKind::Story as i32);
        assert_eq!(media.frames, ["Ad: one", "two"]);
        assert!(media.video.is_none());
    }

    #[test]
    fn video_flags_describe_the_video() {
        let cli = Cli::try_parse_from([
            "chorus",
            "check",
            "x",
            "--jurisdiction",
            "US",
            "--kind",
            "live-stream",
            "--spoken",
            "--at-start",
            "--prominence",
            "small-or-low-contrast",
        ])
        .unwrap();
        let Command::Check(args) = cli.command else {
            panic!("check")
        };
        let v = args.request().media.unwrap().video.unwrap();
        assert!(v.spoken && v.at_start && !v.on_screen && !v.repeated);
        assert_eq!(v.prominence, Prominence::SmallOrLowContrast as i32);
    }

    #[test]
    fn a_check_prints_the_verdict_and_each_finding_with_its_span() {
        let response = CheckDisclosureResponse {
            verdict: Verdict::NonCompliant as i32,
            rule_set: "US-en".into(),
            rule_set_version: "2026-11-27".into(),
            language: "en".into(),
            language_detected: true,
            visible_chars: 125,
            findings: vec![
                Finding {
                    rule_id: "label.buried".into(),
                    severity: Severity::Violation as i32,
                    span: Some(Span {
                        field: String::new(),
                        start: 19,
                        end: 47,
                        quote: "#running #fitness #ad #shoes".into(),
                    }),
                    reason: "FTC Disclosures 101: a disclosure buried in a group of hashtags is easy to miss".into(),
                    citation: "FTC, Disclosures 101 for Social Media Influencers (2019, rev. 2023)".into(),
                    suggestion: "put #ad at the start".into(),
                },
                Finding {
                    rule_id: "story.frame_unlabelled".into(),
                    severity: Severity::Warning as i32,
                    span: Some(Span {
                        field: "frames[1]".into(),
                        start: 0,
                        end: 3,
                        quote: "two".into(),
                    }),
                    reason: "r".into(),
                    citation: String::new(),
                    suggestion: String::new(),
                },
            ],
            labels: vec![Span {
                field: String::new(),
                start: 36,
                end: 39,
                quote: "#ad".into(),
            }],
        };
        let text = render_check(&response).join("\n");
        let expected = "verdict: NON-COMPLIANT
rule set US-en (version 2026-11-27), language en, detected; 125 characters show before \"more\"

VIOLATION  label.buried  \"#running #fitness #ad #shoes\" at 19..47
  why: FTC Disclosures 101: a disclosure buried in a group of hashtags is easy to miss
  fix: put #ad at the start
  see: FTC, Disclosures 101 for Social Media Influencers (2019, rev. 2023)

WARNING    story.frame_unlabelled  \"two\" in frames[1] at 0..3
  why: r

labels found: \"#ad\" at 36..39";
        assert_eq!(text, expected);
        let json = check_json(&response);
        assert_eq!(json["verdict"], "VERDICT_NON_COMPLIANT");
        assert_eq!(json["findings"][0]["span"]["quote"], "#running #fitness #ad #shoes");
    }

    #[test]
    fn rule_sets_print_as_blocks() {
        let sets = vec![RuleSet {
            name: "DE-de".into(),
            jurisdiction: "DE".into(),
            language: "de".into(),
            version: "2026-11-27".into(),
            sources: vec!["Leitfaden".into()],
            labels: vec!["werbung".into(), "anzeige".into()],
            ambiguous_labels: vec!["#sp".into()],
        }];
        assert_eq!(
            render_rule_sets(&sets),
            [
                "DE-de  (DE de, version 2026-11-27)",
                "  source:    Leitfaden",
                "  labels:    werbung, anzeige",
                "  not alone: #sp",
            ]
        );
    }
}
