//! `label.buried`: a label standing in a run of other hashtags is hard to spot (FTC Disclosures
//! 101: "don't bury it ... in a group of hashtags"). A run opening the text does not bury.
//! How many other hashtags bury a label is the rule set's `buried_among_hashtags`.

use super::{Ctx, Unit};
use crate::domain::disclosure::scan::Found;
use crate::domain::disclosure::text::Sigil;

pub(crate) const ID: &str = "label.buried";

/// The hashtag run (first and last word) that buries the label, if one does.
pub(crate) fn applies(ctx: &Ctx<'_>, unit: &Unit<'_>, f: &Found) -> Option<(usize, usize)> {
    let tokens = &unit.text.tokens;
    if f.first != f.last || tokens[f.first].sigil != Sigil::Hash {
        return None;
    }
    let in_run = |k: usize| tokens[k].sigil == Sigil::Hash && tokens[k].spaced_from_previous;
    let mut first = f.first;
    while first > 0 && in_run(first) && tokens[first - 1].sigil == Sigil::Hash {
        first -= 1;
    }
    let mut last = f.first;
    while last + 1 < tokens.len() && in_run(last + 1) {
        last += 1;
    }
    let others = (last - first) as u32;
    (first > 0 && others >= ctx.set.policy.buried_among_hashtags).then_some((first, last))
}

#[cfg(test)]
mod tests {
    use chorus_proto::contracts::Severity;

    use super::super::testing::{of, us};
    use super::*;

    #[test]
    fn a_label_among_trailing_hashtags_is_buried_and_the_run_is_quoted() {
        let r = us("New shoes! #running #fitness #ad #marathon #shoes");
        assert_eq!(
            of(&r, ID),
            [(Severity::Violation, "#running #fitness #ad #marathon #shoes".to_owned())]
        );
    }

    #[test]
    fn a_short_run_or_one_opening_the_text_does_not_bury() {
        assert_eq!(of(&us("New shoes! #running #ad"), ID), []);
        assert_eq!(of(&us("#ad #running #fitness #marathon New shoes!"), ID), []);
    }

    #[test]
    fn words_between_hashtags_break_the_run() {
        assert_eq!(of(&us("New shoes #running and #fitness, #ad #marathon"), ID), []);
    }
}
