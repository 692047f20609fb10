//! The user service: accounts, credentials and tokens.
//!
//! - `settings.rs`: the `[user]` section; `startup.rs`: [`startup::Application`];
//! - `service.rs`: register, sign in, refresh (rotation with reuse detection), sign out, me,
//!   Google sign-in, key rotation — in domain types;
//! - `grpc.rs`: the `studio.user.v1.UserService` adapter; `http.rs`: JWKS, probes, metrics;
//! - `repo.rs`: Postgres; `keys.rs`: sealed Ed25519 signing keys; `password.rs`: argon2id;
//!   `tokens.rs`: token material; `google.rs`: OAuth 2.0 + PKCE against Google;
//!   `throttle.rs`: failed sign-ins per account; `retention.rs`: pruning of expired tokens,
//!   spent verification links and delivered mail;
//! - `verification.rs`: email verification; `mail/`: the mail sender trait, its SMTP and
//!   Mailgun adapters, and the outbox that delivers.

pub mod google;
pub mod grpc;
pub mod http;
pub mod keys;
pub mod mail;
pub mod password;
pub mod repo;
pub mod retention;
pub mod service;
pub mod settings;
pub mod startup;
pub mod throttle;
pub mod tokens;
pub mod verification;

/// The service's migrations, applied at start.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
