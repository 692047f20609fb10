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
    #[error("the broker did not confirm a publish within {0:?}")]
    Timeout(Duration),
}

/// How long a relay holds the outbox rows it took before another relay may take them.
pub const CLAIM_S: f64 = 60.0;

/// Longest wait for the broker to confirm one publish.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);

/// Publishes up to `batch` due outbox rows, oldest first, each confirmed by the broker before it
/// is marked published. The rows are taken in a short transaction of their own (their
/// `available_at` moved [`CLAIM_S`] ahead, `SKIP LOCKED`, so several relays share the outbox)
/// and published outside any transaction, each within [`PUBLISH_TIMEOUT`]: a broker that blocks
/// publishers holds no row lock and no connection (security review M3). Rows not published are
/// made due again at once. A crash between publishing and marking publishes that row again
/// later (at-least-once; consumers deduplicate on the idempotency key). Returns how many were
/// published.
pub async fn relay_once(
    pool: &PgPool,
    queue: &dyn WorkQueue,
    batch: i64,
) -> Result<usize, RelayError> {
    let mut rows = sqlx::query!(
        r#"UPDATE outbox SET available_at = now() + make_interval(secs => $2)
           WHERE id IN (SELECT id FROM outbox
                        WHERE published_at IS NULL AND available_at <= now()
                        ORDER BY id LIMIT $1
                        FOR UPDATE SKIP LOCKED)
           RETURNING id, queue, payload"#,
        batch,
        CLAIM_S
    )
    .fetch_all(pool)
    .await?;
    rows.sort_by_key(|r| r.id);
    let mut published = Vec::new();
    let mut failure = None;
    let mut left = Vec::new();
    for row in rows {
        if failure.is_some() {
            left.push(row.id);
            continue;
        }
        let envelope = match Envelope::decode(row.payload.as_slice()) {
            Ok(envelope) => envelope,
            Err(err) => {
                // Never publishable: mark it so it does not block the outbox, and say so loudly.
                tracing::error!(outbox_id = row.id, error = %err, "undecodable outbox row skipped");
                published.push(row.id);
                continue;
            }
        };
        match tokio::time::timeout(PUBLISH_TIMEOUT, queue.publish(&row.queue, &envelope)).await {
            Ok(Ok(())) => published.push(row.id),
            Ok(Err(err)) => {
                failure = Some(RelayError::Queue(err));
                left.push(row.id);
            }
            Err(_) => {
                failure = Some(RelayError::Timeout(PUBLISH_TIMEOUT));
                left.push(row.id);
            }
        }
    }
    sqlx::query!(
        "UPDATE outbox SET published_at = now() WHERE id = ANY($1)",
        &published
    )
    .execute(pool)
    .await?;
    if !left.is_empty() {
        sqlx::query!(
            "UPDATE outbox SET available_at = now() WHERE id = ANY($1) AND published_at IS NULL",
            &left
        )
        .execute(pool)
        .await?;
    }
    metrics::counter!("ai_job_outbox_published_total").increment(published.len() as u64);
    match failure {
        Some(err) => Err(err),
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

/// Relays and sweeps every `interval` until `shutdown`; errors are logged and retried. The
/// sweeper runs as a task of its own, so a relay waiting on the broker does not stop leases
/// from being swept.
pub async fn run(
    store: JobStore,
    queue: std::sync::Arc<dyn WorkQueue>,
    interval: Duration,
    shutdown: Shutdown,
) {
    let sweeper = {
        let (store, shutdown) = (store.clone(), shutdown.clone());
        async move {
            loop {
                if let Err(err) = announce_expired_leases(&store).await {
                    tracing::warn!(error = %err, "lease sweep failed");
                }
                tokio::select! {
                    _ = shutdown.wait() => return,
                    _ = tokio::time::sleep(interval) => {}
                }
            }
        }
    };
    let relay = async move {
        let pool = store.pool.clone();
        loop {
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
    };
    tokio::join!(sweeper, relay);
}
