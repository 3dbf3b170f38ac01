//! The labelled set (tests/disclosure/cases.toml, labelled before any rule was written) run
//! through the checker: prints the confusion matrix and every disagreement, and fails when
//! agreement is below 95% or when a case labelled non-compliant is called compliant.
//!
//! `cargo nextest run -p chorus-contracts --test disclosure --no-capture` shows the report.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chorus_contracts::domain::disclosure::Checker;
use chorus_proto::contracts::{
    CheckDisclosureRequest, CheckDisclosureResponse, Connection, Media, Prominence, Verdict, VideoDisclosure,
};
use chorus_proto::types::{DeliverableKind, Platform};
use serde::Deserialize;

const CASES: &str = include_str!("disclosure/cases.toml");

#[derive(Debug, Deserialize)]
struct File {
    case: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    id: String,
    text: String,
    platform: String,
    jurisdiction: String,
    #[serde(default)]
    language: String,
    connections: Vec<String>,
    conditions_attached: bool,
    brand_names: Vec<String>,
    platform_label_used: bool,
    media: CaseMedia,
    expect: String,
    why: String,
    #[allow(dead_code)]
    source: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseMedia {
    kind: String,
    #[serde(default)]
    frames: Vec<String>,
    #[serde(default)]
    spoken: bool,
    #[serde(default)]
    on_screen: bool,
    #[serde(default)]
    at_start: bool,
    #[serde(default)]
    repeated: bool,
    #[serde(default)]
    prominence: Option<String>,
}

/// Proto enum value names are SCREAMING_SNAKE with a prefix; the cases use kebab case.
fn proto_name(prefix: &str, kebab: &str) -> String {
    format!("{prefix}_{}", kebab.replace('-', "_").to_uppercase())
}

fn request(c: &Case) -> CheckDisclosureRequest {
    let platform = Platform::from_str_name(&proto_name("PLATFORM", &c.platform)).expect("platform");
    let connections = c
        .connections
        .iter()
        .map(|n| Connection::from_str_name(&proto_name("CONNECTION", n)).expect("connection") as i32)
        .collect();
    let kind = DeliverableKind::from_str_name(&proto_name("DELIVERABLE_KIND", &c.media.kind)).expect("kind");
    let video = matches!(
        kind,
        DeliverableKind::Video | DeliverableKind::ShortVideo | DeliverableKind::LiveStream
    )
    .then(|| VideoDisclosure {
        spoken: c.media.spoken,
        on_screen: c.media.on_screen,
        at_start: c.media.at_start,
        repeated: c.media.repeated,
        prominence: c
            .media
            .prominence
            .as_deref()
            .map(|p| Prominence::from_str_name(&proto_name("PROMINENCE", p)).expect("prominence") as i32)
            .unwrap_or_default(),
    });
    CheckDisclosureRequest {
        text: c.text.clone(),
        platform: platform as i32,
        jurisdiction: c.jurisdiction.clone(),
        language: c.language.clone(),
        connections,
        conditions_attached: c.conditions_attached,
        brand_names: c.brand_names.clone(),
        platform_label_used: c.platform_label_used,
        media: Some(Media {
            kind: kind as i32,
            frames: c.media.frames.clone(),
            video,
        }),
    }
}

fn expected(label: &str) -> Verdict {
    match label {
        "compliant" => Verdict::Compliant,
        "non-compliant" => Verdict::NonCompliant,
        "needs-review" => Verdict::NeedsReview,
        other => panic!("unknown label {other:?}"),
    }
}

const ORDER: [Verdict; 3] = [Verdict::Compliant, Verdict::NeedsReview, Verdict::NonCompliant];

fn short(v: Verdict) -> &'static str {
    match v {
        Verdict::Compliant => "compliant",
        Verdict::NeedsReview => "needs-review",
        Verdict::NonCompliant => "non-compliant",
        Verdict::Unspecified => "unspecified",
    }
}

fn describe(got: &CheckDisclosureResponse) -> String {
    let mut out = format!(
        "    rule set {} (language {}{})\n",
        got.rule_set,
        got.language,
        if got.language_detected { ", detected" } else { "" }
    );
    for f in &got.findings {
        let span = f
            .span
            .as_ref()
            .map(|s| format!(" {}[{}..{}] {:?}", s.field, s.start, s.end, s.quote))
            .unwrap_or_default();
        out.push_str(&format!("    {:?} {}{span}: {}\n", f.severity(), f.rule_id, f.reason));
    }
    out
}

#[test]
fn the_labelled_set_agrees_with_the_checker() {
    let file: File = toml::from_str(CASES).expect("cases.toml");
    let checker = Checker::builtin().expect("rule sets");
    let mut matrix = [[0usize; 3]; 3];
    let mut disagreements = String::new();
    let mut missed_violations = Vec::new();
    for c in &file.case {
        let want = expected(&c.expect);
        let got = checker.check(&request(c)).unwrap_or_else(|e| panic!("{}: {e}", c.id));
        let verdict = got.verdict();
        let row = ORDER.iter().position(|v| *v == want).unwrap();
        let col = ORDER.iter().position(|v| *v == verdict).expect("a verdict");
        matrix[row][col] += 1;
        if verdict != want {
            disagreements.push_str(&format!(
                "{} expected {} got {}\n    text: {:?}\n    label's why: {}\n{}",
                c.id,
                short(want),
                short(verdict),
                c.text,
                c.why,
                describe(&got)
            ));
            if want == Verdict::NonCompliant && verdict == Verdict::Compliant {
                missed_violations.push(c.id.clone());
            }
        }
    }
    let total = file.case.len();
    let agree: usize = (0..3).map(|i| matrix[i][i]).sum();
    let rate = agree as f64 / total as f64;
    println!("\nlabelled set: {agree}/{total} agree ({:.1}%)\n", rate * 100.0);
    println!(
        "{:>26} | {:>10} {:>13} {:>14}",
        "label \\ checker", "compliant", "needs-review", "non-compliant"
    );
    for (i, v) in ORDER.iter().enumerate() {
        println!(
            "{:>26} | {:>10} {:>13} {:>14}",
            short(*v),
            matrix[i][0],
            matrix[i][1],
            matrix[i][2]
        );
    }
    println!("\ndisagreements:\n{disagreements}");
    assert!(
        missed_violations.is_empty(),
        "labelled non-compliant, called compliant: {missed_violations:?}"
    );
    assert!(rate >= 0.95, "agreement {:.1}% is below 95%", rate * 100.0);
}
