//! The `[user]` settings section (see `config/default.toml` for every key and its default).

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use studio_core::settings::{parse_addr, DatabaseSettings, SettingsError, Validate};

/// Everything the user service reads at start.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// gRPC listen address. Default `127.0.0.1:50051`; port 0 picks a free port.
    #[serde(default = "default_grpc_addr")]
    pub grpc_addr: String,
    /// HTTP listen address for `/.well-known/jwks.json`, `/healthz`, `/readyz`, `/metrics`.
    /// Default `127.0.0.1:8081`.
    #[serde(default = "default_http_addr")]
    pub http_addr: String,
    pub database: DatabaseSettings,
    #[serde(default)]
    pub auth: AuthSettings,
    #[serde(default)]
    pub password: PasswordSettings,
    /// Google sign-in; disabled when absent.
    #[serde(default)]
    pub google: Option<GoogleSettings>,
    /// TLS of the gRPC listeners and of `https://` peers.
    #[serde(default)]
    pub tls: studio_core::tls::TlsSettings,
    /// The platform key that callers' service tokens must be signed with (the gateway's).
    #[serde(default)]
    pub identity: studio_auth::service::IdentitySettings,
}

fn default_grpc_addr() -> String {
    "127.0.0.1:50051".to_owned()
}

fn default_http_addr() -> String {
    "127.0.0.1:8081".to_owned()
}

/// Token lifetimes and signing.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// `iss` of access tokens. Default `studio`.
    pub issuer: String,
    /// `aud` of access tokens. Default `studio-api`.
    pub audience: String,
    /// Access-token lifetime in seconds. Default 900 (15 minutes).
    pub access_ttl_s: i64,
    /// Refresh-token lifetime in seconds. Default 2,592,000 (30 days).
    pub refresh_ttl_s: i64,
    /// A spent refresh token presented again within this many seconds of its use is refused
    /// without revoking its family: two tabs refreshing at once is a race, not a theft. Default 5.
    pub reuse_grace_s: i64,
    /// 32 bytes, base64: seals the signing keys stored in Postgres. The development default
    /// ([`DEVELOPMENT_KEK`]) is public and refused unless `allow_development_kek` is set.
    pub key_encryption_key: SecretString,
    /// Accept the public [`DEVELOPMENT_KEK`], on a development machine only (never in
    /// `production`). Default false: a deployment that forgets its key, or misspells
    /// `STUDIO_ENV`, stops instead of sealing signing keys with a published key.
    pub allow_development_kek: bool,
    /// Wrong passwords for one account within `sign_in_failure_window_s` after which its
    /// sign-ins are refused (429) until the oldest ages out. Default 10.
    pub max_sign_in_failures: u32,
    /// The window of `max_sign_in_failures`, seconds. Default 900 (15 minutes).
    pub sign_in_failure_window_s: u64,
}

/// The development key-encryption key; production refuses to start with it.
pub const DEVELOPMENT_KEK: &str = "c3R1ZGlvLWRldmVsb3BtZW50LWtleS0wMDAwMDAwMDA=";

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            issuer: "studio".to_owned(),
            audience: "studio-api".to_owned(),
            access_ttl_s: 900,
            refresh_ttl_s: 30 * 24 * 3600,
            reuse_grace_s: 5,
            key_encryption_key: SecretString::from(DEVELOPMENT_KEK),
            allow_development_kek: false,
            max_sign_in_failures: 10,
            sign_in_failure_window_s: 900,
        }
    }
}

/// argon2id cost. Defaults are OWASP's first recommendation (Password Storage Cheat Sheet, 2024):
/// m = 19 MiB, t = 2, p = 1.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordSettings {
    /// Memory in KiB. Default 19456.
    pub memory_kib: u32,
    /// Iterations. Default 2.
    pub iterations: u32,
    /// Lanes. Default 1.
    pub parallelism: u32,
    /// Hashes computed at once; more wait. Default: the number of CPUs.
    pub max_concurrent: Option<usize>,
}

impl Default for PasswordSettings {
    fn default() -> Self {
        PasswordSettings {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
            max_concurrent: None,
        }
    }
}

