//! `label.after_truncation`: a label that shows only after the platform's "more" cut-off is
//! easy to miss (FTC Disclosures 101; CAP: visible without clicking). The cut-off per platform
//! is `rules/platforms.toml`.

use super::Unit;
use crate::domain::disclosure::scan::Found;

pub(crate) const ID: &str = "label.after_truncation";

/// The label ends after the visible part of the text.
pub(crate) fn applies(unit: &Unit<'_>, f: &Found) -> bool {
    unit.visible.is_some_and(|visible| f.end > visible)
}

#[cfg(test)]
mod tests {
    use chorus_proto::contracts::Severity;

    use super::super::testing::{of, us};
    use super::*;

    const LONG: &str = "Forty miles in these running shoes and my knees have never felt better, even on the steep \
                        downhill stretches near the river path I love";

    #[test]
    fn a_label_past_the_cut_off_is_a_violation() {
        let r = us(&format!("{LONG} #ad"));
        assert_eq!(of(&r, ID), [(Severity::Violation, "#ad".to_owned())]);
    }

    #[test]
    fn a_label_before_the_cut_off_is_not() {
        assert_eq!(of(&us(&format!("#ad {LONG}")), ID), []);
    }

    #[test]
    fn the_cut_off_is_the_platforms() {
        let mut r = us(&format!("{LONG} #ad"));
        r.platform = chorus_proto::types::Platform::X as i32;
        assert_eq!(of(&r, ID), []);
    }
}
