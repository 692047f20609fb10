//! Jobs and steps in Postgres.

use chrono::{DateTime, Utc};
use prost::Message as _;
use sqlx::{PgPool, Postgres, Transaction};
use studio_proto::queue::v1::envelope::Body;
use studio_proto::queue::v1::StepReady;
use uuid::Uuid;

use crate::STEPS_QUEUE;

/// A step or job state, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Running => "running",
            State::Succeeded => "succeeded",
            State::Failed => "failed",
            State::Cancelled => "cancelled",
        }
    }

    pub fn parse(value: &str) -> State {
        match value {
            "running" => State::Running,
            "succeeded" => State::Succeeded,
            "failed" => State::Failed,
            "cancelled" => State::Cancelled,
            _ => State::Queued,
        }
    }

    /// Succeeded, failed or cancelled.
    pub fn is_final(self) -> bool {
        matches!(self, State::Succeeded | State::Failed | State::Cancelled)
    }
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The write carried a fencing token older than the step's: another worker holds the step
    /// now. The write was not applied.
    #[error("step {step} is fenced: token {token} is stale")]
    Fenced { step: Uuid, token: i64 },
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The job already ended in this state.
    #[error("the job already ended ({})", .0.as_str())]
    AlreadyFinal(State),
}

/// A step to create with its job.
#[derive(Debug, Clone)]
pub struct NewStep {
    pub kind: String,
    pub scene: Option<i32>,
    /// Steps of stage n are enqueued once every step of lower stages succeeded.
    pub stage: i32,
    pub max_attempts: i32,
    pub input: serde_json::Value,
}

/// A job as stored.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub project_id: Uuid,
    pub state: State,
    pub stage: String,
    pub error: String,
    pub cost_micro_usd: i64,
    pub created_at: DateTime<Utc>,
}

/// A step as stored.
#[derive(Debug, Clone)]
pub struct Step {
    pub id: Uuid,
    pub job_id: Uuid,
    pub kind: String,
    pub scene: Option<i32>,
    pub stage: i32,
    pub state: State,
    pub attempts: i32,
    pub fencing_token: i64,
    pub output: Option<serde_json::Value>,
    pub error: String,
}

/// A progress event of a job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobEvent {
    pub job_id: Uuid,
    /// 1, 2, 3, … per job, without gaps.
    pub sequence: i64,
    pub state: State,
    pub stage: String,
    /// Finished steps over all steps, 0..=100.
    pub percent: f64,
    pub message: String,
    pub cost_micro_usd: i64,
    pub at: DateTime<Utc>,
}

/// The channel `NOTIFY` announces new job events on; the payload is the job id.
pub const EVENTS_CHANNEL: &str = "studio_job_events";

