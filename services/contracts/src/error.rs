//! Contracts' domain failures. Each is mapped here, once, to the kit's `ErrorCode` and a
//! `google.rpc.ErrorInfo` reason a client can switch on (docs/api.md lists them); handlers and
//! the store return these rather than building `chorus_kit::Error` by hand.

use chorus_kit::{Error, ErrorCode};
use chorus_proto::contracts::{ContractState, DeliverableState, OfferState, Party};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContractsError {
    /// A move the offer's state does not allow ("offer is declined").
    OfferState(OfferState),
    /// Accepting or countering a version that is not the current one.
    OfferVersion { given: i32, current: i32 },
    /// The party that proposed the current version cannot also accept or counter it.
    OwnProposal { party: Party, version: i32 },
    /// A move the contract's state does not allow.
    ContractState(ContractState),
    /// Signing terms that are not the current ones.
    TermsSuperseded {
        given_version: i32,
        current_version: i32,
        current_sha256: String,
    },
    /// A move the deliverable's state does not allow.
    DeliverableState(DeliverableState),
    /// A campaign without an offer template.
    NoTemplate(String),
    /// A shortlist the service has heard nothing of (no decided members).
    UnknownShortlist(String),
    /// Only the brand (or only the influencer) does this.
    WrongParty(Party),
}

impl ContractsError {
    /// The `ErrorInfo` reason (UPPER_SNAKE_CASE).
    pub fn reason(&self) -> &'static str {
        match self {
            ContractsError::OfferState(_) => "OFFER_STATE",
            ContractsError::OfferVersion { .. } => "OFFER_VERSION_SUPERSEDED",
            ContractsError::OwnProposal { .. } => "OWN_PROPOSAL",
            ContractsError::ContractState(_) => "CONTRACT_STATE",
            ContractsError::TermsSuperseded { .. } => "TERMS_SUPERSEDED",
            ContractsError::DeliverableState(_) => "DELIVERABLE_STATE",
            ContractsError::NoTemplate(_) => "NO_OFFER_TEMPLATE",
            ContractsError::UnknownShortlist(_) => "UNKNOWN_SHORTLIST",
            ContractsError::WrongParty(_) => "WRONG_PARTY",
        }
    }
}

/// An enum value as messages name it: "signed_by_one", "changes_requested".
fn named(full: &str, prefix: &str) -> String {
    full.trim_start_matches(prefix).to_lowercase()
}

pub fn offer_state_name(s: OfferState) -> String {
    named(s.as_str_name(), "OFFER_STATE_")
}

pub fn contract_state_name(s: ContractState) -> String {
    named(s.as_str_name(), "CONTRACT_STATE_")
}

pub fn deliverable_state_name(s: DeliverableState) -> String {
    named(s.as_str_name(), "DELIVERABLE_STATE_")
}

pub fn party_name(p: Party) -> String {
    named(p.as_str_name(), "PARTY_")
}

impl std::fmt::Display for ContractsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ContractsError::OfferState(s) => write!(f, "offer is {}", offer_state_name(*s)),
            ContractsError::OfferVersion { given, current } => {
                write!(
                    f,
                    "version {given} of the offer is superseded: the current version is {current}"
                )
            }
            ContractsError::OwnProposal { party, version } => write!(
                f,
                "the {} proposed version {version}: the other party accepts, declines or counters it",
                party_name(*party)
            ),
            ContractsError::ContractState(s) => write!(f, "contract is {}", contract_state_name(*s)),
            ContractsError::TermsSuperseded {
                given_version,
                current_version,
                current_sha256,
            } if given_version == current_version => write!(
                f,
                "that is not the hash of terms version {current_version}: the current terms are version {current_version}, sha256 {current_sha256}"
            ),
            ContractsError::TermsSuperseded {
                given_version,
                current_version,
                current_sha256,
            } => write!(
                f,
                "terms version {given_version} is superseded: the current terms are version {current_version}, sha256 {current_sha256}"
            ),
            ContractsError::DeliverableState(s) => write!(f, "deliverable is {}", deliverable_state_name(*s)),
            ContractsError::NoTemplate(c) => write!(f, "{c} has no offer template: set one first"),
            ContractsError::UnknownShortlist(s) => write!(f, "{s} has no accepted members this service has heard of"),
            ContractsError::WrongParty(p) => write!(f, "only the {} may do this", party_name(*p)),
        }
    }
}

impl std::error::Error for ContractsError {}

impl From<ContractsError> for Error {
    fn from(e: ContractsError) -> Error {
        let reason = e.reason();
        let code = match e {
            ContractsError::WrongParty(_) => ErrorCode::PermissionDenied,
            _ => ErrorCode::FailedPrecondition,
        };
        Error::new(code, e.to_string()).with_reason(reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_state_and_the_current_terms() {
        let e: Error = ContractsError::ContractState(ContractState::SignedByOne).into();
        assert_eq!(e.code(), ErrorCode::FailedPrecondition);
        assert_eq!(e.message(), "contract is signed_by_one");
        let e: Error = ContractsError::TermsSuperseded {
            given_version: 1,
            current_version: 2,
            current_sha256: "ab12".into(),
        }
        .into();
        assert!(
            e.message().contains("current terms are version 2, sha256 ab12"),
            "{}",
            e.message()
        );
        assert_eq!(e.reason(), "TERMS_SUPERSEDED");
        let e: Error = ContractsError::WrongParty(Party::Brand).into();
        assert_eq!(e.code(), ErrorCode::PermissionDenied);
    }
}
