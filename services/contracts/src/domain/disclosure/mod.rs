//! The explainable ad-disclosure checker: a caption (or story frames, or a video's caption and
//! what the video itself shows) judged against the rule set of a jurisdiction and language.
//! Every finding names its rule, the exact text it rests on, the guidance and a fix.
//!
//! The rule sets are data (`services/contracts/rules/*.toml`, compiled in and checked at
//! start-up); the rules are code, one module each under `rules/`. docs/disclosure.md tells the
//! whole story.

mod data;
mod pattern;
mod request;
mod rules;
mod scan;
mod text;

use std::collections::{BTreeMap, HashMap};

use chorus_kit::error::{Error, ErrorCode};
use chorus_proto::contracts::{
    CheckDisclosureRequest, CheckDisclosureResponse, Finding, RuleSet as RuleSetProto, Severity, Span, Verdict,
};
use chorus_proto::types::DeliverableKind;
use whatlang::{Detector, Lang};

use data::{Class, PlatformRule, RuleSet};
use pattern::Brands;
use rules::{Ctx, Judged, Level, Role, Unit, Vars};
use text::Text;

/// The checker: the rule sets and platforms, parsed and checked once. Cheap to share.
#[derive(Debug)]
pub struct Checker {
    sets: Vec<RuleSet>,
    platforms: HashMap<i32, PlatformRule>,
    jurisdictions: BTreeMap<String, Jurisdiction>,
    /// "DE, ES, FR, GB, US", for errors.
    supported: String,
}

/// A jurisdiction's rule sets (the first is its main language) and its language detector.
#[derive(Debug)]
struct Jurisdiction {
    sets: Vec<usize>,
    languages: Vec<Lang>,
    detector: Detector,
}

impl Checker {
    /// The rule sets compiled into the binary, parsed and checked.
    pub fn builtin() -> Result<Checker, Error> {
        Checker::from_data(data::BUILTIN, data::PLATFORMS)
            .map_err(|e| Error::new(ErrorCode::Internal, format!("disclosure rule sets: {e}")))
    }

    fn from_data(files: &[(&str, &str)], platforms: &str) -> Result<Checker, String> {
        let mut sets = data::parse_rule_sets(files)?;
        // A jurisdiction's first rule set is its primary one, which detection falls back to.
        sets.sort_by_key(|s| (s.jurisdiction.clone(), !s.primary, s.name.clone()));
        let platforms = data::parse_platforms(platforms)?;
        let english = sets
            .iter()
            .find(|s| s.language == "en")
            .map(|s| s.detect_as)
            .ok_or("no English rule set: detection needs one")?;
        let mut jurisdictions: BTreeMap<String, Jurisdiction> = BTreeMap::new();
        for (i, s) in sets.iter().enumerate() {
            if s.primary == jurisdictions.contains_key(&s.jurisdiction) {
                return Err(format!(
                    "{}: each jurisdiction needs exactly one primary rule set",
                    s.name
                ));
            }
            let j = jurisdictions
                .entry(s.jurisdiction.clone())
                .or_insert_with(|| Jurisdiction {
                    sets: Vec::new(),
                    languages: Vec::new(),
                    detector: Detector::new(),
                });
            j.sets.push(i);
            j.languages.push(s.detect_as);
        }
        for j in jurisdictions.values_mut() {
            let mut allow = j.languages.clone();
            if !allow.contains(&english) {
                allow.push(english);
            }
            j.detector = Detector::with_allowlist(allow);
        }
        let supported = jurisdictions.keys().cloned().collect::<Vec<_>>().join(", ");
        Ok(Checker {
            sets,
            platforms,
            jurisdictions,
            supported,
        })
    }

