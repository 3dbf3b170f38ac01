//! One error model for every service: a small set of codes, mapped to gRPC status here and
//! nowhere else. Every error carries `google.rpc.ErrorInfo` (a reason a client can switch on,
//! and the domain "chorus"); invalid input carries `google.rpc.BadRequest` field violations;
//! an outage is UNAVAILABLE with `google.rpc.RetryInfo`; internal detail is logged with an id
//! and never sent to the caller.

use std::fmt;

use tonic_types::{ErrorDetails, StatusExt};

/// The deliberately small set of outcomes a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidArgument,
    NotFound,
    AlreadyExists,
    FailedPrecondition,
    Unauthenticated,
    PermissionDenied,
    ResourceExhausted,
    Aborted,
    Unavailable,
    DeadlineExceeded,
    Internal,
}

impl ErrorCode {
    /// The one mapping from Chorus codes to gRPC codes.
    pub fn grpc(self) -> tonic::Code {
        match self {
            ErrorCode::InvalidArgument => tonic::Code::InvalidArgument,
            ErrorCode::NotFound => tonic::Code::NotFound,
            ErrorCode::AlreadyExists => tonic::Code::AlreadyExists,
            ErrorCode::FailedPrecondition => tonic::Code::FailedPrecondition,
            ErrorCode::Unauthenticated => tonic::Code::Unauthenticated,
            ErrorCode::PermissionDenied => tonic::Code::PermissionDenied,
            ErrorCode::ResourceExhausted => tonic::Code::ResourceExhausted,
            ErrorCode::Aborted => tonic::Code::Aborted,
            ErrorCode::Unavailable => tonic::Code::Unavailable,
            ErrorCode::DeadlineExceeded => tonic::Code::DeadlineExceeded,
            ErrorCode::Internal => tonic::Code::Internal,
        }
    }

    /// The matching HTTP status, for the gateway.
    pub fn http(self) -> u16 {
        match self {
            ErrorCode::InvalidArgument | ErrorCode::FailedPrecondition => 400,
            ErrorCode::Unauthenticated => 401,
            ErrorCode::PermissionDenied => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::AlreadyExists | ErrorCode::Aborted => 409,
            ErrorCode::ResourceExhausted => 429,
            ErrorCode::Unavailable => 503,
            ErrorCode::DeadlineExceeded => 504,
            ErrorCode::Internal => 500,
        }
    }
}

/// One offending field of a request: the path as the caller wrote it
/// (`influencer.accounts[0].handle`) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

