//! The rules, one module each (video and language rules share a module per topic, one function
//! per rule). A rule decides; its words, thresholds and texts come from the rule set's file.
//!
//! How they combine: every label found in a text is judged by the first rule that applies to
//! it ([`judge`]): it discloses (`label.clear`), discloses only for a person to confirm
//! (`label.not_up_front`, an ambiguous label the guidance neither accepts nor rejects, a
//! brand-named tag where the FTC may accept one), or fails. Each connection is then disclosed,
//! disclosed for review, or not; the text's level is the weakest connection's. A failing label
//! is a VIOLATION when nothing else discloses, else a NOTE; a label for review is a WARNING when
//! it is the best there is.

use std::fmt::Write as _;

use chorus_proto::contracts::{Finding, Severity, Span};

use super::data::{Class, Connections, Entry, RuleSet};
use super::scan::Found;
use super::text::Text;

pub(crate) mod after_brand_mention;
pub(crate) mod after_truncation;
pub(crate) mod ambiguous;
pub(crate) mod brand_tag;
pub(crate) mod buried;
pub(crate) mod clear;
pub(crate) mod connection_none;
pub(crate) mod incomplete;
pub(crate) mod language;
pub(crate) mod missing;
pub(crate) mod negated;
pub(crate) mod not_up_front;
pub(crate) mod platform_label;
pub(crate) mod story;
pub(crate) mod video;
pub(crate) mod wrong_language;

/// Every rule id, each with texts in every rule set.
pub(crate) const ALL: &[&str] = &[
    connection_none::ID,
    clear::ID,
    missing::ID,
    after_truncation::ID,
    buried::ID,
    not_up_front::ID,
    after_brand_mention::ID,
    ambiguous::ID,
    wrong_language::ID,
    negated::ID,
    brand_tag::ID,
    incomplete::ID,
    platform_label::ID,
    story::ID,
    video::NOT_IN_VIDEO,
    video::CAPTION_ONLY,
    video::NOT_PROMINENT,
    video::NOT_AT_START,
    video::SAID_OR_SHOWN_ONLY,
    video::PROMINENCE_UNKNOWN,
    video::NOT_REPEATED,
    language::UNSURE,
    language::UNSUPPORTED,
];

/// How well the connections are disclosed; ordered from worst to best.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    None,
    Review,
    Full,
}

/// The request's facts every rule may read.
#[derive(Debug)]
pub(crate) struct Ctx<'a> {
    pub(crate) set: &'a RuleSet,
    pub(crate) connections: Connections,
    pub(crate) conditions_attached: bool,
    pub(crate) platform: &'static str,
    pub(crate) label_before_brand_mention: bool,
}

/// One text judged: the caption, or one story frame.
#[derive(Debug)]
pub(crate) struct Unit<'a> {
    /// "" for `text`, "frames[2]" for a frame.
    pub(crate) field: String,
    /// The frame's index, for a story frame.
    pub(crate) frame: Option<usize>,
    pub(crate) text: Text<'a>,
    /// Characters shown before "more"; `None` when all of it shows (a story frame).
    pub(crate) visible: Option<u32>,
    pub(crate) found: Vec<Found>,
    /// The first word naming the brand outside a label, for platforms that want the label
    /// before it (blogs).
    pub(crate) first_brand_mention: Option<usize>,
}

/// What a found label does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Discloses these connections.
    Discloses(Connections),
    /// Discloses these connections if a person agrees.
    Review(Connections),
    Fails,
    /// Says there is no ad.
    Denies,
}

/// The verdict on one found label: the rule that decided it, and the words it rests on when
/// they are more than the label (a buried label's hashtag run).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Judged {
    pub(crate) rule: &'static str,
    pub(crate) role: Role,
    pub(crate) span: (usize, usize),
}

/// The first rule that applies to a label decides it.
pub(crate) fn judge(ctx: &Ctx<'_>, unit: &Unit<'_>, f: &Found) -> Judged {
    let entry = f.entry.map(|e| &ctx.set.entries[e as usize]);
    let judged = |rule, role| Judged {
        rule,
        role,
        span: (f.first, f.last),
    };
    if f.class == Class::Negated || f.negated {
        return judged(negated::ID, Role::Denies);
    }
    if f.class == Class::Foreign {
        return judged(wrong_language::ID, Role::Fails);
    }
    if after_truncation::applies(unit, f) {
        return judged(after_truncation::ID, Role::Fails);
    }
    if let Some(run) = buried::applies(ctx, unit, f) {
        return Judged {
            rule: buried::ID,
            role: Role::Fails,
            span: run,
        };
    }
    if after_brand_mention::applies(ctx, unit, f) {
        return judged(after_brand_mention::ID, Role::Fails);
    }
    match (f.class, entry) {
        (Class::Ambiguous, Some(e)) => judged(ambiguous::ID, ambiguous::role(ctx, e)),
        (Class::BrandTag, _) => judged(brand_tag::ID, brand_tag::role(ctx)),
        (Class::Partial, Some(e)) => match incomplete::role(ctx, e) {
            Role::Discloses(c) if not_up_front::applies(ctx, unit, f) => judged(not_up_front::ID, Role::Review(c)),
            role => judged(incomplete::ID, role),
        },
        (Class::Good, _) if not_up_front::applies(ctx, unit, f) => {
            judged(not_up_front::ID, Role::Review(Connections::ALL))
        }
        (Class::Good, _) => judged(clear::ID, Role::Discloses(Connections::ALL)),
        _ => judged(ambiguous::ID, Role::Fails),
    }
}