    /// The rule sets, by name.
    pub fn rule_sets(&self) -> Vec<RuleSetProto> {
        let mut out: Vec<RuleSetProto> = self
            .sets
            .iter()
            .map(|s| RuleSetProto {
                name: s.name.clone(),
                jurisdiction: s.jurisdiction.clone(),
                language: s.language.clone(),
                version: s.version.clone(),
                sources: s.sources.clone(),
                labels: s.good_labels.clone(),
                ambiguous_labels: s.ambiguous_labels.clone(),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Checks a caption, story or video against the rule set of its jurisdiction and language.
    pub fn check(&self, r: &CheckDisclosureRequest) -> Result<CheckDisclosureResponse, Error> {
        let valid = request::validate(r, |j| self.jurisdictions.contains_key(j), &self.supported)?;
        let jurisdiction = self
            .jurisdictions
            .get(&r.jurisdiction)
            .ok_or_else(|| Error::invalid_field("jurisdiction", "no rule set"))?;
        let mut notes: Vec<Finding> = Vec::with_capacity(6);
        let (set, detected) = if r.language.is_empty() {
            (self.detect(jurisdiction, r, &mut notes), true)
        } else {
            let i = jurisdiction
                .sets
                .iter()
                .copied()
                .find(|&i| self.sets[i].language == r.language)
                .ok_or_else(|| request::unknown_language(r, self.languages_of(jurisdiction)))?;
            (&self.sets[i], false)
        };
        let platform = self
            .platforms
            .get(&r.platform)
            .copied()
            .ok_or_else(|| Error::invalid_field("platform", "unknown platform"))?;
        let ctx = Ctx {
            set,
            connections: valid.connections,
            conditions_attached: r.conditions_attached,
            platform: request::platform_name(r.platform()),
            label_before_brand_mention: platform.label_before_brand_mention,
        };
        let mut out = check_with(&ctx, r, &valid, platform, notes);
        out.language_detected = detected;
        Ok(out)
    }

    fn detect<'a>(&'a self, j: &Jurisdiction, r: &CheckDisclosureRequest, notes: &mut Vec<Finding>) -> &'a RuleSet {
        let joined;
        let text = match r.media.as_ref() {
            Some(m) if r.text.is_empty() && !m.frames.is_empty() => {
                joined = m.frames.join("\n");
                joined.as_str()
            }
            _ => r.text.as_str(),
        };
        let first = &self.sets[j.sets[0]];
        match rules::language::detect(&j.detector, &j.languages, text) {
            rules::language::Detected::Supported(i) => &self.sets[j.sets[i]],
            rules::language::Detected::Unsure => {
                notes.push(rules::finding(
                    first,
                    rules::language::UNSURE,
                    Severity::Note,
                    None,
                    &Vars::default(),
                ));
                first
            }
            rules::language::Detected::Unsupported(lang) => {
                let vars = Vars {
                    language: lang.eng_name(),
                    ..Vars::default()
                };
                notes.push(rules::finding(
                    first,
                    rules::language::UNSUPPORTED,
                    Severity::Note,
                    None,
                    &vars,
                ));
                first
            }
        }
    }

    fn languages_of(&self, j: &Jurisdiction) -> String {
        j.sets
            .iter()
            .map(|&i| self.sets[i].language.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn check_with(
    ctx: &Ctx<'_>,
    r: &CheckDisclosureRequest,
    valid: &request::Valid,
    platform: PlatformRule,
    mut findings: Vec<Finding>,
) -> CheckDisclosureResponse {
    let brands = Brands::new(&r.brand_names);
    let kind = valid.kind;
    let frames = r.media.as_ref().map(|m| m.frames.as_slice()).unwrap_or_default();

    let units: Vec<Unit<'_>> = if kind == DeliverableKind::Story && !frames.is_empty() {
        frames
            .iter()
            .enumerate()
            .map(|(i, f)| unit(ctx, Some(i), f, None, &brands))
            .collect()
    } else {
        vec![unit(ctx, None, &r.text, Some(platform.visible_chars), &brands)]
    };
    let text_chars = match units.first() {
        Some(u) if u.frame.is_none() => u.text.chars,
        _ => r.text.chars().count() as u32,
    };
    let mut labels: Vec<Span> = Vec::with_capacity(units.iter().map(|u| u.found.len()).sum());
    for u in &units {
        labels.extend(u.found.iter().map(|f| rules::span(u, f.first, f.last)));
    }
    let response = |verdict: Verdict, findings: Vec<Finding>, labels: Vec<Span>| CheckDisclosureResponse {
        verdict: verdict as i32,
        rule_set: ctx.set.name.clone(),
        rule_set_version: ctx.set.version.clone(),
        language: ctx.set.language.clone(),
        language_detected: false,
        visible_chars: text_chars.min(platform.visible_chars) as i32,
        findings,
        labels,
    };
    if ctx.connections.is_empty() {
        findings.push(rules::finding(
            ctx.set,
            rules::connection_none::ID,
            Severity::Note,
            None,
            &vars(ctx, None),
        ));
        return response(Verdict::Compliant, findings, labels);
    }

    let video = rules::video::is_video(kind);
    let mut overall = Level::Full;
    let mut unit_findings: Vec<Finding> = Vec::new();
    let mut video_findings: Vec<Finding> = Vec::new();
    let mut judged_units: Vec<Vec<Judged>> = Vec::with_capacity(units.len());
    let mut levels: Vec<Level> = Vec::with_capacity(units.len());
    for u in &units {
        let judged: Vec<Judged> = u.found.iter().map(|f| rules::judge(ctx, u, f)).collect();
        let mut level = rules::level(ctx.connections, &judged);
        let denied = judged.iter().any(|j| j.role == Role::Denies);
        if !video {
            if let Some((with_toggle, severity)) = rules::platform_label::applies(ctx, r.platform_label_used, level) {
                level = with_toggle;
                unit_findings.push(rules::finding(
                    ctx.set,
                    rules::platform_label::ID,
                    severity,
                    None,
                    &vars(ctx, Some(u)),
                ));
            } else if level == Level::None && u.found.is_empty() && !denied && u.field.is_empty() {
                unit_findings.push(rules::finding(
                    ctx.set,
                    rules::missing::ID,
                    Severity::Violation,
                    None,
                    &vars(ctx, Some(u)),
                ));
            }
            if level == Level::None && !u.field.is_empty() {
                let mut v = vars(ctx, Some(u));
                v.quote = u.text.src;
                let whole = Span {
                    field: u.field.clone(),
                    start: 0,
                    end: u.text.chars as i32,
                    quote: u.text.src.to_owned(),
                };
                unit_findings.push(rules::finding(
                    ctx.set,
                    rules::story::ID,
                    Severity::Violation,
                    Some(whole),
                    &v,
                ));
            }
        }
        if denied {
            level = Level::None;
        }
        overall = overall.min(level);
        levels.push(level);
        judged_units.push(judged);
    }
    if video {
        let v = r.media.as_ref().and_then(|m| m.video).unwrap_or_default();
        let caption = &units[0];
        let opens = caption.found.iter().zip(&judged_units[0]).any(|(f, j)| {
            f.first == 0 && f.class == Class::Good && matches!(j.role, Role::Discloses(_) | Role::Review(_))
        });
        let mut level = Level::Full;
        for (rule, l) in rules::video::judge(ctx, kind, &v, opens) {
            let severity = if l == Level::None {
                Severity::Violation
            } else {
                Severity::Warning
            };
            video_findings.push(rules::finding(ctx.set, rule, severity, None, &vars(ctx, Some(caption))));
            level = level.min(l);
        }
        if judged_units[0].iter().any(|j| j.role == Role::Denies) {
            level = Level::None;
        }
        overall = level;
        levels[0] = level;
    }
    for ((u, judged), level) in units.iter().zip(&judged_units).zip(&levels) {
        rules::label_findings(ctx, u, judged, *level, &mut findings);
    }
    findings.append(&mut unit_findings);
    findings.append(&mut video_findings);
    let verdict = if findings.iter().any(|f| f.severity() == Severity::Violation) {
        Verdict::NonCompliant
    } else if findings.iter().any(|f| f.severity() == Severity::Warning) {
        Verdict::NeedsReview
    } else {
        Verdict::Compliant
    };
    debug_assert!(overall != Level::None || verdict == Verdict::NonCompliant);
    response(verdict, findings, labels)
}

fn unit<'a>(ctx: &Ctx<'_>, frame: Option<usize>, src: &'a str, visible: Option<u32>, brands: &Brands) -> Unit<'a> {
    let mut text = Text::new(src);
    brands.mark(&mut text);
    let found = scan::labels(ctx.set, &text, brands);
    let first_brand_mention = if ctx.label_before_brand_mention && !brands.is_empty() {
        (0..text.tokens.len())
            .find(|&i| brands.len_at(&text, i).is_some() && !found.iter().any(|f| f.first <= i && i <= f.last))
    } else {
        None
    };
    Unit {
        field: frame.map(|i| format!("frames[{i}]")).unwrap_or_default(),
        frame,
        text,
        visible,
        found,
        first_brand_mention,
    }
}

fn vars<'a>(ctx: &'a Ctx<'_>, u: Option<&Unit<'_>>) -> Vars<'a> {
    Vars {
        quote: "",
        platform: ctx.platform,
        visible: u.map_or(0, |u| u.visible.unwrap_or(u.text.chars)),
        connections: ctx.connections,
        why: "",
        language: &ctx.set.language_name,
        frame: u.and_then(|u| u.frame).map_or(0, |i| i + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chorus_proto::types::Platform;

    fn req(text: &str) -> CheckDisclosureRequest {
        rules::testing::us(text)
    }

    #[test]
    fn the_checker_is_shareable() {
        fn shareable<T: Send + Sync + std::fmt::Debug>() {}
        shareable::<Checker>();
    }

    #[test]
    fn rule_sets_are_listed_with_their_labels() {
        let c = Checker::builtin().unwrap();
        let sets = c.rule_sets();
        let names: Vec<&str> = sets.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["DE-de", "ES-es", "FR-fr", "GB-en", "US-en", "US-es"]);
        let de = &sets[0];
        assert!(de.labels.iter().any(|l| l.eq_ignore_ascii_case("werbung")));
        assert!(!de.version.is_empty() && !de.sources.is_empty());
    }

    #[test]
    fn the_response_names_the_rule_set_and_the_visible_characters() {
        let c = Checker::builtin().unwrap();
        let got = c.check(&req("#ad hello")).unwrap();
        assert_eq!(
            (got.rule_set.as_str(), got.language.as_str(), got.language_detected),
            ("US-en", "en", false)
        );
        assert_eq!(got.visible_chars, 9);
        let long = "x".repeat(400);
        assert_eq!(c.check(&req(&long)).unwrap().visible_chars, 125);
        let mut r = req(&long);
        r.platform = Platform::Blog as i32;
        assert_eq!(c.check(&r).unwrap().visible_chars, 300);
    }

    #[test]
    fn an_unknown_jurisdiction_names_the_supported_ones() {
        let c = Checker::builtin().unwrap();
        let mut r = req("#ad");
        r.jurisdiction = "IT".into();
        let e = c.check(&r).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidArgument);
        assert_eq!(e.violations()[0].field, "jurisdiction");
        assert_eq!(
            e.violations()[0].description,
            "no rule set for \"IT\"; supported: DE, ES, FR, GB, US"
        );
        let mut r = req("#ad");
        r.language = "fr".into();
        let e = c.check(&r).unwrap_err();
        assert_eq!(e.violations()[0].field, "language");
        assert!(
            e.violations()[0].description.contains("supported: en, es"),
            "{}",
            e.violations()[0].description
        );
    }

    #[test]
    fn findings_carry_a_reason_a_citation_and_a_suggestion() {
        let c = Checker::builtin().unwrap();
        let got = c.check(&req("Loving these shoes")).unwrap();
        assert_eq!(got.verdict(), Verdict::NonCompliant);
        for f in &got.findings {
            assert!(
                !f.reason.is_empty() && !f.citation.is_empty() && !f.suggestion.is_empty(),
                "{f:?}"
            );
            assert!(!f.reason.contains('{'), "{}", f.reason);
        }
    }

    /// Phrasings from the guidance itself (not from the labelled set), each with the verdict
    /// the guidance gives.
    #[test]
    fn the_guidance_own_examples() {
        use chorus_proto::contracts::Connection::{Affiliate, Cash, ContestEntry, FreeProduct};
        let c = Checker::builtin().unwrap();
        let cases: &[(&str, &str, &str, &[chorus_proto::contracts::Connection], Verdict)] = &[
            (
                "US",
                "en",
                "I got this for free from the manufacturer and love it",
                &[FreeProduct],
                Verdict::Compliant,
            ),
            (
                "US",
                "en",
                "The manufacturer sent me this for free. Loving it so far",
                &[FreeProduct],
                Verdict::Compliant,
            ),
            (
                "US",
                "en",
                "I get commissions for purchases made through links in this post",
                &[Affiliate],
                Verdict::Compliant,
            ),
            (
                "US",
                "en",
                "Enter to win! #contest",
                &[ContestEntry],
                Verdict::Compliant,
            ),
            (
                "US",
                "en",
                "Enter to win! #sweeps",
                &[ContestEntry],
                Verdict::NonCompliant,
            ),
            (
                "US",
                "en",
                "Nobody paid me to say this, I just love it",
                &[Cash],
                Verdict::NonCompliant,
            ),
            (
                "US",
                "en",
                "Advertisement: my favourite shoes",
                &[Cash],
                Verdict::Compliant,
            ),
            ("US", "en", "Love this brand #thanks", &[Cash], Verdict::NonCompliant),
            (
                "DE",
                "de",
                "In freundlicher Zusammenarbeit mit @voltra: meine Laufschuhe",
                &[Cash],
                Verdict::NonCompliant,
            ),
            (
                "DE",
                "de",
                "Enthält Werbung für @voltra: meine Laufschuhe",
                &[Cash],
                Verdict::Compliant,
            ),
            (
                "DE",
                "de",
                "Werbung | meine Laufschuhe von @voltra",
                &[Cash],
                Verdict::Compliant,
            ),
            (
                "ES",
                "es",
                "Patrocinado por @brisa_es: mi rutina de mañana",
                &[Cash],
                Verdict::Compliant,
            ),
            (
                "FR",
                "fr",
                "Ceci est une publicité pour @lumiere",
                &[Cash],
                Verdict::Compliant,
            ),
            (
                "FR",
                "fr",
                "Ce n'est pas une publicité, j'adore",
                &[Cash],
                Verdict::NonCompliant,
            ),
        ];
        for (j, l, text, conns, want) in cases {
            let got = c.check(&rules::testing::request(j, l, text, conns)).unwrap();
            assert_eq!(got.verdict(), *want, "{j}-{l} {text:?}: {:#?}", got.findings);
        }
    }

    mod never_panics {
        use chorus_proto::contracts::{CheckDisclosureRequest, Media, VideoDisclosure};
        use proptest::prelude::*;

        use super::*;

        /// Text made of the pieces captions are made of, so labels, hashtags, brands, emoji,
        /// apostrophes, hyphens and other scripts meet in every order.
        fn caption() -> impl Strategy<Value = String> {
            let piece = prop_oneof![
                Just("#ad".to_owned()),
                Just("Ad:".to_owned()),
                Just("not".to_owned()),
                Just("sponsored by".to_owned()),
                Just("@voltra's".to_owned()),
                Just("Voltra".to_owned()),
                Just("#VoltraPartner".to_owned()),
                Just("thanks".to_owned()),
                Just("Werbung".to_owned()),
                Just("publicité".to_owned()),
                Just("🏃‍♀️".to_owned()),
                Just("İ".to_owned()),
                Just("ad-free".to_owned()),
                Just("#".to_owned()),
                Just("'".to_owned()),
                Just("\n".to_owned()),
                "\\PC{0,12}",
            ];
            proptest::collection::vec(piece, 0..40).prop_map(|p| p.join(" "))
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

            #[test]
            fn any_text_gives_an_answer_whose_spans_quote_the_text(
                text in caption(),
                frames in proptest::collection::vec(caption(), 0..3),
                brands in proptest::collection::vec("\\PC{0,12}", 0..3),
                connections in proptest::collection::vec(1i32..=10, 0..3),
                kind in 0i32..=6,
                platform in 1i32..=8,
                jurisdiction in prop_oneof![Just("US"), Just("GB"), Just("DE"), Just("FR"), Just("ES")],
                language in prop_oneof![Just(""), Just("en"), Just("de"), Just("fr"), Just("es")],
                flags in any::<(bool, bool, bool, bool, bool, bool)>(),
            ) {
                let checker = Checker::builtin().unwrap();
                let r = CheckDisclosureRequest {
                    text: text.clone(),
                    platform,
                    jurisdiction: jurisdiction.to_owned(),
                    language: language.to_owned(),
                    connections,
                    conditions_attached: flags.0,
                    brand_names: brands,
                    platform_label_used: flags.1,
                    media: Some(Media {
                        kind,
                        frames: frames.clone(),
                        video: Some(VideoDisclosure {
                            spoken: flags.2,
                            on_screen: flags.3,
                            at_start: flags.4,
                            repeated: flags.5,
                            prominence: 0,
                        }),
                    }),
                };
                if let Ok(got) = checker.check(&r) {
                    prop_assert_ne!(got.verdict(), Verdict::Unspecified);
                    let spans = got.labels.iter().chain(got.findings.iter().filter_map(|f| f.span.as_ref()));
                    for span in spans {
                        let source = match span.field.strip_prefix("frames[") {
                            Some(i) => &frames[i.trim_end_matches(']').parse::<usize>().unwrap()],
                            None => &text,
                        };
                        let quoted: String =
                            source.chars().skip(span.start as usize).take((span.end - span.start) as usize).collect();
                        prop_assert_eq!(&quoted, &span.quote);
                    }
                }
            }
        }
    }
}
