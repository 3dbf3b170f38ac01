//! The states of offers, contracts and deliverables, and every move between them: who may make
//! it, from which states, and what it changes. Pure functions on the stored messages; the store
//! loads, calls one, and saves the result with its events in one transaction.
//!
//! Offers: OPEN → ACCEPTED | DECLINED | WITHDRAWN | EXPIRED; a counter keeps it OPEN with a new
//! version proposed by the other party. Contracts: DRAFT ⇄ SENT → SIGNED_BY_ONE → ACTIVE →
//! COMPLETED | BREACHED; CANCELLED from any state before the end, EXPIRED when the signing
//! deadline passes. Deliverables: PENDING → IN_REVIEW | CHANGES_REQUESTED | APPROVED.

use chorus_proto::contracts::{
    Contract, ContractState, Deliverable, DeliverableState, Offer, OfferState, OfferVersion, Party, ReviewDecision,
    Signature, Submission, Terms, Verdict,
};
use prost_types::Timestamp;

use crate::error::ContractsError;

fn offer_state(o: &Offer) -> OfferState {
    OfferState::try_from(o.state).unwrap_or(OfferState::Unspecified)
}

fn contract_state(c: &Contract) -> ContractState {
    ContractState::try_from(c.state).unwrap_or(ContractState::Unspecified)
}

fn deliverable_state(d: &Deliverable) -> DeliverableState {
    DeliverableState::try_from(d.state).unwrap_or(DeliverableState::Unspecified)
}

/// Who proposed the offer's current version.
pub fn proposer(o: &Offer) -> Party {
    o.versions
        .last()
        .and_then(|v| Party::try_from(v.proposed_by).ok())
        .unwrap_or(Party::Brand)
}

/// The other party.
pub fn other(p: Party) -> Party {
    match p {
        Party::Influencer => Party::Brand,
        _ => Party::Influencer,
    }
}

/// An answer to the current version is allowed: the offer is open, the version is the current
/// one, and `by` did not propose it.
fn answerable(o: &Offer, by: Party, version: i32) -> Result<(), ContractsError> {
    let state = offer_state(o);
    if state != OfferState::Open {
        return Err(ContractsError::OfferState(state));
    }
    if version != o.version {
        return Err(ContractsError::OfferVersion {
            given: version,
            current: o.version,
        });
    }
    let proposed = proposer(o);
    if proposed == by {
        return Err(ContractsError::OwnProposal {
            party: by,
            version: o.version,
        });
    }
    Ok(())
}

/// `by` accepts the current version; the caller then makes the contract.
pub fn accept_offer(
    o: &mut Offer,
    by: Party,
    version: i32,
    contract: &str,
    now: Timestamp,
) -> Result<(), ContractsError> {
    answerable(o, by, version)?;
    o.state = OfferState::Accepted as i32;
    o.contract = contract.to_owned();
    o.update_time = Some(now);
    Ok(())
}

/// `by` declines the current version (the influencer an offer, the brand a counter).
pub fn decline_offer(o: &mut Offer, by: Party, reason: &str, now: Timestamp) -> Result<(), ContractsError> {
    let version = o.version;
    answerable(o, by, version)?;
    o.state = OfferState::Declined as i32;
    o.reason = reason.to_owned();
    o.update_time = Some(now);
    Ok(())
}

/// `by` proposes other terms: a new version, open for the other party until `expire_time`.
pub fn counter_offer(
    o: &mut Offer,
    by: Party,
    version: i32,
    terms: Terms,
    message: &str,
    now: Timestamp,
    expire_time: Timestamp,
) -> Result<(), ContractsError> {
    answerable(o, by, version)?;
    o.version += 1;
    o.versions.push(OfferVersion {
        version: o.version,
        proposed_by: by as i32,
        terms: Some(terms.clone()),
        message: message.to_owned(),
        create_time: Some(now),
    });
    o.terms = Some(terms);
    o.expire_time = Some(expire_time);
    o.update_time = Some(now);
    Ok(())
}

/// The brand takes back an open offer.
pub fn withdraw_offer(o: &mut Offer, reason: &str, now: Timestamp) -> Result<(), ContractsError> {
    let state = offer_state(o);
    if state != OfferState::Open {
        return Err(ContractsError::OfferState(state));
    }
    o.state = OfferState::Withdrawn as i32;
    o.reason = reason.to_owned();
    o.update_time = Some(now);
    Ok(())
}

