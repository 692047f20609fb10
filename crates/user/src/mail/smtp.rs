//! SMTP through `lettre`: STARTTLS (default), implicit TLS or plain text to a local relay.

use std::time::Duration;

use anyhow::Context as _;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use super::{Mail, MailError, MailSender};
use crate::settings::{MailSettings, MailTransport, SmtpSecurity};

/// Sends through one SMTP relay, keeping a small pool of connections.
#[derive(Debug)]
pub struct SmtpSender {
    from: Mailbox,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl SmtpSender {
    /// Errors: `settings.transport` is not SMTP, `from` is not a mailbox, or the relay's TLS
    /// settings cannot be built.
    pub fn new(settings: &MailSettings) -> anyhow::Result<SmtpSender> {
        let MailTransport::Smtp {
            host,
            port,
            security,
            username,
            password,
            timeout_s,
        } = &settings.transport
        else {
            anyhow::bail!("user.mail.transport is not smtp");
        };
        let from: Mailbox = settings.from.parse().context("user.mail.from")?;
        let builder = match security {
            SmtpSecurity::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                .context("user.mail.transport.host")?,
            SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)
                .context("user.mail.transport.host")?,
            SmtpSecurity::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
        };
        let mut builder = builder
            .port(*port)
            .timeout(Some(Duration::from_secs(*timeout_s)));
        if let (Some(user), Some(password)) = (username, password) {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.expose_secret().to_owned(),
            ));
        }
        Ok(SmtpSender {
            from,
            transport: builder.build(),
        })
    }
}

#[async_trait::async_trait]
impl MailSender for SmtpSender {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let to: Mailbox = mail
            .to
            .parse()
            .map_err(|e| MailError::Permanent(format!("recipient {}: {e}", mail.to)))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&mail.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(mail.text.clone())
            .map_err(|e| MailError::Permanent(format!("building the message: {e}")))?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            // A 5xx reply: the relay refuses this message (RFC 5321 §4.2.1).
            Err(e) if e.is_permanent() => Err(MailError::Permanent(e.to_string())),
            Err(e) => Err(MailError::Transient(e.to_string())),
        }
    }
}
