//! Request extractors that answer in problem+json: [`ApiJson`] (body, naming the bad field),
//! [`ApiQuery`], [`Authed`] (a verified access token, rate-limited per user) and [`client_ip`].

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use studio_auth::Caller;
use studio_core::{Error, ErrorCode};

use crate::error::ApiError;
use crate::state::AppState;

/// A JSON body, deserialized with the path of the first bad field.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| {
            let v = v.trim().to_ascii_lowercase();
            v == "application/json" || (v.starts_with("application/") && v.ends_with("+json"))
        })
        .unwrap_or(false)
}

/// Turns a serde error at `path` into an error naming the field.
fn body_error(path: String, message: String, syntax: bool) -> ApiError {
    if syntax {
        return ApiError::invalid("body", format!("malformed JSON: {message}"));
    }
    // serde_path_to_error's path already ends with an unknown field's name.
    let field = if path == "." { "body".to_owned() } else { path };
    ApiError::invalid(field, message)
}

/// Parses `bytes` as `T`, naming the field at fault.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let syntax = matches!(
            inner.classify(),
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof
        );
        body_error(path, inner.to_string(), syntax)
    })?;
    de.end()
        .map_err(|e| ApiError::invalid("body", format!("malformed JSON: {e}")))?;
    Ok(value)
}

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(request.headers()) {
            return Err(ApiError::invalid(
                "content-type",
                "send the body as JSON with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::from(Error::new(
                        ErrorCode::PayloadTooLarge,
                        "request body is too large; see gateway.body_limit_bytes",
                    ))
                } else {
                    ApiError::invalid("body", rejection.body_text())
                }
            })?;
        Ok(ApiJson(parse_json(&bytes)?))
    }
}

/// Query parameters, deserialized with the bad parameter named.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|e| {
                let path = e.path().to_string();
                body_error(path, e.into_inner().to_string(), false)
            })
    }
}

/// The signed-in caller, with the token to forward to the services.
#[derive(Debug, Clone)]
pub struct Authed {
    pub caller: Caller,
    pub token: String,
}

impl FromRequestParts<AppState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = Authed::token_from(&parts.headers)
            .ok_or_else(|| ApiError::from(Error::from(studio_auth::AuthError::Missing)))?;
        Authed::verify(state, token).await
    }
}

impl Authed {
    /// The bearer token of the `Authorization` header.
    pub fn token_from(headers: &http::HeaderMap) -> Option<String> {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(studio_auth::bearer)
            .map(str::to_owned)
    }

    /// Verifies `token` and applies the per-user rate limit.
    pub async fn verify(state: &AppState, token: String) -> Result<Authed, ApiError> {
        let caller = state.verifier.verify(&token).await.map_err(|e| {
            tracing::debug!(error = %e, "access token refused");
            ApiError::from(Error::from(e))
        })?;
        state.limits.check_user(&caller.user_id.to_string())?;
        Ok(Authed { caller, token })
    }
}

/// The client's address: the TCP peer, or the last entry of the trusted proxy header when
/// `gateway.rate_limit.client_ip_header` is set.
pub fn client_ip(
    headers: &HeaderMap,
    peer: Option<&ConnectInfo<SocketAddr>>,
    header_name: Option<&str>,
) -> Option<IpAddr> {
    if let Some(name) = header_name {
        // Only the entry our proxy appended is trustworthy; earlier ones come from the client.
        let forwarded = headers
            .get_all(name)
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse::<IpAddr>().ok());
        if forwarded.is_some() {
            return forwarded;
        }
    }
    peer.map(|p| p.0.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        title: String,
        settings: Option<Inner>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        rate_wpm: u32,
    }

    fn field(bytes: &str) -> Option<String> {
        parse_json::<Body>(bytes.as_bytes())
            .unwrap_err()
            .error
            .field
    }

    #[test]
    fn json_errors_name_the_field() {
        assert_eq!(field(r#"{"title": 3}"#).as_deref(), Some("title"));
        assert_eq!(
            field(r#"{"title": "a", "settings": {"rate_wpm": "x"}}"#).as_deref(),
            Some("settings.rate_wpm")
        );
        assert_eq!(
            field(r#"{"title": "a", "role": "admin"}"#).as_deref(),
            Some("role")
        );
        assert_eq!(
            field(r#"{"title": "a", "settings": {"rate_wpm": 1, "owner_id": 1}}"#).as_deref(),
            Some("settings.owner_id")
        );
        assert_eq!(field(r#"{"title": "#).as_deref(), Some("body"));
        assert_eq!(field(r#"{}"#).as_deref(), Some("body"));
    }

    #[test]
    fn proxy_header_only_when_trusted() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "1.2.3.4, 10.0.0.7".parse().unwrap());
        let peer = ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 9)));
        assert_eq!(
            client_ip(&headers, Some(&peer), None),
            Some(IpAddr::from([127, 0, 0, 1]))
        );
        assert_eq!(
            client_ip(&headers, Some(&peer), Some("x-forwarded-for")),
            Some(IpAddr::from([10, 0, 0, 7]))
        );
    }
}
