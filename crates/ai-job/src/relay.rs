//! The outbox relay and the lease sweeper.

use std::time::Duration;

use prost::Message as _;
use sqlx::PgPool;
use studio_core::Shutdown;
use studio_queue::{Envelope, WorkQueue};

use crate::store::{reannounce, Expired, JobStore, StoreError};

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

/// Announces again every running step whose lease expired more than [`TAKEOVER_GRACE_S`] ago
/// (its worker stalled, or died and its message was not redelivered), so a live worker claims
/// it; at most one pending announcement per (step, next attempt). A step out of attempts fails,
/// and so does its job, with a message saying its worker kept dying. Returns how many steps were
/// announced or failed.
pub async fn announce_expired_leases(store: &JobStore) -> Result<u64, RelayError> {
    let expired = match store.expired_leases(TAKEOVER_GRACE_S).await {
        Ok(expired) => expired,
        Err(StoreError::Database(e)) => return Err(e.into()),
        Err(e) => {
            tracing::warn!(error = %e, "reading expired leases");
            return Ok(0);
        }
    };
    let mut handled = 0;
    for Expired {
        lease,
        max_attempts,
    } in expired
    {
        if lease.attempt >= max_attempts {
            match store.fail_lost(&lease).await {
                Ok(_) => handled += 1,
                Err(StoreError::Fenced { .. }) => {}
                Err(StoreError::Database(e)) => return Err(e.into()),
                Err(e) => tracing::warn!(error = %e, "failing a lost step"),
            }
            continue;
        }
        let what = (lease.job_id, lease.step_id, lease.kind.as_str());
        if reannounce(store, what, lease.attempt + 1).await? {
            handled += 1;
        }
    }
    Ok(handled)
}

/// Seconds after a lease runs out before the sweeper announces the step again. When a worker
/// dies its broker redelivers the message at once, and the worker that receives it takes the
/// step over as the lease runs out (so a message that kills its workers reaches its delivery
/// limit); the sweeper is for workers that stall without losing their connection.
pub const TAKEOVER_GRACE_S: f64 = 2.0;

/// Relays and sweeps every `interval` until `shutdown`; errors are logged and retried.
pub async fn run(
    store: JobStore,
    queue: std::sync::Arc<dyn WorkQueue>,
    interval: Duration,
    shutdown: Shutdown,
) {
    let pool = store.pool.clone();
    loop {
        if let Err(err) = announce_expired_leases(&store).await {
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
