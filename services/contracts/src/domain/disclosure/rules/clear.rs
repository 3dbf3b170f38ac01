//! `label.clear`: the label that discloses, where it stands (a NOTE, so the caller sees what
//! was accepted). A good label is one of the rule set's `labels.good`, in its language, visible
//! before the cut-off, not buried, not negated and, where the rule set wants it, up front.

pub(crate) const ID: &str = "label.clear";

#[cfg(test)]
mod tests {
    use chorus_proto::contracts::{Severity, Verdict};

    use super::super::testing::{check, of, us};
    use super::*;

    #[test]
    fn the_accepted_label_is_a_note_with_its_span() {
        let r = us("Loving my new shoes #ad");
        let got = check(&r);
        assert_eq!(got.verdict(), Verdict::Compliant);
        let f = got.findings.iter().find(|f| f.rule_id == ID).unwrap();
        assert_eq!(f.severity(), Severity::Note);
        let span = f.span.as_ref().unwrap();
        assert_eq!((span.start, span.end, span.quote.as_str()), (20, 23, "#ad"));
        assert_eq!(got.labels.len(), 1);
    }

    #[test]
    fn good_labels_in_their_forms() {
        for text in [
            "Ad: new shoes",
            "[AD] new shoes",
            "#Sponsored new shoes",
            "Paid partnership with Voltra",
        ] {
            assert_eq!(of(&us(text), ID).len(), 1, "{text}");
        }
    }
}
