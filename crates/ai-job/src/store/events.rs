//! Progress events: one row per state change of a job, numbered without gaps, announced with
//! `NOTIFY` when the transaction commits.

use sqlx::{Postgres, Transaction};
use studio_core::id::JobId;

use super::{state, JobEvent, JobStore, StoreError};

/// The channel `NOTIFY` announces new job events on; the payload is the job id.
pub const EVENTS_CHANNEL: &str = "studio_job_events";

/// Appends an event with the job's current state, stage, progress and cost, and notifies
/// listeners when the transaction commits.
pub(super) async fn record_event(
    tx: &mut Transaction<'_, Postgres>,
    job: JobId,
    message: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"WITH j AS (
               UPDATE jobs SET event_seq = event_seq + 1 WHERE id = $1
               RETURNING id, event_seq, state, stage, cost_micro_usd),
           progress AS (
               SELECT COALESCE(100.0 * count(*) FILTER (WHERE state = 'succeeded')
                               / NULLIF(count(*), 0), 0)::float8 AS percent
               FROM steps WHERE job_id = $1)
           INSERT INTO job_events (job_id, sequence, state, stage, percent, message, cost_micro_usd)
           SELECT j.id, j.event_seq, j.state, j.stage, progress.percent, $2, j.cost_micro_usd
           FROM j, progress"#,
        job.0,
        message
    )
    .execute(&mut **tx)
    .await?;
    sqlx::query!("SELECT pg_notify($1, $2)", EVENTS_CHANNEL, job.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl JobStore {
    /// Events of `job` with a sequence above `after`, in order.
    pub async fn events(&self, job: JobId, after: i64) -> Result<Vec<JobEvent>, StoreError> {
        let rows = sqlx::query!(
            r#"SELECT job_id, sequence, state, stage, percent, message, cost_micro_usd, at
               FROM job_events WHERE job_id = $1 AND sequence > $2 ORDER BY sequence"#,
            job.0,
            after
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(JobEvent {
                    job_id: JobId(r.job_id),
                    sequence: r.sequence,
                    state: state(&r.state)?,
                    stage: r.stage,
                    percent: r.percent,
                    message: r.message,
                    cost_micro_usd: r.cost_micro_usd,
                    at: r.at,
                })
            })
            .collect()
    }

    /// The sequence of `job`'s latest event (0 before the first).
    pub async fn latest_event(&self, job: JobId) -> Result<i64, StoreError> {
        sqlx::query_scalar!(r#"SELECT event_seq FROM jobs WHERE id = $1"#, job.0)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("job"))
    }
}
