//! `chorus deliverables`: a contract's posts; the influencer submits one (checked for ad
//! disclosure at once: the findings say which rule, on what text, why and how to fix it); the
//! brand approves it or asks for changes.
//!
//! ```text
//! chorus deliverables list contracts/ID
//! chorus deliverables submit contracts/ID/deliverables/1 --url https://instagram.com/p/x \
//!   --caption "#ad Our walk with @pawsome treats"
//! chorus deliverables review contracts/ID/deliverables/1 --request-changes --reason "Show the bag"
//! ```

use chorus_proto::contracts::{
    CheckDisclosureResponse, Deliverable, DeliverableState, Finding, GetDeliverableRequest, ListDeliverablesRequest,
    Media, Prominence, ReviewDecision, ReviewDeliverableRequest, Severity, Submission, SubmitDeliverableRequest,
    Verdict as DisclosureVerdict, VideoDisclosure,
};
use chorus_proto::types::{DeliverableKind, Platform};
use comfy_table::{Cell, CellAlignment};
use prost_types::Timestamp;
use serde_json::{Value, json};

use crate::client::ConnectArgs;
use crate::error::Result;
use crate::output::{self, enum_json, time, time_json};
use crate::terms::parse_time;
use crate::vocab;

#[derive(clap::Subcommand, Debug)]
pub(crate) enum Command {
    /// A contract's deliverables, with their state.
    List {
        /// "contracts/ID" or ID.
        contract: String,
    },
    /// Submit a post for a deliverable (the influencer); it is checked for ad disclosure.
    Submit(Box<SubmitArgs>),
    /// Approve a submitted post, or ask for changes with a reason (the brand).
    #[command(group(clap::ArgGroup::new("decision").required(true).args(["approve", "request_changes"])))]
    Review {
        /// "contracts/ID/deliverables/N".
        name: String,
        #[arg(long)]
        approve: bool,
        #[arg(long, requires = "reason")]
        request_changes: bool,
        /// What to change.
        #[arg(long, default_value = "")]
        reason: String,
    },
}

#[derive(clap::Args, Debug)]
pub(crate) struct SubmitArgs {
    /// "contracts/ID/deliverables/N".
    name: String,
    /// The post's https URL.
    #[arg(long)]
    url: String,
    /// Where it was posted; default the deliverable's platform.
    #[arg(long, value_parser = vocab::parse::<Platform>)]
    platform: Option<Platform>,
    /// What was posted (feed-post, story, video, short-video, ...); default the deliverable's.
    #[arg(long, value_parser = vocab::parse::<DeliverableKind>)]
    kind: Option<DeliverableKind>,
    /// The caption, description or transcript.
    #[arg(long, default_value = "")]
    caption: String,
    /// When it was published: a date or an RFC 3339 time.
    #[arg(long, value_parser = parse_time)]
    publish_time: Option<Timestamp>,
    /// A story frame's text, in order; repeatable.
    #[arg(long = "frame")]
    frames: Vec<String>,
    /// A video's disclosure is said aloud.
    #[arg(long, help_heading = "Video disclosure")]
    spoken: bool,
    /// A video's disclosure is shown as text on screen.
    #[arg(long, help_heading = "Video disclosure")]
    on_screen: bool,
    /// A video's disclosure comes at the start.
    #[arg(long, help_heading = "Video disclosure")]
    at_start: bool,
    /// A video's disclosure is repeated through it.
    #[arg(long, help_heading = "Video disclosure")]
    repeated: bool,
    /// How visible the on-screen disclosure is: clear or small.
    #[arg(long, value_parser = parse_prominence, help_heading = "Video disclosure")]
    prominence: Option<Prominence>,
    /// The platform's paid-partnership label was on.
    #[arg(long)]
    platform_label: bool,
}

impl SubmitArgs {
    /// The media the flags describe: frames and the video's disclosure, when given.
    fn media(&self) -> Option<Media> {
        let video = (self.spoken || self.on_screen || self.at_start || self.repeated || self.prominence.is_some())
            .then(|| VideoDisclosure {
                spoken: self.spoken,
                on_screen: self.on_screen,
                at_start: self.at_start,
                repeated: self.repeated,
                prominence: self.prominence.map_or(0, i32::from),
            });
        (!self.frames.is_empty() || video.is_some()).then(|| Media {
            kind: self.kind.map_or(0, i32::from),
            frames: self.frames.clone(),
            video,
        })
    }
}

