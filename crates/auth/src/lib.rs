//! Access tokens: what they claim and how services check them.
//!
//! The user service signs access tokens (JWT, `alg: EdDSA` over Ed25519, RFC 8037) with a key
//! named by `kid`, and publishes the public keys as a JWKS document (RFC 7517) at
//! `/.well-known/jwks.json`. Every other service verifies with a [`JwksVerifier`]: keys are cached,
//! the document is fetched again when a token names an unknown `kid` (at most once per
//! `min_refresh_interval`, so a flood of forged `kid`s cannot hammer the user service) and when the
//! cache is older than `max_age`. A token is accepted only with `alg: EdDSA`, a known `kid`, a
//! valid signature, the configured `iss` and `aud`, and `exp` in the future.
//!
//! Services prove who they are to each other with service tokens ([`service`]).

pub mod service;
mod verifier;

use serde::{Deserialize, Serialize};
use studio_core::id::UserId;

pub use verifier::{JwksVerifier, VerifierSettings};

/// What a user may do beyond their own objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    /// Parses the stored/claimed name; unknown names are refused.
    pub fn parse(value: &str) -> Option<Role> {
        match value {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// The claims of an access token (RFC 7519 registered claims plus `role`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer, e.g. `https://studio.example/`.
    pub iss: String,
    /// Audience, e.g. `studio-api`.
    pub aud: String,
    /// The user id.
    pub sub: String,
    pub role: Role,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds.
    pub exp: i64,
    /// Token id (UUID), for logs and revocation lists.
    pub jti: String,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub user_id: UserId,
    pub role: Role,
}

/// Why a token was refused. Every variant answers 401 / `UNAUTHENTICATED`; the detail is logged,
/// and the caller sees only [`AuthError::public_message`].
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token")]
    Missing,
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("algorithm {0} is not accepted")]
    Algorithm(String),
    #[error("token has no kid")]
    NoKid,
    #[error("unknown signing key {0}")]
    UnknownKey(String),
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("token expired")]
    Expired,
    #[error("signing keys unavailable: {0}")]
    Jwks(String),
}

impl AuthError {
    /// The message safe to return: whether a token was sent, and whether it expired.
    pub fn public_message(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing access token: send `Authorization: Bearer <token>`",
            AuthError::Expired => "access token expired: refresh it",
            AuthError::Jwks(_) => "cannot verify access tokens right now; retry later",
            _ => "invalid access token",
        }
    }
}

impl From<AuthError> for studio_core::Error {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Jwks(_) => {
                studio_core::Error::new(studio_core::ErrorCode::Unavailable, err.public_message())
            }
            _ => studio_core::Error::unauthenticated(err.public_message()),
        }
    }
}

/// The checks every access token gets: EdDSA only, `exp`, `iss`, `aud` and `sub` required,
/// `leeway_s` seconds of clock skew.
pub fn validation(issuer: &str, audience: &str, leeway_s: u64) -> jsonwebtoken::Validation {
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = leeway_s;
    validation
}

/// The `kid` of a token whose header says `alg: EdDSA`; anything else (including `alg: none`,
/// which does not even parse) is refused before any key is looked up.
pub fn checked_kid(token: &str) -> Result<String, AuthError> {
    let header =
        jsonwebtoken::decode_header(token).map_err(|e| AuthError::Malformed(e.to_string()))?;
    if header.alg != jsonwebtoken::Algorithm::EdDSA {
        return Err(AuthError::Algorithm(format!("{:?}", header.alg)));
    }
    header.kid.ok_or(AuthError::NoKid)
}

/// Verifies `token`'s signature with `key` and its claims with `validation`.
pub fn decode(
    token: &str,
    key: &jsonwebtoken::DecodingKey,
    validation: &jsonwebtoken::Validation,
) -> Result<Caller, AuthError> {
    let data = jsonwebtoken::decode::<AccessClaims>(token, key, validation).map_err(|e| match e
        .kind()
    {
        jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
        _ => AuthError::Invalid(e.to_string()),
    })?;
    let user_id = UserId::parse("sub", &data.claims.sub)
        .map_err(|_| AuthError::Invalid("sub is not a user id".to_owned()))?;
    Ok(Caller {
        user_id,
        role: data.claims.role,
    })
}

/// Verifies `token` against a JWK Set held in memory (the issuer's own keys).
pub fn verify_with_set(
    token: &str,
    set: &jsonwebtoken::jwk::JwkSet,
    validation: &jsonwebtoken::Validation,
) -> Result<Caller, AuthError> {
    let kid = checked_kid(token)?;
    let jwk = set.find(&kid).ok_or(AuthError::UnknownKey(kid))?;
    let key =
        jsonwebtoken::DecodingKey::from_jwk(jwk).map_err(|e| AuthError::Invalid(e.to_string()))?;
    decode(token, &key, validation)
}

/// The bearer token in an `authorization` header value (`Bearer <token>`, scheme case-insensitive).
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}

/// The bearer token from gRPC metadata.
pub fn bearer_from_metadata(metadata: &tonic::metadata::MetadataMap) -> Result<&str, AuthError> {
    metadata
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(bearer)
        .ok_or(AuthError::Missing)
}

/// A JWK for an Ed25519 public key (RFC 8037 `OKP`), as published in the JWKS.
pub fn ed25519_jwk(kid: &str, public_key: &[u8]) -> jsonwebtoken::jwk::Jwk {
    use base64::Engine as _;
    use jsonwebtoken::jwk;
    jwk::Jwk {
        common: jwk::CommonParameters {
            public_key_use: Some(jwk::PublicKeyUse::Signature),
            key_algorithm: Some(jwk::KeyAlgorithm::EdDSA),
            key_id: Some(kid.to_owned()),
            ..Default::default()
        },
        algorithm: jwk::AlgorithmParameters::OctetKeyPair(jwk::OctetKeyPairParameters {
            key_type: jwk::OctetKeyPairType::OctetKeyPair,
            curve: jwk::EllipticCurve::Ed25519,
            x: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(public_key),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parses_the_scheme() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
    }
}
