//! Service identity: the short-lived token one Studio service sends another on every gRPC call,
//! and the check every internal gRPC listener makes before any handler runs.
//!
//! A service token is a JWT (RFC 7519) signed with HMAC-SHA256 (`alg: HS256`, RFC 7518 §3.2)
//! under a key the platform's services share: `iss` is [`ISSUER`], `sub` the calling service,
//! `aud` the listener it is for ([`audience`]), `iat` and `exp` (default 300 s later). It travels
//! in the [`METADATA`] entry, apart from the user's `authorization` header, which the gateway
//! forwards for owner checks. Every listener accepts only its own audience, so a token minted
//! for the project service does not open ai-job.
//!
//! Two keys:
//! - the platform key (`<service>.identity.key`), held by every service: the user, project and
//!   ai-job job APIs and media-render's status port accept it;
//! - the render-lease key (`<service>.identity.render_lease_key`), held only by ai-job and
//!   media-render: ai-job's `RenderLeaseService` listens on its own port and accepts only it, so
//!   a compromised gateway or project pod cannot settle renders.
//!
//! What a listener answers ([`ServiceGuard`]): no service token → `UNAUTHENTICATED`; a user's
//! access token alone (or a service token for another listener) → `PERMISSION_DENIED`; a forged,
//! expired or malformed token → `UNAUTHENTICATED`. Refusals are counted in
//! `grpc_server_refused_total{audience,code}` and logged; the guard sits outside the gRPC
//! telemetry layer, so refused calls make no per-path metric series. User access tokens are EdDSA-signed by the user
//! service and can never pass as service tokens (HS256 only, another key, another `iss`).

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use studio_core::settings::SettingsError;
use tonic::metadata::{AsciiMetadataValue, MetadataMap};
use tonic::transport::Channel;
use tonic::{Request, Status};

/// The gRPC metadata entry that carries the service token.
pub const METADATA: &str = "studio-service";

/// The `iss` of every service token.
pub const ISSUER: &str = "studio-service";

/// The audience of each internal listener (`aud` of the tokens it accepts).
pub mod audience {
    /// `studio.user.v1.UserService` (callers: the gateway).
    pub const USER: &str = "studio-user";
    /// `studio.project.v1.ProjectService` (callers: the gateway, ai-job).
    pub const PROJECT: &str = "studio-project";
    /// `studio.job.v1.JobService` (callers: the gateway).
    pub const AI_JOB: &str = "studio-ai-job";
    /// `studio.job.v1.RenderLeaseService`, on its own listener and key (callers: media-render).
    pub const RENDER_LEASE: &str = "studio-render-lease";
    /// `studio.render.v1.RenderService` (callers: operators' tools).
    pub const MEDIA_RENDER: &str = "studio-media-render";
}

/// The public development key of the platform (base64 of 32 bytes); refused unless
/// `allow_development_keys` is set, and never with `STUDIO_ENV=production`.
pub const DEVELOPMENT_KEY: &str = "c3R1ZGlvLWRldmVsb3BtZW50LXNlcnZpY2Uta2V5LTE=";

/// The public development render-lease key, refused as [`DEVELOPMENT_KEY`] is.
pub const DEVELOPMENT_RENDER_LEASE_KEY: &str = "c3R1ZGlvLWRldmVsb3BtZW50LWxlYXNlLWtleS0wMDE=";

/// Shortest accepted key, bytes (the HMAC-SHA256 output size; RFC 7518 §3.2).
const MIN_KEY_BYTES: usize = 32;

/// Whether a service holds the render-lease key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseKey {
    /// ai-job and media-render: `render_lease_key` must be set.
    Held,
    /// Every other service: `render_lease_key` must be absent.
    NotHeld,
}

/// A service's `identity` table (`[ai_job.identity]`, `[gateway.identity]`, …).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentitySettings {
    /// The platform key: base64 of at least 32 random bytes (`openssl rand -base64 32`), the same
    /// in every service. Set it with `STUDIO__<SERVICE>__IDENTITY__KEY`. Default the public
    /// [`DEVELOPMENT_KEY`].
    pub key: SecretString,
    /// The render-lease key, held by ai-job and media-render only (refused elsewhere); base64 of at
    /// least 32 random bytes, not the platform key. Default the public
    /// [`DEVELOPMENT_RENDER_LEASE_KEY`] for those two services.
    pub render_lease_key: Option<SecretString>,
    /// Lifetime of the tokens this service sends, seconds (1 to 3600). Default 300.
    pub token_ttl_s: u64,
    /// Accept the public development keys, on a development machine only (never in
    /// `production`). Default false: a deployment that forgets its keys stops at start instead of
    /// trusting a published key.
    pub allow_development_keys: bool,
}

