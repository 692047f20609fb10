//! The render worker. For each render step announced on the render queue (a `StepReady`):
//!
//! 1. claim the render step from ai-job (`ClaimRender`): the lease and its fencing token now live
//!    in ai-job's Postgres, so the message is acked at once; a render that outlives the broker's
//!    consumer timeout is never redelivered while it runs. Not claimable → a duplicate, acked.
//! 2. heartbeat the lease every third of it; losing it (cancelled job, or another worker took
//!    over after we stalled) stops the render.
//! 3. if an earlier attempt already uploaded the outputs (its `render.json` manifest and
//!    `final.mp4` agree), report them without rendering again; otherwise fetch the timeline and
//!    its inputs into a per-task folder, render, and upload the manifest, the captions, the
//!    thumbnail and `final.mp4` last.
//! 4. report with `FinishRender` (retried until ai-job answers or the lease is gone).
//!
//! A worker killed at any point leaves the step to its lease: ai-job announces it again when the
//! lease expires, and the next worker reuses whatever finished uploading.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use studio_auth::service::ServiceChannel;
use studio_core::Shutdown;
use studio_media::outputs::OutputKind;
use studio_media::{RenderOptions, VideoEncoder};
use studio_proto::job::v1 as job_pb;
use studio_proto::job::v1::render_lease_service_client::RenderLeaseServiceClient;
use studio_proto::queue::v1::envelope::Body;
use studio_proto::render::v1::{RenderResult, RenderTask, RenderedFile};
use studio_queue::lease::{settle, Beat, Failure, Heartbeat};
use studio_queue::{Delivery, WorkQueue};
use studio_storage::{ObjectKey, ObjectStore};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

/// How long a claim is tried again while ai-job cannot be reached, holding the delivery.
pub const CLAIM_PATIENCE: Duration = Duration::from_secs(300);

/// Written before the outputs: what a finished upload must look like.
const MANIFEST: &str = "render.json";

/// What `render.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Manifest {
    files: Vec<ManifestFile>,
    duration_s: f64,
    render_seconds: f64,
    encoder: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ManifestFile {
    kind: String,
    storage_key: String,
    size_bytes: u64,
    sha256: String,
}

/// What the worker is doing, for `GetWorkerStatus`.
#[derive(Debug, Clone, Default)]
pub struct Status {
    pub current_job: Option<String>,
}

/// A render worker.
#[derive(Clone)]
pub struct Worker {
    pub id: String,
    pub queue: Arc<dyn WorkQueue>,
    pub queue_name: String,
    pub storage: Arc<dyn ObjectStore>,
    pub leases: RenderLeaseServiceClient<ServiceChannel>,
    pub encoder: VideoEncoder,
    pub lease: Duration,
    pub grace: Duration,
    pub render_jobs: usize,
    pub work_dir: PathBuf,
    /// Longest one render may run.
    pub render_timeout: Duration,
    pub status: Arc<Mutex<Status>>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("id", &self.id)
            .field("encoder", &self.encoder)
            .finish_non_exhaustive()
    }
}

/// Why a render attempt failed.
/// `{prefix}{file}` as an object key.
fn prefixed(prefix: &str, file: &str) -> Result<ObjectKey, Failure> {
    ObjectKey::parse(format!("{prefix}{file}"))
        .map_err(|e| Failure::Final(format!("output_prefix: {e}")))
}

fn retryable(what: &str) -> impl FnOnce(studio_storage::StorageError) -> Failure + '_ {
    move |e| Failure::Retryable(format!("{what}: {e}"))
}

