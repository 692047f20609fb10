//! The `[project]` settings section (see `config/default.toml`).

use serde::Deserialize;
use studio_auth::VerifierSettings;
use studio_core::settings::{parse_addr, DatabaseSettings, SettingsError, Validate};

/// Everything the project service reads at start.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// gRPC listen address. Default `127.0.0.1:50052`.
    #[serde(default = "default_grpc_addr")]
    pub grpc_addr: String,
    /// HTTP listen address for `/healthz`, `/readyz`, `/metrics`. Default `127.0.0.1:8082`.
    #[serde(default = "default_http_addr")]
    pub http_addr: String,
    pub database: DatabaseSettings,
    /// Where the user service publishes its keys and what tokens must claim.
    pub auth: VerifierSettings,
    /// TLS of the gRPC listeners and of `https://` peers.
    #[serde(default)]
    pub tls: studio_core::tls::TlsSettings,
    /// The platform key that callers' service tokens (the gateway's, ai-job's) must be signed
    /// with.
    #[serde(default)]
    pub identity: studio_auth::service::IdentitySettings,
    /// How many projects, assets and presets one user may own.
    #[serde(default)]
    pub limits: Limits,
}

/// Per-user quotas (`[project.limits]`), checked in the transaction of each create, so
/// concurrent creates cannot pass the last free place together (security review H3).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Projects one user may own. Default 1000 (each may hold up to 1 MB of text).
    pub max_projects_per_user: u32,
    /// Assets one user may own, all projects together. Default 10000.
    pub max_assets_per_user: u32,
    /// Style presets one user may own. Default 50, at most [`MAX_PRESETS_PER_USER`].
    pub max_presets_per_user: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_projects_per_user: 1000,
            max_assets_per_user: 10_000,
            max_presets_per_user: 50,
        }
    }
}

/// The most presets a user may be allowed: a listing of that many 64 KiB presets, with the
/// built-in ones, stays under gRPC's default 4 MiB message (security review L7).
pub const MAX_PRESETS_PER_USER: u32 = 60;

fn default_grpc_addr() -> String {
    "127.0.0.1:50052".to_owned()
}

fn default_http_addr() -> String {
    "127.0.0.1:8082".to_owned()
}

impl Validate for Settings {
    fn validate(&self) -> Result<(), SettingsError> {
        parse_addr("project.grpc_addr", &self.grpc_addr)?;
        parse_addr("project.http_addr", &self.http_addr)?;
        self.database.validate("project.database")?;
        let l = &self.limits;
        if l.max_projects_per_user == 0 || l.max_assets_per_user == 0 || l.max_presets_per_user == 0
        {
            return Err(SettingsError::invalid(
                "project.limits",
                "max_projects_per_user, max_assets_per_user and max_presets_per_user must be at least 1",
            ));
        }
        if l.max_presets_per_user > MAX_PRESETS_PER_USER {
            return Err(SettingsError::invalid(
                "project.limits.max_presets_per_user",
                format!("must be at most {MAX_PRESETS_PER_USER}: listing that many 64 KiB presets must fit one 4 MiB gRPC message"),
            ));
        }
        self.identity
            .validate("project", studio_auth::service::LeaseKey::NotHeld)?;
        if !(self.auth.jwks_url.starts_with("http://")
            || self.auth.jwks_url.starts_with("https://"))
        {
            return Err(SettingsError::invalid(
                "project.auth.jwks_url",
                "must be an http(s) URL such as http://127.0.0.1:8081/.well-known/jwks.json",
            ));
        }
        Ok(())
    }
}
