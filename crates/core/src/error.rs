//! One error-code vocabulary for every service, mapped both to gRPC status codes and to HTTP
//! statuses, so a `NOT_FOUND` from the project service is a `404` at the gateway.
//!
//! The codes follow `google.rpc.Code` (grpc/grpc `doc/statuscodes.md`); the HTTP mapping is
//! the one in `google/rpc/code.proto`, except `PayloadTooLarge` (413), which gRPC has no code for
//! and maps to `RESOURCE_EXHAUSTED`.

use std::fmt;

/// What went wrong, in terms a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request is malformed or a field is out of range (400).
    InvalidArgument,
    /// No valid credentials (401).
    Unauthenticated,
    /// Authenticated, but the role does not allow it (403).
    PermissionDenied,
    /// The object does not exist or is not the caller's (404).
    NotFound,
    /// The object exists already (409).
    AlreadyExists,
    /// A concurrent change won; retry with fresh state (409).
    Aborted,
    /// The system is not in a state that allows it, e.g. not enough credits (412 → 409 over HTTP,
    /// as `google/rpc/code.proto` advises for REST).
    FailedPrecondition,
    /// A rate limit or quota is exhausted (429).
    ResourceExhausted,
    /// The request body is larger than allowed (413).
    PayloadTooLarge,
    /// The caller cancelled (499).
    Cancelled,
    /// A deadline passed (504).
    DeadlineExceeded,
    /// A dependency is down; retry later (503).
    Unavailable,
    /// A bug or an unexpected failure; details are logged, never returned (500).
    Internal,
}

impl ErrorCode {
    /// The gRPC status code.
    pub fn grpc_code(self) -> tonic::Code {
        use tonic::Code;
        match self {
            ErrorCode::InvalidArgument => Code::InvalidArgument,
            ErrorCode::Unauthenticated => Code::Unauthenticated,
            ErrorCode::PermissionDenied => Code::PermissionDenied,
            ErrorCode::NotFound => Code::NotFound,
            ErrorCode::AlreadyExists => Code::AlreadyExists,
            ErrorCode::Aborted => Code::Aborted,
            ErrorCode::FailedPrecondition => Code::FailedPrecondition,
            ErrorCode::ResourceExhausted | ErrorCode::PayloadTooLarge => Code::ResourceExhausted,
            ErrorCode::Cancelled => Code::Cancelled,
            ErrorCode::DeadlineExceeded => Code::DeadlineExceeded,
            ErrorCode::Unavailable => Code::Unavailable,
            ErrorCode::Internal => Code::Internal,
        }
    }

    /// The HTTP status.
    pub fn http_status(self) -> http::StatusCode {
        use http::StatusCode as S;
        match self {
            ErrorCode::InvalidArgument => S::BAD_REQUEST,
            ErrorCode::Unauthenticated => S::UNAUTHORIZED,
            ErrorCode::PermissionDenied => S::FORBIDDEN,
            ErrorCode::NotFound => S::NOT_FOUND,
            ErrorCode::AlreadyExists | ErrorCode::Aborted | ErrorCode::FailedPrecondition => {
                S::CONFLICT
            }
            ErrorCode::ResourceExhausted => S::TOO_MANY_REQUESTS,
            ErrorCode::PayloadTooLarge => S::PAYLOAD_TOO_LARGE,
            ErrorCode::Cancelled => S::from_u16(499).unwrap_or(S::BAD_REQUEST),
            ErrorCode::DeadlineExceeded => S::GATEWAY_TIMEOUT,
            ErrorCode::Unavailable => S::SERVICE_UNAVAILABLE,
            ErrorCode::Internal => S::INTERNAL_SERVER_ERROR,
        }
    }

    /// The code a gRPC status maps back to (for errors relayed from another service).
    pub fn from_grpc(code: tonic::Code) -> Self {
        use tonic::Code;
        match code {
            Code::InvalidArgument | Code::OutOfRange => ErrorCode::InvalidArgument,
            Code::Unauthenticated => ErrorCode::Unauthenticated,
            Code::PermissionDenied => ErrorCode::PermissionDenied,
            Code::NotFound => ErrorCode::NotFound,
            Code::AlreadyExists => ErrorCode::AlreadyExists,
            Code::Aborted => ErrorCode::Aborted,
            Code::FailedPrecondition => ErrorCode::FailedPrecondition,
            Code::ResourceExhausted => ErrorCode::ResourceExhausted,
            Code::Cancelled => ErrorCode::Cancelled,
            Code::DeadlineExceeded => ErrorCode::DeadlineExceeded,
            Code::Unavailable => ErrorCode::Unavailable,
            Code::Ok | Code::Unknown | Code::Unimplemented | Code::Internal | Code::DataLoss => {
                ErrorCode::Internal
            }
        }
    }

