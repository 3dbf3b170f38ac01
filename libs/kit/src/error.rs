//! One error model for every service: a small set of codes, mapped to gRPC status here and
//! nowhere else. Invalid input carries `google.rpc.BadRequest` field violations; internal
//! detail is logged with an id and never sent to the caller.

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
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
            violations: Vec::new(),
            source: None,
        }
    }

    pub fn invalid(violations: Vec<FieldViolation>) -> Self {
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        let message = format!("invalid request: {}", fields.join(", "));
        Error {
            code: ErrorCode::InvalidArgument,
            message,
            violations,
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
            source: Some(Box::new(source)),
        }
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
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
        match err.code {
            ErrorCode::Internal => {
                let id = uuid::Uuid::now_v7();
                tracing::error!(error_id = %id, context = %err.message, source = ?err.source, "internal error");
                tonic::Status::internal(format!("internal error, id {id}"))
            }
            ErrorCode::InvalidArgument if !err.violations.is_empty() => {
                let mut details = ErrorDetails::new();
                for v in &err.violations {
                    details.add_bad_request_violation(v.field.clone(), v.description.clone());
                }
                tonic::Status::with_error_details(tonic::Code::InvalidArgument, err.message, details)
            }
            code => tonic::Status::new(code.grpc(), err.message),
        }
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
            sqlx::Error::PoolTimedOut => Error::new(ErrorCode::Unavailable, "database busy, retry"),
            _ => Error::internal("database", err),
        }
    }
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
    }

    #[test]
    fn nest_prefixes_field_paths() {
        let e = Error::invalid_field("handle", "empty").nest("influencer.accounts[1]");
        assert_eq!(e.violations()[0].field, "influencer.accounts[1].handle");
    }
}