impl Worker {
    /// Consumes render tasks one at a time until `shutdown`. A render running at shutdown gets
    /// the grace period, then is stopped and handed back to the queue.
    pub async fn run(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let mut consumer = self.queue.consume(&self.queue_name, 1).await?;
        tracing::info!(worker = %self.id, queue = %self.queue_name, encoder = self.encoder.ffmpeg_name(), "render worker started");
        loop {
            let delivery = tokio::select! {
                _ = shutdown.wait() => break,
                next = consumer.next() => match next {
                    Ok(d) => d,
                    Err(err) => {
                        tracing::warn!(error = %err, "render queue unavailable; retrying");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                },
            };
            let stop = CancellationToken::new();
            let work = self.handle(delivery, stop.clone());
            tokio::pin!(work);
            tokio::select! {
                _ = &mut work => {}
                _ = shutdown.wait() => {
                    tracing::info!(grace = ?self.grace, "shutting down: letting the current render finish");
                    if tokio::time::timeout(self.grace, &mut work).await.is_err() {
                        stop.cancel();
                        work.await;
                    }
                    break;
                }
            }
        }
        tracing::info!("render worker stopped");
        Ok(())
    }

    async fn handle(&self, delivery: Delivery, stop: CancellationToken) {
        let step_id = match &delivery.envelope.body {
            Some(Body::StepReady(ready)) => ready.step_id.clone(),
            // Announced by an earlier version of ai-job.
            Some(Body::RenderTask(task)) => task.step_id.clone(),
            _ => {
                tracing::error!(message_id = %delivery.envelope.message_id, "not a render step announcement; dead-lettering it");
                settle(delivery.reject().await);
                return;
            }
        };
        let Some((task, attempt)) = self.claim(&step_id, delivery, &stop).await else {
            return;
        };
        metrics::counter!("media_render_tasks_claimed_total").increment(1);
        self.status.lock().await.current_job = Some(task.job_id.clone());
        tracing::info!(job = %task.job_id, step = %task.step_id, attempt, "render claimed");

        let heartbeat = {
            let (leases, task, lease) = (self.leases.clone(), task.clone(), self.lease);
            Heartbeat::spawn(lease / 3, move || {
                let (mut leases, beat) = (
                    leases.clone(),
                    job_pb::HeartbeatRenderRequest {
                        step_id: task.step_id.clone(),
                        fencing_token: task.fencing_token,
                        lease_s: lease.as_secs() as u32,
                    },
                );
                async move {
                    match leases.heartbeat_render(beat).await {
                        Ok(_) => Beat::Held,
                        Err(s) if s.code() == tonic::Code::FailedPrecondition => Beat::Lost,
                        Err(s) => Beat::Failed(s.to_string()),
                    }
                }
            })
        };
        let lost = heartbeat.lost().clone();
        let cancel = CancellationToken::new();
        let started = Instant::now();
        let outcome = tokio::select! {
            r = self.render(&task, cancel.clone()) => r,
            _ = lost.cancelled() => {
                cancel.cancel();
                Err(Failure::Retryable("the lease was lost (job cancelled or taken over)".into()))
            }
            _ = stop.cancelled() => {
                cancel.cancel();
                Err(Failure::Retryable("the render worker shut down; another worker will render it".into()))
            }
        };
        drop(heartbeat);
        let result = self.result(&task, started, outcome);
        if lost.is_cancelled() {
            tracing::warn!(job = %task.job_id, "lease lost; result not reported");
        } else {
            self.report(result).await;
        }
        self.status.lock().await.current_job = None;
    }

    /// Claims render step `step_id` from ai-job and settles `delivery`: acked once claimed (the
    /// lease holds the work from then on) or when the step is not claimable (a duplicate);
    /// dead-lettered when ai-job refuses it. While ai-job cannot be reached (restarting, a
    /// rolling deploy) the claim is tried again with backoff and the delivery held, so the outage
    /// costs the message no delivery attempt (security review H5); after
    /// [`CLAIM_PATIENCE`], or on shutdown, the message goes back to the queue.
    async fn claim(
        &self,
        step_id: &str,
        delivery: Delivery,
        stop: &CancellationToken,
    ) -> Option<(RenderTask, u32)> {
        let started = Instant::now();
        let mut wait = Duration::from_millis(250);
        let claim = loop {
            let claim = self
                .leases
                .clone()
                .claim_render(job_pb::ClaimRenderRequest {
                    step_id: step_id.to_owned(),
                    worker: self.id.clone(),
                    lease_s: self.lease.as_secs() as u32,
                })
                .await;
            match claim {
                Ok(c) => break c.into_inner(),
                Err(status) if status.code() == tonic::Code::InvalidArgument => {
                    tracing::error!(error = %status, "render task refused by ai-job; dead-lettering it");
                    settle(delivery.reject().await);
                    return None;
                }
                Err(status) if started.elapsed() < CLAIM_PATIENCE && !stop.is_cancelled() => {
                    tracing::warn!(error = %status, ?wait, "ai-job unreachable for the claim; trying again");
                    metrics::counter!("media_render_claim_retries_total").increment(1);
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.cancelled() => {}
                    }
                    wait = (wait * 2).min(Duration::from_secs(10));
                }
                Err(status) => {
                    tracing::warn!(error = %status, "ai-job still unreachable for the claim; returning the task");
                    settle(delivery.retry().await);
                    return None;
                }
            }
        };
        settle(delivery.ack().await);
        match (claim.claimed, claim.task) {
            (true, Some(task)) => Some((task, claim.attempt)),
            _ => {
                tracing::debug!(step = %step_id, "render not claimable (duplicate, held, or finished)");
                None
            }
        }
    }

