//! The gateway's one error type: every failure leaves as `application/problem+json`
//! (RFC 9457) with the status from [`ErrorCode::http_status`]. 5xx details are logged, never sent.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use studio_core::{Error, ErrorCode};
use utoipa::ToSchema;

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem, e.g. `https://studio.dev/problems/not-found`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short, the same for every problem of this type.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What happened and what to do.
    pub detail: String,
    /// The request field at fault, e.g. `title` or `settings.duration_s`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// An error on its way out.
#[derive(Debug)]
pub struct ApiError {
    pub error: Error,
    /// For 429: seconds until a retry can succeed (`Retry-After`).
    pub retry_after_s: Option<u64>,
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        ApiError {
            error,
            retry_after_s: None,
        }
    }
}

impl From<tonic::Status> for ApiError {
    fn from(status: tonic::Status) -> Self {
        if matches!(
            status.code(),
            tonic::Code::Internal | tonic::Code::Unknown | tonic::Code::Unavailable
        ) {
            tracing::error!(code = ?status.code(), message = status.message(), "upstream call failed");
        }
        ApiError::from(Error::from(status))
    }
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::invalid(field, message).into()
    }

    pub fn too_many(retry_after_s: u64, what: &str) -> Self {
        ApiError {
            error: Error::new(
                ErrorCode::ResourceExhausted,
                format!("{what}; retry in {retry_after_s} s"),
            ),
            retry_after_s: Some(retry_after_s),
        }
    }
}

fn title(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::InvalidArgument => "Invalid request",
        ErrorCode::Unauthenticated => "Not signed in",
        ErrorCode::PermissionDenied => "Not allowed",
        ErrorCode::NotFound => "Not found",
        ErrorCode::AlreadyExists => "Already exists",
        ErrorCode::Aborted => "Conflict",
        ErrorCode::FailedPrecondition => "Not possible now",
        ErrorCode::ResourceExhausted => "Too many requests",
        ErrorCode::PayloadTooLarge => "Request too large",
        ErrorCode::Cancelled => "Cancelled",
        ErrorCode::DeadlineExceeded => "Timed out",
        ErrorCode::Unavailable => "Service unavailable",
        ErrorCode::Internal => "Internal error",
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.error.code;
        let status = code.http_status();
        let detail = if status.is_server_error() && code != ErrorCode::Unavailable {
            "something went wrong on our side; it has been logged".to_owned()
        } else {
            self.error.message
        };
        let problem = Problem {
            kind: format!("https://studio.dev/problems/{}", code.as_str()),
            title: title(code).to_owned(),
            status: status.as_u16(),
            detail,
            field: self.error.field,
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(s) = self.retry_after_s {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(s.max(1)));
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"studio\""),
            );
        }
        response
    }
}

/// Handler result.
pub type ApiResult<T> = Result<T, ApiError>;

/// The problem responses every route may give, for the OpenAPI document.
#[derive(Debug, utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum Problems {
    /// A field is missing, malformed or out of range; `field` names it.
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
    /// No valid access token (or wrong credentials on sign-in).
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
    /// The object does not exist or is not yours.
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
    /// It exists already, the state does not allow it, or an account limit is reached.
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(Problem),
    /// The body is larger than the gateway accepts.
    #[response(status = 413, content_type = "application/problem+json")]
    TooLarge(Problem),
    /// A rate limit was hit; see `Retry-After`.
    #[response(status = 429, content_type = "application/problem+json")]
    TooMany(Problem),
    /// A backend service is down; retry later.
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Problem),
}
