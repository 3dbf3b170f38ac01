//! The registry's domain failures. Each is mapped here, once, to the kit's `ErrorCode` and a
//! `google.rpc.ErrorInfo` reason a client can switch on (docs/api.md lists them); handlers and
//! the store return these rather than building `chorus_kit::Error` by hand.

use chorus_kit::{Error, ErrorCode};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// CreateInfluencer: an account of the new influencer already belongs to someone.
    #[error("accounts[{index}]: {handle} already belongs to an influencer")]
    AccountTaken { index: usize, handle: String },
    /// UpdateInfluencer: an account belongs to another influencer than the one replaced.
    #[error("accounts[{index}]: {handle} already belongs to another influencer")]
    AccountOfAnother { index: usize, handle: String },
    /// An import row whose accounts belong to more than one influencer.
    #[error("the row's accounts belong to different influencers; merge them first")]
    RowSpansInfluencers,
    /// An account an earlier row of the same message also has.
    #[error("{handle} is also in an earlier row of the same message")]
    AccountRepeated { index: usize, handle: String },
    /// A row that writes the same influencer as an earlier row of the same message.
    #[error("updates the same influencer as an earlier row of the same message")]
    InfluencerRepeated,
    /// An influencer the write would update was erased after the write read who owns what.
    #[error("an influencer was deleted while this write was planned")]
    DeletedWhilePlanned,
    /// An account was taken by another writer after the write read who owns what.
    #[error("an account was taken by another influencer while this write was planned")]
    TakenWhilePlanned,
}

impl RegistryError {
    /// The `ErrorInfo` reason (UPPER_SNAKE_CASE).
    pub fn reason(&self) -> &'static str {
        match self {
            RegistryError::AccountTaken { .. } | RegistryError::AccountOfAnother { .. } => "ACCOUNT_TAKEN",
            RegistryError::RowSpansInfluencers => "ROW_SPANS_INFLUENCERS",
            RegistryError::AccountRepeated { .. } | RegistryError::InfluencerRepeated => "REPEATED_IN_MESSAGE",
            RegistryError::DeletedWhilePlanned | RegistryError::TakenWhilePlanned => "CONCURRENT_CHANGE",
        }
    }
}

impl From<RegistryError> for Error {
    fn from(e: RegistryError) -> Error {
        let reason = e.reason();
        let message = e.to_string();
        let error = match e {
            RegistryError::AccountTaken { .. } | RegistryError::AccountOfAnother { .. } => {
                Error::new(ErrorCode::AlreadyExists, message)
            }
            RegistryError::RowSpansInfluencers => Error::new(ErrorCode::FailedPrecondition, message),
            RegistryError::AccountRepeated { index, .. } => Error::invalid_field(format!("accounts[{index}]"), message),
            RegistryError::InfluencerRepeated => Error::invalid_field("accounts", message),
            // Nothing was written; the store plans the write again.
            RegistryError::DeletedWhilePlanned | RegistryError::TakenWhilePlanned => {
                Error::new(ErrorCode::Aborted, message)
            }
        };
        error.with_reason(reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_keeps_its_code_and_message_and_names_its_reason() {
        let taken = Error::from(RegistryError::AccountTaken {
            index: 1,
            handle: "maya".into(),
        });
        assert_eq!(taken.code(), ErrorCode::AlreadyExists);
        assert_eq!(taken.message(), "accounts[1]: maya already belongs to an influencer");
        assert_eq!(taken.reason(), "ACCOUNT_TAKEN");

        let spans = Error::from(RegistryError::RowSpansInfluencers);
        assert_eq!(spans.code(), ErrorCode::FailedPrecondition);
        assert_eq!(spans.reason(), "ROW_SPANS_INFLUENCERS");

        let repeated = Error::from(RegistryError::AccountRepeated {
            index: 2,
            handle: "maya".into(),
        });
        assert_eq!(repeated.code(), ErrorCode::InvalidArgument);
        assert_eq!(repeated.violations()[0].field, "accounts[2]");
        assert_eq!(
            repeated.violations()[0].description,
            "maya is also in an earlier row of the same message"
        );
        assert_eq!(repeated.reason(), "REPEATED_IN_MESSAGE");

        let raced = Error::from(RegistryError::TakenWhilePlanned);
        assert_eq!(raced.code(), ErrorCode::Aborted);
        assert_eq!(raced.reason(), "CONCURRENT_CHANGE");
    }
}
