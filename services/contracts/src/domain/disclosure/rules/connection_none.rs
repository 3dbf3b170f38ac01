//! `connection.none`: with no material connection there is nothing to disclose (FTC 16 CFR
//! 255.5 and CAP section 2 are about connections); the verdict is COMPLIANT whatever the text.

pub(crate) const ID: &str = "connection.none";

#[cfg(test)]
mod tests {
    use chorus_proto::contracts::{Severity, Verdict};

    use super::super::testing::{check, request};
    use super::*;

    #[test]
    fn nothing_to_disclose_is_compliant() {
        let got = check(&request("US", "en", "Loving my new shoes, #notsponsored", &[]));
        assert_eq!(got.verdict(), Verdict::Compliant);
        assert_eq!(got.findings.len(), 1);
        assert_eq!(got.findings[0].rule_id, ID);
        assert_eq!(got.findings[0].severity(), Severity::Note);
    }
}