/// The offer's expiry came: an open offer expires; any other is left as it is (false).
pub fn expire_offer(o: &mut Offer, now: Timestamp) -> bool {
    if offer_state(o) != OfferState::Open {
        return false;
    }
    o.state = OfferState::Expired as i32;
    o.update_time = Some(now);
    true
}

/// What a signature did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signed {
    /// The first of the two.
    First,
    /// The second: the contract is to be sealed and activated.
    Both,
    /// This party had signed this version already: nothing changed.
    Again,
}

/// Which parties signed the current version.
pub fn signed_current(c: &Contract) -> (bool, bool) {
    let current = |s: &&Signature| s.terms_version == c.terms_version && s.terms_sha256 == c.terms_sha256;
    let by = |p: Party| c.signatures.iter().filter(current).any(|s| s.party == p as i32);
    (by(Party::Brand), by(Party::Influencer))
}

/// `signature.party` signs the current terms (the version and hash in the signature).
pub fn sign_contract(c: &mut Contract, signature: Signature, now: Timestamp) -> Result<Signed, ContractsError> {
    let state = contract_state(c);
    if !matches!(state, ContractState::Sent | ContractState::SignedByOne) {
        return Err(ContractsError::ContractState(state));
    }
    if signature.terms_version != c.terms_version || !signature.terms_sha256.eq_ignore_ascii_case(&c.terms_sha256) {
        return Err(ContractsError::TermsSuperseded {
            given_version: signature.terms_version,
            current_version: c.terms_version,
            current_sha256: c.terms_sha256.clone(),
        });
    }
    let (brand, influencer) = signed_current(c);
    let party = Party::try_from(signature.party).unwrap_or(Party::Unspecified);
    let already = match party {
        Party::Brand => brand,
        _ => influencer,
    };
    if already {
        return Ok(Signed::Again);
    }
    c.signatures.push(Signature {
        terms_sha256: c.terms_sha256.clone(),
        ..signature
    });
    c.update_time = Some(now);
    if brand || influencer {
        c.state = ContractState::Active as i32;
        c.activate_time = Some(now);
        Ok(Signed::Both)
    } else {
        c.state = ContractState::SignedByOne as i32;
        Ok(Signed::First)
    }
}

/// The brand changes the terms before activation: a new version, in DRAFT.
pub fn amend_contract(
    c: &mut Contract,
    terms: Terms,
    terms_json: String,
    sha256: String,
    now: Timestamp,
) -> Result<(), ContractsError> {
    let state = contract_state(c);
    if !matches!(
        state,
        ContractState::Draft | ContractState::Sent | ContractState::SignedByOne
    ) {
        return Err(ContractsError::ContractState(state));
    }
    c.terms = Some(terms);
    c.terms_version += 1;
    c.terms_json = terms_json;
    c.terms_sha256 = sha256;
    c.state = ContractState::Draft as i32;
    c.update_time = Some(now);
    Ok(())
}

/// A DRAFT goes out for signature.
pub fn send_contract(c: &mut Contract, now: Timestamp) -> Result<(), ContractsError> {
    let state = contract_state(c);
    if state != ContractState::Draft {
        return Err(ContractsError::ContractState(state));
    }
    c.state = ContractState::Sent as i32;
    c.update_time = Some(now);
    Ok(())
}

/// The brand cancels a contract that has not ended; whether it was active (its hold is to be
/// voided).
pub fn cancel_contract(c: &mut Contract, reason: &str, now: Timestamp) -> Result<bool, ContractsError> {
    let state = contract_state(c);
    if !matches!(
        state,
        ContractState::Draft | ContractState::Sent | ContractState::SignedByOne | ContractState::Active
    ) {
        return Err(ContractsError::ContractState(state));
    }
    c.state = ContractState::Cancelled as i32;
    c.reason = reason.to_owned();
    c.update_time = Some(now);
    Ok(state == ContractState::Active)
}

/// The signing deadline came: a contract not yet active expires (true); any other is left.
pub fn expire_contract(c: &mut Contract, now: Timestamp) -> bool {
    if !matches!(
        contract_state(c),
        ContractState::Draft | ContractState::Sent | ContractState::SignedByOne
    ) {
        return false;
    }
    c.state = ContractState::Expired as i32;
    c.update_time = Some(now);
    true
}

