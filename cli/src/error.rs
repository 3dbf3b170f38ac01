//! How failures reach the user: a server `Status` prints as `error: CODE: message` followed by
//! its field violations, anything else as `error: message: cause: cause`. Both exit non-zero.

use std::fmt;

use tonic_types::{RpcStatusExt, StatusExt};

/// The error every command returns; `Send` so it can cross task boundaries.
pub(crate) type Error = Box<dyn std::error::Error + Send + Sync>;
pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

/// One offending field, from a `google.rpc.BadRequest` or from local row parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Violation {
    pub(crate) field: String,
    pub(crate) description: String,
}

impl Violation {
    pub(crate) fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Violation {
            field: field.into(),
            description: description.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.description)
    }
}

/// Some rows of an import or seed failed; the rows themselves were already reported.
#[derive(Debug)]
pub(crate) struct RowsFailed {
    pub(crate) failed: usize,
    pub(crate) total: usize,
}

impl fmt::Display for RowsFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of {} rows failed", self.failed, self.total)
    }
}

impl std::error::Error for RowsFailed {}

/// The field violations carried by a `google.rpc.Status` message (an import row's error).
pub(crate) fn rpc_violations(status: &chorus_proto::google::rpc::Status) -> Vec<Violation> {
    let status = tonic_types::pb::Status {
        code: status.code,
        message: status.message.clone(),
        details: status.details.clone(),
    };
    from_bad_request(status.get_details_bad_request())
}

/// The field violations carried by a failed call's status.
pub(crate) fn status_violations(status: &tonic::Status) -> Vec<Violation> {
    from_bad_request(status.get_details_bad_request())
}

fn from_bad_request(bad: Option<tonic_types::BadRequest>) -> Vec<Violation> {
    bad.map(|b| {
        b.field_violations
            .into_iter()
            .map(|v| Violation::new(v.field, v.description))
            .collect()
    })
    .unwrap_or_default()
}

/// The canonical upper-case name of a gRPC code, as in google/rpc/code.proto.
pub(crate) fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

/// An error and its causes on one line.
pub(crate) fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // hyper and tonic often repeat the cause inside the message; print it once
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The lines printed for a failed command.
pub(crate) fn render(err: &(dyn std::error::Error + 'static)) -> Vec<String> {
    if let Some(status) = err.downcast_ref::<tonic::Status>() {
        let mut lines = vec![format!("error: {}: {}", code_name(status.code()), status.message())];
        lines.extend(status_violations(status).iter().map(|v| format!("  {v}")));
        lines
    } else {
        vec![format!("error: {}", chain(err))]
    }
}

/// Prints a failed command's error to stderr.
pub(crate) fn report(err: &(dyn std::error::Error + 'static)) {
    for line in render(err) {
        eprintln!("{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::{ErrorDetails, StatusExt};

    fn bad_request_status() -> tonic::Status {
        let details = ErrorDetails::with_bad_request(vec![tonic_types::FieldViolation::new(
            "influencer.accounts[0].handle",
            "must not be empty",
        )]);
        tonic::Status::with_error_details(tonic::Code::InvalidArgument, "invalid request", details)
    }

    #[test]
    fn a_status_renders_its_code_message_and_violations() {
        let status = bad_request_status();
        let lines = render(&status);
        assert_eq!(lines[0], "error: INVALID_ARGUMENT: invalid request");
        assert_eq!(lines[1], "  influencer.accounts[0].handle: must not be empty");
    }

    #[test]
    fn an_import_row_status_yields_its_field_violations() {
        use prost::Message;
        let status = bad_request_status();
        let rpc = chorus_proto::google::rpc::Status::decode(status.details()).unwrap();
        assert_eq!(
            rpc_violations(&rpc),
            vec![Violation::new("influencer.accounts[0].handle", "must not be empty")]
        );
        assert!(rpc_violations(&chorus_proto::google::rpc::Status::default()).is_empty());
    }

    #[test]
    fn other_errors_render_with_their_causes() {
        let io = std::io::Error::other("connection refused");
        let lines = render(&io);
        assert_eq!(lines, vec!["error: connection refused".to_owned()]);
    }
}
