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
    /// Outgoing mail (email verification); when absent no mail is sent and password accounts
    /// stay unverified.
    #[serde(default)]
    pub mail: Option<MailSettings>,
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
    /// A spent refresh token presented again within this many seconds of its use answers the
    /// same successor token (and a fresh access token) instead of revoking its family: two tabs
    /// refreshing at once is a race, not a theft. Default 5.
    pub reuse_grace_s: i64,
    /// Seconds a session (the refresh tokens descending from one sign-in) lasts at most,
    /// however often it is refreshed; then the user signs in again. Default 7,776,000 (90 days).
    pub max_session_age_s: i64,
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
            max_session_age_s: 90 * 24 * 3600,
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

/// Outgoing mail: who it is from, the verification link, and the transport that delivers it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailSettings {
    /// The `From` mailbox, e.g. `Studio <no-reply@studio.example>`.
    pub from: String,
    /// The page that verifies an address, with `{token}` where the token goes, e.g.
    /// `https://studio.example/verify-email?token={token}`. The page posts the token to
    /// `POST /v1/auth/verify-email`.
    pub verify_url: String,
    /// How long a verification link works, seconds. Default 86,400 (a day).
    #[serde(default = "default_verification_ttl_s")]
    pub verification_ttl_s: i64,
    /// Seconds an account waits between two verification mails. Default 60.
    #[serde(default = "default_resend_after_s")]
    pub resend_after_s: i64,
    /// Tries per mail before it is given up (backing off from 30 s, doubling up to an hour
    /// between tries: about 3 hours in all with the default). Default 10.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: i32,
    pub transport: MailTransport,
}

fn default_verification_ttl_s() -> i64 {
    24 * 3600
}

fn default_resend_after_s() -> i64 {
    60
}

fn default_max_attempts() -> i32 {
    10
}

/// How mail leaves: an SMTP relay (`lettre`) or Mailgun's HTTP API.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum MailTransport {
    Smtp {
        host: String,
        /// Default 587 (submission with STARTTLS).
        #[serde(default = "default_smtp_port")]
        port: u16,
        /// `starttls` (default; the server must offer it), `tls` (implicit TLS, usually port
        /// 465) or `none` (plain text: a local relay or a test sink only).
        #[serde(default)]
        security: SmtpSecurity,
        #[serde(default)]
        username: Option<String>,
        #[serde(default)]
        password: Option<SecretString>,
        /// Seconds one delivery may take. Default 30.
        #[serde(default = "default_smtp_timeout_s")]
        timeout_s: u64,
    },
    Mailgun {
        /// `https://api.mailgun.net` (default) or `https://api.eu.mailgun.net` for the EU
        /// region (documentation.mailgun.com, Messages API).
        #[serde(default = "default_mailgun_url")]
        base_url: String,
        /// The sending domain registered with Mailgun.
        domain: String,
        api_key: SecretString,
    },
}

fn default_smtp_port() -> u16 {
    587
}

fn default_smtp_timeout_s() -> u64 {
    30
}

fn default_mailgun_url() -> String {
    "https://api.mailgun.net".to_owned()
}

/// Transport security of the SMTP connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    #[default]
    Starttls,
    Tls,
    None,
}

impl MailSettings {
    fn validate(&self) -> Result<(), SettingsError> {
        self.from.parse::<lettre::message::Mailbox>().map_err(|e| {
            SettingsError::invalid(
                "user.mail.from",
                format!("must be a mailbox like `Studio <no-reply@studio.example>`: {e}"),
            )
        })?;
        if !self.verify_url.contains("{token}") {
            return Err(SettingsError::invalid(
                "user.mail.verify_url",
                "must contain {token} where the verification token goes",
            ));
        }
        url::Url::parse(&self.verify_url.replace("{token}", "t"))
            .map_err(|e| SettingsError::invalid("user.mail.verify_url", e.to_string()))?;
        if !(300..=7 * 24 * 3600).contains(&self.verification_ttl_s) {
            return Err(SettingsError::invalid(
                "user.mail.verification_ttl_s",
                "must be between 300 and 604800 seconds",
            ));
        }
        if !(0..=3600).contains(&self.resend_after_s) {
            return Err(SettingsError::invalid(
                "user.mail.resend_after_s",
                "must be between 0 and 3600 seconds",
            ));
        }
        if !(1..=50).contains(&self.max_attempts) {
            return Err(SettingsError::invalid(
                "user.mail.max_attempts",
                "must be between 1 and 50",
            ));
        }
        match &self.transport {
            MailTransport::Smtp {
                host,
                username,
                password,
                ..
            } => {
                if host.trim().is_empty() {
                    return Err(SettingsError::invalid(
                        "user.mail.transport.host",
                        "name the SMTP relay, e.g. smtp.example.com",
                    ));
                }
                if username.is_some() != password.is_some() {
                    return Err(SettingsError::invalid(
                        "user.mail.transport.username",
                        "set both username and password, or neither",
                    ));
                }
            }
            MailTransport::Mailgun {
                base_url, domain, ..
            } => {
                url::Url::parse(base_url).map_err(|e| {
                    SettingsError::invalid("user.mail.transport.base_url", e.to_string())
                })?;
                if domain.trim().is_empty() || domain.contains('/') {
                    return Err(SettingsError::invalid(
                        "user.mail.transport.domain",
                        "name the sending domain registered with Mailgun, e.g. mg.studio.example",
                    ));
                }
            }
        }
        Ok(())
    }
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
        if auth.max_session_age_s < auth.access_ttl_s {
            return Err(SettingsError::invalid(
                "user.auth.max_session_age_s",
                "must be at least user.auth.access_ttl_s",
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
        if let Some(mail) = &self.mail {
            mail.validate()?;
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

    #[test]
    fn mail_settings_name_the_bad_field() {
        let base = "allow_development_kek = true\n[mail]\nfrom = \"Studio <no-reply@studio.example>\"\nverify_url = \"https://studio.example/verify?token={token}\"\n";
        let ok = format!("{base}[mail.transport]\nkind = \"smtp\"\nhost = \"127.0.0.1\"\nsecurity = \"none\"\nport = 2525\n");
        assert!(settings(&ok).validate().is_ok());
        let mailgun = format!("{base}[mail.transport]\nkind = \"mailgun\"\ndomain = \"mg.studio.example\"\napi_key = \"key\"\n");
        assert!(settings(&mailgun).validate().is_ok());
        for (bad, field) in [
            (ok.replace("{token}", "x"), "user.mail.verify_url"),
            (
                ok.replace("Studio <no-reply@studio.example>", "nobody"),
                "user.mail.from",
            ),
            (
                ok.replace("host = \"127.0.0.1\"", "host = \"\"\nusername = \"u\""),
                "user.mail.transport.host",
            ),
            (
                ok.replace("port = 2525", "port = 2525\nusername = \"u\""),
                "user.mail.transport.username",
            ),
            (
                mailgun.replace("mg.studio.example", ""),
                "user.mail.transport.domain",
            ),
        ] {
            let e = settings(&bad).validate().unwrap_err().to_string();
            assert!(e.contains(field), "{field}: {e}");
        }
    }
}