/// Appends an event with the job's current state, stage, progress and cost, and notifies
/// listeners when the transaction commits.
async fn record_event(
    tx: &mut Transaction<'_, Postgres>,
    job: Uuid,
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
        job,
        message
    )
    .execute(&mut **tx)
    .await?;
    sqlx::query!("SELECT pg_notify($1, $2)", EVENTS_CHANNEL, job.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A claimed step: work on it while the lease lasts, then settle it with the token.
#[derive(Debug, Clone)]
pub struct Lease {
    pub step_id: Uuid,
    pub job_id: Uuid,
    pub kind: String,
    pub input: serde_json::Value,
    pub attempt: i32,
    pub fencing_token: i64,
}

/// How a failed attempt ends.
#[derive(Debug, Clone)]
pub enum Failure {
    /// Try again after `backoff` (if attempts remain).
    Retryable {
        error: String,
        backoff: std::time::Duration,
    },
    /// Do not try again; the job fails with `error` (a message the user can act on).
    Final { error: String },
}

/// Postgres access for jobs, steps and the outbox.
#[derive(Debug, Clone)]
pub struct JobStore {
    pub pool: PgPool,
}

/// The `StepReady` envelope for a step, as the outbox stores it.
fn step_ready(job: Uuid, step: Uuid, attempt: i32) -> (String, Vec<u8>) {
    // One key per (step, attempt): a republished announcement of the same attempt is a duplicate.
    let key = format!("step:{step}:{attempt}");
    let envelope = studio_queue::envelope(
        key.clone(),
        Body::StepReady(StepReady {
            job_id: job.to_string(),
            step_id: step.to_string(),
        }),
    );
    (key, envelope.encode_to_vec())
}

async fn announce(
    tx: &mut Transaction<'_, Postgres>,
    job: Uuid,
    step: Uuid,
    attempt: i32,
    available_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let (key, payload) = step_ready(job, step, attempt);
    sqlx::query!(
        "INSERT INTO outbox (queue, idempotency_key, payload, available_at) VALUES ($1, $2, $3, $4)",
        STEPS_QUEUE,
        key,
        payload,
        available_at
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl JobStore {
    /// Creates a job with its steps and announces the lowest stage's steps, in one transaction.
    /// Idempotent per (owner, key): a repeat returns the first job and `false`.
    pub async fn create_job(
        &self,
        owner: Uuid,
        project: Uuid,
        idempotency_key: &str,
        steps: &[NewStep],
    ) -> Result<(Job, bool), StoreError> {
        let mut tx = self.pool.begin().await?;
        let id = Uuid::now_v7();
        let inserted = sqlx::query_scalar!(
            r#"INSERT INTO jobs (id, owner_id, project_id, idempotency_key)
               VALUES ($1, $2, $3, $4)
               ON CONFLICT (owner_id, idempotency_key) DO NOTHING
               RETURNING id"#,
            id,
            owner,
            project,
            idempotency_key
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(id) = inserted else {
            tx.rollback().await?;
            let existing = sqlx::query_scalar!(
                "SELECT id FROM jobs WHERE owner_id = $1 AND idempotency_key = $2",
                owner,
                idempotency_key
            )
            .fetch_one(&self.pool)
            .await?;
            return Ok((self.job(existing).await?, false));
        };
        let first_stage = steps.iter().map(|s| s.stage).min().unwrap_or(0);
        for step in steps {
            let step_id = Uuid::now_v7();
            sqlx::query!(
                r#"INSERT INTO steps (id, job_id, kind, scene, stage, max_attempts, input)
                   VALUES ($1, $2, $3, $4, $5, $6, $7)"#,
                step_id,
                id,
                step.kind,
                step.scene,
                step.stage,
                step.max_attempts.max(1),
                step.input
            )
            .execute(&mut *tx)
            .await?;
            if step.stage == first_stage {
                announce(&mut tx, id, step_id, 1, Utc::now()).await?;
            }
        }
        record_event(&mut tx, id, "queued").await?;
        tx.commit().await?;
        Ok((self.job(id).await?, true))
    }

    pub async fn job(&self, id: Uuid) -> Result<Job, StoreError> {
        let row = sqlx::query!(
            r#"SELECT id, owner_id, project_id, state, stage, error, cost_micro_usd, created_at
               FROM jobs WHERE id = $1"#,
            id
        )
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound("job"))?;
        Ok(Job {
            id: row.id,
            owner_id: row.owner_id,
            project_id: row.project_id,
            state: State::parse(&row.state),
            stage: row.stage,
            error: row.error,
            cost_micro_usd: row.cost_micro_usd,
            created_at: row.created_at,
        })
    }

    /// The job if `owner` owns it; `NotFound` otherwise (someone else's job looks missing).
    pub async fn job_for_owner(&self, owner: Uuid, id: Uuid) -> Result<Job, StoreError> {
        let job = self.job(id).await?;
        if job.owner_id == owner {
            Ok(job)
        } else {
            Err(StoreError::NotFound("job"))
        }
    }

    /// The owner's jobs, newest first, optionally of one project, after the cursor id.
    pub async fn list_jobs(
        &self,
        owner: Uuid,
        project: Option<Uuid>,
        before: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<Job>, StoreError> {
        let rows = sqlx::query!(
            r#"SELECT id, owner_id, project_id, state, stage, error, cost_micro_usd, created_at
               FROM jobs
               WHERE owner_id = $1 AND ($2::uuid IS NULL OR project_id = $2)
                 AND ($3::uuid IS NULL OR id < $3)
               ORDER BY id DESC LIMIT $4"#,
            owner,
            project,
            before,
            limit
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| Job {
                id: row.id,
                owner_id: row.owner_id,
                project_id: row.project_id,
                state: State::parse(&row.state),
                stage: row.stage,
                error: row.error,
                cost_micro_usd: row.cost_micro_usd,
                created_at: row.created_at,
            })
            .collect())
    }

    /// Events of `job` with a sequence above `after`, in order.
    pub async fn events(&self, job: Uuid, after: i64) -> Result<Vec<JobEvent>, StoreError> {
        let rows = sqlx::query!(
            r#"SELECT job_id, sequence, state, stage, percent, message, cost_micro_usd, at
               FROM job_events WHERE job_id = $1 AND sequence > $2 ORDER BY sequence"#,
            job,
            after
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| JobEvent {
                job_id: r.job_id,
                sequence: r.sequence,
                state: State::parse(&r.state),
                stage: r.stage,
                percent: r.percent,
                message: r.message,
                cost_micro_usd: r.cost_micro_usd,
                at: r.at,
            })
            .collect())
    }

    /// Cancels the owner's job: queued and running steps are cancelled, so no new claim succeeds
    /// and a running worker's next heartbeat or result is rejected. `NotFound` for someone else's
    /// job; `AlreadyFinal` when it had ended.
    pub async fn cancel(&self, owner: Uuid, id: Uuid) -> Result<Job, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query!(
            "SELECT owner_id, state FROM jobs WHERE id = $1 FOR UPDATE",
            id
        )
        .fetch_optional(&mut *tx)
        .await?
        .filter(|r| r.owner_id == owner)
        .ok_or(StoreError::NotFound("job"))?;
        let state = State::parse(&row.state);
        if state.is_final() {
            return Err(StoreError::AlreadyFinal(state));
        }
        sqlx::query!(
            "UPDATE jobs SET state = 'cancelled', updated_at = now() WHERE id = $1",
            id
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            r#"UPDATE steps SET state = 'cancelled', lease_owner = NULL, lease_expires_at = NULL,
                   finished_at = now()
               WHERE job_id = $1 AND state IN ('queued', 'running')"#,
            id
        )
        .execute(&mut *tx)
        .await?;
        record_event(&mut tx, id, "cancelled").await?;
        tx.commit().await?;
        self.job(id).await
    }

    pub async fn steps(&self, job: Uuid) -> Result<Vec<Step>, StoreError> {
        let rows = sqlx::query!(
            r#"SELECT id, job_id, kind, scene, stage, state, attempts, fencing_token, output, error
               FROM steps WHERE job_id = $1 ORDER BY stage, scene NULLS FIRST, id"#,
            job
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| Step {
                id: r.id,
                job_id: r.job_id,
                kind: r.kind,
                scene: r.scene,
                stage: r.stage,
                state: State::parse(&r.state),
                attempts: r.attempts,
                fencing_token: r.fencing_token,
                output: r.output,
                error: r.error,
            })
            .collect())
    }

    /// Claims `step` for `worker` for `lease`: a queued step whose backoff has passed, or a
    /// running one whose lease expired (its worker died or stalled). Raises the fencing token.
    /// `None` when the step is not claimable now (held by a live lease, finished, out of
    /// attempts, or the job was cancelled).
    pub async fn claim(
        &self,
        step: Uuid,
        worker: &str,
        lease: std::time::Duration,
    ) -> Result<Option<Lease>, StoreError> {
        let lease_s = lease.as_secs_f64();
        let mut tx = self.pool.begin().await?;
        let claimed = sqlx::query!(
            r#"UPDATE steps s
               SET state = 'running', attempts = s.attempts + 1, lease_owner = $2,
                   lease_expires_at = now() + make_interval(secs => $3),
                   fencing_token = s.fencing_token + 1,
                   started_at = COALESCE(s.started_at, now())
               FROM jobs j
               WHERE s.id = $1 AND j.id = s.job_id AND j.state IN ('queued', 'running')
                 AND s.not_before <= now() AND s.attempts < s.max_attempts
                 AND (s.state = 'queued' OR (s.state = 'running' AND s.lease_expires_at < now()))
               RETURNING s.job_id, s.kind, s.input, s.attempts, s.fencing_token"#,
            step,
            worker,
            lease_s
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = claimed else {
            return Ok(None);
        };
        sqlx::query!(
            r#"UPDATE jobs SET state = 'running', stage = $2, updated_at = now()
               WHERE id = $1 AND state IN ('queued', 'running')"#,
            row.job_id,
            row.kind
        )
        .execute(&mut *tx)
        .await?;
        let message = match row.attempts {
            1 => format!("{} started", row.kind),
            n => format!("{} started (attempt {n})", row.kind),
        };
        record_event(&mut tx, row.job_id, &message).await?;
        tx.commit().await?;
        Ok(Some(Lease {
            step_id: step,
            job_id: row.job_id,
            kind: row.kind,
            input: row.input,
            attempt: row.attempts,
            fencing_token: row.fencing_token,
        }))
    }

    /// Extends a held lease. `Fenced` when another worker took the step.
    pub async fn heartbeat(
        &self,
        lease: &Lease,
        by: std::time::Duration,
    ) -> Result<(), StoreError> {
        let done = sqlx::query!(
            r#"UPDATE steps SET lease_expires_at = now() + make_interval(secs => $3)
               WHERE id = $1 AND fencing_token = $2 AND state = 'running'"#,
            lease.step_id,
            lease.fencing_token,
            by.as_secs_f64()
        )
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            Ok(())
        } else {
            Err(fenced(lease))
        }
    }

    /// Records a provider call once per idempotency key; returns false when it was recorded
    /// before (a retried step repeating a call it already paid for).
    pub async fn record_provider_call(
        &self,
        lease: &Lease,
        idempotency_key: &str,
        provider: &str,
        model: &str,
        cost_micro_usd: i64,
        cache_hit: bool,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query!(
            r#"INSERT INTO provider_calls (idempotency_key, step_id, provider, model, cost_micro_usd, cache_hit)
               VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (idempotency_key) DO NOTHING"#,
            idempotency_key,
            lease.step_id,
            provider,
            model,
            cost_micro_usd,
            cache_hit
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks the step succeeded with its output and cost, if `lease` still holds it; announces
    /// the next stage when this one is complete, or finishes the job after the last stage.
    /// `Fenced` (and nothing written) when another worker claimed the step since.
    pub async fn complete(
        &self,
        lease: &Lease,
        output: serde_json::Value,
        cost_micro_usd: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query!(
            r#"UPDATE steps SET state = 'succeeded', output = $3, cost_micro_usd = $4,
                   finished_at = now(), lease_owner = NULL, lease_expires_at = NULL, error = ''
               WHERE id = $1 AND fencing_token = $2 AND state = 'running'
               RETURNING stage"#,
            lease.step_id,
            lease.fencing_token,
            output,
            cost_micro_usd
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(done) = done else {
            return Err(fenced(lease));
        };
        // Serialise stage transitions of one job.
        let job = sqlx::query!(
            "SELECT state FROM jobs WHERE id = $1 FOR UPDATE",
            lease.job_id
        )
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query!(
            "UPDATE jobs SET cost_micro_usd = cost_micro_usd + $2, updated_at = now() WHERE id = $1",
            lease.job_id,
            cost_micro_usd
        )
        .execute(&mut *tx)
        .await?;
        let open_in_stage = sqlx::query_scalar!(
            r#"SELECT count(*) AS "n!" FROM steps
               WHERE job_id = $1 AND stage = $2 AND state <> 'succeeded'"#,
            lease.job_id,
            done.stage
        )
        .fetch_one(&mut *tx)
        .await?;
        if open_in_stage == 0 && State::parse(&job.state) == State::Running {
            let next = sqlx::query!(
                r#"SELECT id FROM steps WHERE job_id = $1 AND stage = (
                       SELECT min(stage) FROM steps WHERE job_id = $1 AND stage > $2)"#,
                lease.job_id,
                done.stage
            )
            .fetch_all(&mut *tx)
            .await?;
            if next.is_empty() {
                sqlx::query!(
                    r#"UPDATE jobs SET state = 'succeeded', stage = 'done', updated_at = now()
                       WHERE id = $1"#,
                    lease.job_id
                )
                .execute(&mut *tx)
                .await?;
            }
            for step in next {
                announce(&mut tx, lease.job_id, step.id, 1, Utc::now()).await?;
            }
        }
        record_event(&mut tx, lease.job_id, &format!("{} done", lease.kind)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a failed attempt. A retryable failure with attempts left queues the step again
    /// after its backoff (and announces it for then); otherwise the step fails and so does its
    /// job, with the error. Finished artifacts of other steps are kept. `Fenced` as for
    /// [`JobStore::complete`].
    pub async fn fail(&self, lease: &Lease, failure: Failure) -> Result<State, StoreError> {
        let mut tx = self.pool.begin().await?;
        let (error, backoff) = match &failure {
            Failure::Retryable { error, backoff } => (error.clone(), Some(*backoff)),
            Failure::Final { error } => (error.clone(), None),
        };
        let row = sqlx::query!(
            r#"SELECT attempts, max_attempts FROM steps
               WHERE id = $1 AND fencing_token = $2 AND state = 'running' FOR UPDATE"#,
            lease.step_id,
            lease.fencing_token
        )
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| fenced(lease))?;
        let retry = backoff.filter(|_| row.attempts < row.max_attempts);
        let state = if let Some(backoff) = retry {
            let at = Utc::now() + chrono::Duration::from_std(backoff).unwrap_or_default();
            sqlx::query!(
                r#"UPDATE steps SET state = 'queued', not_before = $2, error = $3,
                       lease_owner = NULL, lease_expires_at = NULL
                   WHERE id = $1"#,
                lease.step_id,
                at,
                error
            )
            .execute(&mut *tx)
            .await?;
            announce(&mut tx, lease.job_id, lease.step_id, row.attempts + 1, at).await?;
            let message = format!("{} failed ({error}); retrying", lease.kind);
            record_event(&mut tx, lease.job_id, &message).await?;
            State::Queued
        } else {
            sqlx::query!(
                r#"UPDATE steps SET state = 'failed', error = $2, finished_at = now(),
                       lease_owner = NULL, lease_expires_at = NULL
                   WHERE id = $1"#,
                lease.step_id,
                error
            )
            .execute(&mut *tx)
            .await?;
            let message = format!(
                "{} failed after {} attempts: {error}",
                lease.kind, row.attempts
            );
            sqlx::query!(
                r#"UPDATE jobs SET state = 'failed', error = $2, updated_at = now()
                   WHERE id = $1 AND state IN ('queued', 'running')"#,
                lease.job_id,
                message
            )
            .execute(&mut *tx)
            .await?;
            record_event(&mut tx, lease.job_id, &message).await?;
            State::Failed
        };
        tx.commit().await?;
        Ok(state)
    }
}

fn fenced(lease: &Lease) -> StoreError {
    metrics::counter!("ai_job_fenced_writes_total").increment(1);
    tracing::warn!(step_id = %lease.step_id, token = lease.fencing_token, "stale fencing token; write rejected");
    StoreError::Fenced {
        step: lease.step_id,
        token: lease.fencing_token,
    }
}
