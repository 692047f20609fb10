//! Jobs and steps in Postgres.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use prost::Message as _;
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Postgres, Transaction};
use studio_proto::queue::v1::envelope::Body;
use studio_proto::queue::v1::StepReady;
use studio_proto::render::v1::RenderTask;
use uuid::Uuid;

use crate::{RENDER_QUEUE, STEPS_QUEUE};

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
    pub updated_at: DateTime<Utc>,
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
    pub cost_micro_usd: i64,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
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
    pub project_id: Uuid,
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
    /// Where announcements go.
    pub queues: Queues,
}

/// The queues steps are announced on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queues {
    /// `StepReady` for the steps ai-job's own workers run. Default [`STEPS_QUEUE`].
    pub steps: String,
    /// `RenderTask` for media-render workers. Default [`RENDER_QUEUE`].
    pub render: String,
}

impl Default for Queues {
    fn default() -> Self {
        Queues::prefixed("")
    }
}

impl Queues {
    /// The default names behind `prefix` (tests sharing one broker give each run its own).
    pub fn prefixed(prefix: &str) -> Queues {
        Queues {
            steps: format!("{prefix}{STEPS_QUEUE}"),
            render: format!("{prefix}{RENDER_QUEUE}"),
        }
    }

    /// The queue that carries `kind`'s announcements.
    pub fn for_kind(&self, kind: &str) -> &str {
        if kind == RENDER_KIND {
            &self.render
        } else {
            &self.steps
        }
    }
}

/// The step kind media-render workers run.
pub const RENDER_KIND: &str = "render";

/// What the render step is given, written by the timeline step.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RenderInput {
    /// Object key of the timeline JSON.
    pub timeline_key: String,
    /// Relative path in the timeline → object key.
    pub inputs: BTreeMap<String, String>,
    /// Where the outputs go, ending in `/`.
    pub output_prefix: String,
}

/// The announcement of one attempt of a step: queue, idempotency key, encoded envelope. One key
/// per (step, attempt), so a republished announcement of the same attempt is a duplicate.
pub(crate) fn announcement(
    queues: &Queues,
    job: Uuid,
    project: Uuid,
    step: Uuid,
    kind: &str,
    input: &serde_json::Value,
    attempt: i32,
) -> (String, String, Vec<u8>) {
    let key = format!("step:{step}:{attempt}");
    let body = if kind == RENDER_KIND {
        let input: RenderInput = serde_json::from_value(input.clone()).unwrap_or_default();
        Body::RenderTask(RenderTask {
            job_id: job.to_string(),
            project_id: project.to_string(),
            fencing_token: 0,
            timeline_key: input.timeline_key,
            inputs: input.inputs.into_iter().collect(),
            output_prefix: input.output_prefix,
            encoder: String::new(),
            step_id: step.to_string(),
        })
    } else {
        Body::StepReady(StepReady {
            job_id: job.to_string(),
            step_id: step.to_string(),
        })
    };
    let envelope = studio_queue::envelope(key.clone(), body);
    (
        queues.for_kind(kind).to_owned(),
        key,
        envelope.encode_to_vec(),
    )
}

/// A step to announce.
struct Announce<'a> {
    job: Uuid,
    project: Uuid,
    step: Uuid,
    kind: &'a str,
    input: &'a serde_json::Value,
}

