//! The dead-letter consumer (runs with the `api` role). A message lands in `{queue}.dlq` after
//! `max_deliveries` deliveries that no worker settled (each worker that took it died or could
//! not reach Postgres), or at once when no worker can read it. Its step and job fail with a
//! message saying so, so the user learns why instead of waiting; other jobs are not held up
//! because the broker moved the message aside.

use std::sync::Arc;
use std::time::Duration;

use studio_core::Shutdown;
use studio_queue::{dead_letter_name, Delivery, WorkQueue};

use crate::messages;
use crate::store::{DeadLetter, JobStore};

/// Consumes the dead-letter queues of the steps and render queues until `shutdown`.
pub async fn run(
    store: JobStore,
    queue: Arc<dyn WorkQueue>,
    max_deliveries: u32,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let names = [
        dead_letter_name(&store.queues.steps),
        dead_letter_name(&store.queues.render),
    ];
    let mut steps = queue.consume(&names[0], 8).await?;
    let mut render = queue.consume(&names[1], 8).await?;
    loop {
        let (delivery, from) = tokio::select! {
            _ = shutdown.wait() => return Ok(()),
            d = steps.next() => (d, &names[0]),
            d = render.next() => (d, &names[1]),
        };
        match delivery {
            // Each on its own task: one that waits out a lease holds up no other.
            Ok(delivery) => {
                let (store, from) = (store.clone(), from.clone());
                tokio::spawn(async move { handle(&store, delivery, &from, max_deliveries).await });
            }
            Err(err) => {
                tracing::warn!(error = %err, queue = %from, "dead-letter queue unavailable; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

async fn handle(store: &JobStore, delivery: Delivery, from: &str, max_deliveries: u32) {
    let step = messages::announced_step(delivery.envelope.body.as_ref());
    metrics::counter!("ai_job_dead_lettered_total", "queue" => from.to_owned()).increment(1);
    let Some(step) = step else {
        tracing::error!(message_id = %delivery.envelope.message_id, queue = %from, "unreadable dead-lettered message dropped");
        let _ = delivery.ack().await;
        return;
    };
    let reason = format!(
        "its work message was dead-lettered after up to {max_deliveries} deliveries: every \
         worker that took it stopped or failed before finishing. Start the job again; if it \
         fails the same way, report it with the job id"
    );
    loop {
        match store.fail_dead_lettered(step, &reason).await {
            Ok(DeadLetter::HeldUntil(until)) => {
                // Its last worker may be alive (a later attempt) or dead with its lease still
                // running: look again once the lease has run out.
                let wait = (until - chrono::Utc::now())
                    .to_std()
                    .unwrap_or_default()
                    .max(Duration::from_millis(100))
                    + Duration::from_millis(500);
                tracing::info!(%step, ?wait, "dead-lettered step is held under a lease; waiting");
                tokio::time::sleep(wait).await;
            }
            Ok(outcome) => {
                tracing::warn!(%step, ?outcome, message_id = %delivery.envelope.message_id, "dead-lettered step message");
                let _ = delivery.ack().await;
                return;
            }
            Err(err) => {
                tracing::warn!(%step, error = %err, "failing a dead-lettered step; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                let _ = delivery.retry().await;
                return;
            }
        }
    }
}
