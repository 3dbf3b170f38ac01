//! `label.after_brand_mention`: on a blog the disclosure belongs at the top, before the first
//! mention of the brand (FTC Disclosures 101: "at the top of the post"). Which platforms want
//! this is `label_before_brand_mention` in `rules/platforms.toml`.

use super::{Ctx, Unit};
use crate::domain::disclosure::scan::Found;

pub(crate) const ID: &str = "label.after_brand_mention";

/// The platform wants the label before the brand's first mention, and the brand came first.
pub(crate) fn applies(ctx: &Ctx<'_>, unit: &Unit<'_>, f: &Found) -> bool {
    ctx.label_before_brand_mention && unit.first_brand_mention.is_some_and(|m| m < f.first)
}

#[cfg(test)]
mod tests {
    use chorus_proto::contracts::Severity;
    use chorus_proto::types::Platform;

    use super::super::testing::{of, us};
    use super::*;

    #[test]
    fn a_blog_names_the_brand_before_the_label() {
        let mut r = us("I tried the Voltra Glide this week. #ad The cushioning is great.");
        r.platform = Platform::Blog as i32;
        assert_eq!(of(&r, ID), [(Severity::Violation, "#ad".to_owned())]);
    }

    #[test]
    fn a_label_naming_the_brand_at_the_top_is_fine() {
        let mut r = us("Sponsored by Voltra. I tried the Voltra Glide this week.");
        r.platform = Platform::Blog as i32;
        assert_eq!(of(&r, ID), []);
        r.platform = Platform::Instagram as i32;
        r.text = "I tried the Voltra Glide this week. #ad".to_owned();
        assert_eq!(of(&r, ID), []);
    }
}