/// A deliverable stayed missing past the grace period: an active contract is breached (true).
pub fn breach_contract(c: &mut Contract, reason: &str, now: Timestamp) -> bool {
    if contract_state(c) != ContractState::Active {
        return false;
    }
    c.state = ContractState::Breached as i32;
    c.reason = reason.to_owned();
    c.update_time = Some(now);
    true
}

/// Every deliverable is approved: an active contract completes (true).
pub fn complete_contract(c: &mut Contract, deliverables: &[Deliverable], now: Timestamp) -> bool {
    if contract_state(c) != ContractState::Active
        || deliverables
            .iter()
            .any(|d| deliverable_state(d) != DeliverableState::Approved)
    {
        return false;
    }
    c.state = ContractState::Completed as i32;
    c.update_time = Some(now);
    true
}

/// The influencer submits a post for a deliverable of an active contract; its disclosure
/// check decides where it goes: a non-compliant post goes back with the findings; one that
/// needs a person's judgement, or any post when the terms ask for review, goes to the brand;
/// a compliant one is approved.
pub fn submit_deliverable(
    c: &Contract,
    d: &mut Deliverable,
    submission: Submission,
    content_review: bool,
    now: Timestamp,
) -> Result<DeliverableState, ContractsError> {
    let state = contract_state(c);
    if state != ContractState::Active {
        return Err(ContractsError::ContractState(state));
    }
    let dstate = deliverable_state(d);
    if dstate == DeliverableState::Approved {
        return Err(ContractsError::DeliverableState(dstate));
    }
    let verdict = submission
        .check
        .as_ref()
        .and_then(|c| Verdict::try_from(c.verdict).ok())
        .unwrap_or(Verdict::NeedsReview);
    let next = match verdict {
        Verdict::NonCompliant => DeliverableState::ChangesRequested,
        Verdict::Compliant if !content_review => DeliverableState::Approved,
        _ => DeliverableState::InReview,
    };
    d.change_reason = if next == DeliverableState::ChangesRequested {
        disclosure_reason(&submission)
    } else {
        String::new()
    };
    if next == DeliverableState::Approved {
        d.approve_time = Some(now);
    }
    d.submissions.push(submission);
    d.state = next as i32;
    Ok(next)
}

/// The findings that sent a post back, as one line for the influencer.
fn disclosure_reason(s: &Submission) -> String {
    let findings: Vec<String> = s
        .check
        .iter()
        .flat_map(|c| c.findings.iter())
        .filter(|f| f.severity == chorus_proto::contracts::Severity::Violation as i32)
        .map(|f| {
            if f.suggestion.is_empty() {
                f.reason.clone()
            } else {
                format!("{} ({})", f.reason, f.suggestion)
            }
        })
        .collect();
    format!("ad disclosure: {}", findings.join("; "))
}

/// The brand's review of a submitted post.
pub fn review_deliverable(
    c: &Contract,
    d: &mut Deliverable,
    decision: ReviewDecision,
    reason: &str,
    now: Timestamp,
) -> Result<DeliverableState, ContractsError> {
    let state = contract_state(c);
    if state != ContractState::Active {
        return Err(ContractsError::ContractState(state));
    }
    let dstate = deliverable_state(d);
    if dstate != DeliverableState::InReview {
        return Err(ContractsError::DeliverableState(dstate));
    }
    let next = if decision == ReviewDecision::Approve {
        d.approve_time = Some(now);
        d.change_reason.clear();
        DeliverableState::Approved
    } else {
        d.change_reason = reason.to_owned();
        DeliverableState::ChangesRequested
    };
    d.state = next as i32;
    Ok(next)
}

/// The due date came: a deliverable not approved of an active contract is overdue (true).
pub fn mark_overdue(c: &Contract, d: &mut Deliverable) -> bool {
    if contract_state(c) != ContractState::Active || deliverable_state(d) == DeliverableState::Approved || d.overdue {
        return false;
    }
    d.overdue = true;
    true
}

/// The grace period after a deliverable's due date ended with nothing approved.
pub fn missed(c: &Contract, d: &Deliverable) -> bool {
    contract_state(c) == ContractState::Active && deliverable_state(d) != DeliverableState::Approved
}

#[cfg(test)]
mod tests {
    use super::*;
    use chorus_proto::contracts::{CheckDisclosureResponse, Finding, Severity};

    fn ts(s: i64) -> Timestamp {
        Timestamp { seconds: s, nanos: 0 }
    }

