//! Deleting a project's jobs and files (security review L3).
//!
//! `DeleteProjectJobs` (the gateway calls it before the project service deletes the project)
//! marks the caller's jobs of the project deleted: they vanish from every read (`GetJob`,
//! `ListJobs`, `WatchJob`, `GetOutputUrl` answer as for a job that never was), running ones are
//! cancelled (their workers are fenced), and the text and outputs they hold are scrubbed. The rows
//! keep what was spent. The project's files (`projects/{id}/`) are purged from object storage
//! by the api role's purge task, twice (see [`crate::retention::Retention::purge_again_after_s`]).

use std::sync::Arc;
use std::time::Duration;

use studio_core::id::{JobId, ProjectId, UserId};
use studio_core::{Error, ErrorCode, Shutdown};
use studio_storage::ObjectStore;

use crate::service::Jobs;
use crate::store::{JobStore, StoreError};

/// How often the purge task looks for due prefixes.
pub const PURGE_POLL: Duration = Duration::from_secs(30);
/// How long a claimed purge is left to the replica that claimed it.
const PURGE_LEASE_S: f64 = 600.0;

impl JobStore {
    /// Marks `owner`'s jobs of `project` deleted (cancelling the active ones, scrubbing their
    /// text, outputs and events) and returns their ids. Already deleted jobs are skipped.
    pub async fn delete_project_jobs(
        &self,
        owner: UserId,
        project: ProjectId,
    ) -> Result<Vec<JobId>, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Steps before jobs: the lock order of every writer (security review L1).
        sqlx::query!(
            r#"UPDATE steps SET
                   state = CASE WHEN state IN ('queued', 'running') THEN 'cancelled' ELSE state END,
                   finished_at = coalesce(finished_at, now()), lease_owner = NULL,
                   lease_expires_at = NULL, input = '{}', output = NULL
               WHERE job_id IN (SELECT id FROM jobs
                                WHERE owner_id = $1 AND project_id = $2 AND deleted_at IS NULL)"#,
            owner.0,
            project.0
        )
        .execute(&mut *tx)
        .await?;
        // The idempotency key is freed, so a new start with the same key makes a new job.
        let ids = sqlx::query_scalar!(
            r#"UPDATE jobs SET deleted_at = now(), request = NULL, updated_at = now(),
                   idempotency_key = 'deleted:' || id::text,
                   state = CASE WHEN state IN ('queued', 'running') THEN 'cancelled' ELSE state END
               WHERE owner_id = $1 AND project_id = $2 AND deleted_at IS NULL
               RETURNING id"#,
            owner.0,
            project.0
        )
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query!("DELETE FROM job_events WHERE job_id = ANY($1)", &ids)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(ids.into_iter().map(JobId).collect())
    }

    /// Asks for `prefix` to be purged (again, from the start, if it was before).
    pub async fn request_purge(&self, prefix: &str) -> Result<(), StoreError> {
        sqlx::query!(
            r#"INSERT INTO storage_purges (prefix) VALUES ($1)
               ON CONFLICT (prefix) DO UPDATE
               SET due_at = now(), passes = 0, done_at = NULL, requested_at = now()"#,
            prefix
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

impl Jobs {
    /// Deletes the caller's jobs of `project` and asks for the project's files to be purged;
    /// returns how many jobs were deleted. Idempotent.
    ///
    /// The files are purged by prefix only when the project service (asked with `bearer`)
    /// shows the project as the caller's; otherwise (someone else's project, or one already
    /// deleted) only the files of the caller's own jobs are.
    ///
    /// Errors: the project service's, except `NotFound`.
    pub async fn delete_project(
        &self,
        caller: UserId,
        bearer: &str,
        project: ProjectId,
    ) -> Result<usize, Error> {
        let owned = match self.projects.project(bearer, project).await {
            Ok(_) => true,
            Err(e) if e.code == ErrorCode::NotFound => false,
            Err(e) => return Err(e),
        };
        let jobs = self.store.delete_project_jobs(caller, project).await?;
        if owned {
            self.store
                .request_purge(&format!("projects/{project}/"))
                .await?;
        } else {
            for job in &jobs {
                self.store
                    .request_purge(&format!("projects/{project}/jobs/{job}/"))
                    .await?;
            }
        }
        metrics::counter!("ai_job_deleted_jobs_total").increment(jobs.len() as u64);
        tracing::info!(%project, jobs = jobs.len(), owned, "project's jobs deleted; files to purge");
        Ok(jobs.len())
    }
}

/// What one purge pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    /// Prefixes emptied in this pass.
    pub prefixes: usize,
    /// Objects deleted.
    pub objects: u64,
}

/// Empties every due prefix once. A prefix is done after its second pass; a failed pass is
/// tried again a minute later.
pub async fn purge_due(
    store: &JobStore,
    storage: &Arc<dyn ObjectStore>,
    again_after: Duration,
) -> Result<Purged, StoreError> {
    let claimed = sqlx::query!(
        r#"UPDATE storage_purges SET due_at = now() + make_interval(secs => $1)
           WHERE prefix IN (SELECT prefix FROM storage_purges
                            WHERE done_at IS NULL AND due_at <= now()
                            ORDER BY due_at LIMIT 8 FOR UPDATE SKIP LOCKED)
           RETURNING prefix, passes"#,
        PURGE_LEASE_S
    )
    .fetch_all(&store.pool)
    .await?;
    let mut purged = Purged::default();
    for row in claimed {
        match empty(storage, &row.prefix).await {
            Ok(objects) => {
                let last = row.passes + 1 >= 2;
                sqlx::query!(
                    r#"UPDATE storage_purges SET passes = passes + 1, deleted = deleted + $2,
                           last_error = NULL,
                           done_at = CASE WHEN $3 THEN now() END,
                           due_at = now() + make_interval(secs => $4)
                       WHERE prefix = $1"#,
                    row.prefix,
                    objects as i64,
                    last,
                    again_after.as_secs_f64()
                )
                .execute(&store.pool)
                .await?;
                metrics::counter!("ai_job_purged_objects_total").increment(objects);
                purged.prefixes += 1;
                purged.objects += objects;
            }
            Err(err) => {
                tracing::warn!(prefix = %row.prefix, error = %err, "purge failed; trying again in a minute");
                sqlx::query!(
                    r#"UPDATE storage_purges SET last_error = $2,
                           due_at = now() + interval '1 minute' WHERE prefix = $1"#,
                    row.prefix,
                    err.to_string()
                )
                .execute(&store.pool)
                .await?;
            }
        }
    }
    Ok(purged)
}

async fn empty(
    storage: &Arc<dyn ObjectStore>,
    prefix: &str,
) -> Result<u64, studio_storage::StorageError> {
    let mut deleted = 0;
    for object in storage.list(prefix).await? {
        storage
            .delete(&studio_storage::ObjectKey::parse(object.key)?)
            .await?;
        deleted += 1;
    }
    Ok(deleted)
}

/// Purges due prefixes every [`PURGE_POLL`] until `shutdown`.
pub async fn run(
    store: JobStore,
    storage: Arc<dyn ObjectStore>,
    again_after: Duration,
    shutdown: Shutdown,
) {
    loop {
        match purge_due(&store, &storage, again_after).await {
            Ok(p) if p.prefixes > 0 => {
                tracing::info!(prefixes = p.prefixes, objects = p.objects, "purged")
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "purge pass failed; trying again"),
        }
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(PURGE_POLL) => {}
        }
    }
}
