//! The candidates as the API returns them: each part of the score explained in a sentence,
//! and one sentence on who they are, what they are strongest on and what they cost. Written
//! only for the candidates returned, never in the scan.

use chorus_catalog::currency;
use chorus_catalog::evidence::score_with_evidence;
use chorus_catalog::norms::engagement_norm;
use chorus_proto::matching::{Candidate, ScorePart};
use chorus_proto::types::{Platform, Tier};

use super::plan::Plan;
use super::scan::MAX_SCAN_THREADS;
use super::score::{
    AUDIENCE_QUALITY, COST_EFFICIENCY, DEMOGRAPHIC_FIT, ENGAGEMENT, LOCATION, NICHE_FIT, PARTS, SPONSORED_FREE,
    SPONSORED_FULL, SPONSORED_PENALTY_POINTS, SPONSORED_SATURATION, Scored,
};
use crate::domain::index::{Entry, age_bucket_name, format_id};

impl Plan<'_> {
    /// The API's candidates for `scored`, in order; a long list is written on up to
    /// `threads` threads (the service passes its cores).
    pub fn candidates(&self, scored: &[Scored], threads: usize) -> Vec<Candidate> {
        let threads = threads.clamp(1, MAX_SCAN_THREADS);
        if threads == 1 || scored.len() < 64 {
            return scored.iter().map(|s| self.candidate(s)).collect();
        }
        let per = scored.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let handles: Vec<_> = scored
                .chunks(per)
                .map(|chunk| scope.spawn(move || chunk.iter().map(|s| self.candidate(s)).collect::<Vec<_>>()))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        })
    }

    /// A scored candidate as the API returns it, with the breakdown and a reason.
    pub fn candidate(&self, s: &Scored) -> Candidate {
        let e = &self.index.slots()[s.slot as usize];
        let account = e
            .accounts
            .iter()
            .filter(|a| self.platforms & (1 << a.platform) != 0)
            .max_by_key(|a| a.followers);
        let tier = Tier::try_from(i32::from(s.hot.tier)).unwrap_or(Tier::Unspecified);
        let mut breakdown: Vec<ScorePart> = PARTS
            .iter()
            .zip(s.parts)
            .map(|((part, weight), value)| ScorePart {
                part: (*part).to_owned(),
                value: round3(value),
                weight: *weight,
                contribution: round2(value * weight * 100.0),
                explanation: self.explain(part, value, e, s),
            })
            .collect();
        breakdown.push(ScorePart {
            part: SPONSORED_SATURATION.to_owned(),
            value: round3(s.penalty),
            weight: SPONSORED_PENALTY_POINTS / 100.0,
            contribution: -round2(s.penalty * SPONSORED_PENALTY_POINTS),
            explanation: format!(
                "{:.0}% of recent posts sponsored (no penalty up to {:.0}%, full at {:.0}%).",
                f64::from(s.hot.sponsored) * 100.0,
                SPONSORED_FREE * 100.0,
                SPONSORED_FULL * 100.0
            ),
        });
        let reason = self.reason(e, s, &breakdown);
        Candidate {
            influencer: format!("influencers/{}", format_id(e.id)),
            display_name: e.display_name.to_string(),
            platform: i32::from(s.hot.platform),
            handle: account.map(|a| a.handle.to_string()).unwrap_or_default(),
            followers: i64::from(s.hot.followers),
            tier: tier as i32,
            city: title(self.index.places.name(e.city)),
            score: s.score,
            breakdown,
            reason,
            cost: Some(self.money(s.cost)),
            cost_estimated: s.cost_estimated,
            expected_engagements: round2(s.engagements),
            expected_conversions: if self.sales { round2(s.conversions) } else { 0.0 },
            segment: s
                .segment
                .and_then(|i| self.segments.get(i as usize))
                .map(|g| g.label.clone())
                .unwrap_or_default(),
        }
    }

    fn explain(&self, part: &str, value: f64, e: &Entry, s: &Scored) -> String {
        match part {
            NICHE_FIT if self.niches.is_empty() => "The brief names no niche.".to_owned(),
            NICHE_FIT => {
                let hits: Vec<&str> = self
                    .niches
                    .iter()
                    .filter(|(bit, _, _)| e.niches & bit != 0)
                    .map(|n| n.2)
                    .collect();
                format!(
                    "Covers {} of the brief's niches ({}).",
                    hits.len(),
                    if hits.is_empty() {
                        "none".to_owned()
                    } else {
                        hits.join(", ")
                    }
                )
            }
            LOCATION if self.places.is_empty() => "The brief takes any location.".to_owned(),
            LOCATION => {
                let at = if value >= 1.0 {
                    "city"
                } else if value >= 0.8 {
                    "region"
                } else {
                    "country"
                };
                format!(
                    "Lives in {}, {}: matches the brief at {at} level.",
                    title(self.index.places.name(e.city)),
                    self.index.places.name(e.country)
                )
            }
            ENGAGEMENT => {
                let tier = Tier::try_from(i32::from(s.hot.tier)).unwrap_or(Tier::Unspecified);
                let (low, high) = engagement_norm(tier);
                if s.hot.engagement.is_nan() {
                    "No engagement figures yet.".to_owned()
                } else {
                    format!(
                        "Engagement {:.1}% against the {} norm of {:.0}-{:.0}%.",
                        f64::from(s.hot.engagement) * 100.0,
                        tier_name(tier),
                        low * 100.0,
                        high * 100.0
                    )
                }
            }
            AUDIENCE_QUALITY if s.hot.quality.is_nan() => "Not vetted yet: counted as middling.".to_owned(),
            AUDIENCE_QUALITY => format!(
                "Vetting scores the audience {}.",
                // The scored account is the largest on its platform (see `filter`).
                score_with_evidence(
                    f64::from(s.hot.quality),
                    e.account_on(1 << s.hot.platform)
                        .map(|a| a.evidence)
                        .unwrap_or_default()
                )
            ),
            DEMOGRAPHIC_FIT if self.ages.is_empty() && self.countries.is_empty() => {
                "The brief sets no audience target.".to_owned()
            }
            DEMOGRAPHIC_FIT => match &e.audience {
                None => "Audience demographics unknown: counted as middling.".to_owned(),
                Some(a) => format!(
                    "{:.0}% fit with the target audience (largest age group {}).",
                    value * 100.0,
                    age_bucket_name(a.largest_bucket())
                ),
            },
            COST_EFFICIENCY if s.cost <= 0 => format!(
                "{:.0} expected engagements for no cash ({} {}){}.",
                s.engagements,
                currency::decimal(0, &self.currency_code),
                self.currency_code,
                if s.cost_estimated {
                    " (estimated from market rates where the rate card lacks a kind)"
                } else {
                    ""
                }
            ),
            COST_EFFICIENCY => format!(
                "{:.1} expected engagements per {} for {} {}{}.",
                s.engagements / (s.cost as f64 / self.minor_per_major),
                self.currency_code,
                currency::decimal(s.cost, &self.currency_code),
                self.currency_code,
                if s.cost_estimated {
                    " (estimated from market rates where the rate card lacks a kind)"
                } else {
                    ""
                }
            ),
            _ => String::new(),
        }
    }

    /// One sentence: who they are, the two strongest parts, and the price.
    fn reason(&self, e: &Entry, s: &Scored, breakdown: &[ScorePart]) -> String {
        let tier = Tier::try_from(i32::from(s.hot.tier)).unwrap_or(Tier::Unspecified);
        let mut strongest: Vec<&ScorePart> = breakdown.iter().filter(|p| p.contribution > 0.0).collect();
        strongest.sort_by(|a, b| b.contribution.total_cmp(&a.contribution));
        let strengths: Vec<String> = strongest.iter().take(2).map(|p| p.part.replace('_', " ")).collect();
        let platform = Platform::try_from(i32::from(s.hot.platform))
            .map(|p| p.as_str_name().trim_start_matches("PLATFORM_").to_lowercase())
            .unwrap_or_default();
        let mut reason = format!(
            "{} {platform} creator with {} followers{}; strongest on {}; {} {} for the deliverables",
            capitalise(tier_name(tier)),
            thousands(s.hot.followers),
            if e.city == 0 {
                String::new()
            } else {
                format!(" in {}", title(self.index.places.name(e.city)))
            },
            strengths.join(" and "),
            currency::decimal(s.cost, &self.currency_code),
            self.currency_code,
        );
        if s.penalty > 0.0 {
            reason.push_str("; many sponsored posts");
        }
        reason.push('.');
        reason
    }
}