impl Default for IdentitySettings {
    fn default() -> Self {
        IdentitySettings {
            key: SecretString::from(DEVELOPMENT_KEY),
            render_lease_key: None,
            token_ttl_s: 300,
            allow_development_keys: false,
        }
    }
}

impl IdentitySettings {
    /// The development keys, accepted: what tests and `scripts/dev.sh` run with. `lease` says
    /// whether the render-lease key is included.
    pub fn development(lease: LeaseKey) -> Self {
        IdentitySettings {
            render_lease_key: (lease == LeaseKey::Held)
                .then(|| SecretString::from(DEVELOPMENT_RENDER_LEASE_KEY)),
            allow_development_keys: true,
            ..Default::default()
        }
    }

    /// Checks the table of section `section` (`ai_job`) at start, naming the key at fault.
    ///
    /// Errors: a key that is not base64 of ≥ 32 bytes; a development key without
    /// `allow_development_keys` (or in production); a render-lease key where `lease` says
    /// `NotHeld`, or equal to the platform key; `token_ttl_s` outside 1..=3600.
    pub fn validate(&self, section: &str, lease: LeaseKey) -> Result<(), SettingsError> {
        let development = !self.allow_development_keys || studio_core::settings::is_production();
        let fix = |key: &str| {
            let var = format!("STUDIO__{}__IDENTITY__{}", section, key).to_uppercase();
            format!("the development key is public; set {var} to 32 random bytes in base64 (openssl rand -base64 32), or on a development machine only, {section}.identity.allow_development_keys = true")
        };
        parse_key(&format!("{section}.identity.key"), &self.key)?;
        if development && self.key.expose_secret() == DEVELOPMENT_KEY {
            return Err(SettingsError::invalid(
                format!("{section}.identity.key"),
                fix("key"),
            ));
        }
        match (&self.render_lease_key, lease) {
            (Some(_), LeaseKey::NotHeld) => {
                return Err(SettingsError::invalid(
                    format!("{section}.identity.render_lease_key"),
                    "only ai-job and media-render hold the render-lease key; remove it here",
                ))
            }
            (Some(lease_key), LeaseKey::Held) => {
                let name = format!("{section}.identity.render_lease_key");
                parse_key(&name, lease_key)?;
                if development && lease_key.expose_secret() == DEVELOPMENT_RENDER_LEASE_KEY {
                    return Err(SettingsError::invalid(name, fix("render_lease_key")));
                }
                if lease_key.expose_secret() == self.key.expose_secret() {
                    return Err(SettingsError::invalid(
                        name,
                        "must differ from the platform key (identity.key)",
                    ));
                }
            }
            (None, _) => {}
        }
        if !(1..=3600).contains(&self.token_ttl_s) {
            return Err(SettingsError::invalid(
                format!("{section}.identity.token_ttl_s"),
                "must be 1 to 3600 seconds",
            ));
        }
        Ok(())
    }

    /// The identity of service `name` (`gateway`, `ai-job`) with these keys. A missing
    /// render-lease key of a service that `Held`s one is the development key (refused by
    /// [`validate`](Self::validate) outside development).
    ///
    /// Errors: a key that is not base64 of ≥ 32 bytes, naming `section.identity.<key>`.
    pub fn identity(
        &self,
        section: &str,
        name: &'static str,
        lease: LeaseKey,
    ) -> Result<ServiceIdentity, SettingsError> {
        let key = Keys::new(&parse_key(&format!("{section}.identity.key"), &self.key)?);
        let lease_key = match lease {
            LeaseKey::NotHeld => None,
            LeaseKey::Held => {
                let secret = self
                    .render_lease_key
                    .clone()
                    .unwrap_or_else(|| SecretString::from(DEVELOPMENT_RENDER_LEASE_KEY));
                let name = format!("{section}.identity.render_lease_key");
                Some(Keys::new(&parse_key(&name, &secret)?))
            }
        };
        Ok(ServiceIdentity {
            name,
            key: Arc::new(key),
            lease_key: lease_key.map(Arc::new),
            ttl_s: self.token_ttl_s.clamp(1, 3600) as i64,
        })
    }
}

