//! `label.wrong_language`: the disclosure must be in the language of the endorsement (FTC
//! 16 CFR 255.5 and What People Are Asking; the CAP, German, French and Spanish guidance):
//! "#anzeige" in an English caption, or "#ad" in a German one, does not disclose. A rule set's
//! foreign labels are the other languages' good labels, learnt at load.

pub(crate) const ID: &str = "label.wrong_language";

#[cfg(test)]
mod tests {
    use chorus_proto::contracts::{Connection, Severity, Verdict};

    use super::super::testing::{check, of, request, us};
    use super::*;

    #[test]
    fn a_label_in_another_language_does_not_disclose() {
        let r = us("#anzeige Loving these shoes");
        assert_eq!(of(&r, ID), [(Severity::Violation, "#anzeige".to_owned())]);
        let de = request("DE", "de", "#ad Ich liebe diese Schuhe", &[Connection::Cash]);
        assert_eq!(check(&de).verdict(), Verdict::NonCompliant);
        let f = check(&de).findings.into_iter().find(|f| f.rule_id == ID).unwrap();
        assert!(f.reason.contains("English"), "{}", f.reason);
    }

    #[test]
    fn beside_the_right_label_it_is_a_note() {
        let de = request("DE", "de", "#Werbung #ad Ich liebe diese Schuhe", &[Connection::Cash]);
        assert_eq!(check(&de).verdict(), Verdict::Compliant);
    }
}
