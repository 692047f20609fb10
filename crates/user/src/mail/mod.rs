//! Outgoing mail: the [`MailSender`] trait, its SMTP ([`smtp`], through `lettre`) and Mailgun
//! ([`mailgun`], HTTP API) adapters, and the [`outbox`] that delivers what the service decides
//! to send, with retries, after the transaction that decided it has committed.

pub mod mailgun;
pub mod outbox;
pub mod smtp;

use std::sync::Arc;

use crate::settings::{MailSettings, MailTransport};

/// One plain-text message to one recipient. The sender adds the `From` mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// The recipient's address, e.g. `ada@example.com`.
    pub to: String,
    pub subject: String,
    /// UTF-8 plain text.
    pub text: String,
}

/// Why a message was not handed over.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// Worth another try later: the server could not be reached, timed out, answered 4xx in
    /// SMTP or 429/5xx over HTTP.
    #[error("transient: {0}")]
    Transient(String),
    /// Another try would fail the same way: the recipient was refused (SMTP 5xx) or the request
    /// was rejected (HTTP 400).
    #[error("permanent: {0}")]
    Permanent(String),
}

/// Hands a message to a mail server or service.
#[async_trait::async_trait]
pub trait MailSender: Send + Sync + std::fmt::Debug {
    /// Sends `mail`; `Ok` once the server has accepted it for delivery.
    async fn send(&self, mail: &Mail) -> Result<(), MailError>;
}

/// The sender `settings` configure.
///
/// Errors: a `from` mailbox or SMTP relay that cannot be used, naming the setting.
pub fn sender(settings: &MailSettings) -> anyhow::Result<Arc<dyn MailSender>> {
    Ok(match &settings.transport {
        MailTransport::Smtp { .. } => Arc::new(smtp::SmtpSender::new(settings)?),
        MailTransport::Mailgun { .. } => Arc::new(mailgun::MailgunSender::new(settings)?),
    })
}