fn parse_key(name: &str, key: &SecretString) -> Result<Vec<u8>, SettingsError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(key.expose_secret().trim())
        .map_err(|_| {
            SettingsError::invalid(name, "must be base64 (openssl rand -base64 32 makes one)")
        })?;
    if bytes.len() < MIN_KEY_BYTES {
        return Err(SettingsError::invalid(
            name,
            format!(
                "must be at least {MIN_KEY_BYTES} bytes before base64, not {}",
                bytes.len()
            ),
        ));
    }
    Ok(bytes)
}

struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl Keys {
    fn new(secret: &[u8]) -> Keys {
        Keys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }
}

/// The claims of a service token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceClaims {
    /// Always [`ISSUER`].
    pub iss: String,
    /// The calling service (`gateway`, `ai-job`, `media-render`).
    pub sub: String,
    /// The listener the token is for ([`audience`]).
    pub aud: String,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds.
    pub exp: i64,
}

/// One service's identity: signs the tokens it sends and checks the tokens its listeners get.
/// Cheap to clone.
#[derive(Clone)]
pub struct ServiceIdentity {
    name: &'static str,
    key: Arc<Keys>,
    lease_key: Option<Arc<Keys>>,
    ttl_s: i64,
}

impl std::fmt::Debug for ServiceIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceIdentity")
            .field("name", &self.name)
            .field("render_lease", &self.lease_key.is_some())
            .finish_non_exhaustive()
    }
}

impl ServiceIdentity {
    /// Service `name` with the public development keys (both): for tests and local tools.
    pub fn development(name: &'static str) -> ServiceIdentity {
        IdentitySettings::development(LeaseKey::Held)
            .identity("development", name, LeaseKey::Held)
            .expect("the development keys are valid")
    }

    /// The calling service's name (`sub` of its tokens).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// A client interceptor that sends this service's token for `audience`, signed with the
    /// platform key. Use with `XxxClient::with_interceptor(channel, identity.tokens(aud))`.
    pub fn tokens(&self, audience: &'static str) -> ServiceToken {
        ServiceToken::new(self.name, audience, self.key.clone(), self.ttl_s)
    }

    /// The client interceptor for ai-job's render-lease listener, signed with the render-lease
    /// key. Panics when this identity holds no render-lease key (a service built with
    /// [`LeaseKey::NotHeld`]), a wiring error.
    pub fn lease_tokens(&self) -> ServiceToken {
        let key = self
            .lease_key
            .clone()
            .expect("only services built with LeaseKey::Held call the render-lease listener");
        ServiceToken::new(self.name, audience::RENDER_LEASE, key, self.ttl_s)
    }

    /// The check for a listener of `audience`, with the platform key.
    pub fn guard(&self, audience: &'static str) -> ServiceGuard {
        ServiceGuard::new(audience, self.key.clone())
    }

    /// The check for the render-lease listener, with the render-lease key. Panics as
    /// [`lease_tokens`](Self::lease_tokens) does.
    pub fn lease_guard(&self) -> ServiceGuard {
        let key = self
            .lease_key
            .clone()
            .expect("only services built with LeaseKey::Held serve the render-lease listener");
        ServiceGuard::new(audience::RENDER_LEASE, key)
    }
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Client interceptor: puts this service's token for one audience into [`METADATA`]. A token is
/// signed once and reused until half its lifetime has passed.
#[derive(Clone)]
pub struct ServiceToken {
    name: &'static str,
    audience: &'static str,
    key: Arc<Keys>,
    ttl_s: i64,
    current: Arc<Mutex<Option<(AsciiMetadataValue, i64)>>>,
}

impl std::fmt::Debug for ServiceToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceToken")
            .field("name", &self.name)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// A tonic client channel that sends a service token with every call.
pub type ServiceChannel = tonic::service::interceptor::InterceptedService<Channel, ServiceToken>;

impl ServiceToken {
    fn new(name: &'static str, audience: &'static str, key: Arc<Keys>, ttl_s: i64) -> Self {
        ServiceToken {
            name,
            audience,
            key,
            ttl_s,
            current: Arc::new(Mutex::new(None)),
        }
    }