/// "clear", or "small" (small or low contrast), or a proto name.
fn parse_prominence(input: &str) -> Result<Prominence, String> {
    match input.trim().to_ascii_lowercase().as_str() {
        "small" | "low-contrast" => Ok(Prominence::SmallOrLowContrast),
        _ => vocab::parse::<Prominence>(input),
    }
}

/// "contracts/C/deliverables/N", or "C/deliverables/N".
fn deliverable_name(input: &str) -> String {
    let input = input.trim();
    if input.starts_with("contracts/") {
        input.to_owned()
    } else {
        format!("contracts/{input}")
    }
}

pub(crate) async fn run(command: Command, connect: &ConnectArgs, json: bool) -> Result<()> {
    let mut client = connect.contracts().await?;
    match command {
        Command::List { contract } => {
            let all = client
                .list_deliverables(ListDeliverablesRequest {
                    parent: vocab::contract_name(&contract)?,
                })
                .await?
                .into_inner()
                .deliverables;
            if json {
                return output::print_json(&json!({
                    "deliverables": all.iter().map(deliverable_json).collect::<Vec<_>>(),
                }));
            }
            outln!("{}", deliverables_table(&all));
            Ok(())
        }
        Command::Submit(args) => {
            let name = deliverable_name(&args.name);
            let (platform, kind) = match (args.platform, args.kind) {
                (Some(p), Some(k)) => (p as i32, k as i32),
                (p, k) => {
                    let d = client
                        .get_deliverable(GetDeliverableRequest { name: name.clone() })
                        .await?
                        .into_inner()
                        .deliverable
                        .ok_or(NO_DELIVERABLE)?;
                    (p.map_or(d.platform, i32::from), k.map_or(d.kind, i32::from))
                }
            };
            let submission = Submission {
                url: args.url.trim().to_owned(),
                platform,
                kind,
                publish_time: args.publish_time,
                caption: args.caption.clone(),
                media: args.media(),
                platform_label_used: args.platform_label,
                submit_time: None,
                check: None,
            };
            let d = client
                .submit_deliverable(SubmitDeliverableRequest {
                    name,
                    submission: Some(submission),
                })
                .await?
                .into_inner()
                .deliverable
                .ok_or(NO_DELIVERABLE)?;
            show_deliverable(&d, json)
        }
        Command::Review {
            name,
            approve,
            request_changes: _,
            reason,
        } => {
            let decision = if approve {
                ReviewDecision::Approve
            } else {
                ReviewDecision::RequestChanges
            };
            let d = client
                .review_deliverable(ReviewDeliverableRequest {
                    name: deliverable_name(&name),
                    decision: decision as i32,
                    reason,
                })
                .await?
                .into_inner()
                .deliverable
                .ok_or(NO_DELIVERABLE)?;
            show_deliverable(&d, json)
        }
    }
}

const NO_DELIVERABLE: &str = "the server answered without a deliverable";

fn show_deliverable(d: &Deliverable, json: bool) -> Result<()> {
    output::show(json, || deliverable_json(d), || deliverable_lines(d))
}

/// A deliverable's state, and its latest submission's disclosure check, finding by finding.
fn deliverable_lines(d: &Deliverable) -> Vec<String> {
    let mut out = vec![format!(
        "{}: {}{}",
        d.name,
        vocab::label::<DeliverableState>(d.state),
        if d.overdue { " (overdue)" } else { "" }
    )];
    if !d.change_reason.is_empty() && d.state == DeliverableState::ChangesRequested as i32 {
        out.push(format!("  to change: {}", d.change_reason));
    }
    if let Some(check) = d.submissions.last().and_then(|s| s.check.as_ref()) {
        out.extend(check_lines(check));
    }
    out
}

