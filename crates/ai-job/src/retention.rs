//! Pruning (runs with the `api` role): published outbox rows and the progress events of jobs
//! that ended long ago are deleted once they are older than the `[ai_job.retention]` ages, so
//! the tables do not grow for ever, and multipart uploads that writers killed mid-upload left
//! open are aborted (security review L5). A job keeps its last event, so watching an old job
//! still shows how it ended.

use std::time::Duration;

use serde::Deserialize;
use sqlx::PgPool;
use studio_core::Shutdown;

/// The `[ai_job.retention]` settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    /// Days a published outbox row is kept. Default 7.
    pub outbox_days: u32,
    /// Days after a job ended that its progress events (all but the last) are kept. Default 30.
    pub events_days: u32,
    /// Seconds between pruning passes. Default 3600.
    pub interval_s: u64,
    /// Seconds after the first purge of a deleted project's files that its prefix is purged
    /// once more, for files a render still running at deletion wrote afterwards. At least the
    /// longest render (`[ai_job.limits] render_timeout_s`). Default 3600.
    pub purge_again_after_s: u64,
    /// Hours after which a multipart upload never completed is aborted (its writer was killed;
    /// renders take far less). Default 24. Terraform's bucket lifecycle rule does the same on
    /// AWS (`AbortIncompleteMultipartUpload`).
    pub stale_upload_hours: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            outbox_days: 7,
            events_days: 30,
            interval_s: 3600,
            purge_again_after_s: 3600,
            stale_upload_hours: 24,
        }
    }
}

/// Rows one pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub outbox: u64,
    pub events: u64,
}

/// Deletes what `retention` no longer keeps.
pub async fn prune_once(pool: &PgPool, retention: &Retention) -> Result<Pruned, sqlx::Error> {
    let outbox = sqlx::query!(
        "DELETE FROM outbox WHERE published_at < now() - make_interval(days => $1)",
        retention.outbox_days as i32
    )
    .execute(pool)
    .await?
    .rows_affected();
    let events = sqlx::query!(
        r#"DELETE FROM job_events e USING jobs j
           WHERE e.job_id = j.id AND j.state IN ('succeeded', 'failed', 'cancelled')
             AND j.updated_at < now() - make_interval(days => $1)
             AND e.sequence < j.event_seq"#,
        retention.events_days as i32
    )
    .execute(pool)
    .await?
    .rows_affected();
    metrics::counter!("ai_job_pruned_rows_total", "table" => "outbox").increment(outbox);
    metrics::counter!("ai_job_pruned_rows_total", "table" => "job_events").increment(events);
    Ok(Pruned { outbox, events })
}

/// Prunes every `retention.interval_s` until `shutdown`; errors are logged and retried.
pub async fn run(
    pool: PgPool,
    storage: std::sync::Arc<dyn studio_storage::ObjectStore>,
    retention: Retention,
    shutdown: Shutdown,
) {
    loop {
        let older_than = Duration::from_secs(u64::from(retention.stale_upload_hours) * 3600);
        match storage.abort_stale_uploads(older_than).await {
            Ok(0) => {}
            Ok(aborted) => {
                metrics::counter!("ai_job_aborted_uploads_total").increment(aborted);
                tracing::info!(aborted, "aborted stale multipart uploads");
            }
            Err(err) => {
                tracing::warn!(error = %err, "aborting stale uploads failed; trying again later")
            }
        }
        match prune_once(&pool, &retention).await {
            Ok(p) if p != Pruned::default() => {
                tracing::info!(outbox = p.outbox, events = p.events, "pruned")
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "pruning failed; trying again later"),
        }
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(Duration::from_secs(retention.interval_s.max(1))) => {}
        }
    }
}