/// 12345 → "12,345".
fn thousands(n: u32) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn tier_name(t: Tier) -> &'static str {
    match t {
        Tier::Emerging => "emerging",
        Tier::Nano => "nano",
        Tier::Micro => "micro",
        Tier::Mid => "mid-tier",
        Tier::Macro => "macro",
        Tier::Mega => "mega",
        Tier::Unspecified => "unclassified",
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// "san antonio" → "San Antonio" (the index keeps places lower case).
fn title(s: &str) -> String {
    s.split(' ').map(capitalise).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use chorus_proto::registry::{AccountVetting, Verdict, VettingReport};
    use chorus_proto::types::CompensationKind;

    use super::super::Ranking;
    use super::super::tests_support::{brief, index, plan};
    use super::*;
    use crate::domain::index::tests::influencer;
    #[test]
    fn ranking_is_deterministic_and_explained() {
        let ix = index();
        let p = plan(&ix, &brief());
        let a = p.run(3, 1);
        let b = p.run(3, 1);
        let ids = |r: &Ranking| r.top.iter().map(|s| s.id).collect::<Vec<_>>();
        assert_eq!(ids(&a), ids(&b));
        assert_eq!(a.top.len(), 3);
        assert!(a.top.windows(2).all(|w| w[0].score >= w[1].score));
        let c = p.candidate(&a.top[0]);
        assert_eq!(c.breakdown.len(), 7);
        let total: f64 = c.breakdown.iter().map(|p| p.contribution).sum();
        assert!((total - c.score).abs() < 0.05, "{total} vs {}", c.score);
        assert!(c.reason.starts_with("Nano instagram creator"), "{}", c.reason);
        // The feed post is on the rate card; the story is estimated at $10 per 1,000
        // followers (a cent each) times the story factor.
        assert!(c.cost_estimated);
        assert_eq!(
            c.cost.unwrap().amount_minor,
            5_000 + (c.followers as f64 * 0.43).round() as i64
        );
    }

    #[test]
    fn the_quality_explanation_says_how_much_the_score_rests_on() {
        let mut ix = index();
        // Person 1's 100 rests on two signals of six, from the profile's gist; person 2's 80 on
        // all six, from a report event; person 3's gist predates the count.
        let mut thin = influencer(1, "Denver", 3_000, 20);
        thin.compensation_accepted = vec![CompensationKind::Product as i32];
        thin.accounts[0].vetting = Some(AccountVetting {
            quality_score: 100.0,
            verdict: Verdict::Review as i32,
            signals_available: 2,
            signals_total: 6,
            thin_evidence: true,
            ..Default::default()
        });
        ix.upsert(&thin);
        let full = influencer(2, "Austin", 4_000, 10);
        ix.vetting(
            &full.name,
            &VettingReport {
                platform: full.accounts[0].platform,
                handle: full.accounts[0].handle.clone(),
                verdict: Verdict::Ok as i32,
                quality_score: 80.0,
                signals_available: 6,
                signals_total: 6,
                compute_time: Some(prost_types::Timestamp { seconds: 1, nanos: 0 }),
                ..Default::default()
            },
        );
        let mut old = influencer(3, "Denver", 5_000, 20);
        old.compensation_accepted = vec![CompensationKind::Product as i32];
        old.accounts[0].vetting = Some(AccountVetting {
            quality_score: 75.0,
            verdict: Verdict::Ok as i32,
            ..Default::default()
        });
        ix.upsert(&old);
        let p = plan(&ix, &brief());
        let said = |id: u128| {
            p.assess(id)
                .unwrap()
                .breakdown
                .into_iter()
                .find(|part| part.part == AUDIENCE_QUALITY)
                .unwrap()
                .explanation
        };
        assert_eq!(
            said(1),
            "Vetting scores the audience 100, thin evidence: 2 of 6 signals."
        );
        assert_eq!(said(2), "Vetting scores the audience 80, 6 of 6 signals.");
        assert_eq!(said(3), "Vetting scores the audience 75.");
    }
}
