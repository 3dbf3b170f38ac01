//! `label.ambiguous`: vague labels ("#sp", "#spon", "#collab", "#partner", "#ambassador",
//! "thanks @brand", "gifted", "PR") do not disclose alone (FTC Disclosures 101; CAP
//! Influencers' guide). Each rule set lists them with why; a few the guidance neither accepts
//! nor rejects for some connections ("#gifted" for a free product in the US) are `review_for`
//! those connections: a person decides.

use super::{Ctx, Role};
use crate::domain::disclosure::data::Entry;

pub(crate) const ID: &str = "label.ambiguous";

/// For review when the label is one a person may accept for these connections; else it fails.
pub(crate) fn role(ctx: &Ctx<'_>, e: &Entry) -> Role {
    let for_review =
        e.review_for.intersects(ctx.connections) && (!e.review_only_unconditional || !ctx.conditions_attached);
    if for_review {
        Role::Review(e.review_for)
    } else {
        Role::Fails
    }
}

#[cfg(test)]
mod tests {
    use chorus_proto::contracts::{Connection, Severity, Verdict};

    use super::super::testing::{check, of, request, us};
    use super::*;

    #[test]
    fn a_vague_label_alone_is_a_violation() {
        for text in [
            "#sp Loving these shoes",
            "#collab Loving these shoes",
            "Thanks @voltra for these shoes",
        ] {
            let got = of(&us(text), ID);
            assert_eq!(got.len(), 1, "{text}");
            assert_eq!(got[0].0, Severity::Violation, "{text}");
        }
    }

    #[test]
    fn beside_a_good_label_it_does_no_harm() {
        let r = us("#ad #collab Loving these shoes");
        assert_eq!(of(&r, ID), [(Severity::Note, "#collab".to_owned())]);
        assert_eq!(check(&r).verdict(), Verdict::Compliant);
    }

    #[test]
    fn some_are_for_review_for_some_connections() {
        let gift = request("US", "en", "#gifted Loving these shoes", &[Connection::FreeProduct]);
        assert_eq!(of(&gift, ID), [(Severity::Warning, "#gifted".to_owned())]);
        let paid = request(
            "US",
            "en",
            "#gifted Loving these shoes",
            &[Connection::FreeProduct, Connection::Cash],
        );
        assert_eq!(of(&paid, ID), [(Severity::Violation, "#gifted".to_owned())]);
    }
}