/// An error any service returns. Build it with the constructors; convert with `?` into
/// `tonic::Status`.
#[derive(Debug)]
pub struct Error {
    code: ErrorCode,
    message: String,
    violations: Vec<FieldViolation>,
    /// The `ErrorInfo` reason, when more precise than the code's.
    reason: Option<&'static str>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// The `ErrorInfo` domain of every Chorus error.
pub const DOMAIN: &str = "chorus";

/// How long a caller should wait before retrying after UNAVAILABLE or ABORTED.
pub const RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
            violations: Vec::new(),
            reason: None,
            source: None,
        }
    }

    /// Names the `ErrorInfo` reason (UPPER_SNAKE_CASE), for clients that act on it.
    pub fn with_reason(mut self, reason: &'static str) -> Self {
        self.reason = Some(reason);
        self
    }

    /// The `ErrorInfo` reason: the one given, else the code's.
    pub fn reason(&self) -> &'static str {
        self.reason.unwrap_or(match self.code {
            ErrorCode::InvalidArgument => "FIELD_VIOLATION",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::AlreadyExists => "ALREADY_EXISTS",
            ErrorCode::FailedPrecondition => "FAILED_PRECONDITION",
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::PermissionDenied => "PERMISSION_DENIED",
            ErrorCode::ResourceExhausted => "RESOURCE_EXHAUSTED",
            ErrorCode::Aborted => "CONCURRENT_CHANGE",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::DeadlineExceeded => "DEADLINE_EXCEEDED",
            ErrorCode::Internal => "INTERNAL",
        })
    }

    pub fn invalid(violations: Vec<FieldViolation>) -> Self {
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        let message = format!("invalid request: {}", fields.join(", "));
        Error {
            code: ErrorCode::InvalidArgument,
            message,
            violations,
            reason: None,
            source: None,
        }
    }

    /// A single bad field.
    pub fn invalid_field(field: impl Into<String>, description: impl Into<String>) -> Self {
        Error::invalid(vec![FieldViolation {
            field: field.into(),
            description: description.into(),
        }])
    }

    pub fn not_found(what: impl fmt::Display) -> Self {
        Error::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    pub fn already_exists(what: impl Into<String>) -> Self {
        Error::new(ErrorCode::AlreadyExists, what)
    }

    pub fn permission_denied(what: impl Into<String>) -> Self {
        Error::new(ErrorCode::PermissionDenied, what)
    }

    pub fn unauthenticated(what: impl Into<String>) -> Self {
        Error::new(ErrorCode::Unauthenticated, what)
    }

    /// An unexpected failure: the source is logged, the caller sees only an id.
    pub fn internal(context: &str, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error {
            code: ErrorCode::Internal,
            message: context.to_owned(),
            violations: Vec::new(),
            reason: None,
            source: Some(Box::new(source)),
        }
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The whole story, for operators rather than callers: the code, the message and, for an
    /// internal error, its cause (a dead letter keeps this as its error).
    pub fn detail(&self) -> String {
        match &self.source {
            Some(source) => format!("{self}: {source}"),
            None => self.to_string(),
        }
    }

    pub fn violations(&self) -> &[FieldViolation] {
        &self.violations
    }

    /// Prefixes every violation's field path, for errors found in a nested message
    /// (`accounts[0].handle` becomes `influencer.accounts[0].handle`).
    pub fn nest(mut self, prefix: &str) -> Self {
        if prefix.is_empty() {
            return self;
        }
        for v in &mut self.violations {
            v.field = format!("{prefix}.{}", v.field);
        }
        if self.code == ErrorCode::InvalidArgument {
            let fields: Vec<&str> = self.violations.iter().map(|v| v.field.as_str()).collect();
            self.message = format!("invalid request: {}", fields.join(", "));
        }
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)
    }
}

impl std::error::Error for Error {}

impl From<Error> for tonic::Status {
    fn from(err: Error) -> Self {
        let mut details = ErrorDetails::new();
        let mut metadata = std::collections::HashMap::new();
        let message = match err.code {
            ErrorCode::Internal => {
                let id = uuid::Uuid::now_v7();
                tracing::error!(error_id = %id, context = %err.message, source = ?err.source, "internal error");
                metadata.insert("error_id".to_owned(), id.to_string());
                format!("internal error, id {id}")
            }
            _ => err.message.clone(),
        };
        details.set_error_info(err.reason(), DOMAIN, metadata);
        for v in &err.violations {
            details.add_bad_request_violation(v.field.clone(), v.description.clone());
        }
        if matches!(err.code, ErrorCode::Unavailable | ErrorCode::Aborted) {
            details.set_retry_info(Some(RETRY_AFTER));
        }
        tonic::Status::with_error_details(err.code.grpc(), message, details)
    }
}

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                Error::already_exists("a resource with the same key already exists")
            }
            // Deadlock or serialization failure: nothing was written, the same call may succeed.
            sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("40P01" | "40001")) => {
                Error::new(ErrorCode::Aborted, "concurrent update, retry")
            }
            // The server is shutting down, starting up, out of connections, or the connection
            // broke (SQLSTATE classes 08 and 57P, and 53300).
            sqlx::Error::Database(db)
                if db
                    .code()
                    .is_some_and(|c| c.starts_with("08") || c.starts_with("57P") || c == "53300") =>
            {
                outage(err)
            }
            // No connection within the acquire timeout. sqlx keeps retrying a refused connection
            // until then and reports only the timeout, so this is also how a database that is
            // down shows (the outage fault test): not "busy".
            sqlx::Error::PoolTimedOut => outage(err),
            sqlx::Error::Io(_) | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed | sqlx::Error::Tls(_) => {
                outage(err)
            }
            _ => Error::internal("database", err),
        }
    }
}