/// "Disclosure: non compliant (rules US-en of 2026-11-27, language en)", then each finding:
/// its severity and rule, why, the text it rests on and the fix.
pub(crate) fn check_lines(c: &CheckDisclosureResponse) -> Vec<String> {
    let mut out = vec![format!(
        "Disclosure: {} (rules {} of {}, language {}{})",
        vocab::label::<DisclosureVerdict>(c.verdict),
        c.rule_set,
        c.rule_set_version,
        c.language,
        if c.language_detected { ", detected" } else { "" }
    )];
    for f in &c.findings {
        out.extend(finding_lines(f));
    }
    out
}

fn finding_lines(f: &Finding) -> Vec<String> {
    let mut out = vec![format!("  {} {}", vocab::label::<Severity>(f.severity), f.rule_id)];
    out.push(format!("    why: {}", f.reason));
    if let Some(span) = &f.span {
        let field = if span.field.is_empty() {
            "caption"
        } else {
            span.field.as_str()
        };
        out.push(format!(
            "    text: \"{}\" ({field}, characters {}-{})",
            span.quote, span.start, span.end
        ));
    }
    if !f.suggestion.is_empty() {
        out.push(format!("    fix: {}", f.suggestion));
    }
    if !f.citation.is_empty() {
        out.push(format!("    see: {}", f.citation));
    }
    out
}

pub(crate) fn deliverables_table(all: &[Deliverable]) -> comfy_table::Table {
    let mut t = output::table(&["deliverable", "post", "due", "state", "submissions", "disclosure"]);
    for d in all {
        let check = d.submissions.last().and_then(|s| s.check.as_ref());
        t.add_row(vec![
            Cell::new(&d.name),
            Cell::new(format!(
                "{} on {}",
                vocab::label::<DeliverableKind>(d.kind),
                vocab::label::<Platform>(d.platform)
            )),
            Cell::new(format!(
                "{}{}",
                time(d.due_time.as_ref()),
                if d.overdue { " (overdue)" } else { "" }
            )),
            Cell::new(vocab::label::<DeliverableState>(d.state)),
            Cell::new(d.submissions.len()).set_alignment(CellAlignment::Right),
            Cell::new(check.map_or_else(|| "-".to_owned(), |c| vocab::label::<DisclosureVerdict>(c.verdict))),
        ]);
    }
    t
}

pub(crate) fn deliverable_json(d: &Deliverable) -> Value {
    json!({
        "name": d.name,
        "kind": enum_json::<DeliverableKind>(d.kind),
        "platform": enum_json::<Platform>(d.platform),
        "due_time": time_json(d.due_time.as_ref()),
        "state": enum_json::<DeliverableState>(d.state),
        "submissions": d.submissions.iter().map(|s| json!({
            "url": s.url,
            "platform": enum_json::<Platform>(s.platform),
            "kind": enum_json::<DeliverableKind>(s.kind),
            "publish_time": time_json(s.publish_time.as_ref()),
            "caption": s.caption,
            "media": s.media.as_ref().map(|m| json!({
                "kind": enum_json::<DeliverableKind>(m.kind),
                "frames": m.frames,
                "video": m.video.as_ref().map(|v| json!({
                    "spoken": v.spoken, "on_screen": v.on_screen, "at_start": v.at_start,
                    "repeated": v.repeated, "prominence": enum_json::<Prominence>(v.prominence),
                })),
            })),
            "platform_label_used": s.platform_label_used,
            "submit_time": time_json(s.submit_time.as_ref()),
            "check": s.check.as_ref().map(check_json),
        })).collect::<Vec<_>>(),
        "change_reason": d.change_reason,
        "overdue": d.overdue,
        "approve_time": time_json(d.approve_time.as_ref()),
    })
}

