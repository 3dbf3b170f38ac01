//! `label.missing`: a material connection and no disclosure of any kind in the text (FTC
//! 16 CFR 255.5; CAP 2.1). Other rules speak when there is a label that fails.

pub(crate) const ID: &str = "label.missing";

#[cfg(test)]
mod tests {
    use chorus_proto::contracts::{Connection, Severity, Verdict};

    use super::super::testing::{check, of, request, us};
    use super::*;

    #[test]
    fn a_connection_without_a_label_is_a_violation() {
        let r = us("Loving my new shoes! #running #adventure");
        assert_eq!(of(&r, ID), [(Severity::Violation, String::new())]);
        assert_eq!(check(&r).verdict(), Verdict::NonCompliant);
    }

    #[test]
    fn family_employment_ownership_and_contests_are_connections() {
        for c in [
            Connection::FamilyOrFriend,
            Connection::Employment,
            Connection::Ownership,
            Connection::ContestEntry,
        ] {
            let r = request("US", "en", "Loving these shoes", &[c]);
            assert_eq!(check(&r).verdict(), Verdict::NonCompliant, "{c:?}");
        }
    }
}
