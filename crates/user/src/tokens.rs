//! Token material: signed access tokens and opaque refresh tokens.

use base64::Engine as _;
use jsonwebtoken::{Algorithm, Header};
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};
use studio_auth::{AccessClaims, Role};
use studio_core::id::UserId;

use crate::keys::SigningKey;

/// Signs an access token for `user` valid for `ttl_s` seconds from `now` (Unix seconds).
pub fn access_token(
    key: &SigningKey,
    issuer: &str,
    audience: &str,
    user: UserId,
    role: Role,
    now: i64,
    ttl_s: i64,
) -> Result<String, jsonwebtoken::errors::Error> {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(key.kid.clone());
    let claims = AccessClaims {
        iss: issuer.to_owned(),
        aud: audience.to_owned(),
        sub: user.to_string(),
        role,
        iat: now,
        exp: now + ttl_s,
        jti: uuid::Uuid::new_v4().to_string(),
    };
    jsonwebtoken::encode(&header, &claims, &key.encoding)
}

/// A new refresh token: 32 random bytes, base64url without padding (43 characters).
pub fn new_refresh_token() -> String {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the OS random source works");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// 32 random bytes, base64url: a secret a client keeps (a sign-in's binding).
pub fn random_secret() -> String {
    new_refresh_token()
}

/// What is stored for a refresh token: its SHA-256. A high-entropy random token needs no salt.
pub fn refresh_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_tokens_are_random_and_hashed() {
        let a = new_refresh_token();
        let b = new_refresh_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(refresh_hash(&a).len(), 32);
        assert_ne!(refresh_hash(&a), refresh_hash(&b));
    }
}