/// The database cannot be reached: the caller may retry; the cause is logged, not sent.
fn outage(err: sqlx::Error) -> Error {
    tracing::warn!(error = %err, "database unavailable");
    Error::new(ErrorCode::Unavailable, "the database is unavailable, retry shortly").with_reason("DATABASE_UNAVAILABLE")
}

/// Collects field violations while validating a request, so the caller learns about every
/// bad field at once.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn new() -> Self {
        Violations(Vec::new())
    }

    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation {
            field: field.into(),
            description: description.into(),
        });
    }

    /// Adds the violation when `bad` holds.
    pub fn check(&mut self, bad: bool, field: impl Into<String>, description: impl Into<String>) {
        if bad {
            self.add(field, description);
        }
    }

    /// Merges the violations of a nested error under `prefix`; other errors pass through.
    pub fn absorb(&mut self, prefix: &str, result: Result<(), Error>) -> Result<(), Error> {
        match result {
            Ok(()) => Ok(()),
            Err(e) if e.code == ErrorCode::InvalidArgument => {
                self.0.extend(e.nest(prefix).violations);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// The value of a check that returns one; its violations, if any, join these.
    pub fn take<T>(&mut self, result: Result<T, Error>) -> Result<Option<T>, Error> {
        match result {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.code == ErrorCode::InvalidArgument => {
                self.0.extend(e.violations);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn finish(self) -> Result<(), Error> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::invalid(self.0))
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Whether `s` is longer than `max` characters (Unicode scalar values, as proto comments count
/// them), looking no further than needed: a validator's cost stays bounded by its limit.
pub fn too_long(s: &str, max: usize) -> bool {
    s.chars().nth(max).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_names_every_field_in_bad_request_details() {
        let mut v = Violations::new();
        v.add("display_name", "required");
        v.add("accounts[0].handle", "must not be empty");
        let status: tonic::Status = v.finish().unwrap_err().into();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        let details = status.get_error_details();
        let bad = details.bad_request().expect("bad request details");
        let fields: Vec<_> = bad.field_violations.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["display_name", "accounts[0].handle"]);
    }

    #[test]
    fn internal_errors_hide_their_source() {
        let io = std::io::Error::other("password=hunter2 connection refused");
        let status: tonic::Status = Error::internal("load influencer", io).into();
        assert_eq!(status.code(), tonic::Code::Internal);
        assert!(!status.message().contains("hunter2"));
        assert!(status.message().starts_with("internal error, id "));
        let info = status.get_error_details().error_info().cloned().expect("error info");
        assert_eq!((info.reason.as_str(), info.domain.as_str()), ("INTERNAL", DOMAIN));
        assert!(status.message().ends_with(&info.metadata["error_id"]));
    }

    #[test]
    fn every_error_says_its_reason_and_outages_say_when_to_retry() {
        let status: tonic::Status = Error::not_found("campaigns/x").into();
        let d = status.get_error_details();
        assert_eq!(d.error_info().map(|i| i.reason.as_str()), Some("NOT_FOUND"));
        assert!(d.retry_info().is_none());
        let status: tonic::Status = Error::from(sqlx::Error::PoolClosed).into();
        assert_eq!(status.code(), tonic::Code::Unavailable);
        let d = status.get_error_details();
        assert_eq!(d.error_info().map(|i| i.reason.as_str()), Some("DATABASE_UNAVAILABLE"));
        assert_eq!(d.retry_info().and_then(|r| r.retry_delay), Some(RETRY_AFTER));
        let io = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(Error::from(io).code(), ErrorCode::Unavailable);
        let custom: tonic::Status = Error::permission_denied("no").with_reason("SCOPE_REQUIRED").into();
        assert_eq!(
            custom.get_error_details().error_info().map(|i| i.reason.as_str()),
            Some("SCOPE_REQUIRED")
        );
    }

    #[test]
    fn nest_prefixes_field_paths() {
        let e = Error::invalid_field("handle", "empty").nest("influencer.accounts[1]");
        assert_eq!(e.violations()[0].field, "influencer.accounts[1].handle");
    }
}