    fn offer() -> Offer {
        Offer {
            name: "offers/1".into(),
            state: OfferState::Open as i32,
            version: 1,
            versions: vec![OfferVersion {
                version: 1,
                proposed_by: Party::Brand as i32,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn contract() -> Contract {
        Contract {
            name: "contracts/1".into(),
            state: ContractState::Sent as i32,
            terms_version: 1,
            terms_sha256: "aa".into(),
            ..Default::default()
        }
    }

    fn sig(party: Party, version: i32, hash: &str) -> Signature {
        Signature {
            party: party as i32,
            terms_version: version,
            terms_sha256: hash.into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_influencer_accepts_the_brands_version_and_not_their_own_counter() {
        let mut o = offer();
        assert_eq!(
            accept_offer(&mut o.clone(), Party::Brand, 1, "contracts/1", ts(1)),
            Err(ContractsError::OwnProposal {
                party: Party::Brand,
                version: 1
            })
        );
        counter_offer(
            &mut o,
            Party::Influencer,
            1,
            Terms::default(),
            "more please",
            ts(2),
            ts(9),
        )
        .unwrap();
        assert_eq!((o.version, o.versions.len()), (2, 2));
        assert_eq!(o.expire_time, Some(ts(9)));
        assert_eq!(
            accept_offer(&mut o.clone(), Party::Influencer, 2, "c", ts(3)),
            Err(ContractsError::OwnProposal {
                party: Party::Influencer,
                version: 2
            })
        );
        assert_eq!(
            accept_offer(&mut o.clone(), Party::Brand, 1, "c", ts(3)),
            Err(ContractsError::OfferVersion { given: 1, current: 2 })
        );
        accept_offer(&mut o, Party::Brand, 2, "contracts/9", ts(3)).unwrap();
        assert_eq!(o.state, OfferState::Accepted as i32);
        assert_eq!(o.contract, "contracts/9");
        assert_eq!(
            decline_offer(&mut o, Party::Influencer, "no", ts(4)),
            Err(ContractsError::OfferState(OfferState::Accepted))
        );
    }

    #[test]
    fn only_open_offers_expire_or_are_withdrawn() {
        let mut o = offer();
        assert!(expire_offer(&mut o, ts(5)));
        assert!(!expire_offer(&mut o, ts(6)));
        assert_eq!(
            withdraw_offer(&mut o, "x", ts(7)),
            Err(ContractsError::OfferState(OfferState::Expired))
        );
        let mut o = offer();
        decline_offer(&mut o, Party::Influencer, "busy", ts(1)).unwrap();
        assert_eq!(o.reason, "busy");
    }

    #[test]
    fn two_signatures_of_the_current_hash_activate_and_a_repeat_changes_nothing() {
        let mut c = contract();
        assert_eq!(
            sign_contract(&mut c, sig(Party::Influencer, 1, "AA"), ts(1)),
            Ok(Signed::First)
        );
        assert_eq!(c.state, ContractState::SignedByOne as i32);
        assert_eq!(c.signatures[0].terms_sha256, "aa", "kept as the contract writes it");
        assert_eq!(
            sign_contract(&mut c, sig(Party::Influencer, 1, "aa"), ts(2)),
            Ok(Signed::Again)
        );
        assert_eq!(c.signatures.len(), 1);
        assert_eq!(
            sign_contract(&mut c, sig(Party::Brand, 1, "aa"), ts(3)),
            Ok(Signed::Both)
        );
        assert_eq!(c.state, ContractState::Active as i32);
        assert_eq!(c.activate_time, Some(ts(3)));
        assert_eq!(
            sign_contract(&mut c, sig(Party::Brand, 1, "aa"), ts(4)),
            Err(ContractsError::ContractState(ContractState::Active))
        );
    }

    #[test]
    fn signing_superseded_terms_names_the_current_ones_and_amending_voids_earlier_signatures() {
        let mut c = contract();
        sign_contract(&mut c, sig(Party::Influencer, 1, "aa"), ts(1)).unwrap();
        amend_contract(&mut c, Terms::default(), "{}".into(), "bb".into(), ts(2)).unwrap();
        assert_eq!((c.state, c.terms_version), (ContractState::Draft as i32, 2));
        assert_eq!(
            sign_contract(&mut c, sig(Party::Brand, 2, "bb"), ts(3)),
            Err(ContractsError::ContractState(ContractState::Draft))
        );
        send_contract(&mut c, ts(3)).unwrap();
        assert_eq!(
            sign_contract(&mut c, sig(Party::Brand, 1, "aa"), ts(4)),
            Err(ContractsError::TermsSuperseded {
                given_version: 1,
                current_version: 2,
                current_sha256: "bb".into()
            })
        );
        // The influencer's signature of version 1 does not count for version 2.
        assert_eq!(
            sign_contract(&mut c, sig(Party::Brand, 2, "bb"), ts(5)),
            Ok(Signed::First)
        );
        assert_eq!(
            sign_contract(&mut c, sig(Party::Influencer, 2, "bb"), ts(6)),
            Ok(Signed::Both)
        );
    }

    #[test]
    fn cancelling_says_whether_a_hold_is_to_be_voided_and_ends_are_final() {
        let mut c = contract();
        assert_eq!(cancel_contract(&mut c, "changed plans", ts(1)), Ok(false));
        let mut c = contract();
        c.state = ContractState::Active as i32;
        assert_eq!(cancel_contract(&mut c, "x", ts(1)), Ok(true));
        assert_eq!(
            cancel_contract(&mut c, "x", ts(1)),
            Err(ContractsError::ContractState(ContractState::Cancelled))
        );
        assert!(!expire_contract(&mut c, ts(2)));
        assert!(!breach_contract(&mut c, "late", ts(2)));
        let mut c = contract();
        assert!(expire_contract(&mut c, ts(2)));
    }

    fn checked(verdict: Verdict) -> Submission {
        Submission {
            url: "https://instagram.com/p/1".into(),
            check: Some(CheckDisclosureResponse {
                verdict: verdict as i32,
                findings: vec![Finding {
                    rule_id: "label.missing".into(),
                    severity: Severity::Violation as i32,
                    reason: "no ad label".into(),
                    suggestion: "put #ad at the start".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_disclosure_check_routes_a_submission() {
        let mut c = contract();
        c.state = ContractState::Active as i32;
        let fresh = || Deliverable {
            state: DeliverableState::Pending as i32,
            ..Default::default()
        };
        let mut d = fresh();
        assert_eq!(
            submit_deliverable(&c, &mut d, checked(Verdict::NonCompliant), false, ts(1)),
            Ok(DeliverableState::ChangesRequested)
        );
        assert_eq!(d.change_reason, "ad disclosure: no ad label (put #ad at the start)");
        assert_eq!(
            submit_deliverable(&c, &mut d, checked(Verdict::NeedsReview), false, ts(2)),
            Ok(DeliverableState::InReview)
        );
        assert_eq!(d.submissions.len(), 2);
        assert_eq!(
            submit_deliverable(&c, &mut fresh(), checked(Verdict::Compliant), true, ts(2)),
            Ok(DeliverableState::InReview)
        );
        let mut d2 = fresh();
        assert_eq!(
            submit_deliverable(&c, &mut d2, checked(Verdict::Compliant), false, ts(2)),
            Ok(DeliverableState::Approved)
        );
        assert_eq!(
            submit_deliverable(&c, &mut d2, checked(Verdict::Compliant), false, ts(3)),
            Err(ContractsError::DeliverableState(DeliverableState::Approved))
        );
        assert_eq!(
            review_deliverable(&c, &mut d, ReviewDecision::RequestChanges, "show the logo", ts(3)),
            Ok(DeliverableState::ChangesRequested)
        );
        assert_eq!(
            review_deliverable(&c, &mut d, ReviewDecision::Approve, "", ts(3)),
            Err(ContractsError::DeliverableState(DeliverableState::ChangesRequested))
        );
        assert!(!complete_contract(&mut c, &[d.clone(), d2.clone()], ts(4)));
        assert!(complete_contract(&mut c, &[d2], ts(4)));
    }

    #[test]
    fn overdue_is_raised_once_and_only_while_something_is_missing() {
        let mut c = contract();
        c.state = ContractState::Active as i32;
        let mut d = Deliverable {
            state: DeliverableState::Pending as i32,
            ..Default::default()
        };
        assert!(mark_overdue(&c, &mut d));
        assert!(!mark_overdue(&c, &mut d));
        assert!(missed(&c, &d));
        d.state = DeliverableState::Approved as i32;
        assert!(!missed(&c, &d));
    }
}