    /// The result to report for `task`, started at `started`, from how the render ended.
    fn result(
        &self,
        task: &RenderTask,
        started: Instant,
        outcome: Result<Manifest, Failure>,
    ) -> RenderResult {
        let mut result = RenderResult {
            job_id: task.job_id.clone(),
            fencing_token: task.fencing_token,
            step_id: task.step_id.clone(),
            worker: self.id.clone(),
            render_seconds: started.elapsed().as_secs_f64(),
            ..RenderResult::default()
        };
        match outcome {
            Ok(manifest) => {
                result.ok = true;
                result.duration_s = manifest.duration_s;
                result.encoder = manifest.encoder;
                result.render_seconds = manifest.render_seconds;
                result.files = manifest
                    .files
                    .into_iter()
                    .map(|f| RenderedFile {
                        kind: f.kind,
                        storage_key: f.storage_key,
                        size_bytes: f.size_bytes,
                        sha256: f.sha256,
                    })
                    .collect();
                metrics::counter!("media_render_tasks_total", "result" => "ok").increment(1);
            }
            Err(Failure::Retryable(error)) => {
                result.error = error;
                result.retryable = true;
                metrics::counter!("media_render_tasks_total", "result" => "retry").increment(1);
            }
            Err(Failure::Final(error)) => {
                result.error = error;
                metrics::counter!("media_render_tasks_total", "result" => "failed").increment(1);
            }
        }
        result
    }

