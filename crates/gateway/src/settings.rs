//! The `[gateway]` settings section (see `config/default.toml`).

use serde::Deserialize;
use studio_auth::VerifierSettings;
use studio_core::settings::{parse_addr, SettingsError, Validate};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// REST listen address. Default `127.0.0.1:8080`.
    #[serde(default = "default_http_addr")]
    pub http_addr: String,
    /// The user service's gRPC endpoint. Default `http://127.0.0.1:50051`.
    #[serde(default = "default_user_url")]
    pub user_url: String,
    /// The project service's gRPC endpoint. Default `http://127.0.0.1:50052`.
    #[serde(default = "default_project_url")]
    pub project_url: String,
    /// The ai-job service's gRPC endpoint. Default `http://127.0.0.1:50053`.
    #[serde(default = "default_ai_job_url")]
    pub ai_job_url: String,
    /// How access tokens are verified (JWKS of the user service).
    pub auth: VerifierSettings,
    /// Largest request body in bytes. Default 2 MiB (a project's source text may be 1 MB).
    #[serde(default = "default_body_limit")]
    pub body_limit_bytes: usize,
    /// Per-call deadline towards the services, in milliseconds. Default 10000.
    #[serde(default = "default_timeout_ms")]
    pub upstream_timeout_ms: u64,
    #[serde(default)]
    pub rate_limit: RateLimitSettings,
    #[serde(default)]
    pub cors: CorsSettings,
    /// TLS of the gRPC listeners and of `https://` peers.
    #[serde(default)]
    pub tls: studio_core::tls::TlsSettings,
    /// The platform key the gateway signs its service tokens with.
    #[serde(default)]
    pub identity: studio_auth::service::IdentitySettings,
}

fn default_http_addr() -> String {
    "127.0.0.1:8080".to_owned()
}

fn default_user_url() -> String {
    "http://127.0.0.1:50051".to_owned()
}

fn default_project_url() -> String {
    "http://127.0.0.1:50052".to_owned()
}

fn default_ai_job_url() -> String {
    "http://127.0.0.1:50053".to_owned()
}

fn default_body_limit() -> usize {
    2 * 1024 * 1024
}

fn default_timeout_ms() -> u64 {
    10_000
}

/// Token-bucket limits (GCRA, the `governor` crate): a sustained rate per minute and a burst.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSettings {
    /// Requests per minute per client IP, on every `/v1` route. Default 600.
    pub per_ip_per_minute: u32,
    /// Burst per client IP. Default 100.
    pub per_ip_burst: u32,
    /// Requests per minute per signed-in user. Default 300.
    pub per_user_per_minute: u32,
    /// Burst per user. Default 60.
    pub per_user_burst: u32,
    /// Sign-in, register and refresh attempts per minute per client IP (they cost an argon2
    /// hash). Default 20.
    pub auth_per_ip_per_minute: u32,
    /// Burst for the sign-in routes. Default 10.
    pub auth_per_ip_burst: u32,
    /// A header set by a trusted reverse proxy with the client address, e.g. `x-forwarded-for`
    /// (its last entry is used: the one our proxy appended). Unset: the TCP peer address, and any
    /// such header is ignored, since a client could forge it.
    pub client_ip_header: Option<String>,
    /// Progress streams (WebSocket or Server-Sent Events) one user may hold open at once; one
    /// more gets 429 until another closes. Default 10.
    pub max_streams_per_user: u32,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        RateLimitSettings {
            per_ip_per_minute: 600,
            per_ip_burst: 100,
            per_user_per_minute: 300,
            per_user_burst: 60,
            auth_per_ip_per_minute: 20,
            auth_per_ip_burst: 10,
            client_ip_header: None,
            max_streams_per_user: 10,
        }
    }
}

/// Cross-origin requests from browsers.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorsSettings {
    /// Origins allowed to call the API, e.g. `https://app.studio.example`. Empty: none.
    pub allowed_origins: Vec<String>,
    /// Preflight cache time in seconds. Default 0 (browser default).
    pub max_age_s: u64,
}

impl Validate for Settings {
    fn validate(&self) -> Result<(), SettingsError> {
        parse_addr("gateway.http_addr", &self.http_addr)?;
        self.identity
            .validate("gateway", studio_auth::service::LeaseKey::NotHeld)?;
        for (key, url) in [
            ("gateway.user_url", &self.user_url),
            ("gateway.project_url", &self.project_url),
            ("gateway.ai_job_url", &self.ai_job_url),
            ("gateway.auth.jwks_url", &self.auth.jwks_url),
        ] {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(SettingsError::invalid(key, "must be an http(s) URL"));
            }
        }
        if self.body_limit_bytes < 1024 {
            return Err(SettingsError::invalid(
                "gateway.body_limit_bytes",
                "must be at least 1024",
            ));
        }
        let r = &self.rate_limit;
        for (key, v) in [
            ("per_ip_per_minute", r.per_ip_per_minute),
            ("per_ip_burst", r.per_ip_burst),
            ("per_user_per_minute", r.per_user_per_minute),
            ("per_user_burst", r.per_user_burst),
            ("auth_per_ip_per_minute", r.auth_per_ip_per_minute),
            ("auth_per_ip_burst", r.auth_per_ip_burst),
            ("max_streams_per_user", r.max_streams_per_user),
        ] {
            if v == 0 {
                return Err(SettingsError::invalid(
                    format!("gateway.rate_limit.{key}"),
                    "must be at least 1",
                ));
            }
        }
        for origin in &self.cors.allowed_origins {
            if origin.parse::<http::HeaderValue>().is_err() || !origin.starts_with("http") {
                return Err(SettingsError::invalid(
                    "gateway.cors.allowed_origins",
                    format!("{origin:?} is not an origin like https://app.example.com"),
                ));
            }
        }
        Ok(())
    }
}
