//! Jobs: create (idempotent per owner and key, with the first steps and their announcement in
//! one transaction), get, list, cancel, and a job's steps.

use studio_core::id::{JobId, ProjectId, StepId, UserId};

use super::events::record_event;
use super::outbox::{announce_next_stage, insert_steps};
use super::{state, Job, JobStore, NewStep, Step, StepSummary, StoreError};

/// A `Job` from a row with the job columns.
macro_rules! job_from_row {
    ($row:expr) => {{
        let row = $row;
        Job {
            id: JobId(row.id),
            owner_id: UserId(row.owner_id),
            project_id: ProjectId(row.project_id),
            state: state(&row.state)?,
            stage: row.stage,
            error: row.error,
            cost_micro_usd: row.cost_micro_usd,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }};
}

impl JobStore {
    /// Creates a job with its `request` (stored once, read by every step) and its steps, and
    /// announces the lowest stage's steps, in one transaction. Idempotent per (owner, key): a
    /// repeat returns the first job and `false`.
    pub async fn create_job(
        &self,
        owner: UserId,
        project: ProjectId,
        idempotency_key: &str,
        request: Option<&serde_json::Value>,
        steps: &[NewStep],
        max_active: i64,
    ) -> Result<(Job, bool), StoreError> {
        let mut tx = self.pool.begin().await?;
        // One start per owner at a time, so two starts cannot both see room under the limit.
        sqlx::query!(
            "SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))",
            owner.0.to_string()
        )
        .execute(&mut *tx)
        .await?;
        let existing = sqlx::query_scalar!(
            "SELECT id FROM jobs WHERE owner_id = $1 AND idempotency_key = $2",
            owner.0,
            idempotency_key
        )
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(existing) = existing {
            tx.rollback().await?;
            return Ok((self.job(JobId(existing)).await?, false));
        }
        let active = sqlx::query_scalar!(
            r#"SELECT count(*) AS "n!" FROM jobs
               WHERE owner_id = $1 AND state IN ('queued', 'running')"#,
            owner.0
        )
        .fetch_one(&mut *tx)
        .await?;
        if active >= max_active {
            tx.rollback().await?;
            return Err(StoreError::TooManyActive(active));
        }
        let id = JobId::new();
        sqlx::query!(
            r#"INSERT INTO jobs (id, owner_id, project_id, idempotency_key, request)
               VALUES ($1, $2, $3, $4, $5)"#,
            id.0,
            owner.0,
            project.0,
            idempotency_key,
            request
        )
        .execute(&mut *tx)
        .await?;
        insert_steps(&mut tx, id, steps).await?;
        announce_next_stage(&mut tx, &self.queues, id, None).await?;
        record_event(&mut tx, id, "queued").await?;
        tx.commit().await?;
        Ok((self.job(id).await?, true))
    }

    /// The request job `id` was started with (stored once per job); `None` for jobs started
    /// before it was stored there (their steps' inputs carry it). `NotFound` when there is no
    /// such job.
    pub async fn job_request(&self, id: JobId) -> Result<Option<serde_json::Value>, StoreError> {
        sqlx::query_scalar!("SELECT request FROM jobs WHERE id = $1", id.0)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("job"))
    }

    /// The job `id`. `NotFound` when there is none.
    pub async fn job(&self, id: JobId) -> Result<Job, StoreError> {
        self.job_where(id, true).await
    }

    /// The job `id`, if it was not deleted (`with_deleted` false) or whatever it was.
    async fn job_where(&self, id: JobId, with_deleted: bool) -> Result<Job, StoreError> {
        let row = sqlx::query!(
            r#"SELECT id, owner_id, project_id, state, stage, error, cost_micro_usd, created_at,
                      updated_at
               FROM jobs WHERE id = $1 AND ($2 OR deleted_at IS NULL)"#,
            id.0,
            with_deleted
        )
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound("job"))?;
        Ok(job_from_row!(row))
    }

    /// The job if `owner` owns it; `NotFound` otherwise (someone else's job looks missing).
    /// A deleted job is missing too.
    pub async fn job_for_owner(&self, owner: UserId, id: JobId) -> Result<Job, StoreError> {
        let job = self.job_where(id, false).await?;
        if job.owner_id == owner {
            Ok(job)
        } else {
            Err(StoreError::NotFound("job"))
        }
    }

    /// The owner's jobs, newest first, optionally of one project, after the cursor id.
    pub async fn list_jobs(
        &self,
        owner: UserId,
        project: Option<ProjectId>,
        before: Option<JobId>,
        limit: i64,
    ) -> Result<Vec<Job>, StoreError> {
        let rows = sqlx::query!(
            r#"SELECT id, owner_id, project_id, state, stage, error, cost_micro_usd, created_at,
                      updated_at
               FROM jobs
               WHERE owner_id = $1 AND ($2::uuid IS NULL OR project_id = $2)
                 AND ($3::uuid IS NULL OR id < $3) AND deleted_at IS NULL
               ORDER BY id DESC LIMIT $4"#,
            owner.0,
            project.map(|p| p.0),
            before.map(|b| b.0),
            limit
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(|row| Ok(job_from_row!(row))).collect()
    }

    /// Cancels the owner's job: queued and running steps are cancelled, so no new claim succeeds
    /// and a running worker's next heartbeat or result is rejected. `NotFound` for someone else's
    /// job; `AlreadyFinal` when it had ended.
    pub async fn cancel(&self, owner: UserId, id: JobId) -> Result<Job, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Steps first, then the job: the order every other writer (claim, complete, fail)
        // takes their locks in, so a cancel racing a claim waits instead of deadlocking. The
        // transaction is rolled back (on drop) when the job is not the owner's or has ended.
        sqlx::query!(
            r#"UPDATE steps SET state = 'cancelled', lease_owner = NULL, lease_expires_at = NULL,
                   finished_at = now()
               WHERE job_id = $1 AND state IN ('queued', 'running')"#,
            id.0
        )
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query!(
            r#"SELECT owner_id, state, deleted_at IS NOT NULL AS "deleted!"
               FROM jobs WHERE id = $1 FOR UPDATE"#,
            id.0
        )
        .fetch_optional(&mut *tx)
        .await?
        .filter(|r| r.owner_id == owner.0 && !r.deleted)
        .ok_or(StoreError::NotFound("job"))?;
        let current = state(&row.state)?;
        if current.is_final() {
            return Err(StoreError::AlreadyFinal(current));
        }
        sqlx::query!(
            "UPDATE jobs SET state = 'cancelled', updated_at = now() WHERE id = $1",
            id.0
        )
        .execute(&mut *tx)
        .await?;
        record_event(&mut tx, id, "cancelled").await?;
        tx.commit().await?;
        self.job(id).await
    }
    /// Per job of `jobs`, in one query: its finished and total steps, and the output of its
    /// succeeded render step, if any. A job without steps is missing from the map.
    pub async fn summaries(
        &self,
        jobs: &[JobId],
    ) -> Result<std::collections::HashMap<JobId, StepSummary>, StoreError> {
        let ids: Vec<uuid::Uuid> = jobs.iter().map(|j| j.0).collect();
        let rows = sqlx::query!(
            r#"SELECT job_id,
                      count(*) FILTER (WHERE state = 'succeeded') AS "done!",
                      count(*) AS "total!",
                      (array_agg(output) FILTER (WHERE kind = 'render' AND state = 'succeeded'))[1]
                          AS render_output
               FROM steps WHERE job_id = ANY($1) GROUP BY job_id"#,
            &ids
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                (
                    JobId(r.job_id),
                    StepSummary {
                        done: r.done,
                        total: r.total,
                        render_output: r.render_output,
                    },
                )
            })
            .collect())
    }

    /// Every step of `job`, by stage, then scene (per-job steps first), then id.
    pub async fn steps(&self, job: JobId) -> Result<Vec<Step>, StoreError> {
        let rows = sqlx::query!(
            r#"SELECT id, job_id, kind, scene, stage, state, attempts, fencing_token, output, error,
                      cost_micro_usd, started_at, finished_at
               FROM steps WHERE job_id = $1 ORDER BY stage, scene NULLS FIRST, id"#,
            job.0
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(Step {
                    id: StepId(r.id),
                    job_id: JobId(r.job_id),
                    kind: r.kind,
                    scene: r.scene,
                    stage: r.stage,
                    state: state(&r.state)?,
                    attempts: r.attempts,
                    fencing_token: r.fencing_token,
                    output: r.output,
                    error: r.error,
                    cost_micro_usd: r.cost_micro_usd,
                    started_at: r.started_at,
                    finished_at: r.finished_at,
                })
            })
            .collect()
    }
}