    /// Reports a result, retrying while ai-job is unreachable, for as long as the lease lasts.
    async fn report(&self, result: RenderResult) {
        let deadline = Instant::now() + self.lease;
        let mut wait = Duration::from_millis(200);
        loop {
            match self.leases.clone().finish_render(result.clone()).await {
                Ok(_) => {
                    tracing::info!(job = %result.job_id, ok = result.ok, error = %result.error, "render reported");
                    return;
                }
                Err(s) if s.code() == tonic::Code::FailedPrecondition => {
                    tracing::warn!(job = %result.job_id, error = %s, "render result refused (fenced)");
                    return;
                }
                Err(s) if Instant::now() + wait < deadline => {
                    tracing::warn!(error = %s, "reporting the render failed; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
                Err(s) => {
                    tracing::error!(error = %s, "giving up reporting; the lease will expire and the render will be reused");
                    return;
                }
            }
        }
    }

    fn key(&self, task: &RenderTask, file: &str) -> Result<ObjectKey, Failure> {
        prefixed(&task.output_prefix, file)
    }

    /// The manifest of the newest earlier attempt whose upload finished and checks out.
    async fn finished_upload(&self, task: &RenderTask) -> Result<Option<Manifest>, Failure> {
        for prefix in &task.earlier_output_prefixes {
            if let Some(manifest) = self.finished_upload_at(task, prefix).await? {
                return Ok(Some(manifest));
            }
        }
        Ok(None)
    }

    /// The manifest under `prefix`, when its `final.mp4` finished uploading and every file has
    /// the size and SHA-256 it records.
    async fn finished_upload_at(
        &self,
        task: &RenderTask,
        prefix: &str,
    ) -> Result<Option<Manifest>, Failure> {
        let manifest_key = prefixed(prefix, MANIFEST)?;
        let bytes = match self.storage.get(&manifest_key).await {
            Ok(b) => b,
            Err(studio_storage::StorageError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(retryable("reading the render manifest")(e)),
        };
        let Ok(manifest) = serde_json::from_slice::<Manifest>(&bytes) else {
            return Ok(None);
        };
        let video = OutputKind::Video;
        let Some(uploaded) = manifest.files.iter().find(|f| f.kind == video.api_name()) else {
            return Ok(None);
        };
        let video_key = prefixed(prefix, video.file_name())?;
        let head = self
            .storage
            .head(&video_key)
            .await
            .map_err(retryable("checking final.mp4"))?;
        if head.is_none_or(|h| h.size != uploaded.size_bytes) {
            return Ok(None);
        }
        // Same size is not the same video (a zombie's upload over its successor's, another
        // encoder): every file must have the SHA-256 the manifest recorded (security review M1).
        let scratch = self
            .work_dir
            .join("tasks")
            .join(format!("{}-{}-check", task.step_id, task.fencing_token));
        tokio::fs::create_dir_all(&scratch)
            .await
            .map_err(|e| Failure::Retryable(format!("{}: {e}", scratch.display())))?;
        let checked = self.all_match(&manifest, &scratch).await;
        let _ = tokio::fs::remove_dir_all(&scratch).await;
        Ok(checked?.then_some(manifest))
    }

    /// Whether every file of `manifest` is stored with the size and SHA-256 it records.
    /// (Its keys are checked against the step's prefix by ai-job when reported.)
    async fn all_match(&self, manifest: &Manifest, scratch: &Path) -> Result<bool, Failure> {
        for (i, file) in manifest.files.iter().enumerate() {
            let Ok(key) = ObjectKey::parse(file.storage_key.clone()) else {
                return Ok(false);
            };
            let local = scratch.join(format!("{i}"));
            match self.storage.get_to_file(&key, &local).await {
                Ok(_) => {}
                Err(studio_storage::StorageError::NotFound(_)) => return Ok(false),
                Err(e) => return Err(retryable("checking an earlier upload")(e)),
            }
            let (size, sha256) = digest(&local)
                .await
                .map_err(|e| Failure::Retryable(format!("{}: {e}", local.display())))?;
            if size != file.size_bytes || sha256 != file.sha256 {
                tracing::warn!(key = %file.storage_key, "an earlier upload does not match its manifest; rendering again");
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn render(
        &self,
        task: &RenderTask,
        cancel: CancellationToken,
    ) -> Result<Manifest, Failure> {
        if let Some(manifest) = self.finished_upload(task).await? {
            tracing::info!(job = %task.job_id, "outputs already uploaded by an earlier attempt; reusing them");
            return Ok(manifest);
        }
        let started = Instant::now();
        let dir = self
            .work_dir
            .join("tasks")
            .join(format!("{}-{}", task.step_id, task.fencing_token));
        let _ = tokio::fs::remove_dir_all(&dir).await;
        let input_dir = dir.join("input");
        let out_dir = dir.join("out");
        let result = self
            .render_in(task, &input_dir, &out_dir, cancel, started)
            .await;
        let _ = tokio::fs::remove_dir_all(&dir).await;
        result
    }

    async fn render_in(
        &self,
        task: &RenderTask,
        input_dir: &Path,
        out_dir: &Path,
        cancel: CancellationToken,
        started: Instant,
    ) -> Result<Manifest, Failure> {
        let timeline_key = ObjectKey::parse(task.timeline_key.clone())
            .map_err(|e| Failure::Final(format!("timeline_key: {e}")))?;
        let json = self
            .storage
            .get(&timeline_key)
            .await
            .map_err(retryable("fetching the timeline"))?;
        let json = std::str::from_utf8(&json)
            .map_err(|_| Failure::Final("the timeline is not UTF-8 JSON".into()))?;
        let timeline =
            studio_media::parse_timeline(json).map_err(|e| Failure::Final(e.to_string()))?;
        for (rel, key) in &task.inputs {
            let path = safe_join(input_dir, rel).ok_or_else(|| {
                Failure::Final(format!("input path {rel:?} leaves the task folder"))
            })?;
            let key = ObjectKey::parse(key.clone())
                .map_err(|e| Failure::Final(format!("inputs[{rel}]: {e}")))?;
            if let Some(parent) = path.parent() {
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(|e| Failure::Retryable(format!("{}: {e}", parent.display())))?;
            }
            self.storage
                .get_to_file(&key, &path)
                .await
                .map_err(retryable("fetching an input"))?;
        }
        let mut options = RenderOptions::new(input_dir, out_dir);
        options.cache_dir = self.work_dir.join("segments");
        options.encoder = self.encoder;
        options.cancel = cancel;
        options.jobs = self.render_jobs;
        options.timeout = Some(self.render_timeout);
        let report = studio_media::render(&timeline, &options)
            .await
            .map_err(|e| match e {
                studio_media::MediaError::Cancelled => {
                    Failure::Retryable("the render was stopped".into())
                }
                studio_media::MediaError::TimedOut(limit) => Failure::Final(format!(
                    "the render ran longer than {} s, the limit (media_render.render_timeout_s)",
                    limit.as_secs()
                )),
                e => Failure::Final(public_error(&task.job_id, &e)),
            })?;
        let mut files = Vec::new();
        for kind in OutputKind::ALL {
            let name = kind.file_name();
            let path = out_dir.join(name);
            if !path.is_file() {
                continue;
            }
            let (size_bytes, sha256) = digest(&path)
                .await
                .map_err(|e| Failure::Retryable(format!("{}: {e}", path.display())))?;
            files.push(ManifestFile {
                kind: kind.api_name().to_owned(),
                storage_key: self.key(task, name)?.as_str().to_owned(),
                size_bytes,
                sha256,
            });
        }
        let manifest = Manifest {
            files,
            duration_s: report.duration_s,
            render_seconds: started.elapsed().as_secs_f64(),
            encoder: self.encoder.ffmpeg_name().to_owned(),
        };
        let manifest_json = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| Failure::Final(format!("manifest: {e}")))?;
        self.storage
            .put(
                &self.key(task, MANIFEST)?,
                manifest_json.into(),
                "application/json",
            )
            .await
            .map_err(retryable("uploading the manifest"))?;
        for kind in OutputKind::ALL {
            let path = out_dir.join(kind.file_name());
            if path.is_file() {
                self.storage
                    .put_file(
                        &self.key(task, kind.file_name())?,
                        &path,
                        kind.content_type(),
                    )
                    .await
                    .map_err(retryable("uploading an output"))?;
            }
        }
        metrics::counter!("media_render_uploads_total").increment(1);
        Ok(manifest)
    }
}

/// What the job's owner is told of a failed render: problems of their own timeline or size
/// cap in full; anything that would show the worker's paths, FFmpeg's output or its
/// installation (an input outside the sandbox, an FFmpeg failure, a file-system error) as an
/// error id, logged here with the whole error for the operators (security review L2).
fn public_error(job: &str, e: &studio_media::MediaError) -> String {
    use studio_media::MediaError as E;
    match e {
        E::Invalid(_) | E::TooLarge { .. } | E::Json { .. } => format!("render failed: {e}"),
        _ => {
            let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
            tracing::error!(%job, error_id = %id, error = %e, "render failed");
            format!(
                "the render failed (error {id}); the operators can look it up in the render worker's log"
            )
        }
    }
}

/// `root/rel` when `rel` is a plain relative path (no `..`, not absolute).
fn safe_join(root: &Path, rel: &str) -> Option<PathBuf> {
    let rel = Path::new(rel);
    rel.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| root.join(rel))
}

async fn digest(path: &Path) -> std::io::Result<(u64, String)> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(&path)?;
        let mut hasher = Sha256::new();
        let size = std::io::copy(&mut file, &mut hasher)?;
        Ok((size, hex::encode(hasher.finalize())))
    })
    .await
    .map_err(std::io::Error::other)?
}

#[cfg(test)]
mod tests;