fn check_json(c: &CheckDisclosureResponse) -> Value {
    let span =
        |s: &chorus_proto::contracts::Span| json!({"field": s.field, "start": s.start, "end": s.end, "quote": s.quote});
    json!({
        "verdict": enum_json::<DisclosureVerdict>(c.verdict),
        "rule_set": c.rule_set,
        "rule_set_version": c.rule_set_version,
        "language": c.language,
        "language_detected": c.language_detected,
        "visible_chars": c.visible_chars,
        "findings": c.findings.iter().map(|f| json!({
            "rule_id": f.rule_id,
            "severity": enum_json::<Severity>(f.severity),
            "span": f.span.as_ref().map(span),
            "reason": f.reason,
            "citation": f.citation,
            "suggestion": f.suggestion,
        })).collect::<Vec<_>>(),
        "labels": c.labels.iter().map(span).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chorus_proto::contracts::Span;

    fn check() -> CheckDisclosureResponse {
        CheckDisclosureResponse {
            verdict: DisclosureVerdict::NonCompliant as i32,
            rule_set: "US-en".to_owned(),
            rule_set_version: "2026-11-27".to_owned(),
            language: "en".to_owned(),
            language_detected: true,
            visible_chars: 125,
            findings: vec![
                Finding {
                    rule_id: "label.after_truncation".to_owned(),
                    severity: Severity::Violation as i32,
                    span: Some(Span {
                        field: String::new(),
                        start: 140,
                        end: 143,
                        quote: "#ad".to_owned(),
                    }),
                    reason: "The label is hidden behind \"more\".".to_owned(),
                    citation: "FTC, Disclosures 101 (2019)".to_owned(),
                    suggestion: "put #ad at the start".to_owned(),
                },
                Finding {
                    rule_id: "label.missing_on_frame".to_owned(),
                    severity: Severity::Warning as i32,
                    span: None,
                    reason: "Frame 2 has no label.".to_owned(),
                    citation: String::new(),
                    suggestion: String::new(),
                },
            ],
            labels: vec![],
        }
    }

    #[test]
    fn findings_read_rule_by_rule() {
        let d = Deliverable {
            name: "contracts/c1/deliverables/1".to_owned(),
            state: DeliverableState::ChangesRequested as i32,
            change_reason: "the disclosure is not compliant".to_owned(),
            submissions: vec![Submission {
                check: Some(check()),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(
            deliverable_lines(&d),
            [
                "contracts/c1/deliverables/1: changes requested",
                "  to change: the disclosure is not compliant",
                "Disclosure: non compliant (rules US-en of 2026-11-27, language en, detected)",
                "  violation label.after_truncation",
                "    why: The label is hidden behind \"more\".",
                "    text: \"#ad\" (caption, characters 140-143)",
                "    fix: put #ad at the start",
                "    see: FTC, Disclosures 101 (2019)",
                "  warning label.missing_on_frame",
                "    why: Frame 2 has no label.",
            ]
        );
        let v = deliverable_json(&d);
        assert_eq!(v["state"], "DELIVERABLE_STATE_CHANGES_REQUESTED");
        let f = &v["submissions"][0]["check"]["findings"][0];
        assert_eq!(f["severity"], "SEVERITY_VIOLATION");
        assert_eq!(f["span"]["quote"], "#ad");
    }

    #[test]
    fn submit_flags_describe_the_media() {
        use clap::Parser;
        #[derive(clap::Parser, Debug)]
        struct T {
            #[command(flatten)]
            a: SubmitArgs,
        }
        let parse = |extra: &[&str]| {
            let base = ["t", "contracts/c/deliverables/1", "--url", "https://x.test/p"];
            T::try_parse_from(base.iter().chain(extra)).unwrap().a
        };
        assert_eq!(parse(&[]).media(), None);
        let story = parse(&["--kind", "story", "--frame", "#ad hi", "--frame", "bye"])
            .media()
            .unwrap();
        assert_eq!(story.frames, ["#ad hi", "bye"]);
        assert_eq!(story.kind, DeliverableKind::Story as i32);
        assert_eq!(story.video, None);
        let video = parse(&["--spoken", "--at-start", "--prominence", "small"])
            .media()
            .unwrap();
        let v = video.video.unwrap();
        assert!(v.spoken && v.at_start && !v.on_screen);
        assert_eq!(v.prominence, Prominence::SmallOrLowContrast as i32);
        assert_eq!(parse_prominence("clear"), Ok(Prominence::Clear));
        assert!(parse_prominence("huge").is_err());
        assert_eq!(deliverable_name("c/deliverables/2"), "contracts/c/deliverables/2");
    }
}