async fn announce(
    tx: &mut Transaction<'_, Postgres>,
    queues: &Queues,
    what: Announce<'_>,
    attempt: i32,
    available_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let (queue, key, payload) = announcement(
        queues,
        what.job,
        what.project,
        what.step,
        what.kind,
        what.input,
        attempt,
    );
    sqlx::query!(
        "INSERT INTO outbox (queue, idempotency_key, payload, available_at) VALUES ($1, $2, $3, $4)",
        queue,
        key,
        payload,
        available_at
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn insert_steps(
    tx: &mut Transaction<'_, Postgres>,
    job: Uuid,
    steps: &[NewStep],
) -> Result<(), sqlx::Error> {
    for step in steps {
        sqlx::query!(
            r#"INSERT INTO steps (id, job_id, kind, scene, stage, max_attempts, input)
               VALUES ($1, $2, $3, $4, $5, $6, $7)"#,
            Uuid::now_v7(),
            job,
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
async fn announce_next_stage(
    tx: &mut Transaction<'_, Postgres>,
    queues: &Queues,
    job: Uuid,
    project: Uuid,
    after: Option<i32>,
) -> Result<bool, sqlx::Error> {
    let next = sqlx::query!(
        r#"SELECT id, kind, input FROM steps WHERE job_id = $1 AND stage = (
               SELECT min(stage) FROM steps WHERE job_id = $1 AND ($2::int IS NULL OR stage > $2))"#,
        job,
        after
    )
    .fetch_all(&mut **tx)
    .await?;
    for step in &next {
        let what = Announce {
            job,
            project,
            step: step.id,
            kind: &step.kind,
            input: &step.input,
        };
        announce(tx, queues, what, 1, Utc::now()).await?;
    }
    Ok(!next.is_empty())
}

impl JobStore {
    /// A store announcing on the default queues.
    pub fn new(pool: PgPool) -> JobStore {
        JobStore {
            pool,
            queues: Queues::default(),
        }
    }

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
        insert_steps(&mut tx, id, steps).await?;
        announce_next_stage(&mut tx, &self.queues, id, project, None).await?;
        record_event(&mut tx, id, "queued").await?;
        tx.commit().await?;
        Ok((self.job(id).await?, true))
    }

    pub async fn job(&self, id: Uuid) -> Result<Job, StoreError> {
        let row = sqlx::query!(
            r#"SELECT id, owner_id, project_id, state, stage, error, cost_micro_usd, created_at,
                      updated_at
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
            updated_at: row.updated_at,
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
            r#"SELECT id, owner_id, project_id, state, stage, error, cost_micro_usd, created_at,
                      updated_at
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
                updated_at: row.updated_at,
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
            r#"SELECT id, job_id, kind, scene, stage, state, attempts, fencing_token, output, error,
                      cost_micro_usd, started_at, finished_at
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
                cost_micro_usd: r.cost_micro_usd,
                started_at: r.started_at,
                finished_at: r.finished_at,
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
        self.claim_kind(step, None, worker, lease).await
    }

    /// [`JobStore::claim`], only when the step is of `kind` (when given).
    pub async fn claim_kind(
        &self,
        step: Uuid,
        kind: Option<&str>,
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
                 AND ($4::text IS NULL OR s.kind = $4)
                 AND s.not_before <= now() AND s.attempts < s.max_attempts
                 AND (s.state = 'queued' OR (s.state = 'running' AND s.lease_expires_at < now()))
               RETURNING s.job_id, j.project_id, s.kind, s.input, s.attempts, s.fencing_token"#,
            step,
            worker,
            lease_s,
            kind
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
            project_id: row.project_id,
            kind: row.kind,
            input: row.input,
            attempt: row.attempts,
            fencing_token: row.fencing_token,
        }))
    }

    /// Extends a held lease. `Fenced` when another worker took the step or it was cancelled.
    pub async fn heartbeat(
        &self,
        lease: &Lease,
        by: std::time::Duration,
    ) -> Result<(), StoreError> {
        self.heartbeat_step(lease.step_id, lease.fencing_token, by)
            .await
    }

    /// [`JobStore::heartbeat`] by step id and token.
    pub async fn heartbeat_step(
        &self,
        step: Uuid,
        token: i64,
        by: std::time::Duration,
    ) -> Result<(), StoreError> {
        let done = sqlx::query!(
            r#"UPDATE steps SET lease_expires_at = now() + make_interval(secs => $3)
               WHERE id = $1 AND fencing_token = $2 AND state = 'running'"#,
            step,
            token,
            by.as_secs_f64()
        )
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            Ok(())
        } else {
            Err(fenced_step(step, token))
        }
    }

    /// When the lease on `step` runs out, while the step is running.
    pub async fn lease_expiry(&self, step: Uuid) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(sqlx::query_scalar!(
            "SELECT lease_expires_at FROM steps WHERE id = $1 AND state = 'running'",
            step
        )
        .fetch_optional(&self.pool)
        .await?
        .flatten())
    }

    /// Fails `step` and its job because the step's message was dead-lettered: every worker that
    /// took it stopped or failed before settling it. Returns false when the step or the job had
    /// already ended (nothing changes).
    pub async fn fail_dead_lettered(&self, step: Uuid, reason: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query!(
            r#"SELECT s.job_id, s.kind, s.state AS step_state, j.state AS job_state
               FROM steps s JOIN jobs j ON j.id = s.job_id
               WHERE s.id = $1 FOR UPDATE OF s, j"#,
            step
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        if State::parse(&row.step_state).is_final() || State::parse(&row.job_state).is_final() {
            return Ok(false);
        }
        let message = format!("{} failed: {reason}", row.kind);
        sqlx::query!(
            r#"UPDATE steps SET state = 'failed', error = $2, finished_at = now(),
                   lease_owner = NULL, lease_expires_at = NULL
               WHERE id = $1"#,
            step,
            reason
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            "UPDATE jobs SET state = 'failed', error = $2, updated_at = now() WHERE id = $1",
            row.job_id,
            message
        )
        .execute(&mut *tx)
        .await?;
        record_event(&mut tx, row.job_id, &message).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The lease `token` holds on `step`, for settling work reported from elsewhere (a
    /// media-render worker). `Fenced` when the token is not the step's current running one.
    pub async fn lease_of(&self, step: Uuid, token: i64) -> Result<Lease, StoreError> {
        let row = sqlx::query!(
            r#"SELECT s.job_id, j.project_id, s.kind, s.input, s.attempts
               FROM steps s JOIN jobs j ON j.id = s.job_id
               WHERE s.id = $1 AND s.fencing_token = $2 AND s.state = 'running'"#,
            step,
            token
        )
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| fenced_step(step, token))?;
        Ok(Lease {
            step_id: step,
            job_id: row.job_id,
            project_id: row.project_id,
            kind: row.kind,
            input: row.input,
            attempt: row.attempts,
            fencing_token: token,
        })
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

    /// Marks the step succeeded with its output and cost, if `lease` still holds it, and adds
    /// the steps it found to do (`spawn`: the plan adds a narration and a picture per scene);
    /// announces the next stage when this one is complete, or finishes the job after the last
    /// stage. `Fenced` (and nothing written) when another worker claimed the step since.
    pub async fn complete(
        &self,
        lease: &Lease,
        output: serde_json::Value,
        cost_micro_usd: i64,
        spawn: &[NewStep],
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
        insert_steps(&mut tx, lease.job_id, spawn).await?;
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
            let more = announce_next_stage(
                &mut tx,
                &self.queues,
                lease.job_id,
                lease.project_id,
                Some(done.stage),
            )
            .await?;
            if !more {
                sqlx::query!(
                    r#"UPDATE jobs SET state = 'succeeded', stage = 'done', updated_at = now()
                       WHERE id = $1"#,
                    lease.job_id
                )
                .execute(&mut *tx)
                .await?;
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
        self.fail_inner(lease, failure, false).await
    }

    /// Fails a step whose lease expired with no attempts left (its worker died on every
    /// attempt), and so its job. `Fenced` when the step was heartbeated or settled meanwhile.
    pub async fn fail_lost(&self, lease: &Lease) -> Result<State, StoreError> {
        let error = format!(
            "the worker running it stopped (crashed or was killed) on each of {} attempts; \
             start the job again, and report it if it keeps happening",
            lease.attempt
        );
        self.fail_inner(lease, Failure::Final { error }, true).await
    }

    async fn fail_inner(
        &self,
        lease: &Lease,
        failure: Failure,
        only_if_expired: bool,
    ) -> Result<State, StoreError> {
        let mut tx = self.pool.begin().await?;
        let (error, backoff) = match &failure {
            Failure::Retryable { error, backoff } => (error.clone(), Some(*backoff)),
            Failure::Final { error } => (error.clone(), None),
        };
        let row = sqlx::query!(
            r#"SELECT attempts, max_attempts FROM steps
               WHERE id = $1 AND fencing_token = $2 AND state = 'running'
                 AND (NOT $3 OR lease_expires_at < now())
               FOR UPDATE"#,
            lease.step_id,
            lease.fencing_token,
            only_if_expired
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
            let what = Announce {
                job: lease.job_id,
                project: lease.project_id,
                step: lease.step_id,
                kind: &lease.kind,
                input: &lease.input,
            };
            announce(&mut tx, &self.queues, what, row.attempts + 1, at).await?;
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
    fenced_step(lease.step_id, lease.fencing_token)
}

fn fenced_step(step: Uuid, token: i64) -> StoreError {
    metrics::counter!("ai_job_fenced_writes_total").increment(1);
    tracing::warn!(step_id = %step, token, "stale fencing token; write rejected");
    StoreError::Fenced { step, token }
}
