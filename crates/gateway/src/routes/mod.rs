//! The `/v1` routes. Each handler converts REST shapes to a gRPC call on the owning service and
//! back; authorization (owner checks) happens in the services, which see the caller's token.

pub mod auth;
pub mod jobs;
pub mod projects;

use std::time::Duration;

/// A gRPC request with the caller's token, the current trace context and a deadline.
pub fn grpc<T>(message: T, token: Option<&str>, timeout: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(timeout);
    let mut headers = std::mem::take(request.metadata_mut()).into_headers();
    studio_telemetry::inject_context(&mut headers);
    if let Some(token) = token {
        if let Ok(value) = format!("Bearer {token}").parse() {
            headers.insert(http::header::AUTHORIZATION, value);
        }
    }
    *request.metadata_mut() = tonic::metadata::MetadataMap::from_headers(headers);
    request
}
