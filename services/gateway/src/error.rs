//! The one error shape of the REST API (SPEC section 2):
//! `{"error":"<code>","message":"<for a person>"}`, and how gRPC statuses and
//! request rejections map onto it. Input never yields a 5xx other than 503.

use axum::{
    extract::rejection::{JsonRejection, PathRejection, QueryRejection},
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use telegen_common::rest::{proto::AliasConflict, ErrorBody};
use tonic::Code;
use tracing::warn;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn not_supported(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "not_supported", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "probe_unavailable",
            message,
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code.to_string(),
            message: self.message,
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<tonic::Status> for ApiError {
    fn from(s: tonic::Status) -> Self {
        let msg = s.message().to_string();
        match s.code() {
            Code::InvalidArgument | Code::OutOfRange => ApiError::invalid(msg),
            Code::Unimplemented => ApiError::not_supported(msg),
            Code::NotFound => ApiError::not_found(msg),
            Code::PermissionDenied => ApiError::new(StatusCode::FORBIDDEN, "forbidden", msg),
            Code::ResourceExhausted => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "concurrency_limit", msg)
            }
            Code::FailedPrecondition | Code::AlreadyExists | Code::Aborted => {
                ApiError::new(StatusCode::CONFLICT, "conflict", msg)
            }
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown => {
                // Transport failures surface as Unknown/Unavailable with a
                // message meant for developers; keep it in the log only.
                warn!(code = ?s.code(), error = %msg, "probe call failed");
                ApiError::unavailable(format!(
                    "the probe is not answering ({}); retry shortly",
                    code_name(s.code())
                ))
            }
            other => {
                warn!(code = ?other, error = %msg, "probe returned an error");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", msg)
            }
        }
    }
}

fn code_name(c: Code) -> &'static str {
    match c {
        Code::Unavailable => "unavailable",
        Code::DeadlineExceeded => "timed out",
        Code::Cancelled => "cancelled",
        _ => "transport error",
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let text = r.body_text();
        match r {
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON, sent with Content-Type: application/json",
            ),
            JsonRejection::JsonSyntaxError(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", bounded(&text))
            }
            JsonRejection::JsonDataError(_) => ApiError::invalid(bounded(&text)),
            _ if r.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is larger than the gateway accepts",
            ),
            _ => ApiError::invalid(bounded(&text)),
        }
    }
}

impl From<AliasConflict> for ApiError {
    fn from(e: AliasConflict) -> Self {
        ApiError::invalid(e.to_string())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::invalid(bounded(&r.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::invalid(bounded(&r.body_text()))
    }
}

/// Serde messages echo input; keep them short enough for a log line.
fn bounded(s: &str) -> String {
    const MAX: usize = 300;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_codes_map_to_the_spec_statuses() {
        let cases = [
            (Code::InvalidArgument, 400, "invalid_request"),
            (Code::Unimplemented, 400, "not_supported"),
            (Code::NotFound, 404, "not_found"),
            (Code::ResourceExhausted, 429, "concurrency_limit"),
            (Code::FailedPrecondition, 409, "conflict"),
            (Code::Unavailable, 503, "probe_unavailable"),
            (Code::DeadlineExceeded, 503, "probe_unavailable"),
            (Code::Unknown, 503, "probe_unavailable"),
            (Code::Internal, 500, "internal"),
        ];
        for (code, status, name) in cases {
            let e = ApiError::from(tonic::Status::new(code, "m"));
            assert_eq!((e.status.as_u16(), e.code), (status, name), "{code:?}");
        }
        let cap = "At most 2 concurrent jobs are allowed. Try again later.";
        let e = ApiError::from(tonic::Status::resource_exhausted(cap));
        assert_eq!(e.message, cap);
    }

    #[test]
    fn long_messages_are_bounded() {
        let m = bounded(&"é".repeat(400));
        assert!(m.len() <= 304, "{}", m.len());
    }
}
