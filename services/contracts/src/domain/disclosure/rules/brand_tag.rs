//! `label.brand_tag`: a tag naming the brand ("#VoltraPartner", "#TeamVoltra", "proud Voltra
//! partner"). The FTC may accept one on a space-limited platform (a judgement: the rule set's
//! `brand_tag = "review"`); the ASA found "#[Brand]Ambassador" unclear (`"violation"`). The tie
//! words are the rule set's `brand_tag_words`; plain-word forms are its `labels.brand_tags`.

use super::{Ctx, Role};
use crate::domain::disclosure::data::{Connections, Judgement, Words};
use crate::domain::disclosure::pattern::Brands;

pub(crate) const ID: &str = "label.brand_tag";

/// A hashtag (lower case, without '#') made of a brand and a tie word, either way round.
pub(crate) fn is_brand_hashtag(tag: &str, brands: &Brands, words: &Words) -> bool {
    brands.joined().any(|brand| {
        let tie = |rest: &str| {
            let rest = rest.trim_matches('_');
            !rest.is_empty() && words.brand_tag_words.contains(rest)
        };
        tag.strip_prefix(brand).is_some_and(tie) || tag.strip_suffix(brand).is_some_and(tie)
    })
}

pub(crate) fn role(ctx: &Ctx<'_>) -> Role {
    match ctx.set.policy.brand_tag {
        Judgement::Review => Role::Review(Connections::ALL),
        Judgement::Violation => Role::Fails,
    }
}

#[cfg(test)]
mod tests {
    use chorus_proto::contracts::{Severity, Verdict};

    use super::super::testing::{check, gb, of, us};
    use super::*;

    #[test]
    fn the_ftc_may_accept_a_brand_tag_the_asa_does_not() {
        let r = us("#VoltraPartner Loving these shoes");
        assert_eq!(of(&r, ID), [(Severity::Warning, "#VoltraPartner".to_owned())]);
        assert_eq!(check(&r).verdict(), Verdict::NeedsReview);
        let r = gb("#Voltra_Ambassador Loving these shoes");
        assert_eq!(of(&r, ID), [(Severity::Violation, "#Voltra_Ambassador".to_owned())]);
    }

    #[test]
    fn plain_words_and_the_other_way_round() {
        assert_eq!(of(&us("Proud Voltra partner! Loving these shoes"), ID).len(), 1);
        assert_eq!(of(&us("#TeamVoltra all the way"), ID).len(), 1);
    }

    #[test]
    fn the_brand_alone_or_another_brand_is_not_a_tag() {
        assert_eq!(of(&us("#Voltra #NikePartner Loving these shoes"), ID), []);
    }
}