/// How well a set of judged labels discloses the connections: the weakest connection's level.
pub(crate) fn level(connections: Connections, judged: &[Judged]) -> Level {
    let mut full = Connections::default();
    let mut review = Connections::default();
    for j in judged {
        match j.role {
            Role::Discloses(c) => full = full.union(c),
            Role::Review(c) => review = review.union(c),
            Role::Fails | Role::Denies => {}
        }
    }
    if full.contains(connections) {
        Level::Full
    } else if full.union(review).contains(connections) {
        Level::Review
    } else {
        Level::None
    }
}

/// The connections no label fully discloses.
pub(crate) fn undisclosed(connections: Connections, judged: &[Judged]) -> Connections {
    judged.iter().fold(connections, |left, j| match j.role {
        Role::Discloses(c) => left.minus(c),
        _ => left,
    })
}

/// A failing label breaks the rules when nothing else discloses.
pub(crate) fn failing(level: Level) -> Severity {
    if level == Level::None {
        Severity::Violation
    } else {
        Severity::Note
    }
}

/// A label for review needs a person when it is the best there is.
pub(crate) fn for_review(level: Level) -> Severity {
    match level {
        Level::Full => Severity::Note,
        Level::Review => Severity::Warning,
        Level::None => Severity::Violation,
    }
}

/// Values for the texts' placeholders.
#[derive(Debug, Default)]
pub(crate) struct Vars<'a> {
    pub(crate) quote: &'a str,
    pub(crate) platform: &'a str,
    pub(crate) visible: u32,
    /// The connections a text names, put in words only when a text uses them.
    pub(crate) connections: Connections,
    pub(crate) why: &'a str,
    pub(crate) language: &'a str,
    pub(crate) frame: usize,
}

