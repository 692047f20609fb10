//! Following a job's progress live: the events so far, then each new one as Postgres announces it
//! (`LISTEN studio_job_events`), ending after the event that reaches a final state. This is what
//! `WatchJob` and the gateway's WebSocket/SSE endpoints stream.

use std::collections::VecDeque;

use sqlx::postgres::PgListener;
use uuid::Uuid;

use crate::store::{JobEvent, JobStore, StoreError, EVENTS_CHANNEL};

/// A live view of one job's events.
#[derive(Debug)]
pub struct Watch {
    listener: PgListener,
    store: JobStore,
    job: Uuid,
    last: i64,
    pending: VecDeque<JobEvent>,
    ended: bool,
}

impl Watch {
    /// Starts listening, then reads the events after `after` (0 for all), so none is missed in
    /// between.
    pub async fn start(store: JobStore, job: Uuid, after: i64) -> Result<Watch, StoreError> {
        let mut listener = PgListener::connect_with(&store.pool).await?;
        listener.listen(EVENTS_CHANNEL).await?;
        let pending = store.events(job, after).await?.into();
        Ok(Watch {
            listener,
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
            let notification = self.listener.recv().await?;
            if notification.payload() == self.job.to_string() {
                self.pending
                    .extend(self.store.events(self.job, self.last).await?);
            }
        }
    }
}
