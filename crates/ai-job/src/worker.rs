//! The step worker: consumes `StepReady` messages, claims the step (lease + fencing token), runs
//! it with heartbeats, settles it in Postgres, and only then acks the message.
//!
//! - A message whose step is not claimable (finished, held by a live lease, job ended) is a
//!   duplicate: acked.
//! - A panic in a step counts as a retryable failure of that attempt.
//! - When Postgres cannot be reached to claim or settle, the message is returned to the queue
//!   (redelivered, then dead-lettered after the queue's delivery limit).
//! - A worker whose lease was taken over (it stalled past the lease) stops the step; its late
//!   write is refused by the fencing token.
//! - On shutdown it stops taking messages and gives running steps `grace` to finish; steps still
//!   running then are abandoned to their leases and run again elsewhere.

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use studio_core::id::StepId;
use studio_core::Shutdown;
use studio_queue::lease::{settle, Beat, Heartbeat};
use studio_queue::{Delivery, WorkQueue};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::messages;
use crate::settings::WorkerSettings;
use crate::steps::StepContext;
use crate::store::{Failure, Lease, StoreError};

/// A step worker.
#[derive(Clone)]
pub struct Worker {
    pub id: String,
    pub context: StepContext,
    pub queue: Arc<dyn WorkQueue>,
    pub settings: WorkerSettings,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("id", &self.id)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// Consumes until `shutdown`, then waits up to `grace` for running steps.
    pub async fn run(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let queue_name = self.context.store.queues.steps.clone();
        let mut consumer = self
            .queue
            .consume(&queue_name, self.settings.concurrency)
            .await?;
        let stop = CancellationToken::new();
        let mut running = JoinSet::new();
        tracing::info!(worker = %self.id, queue = %queue_name, "step worker started");
        loop {
            tokio::select! {
                _ = shutdown.wait() => break,
                Some(_) = running.join_next(), if !running.is_empty() => {}
                next = consumer.next() => match next {
                    Ok(delivery) => {
                        let worker = self.clone();
                        let stop = stop.clone();
                        running.spawn(async move { worker.handle(delivery, stop).await });
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "step queue unavailable; retrying");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        }
        drop(consumer);
        let grace = Duration::from_secs(self.settings.grace_s);
        tracing::info!(running = running.len(), ?grace, "step worker stopping");
        if tokio::time::timeout(grace, async {
            while running.join_next().await.is_some() {}
        })
        .await
        .is_err()
        {
            stop.cancel();
            while running.join_next().await.is_some() {}
        }
        Ok(())
    }

    /// Claims `step`. A redelivered message (`delivery_attempt` > 1) whose step is still under
    /// a lease means the worker that had it stopped without settling it: wait for that lease to
    /// run out and take the step over, so a message that kills every worker that takes it is
    /// delivered again and again until the broker dead-letters it.
    async fn claim(
        &self,
        step: StepId,
        delivery_attempt: u32,
    ) -> Result<Option<Lease>, StoreError> {
        let store = &self.context.store;
        let lease_len = self.settings.lease();
        if let Some(lease) = store.claim(step, &self.id, lease_len).await? {
            return Ok(Some(lease));
        }
        if delivery_attempt <= 1 {
            return Ok(None);
        }
        let Some(expires) = store.lease_expiry(step).await? else {
            return Ok(None);
        };
        let wait = (expires - chrono::Utc::now())
            .to_std()
            .unwrap_or_default()
            .min(lease_len)
            + Duration::from_millis(100);
        tracing::info!(%step, ?wait, "redelivered while leased; waiting for the lease to run out");
        tokio::time::sleep(wait).await;
        store.claim(step, &self.id, lease_len).await
    }

    async fn handle(&self, delivery: Delivery, stop: CancellationToken) {
        let Some(step) = messages::announced_step(delivery.envelope.body.as_ref()) else {
            tracing::error!(message_id = %delivery.envelope.message_id, "not a StepReady message; dead-lettering it");
            settle(delivery.reject().await);
            return;
        };
        let store = &self.context.store;
        let lease_len = self.settings.lease();
        let claimed = patiently("claiming the step", &stop, || {
            self.claim(step, delivery.attempt)
        })
        .await;
        let lease = match claimed {
            Ok(Some(lease)) => lease,
            Ok(None) => {
                tracing::debug!(%step, "step not claimable (duplicate, held, or finished)");
                settle(delivery.ack().await);
                return;
            }
            Err(err) => {
                tracing::warn!(%step, error = %err, "claim failed; returning the message");
                settle(delivery.retry().await);
                return;
            }
        };
        metrics::counter!("ai_job_steps_claimed_total", "kind" => lease.kind.clone()).increment(1);
        let span = tracing::info_span!("step", kind = %lease.kind, %step, job = %lease.job_id, attempt = lease.attempt);

        // Heartbeats keep the lease (and the message) alive; losing the lease stops the step.
        let heartbeat = {
            let (store, lease) = (store.clone(), lease.clone());
            Heartbeat::spawn(lease_len / 3, move || {
                let (store, lease) = (store.clone(), lease.clone());
                async move {
                    match store.heartbeat(&lease, lease_len).await {
                        Ok(()) => Beat::Held,
                        Err(StoreError::Fenced { .. }) => Beat::Lost,
                        Err(err) => Beat::Failed(err.to_string()),
                    }
                }
            })
        };
        let started = std::time::Instant::now();
        // A step that runs past its deadline is dropped (its subprocesses are killed on drop) and
        // fails for good: it would most likely run as long again.
        let deadline = Duration::from_secs(self.settings.step_timeout_s.max(1));
        let run =
            std::panic::AssertUnwindSafe(self.context.run(&lease).instrument(span)).catch_unwind();
        let result = tokio::select! {
            r = tokio::time::timeout(deadline, run) => Some(r.unwrap_or_else(|_| Ok(Err(Failure::Final(format!(
                "the step ran longer than {} s, the limit (ai_job.worker.step_timeout_s)",
                deadline.as_secs()
            )))))),
            _ = heartbeat.lost().cancelled() => None,
            _ = stop.cancelled() => {
                // Shutting down past the grace period: leave the step to its lease.
                drop(heartbeat);
                drop(delivery);
                return;
            }
        };
        metrics::histogram!("ai_job_step_duration_seconds", "kind" => lease.kind.clone())
            .record(started.elapsed().as_secs_f64());
        // The heartbeat keeps the lease while the result is written, which may take a while
        // when Postgres is away.
        let settled = match result {
            None => {
                tracing::warn!(%step, "lease lost to another worker; step abandoned");
                Ok(())
            }
            Some(Ok(Ok(done))) => patiently("recording the step's result", &stop, || {
                store.complete(
                    &lease,
                    done.output.clone(),
                    done.cost_micro_usd,
                    &done.spawn,
                )
            })
            .await
            .map(|_| ()),
            Some(Ok(Err(failure))) => {
                let backoff = self.settings.backoff(lease.attempt);
                patiently("recording the step's failure", &stop, || {
                    store.fail(&lease, failure.clone(), backoff)
                })
                .await
                .map(|_| ())
            }
            Some(Err(panic)) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "unknown panic".to_owned());
                tracing::error!(%step, %message, "step panicked");
                let error = format!("the worker crashed on this step: {message}");
                let backoff = self.settings.backoff(lease.attempt);
                store
                    .fail(&lease, Failure::Retryable(error), backoff)
                    .await
                    .map(|_| ())
            }
        };
        drop(heartbeat);
        match settled {
            Ok(()) | Err(StoreError::Fenced { .. }) => settle(delivery.ack().await),
            Err(err) => {
                tracing::warn!(%step, error = %err, "settling the step failed; returning the message");
                settle(delivery.retry().await);
            }
        }
    }
}

/// How long a worker holds a delivery while Postgres cannot be reached before handing the
/// message back (which counts as a delivery).
pub const OUTAGE_PATIENCE: Duration = Duration::from_secs(300);

/// Runs `op` until it succeeds or fails for a reason other than the database (an outage: no
/// connection, a failover), with backoff from 250 ms doubling to 10 s, for up to
/// [`OUTAGE_PATIENCE`] or until `stop`. The delivery is held meanwhile, so an outage costs the
/// message no delivery attempt and cannot dead-letter it (security review H5).
async fn patiently<T, F, Fut>(
    what: &str,
    stop: &CancellationToken,
    mut op: F,
) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let started = std::time::Instant::now();
    let mut wait = Duration::from_millis(250);
    loop {
        match op().await {
            Err(StoreError::Database(err))
                if started.elapsed() < OUTAGE_PATIENCE && !stop.is_cancelled() =>
            {
                tracing::warn!(error = %err, ?wait, "{what} failed; trying again");
                metrics::counter!("ai_job_store_retries_total").increment(1);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.cancelled() => {}
                }
                wait = (wait * 2).min(Duration::from_secs(10));
            }
            other => return other,
        }
    }
}
