//! How much a vetting score rests on, said the same way wherever a score is shown (the CLI, a
//! match's explanation): "100, thin evidence: 2 of 6 signals". A 100 from two signals is not a
//! 100 from six, and a verdict of REVIEW beside it only makes sense with the count.

use chorus_proto::registry::{AccountVetting, VettingReport};

/// The signals a vetting score rests on, as the registry's report counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Evidence {
    /// Signals with evidence, of `total`; 0 of 0 when the report predates the count.
    pub available: u32,
    pub total: u32,
    /// Their weight is under the registry's minimum coverage: too little to clear anyone.
    pub thin: bool,
}

fn count(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

impl From<&VettingReport> for Evidence {
    fn from(r: &VettingReport) -> Self {
        Evidence {
            available: count(r.signals_available),
            total: count(r.signals_total),
            thin: r.thin_evidence,
        }
    }
}

impl From<&AccountVetting> for Evidence {
    fn from(v: &AccountVetting) -> Self {
        Evidence {
            available: count(v.signals_available),
            total: count(v.signals_total),
            thin: v.thin_evidence,
        }
    }
}

impl Evidence {
    /// "thin evidence: 2 of 6 signals" or "5 of 6 signals"; None when not known.
    pub fn describe(&self) -> Option<String> {
        if self.total == 0 {
            return None;
        }
        let of = format!("{} of {} signals", self.available, self.total);
        Some(if self.thin { format!("thin evidence: {of}") } else { of })
    }
}

/// A vetting score with what it rests on: "100, thin evidence: 2 of 6 signals",
/// "82, 6 of 6 signals", or "82" when the evidence is not known.
pub fn score_with_evidence(score: f64, evidence: Evidence) -> String {
    match evidence.describe() {
        Some(e) => format!("{score:.0}, {e}"),
        None => format!("{score:.0}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_score_says_how_much_it_rests_on() {
        let thin = Evidence {
            available: 2,
            total: 6,
            thin: true,
        };
        assert_eq!(score_with_evidence(100.0, thin), "100, thin evidence: 2 of 6 signals");
        let full = Evidence {
            available: 6,
            total: 6,
            thin: false,
        };
        assert_eq!(score_with_evidence(81.6, full), "82, 6 of 6 signals");
        // A report from before the count was kept shows the score alone.
        assert_eq!(score_with_evidence(82.0, Evidence::default()), "82");
    }

    #[test]
    fn reports_and_gists_carry_the_same_evidence() {
        let report = VettingReport {
            signals_available: 3,
            signals_total: 6,
            thin_evidence: true,
            ..VettingReport::default()
        };
        let gist = AccountVetting {
            signals_available: 3,
            signals_total: 6,
            thin_evidence: true,
            ..AccountVetting::default()
        };
        assert_eq!(Evidence::from(&report), Evidence::from(&gist));
        assert_eq!(
            Evidence::from(&report).describe().as_deref(),
            Some("thin evidence: 3 of 6 signals")
        );
    }
}