    /// The token to send now: the current one, or a new one once half its lifetime has passed.
    pub fn token(&self) -> AsciiMetadataValue {
        let now = now_s();
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((value, renew_at)) = current.as_ref() {
            if now < *renew_at {
                return value.clone();
            }
        }
        let claims = ServiceClaims {
            iss: ISSUER.to_owned(),
            sub: self.name.to_owned(),
            aud: self.audience.to_owned(),
            iat: now,
            exp: now + self.ttl_s,
        };
        let jwt = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.key.encoding)
            .expect("HS256 signing of plain claims cannot fail");
        let value: AsciiMetadataValue = jwt.parse().expect("a JWT is ASCII");
        *current = Some((value.clone(), now + self.ttl_s / 2));
        value
    }

    /// `channel` with this token sent on every call.
    pub fn channel(self, channel: Channel) -> ServiceChannel {
        tonic::service::interceptor::InterceptedService::new(channel, self)
    }

    /// Connects to `url` now (tools and tests; services connect lazily with
    /// [`channel`](Self::channel)) and sends this token on every call.
    ///
    /// Errors: `url` is not a URI, or nothing answers there.
    pub async fn connect(
        self,
        url: impl Into<String>,
    ) -> Result<ServiceChannel, tonic::transport::Error> {
        let channel = tonic::transport::Endpoint::from_shared(url.into())?
            .connect()
            .await?;
        Ok(self.channel(channel))
    }
}

impl tonic::service::Interceptor for ServiceToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request.metadata_mut().insert(METADATA, self.token());
        Ok(request)
    }
}

/// The calling service, put into a request's extensions by [`ServiceGuard`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallingService(pub String);

/// Server interceptor for one listener: refuses every call without a valid service token for
/// its audience, before any handler runs. Use as a layer on the whole server:
/// `Server::builder().layer(tonic::service::InterceptorLayer::new(guard))`.
#[derive(Clone)]
pub struct ServiceGuard {
    audience: &'static str,
    key: Arc<Keys>,
    validation: Arc<Validation>,
}

impl std::fmt::Debug for ServiceGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceGuard")
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl ServiceGuard {
    fn new(audience: &'static str, key: Arc<Keys>) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        ServiceGuard {
            audience,
            key,
            validation: Arc::new(validation),
        }
    }

    /// The calling service of a request's metadata.
    ///
    /// Errors: `Unauthenticated` without a service token, or with one that is malformed,
    /// forged or expired; `PermissionDenied` for a user's access token alone, or a service
    /// token for another listener.
    #[allow(clippy::result_large_err)]
    pub fn check(&self, metadata: &MetadataMap) -> Result<CallingService, Status> {
        let Some(token) = metadata.get(METADATA).and_then(|v| v.to_str().ok()) else {
            if metadata.get("authorization").is_some() {
                return Err(Status::permission_denied(
                    "this is an internal port: user tokens are not accepted; call through the gateway",
                ));
            }
            return Err(Status::unauthenticated(format!(
                "this is an internal port: send a service token in `{METADATA}`"
            )));
        };
        match jsonwebtoken::decode::<ServiceClaims>(token, &self.key.decoding, &self.validation) {
            Ok(data) => Ok(CallingService(data.claims.sub)),
            Err(e) => {
                tracing::warn!(audience = self.audience, error = %e, "service token refused");
                match e.kind() {
                    jsonwebtoken::errors::ErrorKind::InvalidAudience => {
                        Err(Status::permission_denied(format!(
                            "the service token is not for this port ({})",
                            self.audience
                        )))
                    }
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                        Err(Status::unauthenticated("service token expired"))
                    }
                    _ => Err(Status::unauthenticated("invalid service token")),
                }
            }
        }
    }

    /// This guard as a server layer.
    pub fn layer(self) -> tonic::service::InterceptorLayer<ServiceGuard> {
        tonic::service::InterceptorLayer::new(self)
    }
}

