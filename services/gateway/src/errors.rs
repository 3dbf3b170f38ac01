//! Errors as `google.rpc.Status` JSON (AIP-193): the gRPC code and message, the details the
//! upstream sent (`grpc-status-details-bin`: ErrorInfo, BadRequest field violations,
//! RetryInfo...) in proto3 JSON with `@type`, under the HTTP status of the code.

use axum::response::{IntoResponse, Response};
use chorus_kit::error::ErrorCode;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};
use tonic::Code;

/// The HTTP status of a gRPC code: the kit's mapping (`ErrorCode::http`) for the codes Chorus
/// uses, AIP-193's for the rest.
pub fn http_status(code: Code) -> http::StatusCode {
    let kit = match code {
        Code::Ok => return http::StatusCode::OK,
        Code::InvalidArgument | Code::OutOfRange => ErrorCode::InvalidArgument,
        Code::FailedPrecondition => ErrorCode::FailedPrecondition,
        Code::NotFound => ErrorCode::NotFound,
        Code::AlreadyExists => ErrorCode::AlreadyExists,
        Code::Aborted => ErrorCode::Aborted,
        Code::Unauthenticated => ErrorCode::Unauthenticated,
        Code::PermissionDenied => ErrorCode::PermissionDenied,
        Code::ResourceExhausted => ErrorCode::ResourceExhausted,
        Code::Unavailable => ErrorCode::Unavailable,
        Code::DeadlineExceeded => ErrorCode::DeadlineExceeded,
        // 499 Client Closed Request, as AIP-193 and Google's APIs answer CANCELLED.
        Code::Cancelled => return http::StatusCode::from_u16(499).unwrap_or(http::StatusCode::BAD_REQUEST),
        Code::Unimplemented => return http::StatusCode::NOT_IMPLEMENTED,
        Code::Unknown | Code::Internal | Code::DataLoss => ErrorCode::Internal,
    };
    http::StatusCode::from_u16(kit.http()).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR)
}

/// Turns statuses into responses, with the descriptor set that decodes their details.
#[derive(Debug, Clone)]
pub(crate) struct Errors {
    status: MessageDescriptor,
}

impl Errors {
    pub(crate) fn new(pool: &DescriptorPool) -> Result<Errors, String> {
        let status = pool
            .get_message_by_name("google.rpc.Status")
            .ok_or("the descriptor set lacks google.rpc.Status")?;
        Ok(Errors { status })
    }

    /// The `google.rpc.Status` JSON of `status`: the upstream's own when it sent one (with
    /// every detail), else its code and message.
    pub(crate) fn json(&self, status: &tonic::Status) -> serde_json::Value {
        let code = status.code() as i32;
        if !status.details().is_empty()
            && let Ok(full) = DynamicMessage::decode(self.status.clone(), status.details())
            && let Ok(mut value) = serde_json::to_value(&full)
        {
            // The code and message of the status itself win over what the details repeat.
            value["code"] = code.into();
            value["message"] = status.message().into();
            return value;
        }
        serde_json::json!({ "code": code, "message": status.message() })
    }

    pub(crate) fn response(&self, status: &tonic::Status) -> Response {
        let mut response = axum::Json(self.json(status)).into_response();
        *response.status_mut() = http_status(status.code());
        response
    }

    /// INVALID_ARGUMENT (400) naming the fields, as the services' own validation errors are.
    pub(crate) fn invalid(&self, message: impl Into<String>, violations: &[(String, String)]) -> Response {
        let message = message.into();
        let mut body = serde_json::json!({ "code": Code::InvalidArgument as i32, "message": message });
        if !violations.is_empty() {
            body["details"] = serde_json::json!([{
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": violations
                    .iter()
                    .map(|(field, description)| serde_json::json!({ "field": field, "description": description }))
                    .collect::<Vec<_>>(),
            }]);
        }
        (http::StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
    }

    /// A gateway-made status (unknown route, wrong method, body too large) with its own HTTP
    /// status.
    pub(crate) fn plain(&self, http: http::StatusCode, code: Code, message: impl Into<String>) -> Response {
        let body = serde_json::json!({ "code": code as i32, "message": message.into() });
        (http, axum::Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_as_aip_193_says() {
        for (code, http) in [
            (Code::InvalidArgument, 400),
            (Code::FailedPrecondition, 400),
            (Code::OutOfRange, 400),
            (Code::Unauthenticated, 401),
            (Code::PermissionDenied, 403),
            (Code::NotFound, 404),
            (Code::AlreadyExists, 409),
            (Code::Aborted, 409),
            (Code::ResourceExhausted, 429),
            (Code::Cancelled, 499),
            (Code::Internal, 500),
            (Code::Unknown, 500),
            (Code::DataLoss, 500),
            (Code::Unimplemented, 501),
            (Code::Unavailable, 503),
            (Code::DeadlineExceeded, 504),
        ] {
            assert_eq!(http_status(code).as_u16(), http, "{code:?}");
        }
    }
}
