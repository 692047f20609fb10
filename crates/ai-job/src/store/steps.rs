//! The step lifecycle: claim (a lease and a raised fencing token), heartbeat, complete (adding
//! the steps it found to do and announcing the next stage), fail (retry after a backoff, or
//! fail the job), the lost and dead-lettered cases, and the provider-call ledger.

use std::time::Duration;

use chrono::{DateTime, Utc};
use studio_core::id::{JobId, ProjectId, StepId};

use super::events::record_event;
use super::outbox::{announce, announce_next_stage, insert_steps};
use super::{fenced, fenced_step, state, Failure, JobStore, Lease, NewStep, State, StoreError};
/// What became of a dead-lettered step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetter {
    /// It and its job failed now.
    Failed,
    /// It or its job had already ended; nothing changed.
    Ended,
    /// A worker holds it under a lease until then; nothing changed yet.
    HeldUntil(chrono::DateTime<chrono::Utc>),
}

/// A running step whose lease ran out, and how many attempts it may have.
#[derive(Debug, Clone)]
pub struct Expired {
    /// Its last lease.
    pub lease: Lease,
    /// Attempts it may have in all.
    pub max_attempts: i32,
}

impl JobStore {
    /// Claims `step` for `worker` for `lease`: a queued step whose backoff has passed, or a
    /// running one whose lease expired (its worker died or stalled). Raises the fencing token.
    /// `None` when the step is not claimable now (held by a live lease, finished, out of
    /// attempts, or the job was cancelled).
    pub async fn claim(
        &self,
        step: StepId,
        worker: &str,
        lease: std::time::Duration,
    ) -> Result<Option<Lease>, StoreError> {
        self.claim_kind(step, None, worker, lease).await
    }