/// Google OAuth 2.0 client (authorization code + PKCE). Endpoint defaults are Google's
/// (developers.google.com/identity/protocols/oauth2/web-server and the OpenID discovery document).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoogleSettings {
    pub client_id: String,
    pub client_secret: SecretString,
    /// Redirect URIs registered with Google; a sign-in must name one of them.
    pub redirect_uris: Vec<String>,
    #[serde(default = "default_google_auth_url")]
    pub auth_url: String,
    #[serde(default = "default_google_token_url")]
    pub token_url: String,
    #[serde(default = "default_google_userinfo_url")]
    pub userinfo_url: String,
    /// How long a started sign-in may take, in seconds. Default 600.
    #[serde(default = "default_state_ttl_s")]
    pub state_ttl_s: i64,
}

fn default_google_auth_url() -> String {
    "https://accounts.google.com/o/oauth2/v2/auth".to_owned()
}

fn default_google_token_url() -> String {
    "https://oauth2.googleapis.com/token".to_owned()
}

fn default_google_userinfo_url() -> String {
    "https://openidconnect.googleapis.com/v1/userinfo".to_owned()
}

fn default_state_ttl_s() -> i64 {
    600
}

impl Validate for Settings {
    fn validate(&self) -> Result<(), SettingsError> {
        parse_addr("user.grpc_addr", &self.grpc_addr)?;
        parse_addr("user.http_addr", &self.http_addr)?;
        self.database.validate("user.database")?;
        let auth = &self.auth;
        if auth.access_ttl_s < 30 || auth.access_ttl_s > 24 * 3600 {
            return Err(SettingsError::invalid(
                "user.auth.access_ttl_s",
                "must be between 30 and 86400 seconds",
            ));
        }
        if auth.refresh_ttl_s <= auth.access_ttl_s {
            return Err(SettingsError::invalid(
                "user.auth.refresh_ttl_s",
                "must be longer than user.auth.access_ttl_s",
            ));
        }
        if !(0..=60).contains(&auth.reuse_grace_s) {
            return Err(SettingsError::invalid(
                "user.auth.reuse_grace_s",
                "must be between 0 and 60 seconds",
            ));
        }
        crate::keys::Kek::parse(auth.key_encryption_key.expose_secret())
            .map_err(|message| SettingsError::invalid("user.auth.key_encryption_key", message))?;
        if auth.key_encryption_key.expose_secret() == DEVELOPMENT_KEK
            && (!auth.allow_development_kek || studio_core::settings::is_production())
        {
            return Err(SettingsError::invalid(
                "user.auth.key_encryption_key",
                "the development key is public; set STUDIO__USER__AUTH__KEY_ENCRYPTION_KEY to 32 random bytes in base64 (openssl rand -base64 32), or on a development machine only, user.auth.allow_development_kek = true",
            ));
        }
        let p = &self.password;
        if p.memory_kib < 8 * p.parallelism || p.iterations == 0 || p.parallelism == 0 {
            return Err(SettingsError::invalid(
                "user.password",
                "memory_kib must be at least 8 × parallelism, iterations and parallelism at least 1",
            ));
        }
        if let Some(google) = &self.google {
            if google.redirect_uris.is_empty() {
                return Err(SettingsError::invalid(
                    "user.google.redirect_uris",
                    "list at least one redirect URI registered with Google",
                ));
            }
            for (key, value) in [
                ("auth_url", &google.auth_url),
                ("token_url", &google.token_url),
                ("userinfo_url", &google.userinfo_url),
            ] {
                url::Url::parse(value).map_err(|e| {
                    SettingsError::invalid(format!("user.google.{key}"), e.to_string())
                })?;
            }
        }
        self.identity
            .validate("user", studio_auth::service::LeaseKey::NotHeld)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(auth: &str) -> Settings {
        toml::from_str(&format!(
            "[database]\nurl = \"postgres://studio@127.0.0.1/studio\"\n[identity]\nallow_development_keys = true\n[auth]\n{auth}"
        ))
        .unwrap()
    }

    #[test]
    fn the_public_development_key_needs_the_explicit_flag() {
        // The key every checkout has, whatever STUDIO_ENV says (unset, `staging`, a typo).
        let e = settings("").validate().unwrap_err().to_string();
        assert!(e.contains("user.auth.key_encryption_key"), "{e}");
        assert!(e.contains("allow_development_kek"), "{e}");
        assert!(settings("allow_development_kek = true").validate().is_ok());
        let own = "key_encryption_key = \"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"";
        assert!(settings(own).validate().is_ok());
    }
}