    /// A stable lowercase name, used as the problem `type` suffix and in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidArgument => "invalid-argument",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::PermissionDenied => "permission-denied",
            ErrorCode::NotFound => "not-found",
            ErrorCode::AlreadyExists => "already-exists",
            ErrorCode::Aborted => "aborted",
            ErrorCode::FailedPrecondition => "failed-precondition",
            ErrorCode::ResourceExhausted => "resource-exhausted",
            ErrorCode::PayloadTooLarge => "payload-too-large",
            ErrorCode::Cancelled => "cancelled",
            ErrorCode::DeadlineExceeded => "deadline-exceeded",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// gRPC metadata key carrying the offending field's name, so the gateway can name it.
pub const FIELD_METADATA_KEY: &str = "studio-field";

/// An error as it crosses a service edge: a code, a message safe to show the caller, and the field
/// it concerns, if any. Internal errors carry a generic message; log the cause before building one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
}

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
            field: None,
        }
    }

    /// `InvalidArgument` about `field`; the message should say what is accepted.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        Error {
            code: ErrorCode::InvalidArgument,
            message: format!("{field}: {}", message.into()),
            field: Some(field),
        }
    }

    /// `NotFound` for a kind of object ("project", "scene", …), the same whether it is missing or
    /// someone else's.
    pub fn not_found(what: &str) -> Self {
        Error::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::Unauthenticated, message)
    }

    /// `Internal` with a generic message. Log the cause first: it is never returned.
    pub fn internal() -> Self {
        Error::new(ErrorCode::Internal, "internal error")
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

impl From<Error> for tonic::Status {
    fn from(error: Error) -> Self {
        let mut status = tonic::Status::new(error.code.grpc_code(), error.message);
        if let Some(field) = error.field {
            if let Ok(value) = field.parse() {
                status.metadata_mut().insert(FIELD_METADATA_KEY, value);
            }
        }
        status
    }
}

impl From<tonic::Status> for Error {
    /// Maps a status from another service back to an error; `Internal`/`Unknown` statuses lose
    /// their message so internals never travel further.
    fn from(status: tonic::Status) -> Self {
        let code = ErrorCode::from_grpc(status.code());
        let field = status
            .metadata()
            .get(FIELD_METADATA_KEY)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let message = match code {
            ErrorCode::Internal => "internal error".to_owned(),
            ErrorCode::Unavailable => "a backend service is unavailable; retry later".to_owned(),
            _ => status.message().to_owned(),
        };
        Error {
            code,
            message,
            field,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_grpc() {
        for code in [
            ErrorCode::InvalidArgument,
            ErrorCode::Unauthenticated,
            ErrorCode::PermissionDenied,
            ErrorCode::NotFound,
            ErrorCode::AlreadyExists,
            ErrorCode::Aborted,
            ErrorCode::FailedPrecondition,
            ErrorCode::ResourceExhausted,
            ErrorCode::Cancelled,
            ErrorCode::DeadlineExceeded,
            ErrorCode::Unavailable,
            ErrorCode::Internal,
        ] {
            assert_eq!(ErrorCode::from_grpc(code.grpc_code()), code, "{code}");
        }
        assert_eq!(ErrorCode::NotFound.http_status().as_u16(), 404);
        assert_eq!(ErrorCode::ResourceExhausted.http_status().as_u16(), 429);
        assert_eq!(ErrorCode::PayloadTooLarge.http_status().as_u16(), 413);
    }

    #[test]
    fn the_field_travels_in_metadata_and_internals_do_not() {
        let status: tonic::Status = Error::invalid("title", "must not be empty").into();
        let back = Error::from(status);
        assert_eq!(back.field.as_deref(), Some("title"));
        assert_eq!(back.message, "title: must not be empty");

        let status = tonic::Status::internal("relation \"users\" does not exist");
        assert_eq!(Error::from(status).message, "internal error");
    }
}
