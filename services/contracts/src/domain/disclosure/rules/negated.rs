//! `label.negated`: "not sponsored", "#notanad", "keine Werbung" deny a connection that exists
//! (FTC 16 CFR 255.5: the connection must be disclosed, not denied). The negation words and
//! the negated tags are the rule set's `words.negations` and `labels.negated`.

use crate::domain::disclosure::data::Words;
use crate::domain::disclosure::text::{Sigil, Text};

pub(crate) const ID: &str = "label.negated";

/// How many words before a label a negation may stand ("not really an ad").
const REACH: usize = 3;

/// A negation word stands shortly before word `first`, in its sentence, with no hashtag
/// between (a hashtag label is never negated by prose: "no filter #ad").
pub(crate) fn is_negated(text: &Text<'_>, first: usize, words: &Words) -> bool {
    let tokens = &text.tokens;
    if tokens[first].sigil == Sigil::Hash {
        return false;
    }
    let sentence = tokens[first].sentence;
    (first.saturating_sub(REACH)..first)
        .rev()
        .take_while(|&k| tokens[k].sentence == sentence && tokens[k].sigil == Sigil::None)
        .any(|k| words.negations.contains(text.word(k)))
}

#[cfg(test)]
mod tests {
    use chorus_proto::contracts::{Severity, Verdict};

    use super::super::testing::{check, of, request, us};
    use super::*;
    use chorus_proto::contracts::Connection;

    #[test]
    fn a_denial_is_a_violation() {
        for text in [
            "Not sponsored, I just love them",
            "This is not an ad!",
            "#notsponsored love them",
        ] {
            let r = us(text);
            assert_eq!(of(&r, ID).len(), 1, "{text}");
            assert_eq!(check(&r).verdict(), Verdict::NonCompliant, "{text}");
        }
        let de = request("DE", "de", "Keine Werbung, ich liebe sie", &[Connection::Cash]);
        assert_eq!(of(&de, ID)[0].0, Severity::Violation);
    }

    #[test]
    fn prose_does_not_negate_a_hashtag() {
        assert_eq!(of(&us("No filter needed #ad"), ID), []);
        assert_eq!(
            check(&us("No filter needed. Ad: love them")).verdict(),
            Verdict::Compliant
        );
    }
}
