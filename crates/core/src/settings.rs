//! Layered settings with the `config` crate, in this order (later wins):
//!
//! 1. `config/default.toml` — every key with its default, documented;
//! 2. `config/{STUDIO_ENV}.toml` — `development` (the default), `test`, `production`, …;
//! 3. environment variables `STUDIO__SECTION__KEY`, e.g. `STUDIO__USER__DATABASE__URL`.
//!
//! The folder is `./config` unless `STUDIO_CONFIG_DIR` says otherwise; both files are optional, so
//! a binary runs on its built-in defaults. Each service reads its own section (`[user]`,
//! `[project]`, `[gateway]`) plus the shared `[telemetry]`, then calls [`Validate::validate`], so a
//! bad value stops the process at start with the key's name. Secrets are `secrecy` types: their
//! `Debug` prints `[REDACTED]` and nothing logs them.

use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// Why settings could not be loaded; the message names the key.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("settings: {0}")]
    Load(#[from] config::ConfigError),
    #[error("settings: {key}: {message}")]
    Invalid { key: String, message: String },
}

impl SettingsError {
    pub fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        SettingsError::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Settings that can check themselves after loading.
pub trait Validate {
    /// Returns the first invalid key with what is accepted.
    fn validate(&self) -> Result<(), SettingsError>;
}

/// The deployment environment, from `STUDIO_ENV` (`development` when unset).
pub fn environment() -> String {
    std::env::var("STUDIO_ENV").unwrap_or_else(|_| "development".to_owned())
}

/// True in `production`, where logs are JSON.
pub fn is_production() -> bool {
    environment() == "production"
}

/// The layered configuration, before picking a section.
pub fn layered() -> Result<config::Config, SettingsError> {
    let dir = std::env::var_os("STUDIO_CONFIG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("config"));
    let env = environment();
    let config = config::Config::builder()
        .add_source(config::File::from(dir.join("default.toml")).required(false))
        .add_source(config::File::from(dir.join(format!("{env}.toml"))).required(false))
        .add_source(
            config::Environment::with_prefix("STUDIO")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("ai_job.roles"),
        )
        .build()?;
    Ok(config)
}

/// Loads section `key` (e.g. `"user"`) as `T` and validates it. A missing section gives `T`'s
/// defaults, as if every key were absent.
pub fn load<T: DeserializeOwned + Validate>(key: &str) -> Result<T, SettingsError> {
    let value: T = section(&layered()?, key)?;
    value.validate()?;
    Ok(value)
}

/// Section `key` of `config`; a missing section gives `T`'s defaults.
fn section<T: DeserializeOwned>(config: &config::Config, key: &str) -> Result<T, SettingsError> {
    match config.get::<T>(key) {
        Ok(value) => Ok(value),
        Err(config::ConfigError::NotFound(_)) => {
            Ok(config::Config::builder().build()?.try_deserialize()?)
        }
        Err(err) => Err(err.into()),
    }
}

/// Loads section `key` as `T` (validated, as [`load`] does) and the section `shared` that
/// every service reads (`telemetry`) as `U` (its defaults when absent), from one read of the
/// layered settings.
pub fn load_with<T: DeserializeOwned + Validate, U: DeserializeOwned + Default>(
    key: &str,
    shared: &str,
) -> Result<(T, U), SettingsError> {
    let config = layered()?;
    let value: T = section(&config, key)?;
    value.validate()?;
    let common = match config.get::<U>(shared) {
        Ok(common) => common,
        Err(config::ConfigError::NotFound(_)) => U::default(),
        Err(err) => return Err(err.into()),
    };
    Ok((value, common))
}

/// Postgres connection settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `postgres://user:password@host:port/database`; a secret because it may hold a password.
    /// TLS (rustls) by the URL: `?sslmode=require` encrypts, `?sslmode=verify-full` (with
    /// `&sslrootcert=/path/ca.pem` for a private CA) also checks the server's certificate.
    pub url: SecretString,
    /// Pool size. Default 10.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// How long a request waits for a pooled connection, in seconds. Default 5.
    #[serde(default = "default_acquire_timeout_s")]
    pub acquire_timeout_s: u64,
}

fn default_max_connections() -> u32 {
    10
}

fn default_acquire_timeout_s() -> u64 {
    5
}

impl DatabaseSettings {
    pub fn new(url: impl Into<String>) -> Self {
        DatabaseSettings {
            url: SecretString::from(url.into()),
            max_connections: default_max_connections(),
            acquire_timeout_s: default_acquire_timeout_s(),
        }
    }

    pub fn validate(&self, key: &str) -> Result<(), SettingsError> {
        let url = self.url.expose_secret();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(SettingsError::invalid(
                format!("{key}.url"),
                "must be a postgres:// URL, e.g. postgres://studio@127.0.0.1:5432/studio_user",
            ));
        }
        if self.max_connections == 0 {
            return Err(SettingsError::invalid(
                format!("{key}.max_connections"),
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// Parses a listen address (`127.0.0.1:8080`, `0.0.0.0:0` for any free port), naming the key.
pub fn parse_addr(key: &str, value: &str) -> Result<std::net::SocketAddr, SettingsError> {
    value.parse().map_err(|_| {
        SettingsError::invalid(
            key,
            format!("{value:?} is not an address like 127.0.0.1:8080"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Sample {
        database: DatabaseSettings,
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let db = DatabaseSettings::new("postgres://studio:hunter2@localhost/db");
        assert!(!format!("{db:?}").contains("hunter2"));
    }

    #[test]
    fn validation_names_the_key() {
        let db = DatabaseSettings::new("mysql://localhost/db");
        let err = db.validate("user.database").unwrap_err().to_string();
        assert!(err.contains("user.database.url"), "{err}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = serde_json::from_str::<Sample>(
            r#"{"database": {"url": "postgres://x/y", "max_conections": 3}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("max_conections"), "{err}");
    }
}
