//! Following a job's progress live: the events so far, then each new one as Postgres announces it
//! (`LISTEN studio_job_events`), ending after the event that reaches a final state. This is what
//! `WatchJob` and the gateway's WebSocket/SSE endpoints stream.
//!
//! One [`EventHub`] per process holds the only listening connection and fans the announcements
//! out to every [`Watch`], so a thousand watchers cost one Postgres connection, not a thousand.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::broadcast;
use uuid::Uuid;

use studio_core::id::JobId;

use crate::store::{JobEvent, JobStore, StoreError, EVENTS_CHANNEL};

/// Fans `NOTIFY studio_job_events` out to the process's watchers. The payload is a job id;
/// [`Uuid::nil`] means "announcements may have been missed: look again" (sent after the
/// listening connection was re-established).
#[derive(Debug)]
pub struct EventHub {
    tx: broadcast::Sender<Uuid>,
    task: tokio::task::JoinHandle<()>,
}

impl EventHub {
    /// Starts listening on one connection of `store`'s pool's database.
    pub async fn start(store: &JobStore) -> Result<Arc<EventHub>, StoreError> {
        let mut listener = PgListener::connect_with(&store.pool).await?;
        listener.listen(EVENTS_CHANNEL).await?;
        let (tx, _) = broadcast::channel(4096);
        let sender = tx.clone();
        let task = tokio::spawn(async move {
            loop {
                // `try_recv` returns `None` when the connection was lost; the next call
                // reconnects and listens again.
                match listener.try_recv().await {
                    Ok(Some(notification)) => {
                        if let Ok(job) = notification.payload().parse::<Uuid>() {
                            let _ = sender.send(job);
                        }
                    }
                    Ok(None) => {
                        tracing::warn!("job events listener reconnected; watchers look again");
                        let _ = sender.send(Uuid::nil());
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "job events listener failed; retrying");
                        let _ = sender.send(Uuid::nil());
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        });
        Ok(Arc::new(EventHub { tx, task }))
    }
}

impl Drop for EventHub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A live view of one job's events.
#[derive(Debug)]
pub struct Watch {
    announcements: broadcast::Receiver<Uuid>,
    store: JobStore,
    job: JobId,
    last: i64,
    pending: VecDeque<JobEvent>,
    ended: bool,
}

impl Watch {
    /// Subscribes to `hub`, then reads the events after `after` (0 for all), so none is missed
    /// in between.
    pub async fn start(
        store: JobStore,
        hub: &EventHub,
        job: JobId,
        after: i64,
    ) -> Result<Watch, StoreError> {
        let announcements = hub.tx.subscribe();
        let pending = store.events(job, after).await?.into();
        Ok(Watch {
            announcements,
            store,
            job,
            last: after,
            pending,
            ended: false,
        })
    }

    /// The next event, waiting for it if needed; `None` once the job's final event was returned.
    pub async fn next(&mut self) -> Result<Option<JobEvent>, StoreError> {
        loop {
            if self.ended {
                return Ok(None);
            }
            if let Some(event) = self.pending.pop_front() {
                self.last = event.sequence;
                self.ended = event.state.is_final();
                return Ok(Some(event));
            }
            let look = match self.announcements.recv().await {
                Ok(job) => job == self.job.0 || job.is_nil(),
                // Fell behind: some announcement may have been ours.
                Err(broadcast::error::RecvError::Lagged(_)) => true,
                Err(broadcast::error::RecvError::Closed) => {
                    return Err(StoreError::Database(sqlx::Error::PoolClosed))
                }
            };
            if look {
                self.pending
                    .extend(self.store.events(self.job, self.last).await?);
            }
        }
    }
}
