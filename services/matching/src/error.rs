//! Matching's domain failures. Each is mapped here, once, to the kit's `ErrorCode` and a
//! `google.rpc.ErrorInfo` reason a client can switch on (docs/api.md lists them); handlers and
//! the store return these rather than building `chorus_kit::Error` by hand.

use chorus_kit::error::FieldViolation;
use chorus_kit::{Error, ErrorCode};
use chorus_proto::matching::CampaignStatus;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchingError {
    /// A shortlist made or decided for a campaign that is completed or cancelled.
    CampaignClosed,
    /// A change, match or selection that a campaign with this status (completed or
    /// cancelled) does not allow.
    CampaignFinal(i32),
    /// Decisions naming someone who is not on the shortlist: the decisions' positions.
    NotAMember(Vec<usize>),
    /// The match index has not finished reading the catalogue since the service started.
    IndexLoading,
}

impl MatchingError {
    /// The `ErrorInfo` reason (UPPER_SNAKE_CASE).
    pub fn reason(&self) -> &'static str {
        match self {
            MatchingError::CampaignClosed | MatchingError::CampaignFinal(_) => "CAMPAIGN_CLOSED",
            MatchingError::NotAMember(_) => "NOT_A_MEMBER",
            MatchingError::IndexLoading => "INDEX_LOADING",
        }
    }
}

impl std::fmt::Display for MatchingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MatchingError::CampaignClosed => f.write_str("campaign is completed or cancelled"),
            MatchingError::CampaignFinal(status) => write!(f, "campaign is {}", status_name(*status)),
            MatchingError::NotAMember(_) => f.write_str("decisions name people who are not on the shortlist"),
            MatchingError::IndexLoading => f.write_str("the match index is still loading the catalogue, retry shortly"),
        }
    }
}

impl std::error::Error for MatchingError {}

/// A campaign status as messages name it: "draft", "completed".
pub fn status_name(status: i32) -> String {
    CampaignStatus::try_from(status)
        .map(|s| s.as_str_name().trim_start_matches("CAMPAIGN_STATUS_").to_lowercase())
        .unwrap_or_else(|_| status.to_string())
}

impl From<MatchingError> for Error {
    fn from(e: MatchingError) -> Error {
        let reason = e.reason();
        let error = match e {
            MatchingError::CampaignClosed | MatchingError::CampaignFinal(_) => {
                Error::new(ErrorCode::FailedPrecondition, e.to_string())
            }
            MatchingError::NotAMember(positions) => Error::invalid(
                positions
                    .into_iter()
                    .map(|i| FieldViolation {
                        field: format!("decisions[{i}].influencer"),
                        description: "not a member of this shortlist".to_owned(),
                    })
                    .collect(),
            ),
            MatchingError::IndexLoading => Error::new(ErrorCode::Unavailable, e.to_string()),
        };
        error.with_reason(reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_keeps_its_code_and_message_and_names_its_reason() {
        let closed = Error::from(MatchingError::CampaignClosed);
        assert_eq!(closed.code(), ErrorCode::FailedPrecondition);
        assert_eq!(closed.message(), "campaign is completed or cancelled");
        assert_eq!(closed.reason(), "CAMPAIGN_CLOSED");

        let cancelled = Error::from(MatchingError::CampaignFinal(CampaignStatus::Cancelled as i32));
        assert_eq!(cancelled.message(), "campaign is cancelled");
        assert_eq!(cancelled.reason(), "CAMPAIGN_CLOSED");

        let strangers = Error::from(MatchingError::NotAMember(vec![0, 2]));
        assert_eq!(strangers.code(), ErrorCode::InvalidArgument);
        let fields: Vec<&str> = strangers.violations().iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["decisions[0].influencer", "decisions[2].influencer"]);
        assert_eq!(strangers.reason(), "NOT_A_MEMBER");

        let loading = Error::from(MatchingError::IndexLoading);
        assert_eq!(loading.code(), ErrorCode::Unavailable);
        assert_eq!(loading.reason(), "INDEX_LOADING");
    }
}