/// Fills a text's placeholders.
pub(crate) fn render(template: &str, set: &RuleSet, v: &Vars<'_>) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            return out;
        };
        match &after[..close] {
            "quote" => out.push_str(v.quote),
            "label" => out.push_str(&set.suggested_label),
            "platform" => out.push_str(v.platform),
            "visible" => {
                let _ = write!(out, "{}", v.visible);
            }
            "connections" => out.push_str(&connections_in_words(v.connections)),
            "why" => out.push_str(v.why),
            "language" => out.push_str(v.language),
            "frame" => {
                let _ = write!(out, "{}", v.frame);
            }
            other => {
                out.push('{');
                out.push_str(other);
                out.push('}');
            }
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

/// A finding with the rule set's texts for `rule`.
pub(crate) fn finding(
    set: &RuleSet,
    rule: &'static str,
    severity: Severity,
    span: Option<Span>,
    v: &Vars<'_>,
) -> Finding {
    let (reason, citation, suggestion) = match set.text(rule) {
        Some(t) => (
            render(&t.reason, set, v),
            t.citation.clone(),
            render(&t.suggestion, set, v),
        ),
        None => (rule.to_owned(), String::new(), String::new()),
    };
    Finding {
        rule_id: rule.to_owned(),
        severity: severity as i32,
        span,
        reason,
        citation,
        suggestion,
    }
}

/// The span of words `first..=last` of a unit.
pub(crate) fn span(unit: &Unit<'_>, first: usize, last: usize) -> Span {
    Span {
        field: unit.field.clone(),
        start: unit.text.tokens[first].start as i32,
        end: unit.text.tokens[last].end as i32,
        quote: unit.text.quote(first, last).to_owned(),
    }
}

/// The connections in words: "the payment and the free product".
pub(crate) fn connections_in_words(c: Connections) -> String {
    let words: Vec<&str> = c.iter().map(super::data::describe).collect();
    match words.as_slice() {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The findings on the labels of one unit, at the unit's level.
pub(crate) fn label_findings(ctx: &Ctx<'_>, unit: &Unit<'_>, judged: &[Judged], level: Level, out: &mut Vec<Finding>) {
    let left = undisclosed(ctx.connections, judged);
    for (f, j) in unit.found.iter().zip(judged) {
        let entry: Option<&Entry> = f.entry.map(|e| &ctx.set.entries[e as usize]);
        let severity = match j.role {
            Role::Denies => Severity::Violation,
            Role::Fails => failing(level),
            Role::Review(_) => for_review(level),
            Role::Discloses(c) if f.class == Class::Partial && !c.contains(ctx.connections) => {
                let missing = left.minus(c);
                if missing.is_empty() {
                    Severity::Note
                } else {
                    failing(level)
                }
            }
            Role::Discloses(_) => Severity::Note,
        };
        let rule = match j.role {
            Role::Discloses(c) if f.class == Class::Partial && !c.contains(ctx.connections) => incomplete::ID,
            Role::Discloses(_) => clear::ID,
            _ => j.rule,
        };
        let vars = Vars {
            quote: unit.text.quote(f.first, f.last),
            platform: ctx.platform,
            visible: unit.visible.unwrap_or(unit.text.chars),
            connections: if rule == incomplete::ID && !left.is_empty() {
                left
            } else {
                ctx.connections
            },
            why: entry.map_or("", |e| &e.why),
            language: entry.map_or("", |e| &e.why),
            frame: 0,
        };
        out.push(finding(
            ctx.set,
            rule,
            severity,
            Some(span(unit, j.span.0, j.span.1)),
            &vars,
        ));
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Runs the built-in checker on a request built in a line, for the rules' tests.

    use chorus_proto::contracts::{
        CheckDisclosureRequest, CheckDisclosureResponse, Connection, Media, Severity, VideoDisclosure,
    };
    use chorus_proto::types::{DeliverableKind, Platform};

    use super::super::Checker;

    pub(crate) fn request(
        jurisdiction: &str,
        language: &str,
        text: &str,
        connections: &[Connection],
    ) -> CheckDisclosureRequest {
        CheckDisclosureRequest {
            text: text.to_owned(),
            platform: Platform::Instagram as i32,
            jurisdiction: jurisdiction.to_owned(),
            language: language.to_owned(),
            connections: connections.iter().map(|c| *c as i32).collect(),
            conditions_attached: true,
            brand_names: vec!["Voltra".to_owned(), "@voltra".to_owned()],
            platform_label_used: false,
            media: None,
        }
    }

    pub(crate) fn us(text: &str) -> CheckDisclosureRequest {
        request("US", "en", text, &[Connection::Cash])
    }

    pub(crate) fn gb(text: &str) -> CheckDisclosureRequest {
        request("GB", "en", text, &[Connection::Cash])
    }

    pub(crate) fn video(
        mut r: CheckDisclosureRequest,
        kind: DeliverableKind,
        v: VideoDisclosure,
    ) -> CheckDisclosureRequest {
        r.media = Some(Media {
            kind: kind as i32,
            frames: vec![],
            video: Some(v),
        });
        r
    }

    pub(crate) fn check(r: &CheckDisclosureRequest) -> CheckDisclosureResponse {
        thread_local! {
            static CHECKER: Checker = Checker::builtin().unwrap();
        }
        CHECKER.with(|c| c.check(r).unwrap())
    }

    /// The findings of a rule: (severity, quote).
    pub(crate) fn of(r: &CheckDisclosureRequest, rule: &str) -> Vec<(Severity, String)> {
        check(r)
            .findings
            .into_iter()
            .filter(|f| f.rule_id == rule)
            .map(|f| (f.severity(), f.span.map(|s| s.quote).unwrap_or_default()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_weakest_connection_sets_the_level() {
        use chorus_proto::contracts::Connection::{Cash, FreeProduct};
        let both = Connections::of(Cash).with(FreeProduct);
        let j = |role| Judged {
            rule: clear::ID,
            role,
            span: (0, 0),
        };
        assert_eq!(level(both, &[j(Role::Discloses(Connections::ALL))]), Level::Full);
        assert_eq!(
            level(both, &[j(Role::Discloses(Connections::of(FreeProduct)))]),
            Level::None
        );
        let partial = [
            j(Role::Discloses(Connections::of(FreeProduct))),
            j(Role::Review(Connections::of(Cash))),
        ];
        assert_eq!(level(both, &partial), Level::Review);
        assert_eq!(undisclosed(both, &partial), Connections::of(Cash));
    }

    #[test]
    fn connections_read_as_a_list() {
        use chorus_proto::contracts::Connection::{Cash, DiscountCode, FreeProduct};
        let c = Connections::of(Cash).with(FreeProduct).with(DiscountCode);
        assert_eq!(
            connections_in_words(c),
            "the payment, the free product and the discount code"
        );
    }
}
