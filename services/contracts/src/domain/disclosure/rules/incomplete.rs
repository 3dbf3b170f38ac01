//! `label.incomplete`: a statement or label that discloses only some of the connections
//! ("Voltra gave me these" says the free product, not the payment; "#contest" says only the
//! contest entry). The rule set's `labels.partial` lists each with what it `covers`; UK
//! "gifted" covers a gift only while the brand set no conditions (`unconditional_gift_only`).

use super::{Ctx, Role};
use crate::domain::disclosure::data::Entry;

pub(crate) const ID: &str = "label.incomplete";

pub(crate) fn role(ctx: &Ctx<'_>, e: &Entry) -> Role {
    if e.unconditional_gift_only && ctx.conditions_attached {
        Role::Fails
    } else {
        Role::Discloses(e.covers)
    }
}

#[cfg(test)]
mod tests {
    use chorus_proto::contracts::{Connection, Severity, Verdict};

    use super::super::testing::{check, of, request};
    use super::*;

    #[test]
    fn a_statement_of_the_gift_hides_the_payment() {
        let r = request(
            "US",
            "en",
            "Voltra gave me these shoes to try",
            &[Connection::FreeProduct, Connection::Cash],
        );
        let got = check(&r);
        assert_eq!(got.verdict(), Verdict::NonCompliant);
        let f = got.findings.iter().find(|f| f.rule_id == ID).unwrap();
        assert!(f.reason.contains("the payment"), "{}", f.reason);
        assert_eq!(f.span.as_ref().unwrap().quote, "Voltra gave me");
    }

    #[test]
    fn a_statement_covering_every_connection_discloses() {
        let r = request(
            "US",
            "en",
            "Voltra gave me these shoes to try",
            &[Connection::FreeProduct],
        );
        assert_eq!(check(&r).verdict(), Verdict::Compliant);
        assert_eq!(of(&r, ID), []);
    }

    #[test]
    fn uk_gifted_covers_only_an_unconditional_gift() {
        let mut r = request(
            "GB",
            "en",
            "Gifted by @voltra: loving these shoes",
            &[Connection::FreeProduct],
        );
        r.conditions_attached = false;
        assert_eq!(check(&r).verdict(), Verdict::Compliant);
        r.conditions_attached = true;
        assert_eq!(of(&r, ID)[0].0, Severity::Violation);
    }
}