    /// [`JobStore::claim`], only when the step is stored as `kind` (when given).
    ///
    /// Each claim raises the fencing token by 1 plus 40 random bits (from `gen_random_uuid`, a
    /// strong random source): it still only grows, so a stale holder is fenced as before, and it
    /// cannot be guessed from a step id, so no one but the holder can settle or keep the lease
    /// (security review H1).
    pub async fn claim_kind(
        &self,
        step: StepId,
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
                   fencing_token = s.fencing_token + 1
                       + ('x' || substr(md5(gen_random_uuid()::text), 1, 10))::bit(40)::bigint,
                   started_at = COALESCE(s.started_at, now())
               FROM jobs j
               WHERE s.id = $1 AND j.id = s.job_id AND j.state IN ('queued', 'running')
                 AND ($4::text IS NULL OR s.kind = $4)
                 AND s.not_before <= now() AND s.attempts < s.max_attempts
                 AND (s.state = 'queued' OR (s.state = 'running' AND s.lease_expires_at < now()))
               RETURNING s.job_id, j.project_id, s.kind, s.input, s.attempts, s.fencing_token"#,
            step.0,
            worker,
            lease_s,
            kind
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = claimed else {
            return Ok(None);
        };
        let job = JobId(row.job_id);
        sqlx::query!(
            r#"UPDATE jobs SET state = 'running', stage = $2, updated_at = now()
               WHERE id = $1 AND state IN ('queued', 'running')"#,
            job.0,
            row.kind
        )
        .execute(&mut *tx)
        .await?;
        let message = match row.attempts {
            1 => format!("{} started", row.kind),
            n => format!("{} started (attempt {n})", row.kind),
        };
        record_event(&mut tx, job, &message).await?;
        tx.commit().await?;
        Ok(Some(Lease {
            step_id: step,
            job_id: job,
            project_id: ProjectId(row.project_id),
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
        step: StepId,
        token: i64,
        by: std::time::Duration,
    ) -> Result<(), StoreError> {
        let done = sqlx::query!(
            r#"UPDATE steps SET lease_expires_at = now() + make_interval(secs => $3)
               WHERE id = $1 AND fencing_token = $2 AND state = 'running'"#,
            step.0,
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
    pub async fn lease_expiry(&self, step: StepId) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(sqlx::query_scalar!(
            "SELECT lease_expires_at FROM steps WHERE id = $1 AND state = 'running'",
            step.0
        )
        .fetch_optional(&self.pool)
        .await?
        .flatten())
    }

    /// Every running step whose lease ran out more than `grace_s` seconds ago.
    pub async fn expired_leases(&self, grace_s: f64) -> Result<Vec<Expired>, StoreError> {
        let rows = sqlx::query!(
            r#"SELECT s.id, s.job_id, j.project_id, s.kind, s.input, s.attempts, s.max_attempts,
                  s.fencing_token
           FROM steps s JOIN jobs j ON j.id = s.job_id
           WHERE s.state = 'running'
             AND s.lease_expires_at < now() - make_interval(secs => $1)"#,
            grace_s
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|step| Expired {
                lease: Lease {
                    step_id: StepId(step.id),
                    job_id: JobId(step.job_id),
                    project_id: ProjectId(step.project_id),
                    kind: step.kind,
                    input: step.input,
                    attempt: step.attempts,
                    fencing_token: step.fencing_token,
                },
                max_attempts: step.max_attempts,
            })
            .collect())
    }

    /// Fails `step` and its job because the step's message was dead-lettered: every worker that
    /// took it stopped or failed before settling it. Changes nothing and answers
    /// [`DeadLetter::Ended`] when the step or the job had already ended, or
    /// [`DeadLetter::HeldUntil`] while a worker holds the step under a live lease: a later attempt
    /// may be running, and its result must not be thrown away (security review M2); ask again
    /// once the lease has run out.
    pub async fn fail_dead_lettered(
        &self,
        step: StepId,
        reason: &str,
    ) -> Result<DeadLetter, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query!(
            r#"SELECT s.job_id, s.kind, s.state AS step_state, j.state AS job_state,
                      COALESCE(s.state = 'running' AND s.lease_expires_at > now(), false) AS "held!",
                      s.lease_expires_at
               FROM steps s JOIN jobs j ON j.id = s.job_id
               WHERE s.id = $1 FOR UPDATE OF s, j"#,
            step.0
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(DeadLetter::Ended);
        };
        if state(&row.step_state)?.is_final() || state(&row.job_state)?.is_final() {
            return Ok(DeadLetter::Ended);
        }
        if row.held {
            if let Some(until) = row.lease_expires_at {
                return Ok(DeadLetter::HeldUntil(until));
            }
        }
        let job = JobId(row.job_id);
        let message = format!("{} failed: {reason}", row.kind);
        sqlx::query!(
            r#"UPDATE steps SET state = 'failed', error = $2, finished_at = now(),
                   lease_owner = NULL, lease_expires_at = NULL
               WHERE id = $1"#,
            step.0,
            reason
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            "UPDATE jobs SET state = 'failed', error = $2, updated_at = now() WHERE id = $1",
            job.0,
            message
        )
        .execute(&mut *tx)
        .await?;
        record_event(&mut tx, job, &message).await?;
        tx.commit().await?;
        Ok(DeadLetter::Failed)
    }

    /// The lease `token` holds on `step`, for settling work reported from elsewhere (a
    /// media-render worker). `Fenced` when the token is not the step's current running one.
    pub async fn lease_of(&self, step: StepId, token: i64) -> Result<Lease, StoreError> {
        let row = sqlx::query!(
            r#"SELECT s.job_id, j.project_id, s.kind, s.input, s.attempts
               FROM steps s JOIN jobs j ON j.id = s.job_id
               WHERE s.id = $1 AND s.fencing_token = $2 AND s.state = 'running'"#,
            step.0,
            token
        )
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| fenced_step(step, token))?;
        Ok(Lease {
            step_id: step,
            job_id: JobId(row.job_id),
            project_id: ProjectId(row.project_id),
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
            lease.step_id.0,
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
            lease.step_id.0,
            lease.fencing_token,
            output,
            cost_micro_usd
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(done) = done else {
            return Err(fenced(lease));
        };
        let job = lease.job_id;
        insert_steps(&mut tx, job, spawn).await?;
        // Serialise stage transitions of one job.
        let row = sqlx::query!("SELECT state FROM jobs WHERE id = $1 FOR UPDATE", job.0)
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query!(
            "UPDATE jobs SET cost_micro_usd = cost_micro_usd + $2, updated_at = now() WHERE id = $1",
            job.0,
            cost_micro_usd
        )
        .execute(&mut *tx)
        .await?;
        let open_in_stage = sqlx::query_scalar!(
            r#"SELECT count(*) AS "n!" FROM steps
               WHERE job_id = $1 AND stage = $2 AND state <> 'succeeded'"#,
            job.0,
            done.stage
        )
        .fetch_one(&mut *tx)
        .await?;
        if open_in_stage == 0 && state(&row.state)? == State::Running {
            let more = announce_next_stage(&mut tx, &self.queues, job, Some(done.stage)).await?;
            if !more {
                sqlx::query!(
                    r#"UPDATE jobs SET state = 'succeeded', stage = 'done', updated_at = now()
                       WHERE id = $1"#,
                    job.0
                )
                .execute(&mut *tx)
                .await?;
            }
        }
        record_event(&mut tx, job, &format!("{} done", lease.kind)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a failed attempt. A retryable failure with attempts left queues the step again
    /// after `backoff` (and announces it for then); otherwise the step fails and so does its
    /// job, with the error. Finished artifacts of other steps are kept. `Fenced` as for
    /// [`JobStore::complete`].
    pub async fn fail(
        &self,
        lease: &Lease,
        failure: Failure,
        backoff: Duration,
    ) -> Result<State, StoreError> {
        self.fail_inner(lease, failure, backoff, false).await
    }

    /// Fails a step whose lease expired with no attempts left (its worker died on every
    /// attempt), and so its job. `Fenced` when the step was heartbeated or settled meanwhile.
    pub async fn fail_lost(&self, lease: &Lease) -> Result<State, StoreError> {
        let error = format!(
            "the worker running it stopped (crashed or was killed) on each of {} attempts; \
             start the job again, and report it if it keeps happening",
            lease.attempt
        );
        let failure = Failure::Final(error);
        self.fail_inner(lease, failure, Duration::ZERO, true).await
    }

    async fn fail_inner(
        &self,
        lease: &Lease,
        failure: Failure,
        backoff: Duration,
        only_if_expired: bool,
    ) -> Result<State, StoreError> {
        let mut tx = self.pool.begin().await?;
        let (error, backoff) = match failure {
            Failure::Retryable(error) => (error, Some(backoff)),
            Failure::Final(error) => (error, None),
        };
        let row = sqlx::query!(
            r#"SELECT attempts, max_attempts FROM steps
               WHERE id = $1 AND fencing_token = $2 AND state = 'running'
                 AND (NOT $3 OR lease_expires_at < now())
               FOR UPDATE"#,
            lease.step_id.0,
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
                lease.step_id.0,
                at,
                error
            )
            .execute(&mut *tx)
            .await?;
            let what = (lease.job_id, lease.step_id, lease.kind.as_str());
            announce(&mut tx, &self.queues, what, row.attempts + 1, at).await?;
            let message = format!("{} failed ({error}); retrying", lease.kind);
            record_event(&mut tx, lease.job_id, &message).await?;
            State::Queued
        } else {
            sqlx::query!(
                r#"UPDATE steps SET state = 'failed', error = $2, finished_at = now(),
                       lease_owner = NULL, lease_expires_at = NULL
                   WHERE id = $1"#,
                lease.step_id.0,
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
                lease.job_id.0,
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