impl tonic::service::Interceptor for ServiceGuard {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let caller = self.check(request.metadata()).inspect_err(|status| {
            metrics::counter!(
                "grpc_server_refused_total",
                "audience" => self.audience,
                "code" => format!("{:?}", status.code()),
            )
            .increment(1);
        })?;
        request.extensions_mut().insert(caller);
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(name: &'static str) -> ServiceIdentity {
        IdentitySettings::development(LeaseKey::Held)
            .identity("test", name, LeaseKey::Held)
            .unwrap()
    }

    fn metadata(token: &ServiceToken) -> MetadataMap {
        let mut m = MetadataMap::new();
        m.insert(METADATA, token.token());
        m
    }

    #[test]
    fn a_token_opens_its_own_listener_only() {
        let id = identity("gateway");
        let guard = id.guard(audience::AI_JOB);
        let ok = guard
            .check(&metadata(&id.tokens(audience::AI_JOB)))
            .unwrap();
        assert_eq!(ok, CallingService("gateway".into()));
        let other = guard
            .check(&metadata(&id.tokens(audience::PROJECT)))
            .unwrap_err();
        assert_eq!(other.code(), tonic::Code::PermissionDenied);
        // The platform key does not open the render-lease listener, even for its audience.
        let lease = id.lease_guard();
        let forged = lease
            .check(&metadata(&ServiceToken::new(
                "gateway",
                audience::RENDER_LEASE,
                id.key.clone(),
                300,
            )))
            .unwrap_err();
        assert_eq!(forged.code(), tonic::Code::Unauthenticated);
        assert!(lease.check(&metadata(&id.lease_tokens())).is_ok());
    }

    #[test]
    fn missing_user_forged_and_expired_tokens_are_refused() {
        let id = identity("gateway");
        let guard = id.guard(audience::USER);
        let none = guard.check(&MetadataMap::new()).unwrap_err();
        assert_eq!(none.code(), tonic::Code::Unauthenticated);
        let mut user = MetadataMap::new();
        user.insert(
            "authorization",
            "Bearer eyJhbGciOiJFZERTQSJ9.e30.x".parse().unwrap(),
        );
        assert_eq!(
            guard.check(&user).unwrap_err().code(),
            tonic::Code::PermissionDenied
        );
        let other_key = Arc::new(Keys::new(&[7u8; 32]));
        let forged = ServiceToken::new("gateway", audience::USER, other_key, 300);
        assert_eq!(
            guard.check(&metadata(&forged)).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        let expired = ServiceToken::new("gateway", audience::USER, id.key.clone(), -60);
        let status = guard.check(&metadata(&expired)).unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        assert!(status.message().contains("expired"), "{status:?}");
    }

    #[test]
    fn tokens_are_reused_until_half_their_lifetime() {
        let id = identity("ai-job");
        let tokens = id.tokens(audience::PROJECT);
        assert_eq!(tokens.token(), tokens.token());
    }

    #[test]
    fn settings_refuse_public_short_and_misplaced_keys() {
        let plain = IdentitySettings::default();
        let err = plain.validate("gateway", LeaseKey::NotHeld).unwrap_err();
        assert!(
            err.to_string().contains("STUDIO__GATEWAY__IDENTITY__KEY"),
            "{err}"
        );
        let dev = IdentitySettings::development(LeaseKey::NotHeld);
        dev.validate("gateway", LeaseKey::NotHeld).unwrap();
        let misplaced = IdentitySettings::development(LeaseKey::Held);
        let err = misplaced
            .validate("gateway", LeaseKey::NotHeld)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("gateway.identity.render_lease_key"),
            "{err}"
        );
        misplaced.validate("ai_job", LeaseKey::Held).unwrap();
        let short = IdentitySettings {
            key: SecretString::from("c2hvcnQ="),
            ..IdentitySettings::development(LeaseKey::NotHeld)
        };
        let err = short.validate("user", LeaseKey::NotHeld).unwrap_err();
        assert!(err.to_string().contains("at least 32 bytes"), "{err}");
        let same = IdentitySettings {
            render_lease_key: Some(SecretString::from(DEVELOPMENT_KEY)),
            ..IdentitySettings::development(LeaseKey::Held)
        };
        let err = same.validate("ai_job", LeaseKey::Held).unwrap_err();
        assert!(err.to_string().contains("must differ"), "{err}");
    }
}
