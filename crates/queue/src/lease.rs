//! What every lease-holding worker shares (ai-job's step workers and media-render's render
//! workers): how a failed attempt ends ([`Failure`]), the heartbeat that keeps a lease and says
//! when it was lost ([`Heartbeat`]), and settling a delivery ([`settle`]).
//!
//! The loop itself: consume a delivery → claim the work (lease + fencing token) → spawn a
//! [`Heartbeat`] every third of the lease → run the work until it ends, the lease is lost
//! ([`Heartbeat::lost`]) or the worker stops → settle the work with the token → settle the
//! delivery.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::QueueError;

/// How a failed attempt ends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// Another attempt may succeed (a provider timed out, storage was unreachable, the worker
    /// shut down).
    #[error("{0}")]
    Retryable(String),
    /// No attempt will do better; the message tells the user what to change.
    #[error("{0}")]
    Final(String),
}

/// What one heartbeat found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Beat {
    /// The lease was extended.
    Held,
    /// The lease is someone else's now (fenced, cancelled): stop the work.
    Lost,
    /// The heartbeat could not be sent; the lease may still hold. Logged, then tried again.
    Failed(String),
}

/// A task renewing a lease every `every` until dropped.
#[derive(Debug)]
pub struct Heartbeat {
    lost: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Heartbeat {
    /// Calls `beat` every `every` (a third of the lease, so two may fail before it runs out)
    /// until it answers [`Beat::Lost`] or the heartbeat is dropped.
    pub fn spawn<F, Fut>(every: Duration, mut beat: F) -> Heartbeat
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = Beat> + Send,
    {
        let lost = CancellationToken::new();
        let token = lost.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                match beat().await {
                    Beat::Held => {}
                    Beat::Lost => {
                        token.cancel();
                        return;
                    }
                    Beat::Failed(error) => tracing::warn!(%error, "heartbeat failed"),
                }
            }
        });
        Heartbeat { lost, task }
    }

    /// Fires when the lease was lost.
    pub fn lost(&self) -> &CancellationToken {
        &self.lost
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Logs a delivery that could not be settled: the broker delivers it again, and the consumer's
/// idempotency makes that harmless.
pub fn settle(result: Result<(), QueueError>) {
    if let Err(err) = result {
        tracing::warn!(error = %err, "settling a delivery failed; it will be redelivered");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn a_heartbeat_beats_until_the_lease_is_lost() {
        let beats = Arc::new(AtomicU32::new(0));
        let counter = beats.clone();
        let heartbeat = Heartbeat::spawn(Duration::from_millis(10), move || {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                match n {
                    1 => Beat::Failed("broker away".into()),
                    2 => Beat::Held,
                    _ => Beat::Lost,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(60), heartbeat.lost().cancelled())
            .await
            .expect("the third beat loses the lease");
        assert_eq!(beats.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_dropped_heartbeat_stops_beating() {
        let beats = Arc::new(AtomicU32::new(0));
        let counter = beats.clone();
        let heartbeat = Heartbeat::spawn(Duration::from_millis(10), move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { Beat::Held }
        });
        while beats.load(Ordering::SeqCst) < 3 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(
            !heartbeat.lost().is_cancelled(),
            "held beats keep the lease"
        );
        drop(heartbeat);
        tokio::time::sleep(Duration::from_millis(20)).await;
        let seen = beats.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(beats.load(Ordering::SeqCst), seen, "no beat after the drop");
    }
}
