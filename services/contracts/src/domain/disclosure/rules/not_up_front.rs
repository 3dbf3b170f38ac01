//! `label.not_up_front`: where the guidance wants the label "up front" (ASA/CAP; the German and
//! Spanish guidance), a good label that is visible but not the first thing in the text needs a
//! person's judgement. The rule set's `placement` says which applies.

use super::{Ctx, Unit};
use crate::domain::disclosure::data::Placement;
use crate::domain::disclosure::scan::Found;

pub(crate) const ID: &str = "label.not_up_front";

/// The rule set wants the label first, and something else opens the text. A lead-in that
/// only says what the post is ("This post is an ad", "Enthält Werbung") still opens with it.
pub(crate) fn applies(ctx: &Ctx<'_>, unit: &Unit<'_>, f: &Found) -> bool {
    ctx.set.policy.placement == Placement::UpFront && unit.visible.is_some() && !opens(ctx, unit, f)
}

fn opens(ctx: &Ctx<'_>, unit: &Unit<'_>, f: &Found) -> bool {
    let w = &ctx.set.words;
    let sentence = unit.text.tokens[f.first].sentence;
    (0..f.first).all(|k| {
        let word = unit.text.word(k);
        unit.text.tokens[k].sentence == sentence
            && (w.lead_in.contains(word) || w.predicates.contains(word) || w.articles.contains(word))
    })
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
        assert_eq!(
            check(&gb("This post is an ad for @voltra: loving these shoes")).verdict(),
            Verdict::Compliant
        );
        assert_eq!(
            check(&gb("Loving these shoes, this is an ad")).verdict(),
            Verdict::NeedsReview
        );
    }

    #[test]
    fn the_us_accepts_it_anywhere_visible() {
        assert_eq!(of(&us("Loving these shoes #ad"), ID), []);
    }
}
