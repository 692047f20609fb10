//! The transactional outbox: each state change that should wake a worker writes its
//! announcement ([`crate::messages::step_ready`]) in the same transaction; the relay
//! (`crate::relay`) publishes it with the broker's confirmation.

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};
use studio_core::id::{JobId, StepId};

use super::{JobStore, NewStep, Queues};
use crate::messages;

/// Writes the announcement of attempt `attempt` of `step` (of `kind`), due at `available_at`.
pub(super) async fn announce(
    tx: &mut Transaction<'_, Postgres>,
    queues: &Queues,
    (job, step, kind): (JobId, StepId, &str),
    attempt: i32,
    available_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let (key, payload) = messages::step_ready(job, step, attempt);
    sqlx::query!(
        "INSERT INTO outbox (queue, idempotency_key, payload, available_at) VALUES ($1, $2, $3, $4)",
        queues.for_kind(kind),
        key,
        payload,
        available_at
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Adds `steps` to `job`, queued.
pub(super) async fn insert_steps(
    tx: &mut Transaction<'_, Postgres>,
    job: JobId,
    steps: &[NewStep],
) -> Result<(), sqlx::Error> {
    for step in steps {
        sqlx::query!(
            r#"INSERT INTO steps (id, job_id, kind, scene, stage, max_attempts, input)
               VALUES ($1, $2, $3, $4, $5, $6, $7)"#,
            StepId::new().0,
            job.0,
            step.kind,
            step.scene,
            step.stage,
            step.max_attempts.max(1),
            step.input
        )
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Announces every step of `job`'s lowest stage above `after` (or of its lowest stage); returns
/// false when there is no such stage.
pub(super) async fn announce_next_stage(
    tx: &mut Transaction<'_, Postgres>,
    queues: &Queues,
    job: JobId,
    after: Option<i32>,
) -> Result<bool, sqlx::Error> {
    let next = sqlx::query!(
        r#"SELECT id, kind, input FROM steps WHERE job_id = $1 AND stage = (
               SELECT min(stage) FROM steps WHERE job_id = $1 AND ($2::int IS NULL OR stage > $2))"#,
        job.0,
        after
    )
    .fetch_all(&mut **tx)
    .await?;
    for step in &next {
        announce(
            tx,
            queues,
            (job, StepId(step.id), &step.kind),
            1,
            Utc::now(),
        )
        .await?;
    }
    Ok(!next.is_empty())
}

/// Announces attempt `attempt` of `step` again, now, unless an announcement of that attempt is
/// already in the outbox (the lease sweeper's re-announcement of a stalled step). Returns
/// whether it wrote one.
pub(crate) async fn reannounce(
    store: &JobStore,
    (job, step, kind): (JobId, StepId, &str),
    attempt: i32,
) -> Result<bool, sqlx::Error> {
    let (key, payload) = messages::step_ready(job, step, attempt);
    let done = sqlx::query!(
        r#"INSERT INTO outbox (queue, idempotency_key, payload)
               SELECT $1, $2, $3
               WHERE NOT EXISTS (SELECT 1 FROM outbox WHERE idempotency_key = $2)"#,
        store.queues.for_kind(kind),
        key,
        payload
    )
    .execute(&store.pool)
    .await?;
    Ok(done.rows_affected() == 1)
}
