//! `platform_label.alone`: the platform's paid-partnership toggle as the only disclosure. The
//! FTC does not accept relying on it alone (Disclosures 101); the ASA, German and Spanish
//! guidance treat it as helpful but not always enough, a judgement. The rule set's
//! `platform_label_alone` says which.

use chorus_proto::contracts::Severity;

use super::{Ctx, Level};
use crate::domain::disclosure::data::Judgement;

pub(crate) const ID: &str = "platform_label.alone";

/// When the toggle is on and the text discloses nothing: the level it gives and the
/// finding's severity.
pub(crate) fn applies(ctx: &Ctx<'_>, used: bool, level: Level) -> Option<(Level, Severity)> {
    if !used || level != Level::None {
        return None;
    }
    Some(match ctx.set.policy.platform_label_alone {
        Judgement::Review => (Level::Review, Severity::Warning),
        Judgement::Violation => (Level::None, Severity::Violation),
    })
}

#[cfg(test)]
mod tests {
    use chorus_proto::contracts::Verdict;

    use super::super::testing::{check, gb, of, us};
    use super::*;

    #[test]
    fn the_toggle_alone_is_not_enough_for_the_ftc_and_a_judgement_for_the_asa() {
        let mut r = us("Loving these shoes");
        r.platform_label_used = true;
        assert_eq!(of(&r, ID), [(Severity::Violation, String::new())]);
        let mut r = gb("Loving these shoes");
        r.platform_label_used = true;
        assert_eq!(check(&r).verdict(), Verdict::NeedsReview);
    }

    #[test]
    fn with_a_good_label_the_toggle_is_fine() {
        let mut r = us("#ad Loving these shoes");
        r.platform_label_used = true;
        assert_eq!(of(&r, ID), []);
        assert_eq!(check(&r).verdict(), Verdict::Compliant);
    }
}
