//! `label.not_up_front`: where the guidance wants the label "up front" (ASA/CAP; the German and
//! Spanish guidance), a good label that is visible but not the first thing in the text needs a
//! person's judgement. The rule set's `placement` says which applies.

use super::{Ctx, Unit};
use crate::domain::disclosure::data::Placement;
use crate::domain::disclosure::scan::Found;

pub(crate) const ID: &str = "label.not_up_front";

/// The rule set wants the label first, and something else opens the text.
pub(crate) fn applies(ctx: &Ctx<'_>, unit: &Unit<'_>, f: &Found) -> bool {
    ctx.set.policy.placement == Placement::UpFront && unit.visible.is_some() && f.first != 0
}

#[cfg(test)]
mod tests {
    use chorus_proto::contracts::{Severity, Verdict};

    use super::super::testing::{check, gb, of, us};
    use super::*;

    #[test]
    fn gb_wants_the_label_first() {
        let r = gb("Loving these shoes #ad");
        assert_eq!(of(&r, ID), [(Severity::Warning, "#ad".to_owned())]);
        assert_eq!(check(&r).verdict(), Verdict::NeedsReview);
        assert_eq!(of(&gb("[Ad] Loving these shoes"), ID), []);
        assert_eq!(check(&gb("✨ #AD ✨ Loving these shoes")).verdict(), Verdict::Compliant);
    }

    #[test]
    fn the_us_accepts_it_anywhere_visible() {
        assert_eq!(of(&us("Loving these shoes #ad"), ID), []);
    }
}
