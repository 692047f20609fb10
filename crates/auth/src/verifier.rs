//! [`JwksVerifier`]: checks access tokens against the user service's JWKS.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::{DecodingKey, Validation};
use serde::Deserialize;
use tokio::sync::{Mutex, RwLock};

use crate::{AuthError, Caller};

/// Where the keys are and what a token must claim.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifierSettings {
    /// The JWKS document, e.g. `http://user:8081/.well-known/jwks.json`.
    pub jwks_url: String,
    /// Expected `iss`.
    pub issuer: String,
    /// Expected `aud`.
    pub audience: String,
    /// Refetch the JWKS when the cache is older than this, in seconds. Default 300.
    #[serde(default = "default_max_age_s")]
    pub max_age_s: u64,
    /// At most one refetch per this many milliseconds on unknown `kid`s. Default 1000.
    #[serde(default = "default_min_refresh_ms")]
    pub min_refresh_interval_ms: u64,
    /// Allowed clock skew for `exp`, in seconds. Default 5.
    #[serde(default = "default_leeway_s")]
    pub leeway_s: u64,
}

fn default_max_age_s() -> u64 {
    300
}

fn default_min_refresh_ms() -> u64 {
    1000
}

fn default_leeway_s() -> u64 {
    5
}

impl VerifierSettings {
    pub fn new(jwks_url: impl Into<String>, issuer: &str, audience: &str) -> Self {
        VerifierSettings {
            jwks_url: jwks_url.into(),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            max_age_s: default_max_age_s(),
            min_refresh_interval_ms: default_min_refresh_ms(),
            leeway_s: default_leeway_s(),
        }
    }
}

#[derive(Default)]
struct Keys {
    by_kid: HashMap<String, DecodingKey>,
    fetched: Option<Instant>,
}

/// Verifies access tokens; cheap to share behind an `Arc`.
pub struct JwksVerifier {
    settings: VerifierSettings,
    http: reqwest::Client,
    keys: RwLock<Keys>,
    /// Serialises refetches and remembers when the last one started.
    refresh: Mutex<Option<Instant>>,
    validation: Validation,
}

impl std::fmt::Debug for JwksVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksVerifier")
            .field("jwks_url", &self.settings.jwks_url)
            .finish_non_exhaustive()
    }
}

impl JwksVerifier {
    pub fn new(settings: VerifierSettings) -> Self {
        let validation = crate::validation(&settings.issuer, &settings.audience, settings.leeway_s);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        JwksVerifier {
            settings,
            http,
            keys: RwLock::new(Keys::default()),
            refresh: Mutex::new(None),
            validation,
        }
    }

    /// Checks `token` and returns its caller.
    ///
    /// Errors: any [`AuthError`]; `Jwks` when the key document cannot be fetched and no cached key
    /// matches.
    pub async fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        let kid = crate::checked_kid(token)?;
        let key = self.key(&kid).await?;
        crate::decode(token, &key, &self.validation)
    }

    /// Checks the bearer token of a gRPC request.
    #[allow(clippy::result_large_err)]
    pub async fn verify_request<T>(
        &self,
        request: &tonic::Request<T>,
    ) -> Result<Caller, tonic::Status> {
        let token = crate::bearer_from_metadata(request.metadata())
            .map_err(|e| tonic::Status::from(studio_core::Error::from(e)))?;
        self.verify(token).await.map_err(|e| {
            tracing::debug!(error = %e, "access token refused");
            tonic::Status::from(studio_core::Error::from(e))
        })
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey, AuthError> {
        let max_age = Duration::from_secs(self.settings.max_age_s);
        {
            let keys = self.keys.read().await;
            let fresh = keys.fetched.is_some_and(|at| at.elapsed() < max_age);
            if let (Some(key), true) = (keys.by_kid.get(kid), fresh) {
                return Ok(key.clone());
            }
        }
        let refetch = self.refetch().await;
        let keys = self.keys.read().await;
        match (keys.by_kid.get(kid), refetch) {
            (Some(key), _) => Ok(key.clone()),
            (None, Err(err)) => Err(err),
            (None, Ok(())) => Err(AuthError::UnknownKey(kid.to_owned())),
        }
    }

    /// Fetches the JWKS unless another fetch happened within `min_refresh_interval_ms`.
    async fn refetch(&self) -> Result<(), AuthError> {
        let mut last = self.refresh.lock().await;
        let min = Duration::from_millis(self.settings.min_refresh_interval_ms);
        if last.is_some_and(|at| at.elapsed() < min) {
            return Ok(());
        }
        *last = Some(Instant::now());
        let set: jsonwebtoken::jwk::JwkSet = self
            .http
            .get(&self.settings.jwks_url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| AuthError::Jwks(e.to_string()))?
            .json()
            .await
            .map_err(|e| AuthError::Jwks(e.to_string()))?;
        let mut by_kid = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            match DecodingKey::from_jwk(jwk) {
                Ok(key) => {
                    by_kid.insert(kid, key);
                }
                Err(err) => tracing::warn!(%kid, error = %err, "skipping unusable jwk"),
            }
        }
        tracing::debug!(keys = by_kid.len(), "jwks fetched");
        let mut keys = self.keys.write().await;
        keys.by_kid = by_kid;
        keys.fetched = Some(Instant::now());
        Ok(())
    }
}
