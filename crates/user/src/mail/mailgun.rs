//! Mailgun's Messages API: `POST {base_url}/v3/{domain}/messages`, HTTP Basic auth as `api`
//! with the API key, the message as `multipart/form-data` fields `from`, `to`, `subject`,
//! `text`; 200 with `{"id", "message"}` when queued (documentation.mailgun.com, Messages).

use std::time::Duration;

use anyhow::Context as _;
use secrecy::{ExposeSecret, SecretString};

use super::{Mail, MailError, MailSender};
use crate::settings::{MailSettings, MailTransport};

/// Sends through Mailgun's HTTP API.
#[derive(Debug)]
pub struct MailgunSender {
    http: reqwest::Client,
    url: String,
    api_key: SecretString,
    from: String,
}

impl MailgunSender {
    /// Errors: `settings.transport` is not Mailgun, or the HTTP client cannot be built.
    pub fn new(settings: &MailSettings) -> anyhow::Result<MailgunSender> {
        let MailTransport::Mailgun {
            base_url,
            domain,
            api_key,
        } = &settings.transport
        else {
            anyhow::bail!("user.mail.transport is not mailgun");
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .context("building the Mailgun HTTP client")?;
        Ok(MailgunSender {
            http,
            url: format!(
                "{}/v3/{}/messages",
                base_url.trim_end_matches('/'),
                domain.trim()
            ),
            api_key: api_key.clone(),
            from: settings.from.clone(),
        })
    }
}

/// Mailgun's error body: `{"message": "…"}` (401 answers plain text `Forbidden`).
fn reason(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_else(|| body.chars().take(200).collect())
}

#[async_trait::async_trait]
impl MailSender for MailgunSender {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let form = reqwest::multipart::Form::new()
            .text("from", self.from.clone())
            .text("to", mail.to.clone())
            .text("subject", mail.subject.clone())
            .text("text", mail.text.clone());
        let response = self
            .http
            .post(&self.url)
            .basic_auth("api", Some(self.api_key.expose_secret()))
            .multipart(form)
            .send()
            .await
            .map_err(|e| MailError::Transient(format!("Mailgun unreachable: {e}")))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        let message = format!("Mailgun answered {status}: {}", reason(&body));
        match status.as_u16() {
            // The request itself is wrong for this message (a bad address): trying again
            // changes nothing.
            400 => Err(MailError::Permanent(message)),
            // 401/403 (a wrong or revoked key: fixed by an operator, then the retries go
            // through), 429 and 5xx.
            _ => Err(MailError::Transient(message)),
        }
    }
}
