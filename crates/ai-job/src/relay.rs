//! The outbox relay and the lease sweeper.

use std::time::Duration;

use prost::Message as _;
use sqlx::PgPool;
use studio_core::Shutdown;
use studio_queue::{Envelope, WorkQueue};

/// Why a relay pass stopped.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("queue: {0}")]
    Queue(#[from] studio_queue::QueueError),
}

/// Publishes up to `batch` due outbox rows, oldest first, each confirmed by the broker before it
/// is marked published. Several relays may run at once: rows are locked with `SKIP LOCKED`. A
/// crash between publishing and marking publishes that row again later (at-least-once; consumers
/// deduplicate on the idempotency key). Returns how many were published.
pub async fn relay_once(
    pool: &PgPool,
    queue: &dyn WorkQueue,
    batch: i64,
) -> Result<usize, RelayError> {
    let mut tx = pool.begin().await?;
    let rows = sqlx::query!(
        r#"SELECT id, queue, payload FROM outbox
           WHERE published_at IS NULL AND available_at <= now()
           ORDER BY id LIMIT $1
           FOR UPDATE SKIP LOCKED"#,
        batch
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut published = Vec::new();
    let mut failure = None;
    for row in rows {
        let envelope = match Envelope::decode(row.payload.as_slice()) {
            Ok(envelope) => envelope,
            Err(err) => {
                // Never publishable: mark it so it does not block the outbox, and say so loudly.
                tracing::error!(outbox_id = row.id, error = %err, "undecodable outbox row skipped");
                published.push(row.id);
                continue;
            }
        };
        match queue.publish(&row.queue, &envelope).await {
            Ok(()) => published.push(row.id),
            Err(err) => {
                failure = Some(err);
                break;
            }
        }
    }
    sqlx::query!(
        "UPDATE outbox SET published_at = now() WHERE id = ANY($1)",
        &published
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    metrics::counter!("ai_job_outbox_published_total").increment(published.len() as u64);
    match failure {
        Some(err) => Err(err.into()),
        None => Ok(published.len()),
    }
}

/// Announces again every running step whose lease expired (its worker died or stalled), so a
/// live worker claims it. At most one pending announcement per (step, next attempt).
pub async fn announce_expired_leases(pool: &PgPool) -> Result<u64, RelayError> {
    let expired = sqlx::query!(
        r#"SELECT id, job_id, attempts FROM steps
           WHERE state = 'running' AND lease_expires_at < now() AND attempts < max_attempts"#
    )
    .fetch_all(pool)
    .await?;
    let mut announced = 0;
    for step in expired {
        let attempt = step.attempts + 1;
        let key = format!("step:{}:{attempt}", step.id);
        let envelope = studio_queue::envelope(
            key.clone(),
            studio_proto::queue::v1::envelope::Body::StepReady(
                studio_proto::queue::v1::StepReady {
                    job_id: step.job_id.to_string(),
                    step_id: step.id.to_string(),
                },
            ),
        );
        let done = sqlx::query!(
            r#"INSERT INTO outbox (queue, idempotency_key, payload)
               SELECT $1, $2, $3
               WHERE NOT EXISTS (SELECT 1 FROM outbox WHERE idempotency_key = $2)"#,
            crate::STEPS_QUEUE,
            key,
            envelope.encode_to_vec()
        )
        .execute(pool)
        .await?;
        announced += done.rows_affected();
    }
    Ok(announced)
}

/// Relays and sweeps every `interval` until `shutdown`; errors are logged and retried.
pub async fn run(
    pool: PgPool,
    queue: std::sync::Arc<dyn WorkQueue>,
    interval: Duration,
    shutdown: Shutdown,
) {
    loop {
        if let Err(err) = announce_expired_leases(&pool).await {
            tracing::warn!(error = %err, "lease sweep failed");
        }
        loop {
            match relay_once(&pool, queue.as_ref(), 100).await {
                Ok(100) => continue,
                Ok(_) => break,
                Err(err) => {
                    tracing::warn!(error = %err, "outbox relay failed; retrying");
                    break;
                }
            }
        }
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}
