//! The mail outbox: rows written in the transaction that decides to send (`enqueue`), delivered
//! afterwards by [`Outbox::run`] with retries, so a mail server outage delays mail and loses
//! none.
//!
//! Each pass claims due rows with `FOR UPDATE SKIP LOCKED` and pushes their due time forward by
//! [`LEASE`] before sending, so replicas of the service share the work and no transaction is held
//! across a send. Delivery is at least once: a replica that dies after the server accepted a mail
//! and before recording it sends that mail again when the lease ends.

use std::sync::Arc;
use std::time::Duration;

use sqlx::{PgPool, Postgres, Transaction};
use studio_core::Shutdown;
use tokio::sync::Notify;
use uuid::Uuid;

use super::{Mail, MailError, MailSender};

/// How long a claimed row is left to the replica that claimed it.
pub const LEASE: Duration = Duration::from_secs(300);
/// How often the outbox looks for due mail when nothing wakes it.
pub const POLL: Duration = Duration::from_secs(10);
/// Rows one pass claims.
const BATCH: i64 = 16;

/// Adds a message to the outbox inside `tx`; it is sent once `tx` commits.
pub async fn enqueue(
    tx: &mut Transaction<'_, Postgres>,
    kind: &str,
    mail: &Mail,
) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::now_v7();
    sqlx::query!(
        "INSERT INTO mail_outbox (id, kind, recipient, subject, body) VALUES ($1, $2, $3, $4, $5)",
        id,
        kind,
        mail.to,
        mail.subject,
        mail.text
    )
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

/// The wait before try `attempts + 1`: 30 s doubling per try, at most an hour.
pub fn backoff(attempts: i32) -> Duration {
    let doublings = attempts.clamp(1, 8) - 1;
    Duration::from_secs((30u64 << doublings).min(3600))
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub sent: usize,
    pub retried: usize,
    pub given_up: usize,
}

/// Delivers the outbox through a [`MailSender`].
#[derive(Debug, Clone)]
pub struct Outbox {
    pool: PgPool,
    sender: Arc<dyn MailSender>,
    max_attempts: i32,
    wake: Arc<Notify>,
}

impl Outbox {
    pub fn new(pool: PgPool, sender: Arc<dyn MailSender>, max_attempts: i32) -> Outbox {
        Outbox {
            pool,
            sender,
            max_attempts,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Wakes the delivery loop: call after committing a transaction that enqueued mail.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Claims the due rows and tries each once.
    pub async fn deliver_due(&self) -> Result<Pass, sqlx::Error> {
        let lease = LEASE.as_secs_f64();
        let claimed = sqlx::query!(
            r#"UPDATE mail_outbox SET attempts = attempts + 1,
                      next_attempt_at = now() + make_interval(secs => $1)
               WHERE id IN (SELECT id FROM mail_outbox
                            WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= now()
                            ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED)
               RETURNING id, kind, recipient, subject, body, attempts"#,
            lease,
            BATCH
        )
        .fetch_all(&self.pool)
        .await?;
        let mut pass = Pass::default();
        for row in claimed {
            let mail = Mail {
                to: row.recipient,
                subject: row.subject,
                text: row.body,
            };
            match self.sender.send(&mail).await {
                Ok(()) => {
                    sqlx::query!(
                        "UPDATE mail_outbox SET sent_at = now(), body = '', last_error = NULL WHERE id = $1",
                        row.id
                    )
                    .execute(&self.pool)
                    .await?;
                    metrics::counter!("user_mail_sent_total", "kind" => row.kind.clone())
                        .increment(1);
                    pass.sent += 1;
                }
                Err(err) => {
                    let give_up =
                        matches!(err, MailError::Permanent(_)) || row.attempts >= self.max_attempts;
                    let error = err.to_string();
                    if give_up {
                        sqlx::query!(
                            "UPDATE mail_outbox SET failed_at = now(), body = '', last_error = $2 WHERE id = $1",
                            row.id,
                            error
                        )
                        .execute(&self.pool)
                        .await?;
                        metrics::counter!("user_mail_failed_total", "kind" => row.kind.clone())
                            .increment(1);
                        tracing::error!(mail = %row.id, kind = %row.kind, attempts = row.attempts, error = %error, "mail given up");
                        pass.given_up += 1;
                    } else {
                        let wait = backoff(row.attempts).as_secs_f64();
                        sqlx::query!(
                            "UPDATE mail_outbox SET next_attempt_at = now() + make_interval(secs => $2), last_error = $3 WHERE id = $1",
                            row.id,
                            wait,
                            error
                        )
                        .execute(&self.pool)
                        .await?;
                        tracing::warn!(mail = %row.id, kind = %row.kind, attempts = row.attempts, retry_in_s = wait, error = %error, "mail not sent; trying again later");
                        pass.retried += 1;
                    }
                }
            }
        }
        Ok(pass)
    }

    /// Delivers until `shutdown`: at once when woken, else every [`POLL`].
    pub async fn run(self, shutdown: Shutdown) {
        loop {
            match self.deliver_due().await {
                // A full batch may have left more behind: go again at once.
                Ok(pass) if pass.sent + pass.retried + pass.given_up >= BATCH as usize => continue,
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "mail outbox pass failed; trying again"),
            }
            tokio::select! {
                _ = shutdown.wait() => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_thirty_seconds_to_an_hour() {
        let waits: Vec<u64> = (1..=10).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
    }
}
