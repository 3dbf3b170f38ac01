//! The language judged. A disclosure must be in the language of the endorsement, so the rule
//! set is the one of the text's language. When the caller does not say it, it is detected
//! among the jurisdiction's languages and English; `language.unsure` when detection is not
//! reliable (the jurisdiction's first language is used), `language.unsupported` when the text
//! is in a language the jurisdiction has no rule set for (its first language is used, so a
//! German audience still needs the German label).

use whatlang::{Detector, Lang};

pub(crate) const UNSURE: &str = "language.unsure";
pub(crate) const UNSUPPORTED: &str = "language.unsupported";

/// What detection found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Detected {
    /// One of the jurisdiction's languages: the index among its rule sets.
    Supported(usize),
    /// Reliable, but without a rule set in the jurisdiction.
    Unsupported(Lang),
    Unsure,
}

/// Detects the language of `text` among `candidates` (the jurisdiction's rule sets' languages,
/// in order) with `detector` (restricted to those and English).
pub(crate) fn detect(detector: &Detector, candidates: &[Lang], text: &str) -> Detected {
    match detector.detect(text) {
        Some(info) if info.is_reliable() => match candidates.iter().position(|l| *l == info.lang()) {
            Some(i) => Detected::Supported(i),
            None => Detected::Unsupported(info.lang()),
        },
        _ => Detected::Unsure,
    }
}

#[cfg(test)]
mod tests {
    use chorus_proto::contracts::{Connection, Severity};

    use super::super::testing::{check, request};
    use super::*;

    #[test]
    fn a_clear_text_is_detected() {
        let d = Detector::with_allowlist(vec![Lang::Eng, Lang::Spa]);
        let text = "Este fin de semana probé las nuevas zapatillas y la verdad es que son muy cómodas para correr";
        assert_eq!(detect(&d, &[Lang::Eng, Lang::Spa], text), Detected::Supported(1));
    }

    #[test]
    fn the_response_says_what_was_detected() {
        let text = "#publicidad Este fin de semana probé las nuevas zapatillas y la verdad es que son muy cómodas";
        let got = check(&request("US", "", text, &[Connection::Cash]));
        assert_eq!(
            (got.language.as_str(), got.language_detected, got.rule_set.as_str()),
            ("es", true, "US-es")
        );
    }

    #[test]
    fn an_unsure_detection_falls_back_with_a_note() {
        let got = check(&request("DE", "", "#ad ok", &[Connection::Cash]));
        assert_eq!(got.rule_set, "DE-de");
        let note = got
            .findings
            .iter()
            .find(|f| f.rule_id == UNSURE || f.rule_id == UNSUPPORTED)
            .unwrap();
        assert_eq!(note.severity(), Severity::Note);
    }

    #[test]
    fn english_in_germany_is_judged_by_the_german_rules() {
        let text = "I have been running in these shoes for a month and they are the most comfortable I own";
        let got = check(&request("DE", "", text, &[Connection::Cash]));
        assert_eq!(got.rule_set, "DE-de");
        assert!(got.findings.iter().any(|f| f.rule_id == UNSUPPORTED));
    }
}
